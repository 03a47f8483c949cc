"""Render processes: their own process group, and they die with the node that started them."""

import os
import signal
import subprocess
import sys

import pytest

from rayfarm.worker import process
from tests.support.processes import alive, gone, wait_for

# A stand-in node: starts a long render from a worker thread (as the agent does), prints its pid, waits.
NODE = """
import sys, threading, time
from pathlib import Path
from rayfarm.worker import process

def lease():
    proc = process.start([sys.executable, "-c", "import time; time.sleep(300)"], Path("."))
    print(proc.pid, flush=True)
    proc.wait()

threading.Thread(target=lease, daemon=True).start()
time.sleep(60)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="prctl(PR_SET_PDEATHSIG) is Linux only")
def test_render_dies_when_its_node_is_killed(tmp_path):
    node = subprocess.Popen([sys.executable, "-c", NODE], stdout=subprocess.PIPE, text=True, cwd=tmp_path,
                            start_new_session=True)
    render = None
    try:
        render = int(node.stdout.readline())
        assert os.getpgid(render) == render  # its own group: a stop kills the whole render
        assert alive(render)
        node.send_signal(signal.SIGKILL)
        node.wait(60)
        # the render sleeps 300 s: gone within the wait, it died with its node (how soon: bench/stops.py)
        wait_for(lambda: gone(render), 60, "the render to die with its node", interval=0.02)
    finally:
        node.kill()
        node.wait()
        if render is not None and alive(render):
            os.killpg(render, signal.SIGKILL)  # do not leave it behind when the test fails


def test_signal_group_of_a_finished_group_is_false():
    proc = process.start([sys.executable, "-c", "pass"], os.getcwd())
    proc.wait()
    assert process.signal_group(proc.pid, signal.SIGTERM) is False


def test_tree_lists_a_process_and_its_descendants():
    script = ("import subprocess, sys, time\n"
              "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(30)'])\n"
              "print(child.pid, flush=True)\n"
              "time.sleep(30)\n")
    proc = process.start([sys.executable, "-c", script], os.getcwd())
    try:
        child = int(proc.stdout.readline())
        assert set(process.tree(proc.pid)) >= {proc.pid, child}
        assert os.getpid() not in process.tree(proc.pid)
    finally:
        process.signal_group(proc.pid, signal.SIGKILL)
        proc.wait()
