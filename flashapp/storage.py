"""Whether the places flashapp saves to can be written: checked before it serves or sets up."""

from __future__ import annotations

import os
from pathlib import Path

from sqlalchemy import URL, make_url


class StorageError(Exception):
    """A place flashapp must write to cannot be written; the message names it and says how to fix it."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def _writable(path: Path) -> bool:
    # access() answers for this user, its groups and ACLs, and says no on a read-only mount, even to root.
    return os.access(path, os.W_OK)


def _folder_problem(folder: Path, *, holds: str, setting: str) -> str | None:
    if folder.is_dir() and not _writable(folder):
        return (f"{folder} is read-only, and flashapp keeps {holds} there: make it writable for the user "
                f"running flashapp (chmod u+w '{folder}', or remount its disk read-write), or set {setting} "
                f"to a writable place.")
    return None


def _file_problem(path: Path) -> str | None:
    if path.exists() and not _writable(path):
        return (f"{path} is read-only, so nothing could be saved: make it writable for the user running "
                f"flashapp (chmod u+w '{path}'; if another user such as root made it, chown it back), or "
                f"remount its disk read-write.")
    return None


def check_writable(*, instance_path: str | Path, database_url: str | URL) -> None:
    """Raise StorageError, naming the first place that cannot be written and the fix, unless all can.

    The places: the instance folder (secret key, backups), and for SQLite the database file, the
    journal files beside it (`-wal`, `-shm`) and its folder, where SQLite makes them.
    """
    problem = _folder_problem(Path(instance_path), holds="its secret key and backups",
                              setting="FLASHAPP_INSTANCE_PATH")
    url = make_url(database_url)
    if problem is None and url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
        database = Path(str(url.database)).resolve()
        problem = _folder_problem(database.parent, holds="the database and its journal files",
                                  setting="FLASHAPP_DATABASE_URL")
        for path in (database, database.with_name(database.name + "-wal"),
                     database.with_name(database.name + "-shm")):
            problem = problem or _file_problem(path)
    if problem:
        raise StorageError(problem)
