"""The drop-in rayvision_sync has the official 3.1.8 names, parameters and defaults.

The official signatures are read with ``inspect.signature`` in the official client's own environment;
``upload_asset`` hides behind a decorator there, so the function it wraps is read instead.
"""

import inspect
import json
import subprocess

import pytest

from rayfarm.compat.rayvision_sync import download, exception, manage, upload, utils

MEMBERS = {
    "upload.RayvisionUpload": ["__init__", "upload", "upload_config", "upload_asset", "thread_pool_upload"],
    "download.RayvisionDownload": ["__init__", "download", "auto_download", "auto_download_after_task_completed",
                                   "check_params"],
    "manage.RayvisionManageTask": ["__init__", "is_task_end", "get_task_status", "task_info_iterater",
                                   "output_file_names", "find_task_status_codes"],
    "utils": ["cutting_upload", "get_task_status_description", "json_load", "write_json"],
}
#: Public methods of the official classes that only serve its transmitter's local database.
TRANSMITTER_ONLY = {"upload.RayvisionUpload": {"check_transfer_log_path", "create_db_ini", "load_db_config"}}

PROBE = r"""
import importlib, inspect, json, sys

def described(function):
    if function.__closure__ and list(inspect.signature(function).parameters) == ["args", "kwargs"]:
        function = function.__closure__[0].cell_contents  # upload_retry's inner(*args, **kwargs)
    return [[p.name, p.kind.name, repr(p.default)] for p in inspect.signature(function).parameters.values()]

members, out = json.loads(sys.argv[1]), {}
for owner, names in members.items():
    module_name, _, class_name = owner.partition(".")
    target = importlib.import_module("rayvision_sync." + module_name)
    if class_name:
        target = getattr(target, class_name)
        out[owner + ".public"] = sorted(n for n in dir(target) if not n.startswith("_"))
    for name in names:
        out[owner + "." + name] = described(getattr(target, name))
json.dump(out, sys.stdout)
"""

MODULES = {"upload": upload, "download": download, "manage": manage, "utils": utils}


def ours() -> dict:
    out = {}
    for owner, names in MEMBERS.items():
        module_name, _, class_name = owner.partition(".")
        target = MODULES[module_name]
        if class_name:
            target = getattr(target, class_name)
            out[owner + ".public"] = sorted(n for n in dir(target) if not n.startswith("_"))
        for name in names:
            out[owner + "." + name] = [[p.name, p.kind.name, repr(p.default)]
                                       for p in inspect.signature(getattr(target, name)).parameters.values()]
    return out


@pytest.fixture(scope="module")
def official(rayvision_sync_python) -> dict:
    done = subprocess.run([str(rayvision_sync_python), "-W", "ignore", "-c", PROBE, json.dumps(MEMBERS)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@pytest.mark.parametrize("member", [f"{owner}.{name}" for owner, names in MEMBERS.items() for name in names])
def test_same_parameters_and_defaults(official, member):
    assert ours()[member] == official[member]


@pytest.mark.parametrize("owner", [owner for owner in MEMBERS if "." in owner])
def test_every_public_method_is_there(official, owner):
    missing = set(official[owner + ".public"]) - set(ours()[owner + ".public"])
    assert missing == TRANSMITTER_ONLY.get(owner, set())


def test_upload_asset_signature_is_the_wrapped_one(official):
    # the probe really unwrapped the official decorator (else both sides would be trivially (*args, **kwargs))
    names = [p[0] for p in official["upload.RayvisionUpload.upload_asset"]]
    assert names[:3] == ["self", "upload_json_path", "max_speed"] and "upload_num" in names


def test_exception_names_and_attributes():
    error = exception.RayvisionError(200025, "There are files that cannot be uploaded")
    assert (error.error_code, error.error) == (200025, "There are files that cannot be uploaded")
    assert exception.DownloadFailed("x").error == "x"
    assert issubclass(exception.UnsupportedEngineType, Exception)
    assert issubclass(exception.UnsupportedDatabaseError, Exception)
