"""A stuck render (no output line, no new output bytes, no progress) is detected by the node and killed.

task.json's `task_info.stall_timeout` (seconds; default 3600, "0" = off) reaches the node as the lease's
`stallTimeout`; the node's watchdog kills a render that shows no sign of life for that long and reports
the chunk failed with a "stuck" reason, so it is retried up to `max_attempts`. Slow renders that keep
printing, or keep writing output, are left alone.
"""

from rayfarm.sdk import RayfarmAPI
from tests.support import taskjson
from tests.support.farms import make_users
from tests.support.processes import PYTHON, UNCONFINED_COMMANDS, gone, wait_for
from tests.support.tasks import FINISHED, frames_of, report, submit, wait_task

STALL = 2  # seconds

# Frame 1: stuck on every attempt, and deaf to SIGTERM (needs the SIGKILL). Frame 2: stuck on its first
# attempt only. Frame 3: slow, but prints a line every half second. Frame 4: silent, but its output file
# grows every half second. Each run records "<frame> start|done <pid>".
SCRIPT = """
import os, signal, sys, time
frame, output, record, folder = sys.argv[1:5]
def note(event):
    with open(record, "a") as handle:
        handle.write(f"{frame} {event} {os.getpid()}\\n")
note("start")
if frame == "1":
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    print("loading the scene", flush=True)
    time.sleep(3600)
if frame == "2":
    marker = os.path.join(folder, "frame2-tried")
    if not os.path.exists(marker):
        open(marker, "w").close()
        time.sleep(3600)
if frame == "3":
    for sample in range(8):
        print(f"sample {sample}/8", flush=True)
        time.sleep(0.5)
if frame == "4":
    with open(os.path.join(output, "f_4.log"), "w") as handle:
        for step in range(8):
            handle.write("x")
            handle.flush()
            time.sleep(0.5)
with open(os.path.join(output, f"f_{frame}.txt"), "w") as handle:
    handle.write(frame)
note("done")
"""


def test_stuck_render_is_killed_and_retried_while_slow_ones_live(start_farm, tmp_path):
    farm = start_farm()
    [user] = make_users(farm, "stuck", commands=("stuck",))
    node = farm.start_worker("watch", "--slots", "4", UNCONFINED_COMMANDS, wait=False)
    api = RayfarmAPI(user.access_id, user.access_key, domain=farm.domain)
    script, record = tmp_path / "stuck.py", tmp_path / "record.txt"
    script.write_text(SCRIPT)
    record.touch()

    command = [PYTHON, str(script), "{frame}", "{output}", str(record), str(tmp_path)]
    task_json = taskjson.command(command, "1-4[1]", stall_timeout=str(STALL), max_attempts="2")
    task_id = submit(api, task_json)
    done = wait_task(farm, api, task_id, FINISHED, 60)

    frames = frames_of(api, task_id)
    details = report(farm, api, [task_id])
    assert done["taskStatus"] == 30, details  # done with one failed frame
    stuck = frames["1"]
    assert stuck["frameStatus"] == 5 and stuck["attempts"] == 2, details
    assert "stuck" in stuck["errorMessage"] and "stall_timeout" in stuck["errorMessage"], stuck
    assert (frames["2"]["frameStatus"], frames["2"]["attempts"]) == (4, 1), details  # stuck once, then retried
    assert (frames["3"]["frameStatus"], frames["3"]["attempts"]) == (4, 0), details  # slow but talking
    assert (frames["4"]["frameStatus"], frames["4"]["attempts"]) == (4, 0), details  # silent but writing
    outputs = {entry["fileName"] for entry in api.files.output_files(task_id)}
    assert {"f_2.txt", "f_3.txt", "f_4.txt", "f_4.log"} <= outputs and "f_1.txt" not in outputs

    # the node's own record: the stuck runs never finished, and their processes are gone
    rows = [line.split() for line in record.read_text().splitlines()]
    starts = {frame: [int(pid) for f, event, pid in rows if f == frame and event == "start"] for frame in "1234"}
    dones = {frame: [int(pid) for f, event, pid in rows if f == frame and event == "done"] for frame in "1234"}
    assert len(starts["1"]) == 2 and dones["1"] == [], rows
    assert len(starts["2"]) == 2 and dones["2"] == [starts["2"][1]], rows
    assert len(starts["3"]) == len(starts["4"]) == 1 and len(dones["3"]) == len(dones["4"]) == 1, rows
    for pid in [*starts["1"], starts["2"][0]]:
        wait_for(lambda pid=pid: gone(pid), 60, f"the stuck render {pid} to be killed")
    assert node.log().count("stall_timeout") >= 3, node.log()[-3000:]  # 2 attempts of frame 1, 1 of frame 2
    api.close()
