"""The server's personal fits: now and then, fit the students whose history has grown, one at a time."""

from __future__ import annotations

import threading
from datetime import datetime, timezone

from flask import Flask

CHECK_EVERY_SECONDS = 600
# No new fit starts once a round has run this long; the rest wait for the next round.
ROUND_BUDGET_SECONDS = 60.0


def start_personal_fits(app: Flask, *, interval_seconds: float = CHECK_EVERY_SECONDS,
                        budget_seconds: float = ROUND_BUDGET_SECONDS,
                        stop: threading.Event | None = None) -> threading.Thread:
    """Start a daemon thread that fits the students due for a fit, at once and then every `interval_seconds`.

    One thread, so one fit at a time; each round starts no new fit after `budget_seconds`.
    Setting `stop` ends the thread.
    """
    from . import db
    from .personal import optimize_due_students

    stop = stop or threading.Event()

    def run() -> None:
        while True:
            with app.app_context():
                try:
                    outcomes = optimize_due_students(db.session(), app.extensions["flashapp.scheduler"],
                                                     now=datetime.now(timezone.utc), budget_seconds=budget_seconds)
                    for outcome in outcomes:
                        app.logger.info("Personal parameters of %s (%d reviews): %s", outcome.username,
                                        outcome.reviews, outcome.message)
                except Exception:
                    app.logger.exception("Fitting personal parameters failed")
                finally:
                    db.session.remove()
            if stop.wait(interval_seconds):
                return

    thread = threading.Thread(target=run, name="flashapp-personal-fits", daemon=True)
    thread.start()
    return thread
