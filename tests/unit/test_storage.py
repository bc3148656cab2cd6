"""The start-up check that the places flashapp saves to can be written (real read-only files and folders)."""

from __future__ import annotations

import pytest

from flashapp.storage import StorageError, check_writable
from tests.helpers import read_only


@pytest.fixture
def install(tmp_path):
    """An instance folder and a SQLite database with its journal files, all writable."""
    (tmp_path / "instance").mkdir()
    database = tmp_path / "flashapp.sqlite"
    for path in (database, tmp_path / "flashapp.sqlite-wal", tmp_path / "flashapp.sqlite-shm"):
        path.write_bytes(b"")
    return tmp_path


def _check(install, url=None):
    check_writable(instance_path=install / "instance", database_url=url or f"sqlite:///{install / 'flashapp.sqlite'}")


def test_a_writable_install_passes(install):
    _check(install)


@pytest.mark.parametrize("name", ["flashapp.sqlite", "flashapp.sqlite-wal", "flashapp.sqlite-shm"])
def test_a_read_only_database_or_journal_file_is_named_with_the_fix(install, name):
    with read_only(install / name), pytest.raises(StorageError) as refused:
        _check(install)
    assert refused.value.message.startswith(f"{install / name} is read-only")
    assert f"chmod u+w '{install / name}'" in refused.value.message


def test_a_read_only_database_folder_is_named(tmp_path, install):
    database_folder = tmp_path / "data"
    database_folder.mkdir()
    with read_only(database_folder), pytest.raises(StorageError) as refused:
        _check(install, f"sqlite:///{database_folder / 'flashapp.sqlite'}")
    assert refused.value.message.startswith(f"{database_folder} is read-only")
    assert "FLASHAPP_DATABASE_URL" in refused.value.message


def test_postgresql_needs_only_a_writable_instance_folder(install):
    url = "postgresql+psycopg://flashapp@db-host/flashapp"
    _check(install, url)
    with read_only(install / "instance"), pytest.raises(StorageError) as refused:
        _check(install, url)
    assert refused.value.message.startswith(f"{install / 'instance'} is read-only")
