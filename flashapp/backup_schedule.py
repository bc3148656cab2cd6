"""The server's automatic backups: one a day in the instance folder, thinned to 7 days, 4 weeks, 12 months."""

from __future__ import annotations

import threading
from datetime import datetime, timezone
from pathlib import Path

from flask import Flask

from .backup import daily_backup, sqlite_path

CHECK_EVERY_SECONDS = 3600


def backup_folder(app: Flask) -> Path:
    """Where the automatic (and by default the manual) backups go: `<instance>/backups/`."""
    return Path(app.instance_path) / "backups"


def start_daily_backups(app: Flask, *, interval_seconds: float = CHECK_EVERY_SECONDS,
                        stop: threading.Event | None = None) -> threading.Thread | None:
    """Start a daemon thread that makes today's backup if missing, at once and then every hour.

    Each new backup is followed by thinning the folder. Only SQLite databases are backed up
    this way; for any other database nothing is started and None is returned. Setting
    `stop` ends the thread.
    """
    from . import db

    with app.app_context():
        database = sqlite_path(db.engine.url)
    if database is None:
        return None
    folder = backup_folder(app)
    stop = stop or threading.Event()

    def run() -> None:
        while True:
            try:
                made = daily_backup(database, folder, now=datetime.now(timezone.utc))
                if made is not None:
                    app.logger.info("Daily backup written to %s", made)
            except Exception:
                app.logger.exception("The daily backup of %s failed", database)
            if stop.wait(interval_seconds):
                return

    thread = threading.Thread(target=run, name="flashapp-daily-backups", daemon=True)
    thread.start()
    return thread
