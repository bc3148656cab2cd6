"""The server's automatic backups: one a day in the instance folder, thinned to 7 days, 4 weeks, 12 months.

A failed backup (a full disk, a folder that went away) is tried again every few minutes
rather than an hour later, and stays on the teacher's classes page until a backup succeeds.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from flask import Flask

from .backup import daily_backup, sqlite_path

CHECK_EVERY_SECONDS = 3600
RETRY_AFTER_FAILURE_SECONDS = 300


def backup_folder(app: Flask) -> Path:
    """Where the automatic (and by default the manual) backups go: `<instance>/backups/`."""
    return Path(app.instance_path) / "backups"


@dataclass(frozen=True)
class BackupFailure:
    """The latest failed daily backup: when, why, and where it was to be written."""

    failed_at: datetime
    reason: str
    folder: Path


class BackupHealth:
    """Whether the latest daily backup failed; set by the backup thread, read by the classes page."""

    def __init__(self) -> None:
        self._failure: BackupFailure | None = None

    @property
    def failure(self) -> BackupFailure | None:
        """The failure since which no backup succeeded, or None."""
        return self._failure

    def failed(self, failure: BackupFailure) -> None:
        """Keep the first failure's time (the backups are missing since then), the latest reason."""
        first = self._failure.failed_at if self._failure is not None else failure.failed_at
        self._failure = BackupFailure(failed_at=first, reason=failure.reason, folder=failure.folder)

    def succeeded(self) -> None:
        """Today's backup exists: the warning goes."""
        self._failure = None


def backup_health(app: Flask) -> BackupHealth:
    """The app's `BackupHealth` (made on first use)."""
    return app.extensions.setdefault("flashapp.backup_health", BackupHealth())  # type: ignore[no-any-return]


def start_daily_backups(app: Flask, *, interval_seconds: float = CHECK_EVERY_SECONDS,
                        retry_seconds: float = RETRY_AFTER_FAILURE_SECONDS,
                        stop: threading.Event | None = None) -> threading.Thread | None:
    """Start a daemon thread that makes today's backup if missing, at once and then every hour.

    Each new backup is followed by thinning the folder. After a failure it tries again every
    `retry_seconds`, and `backup_health(app)` holds the failure until a backup succeeds.
    Only SQLite databases are backed up this way; for any other database nothing is
    started and None is returned. Setting `stop` ends the thread.
    """
    from . import db

    with app.app_context():
        database = sqlite_path(db.engine.url)
    if database is None:
        return None
    folder = backup_folder(app)
    health = backup_health(app)
    stop = stop or threading.Event()

    def run() -> None:
        while True:
            now = datetime.now(timezone.utc)
            try:
                made = daily_backup(database, folder, now=now)
            except Exception as error:
                app.logger.exception("The daily backup of %s failed", database)
                health.failed(BackupFailure(failed_at=now, reason=str(error) or type(error).__name__,
                                            folder=folder))
                wait = retry_seconds
            else:
                if made is not None:
                    app.logger.info("Daily backup written to %s", made)
                health.succeeded()
                wait = interval_seconds
            if stop.wait(wait):
                return

    thread = threading.Thread(target=run, name="flashapp-daily-backups", daemon=True)
    thread.start()
    return thread
