"""The statements every study request runs, compiled once per dialect and run on the driver's cursor.

SQLAlchemy's execution of a Core statement (finding its compiled form by cache key, setting up an
execution context, converting each positional parameter, building the result) costs about twice what
SQLite takes to answer the study page's statements. A `Prepared` statement does that work once per
dialect: it keeps the SQL, the order of its parameters and its types' conversions of the values going in
and coming out, so that each call converts the values and hands them to the driver.

What stays as SQLAlchemy does it: the statement is written and compiled by SQLAlchemy; values go through
the same type conversions; it runs on the connection of the session's transaction; the engine's
`before_cursor_execute` and `after_cursor_execute` listeners hear it (the read-only guard of
`configure_engine` among them); and a driver error arrives as SQLAlchemy's `DBAPIError` subclass, which
`write_transaction` turns into NotSaved. What it refuses, when first compiled: parameters that expand
(`IN` lists) or are rendered into the SQL, and column defaults to fill in (an INSERT or UPDATE must name
every value).

Reads of millions of rows (the check, the exports) are streamed from the driver's cursor the same way
(`stream_on_driver`, `driver_runs`), in batches, the rows as the driver gives them.
"""

from __future__ import annotations

import itertools
from collections import namedtuple
from collections.abc import Callable, Generator, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import Connection
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.dml import UpdateBase
from sqlalchemy.sql.elements import ClauseElement
from sqlalchemy.sql.selectable import Select

Processor = Callable[[Any], Any] | None
Statement = Select[*tuple[Any, ...]] | UpdateBase


@dataclass(frozen=True)
class _Compiled:
    sql: str
    positional: tuple[str, ...] | None  # the parameters' names in order (SQLite's "?"), or None (named)
    # The values bound in the statement itself (literals), already converted by their types: the same every call.
    fixed: dict[str, Any]
    required: frozenset[str]  # the values each call gives
    conversions: Mapping[str, Callable[[Any], Any]]  # parameters whose type converts the value, by name
    row: type[Any] | None  # the named tuple of a row (None: no rows come back)


class Prepared:
    """A SELECT, or an INSERT/UPDATE (with or without RETURNING), run on the driver's cursor (see the module)."""

    def __init__(self, statement: Statement) -> None:
        self.statement = statement
        self._compiled: dict[str, _Compiled] = {}
        self._converters: dict[tuple[str, tuple[Any, ...]], tuple[Processor, ...]] = {}

    def rows(self, connection: Connection, values: Mapping[str, Any]) -> list[Any]:
        """Run the statement with these values in the connection's transaction; its rows, as named tuples."""
        return self._execute(connection, values)[0]

    def first(self, connection: Connection, values: Mapping[str, Any]) -> Any | None:
        """The first row, or None."""
        found = self._execute(connection, values)[0]
        return found[0] if found else None

    def one(self, connection: Connection, values: Mapping[str, Any]) -> Any:
        """The one row the statement returns; an error when it returns none or more."""
        found = self._execute(connection, values)[0]
        if len(found) != 1:
            raise LookupError(f"one row expected, {len(found)} returned")
        return found[0]

    def rowcount(self, connection: Connection, values: Mapping[str, Any]) -> int:
        """Run the statement; how many rows it changed, as the driver counts them."""
        return self._execute(connection, values)[1]

    def _compile(self, dialect: Dialect) -> _Compiled:
        compiled = self.statement.compile(dialect=dialect)
        binds = list(compiled.binds.values())
        if (compiled.literal_execute_params or compiled.post_compile_params or compiled.escaped_bind_names
                or any(bind.expanding for bind in binds)):
            raise TypeError("a prepared statement cannot have parameters that expand, are rendered into the SQL "
                            "or need escaping")
        if compiled.insert_prefetch or compiled.update_prefetch:
            raise TypeError("a prepared statement fills in no column defaults: give every column's value")
        names = {bind: compiled.bind_names[bind] for bind in binds}
        conversions = {}
        for bind in binds:
            converter = bind.type.dialect_impl(dialect).bind_processor(dialect)
            if converter is not None:
                conversions[names[bind]] = converter
        # A SELECT's columns, or the RETURNING columns of an INSERT or UPDATE (none without RETURNING).
        keys = [str(column.key) for column in self.statement.exported_columns]
        positional = tuple(compiled.positiontup) if compiled.positional and compiled.positiontup else None
        fixed = {}
        for bind in binds:
            if not bind.required:
                name = names[bind]
                fixed[name] = conversions[name](bind.effective_value) if name in conversions else bind.effective_value
        return _Compiled(
            sql=str(compiled),
            positional=positional,
            fixed=fixed,
            required=frozenset(names[bind] for bind in binds if bind.required),
            conversions=conversions,
            row=namedtuple("Row", keys, rename=True) if keys else None,
        )

    def _row_converters(self, dialect: Dialect, description: Sequence[Any]) -> tuple[Processor, ...]:
        # As SQLAlchemy does, by the type of each column and the type code the driver reports for it.
        key = (dialect.name, tuple(column[1] for column in description))
        converters = self._converters.get(key)
        if converters is None:
            converters = self._converters[key] = tuple(
                column.type.dialect_impl(dialect).result_processor(dialect, described[1])
                for column, described in zip(self.statement.exported_columns, description, strict=True))
        return converters

    def _execute(self, connection: Connection, values: Mapping[str, Any]) -> tuple[list[Any], int]:
        dialect = connection.dialect
        compiled = self._compiled.get(dialect.name)
        if compiled is None:
            compiled = self._compiled[dialect.name] = self._compile(dialect)
        if not compiled.required <= values.keys():
            raise TypeError(f"no value given for {', '.join(sorted(compiled.required - values.keys()))}")
        # Each value converted once, however often the statement names it (the study page's counts name the
        # day's start four times); a value given for a name the statement also binds itself wins.
        given = dict(compiled.fixed)
        conversions = compiled.conversions
        for name, value in values.items():
            convert = conversions.get(name)
            given[name] = value if convert is None else convert(value)
        parameters: Any = given if compiled.positional is None else tuple(map(given.__getitem__, compiled.positional))
        fetched, count, description = run_on_driver(connection, compiled.sql, parameters,
                                                    fetch=compiled.row is not None)
        if not fetched:
            return [], count
        converters = self._row_converters(dialect, description)
        make = compiled.row._make  # type: ignore[union-attr]  # rows come back only with a row type
        if not any(converters):
            return [make(row) for row in fetched], count
        return [make([value if convert is None else convert(value)
                      for convert, value in zip(converters, row, strict=True)]) for row in fetched], count


def run_on_driver(connection: Connection, sql: str, parameters: Any = (), *,
                  fetch: bool = False) -> tuple[list[Any], int, Sequence[Any]]:
    """Run SQL on the driver's cursor of the connection, as SQLAlchemy would but without its execution context.

    The engine's cursor listeners hear it and a driver error is raised as SQLAlchemy's. Returns the rows
    fetched (with `fetch`), the driver's row count and the cursor's description.
    """
    driver = connection.connection.driver_connection
    assert driver is not None  # the connection of an open transaction
    dispatch = connection.dispatch
    dialect = connection.dialect
    error_class = dialect.loaded_dbapi.Error
    cursor = driver.cursor()
    try:
        for listener in dispatch.before_cursor_execute:
            listener(connection, cursor, sql, parameters, None, False)
        try:
            cursor.execute(sql, parameters)
            fetched = cursor.fetchall() if fetch and cursor.description else []
        except error_class as error:
            raise DBAPIError.instance(sql, parameters, error, error_class, dialect=dialect) from error
        for listener in dispatch.after_cursor_execute:
            listener(connection, cursor, sql, parameters, None, False)
        return fetched, cursor.rowcount, cursor.description or ()
    finally:
        cursor.close()


def stream_on_driver(connection: Connection, sql: str, parameters: Any = (), *, batch: int,
                     cursor_name: str | None = None) -> Iterator[Sequence[Any]]:
    """Run a query on the driver's cursor of the connection and give its rows `batch` at a time, as the driver
    returns them: `run_on_driver` for a result too large to hold.

    `cursor_name` names a server-side cursor (PostgreSQL), which the server fills as the rows are read, in
    the connection's transaction. The engine's cursor listeners hear it; a driver error is raised as
    SQLAlchemy's.
    """
    driver = connection.connection.driver_connection
    assert driver is not None  # the connection of an open transaction
    dispatch = connection.dispatch
    dialect = connection.dialect
    error_class = dialect.loaded_dbapi.Error
    cursor = driver.cursor() if cursor_name is None else driver.cursor(name=cursor_name)
    try:
        for listener in dispatch.before_cursor_execute:
            listener(connection, cursor, sql, parameters, None, False)
        try:
            cursor.execute(sql, parameters)
            while rows := cursor.fetchmany(batch):
                yield rows
        except error_class as error:
            raise DBAPIError.instance(sql, parameters, error, error_class, dialect=dialect) from error
        for listener in dispatch.after_cursor_execute:
            listener(connection, cursor, sql, parameters, None, False)
    finally:
        cursor.close()


_CURSOR_NAMES = itertools.count()


def driver_runs(connection: Connection, query: ClauseElement, *, batch: int,
                server_side: bool = True) -> Callable[[Mapping[str, Any]], Generator[Sequence[Any], None, None]]:
    """Runs of a query given the values of its bound parameters, each giving the driver's own rows `batch` at a
    time (`stream_on_driver`): for a query whose columns need no conversion (integers and text), or that the
    caller decodes itself.

    A million rows read this way take about half the time of SQLAlchemy's result rows. The query is compiled
    once for all its runs. On PostgreSQL each run reads through a server-side cursor of its own (named, so
    that two can be read side by side), unless `server_side` is False (a query of a row or two, which would
    pay the cursor's round trips).
    """
    compiled = cast(SQLCompiler, query.compile(dialect=connection.dialect))
    named = server_side and connection.dialect.name == "postgresql"
    positions = compiled.positiontup

    def run(values: Mapping[str, Any]) -> Generator[Sequence[Any], None, None]:
        params = compiled.construct_params(dict(values))
        yield from stream_on_driver(connection, compiled.string,
                                    params if positions is None else [params[name] for name in positions],
                                    batch=batch, cursor_name=f"flashapp_rows_{next(_CURSOR_NAMES)}" if named else None)

    return run
