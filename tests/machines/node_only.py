"""Run the `rayfarm` command as a node machine's install has it: without the server's packages.

    python node_only.py worker run --server URL ...

The server's libraries (the `[server]` extra of pyproject.toml) cannot be imported here, as on a machine
that ran `pip install rayfarm`: a node that needed one would fail on it. The names are pyproject's, read
by tests/machines/test_node_install.py, which checks that they are exactly the `[server]` extra.
"""

import importlib.abc
import sys

SERVER_ONLY = ("starlette", "uvicorn", "httptools", "uvloop", "sqlalchemy", "alembic", "psycopg", "psycopg_binary",
               "PIL", "prometheus_client", "cryptography", "itsdangerous")


class ServerStackAbsent(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in SERVER_ONLY:
            raise ModuleNotFoundError(f"No module named {name!r} (a node install has no server packages)", name=name)
        return None


if __name__ == "__main__":
    sys.meta_path.insert(0, ServerStackAbsent())
    from rayfarm.cli import main

    sys.argv[0] = "rayfarm"
    main()
