"""The server SIGKILLed and restarted (same data dir, port and database) while 20 clients work and nodes render.

20 client threads (4 users, `rayfarm.sdk`) create, submit, re-prioritise, stop and start tasks; three
render nodes run their chunks. The server is SIGKILLed and restarted repeatedly (CI: 2 times,
`RAYFARM_FULL=1`: 5). Each client keeps a ledger of the calls the farm answered with 200, and works on a
task only while holding that task's lock; so after every restart the test can take the locks and
demand that the farm shows exactly what was acknowledged (task exists, submitted with its frames,
priority, stopped or not). At the end every stopped task is started, and every task must finish with
every frame rendered and stored, no chunk accepted twice, and the very same node processes — they
reconnect on their own, without registering again.
"""

from __future__ import annotations

import random
import signal
import threading
import time
from dataclasses import dataclass, field

from rayfarm.sdk import RayfarmAPI
from rayfarm.sdk.errors import RayfarmAPIError, RayfarmConnectionError
from tests.support import FULL, taskjson
from tests.support.farms import make_users
from tests.support.node_logs import accepted_per_chunk, accepted_results, not_accepted, wait_reported
from tests.support.processes import UNCONFINED_COMMANDS, stop_process, wait_for
from tests.support.renders import Chunks
from tests.support.tasks import frames_of, report

RESTARTS = 5 if FULL else 2
CLIENTS = 20
USERS = 4
MAX_TASKS = 6 if FULL else 1  # tasks per client; after that the client keeps operating on them
FRAMES = 2  # per task
UP_SECONDS = 2.5  # between two kills
LEVELS = (10, 40, 50, 60, 90)
RETRY_CODES = {429, 500, 502, 503, 504}  # not an answer about the call: ask again


@dataclass
class TaskLog:
    task_id: int
    lock: threading.Lock = field(default_factory=threading.Lock)
    submitted: bool = False
    level: int = 50
    stopped: bool = False
    calls: list = field(default_factory=list)  # (operation, "ok" | refusal code)


@dataclass
class Ledger:
    user: int
    create_attempts: int = 0
    unanswered: int = 0  # calls that got no answer (the server was down or died under them)
    tasks: list[TaskLog] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def answer(call, deadline: float, ledger: Ledger | None = None):
    """Call until the farm answers: (True, data) for 200, (False, code) for a refusal."""
    while True:
        try:
            return True, call()
        except RayfarmAPIError as exc:
            if exc.code not in RETRY_CODES:
                return False, exc.code
        except RayfarmConnectionError:
            if ledger is not None:
                ledger.unanswered += 1
        if time.monotonic() > deadline:
            raise AssertionError("the farm did not answer for too long")
        time.sleep(0.2)


def client(api: RayfarmAPI, ledger: Ledger, seed: int, stop: threading.Event, command: list[str]) -> None:
    rng = random.Random(seed)
    deadline = time.monotonic() + 300
    task_json = taskjson.command(command, f"1-{FRAMES}[1]")

    def operate(log: TaskLog, operation: str) -> None:
        if operation == "priority":
            level = rng.choice(LEVELS)
            ok, result = answer(lambda: api.task.update_priority(log.task_id, level), deadline, ledger)
            if ok:
                log.level = level
        elif operation == "stop":
            ok, result = answer(lambda: api.task.stop_task([log.task_id]), deadline, ledger)
            if ok:
                log.stopped = True
        else:
            ok, result = answer(lambda: api.task.start_task([log.task_id]), deadline, ledger)
            if ok:
                log.stopped = False
        log.calls.append((operation, "ok" if ok else result))
        if not ok and result != 718:  # 718: not in a state for it (e.g. finished) -- a clean refusal
            ledger.problems.append(f"task {log.task_id}: {operation} refused with {result}")

    try:
        while not stop.is_set():
            if len(ledger.tasks) < MAX_TASKS:
                while True:  # createTask is not idempotent: an unanswered one may or may not have made a task
                    ledger.create_attempts += 1
                    try:
                        task_id = api.task.create_task(task_user_level=50)["taskIdList"][0]
                        break
                    except RayfarmConnectionError:
                        ledger.unanswered += 1
                        time.sleep(0.2)
                log = TaskLog(task_id)
                with log.lock:
                    ledger.tasks.append(log)
                    ok, result = answer(lambda t=task_id: api.task.upload_task_json(t, task_json), deadline, ledger)
                    assert ok, f"task.json of task {task_id} refused: {result}"
                    ok, result = answer(lambda t=task_id: api.task.submit_task(t), deadline, ledger)
                    assert ok, f"submit of task {task_id} refused: {result}"
                    log.submitted = True
                    log.calls.append(("submit", "ok"))
            log = rng.choice(ledger.tasks)
            with log.lock:
                operate(log, rng.choice(("priority", "stop", "start", "stop")))
            time.sleep(rng.uniform(0.05, 0.25))
    except Exception as exc:  # reported by the test, not lost in a thread
        ledger.problems.append(f"client {seed} crashed: {exc!r}")


def check_acknowledged(api: RayfarmAPI, ledger: Ledger, when: str) -> list[str]:
    """Hold the locks of the user's tasks and compare the farm with every acknowledged call."""
    logs = list(ledger.tasks)
    wrong = []
    for log in logs:
        log.lock.acquire()
    try:
        if not logs:
            return wrong
        ok, items = answer(lambda: api.query.task_info([log.task_id for log in logs])["items"], time.monotonic() + 60)
        assert ok, items
        found = {item["id"]: item for item in items}
        for log in logs:
            item = found.get(log.task_id)
            if item is None:
                wrong.append(f"{when}: task {log.task_id} (created, answered 200) is missing")
                continue
            if log.submitted and item["totalFrames"] != FRAMES:
                wrong.append(f"{when}: task {log.task_id} was submitted but has {item['totalFrames']} frames")
            if item["taskUserLevel"] != log.level:
                wrong.append(f"{when}: task {log.task_id} has level {item['taskUserLevel']}, acknowledged "
                             f"{log.level} ({log.calls})")
            if log.stopped != (item["taskStatus"] == 10):
                wrong.append(f"{when}: task {log.task_id} is in status {item['taskStatus']} but its acknowledged "
                             f"calls say {'stopped' if log.stopped else 'not stopped'} ({log.calls})")
    finally:
        for log in logs:
            log.lock.release()
    return wrong


def test_server_sigkill_loses_nothing_acknowledged_and_nodes_reconnect(start_farm, tmp_path):
    farm = start_farm()
    names = [f"client{n}" for n in range(USERS)]
    users = make_users(farm, *names, commands=tuple(names))
    nodes = [farm.start_worker(f"node{n}", "--slots", "2", UNCONFINED_COMMANDS, wait=False) for n in range(3)]
    chunks = Chunks(tmp_path / "chunks", seconds=0.05)
    # retries=0: every call the farm leaves unanswered reaches the ledger (the clients retry themselves)
    apis = [RayfarmAPI(users[n % USERS].access_id, users[n % USERS].access_key, domain=farm.domain, retries=0)
            for n in range(CLIENTS)]
    ledgers = [Ledger(n % USERS) for n in range(CLIENTS)]
    stop = threading.Event()
    threads = [threading.Thread(target=client, args=(apis[n], ledgers[n], n, stop, chunks.command()), daemon=True)
               for n in range(CLIENTS)]
    for thread in threads:
        thread.start()
    for node in nodes:
        node.wait_registered()

    wrong: list[str] = []
    for restart in range(RESTARTS):
        time.sleep(UP_SECONDS)
        stop_process(farm.process, signal.SIGKILL)
        time.sleep(0.5)
        farm.start()
        for n, ledger in enumerate(ledgers):
            wrong += check_acknowledged(apis[n], ledger, f"after restart {restart + 1}")
    time.sleep(1.0)
    stop.set()
    for thread in threads:
        thread.join(120)
    assert not any(thread.is_alive() for thread in threads)
    problems = [p for ledger in ledgers for p in ledger.problems]
    assert not problems, problems
    for n, ledger in enumerate(ledgers):
        wrong += check_acknowledged(apis[n], ledger, "at the end")
    assert not wrong, wrong
    calls = sum(len(log.calls) for ledger in ledgers for log in ledger.tasks)
    unanswered = sum(ledger.unanswered for ledger in ledgers)
    print(f"{calls} acknowledged calls, {unanswered} unanswered attempts, "
          f"{sum(len(ledger.tasks) for ledger in ledgers)} tasks")
    assert unanswered > 0  # the kills did land in the middle of the clients' work

    # every acknowledged task is listed; at most the unanswered creates added more
    for user_index in range(USERS):
        mine = [ledger for ledger in ledgers if ledger.user == user_index]
        listed = {item["id"] for item in apis[user_index].query.iter_tasks(page_size=1000)}
        acknowledged = {log.task_id for ledger in mine for log in ledger.tasks}
        assert acknowledged <= listed
        assert len(listed) <= sum(ledger.create_attempts for ledger in mine)

    # start what is stopped; then every task finishes with every frame rendered and stored
    all_logs = [(apis[n], log) for n, ledger in enumerate(ledgers) for log in ledger.tasks]
    for api, log in all_logs:
        if log.stopped:
            api.task.start_task([log.task_id])
    pending = {log.task_id: api for api, log in all_logs}

    def all_done() -> bool:
        for task_id, api in list(pending.items()):
            if api.query.task_info([task_id])["items"][0]["taskStatus"] == 25:
                del pending[task_id]
        return not pending

    wait_for(all_done, 180, "every task to finish", interval=0.5,
             details=lambda: report(farm, apis[0], [t for t, a in pending.items() if a is apis[0]][:3]))
    for api, log in all_logs:
        frames = frames_of(api, log.task_id)
        assert sorted(frames) == [str(n) for n in range(1, FRAMES + 1)]
        assert all(f["frameStatus"] == 4 for f in frames.values()), frames
        outputs = {entry["fileName"] for entry in api.files.output_files(log.task_id)}
        assert outputs == {f"f_{n}.txt" for n in range(1, FRAMES + 1)}, (log.task_id, outputs)

    # never two accepted results for one chunk; a chunk without an accepted line is one whose "accepted"
    # answer died with the server, and its node then heard "not accepted" for the retried call
    every_chunk = {(log.task_id, str(n)) for _, log in all_logs for n in range(1, FRAMES + 1)}
    wait_reported(nodes, every_chunk)
    accepted = accepted_per_chunk(nodes)
    assert max(accepted.values()) == 1, {k: n for k, n in accepted.items() if n > 1}
    refused = not_accepted(nodes)
    unaccounted = [chunk for chunk in every_chunk - set(accepted) if not refused[chunk]]
    assert not unaccounted, unaccounted

    # the nodes reconnected on their own: same processes, one registration each, and they did the work
    for node in nodes:
        assert node.alive(), node.log()[-3000:]
        assert node.log().count("registered as") == 1, node.log()[-3000:]
    assert len({name for (_, _, name) in accepted_results(nodes)}) >= 2
    for api in apis:
        api.close()
