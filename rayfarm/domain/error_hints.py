"""What rayfarm's codes mean and what to do about them: the answer of ``queryAnalyseErrorDetail``.

Two kinds of codes: the Renderbus result codes rayfarm answers with (``protocol/codes.py``) and the tip codes
an analysis writes into tips.json (46000-46003, written by the Blender analyzer). ``type`` is 1 for an error
(the official ``RayvisionCheck`` refuses to go on) and 0 for a warning. rayfarm has no Chinese translations:
the ``...Cn`` fields carry the English text too.
"""

from dataclasses import dataclass

from rayfarm.protocol.codes import Code

ERROR, WARNING = 1, 0


@dataclass(frozen=True)
class Hint:
    code: int
    type: int
    description: str
    solution: str


HINTS: dict[int, Hint] = {hint.code: hint for hint in (
    Hint(Code.FORBIDDEN, ERROR, "The call is not allowed for this account: it needs an administrator, a right "
         "the account lacks (running commands), or it would exceed one of the account's quotas.",
         "Read the message: it names the right or the limit. An administrator raises limits with "
         "`rayfarm user quota NAME` and grants rights with `rayfarm user create`."),
    Hint(Code.NOT_FOUND, ERROR, "What the call names does not exist (or is not yours): an API path, a frame, a "
         "file, a project or a render environment.",
         "Check the name or id: list them with the matching query (queryTaskFrames, getOutputUserDirFile, "
         "project/getList, getUserPluginConfig)."),
    Hint(Code.TOO_MANY_REQUESTS, ERROR, "Too many requests from this access id or address in a short time.",
         "Slow down and try again after the number of seconds the message gives."),
    Hint(Code.INTERNAL, ERROR, "The farm hit an internal error; it was logged with the request id.",
         "Try again; if it lasts, give the request id to the farm's administrator."),
    Hint(Code.PROJECT_EXISTS, ERROR, "A project with this name exists already.",
         "Use the existing project, or add one with another name."),
    Hint(Code.TOO_MANY_FRAMES, ERROR, "The task has more frames than the farm or the account allows.",
         "Split the frame range over several tasks, or ask the administrator to raise the frames-per-task "
         "limit (rayfarm user quota NAME --frames-per-task N)."),
    Hint(Code.INVALID_PARAMETER, ERROR, "A parameter of the call, or a value in task.json or upload.json, is not "
         "valid (wrong type, out of range, unknown software or version, a path outside your storage).",
         "The message names the field and the reason; correct it and send the call again."),
    Hint(Code.MISSING_PARAMETER, ERROR, "A required parameter of the call is missing.",
         "Add the parameter the message names."),
    Hint(Code.LOGIN_REQUIRED, ERROR, "The access id is missing or not known to this farm, or the dashboard "
         "session ended.", "Use the access id and key you were given (rayfarm user create), or sign in again."),
    Hint(Code.ILLEGAL_REQUEST, ERROR, "The request was refused as a replay, or a signed header came twice.",
         "Sign every request anew, with a new nonce; send each signed header once."),
    Hint(Code.SIGNATURE_EXPIRED, ERROR, "The request's UTCTimestamp is too far from the farm's clock.",
         "Set the computer's clock right (NTP) and send the request again."),
    Hint(Code.SIGNATURE_INVALID, ERROR, "The request's signature does not match.",
         "Check the access key, and that the domain the client signs is the host:port it sends to."),
    Hint(Code.TASK_CANNOT_OPERATE, ERROR, "The task is in a state where this operation cannot run (e.g. deleting a "
         "task that still renders, starting an abandoned one, acting on one that was never submitted).",
         "The message says which state the task is in; stop it first, or submit it, as it says."),
    Hint(Code.TASK_JSON_UNREADABLE, ERROR, "task.json cannot be read: it is not a JSON object, or it is too large.",
         "Write task.json as a JSON object (all values as strings) and upload it again with taskJsonFile."),
    Hint(Code.TASK_JSON_EMPTY, ERROR, "task.json is empty or was never uploaded.",
         "Upload task.json with taskJsonFile (upload_config) before submitting the task."),
    Hint(Code.ILLEGAL_TEST_FRAMES, ERROR, "The priority (test) frames in task_info.pre_frames are not valid.",
         "Write pre_frames as three flags (first, middle, last), optionally followed by ':' and a frame list, "
         "e.g. \"100\" or \"000:1,5-7[1]\"; the frames must be in the task's range."),
    Hint(Code.TASK_NOT_FOUND, ERROR, "The task does not exist, or it is not yours.",
         "Check the id with getTaskList (your tasks) or getTaskList with recycleFlag 1 (deleted ones)."),
    Hint(46000, ERROR, "The scene renders to a movie file; a farm renders frames on many nodes at once.",
         "Set the output to an image format (PNG, OPEN_EXR, JPEG ...) and make the movie from the frames."),
    Hint(46001, WARNING, "The frame step is not 1: only every n-th frame is rendered.",
         "Nothing to do if that is what you want; else set the step to 1."),
    Hint(46002, ERROR, "The scene renders with Eevee, which needs a GPU, and the analysis ran on a host without one.",
         "Render with Cycles, or make sure the farm's nodes have GPUs (Eevee on a node without one fails)."),
    Hint(46003, ERROR, "The scene has no active camera.", "Set a scene camera in Blender and save the scene."),
)}


def details(codes: list[str], language: int) -> list[dict]:
    """The hints of these codes, in the order asked, each once; codes rayfarm does not use are left out."""
    found = []
    for text in dict.fromkeys(codes):
        hint = HINTS.get(int(text)) if text.isdigit() and len(text) < 10 else None
        if hint is not None:
            found.append({"id": hint.code, "code": str(hint.code), "type": hint.type, "languageFlag": language,
                          "desDescriptionEn": hint.description, "desSolutionEn": hint.solution,
                          "desDescriptionCn": hint.description, "desSolutionCn": hint.solution,
                          "isRepair": 0, "isDelete": 1, "isOpen": 1})
    return found
