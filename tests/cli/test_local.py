"""In-process pieces of the command line (no farm needed): the profile file, the order credentials are taken
in, durations and state names."""

import json
import tomllib

import pytest
import typer

from rayfarm.cli import profiles, session
from rayfarm.cli.blendscene import SceneInfo
from rayfarm.cli.review import frames_text, left_text, pool_text
from rayfarm.cli.submit import task_json
from rayfarm.cli.tasks import chunks_holding, duration, parse_states, tries
from rayfarm.cli.watch import FRAME_GROUPS, FRAME_STATES, TASK_GROUPS, TASK_STATES, clock, seconds_text
from rayfarm.domain import taskjson
from rayfarm.sdk.errors import SDK_CALLS, RayfarmAPIError, reword

ALL_VARS = ("RAYFARM_SERVER", "RAYFARM_ACCESS_ID", "RAYFARM_ACCESS_KEY", "RAYFARM_PROFILE")


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    for name in ALL_VARS:
        monkeypatch.delenv(name, raising=False)
    return tmp_path / "rayfarm" / "config.toml"


def test_config_path_follows_xdg_and_ignores_a_relative_one(home, monkeypatch):
    assert profiles.config_path() == home
    monkeypatch.setenv("XDG_CONFIG_HOME", "relative/dir")
    assert profiles.config_path() == profiles.Path.home() / ".config" / "rayfarm" / "config.toml"


def test_save_is_private_keeps_other_content_and_sets_the_default_once(home):
    profiles.save(profiles.Profile("a", "http://a:1", "AK1", 'k"e\\y ü'))
    assert home.stat().st_mode & 0o777 == 0o600 and home.parent.stat().st_mode & 0o777 == 0o700
    home.write_text(home.read_text() + '\n[extra]\nkept = true\n')
    profiles.save(profiles.Profile("b", "http://b:2", "AK2", "key2"))
    data = tomllib.loads(home.read_text())
    assert data["default"] == "a" and data["extra"] == {"kept": True}
    assert profiles.find("a").access_key == 'k"e\\y ü'  # escaped by the writer, read back as it was
    profiles.save(profiles.Profile("b", "http://b:3", "AK2", "key3"), make_default=True)
    found = profiles.find(None)
    assert (found.name, found.server, found.access_key) == ("b", "http://b:3", "key3")
    assert home.stat().st_mode & 0o777 == 0o600
    assert [p.name for p in home.parent.iterdir()] == ["config.toml"]  # no temporary file left behind


def test_missing_or_broken_profiles_are_errors_that_say_what_to_do(home):
    assert profiles.find(None) is None  # no file, no name: not an error (flags or environment may do)
    with pytest.raises(profiles.ProfileError, match="rayfarm login --profile x"):
        profiles.find("x")
    home.parent.mkdir(parents=True)
    home.write_text('default = "gone"\n[profiles.a]\nserver = "http://a:1"\n')
    with pytest.raises(profiles.ProfileError, match="default profile 'gone'"):
        profiles.find(None)
    home.write_text('[profiles.a]\naccess_key = 5\n')
    with pytest.raises(profiles.ProfileError, match="must be a string"):
        profiles.find("a")
    home.write_text("profiles = 3\n")
    with pytest.raises(profiles.ProfileError, match=r"\[profiles.NAME\]"):
        profiles.find("a")
    home.write_text("[profiles\n")
    with pytest.raises(profiles.ProfileError, match="not valid TOML"):
        profiles.find(None)


def test_credentials_order_flags_then_named_profile_then_environment_then_default(home, monkeypatch):
    profiles.save(profiles.Profile("main", "http://main:1", "AKmain", "kmain"))
    profiles.save(profiles.Profile("other", "http://other:2", "AKother", "kother"))
    assert session.credentials(None, None, None, None)["access_id"] == "AKmain"
    monkeypatch.setenv("RAYFARM_PROFILE", "other")
    assert session.credentials(None, None, None, None)["access_id"] == "AKother"
    monkeypatch.setenv("RAYFARM_ACCESS_ID", "AKenv")
    monkeypatch.setenv("RAYFARM_ACCESS_KEY", "kenv")
    found = session.credentials(None, None, None, None)
    assert (found["server"], found["access_id"], found["access_key"]) == ("http://other:2", "AKenv", "kenv")
    found = session.credentials(None, None, None, "main")
    assert (found["server"], found["access_id"], found["access_key"]) == ("http://main:1", "AKmain", "kmain")
    found = session.credentials("http://flag:3", "AKflag", None, "main")
    assert (found["server"], found["access_id"], found["access_key"]) == ("http://flag:3", "AKflag", "kmain")


def test_missing_credentials_and_bad_urls_are_usage_errors(home):
    with pytest.raises(typer.Exit) as missing:
        session.credentials(None, None, None, None)
    assert missing.value.exit_code == session.Exit.USAGE
    with pytest.raises(typer.Exit) as bad:
        session.domain_of("ftp://farm:1")
    assert bad.value.exit_code == session.Exit.USAGE
    assert session.domain_of("127.0.0.1:8765") == ("127.0.0.1:8765", "http")
    assert session.domain_of("https://farm.example:443") == ("farm.example:443", "https")


def test_durations_and_state_names():
    assert [duration(t) for t in ("1800", "90s", "30m", "2h", "1h30m", "0", "off")] == [1800, 90, 1800, 7200, 5400, 0, 0]
    for bad in ("1h30", "abc", "", "-5"):
        with pytest.raises(typer.Exit) as refused:
            duration(bad)
        assert refused.value.exit_code == session.Exit.USAGE
    assert parse_states(["done,failed", "10"], TASK_STATES) == [25, 45, 10]
    assert parse_states(["timed-out", "held"], FRAME_STATES) == [11, 8]
    with pytest.raises(typer.Exit):
        parse_states(["finished"], TASK_STATES)
    with pytest.raises(typer.Exit):
        parse_states(["2"], TASK_STATES)  # 2 is a frame state, not a task state


def test_a_state_name_filters_what_the_counts_with_that_name_count():
    """`task show` counts failed frames as failed or timed out, waiting ones as waiting, held or pre-processing
    (the farm's failedFrames and waitingCount); the filters by those names choose the same chunks."""
    assert parse_states(["failed"], FRAME_STATES, FRAME_GROUPS) == [5, 11]
    assert parse_states(["waiting"], FRAME_STATES, FRAME_GROUPS) == [1, 6, 8]
    assert parse_states(["timed-out,failed"], FRAME_STATES, FRAME_GROUPS) == [11, 5]
    assert parse_states(["5"], FRAME_STATES, FRAME_GROUPS) == [5]  # a code is exactly that code
    assert parse_states(["stopped"], TASK_STATES, TASK_GROUPS) == [10, 20, 23]  # the dashboard's "Stopped"
    assert parse_states(["waiting"], TASK_STATES, TASK_GROUPS) == [0, 8]
    with pytest.raises(typer.Exit):
        parse_states(["failed"], FRAME_STATES, {"failed": [99]})


def chunk(chunk_id: int, index: str, status: int = 4, attempts: int = 0) -> dict:
    return {"id": chunk_id, "frameIndex": index, "frameStatus": status, "attempts": attempts}


def test_retry_takes_frame_numbers_and_ranges_and_finds_the_chunks_holding_them():
    chunks = [chunk(11, "1-4"), chunk(12, "5-8"), chunk(13, "9-12"), chunk(14, "13-17[2]")]
    assert chunks_holding(7, ["5-8"], chunks) == [12]  # the README's example: frames 5 to 8
    assert chunks_holding(7, ["4-5"], chunks) == [11, 12]  # two chunks hold them
    assert chunks_holding(7, ["10", "2,15"], chunks) == [11, 13, 14]
    for missing in (["14"], ["17-19"], ["nope"]):  # 14 is between two frames of the stepped chunk
        with pytest.raises(typer.Exit) as refused:
            chunks_holding(7, missing, chunks)
        assert refused.value.exit_code == session.Exit.USAGE


def test_what_task_show_and_frames_print_is_what_a_person_reads():
    assert [frames_text(t) for t in ("1-24[1]", "1-24[2]", "7", "1,3,10-20[1]", "x")] == \
        ["1-24", "1-23, every 2nd frame", "7", "1, 3, 10-20", "x"]
    assert [seconds_text(s) for s in (None, 4.2, 200, 7500, 259200)] == ["", "4 s", "3 min 20 s", "2 h 5 min", "3 days"]
    assert [tries(chunk(1, "1", 4, 0)), tries(chunk(1, "1", 4, 2)), tries(chunk(1, "1", 5, 3)), tries(chunk(1, "1", 1, 0)),
            tries(chunk(1, "1", 2, 1))] == ["1", "3", "3", "", "2"]
    assert clock(1_700_000_000_000) == __import__("datetime").datetime.fromtimestamp(1_700_000_000).strftime(
        "%Y-%m-%d %H:%M:%S")
    assert pool_text({}) is None and pool_text({"pools": []}) == "any node" and pool_text({"pool": "gpu"}) == "gpu"
    assert pool_text({"pools": ["gpu", "fast"]}) == "gpu, fast"
    assert left_text({"etaSeconds": 200, "secondsPerFrame": 12.5}) == "about 3 min 20 s (12 s a frame so far)"
    assert left_text({"etaSeconds": None, "secondsPerFrame": None}) == "" and left_text({}) == ""


def test_the_farms_hints_name_the_command_in_the_cli_and_the_call_in_the_sdk():
    said = "Task 42 does not exist (or is not yours); check the id with getTaskList."
    assert reword(said, session.COMMANDS, "ID") == "Task 42 does not exist (or is not yours); check the id with " \
                                                    "`rayfarm task list`."
    error = RayfarmAPIError(937, said, "http://farm/api")
    assert error.message.endswith("check the id with api.query.get_task_list().") and error.farm_message == said
    done = "Cannot start task 9: it is done (status 25); re-render its failed frames with recommitTasks instead."
    assert "`rayfarm task retry 9`" in reword(done, session.COMMANDS, "ID")
    assert "api.query.restart_failed_frames([9])" in RayfarmAPIError(718, done, "u").message
    frames = "Frame 5 does not exist; list frames with queryTaskFrames."  # no task named: a placeholder
    assert reword(frames, session.COMMANDS, "ID").endswith("`rayfarm task frames ID`.")
    assert set(session.COMMANDS) == set(SDK_CALLS)  # every route a sentence names has both wordings


def test_submit_options_become_a_task_json_the_farm_reads_back():
    info = SceneInfo(path="/p/shot.blend", version="3.4.1", scene="Scene", frame_start=1, frame_end=9, frame_step=2,
                     camera="Camera", cameras=["Camera", "Close"], width=64, height=36, format="PNG", engine="CYCLES")
    content = task_json("/p/shot.blend", info.frames, info, chunk=2, priority_frames="100", pause=True, camera="Close",
                        width=32, height=18, file_format="OPEN_EXR", project="ads", chunk_timeout=600, overtime=1800,
                        attempts=5)
    spec = taskjson.parse(json.dumps(content))
    assert (spec.software, spec.cg_version, spec.scene_storage_path, spec.frames_text) == \
        ("blender", "3.4.1", "/p/shot.blend", "1-9[2]")
    assert (spec.per_chunk, spec.priority, spec.pause_after_test, spec.camera, spec.width, spec.height) == \
        (2, [1], True, "Close", 32, 18)
    assert (spec.output_format, spec.project_name, spec.job_stop_time, spec.task_stop_time, spec.max_attempts) == \
        ("OPEN_EXR", "ads", 600, 1800, 5)
    assert spec.total_frames == 5
    plain = taskjson.parse(json.dumps(task_json("/p/shot.blend", "1-3", None, chunk=1, priority_frames=None, pause=False,
                                                camera=None, width=None, height=None, file_format=None, project=None,
                                                chunk_timeout=None, overtime=None, attempts=None)))
    assert (plain.camera, plain.width, plain.output_format, plain.priority, plain.max_attempts) == (None, None, None, [], 3)
