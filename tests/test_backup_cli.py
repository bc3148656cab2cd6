"""`flashapp backup` and `flashapp restore`, and the daily backups `flashapp serve` starts."""

from __future__ import annotations

import os
import re
import sqlite3
import subprocess
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import select

from flashapp import db
from flashapp.accounts import register_user
from flashapp.backup import list_backups
from flashapp.backup_schedule import start_daily_backups
from flashapp.database import make_engine
from flashapp.models import User
from flashapp.schema_versions import schema_versions
from tests.helpers import FAST_HASH_METHOD, kill, locked_source, start_backup_process, wait_for_file

NEWER = "9001"  # a schema version only a later flashapp could have written


def add_user(app, name: str) -> None:
    with app.app_context():
        register_user(db.session, username=name, password="long enough", password_method=FAST_HASH_METHOD)
        db.session.commit()
        db.session.remove()


def usernames(app) -> set[str]:
    with app.app_context():
        names = set(db.session.scalars(select(User.username)))
        db.session.remove()
    return names


def database_file(app) -> Path:
    with app.app_context():
        return Path(db.engine.url.database)


def quiesce(app) -> None:
    """Close the app's pooled connections, as a stopped server would have."""
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


def is_sqlite(database_url: str) -> bool:
    return database_url.startswith("sqlite")


def test_backup_writes_a_checked_copy_to_the_instance_folder(app, runner, database_url, tmp_path):
    if not is_sqlite(database_url):
        result = runner.invoke(args=["backup"])
        assert result.exit_code == 1
        assert "The database is PostgreSQL: back it up with pg_dump" in result.output
        return
    add_user(app, "ada")
    result = runner.invoke(args=["backup"])
    assert result.exit_code == 0, result.output
    match = re.fullmatch(r"Backup written to (.+flashapp-\d{8}-\d{6}\.sqlite)\n", result.output)
    assert match, result.output
    written = Path(match.group(1))
    assert written.parent == Path(app.instance_path) / "backups"
    engine = make_engine(f"sqlite:///{written}")
    with engine.connect() as connection:
        assert set(connection.exec_driver_sql("SELECT username FROM user").scalars()) == {"ada"}
    engine.dispose()

    elsewhere = tmp_path / "usb-stick"
    result = runner.invoke(args=["backup", "--to", str(elsewhere)])
    assert result.exit_code == 0, result.output
    assert [p.name for p in elsewhere.iterdir()] == [Path(result.output.split()[-1]).name]


def test_restore_brings_back_a_backup_and_saves_what_it_replaced(app, runner, database_url):
    if not is_sqlite(database_url):
        result = runner.invoke(args=["restore", __file__])
        assert result.exit_code == 1 and "pg_restore" in result.output
        return
    add_user(app, "ada")
    backup = Path(runner.invoke(args=["backup"]).output.split()[-1])
    add_user(app, "bob")
    result = runner.invoke(args=["restore", str(backup)])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == f"Restored {backup} into {database_file(app)}."
    saved = Path(re.fullmatch(r"The database it replaced was saved as (.+)\.", lines[1]).group(1))
    assert saved.name.startswith("flashapp-before-restore-")
    assert lines[2] == "Run `flashapp init` (it brings an older backup up to date), then start the server again."
    assert usernames(app) == {"ada"}
    # The saved database is a backup like any other: restoring it undoes the restore.
    assert runner.invoke(args=["restore", str(saved)]).exit_code == 0
    assert usernames(app) == {"ada", "bob"}
    assert runner.invoke(args=["check"]).exit_code == 0


@pytest.mark.parametrize("damage", ["truncate", "text"])
def test_restore_refuses_a_damaged_file_and_changes_nothing(app, runner, database_url, tmp_path, damage):
    if not is_sqlite(database_url):
        pytest.skip("restore handles SQLite files; PostgreSQL uses pg_restore")
    add_user(app, "ada")
    backup = Path(runner.invoke(args=["backup"]).output.split()[-1])
    bad = tmp_path / "bad.sqlite"
    data = backup.read_bytes()
    bad.write_bytes(data[: len(data) // 3] if damage == "truncate" else b"hello\n")
    quiesce(app)
    database = database_file(app)
    before = {p.name: p.read_bytes() for p in database.parent.iterdir() if p.is_file()}
    result = runner.invoke(args=["restore", str(bad)])
    assert result.exit_code == 1
    reason = "is damaged" if damage == "truncate" else "is not an SQLite database"
    assert f"Error: Restore refused: {bad} {reason}" in result.output
    assert result.output.rstrip().endswith("Nothing was changed.")
    assert {p.name: p.read_bytes() for p in database.parent.iterdir() if p.is_file()} == before
    assert not list((Path(app.instance_path) / "backups").glob("flashapp-before-restore-*"))
    assert usernames(app) == {"ada"}


def test_restore_refuses_while_the_server_has_the_database_open(app, runner, database_url):
    if not is_sqlite(database_url):
        pytest.skip("restore handles SQLite files; PostgreSQL uses pg_restore")
    backup = Path(runner.invoke(args=["backup"]).output.split()[-1])
    add_user(app, "ada")
    server = make_engine(f"sqlite:///{database_file(app)}")
    with server.connect() as connection:
        connection.exec_driver_sql("SELECT 1")
        result = runner.invoke(args=["restore", str(backup)])
    server.dispose()
    assert result.exit_code == 1
    assert "is in use: stop the server (`flashapp serve`)" in result.output
    assert "Nothing was changed." in result.output
    assert usernames(app) == {"ada"}


def test_daily_backups_make_todays_backup_once(app, database_url):
    stop = threading.Event()
    thread = start_daily_backups(app, interval_seconds=0.05, stop=stop)
    if not is_sqlite(database_url):
        assert thread is None
        return
    folder = Path(app.instance_path) / "backups"
    try:
        deadline = time.monotonic() + 10
        while not list_backups(folder) and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(0.2)  # a few more rounds: today's backup exists, nothing more is made
    finally:
        stop.set()
        thread.join(5)
    assert not thread.is_alive() and thread.daemon
    assert len(list_backups(folder)) == 1


def test_serve_starts_the_daily_backups_before_serving(app, runner, monkeypatch):
    from flashapp import cli, serving

    calls = []
    monkeypatch.setattr(cli, "start_daily_backups", lambda served: calls.append(("backups", served)))
    monkeypatch.setattr(cli, "start_personal_fits", lambda served: calls.append(("fits", served)))
    monkeypatch.setattr(serving, "serve", lambda served, **options: calls.append(("serve", served)))
    result = runner.invoke(args=["serve", "--port", "5999"])
    assert result.exit_code == 0, result.output
    assert calls == [("backups", app), ("fits", app), ("serve", app)]


def stub_serving(monkeypatch) -> list:
    """Record instead of listening: what is under test is what `serve` does first."""
    from flashapp import cli, serving

    served: list = []
    monkeypatch.setattr(cli, "start_daily_backups", lambda app: None)
    monkeypatch.setattr(cli, "start_personal_fits", lambda app: None)
    monkeypatch.setattr(serving, "serve", lambda app, **options: served.append(app))
    return served


def set_schema_version(app, version: str) -> None:
    with app.app_context():
        db.session.execute(db.text("UPDATE alembic_version SET version_num = :v"), {"v": version})
        db.session.commit()
        db.session.remove()


def schema_version(app) -> str:
    with app.app_context():
        version = db.session.scalar(db.text("SELECT version_num FROM alembic_version"))
        db.session.remove()
    return version


def test_serve_removes_what_killed_backups_left(app, runner, database_url, monkeypatch, tmp_path):
    if not is_sqlite(database_url):
        pytest.skip("backups and restores handle SQLite files")
    served = stub_serving(monkeypatch)
    backups = Path(app.instance_path) / "backups"
    source, lock = locked_source(tmp_path)
    process = start_backup_process(source, backups / "flashapp-20260302-090000.sqlite")
    try:
        left = wait_for_file(backups, ".flashapp-backup-*.tmp", process=process)
    finally:
        kill(process)
        lock.close()
    assert left.exists()
    result = runner.invoke(args=["serve", "--port", "5999"])
    assert result.exit_code == 0, result.output
    assert "Removed 1 temporary files left by interrupted backups or restores." in result.output
    assert not left.exists() and served == [app]


def test_restore_refuses_a_backup_of_a_newer_schema_naming_both_versions(app, runner, database_url):
    if not is_sqlite(database_url):
        pytest.skip("restore handles SQLite files; PostgreSQL uses pg_restore")
    add_user(app, "ada")
    backup = Path(runner.invoke(args=["backup"]).output.split()[-1])
    connection = sqlite3.connect(backup)
    connection.execute("UPDATE alembic_version SET version_num = ?", (NEWER,))
    connection.commit()
    connection.close()
    add_user(app, "bob")
    quiesce(app)
    result = runner.invoke(args=["restore", str(backup)])
    assert result.exit_code == 1, result.output
    assert (f"Restore refused: {backup} has schema version {NEWER}, newer than this flashapp's "
            f"{schema_versions()[-1]}: it was written by a newer version of flashapp") in result.output
    assert result.output.rstrip().endswith("Nothing was changed.")
    assert usernames(app) == {"ada", "bob"}
    assert not list((Path(app.instance_path) / "backups").glob("flashapp-before-restore-*"))


def test_init_and_serve_refuse_a_database_of_a_newer_schema(app, runner, monkeypatch):
    served = stub_serving(monkeypatch)
    add_user(app, "ada")
    set_schema_version(app, NEWER)
    quiesce(app)
    both = f"schema version {NEWER}, newer than this flashapp's {schema_versions()[-1]}"
    result = runner.invoke(args=["init"])
    assert result.exit_code == 1
    assert f"Error: the database has {both}" in result.output
    assert result.output.rstrip().endswith("Nothing was changed.")
    assert schema_version(app) == NEWER and usernames(app) == {"ada"}
    result = runner.invoke(args=["serve", "--port", "5999"])
    assert result.exit_code == 1
    assert f"Error: Not serving: the database has {both}" in result.output
    assert served == []


def test_serve_asks_for_init_on_an_older_schema(app, runner, monkeypatch):
    served = stub_serving(monkeypatch)
    set_schema_version(app, schema_versions()[-2])
    result = runner.invoke(args=["serve", "--port", "5999"])
    assert result.exit_code == 1
    assert (f"Not serving: the database has schema version {schema_versions()[-2]}, older than this "
            f"flashapp's {schema_versions()[-1]}: run `flashapp init`") in result.output
    assert served == []


def mount_tmpfs(folder: Path, size: str) -> None:
    """Mount (or resize) a tmpfs of `size` at folder; skip when this process may not mount."""
    folder.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        pytest.skip("a real full disk needs a small tmpfs, and mounting one needs root")
    remount = ["-o", f"remount,size={size}"] if os.path.ismount(folder) else ["-o", f"size={size}"]
    done = subprocess.run(["mount", "-t", "tmpfs", *remount, "tmpfs", str(folder)], capture_output=True, text=True,
                          check=False)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")


def wait_until(condition, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "the condition never came true"
        time.sleep(0.02)


def test_a_failed_daily_backup_stays_on_the_classes_page_until_a_backup_succeeds(app, client, auth, database_url):
    if not is_sqlite(database_url):
        pytest.skip("the daily backups are SQLite's")
    from flashapp.backup_schedule import backup_health

    auth.register("teacher")
    folder = Path(app.instance_path) / "backups"
    mount_tmpfs(folder, "16k")  # smaller than the database: a real full disk
    stop = threading.Event()
    try:
        thread = start_daily_backups(app, interval_seconds=0.05, retry_seconds=0.05, stop=stop)
        wait_until(lambda: backup_health(app).failure is not None)
        page = client.get("/teach/").get_data(as_text=True)
        assert "The daily backup has failed since" in page
        assert "database or disk is full" in page
        assert f"Make room in {folder}" in page
        # With no try under way (one may be writing its temporary file at any moment), the failed ones left
        # nothing behind.
        stop.set()
        thread.join(10)
        assert not thread.is_alive()
        assert not any(p.name.startswith(".flashapp-backup-") for p in folder.iterdir())

        mount_tmpfs(folder, "64m")  # room again: the next try succeeds and the warning goes
        stop = threading.Event()
        thread = start_daily_backups(app, interval_seconds=0.05, retry_seconds=0.05, stop=stop)
        wait_until(lambda: backup_health(app).failure is None)
        assert len(list_backups(folder)) == 1
        assert "The daily backup has failed" not in client.get("/teach/").get_data(as_text=True)
    finally:
        stop.set()
        if "thread" in locals():
            thread.join(10)
        subprocess.run(["umount", str(folder)], check=False)
