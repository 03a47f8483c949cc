"""The nodes' hot statements run on the database driver: compiled once per dialect, then bound and executed
on the connection's own driver connection, in the transaction the caller opened.

SQLAlchemy Core's work around each statement (cache lookup, execution context, parameter and result
processing) cost three to four times the SQL itself on SQLite for the small statements of a lease
(BENCHMARKS.md, "dispatch"). A :class:`Hot` statement is written in SQLAlchemy Core like every other one;
the first time it runs on a dialect it is compiled to that dialect's SQL text, with the order of its
parameters, its fixed values and the result processors of its columns. Every call after that binds the
caller's parameters and runs the text on the driver (sqlite3, psycopg). Rows are named tuples holding what
SQLAlchemy would have returned (the same result processors: JSON decoded, booleans as ``bool``), driver
errors are turned into SQLAlchemy's exceptions by the connection (``IntegrityError`` and so on, and a lost
PostgreSQL connection is invalidated as SQLAlchemy does), so callers see no difference but the time.
``tests/store/test_driver.py`` compares every hot statement's rows with SQLAlchemy's on both databases.
"""

from collections import namedtuple
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.engine import Dialect


@dataclass
class _Compiled:
    sql: str
    positional: tuple[str, ...] | None  # parameter names in order (qmark), None for named parameters
    fixed: dict[str, Any]  # values the statement carries itself (literals, defaults)
    bind: tuple[tuple[str, Callable], ...]  # (name, bind processor) where the type has one
    types: list  # the result columns' types
    row: type | None  # a named tuple of the result columns; None: no rows
    # the result columns' processors (None where a column has none; all None: None), known once the driver
    # described the columns (a processor may depend on the type the driver names, e.g. PostgreSQL's numbers)
    results: tuple[Callable | None, ...] | None = None
    described: bool = False


def _compile(statement, dialect: Dialect) -> _Compiled:
    compiled = statement.compile(dialect=dialect)
    if compiled.literal_execute_params or compiled.post_compile_params or compiled.escaped_bind_names:
        raise ValueError("a hot statement takes no expanding (IN list) or escaped parameters")
    fixed, bind = {}, []
    for parameter, name in compiled.bind_names.items():
        if not parameter.required:
            fixed[name] = parameter.effective_value
        elif name != parameter.key:  # the caller names it by its key
            raise ValueError(f"bind parameter {parameter.key!r} compiled as {name!r}: name hot parameters uniquely")
        processor = parameter.type.dialect_impl(dialect).bind_processor(dialect)
        if processor is not None:
            bind.append((name, processor))
    columns = list(statement.exported_columns)
    row = namedtuple("Row", [column.key or f"_{i}" for i, column in enumerate(columns)], rename=True) if columns else None
    positional = tuple(compiled.positiontup) if dialect.positional else None
    return _Compiled(compiled.string, positional, fixed, tuple(bind), [column.type for column in columns], row)


def _describe(compiled: _Compiled, dialect: Dialect, description) -> None:
    processors = tuple(kind.dialect_impl(dialect).result_processor(dialect, column[1])
                       for kind, column in zip(compiled.types, description, strict=True))
    compiled.results = processors if any(processors) else None
    compiled.described = True


class Hot:
    """A statement of the hot path: SQLAlchemy Core to write it, the driver to run it."""

    def __init__(self, statement):
        self.statement = statement
        self._by_dialect: dict[tuple, _Compiled] = {}

    def _compiled(self, dialect: Dialect) -> _Compiled:
        key = (dialect.name, dialect.driver, dialect.server_version_info)
        found = self._by_dialect.get(key)
        if found is None:
            found = self._by_dialect[key] = _compile(self.statement, dialect)
        return found

    def _run(self, conn: Connection, params: Mapping[str, Any] | None):
        compiled = self._compiled(conn.dialect)
        values = {**compiled.fixed, **params} if params else dict(compiled.fixed)
        for name, processor in compiled.bind:
            values[name] = processor(values[name])
        bound = tuple([values[name] for name in compiled.positional]) if compiled.positional is not None else values
        driver = conn.connection.dbapi_connection
        try:
            cursor = driver.execute(compiled.sql, bound)
        except Exception as exc:  # the connection wraps it (and invalidates a lost one) as for its own statements
            conn._handle_dbapi_exception(exc, compiled.sql, bound, None, None)
        if not compiled.described and compiled.row is not None:
            _describe(compiled, conn.dialect, cursor.description)
        return compiled, cursor

    @staticmethod
    def _rows(compiled: _Compiled, raw: list) -> list:
        make = compiled.row._make
        if compiled.results is None:
            return [make(values) for values in raw]
        processors = compiled.results
        return [make([value if p is None else p(value) for p, value in zip(processors, values, strict=True)]) for values in raw]

    def all(self, conn: Connection, params: Mapping[str, Any] | None = None) -> list:
        compiled, cursor = self._run(conn, params)
        return self._rows(compiled, cursor.fetchall())

    def first(self, conn: Connection, params: Mapping[str, Any] | None = None):
        """The first row, or None (the rest are not read: use it where at most one row comes back)."""
        compiled, cursor = self._run(conn, params)
        raw = cursor.fetchall()  # to the end: an UPDATE ... RETURNING left unfinished would hold SQLite's statement open
        return self._rows(compiled, raw[:1])[0] if raw else None

    def scalar(self, conn: Connection, params: Mapping[str, Any] | None = None):
        """The first column of the first row, or None."""
        row = self.first(conn, params)
        return None if row is None else row[0]

    def scalars(self, conn: Connection, params: Mapping[str, Any] | None = None) -> list:
        return [row[0] for row in self.all(conn, params)]

    def run(self, conn: Connection, params: Mapping[str, Any] | None = None) -> int:
        """A statement without rows; the count of rows it changed."""
        _, cursor = self._run(conn, params)
        return cursor.rowcount
