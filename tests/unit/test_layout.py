"""The layout's rules (docs/design.md, "Shape"): small modules, packages that import one way, SQL only in store/.

Imports are read from the source (ast), those inside functions included: a cycle hidden in a function
is still a cycle.
"""

import ast
import re
from collections import defaultdict
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "rayfarm"
MAX_LINES = 400
DATABASE_LIBRARIES = {"sqlalchemy", "psycopg", "sqlite3", "alembic"}


def modules() -> list[Path]:
    return [p for p in sorted(PACKAGE.rglob("*.py")) if "migrations" not in p.parts]


def unit(path: Path) -> str:
    """The package a module belongs to, right under rayfarm/ (``server``, ``store``...; ``config`` for config.py)."""
    return path.relative_to(PACKAGE).parts[0].removesuffix(".py")


def imported(path: Path) -> set[str]:
    """Every module name the file imports (anywhere in it), absolute."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def package_graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = defaultdict(set)
    for path in modules():
        here = unit(path)
        for name in imported(path):
            parts = name.split(".")
            if parts[0] != "rayfarm" or len(parts) < 2 or parts[1] == here:
                continue
            if (PACKAGE / parts[1]).is_dir() or (PACKAGE / f"{parts[1]}.py").is_file():
                graph[here].add(parts[1])
    return graph


def test_no_module_is_longer_than_400_lines():
    long = {str(p.relative_to(PACKAGE)): n for p in modules() if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert not long, f"split these by job: {long}"


def test_packages_import_one_way():
    graph = package_graph()
    cycles = []

    def visit(node: str, path: list[str]) -> None:
        for nxt in sorted(graph.get(node, ())):
            if nxt in path:
                cycles.append(path[path.index(nxt):] + [nxt])
            elif len(path) < 12:
                visit(nxt, path + [nxt])

    for start in sorted(graph):
        visit(start, [start])
    assert not cycles, f"package import cycles: {sorted({' -> '.join(c) for c in cycles})}"


def test_only_the_store_speaks_to_the_database():
    offenders = {str(p.relative_to(PACKAGE)): sorted(n for n in imported(p) if n.split(".")[0] in DATABASE_LIBRARIES)
                 for p in modules() if unit(p) != "store"}
    assert not {k: v for k, v in offenders.items() if v}


def test_the_layers_are_as_design_md_says():
    """protocol <- domain <- store <- scheduler <- server <- web <- app; the pure layers import no I/O layer,
    and the node, the SDK and the official-package stand-ins import nothing of the server's."""
    graph = package_graph()
    assert graph.get("protocol", set()) == set()
    assert graph.get("domain", set()) <= {"protocol"}
    assert graph.get("files", set()) <= {"protocol", "domain"}
    assert graph.get("store", set()) <= {"protocol", "domain", "files", "config"}
    assert graph.get("scheduler", set()) <= {"protocol", "domain", "store"}
    assert "app" not in graph.get("server", set()) | graph.get("web", set())
    for client in ("worker", "sdk", "compat"):
        assert not graph.get(client, set()) & {"server", "store", "scheduler", "web", "app", "cli"}, client


def test_every_invariant_of_design_md_points_at_tests_that_exist():
    """Each numbered invariant names at least one test or benchmark file, and every file (and test) it names exists."""
    root = PACKAGE.parent
    text = (root / "docs" / "design.md").read_text()
    section = text.split("## Invariants and the tests that hold them", 1)[1].split("\n## ", 1)[0]
    invariants = re.split(r"\n(?=\d+\. \*\*)", section)[1:]
    assert len(invariants) >= 27
    for invariant in invariants:
        number = invariant.split(".", 1)[0]
        named = re.findall(r"((?:tests|bench)/[\w/]+\.py)(?:::(\w+))?", invariant)
        assert named, f"invariant {number} names no test"
        for path, test in named:
            assert (root / path).is_file(), f"invariant {number} names {path}, which does not exist"
            if test:
                assert test in (root / path).read_text(), f"invariant {number} names {path}::{test}, not there"
