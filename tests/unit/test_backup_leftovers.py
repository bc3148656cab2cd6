"""Temporary files of backups and restores killed half-way (SIGKILL): the next backup or restore removes them.

Real processes, really killed; a live backup's temporary file is never touched.
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from flashapp.backup import backup_sqlite, remove_abandoned_temp_files, restore_sqlite
from tests.helpers import REPO, kill, locked_source, start_backup_process, wait_for_file

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL and file locks as on POSIX")

BACKUP_TEMP = ".flashapp-backup-*.tmp*"


def other_database(folder: Path) -> Path:
    path = folder / "other.sqlite"
    connection = sqlite3.connect(path)
    connection.execute("CREATE TABLE t (x)")
    connection.commit()
    connection.close()
    return path


def test_the_next_backup_removes_what_a_killed_backup_left(tmp_path):
    source, lock = locked_source(tmp_path)
    backups = tmp_path / "backups"
    process = start_backup_process(source, backups / "first.sqlite")
    try:
        left = wait_for_file(backups, ".flashapp-backup-*.tmp", process=process)
    finally:
        kill(process)
        lock.rollback()
        lock.close()
    assert left.exists()  # what a killed backup leaves, and nothing ever removed before
    made = backup_sqlite(source, backups / "second.sqlite")
    assert sorted(p.name for p in backups.iterdir()) == [made.name]


def test_a_live_backups_temporary_file_is_left_alone(tmp_path):
    source, lock = locked_source(tmp_path)
    backups = tmp_path / "backups"
    process = start_backup_process(source, backups / "slow.sqlite")
    try:
        live = wait_for_file(backups, ".flashapp-backup-*.tmp", process=process)
        backup_sqlite(other_database(tmp_path), backups / "quick.sqlite")
        assert remove_abandoned_temp_files(backups) == []
        assert live.exists()
        lock.rollback()  # the slow backup may go on now, and finishes
        assert process.wait(30) == 0
    finally:
        if process.poll() is None:
            kill(process)
        lock.close()
    assert sorted(p.name for p in backups.iterdir()) == ["quick.sqlite", "slow.sqlite"]


def large_backup(folder: Path) -> Path:
    """A flashapp-shaped backup big enough (tens of MB, an index to check) that restoring it takes a while."""
    path = folder / "large.sqlite"
    connection = sqlite3.connect(path)
    for table in ("user", "deck", "note", "card", "card_state", "review_log"):
        connection.execute(f'CREATE TABLE "{table}" (id INTEGER PRIMARY KEY)')
    connection.execute("CREATE TABLE alembic_version (version_num VARCHAR(32) PRIMARY KEY)")
    connection.execute("INSERT INTO alembic_version VALUES ('0001')")
    connection.execute("CREATE TABLE filler (x TEXT)")
    connection.execute("INSERT INTO filler SELECT hex(randomblob(40)) FROM generate_series(1, 150000)"
                       if sqlite3.sqlite_version_info >= (3, 46) else
                       "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 150000) "
                       "INSERT INTO filler SELECT hex(randomblob(40)) FROM n")
    connection.execute("CREATE INDEX filler_x ON filler (x)")
    connection.commit()
    connection.close()
    return path


def test_the_next_restore_removes_what_a_killed_restore_left(tmp_path):
    backup = large_backup(tmp_path)
    database_folder = tmp_path / "instance"
    database_folder.mkdir()
    database = database_folder / "flashapp.sqlite"
    script = "import sys\nfrom flashapp.backup import restore_sqlite\nrestore_sqlite(sys.argv[1], sys.argv[2])\n"
    process = subprocess.Popen([sys.executable, "-c", script, str(backup), str(database)], cwd=REPO)
    try:
        left = wait_for_file(database_folder, ".flashapp.sqlite-restore-*.tmp", process=process)
    finally:
        kill(process)
    assert left.exists() and not database.exists()
    restore_sqlite(backup, database)
    assert sorted(p.name for p in database_folder.iterdir()) == ["flashapp.sqlite"]
