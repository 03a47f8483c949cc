"""What the tests and the benchmarks (bench/) share: one home per concern.

- ``databases``: SQLite or PostgreSQL (RAYFARM_TEST_DATABASE_URL), databases made and dropped.
- ``processes``: real `rayfarm server`, `rayfarm worker` and `rayfarm up` processes; waiting, stopping.
- ``farms``: an in-process farm for store-level tests, a real farm per test module, users made directly.
- ``taskjson``: the one task.json factory (Blender and command tasks).
- ``tasks``: submit, query and wait through the SDK; what a failed wait shows.
- ``renders``: command renders that keep a record of what the nodes ran.
- ``node_logs``: the results the nodes logged as accepted or not.
- ``signed``: hand-signed Renderbus requests (``Raw``) and the paths they call.
- ``snapshots``: every row and every file, to show that a refused request changed nothing.
- ``fake_node``: a render node speaking the native API by hand (sync for tests, asyncio for benchmarks).
- ``fake_farm``: a fake of the farm's worker API, for the real worker agent.
- ``proxy``: a TCP proxy that can be cut.
- ``blender``: tiny Blender test scenes.
- ``routes``: the security matrix's inventory of the app's routes; ``fuzz``: hypothesis strategies for them.
"""

import os

FULL = os.environ.get("RAYFARM_FULL") == "1"  # the full-size variants of the fault, load and fuzz tests
