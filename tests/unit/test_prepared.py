"""Statements run on the driver's cursor give what SQLAlchemy's execution gives, and refuse what they cannot do."""

from __future__ import annotations

import enum
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import (
    Boolean,
    Column,
    Float,
    Integer,
    MetaData,
    String,
    Table,
    bindparam,
    event,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError

from flashapp.database import ReadOnlyTransactionError, may_write, write_transaction
from flashapp.models import IntEnumColumn, UTCDateTime
from flashapp.prepared import Prepared

NOW = datetime(2026, 3, 1, 9, 30, 15, 250000, tzinfo=timezone.utc)


class Kind(enum.IntEnum):
    PLAIN = 1
    SPECIAL = 2


metadata = MetaData()
things = Table(
    "prepared_things", metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(40), nullable=False, unique=True),
    Column("kind", IntEnumColumn(Kind), nullable=False),
    Column("at", UTCDateTime, nullable=False),
    Column("score", Float),
    Column("flag", Boolean, nullable=False),
    Column("note", String(40), default="made here"),  # a Python-side default
)
GIVEN = ("id", "name", "kind", "at", "score", "flag", "note")


def _given() -> dict[str, object]:
    return {name: bindparam(name, type_=things.c[name].type) for name in GIVEN}


@pytest.fixture
def connection(session):
    things.create(session.get_bind())
    session.execute(insert(things), [
        {"id": 1, "name": "first", "kind": Kind.PLAIN, "at": NOW - timedelta(days=2), "score": 1.5, "flag": True},
        {"id": 2, "name": "second", "kind": Kind.SPECIAL, "at": NOW, "score": None, "flag": False},
        {"id": 3, "name": "third", "kind": Kind.SPECIAL, "at": NOW + timedelta(hours=3), "score": 0.25, "flag": True},
    ])
    session.commit()
    yield session.connection()
    session.rollback()
    things.drop(session.get_bind())


def test_rows_are_those_sqlalchemy_gives_with_the_same_types(connection):
    # "since" is used twice: SQLite's positional parameters repeat it, PostgreSQL's named ones do not.
    statement = (select(things.c.id, things.c.name, things.c.kind, things.c.at, things.c.score, things.c.flag)
                 .where(things.c.at >= bindparam("since", type_=UTCDateTime),
                        or_(things.c.kind != bindparam("skip", type_=IntEnumColumn(Kind)),
                            things.c.at > bindparam("since", type_=UTCDateTime)),
                        things.c.id > 0)  # a literal, bound by SQLAlchemy
                 .order_by(things.c.id))
    values = {"since": NOW - timedelta(hours=1), "skip": Kind.SPECIAL}
    prepared = Prepared(statement)

    rows = prepared.rows(connection, values)

    assert [tuple(row) for row in rows] == [tuple(row) for row in connection.execute(statement, values)]
    assert [row.name for row in rows] == ["second", "third"]
    third = rows[1]
    assert third.at == NOW + timedelta(hours=3) and third.at.tzinfo is timezone.utc
    assert type(third.kind) is Kind and third.kind is Kind.SPECIAL
    assert third.flag is True and third.score == 0.25
    # Run again (compiled once): other values, other rows.
    again = prepared.rows(connection, {"since": NOW - timedelta(days=3), "skip": Kind.PLAIN})
    assert [row.id for row in again] == [1, 2, 3]
    assert prepared.first(connection, {"since": NOW + timedelta(days=1), "skip": Kind.PLAIN}) is None


def test_literals_whose_types_convert_them_are_bound_as_sqlalchemy_binds_them(connection):
    # Converted once, when the statement is first compiled, and the same on every run: the time is given in
    # another zone, and only its conversion to UTC makes it compare as the stored times do.
    later = (NOW + timedelta(hours=2, microseconds=1)).astimezone(timezone(timedelta(hours=5)))
    statement = select(things.c.id).where(things.c.at < later,
                                          things.c.kind == Kind.SPECIAL)
    prepared = Prepared(statement)
    expected = [tuple(row) for row in connection.execute(statement)]
    assert expected == [(2,)]
    assert [tuple(row) for row in prepared.rows(connection, {})] == expected
    assert [tuple(row) for row in prepared.rows(connection, {})] == expected


def test_one_row_or_an_error(connection):
    prepared = Prepared(select(things.c.name).where(things.c.kind == bindparam("kind", type_=IntEnumColumn(Kind))))
    assert prepared.one(connection, {"kind": Kind.PLAIN}).name == "first"
    with pytest.raises(LookupError, match="one row expected, 2 returned"):
        prepared.one(connection, {"kind": Kind.SPECIAL})


def test_an_insert_returns_its_row_unless_there_and_an_update_counts_its_rows(connection):
    dialect = connection.dialect.name
    make = postgresql_insert if dialect == "postgresql" else sqlite_insert
    add = Prepared(make(things).values(_given()).on_conflict_do_nothing(index_elements=("name",))
                   .returning(things.c.id, things.c.at))
    new = {"id": 4, "name": "fourth", "kind": Kind.PLAIN, "at": NOW, "score": 2.0, "flag": False, "note": "given"}

    added = add.first(connection, new)

    assert (added.id, added.at) == (4, NOW)
    assert add.first(connection, {**new, "id": 5}) is None  # the same name: nothing added
    stored = connection.execute(select(things).where(things.c.id == 4)).one()
    assert (stored.kind, stored.at, stored.note) == (Kind.PLAIN, NOW, "given")
    # Stored as SQLAlchemy stores the same values (row 2 has the same time and kind): on SQLite, the same text.
    raw = connection.exec_driver_sql("SELECT id, at, kind FROM prepared_things WHERE id IN (2, 4) ORDER BY id").all()
    assert raw[0][1] == raw[1][1] and type(raw[0][2]) is type(raw[1][2]) is int

    rename = Prepared(update(things).values(name=bindparam("new_name"))
                      .where(things.c.id == bindparam("of"), things.c.at == bindparam("was", type_=UTCDateTime)))
    assert rename.rowcount(connection, {"new_name": "renamed", "of": 4, "was": NOW}) == 1
    assert rename.rowcount(connection, {"new_name": "again", "of": 4, "was": NOW - timedelta(seconds=1)}) == 0
    assert connection.execute(select(things.c.name).where(things.c.id == 4)).scalar_one() == "renamed"


def test_what_it_cannot_do_is_refused_before_anything_runs(connection):
    heard: list[str] = []

    def listen(_connection, _cursor, sql, *_args):
        heard.append(sql)

    event.listen(connection.engine, "before_cursor_execute", listen)
    try:
        listed = Prepared(select(things.c.id).where(things.c.id.in_(bindparam("ids", expanding=True))))
        with pytest.raises(TypeError, match="expand"):
            listed.rows(connection, {"ids": [1, 2]})
        defaulted = Prepared(insert(things).values({name: bindparam(name) for name in GIVEN if name != "note"}))
        with pytest.raises(TypeError, match="defaults"):
            defaulted.rowcount(connection, {"id": 9, "name": "x", "kind": Kind.PLAIN, "at": NOW, "score": 1.0,
                                            "flag": True})
        named = Prepared(select(things.c.id).where(things.c.name == bindparam("name"),
                                                   things.c.kind == bindparam("kind", type_=IntEnumColumn(Kind))))
        with pytest.raises(TypeError, match="no value given for kind"):
            named.rows(connection, {"name": "first"})
        assert heard == []
    finally:
        event.remove(connection.engine, "before_cursor_execute", listen)


def test_a_driver_error_is_sqlalchemys_and_nothing_is_saved(session, connection):
    add = Prepared(insert(things).values(_given()))
    twin = {"id": 1, "name": "first again", "kind": Kind.PLAIN, "at": NOW, "score": None, "flag": True,
            "note": "x"}
    session.commit()

    def add_both():
        with write_transaction(session):
            add.rowcount(session.connection(), {**twin, "id": 7, "name": "seventh"})
            add.rowcount(session.connection(), twin)  # the id is taken

    with pytest.raises(IntegrityError):
        add_both()
    assert session.execute(select(things.c.id).order_by(things.c.id)).scalars().all() == [1, 2, 3]


def test_listeners_hear_it_and_a_write_in_a_read_transaction_is_refused(session, connection):
    heard: list[str] = []

    def listen(_connection, _cursor, sql, *_args):
        heard.append(sql)

    event.listen(session.get_bind(), "before_cursor_execute", listen)
    try:
        Prepared(select(things.c.id)).rows(session.connection(), {})
        assert heard and heard[-1].startswith("SELECT prepared_things.id")
        if session.get_bind().dialect.name != "sqlite":
            return  # the read-only guard is SQLite's
        session.commit()
        token = may_write.set(False)
        try:
            with pytest.raises(ReadOnlyTransactionError):
                Prepared(update(things).values(flag=bindparam("flag"))).rowcount(session.connection(), {"flag": False})
            session.rollback()
        finally:
            may_write.reset(token)
        assert session.execute(select(things.c.flag).where(things.c.id == 2)).scalar_one() is False
        assert session.execute(select(things.c.flag).where(things.c.id == 1)).scalar_one() is True
    finally:
        event.remove(session.get_bind(), "before_cursor_execute", listen)


@pytest.mark.parametrize("value", [
    NOW, datetime(1, 1, 1, tzinfo=timezone.utc), datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=timezone.utc),
    datetime(2026, 3, 29, 1, 30, tzinfo=timezone(timedelta(hours=2))),  # another offset: stored as UTC
    datetime(2026, 3, 1, 9, 30, tzinfo=timezone(timedelta(hours=-5, minutes=-30))),
])
def test_on_sqlite_a_datetime_is_stored_as_sqlalchemys_datetime_stores_it(value):
    # UTCDateTime writes SQLite's text in one step: it must be the text SQLAlchemy's DATETIME writes.
    from sqlalchemy import DateTime
    from sqlalchemy.dialects import sqlite

    dialect = sqlite.dialect()
    ours = UTCDateTime().dialect_impl(dialect).bind_processor(dialect)
    theirs = DateTime().dialect_impl(dialect).bind_processor(dialect)
    assert ours is not None and theirs is not None
    assert ours(value) == theirs(value.astimezone(timezone.utc).replace(tzinfo=None))
    assert ours(None) is None
    with pytest.raises(ValueError, match="naive"):
        ours(value.replace(tzinfo=None))
