"""SQLite backups: online copies of the live database, a thinning policy, and a careful restore.

A live SQLite database in WAL mode keeps recent commits in its `-wal` file, so copying
the database file alone loses them (or copies a half-written page). Backups are made
with SQLite's online backup API instead, which reads a consistent snapshot through
SQLite itself while the server keeps answering. Each backup is a single self-contained
file (journal mode DELETE), checked with `PRAGMA integrity_check` before it gets its
final name.

Backup names carry their UTC time: `flashapp-YYYYmmdd-HHMMSS.sqlite`. Nothing here reads
the clock: the caller passes `now`.

A backup or restore writes a hidden temporary file (`.flashapp-backup-*.tmp` in the target
folder, `.<database>-restore-*.tmp` beside the database) as large as the database, and holds
a lock on it while it works. A process killed meanwhile leaves the file behind, unlocked:
the next backup, restore or server start removes such files (`remove_abandoned_temp_files`).
"""

from __future__ import annotations

import os
import re
import shutil
import sqlite3
import sys
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

from sqlalchemy.engine import URL, make_url

from .schema_versions import newer_schema_message

if sys.platform != "win32":
    import fcntl

BACKUP_NAME_RE = re.compile(r"^flashapp-(\d{8}-\d{6})\.sqlite$")
BACKUP_TIME_FORMAT = "%Y%m%d-%H%M%S"
# A database without these tables is not one of ours (alembic_version: made by `flashapp init`).
FLASHAPP_TABLES = frozenset({"user", "deck", "note", "card", "card_state", "review_log", "alembic_version"})
SQLITE_HEADER = b"SQLite format 3\x00"
BACKUP_TEMP_PREFIX = ".flashapp-backup-"
TEMP_SUFFIX = ".tmp"

KEEP_DAYS = 7
KEEP_WEEKS = 4
KEEP_MONTHS = 12


class BackupError(Exception):
    """A backup or restore that could not be done; the message says why."""


def sqlite_path(url: str | URL) -> Path | None:
    """The database file of an SQLite SQLAlchemy URL; None for other databases or an in-memory one."""
    url = make_url(url)
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return None
    return Path(url.database).resolve()


def backup_file_name(*, now: datetime) -> str:
    """The name of a backup made at `now` (aware), in UTC: `flashapp-YYYYmmdd-HHMMSS.sqlite`."""
    return f"flashapp-{_utc(now).strftime(BACKUP_TIME_FORMAT)}.sqlite"


def backup_time(path: Path) -> datetime | None:
    """When a backup was made (UTC), read from its name; None when the name is not a backup's."""
    match = BACKUP_NAME_RE.match(Path(path).name)
    if not match:
        return None
    try:
        return datetime.strptime(match.group(1), BACKUP_TIME_FORMAT).replace(tzinfo=timezone.utc)
    except ValueError:
        return None


def _utc(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        raise ValueError("naive datetime given; pass a timezone-aware datetime")
    return moment.astimezone(timezone.utc)


def _uri(path: Path, **params: str) -> str:
    query = "&".join(f"{key}={value}" for key, value in params.items())
    return Path(path).resolve().as_uri() + (f"?{query}" if query else "")


def _fsync_file(path: Path) -> None:
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())


def _fsync_folder(folder: Path) -> None:
    """Make a rename in `folder` durable (POSIX; Windows has no directory handles to sync)."""
    if os.name != "posix":
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _restore_temp_prefix(database_path: Path) -> str:
    return f".{Path(database_path).name}-restore-"


@contextmanager
def _temp_file(folder: Path, prefix: str) -> Iterator[Path]:
    """A new empty file in `folder` (mode 0600: backups hold password hashes), locked while in use.

    The lock tells `remove_abandoned_temp_files` that the file's writer is alive; the
    operating system drops it when the writer dies, however it dies. (Windows has no such
    lock, but there a file open in a live process cannot be deleted.)
    """
    fd, name = tempfile.mkstemp(dir=folder, prefix=prefix, suffix=TEMP_SUFFIX)
    if sys.platform == "win32":
        os.close(fd)  # Windows cannot rename a file that is open
        yield Path(name)
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        if os.fstat(fd).st_ino != os.stat(name).st_ino:
            raise BackupError(f"the temporary file {name} was removed while being made; try again")
        yield Path(name)
    finally:
        os.close(fd)  # after the file was renamed or removed: the lock goes with it


def _in_use(path: Path) -> bool:
    """Whether a live backup or restore holds the temporary file `path`."""
    if sys.platform == "win32":
        return False  # deleting a file open elsewhere fails there, and the file is skipped
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # closing releases a lock taken here
    return False


def remove_abandoned_temp_files(folder: Path, *, database_path: Path | None = None) -> list[Path]:
    """Remove the temporary files that killed backups (and, given `database_path`, restores) left in `folder`.

    Only the app's own temporary names are considered (with SQLite's `-journal`, `-wal` and
    `-shm` files beside them), and only files no live process holds. Returns what was removed.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return []
    prefixes = [BACKUP_TEMP_PREFIX] + ([_restore_temp_prefix(database_path)] if database_path else [])
    removed = []
    for path in sorted(folder.iterdir()):
        name = path.name
        if not any(name.startswith(prefix) for prefix in prefixes) or TEMP_SUFFIX not in name:
            continue
        main = folder / name[:name.index(TEMP_SUFFIX) + len(TEMP_SUFFIX)]
        if _in_use(main):
            continue
        try:
            path.unlink()
        except FileNotFoundError:
            continue
        except PermissionError:
            continue  # still open in a live process (Windows)
        removed.append(path)
    return removed


def _remove(path: Path) -> None:
    path.unlink(missing_ok=True)


def _copy_from_connection(source: sqlite3.Connection, target_path: Path, *, require_ok: bool = True) -> Path:
    """Copy the database behind an open connection into `target_path`, atomically.

    With `require_ok` the copy must pass the integrity check to be kept.
    """
    target_path = Path(target_path)
    target_path.parent.mkdir(parents=True, exist_ok=True)
    remove_abandoned_temp_files(target_path.parent)
    with _temp_file(target_path.parent, BACKUP_TEMP_PREFIX) as temp:
        _write_checked_copy(source, temp, target_path, require_ok=require_ok)
    return target_path


def _write_checked_copy(source: sqlite3.Connection, temp: Path, target_path: Path, *, require_ok: bool) -> None:
    try:
        destination = sqlite3.connect(temp, isolation_level=None)
        try:
            source.backup(destination)  # all pages in one step: one consistent snapshot
            # The copy inherits WAL mode from the source; make it one self-contained file.
            destination.execute("PRAGMA journal_mode=DELETE")
            result = [row[0] for row in destination.execute("PRAGMA integrity_check")]
        finally:
            destination.close()
        if require_ok and result != ["ok"]:
            raise BackupError(f"the copy failed its integrity check ({'; '.join(result[:3])}); "
                              "the database itself may be damaged")
        _fsync_file(temp)
        os.replace(temp, target_path)
        _fsync_folder(target_path.parent)
    except BaseException:
        _remove(temp)
        for suffix in ("-journal", "-wal", "-shm"):
            _remove(Path(f"{temp}{suffix}"))
        raise


def backup_sqlite(database_path: Path, target_path: Path) -> Path:
    """Copy a (possibly live) SQLite database to `target_path` with SQLite's online backup API.

    The copy is written under a temporary name in the target folder, must pass
    `PRAGMA integrity_check`, and is then renamed into place, so `target_path`
    is either absent or a complete, checked backup. Returns `target_path`.
    """
    database_path = Path(database_path)
    if not database_path.is_file():
        raise BackupError(f"there is no database at {database_path}")
    try:
        # mode=rw: never create an empty database where the real one was expected.
        source = sqlite3.connect(_uri(database_path, mode="rw"), uri=True, timeout=30)
    except sqlite3.Error as error:
        raise BackupError(f"cannot open {database_path}: {error}") from None
    try:
        return _copy_from_connection(source, target_path)
    except sqlite3.Error as error:
        raise BackupError(f"backing up {database_path} failed: {error}") from None
    finally:
        source.close()


# A period whose newest backup is kept: ("day", date), ("week", (ISO year, week)),
# ("month", (year, month)), or ("all", None) for the newest backup of all.
Bucket = tuple[str, date | tuple[int, int] | None]


def _iso_week(day: date) -> tuple[int, int]:
    year, week, _ = day.isocalendar()
    return year, week


def _previous_months(day: date, count: int) -> set[tuple[int, int]]:
    year, month = day.year, day.month
    months = set()
    for _ in range(count):
        months.add((year, month))
        year, month = (year - 1, 12) if month == 1 else (year, month - 1)
    return months


def backups_to_keep(names_with_times: list[tuple[Path, datetime]], *, now: datetime) -> set[Path]:
    """Which backups a grandfather-father-son policy keeps (a pure function).

    Kept: the newest backup of each of the last 7 days, of each of the last 4 ISO weeks
    and of each of the last 12 calendar months (the current day, week and month
    included), in the time zone of `now`; also the newest backup of all, however old,
    and any backup dated after `now` (a clock set back must not cost backups).
    """
    if now.tzinfo is None:
        raise ValueError("naive datetime given; pass a timezone-aware `now`")
    today = now.date()
    days = {today - timedelta(days=n) for n in range(KEEP_DAYS)}
    weeks = {_iso_week(today - timedelta(weeks=n)) for n in range(KEEP_WEEKS)}
    months = _previous_months(today, KEEP_MONTHS)

    keep: set[Path] = set()
    newest: dict[Bucket, tuple[datetime, str, Path]] = {}
    for path, when in names_with_times:
        local = when.astimezone(now.tzinfo)
        if local > now:
            keep.add(path)
            continue
        day = local.date()
        week, month = _iso_week(day), (day.year, day.month)
        buckets: list[Bucket] = [("all", None)]
        if day in days:
            buckets.append(("day", day))
        if week in weeks:
            buckets.append(("week", week))
        if month in months:
            buckets.append(("month", month))
        candidate = (local, str(path), path)
        for bucket in buckets:
            if bucket not in newest or candidate[:2] > newest[bucket][:2]:
                newest[bucket] = candidate
    keep.update(path for _, _, path in newest.values())
    return keep


def list_backups(folder: Path) -> list[tuple[Path, datetime]]:
    """The backups in `folder` (files named like `flashapp-YYYYmmdd-HHMMSS.sqlite`) with their times."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    found = []
    for path in folder.iterdir():
        when = backup_time(path)
        if when is not None and path.is_file():
            found.append((path, when))
    return sorted(found, key=lambda item: item[1])


def thin_backups(folder: Path, *, now: datetime) -> list[Path]:
    """Delete the backups in `folder` that `backups_to_keep` does not keep; returns the deleted files.

    Only files named like the app's own backups are considered; anything else is left alone.
    """
    backups = list_backups(folder)
    keep = backups_to_keep(backups, now=now)
    deleted = []
    for path, _ in backups:
        if path not in keep:
            _remove(path)
            deleted.append(path)
    return deleted


def daily_backup(database_path: Path, folder: Path, *, now: datetime) -> Path | None:
    """Make today's backup (UTC day) in `folder` unless there is one already, then thin the folder.

    Returns the new backup, or None when today's backup already existed.
    """
    today = _utc(now).date()
    if any(when.date() == today for _, when in list_backups(folder)):
        return None
    made = backup_sqlite(database_path, Path(folder) / backup_file_name(now=now))
    thin_backups(folder, now=now)
    return made


def _check_copy(path: Path, shown_as: Path, *, known_versions: Sequence[str] | None = None) -> None:
    """Refuse a file that is not a healthy flashapp database, without writing anything next to it."""
    with open(path, "rb") as handle:
        header = handle.read(len(SQLITE_HEADER))
    if header != SQLITE_HEADER:
        raise BackupError(f"{shown_as} is not an SQLite database")
    try:
        # immutable=1: no locks, no -wal or -shm files created beside the file being checked.
        connection = sqlite3.connect(_uri(path, mode="ro", immutable="1"), uri=True)
        try:
            result = [str(row[0]) for row in connection.execute("PRAGMA integrity_check")]
            tables = {row[0] for row in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            versions = ([str(row[0]) for row in connection.execute("SELECT version_num FROM alembic_version")]
                        if "alembic_version" in tables else [])
        finally:
            connection.close()
    except sqlite3.DatabaseError as error:
        raise BackupError(f"{shown_as} is damaged: {error}") from None
    if result != ["ok"]:
        raise BackupError(f"{shown_as} is damaged: the integrity check found {'; '.join(result[:3])}")
    missing = FLASHAPP_TABLES - tables
    if missing:
        raise BackupError(f"{shown_as} is not a flashapp database (no {', '.join(sorted(missing))} table)")
    unknown = [version for version in versions if known_versions is not None and version not in known_versions]
    if unknown:
        raise BackupError(newer_schema_message(unknown[0], what=str(shown_as)))


def check_backup(backup_file: Path, *, known_versions: Sequence[str] | None = None) -> None:
    """Raise `BackupError` unless `backup_file` is an undamaged, self-contained flashapp database.

    Given `known_versions` (the schema versions this flashapp knows), a backup of a schema
    it does not know (one written by a newer flashapp) is refused too.
    """
    backup_file = Path(backup_file)
    if not backup_file.is_file():
        raise BackupError(f"{backup_file} does not exist or is not a file")
    wal = Path(f"{backup_file}-wal")
    if wal.exists() and wal.stat().st_size > 0:
        raise BackupError(f"{backup_file} has changes of its own in {wal.name}: it is a database in use "
                          "or a copy of one, not a backup; make backups with `flashapp backup`")
    _check_copy(backup_file, backup_file, known_versions=known_versions)


def _take_over(database_path: Path) -> sqlite3.Connection:
    """Open the current database as its only user, with its WAL checkpointed into the file.

    Leaving WAL mode needs every other connection closed, so it fails while a server
    has the database open: that is how a running server is detected.
    """
    try:
        connection = sqlite3.connect(_uri(database_path, mode="rw"), uri=True, timeout=0, isolation_level=None)
    except sqlite3.Error as error:
        raise BackupError(f"cannot open the database {database_path}: {error}") from None
    try:
        connection.execute("PRAGMA journal_mode=DELETE").fetchall()
    except sqlite3.Error as error:
        connection.close()
        if "locked" in str(error) or "busy" in str(error):
            raise BackupError(f"the database {database_path} is in use: stop the server "
                              "(`flashapp serve`) and anything else using it, then restore again") from None
        raise BackupError(f"the current database {database_path} cannot be read ({error}); "
                          "move it aside by hand, then restore again") from None
    return connection


def _swap_in(temp: Path, backup_file: Path, database_path: Path, *, save_current_to: Path | None,
             known_versions: Sequence[str] | None) -> None:
    try:
        shutil.copyfile(backup_file, temp)
        _fsync_file(temp)
        # What is swapped in is exactly what was checked.
        _check_copy(temp, backup_file, known_versions=known_versions)
        current = _take_over(database_path) if database_path.exists() else None
        try:
            if current is not None and save_current_to is not None:
                # Kept even when damaged: it is what is being replaced.
                _copy_from_connection(current, save_current_to, require_ok=False)
        except sqlite3.Error as error:
            raise BackupError(f"the current database could not be saved to {save_current_to} ({error}); "
                              f"move {database_path} aside by hand, then restore again") from None
        finally:
            if current is not None:
                current.close()  # closed before the swap: Windows cannot replace an open file
        os.replace(temp, database_path)
    except BaseException:
        _remove(temp)
        raise


def restore_sqlite(backup_file: Path, database_path: Path, *, save_current_to: Path | None = None,
                   known_versions: Sequence[str] | None = None) -> None:
    """Replace the SQLite database at `database_path` with `backup_file`. The server must be stopped.

    A damaged file, one that is not a flashapp database, or (given `known_versions`) one
    with a schema newer than this flashapp's, is refused with a `BackupError` and nothing
    is changed. Otherwise the backup is copied next to the
    database under a temporary name, checked again, and swapped in with `os.replace`.
    The current database is first checkpointed (which also proves nothing else has it
    open) and, when `save_current_to` is given, saved there. After the swap any
    `-wal`, `-shm` or `-journal` file left beside the database belongs to the old file
    and is removed, so SQLite never applies the old log to the restored database.
    """
    backup_file, database_path = Path(backup_file), Path(database_path)
    check_backup(backup_file, known_versions=known_versions)
    if backup_file.resolve() == database_path.resolve():
        raise BackupError(f"{backup_file} is the database itself")
    if not database_path.parent.is_dir():
        raise BackupError(f"the database folder {database_path.parent} does not exist")

    remove_abandoned_temp_files(database_path.parent, database_path=database_path)
    with _temp_file(database_path.parent, _restore_temp_prefix(database_path)) as temp:
        _swap_in(temp, backup_file, database_path, save_current_to=save_current_to, known_versions=known_versions)
    for suffix in ("-wal", "-shm", "-journal"):
        _remove(Path(f"{database_path}{suffix}"))
    _fsync_folder(database_path.parent)
