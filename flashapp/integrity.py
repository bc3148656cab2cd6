"""Whether the SQLite file is sound: SQLite's quick check, at start and now and then while serving.

`PRAGMA quick_check` walks every b-tree page of the file (it skips only the costlier
comparison of each index with its table that `integrity_check` does), so it finds the
damage that would otherwise surface as failing pages in the middle of a class. It reads
the whole file, which takes about a second per 100 MB: `flashapp serve` runs it once
before serving, and the health check reuses its last result, running it again at most
every `QUICK_CHECK_EVERY` (one health request in that period pays for it; the others
read the stored result). Other databases have no such check and always count as sound.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import text
from sqlalchemy.exc import DatabaseError, OperationalError
from sqlalchemy.orm import Session

QUICK_CHECK_EVERY = timedelta(minutes=10)
# Findings kept from one check; SQLite can list thousands for one damaged file.
FINDINGS_KEPT = 20
_QUICK_CHECK = text("PRAGMA quick_check")
RESTORE_ADVICE = ("stop the server, restore the latest good backup (`flashapp restore FILE`, backups are in "
                  "the instance folder's backups/), then run `flashapp init` and `flashapp check`")


@dataclass(frozen=True)
class Integrity:
    """The result of one quick check: what it found (nothing when the file is sound) and when it ran."""

    findings: tuple[str, ...]
    checked_at: datetime

    @property
    def ok(self) -> bool:
        """True when the check found nothing."""
        return not self.findings

    def summary(self) -> str:
        """'ok', or 'damaged: ' and SQLite's first finding."""
        return "ok" if self.ok else f"damaged: {self.findings[0]}"


def quick_check(session: Session, *, now: datetime) -> Integrity:
    """Run SQLite's quick check on the session's database (nothing to check on other databases).

    A file too damaged for the check to finish counts as damaged, with SQLite's error as the
    finding. The check reads in its own transaction, which ends before this returns.
    """
    if session.get_bind().dialect.name != "sqlite":
        return Integrity(findings=(), checked_at=now)
    if session.in_transaction():
        session.rollback()
    try:
        rows = [str(row) for row in session.scalars(_QUICK_CHECK)]
    except OperationalError:
        session.rollback()
        raise  # locked or unreachable: not a verdict on the file
    except DatabaseError as error:
        session.rollback()
        rows = [f"SQLite cannot read the file ({getattr(error, 'orig', error)})"]
    else:
        session.rollback()
    findings = () if rows == ["ok"] else tuple(" ".join(row.split()) for row in rows[:FINDINGS_KEPT])
    return Integrity(findings=findings, checked_at=now)


class IntegrityWatch:
    """The server's latest quick check, run again when it is older than `every`.

    Several threads may ask at once: one runs the check, the others get the previous result
    meanwhile (or wait, when there is none yet).
    """

    def __init__(self, *, every: timedelta = QUICK_CHECK_EVERY) -> None:
        self.every = every
        self._last: Integrity | None = None
        self._running = threading.Lock()

    def record(self, result: Integrity) -> None:
        """Keep a check made elsewhere (the one at start) as the latest."""
        self._last = result

    def current(self, session: Session, *, now: datetime) -> Integrity:
        """The latest result, checking again first when it is missing or older than `every`."""
        last = self._last
        if last is not None and now - last.checked_at < self.every:
            return last
        if not self._running.acquire(blocking=last is None):
            assert last is not None
            return last
        try:
            last = self._last
            if last is not None and now - last.checked_at < self.every:
                return last
            self._last = quick_check(session, now=now)
            return self._last
        finally:
            self._running.release()
