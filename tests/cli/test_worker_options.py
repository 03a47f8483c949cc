"""`rayfarm worker run`'s options reach the node: persistent sessions, their idle time and memory bound."""

import pytest
from typer.testing import CliRunner

import rayfarm.worker
from rayfarm.cli.main import app


@pytest.fixture
def started(monkeypatch):
    calls = []
    monkeypatch.setattr(rayfarm.worker, "run_worker", lambda *args, **options: calls.append(options))
    return calls


def test_sessions_are_on_by_default_and_the_options_reach_the_node(started):
    runner = CliRunner()
    assert runner.invoke(app, ["worker", "run", "--server", "http://f:1", "--token", "t"]).exit_code == 0
    assert started[-1]["persistent_sessions"] is True and started[-1]["session_idle"] == 60.0
    assert started[-1]["session_memory"] is None  # 75 % of the machine's memory divided among the slots
    result = runner.invoke(app, ["worker", "run", "--server", "http://f:1", "--token", "t", "--no-persistent-sessions",
                                 "--session-idle", "5", "--session-memory", "1.5G"])
    assert result.exit_code == 0, result.output
    assert started[-1]["persistent_sessions"] is False and started[-1]["session_idle"] == 5.0
    assert started[-1]["session_memory"] == int(1.5 * 2**30)
    # the option's first name still works, with either spelling of the command
    for command in (["worker", "run"], ["worker"]):
        result = runner.invoke(app, [*command, "--server", "http://f:1", "--token", "t", "--no-persistent-blender"])
        assert result.exit_code == 0, result.output
        assert started[-1]["persistent_sessions"] is False
    # the first spelling, `rayfarm worker --server ...`, takes them too
    assert runner.invoke(app, ["worker", "--server", "http://f:1", "--token", "t", "--session-memory", "500M"]).exit_code == 0
    assert started[-1]["session_memory"] == 500 * 2**20


def test_a_memory_bound_that_is_no_size_is_refused(started):
    result = CliRunner().invoke(app, ["worker", "run", "--server", "http://f:1", "--token", "t", "--session-memory",
                                      "lots"])
    assert result.exit_code == 2 and "--session-memory is a size like 8G" in result.output
    assert started == []
