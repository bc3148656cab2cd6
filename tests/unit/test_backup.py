"""SQLite backups: the thinning policy, online backups of a live WAL database, and a restore that refuses bad files.

Real SQLite files in a temporary folder; fixed UTC datetimes.
"""

from __future__ import annotations

import os
import random
import sqlite3
import subprocess
import sys
from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from flashapp.accounts import register_user
from flashapp.backup import (
    BackupError,
    backup_file_name,
    backup_sqlite,
    backup_time,
    backups_to_keep,
    daily_backup,
    restore_sqlite,
    sqlite_path,
    thin_backups,
)
from flashapp.database import make_engine
from flashapp.models import Base, User
from tests.helpers import FAST_HASH_METHOD

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)  # a Monday, ISO week 10


def at(day: date, hour: int = 3, minute: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute), tzinfo=timezone.utc)


def named(when: datetime, folder: Path = Path("b")) -> Path:
    return folder / backup_file_name(now=when)


# --- the thinning policy ---------------------------------------------------------------------

def four_hundred_daily_backups(folder: Path = Path("b")) -> list[tuple[Path, datetime]]:
    """One backup a day at 03:00 UTC, from 2025-01-27 to 2026-03-02 (400 days)."""
    return [(named(at(NOW.date() - timedelta(days=n)), folder), at(NOW.date() - timedelta(days=n)))
            for n in range(400)]


# Worked out by hand for NOW (Monday 2 March 2026):
KEPT_DAYS = [date(2026, 3, 2), date(2026, 3, 1), date(2026, 2, 28), date(2026, 2, 27), date(2026, 2, 26),
             date(2026, 2, 25), date(2026, 2, 24)]  # the last 7 days
KEPT_WEEKS = [date(2026, 2, 22), date(2026, 2, 15)]  # Sundays ending weeks 8 and 7 (weeks 10 and 9 above)
KEPT_MONTHS = [date(2026, 1, 31), date(2025, 12, 31), date(2025, 11, 30), date(2025, 10, 31), date(2025, 9, 30),
               date(2025, 8, 31), date(2025, 7, 31), date(2025, 6, 30), date(2025, 5, 31),
               date(2025, 4, 30)]  # last days of the months back to April 2025 (March, February above)


def test_four_hundred_daily_backups_thin_to_seven_days_four_weeks_twelve_months():
    keep = backups_to_keep(four_hundred_daily_backups(), now=NOW)
    expected = {named(at(day)) for day in KEPT_DAYS + KEPT_WEEKS + KEPT_MONTHS}
    assert len(expected) == 19
    assert keep == expected


def test_the_newest_backup_of_each_day_is_the_one_kept():
    day = NOW.date() - timedelta(days=1)
    backups = [(named(at(day, hour)), at(day, hour)) for hour in (1, 13, 22)]
    assert backups_to_keep(backups, now=NOW) == {named(at(day, 22))}


def test_a_week_boundary_follows_iso_weeks():
    sunday = datetime(2026, 3, 8, 23, 30, tzinfo=timezone.utc)  # still ISO week 10
    backups = [(named(at(d)), at(d)) for d in (date(2026, 3, 1), date(2026, 2, 22), date(2026, 2, 21),
                                               date(2026, 2, 14), date(2026, 2, 8))]
    # The last 7 days (2..8 March) hold none of them. Weeks 10..7: none in week 10, then 1 March
    # (week 9), 22 February (week 8; 21 February is older) and 14 February (week 7). 8 February is
    # in week 6 and older than February's newest (22 February): deleted.
    assert backups_to_keep(backups, now=sunday) == {named(at(date(2026, 3, 1))), named(at(date(2026, 2, 22))),
                                                    named(at(date(2026, 2, 14)))}


def test_the_days_are_those_of_the_time_zone_of_now():
    tokyo_now = NOW.astimezone(ZoneInfo("Asia/Tokyo"))  # 18:00 on 2 March in Tokyo
    evening = datetime(2026, 2, 25, 14, 0, tzinfo=timezone.utc)  # 23:00 on 25 February in Tokyo
    night = datetime(2026, 2, 25, 16, 0, tzinfo=timezone.utc)  # 01:00 on 26 February in Tokyo
    backups = [(named(evening), evening), (named(night), night), (named(NOW), NOW)]
    # In UTC both are on 25 February: only the later one is that day's newest.
    assert backups_to_keep(backups, now=NOW) == {named(NOW), named(night)}
    # In Tokyo they are on two days, each the newest of its day.
    assert backups_to_keep(backups, now=tokyo_now) == {named(NOW), named(night), named(evening)}


def test_the_newest_backup_is_kept_however_old_and_future_ones_are_kept():
    old = NOW - timedelta(days=800)
    older = NOW - timedelta(days=900)
    future = NOW + timedelta(days=3)
    keep = backups_to_keep([(named(old), old), (named(older), older), (named(future), future)], now=NOW)
    assert keep == {named(old), named(future)}
    assert backups_to_keep([], now=NOW) == set()


def test_backup_names_carry_their_utc_time():
    tokyo = datetime(2026, 3, 2, 18, 4, 5, tzinfo=ZoneInfo("Asia/Tokyo"))
    assert backup_file_name(now=tokyo) == "flashapp-20260302-090405.sqlite"
    assert backup_time(Path("x/flashapp-20260302-090405.sqlite")) == datetime(2026, 3, 2, 9, 4, 5,
                                                                             tzinfo=timezone.utc)
    for other in ("flashapp.sqlite", "flashapp-20261399-000000.sqlite", "flashapp-before-restore-20260302-090405"
                  ".sqlite", "flashapp-20260302-090405.sqlite.tmp"):
        assert backup_time(Path(other)) is None


def test_thin_backups_deletes_only_unkept_backups_of_its_own_name(tmp_path):
    folder = tmp_path / "backups"
    folder.mkdir()
    for path, _ in four_hundred_daily_backups(folder):
        path.write_bytes(b"x")
    others = ["notes.txt", "flashapp.sqlite", "flashapp-before-restore-20250101-000000.sqlite",
              "flashapp-20250101-000000.sqlite.tmp", "my-flashapp-20250101-000000.sqlite"]
    for name in others:
        (folder / name).write_bytes(b"y")
    deleted = thin_backups(folder, now=NOW)
    assert len(deleted) == 400 - 19
    expected = {backup_file_name(now=at(day)) for day in KEPT_DAYS + KEPT_WEEKS + KEPT_MONTHS}
    assert {p.name for p in folder.iterdir()} == expected | set(others)
    assert thin_backups(folder, now=NOW) == []


# --- databases -------------------------------------------------------------------------------

def make_database(path: Path, *usernames: str):
    """A flashapp SQLite database (schema, alembic_version, users) at `path`; returns its engine."""
    engine = make_engine(f"sqlite:///{path}")
    Base.metadata.create_all(engine)
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE alembic_version (version_num VARCHAR(32) PRIMARY KEY)"))
        connection.execute(text("INSERT INTO alembic_version VALUES ('test')"))
    add_users(engine, *usernames)
    return engine


def add_users(engine, *usernames: str) -> None:
    with Session(engine) as session:
        for name in usernames:
            register_user(session, username=name, password="long enough", password_method=FAST_HASH_METHOD)
        session.commit()


def usernames(path: Path) -> set[str]:
    engine = make_engine(f"sqlite:///{path}")
    try:
        with Session(engine) as session:
            return set(session.scalars(select(User.username)))
    finally:
        engine.dispose()


def raw_usernames(path: Path) -> set[str]:
    connection = sqlite3.connect(Path(path).as_uri() + "?mode=ro&immutable=1", uri=True)
    try:
        return {row[0] for row in connection.execute("SELECT username FROM user")}
    except sqlite3.OperationalError:
        return set()
    finally:
        connection.close()


def test_sqlite_path_reads_sqlalchemy_urls(tmp_path):
    assert sqlite_path(f"sqlite:///{tmp_path / 'a.sqlite'}") == tmp_path / "a.sqlite"
    assert sqlite_path("sqlite://") is None
    assert sqlite_path("postgresql+psycopg://u@h/db") is None


def test_a_backup_of_a_live_wal_database_holds_what_is_only_in_the_wal(tmp_path):
    database = tmp_path / "flashapp.sqlite"
    engine = make_database(database, "ada")
    server = sqlite3.connect(database, isolation_level=None)  # stays open: nothing checkpointed on close
    try:
        server.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        add_users(engine, "bob")
        assert Path(f"{database}-wal").stat().st_size > 0
        # A plain copy of the database file misses bob, who is only in the WAL.
        assert raw_usernames(database) == {"ada"}
        writer = sqlite3.connect(database, isolation_level=None)
        writer.execute("BEGIN IMMEDIATE")
        writer.execute("INSERT INTO user (username, password_hash, role, time_zone, created_at, session_token) "
                       "VALUES ('eve', 'x', 'student', 'UTC', '2026-03-02 09:00:00', 'tok')")
        try:
            target = backup_sqlite(database, tmp_path / "backups" / "b.sqlite")  # while a write is under way
        finally:
            writer.execute("ROLLBACK")
            writer.close()
    finally:
        server.close()
        engine.dispose()
    assert target == tmp_path / "backups" / "b.sqlite"
    assert raw_usernames(target) == {"ada", "bob"}  # committed data only
    assert target.read_bytes()[18:20] == b"\x01\x01"  # a self-contained file, not WAL mode
    assert sorted(p.name for p in target.parent.iterdir()) == ["b.sqlite"]  # no temporary files left
    assert target.stat().st_mode & 0o077 == 0


def test_a_backup_of_a_missing_database_fails_without_creating_one(tmp_path):
    with pytest.raises(BackupError, match="no database"):
        backup_sqlite(tmp_path / "missing.sqlite", tmp_path / "b.sqlite")
    assert sorted(tmp_path.iterdir()) == []


def test_daily_backup_makes_one_backup_a_day_and_thins(tmp_path):
    database = tmp_path / "flashapp.sqlite"
    make_database(database, "ada").dispose()
    folder = tmp_path / "backups"
    folder.mkdir()
    stale = folder / backup_file_name(now=NOW - timedelta(days=500))
    stale.write_bytes(b"x")
    first = daily_backup(database, folder, now=NOW)
    assert first == folder / "flashapp-20260302-090000.sqlite" and raw_usernames(first) == {"ada"}
    assert not stale.exists()
    assert daily_backup(database, folder, now=NOW + timedelta(hours=14)) is None  # still 2 March (UTC)
    second = daily_backup(database, folder, now=NOW + timedelta(hours=15))
    assert second == folder / "flashapp-20260303-000000.sqlite"
    assert sorted(folder.iterdir()) == [first, second]


# --- restore ---------------------------------------------------------------------------------

@pytest.fixture
def live(tmp_path):
    """A database with ada and bob, closed, and a good backup of it holding only ada."""
    database = tmp_path / "db" / "flashapp.sqlite"
    database.parent.mkdir()
    engine = make_database(database, "ada")
    backup = backup_sqlite(database, tmp_path / "backups" / "flashapp-20260302-090000.sqlite")
    add_users(engine, "bob")
    engine.dispose()
    return database, backup


def folder_state(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def damaged_copies(backup: Path, folder: Path) -> dict[str, Path]:
    data = backup.read_bytes()
    truncated = folder / "truncated.sqlite"
    truncated.write_bytes(data[: len(data) // 2])
    scrambled = bytearray(data)
    noise = random.Random(7)
    page = 4096
    for offset in range(2 * page, len(data) - page, page):  # every b-tree page after the schema
        scrambled[offset + 8: offset + page] = bytes(noise.randrange(256) for _ in range(page - 8))
    corrupted = folder / "corrupted.sqlite"
    corrupted.write_bytes(bytes(scrambled))
    text_file = folder / "notes.sqlite"
    text_file.write_text("not a database at all\n")
    foreign = folder / "foreign.sqlite"
    connection = sqlite3.connect(foreign)
    connection.execute("CREATE TABLE user (id INTEGER PRIMARY KEY, name TEXT)")
    connection.commit()
    connection.close()
    return {"truncated": truncated, "corrupted": corrupted, "text": text_file, "foreign": foreign}


@pytest.mark.parametrize(("kind", "message"), [
    ("truncated", "is damaged"),
    ("corrupted", "is damaged"),
    ("text", "is not an SQLite database"),
    ("foreign", r"is not a flashapp database \(no alembic_version, card, card_state, deck, note, review_log table\)"),
])
def test_restore_refuses_a_bad_file_and_changes_nothing(live, tmp_path, kind, message):
    database, backup = live
    bad = damaged_copies(backup, tmp_path)[kind]
    before = folder_state(database.parent)
    with pytest.raises(BackupError, match=message):
        restore_sqlite(bad, database, save_current_to=tmp_path / "saved.sqlite")
    assert folder_state(database.parent) == before  # byte-identical, and no temporary files left
    assert not (tmp_path / "saved.sqlite").exists()
    assert usernames(database) == {"ada", "bob"}


def test_restore_refuses_a_live_database_copy_with_its_own_wal(live, tmp_path):
    database, backup = live
    copy = tmp_path / "copy.sqlite"
    copy.write_bytes(backup.read_bytes())
    Path(f"{copy}-wal").write_bytes(b"\x00" * 100)
    with pytest.raises(BackupError, match=r"copy\.sqlite-wal"):
        restore_sqlite(copy, database)


def test_restore_refuses_while_the_database_is_in_use(live):
    database, backup = live
    engine = make_engine(f"sqlite:///{database}")
    with engine.connect() as connection:
        connection.exec_driver_sql("SELECT 1")
        with pytest.raises(BackupError, match=r"is in use: stop the server"):
            restore_sqlite(backup, database)
        assert [p.name for p in database.parent.iterdir() if "restore" in p.name] == []
    engine.dispose()
    assert usernames(database) == {"ada", "bob"}


def crash_after_writing(database: Path, username: str) -> None:
    """Commit a user in another process that dies without closing: its commit stays in the -wal file."""
    script = (
        "import os, sqlite3, sys\n"
        "c = sqlite3.connect(sys.argv[1], isolation_level=None)\n"
        "c.execute('PRAGMA journal_mode=WAL')\n"
        "c.execute(\"INSERT INTO user (username, password_hash, role, time_zone, created_at, session_token) "
        "VALUES (?, 'x', 'student', 'UTC', '2026-03-02 09:00:00', ?)\", (sys.argv[2], sys.argv[2]))\n"
        "os._exit(0)\n"
    )
    subprocess.run([sys.executable, "-c", script, str(database), username], check=True)


def test_restore_swaps_a_good_backup_in_and_leaves_no_old_wal(live, tmp_path):
    database, backup = live
    crash_after_writing(database, "carol")  # the old database now has a -wal that holds carol
    assert Path(f"{database}-wal").stat().st_size > 0
    saved = tmp_path / "backups" / "flashapp-before-restore-20260302-100000.sqlite"
    restore_sqlite(backup, database, save_current_to=saved)
    assert sorted(p.name for p in database.parent.iterdir()) == ["flashapp.sqlite"]
    assert database.read_bytes() == backup.read_bytes()
    assert usernames(database) == {"ada"}
    # The replaced database was saved whole, its WAL included.
    assert raw_usernames(saved) == {"ada", "bob", "carol"}
    # The restored database works normally afterwards (WAL mode again, writes, checks).
    engine = make_engine(f"sqlite:///{database}")
    add_users(engine, "dan")
    with engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA integrity_check").scalar() == "ok"
    engine.dispose()
    assert usernames(database) == {"ada", "dan"}


def test_restore_into_a_new_install(live, tmp_path):
    _, backup = live
    fresh = tmp_path / "fresh" / "flashapp.sqlite"
    fresh.parent.mkdir()
    restore_sqlite(backup, fresh, save_current_to=tmp_path / "unused.sqlite")
    assert usernames(fresh) == {"ada"}
    assert not (tmp_path / "unused.sqlite").exists()
    assert os.listdir(fresh.parent) == ["flashapp.sqlite"]
