"""Throttling of the forms a guesser would use: log-in, join codes and the current password.

Failures are counted per action in the database (so the count holds across worker processes), in
two ways, and either one past its limit refuses the action for the rest of the window:

- per name and address: one account (or one student's tries at a code) from one address. A guesser
  elsewhere cannot lock a student out of their own machine, and a class behind one router does
  not share one count.
- per address, over every name, with a higher ceiling: one machine trying many accounts.

The trade-off: a guesser with many addresses gets `per_name_and_address` tries per window from
each; on a classroom network addresses are few, and a per-name count would let anyone lock any
named account.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from .errors import TooManyAttempts
from .models import FailedAttempt

LOG_IN = "log-in"
JOIN = "join"
PASSWORD = "password"

# Failures older than this are deleted when a new one is recorded.
KEPT = timedelta(days=1)


@dataclass(frozen=True)
class Limits:
    """How many failures within `window` an action allows before it answers "too many tries"."""

    per_name_and_address: int = 10
    per_address: int = 100
    window: timedelta = timedelta(minutes=1)


DEFAULT_LIMITS = Limits()


def _name(name: str) -> str:
    # Forms refuse control characters before this point; NUL is dropped here too, as PostgreSQL refuses it.
    return name.replace("\x00", "").strip().lower()[:80]


def _address(address: str) -> str:
    return address[:64]


def is_throttled(session: Session, *, action: str, name: str, address: str, now: datetime,
                 limits: Limits) -> bool:
    """True when either count of recent failures of this action has reached its limit."""
    recent = (FailedAttempt.action == action, FailedAttempt.address == _address(address),
              FailedAttempt.attempted_at > now - limits.window)
    by_address = session.scalar(select(func.count(FailedAttempt.id)).where(*recent)) or 0
    if by_address >= limits.per_address:
        return True
    by_pair = session.scalar(select(func.count(FailedAttempt.id))
                             .where(*recent, FailedAttempt.name == _name(name))) or 0
    return by_pair >= limits.per_name_and_address


def refuse_when_throttled(session: Session, *, action: str, name: str, address: str, now: datetime,
                          limits: Limits, message: str, field: str) -> None:
    """Raise TooManyAttempts (with `message`, beside `field`) when this action is throttled."""
    if is_throttled(session, action=action, name=name, address=address, now=now, limits=limits):
        raise TooManyAttempts(message, field=field)


def record_failure(session: Session, *, action: str, name: str, address: str, now: datetime) -> None:
    """Remember one failure (and forget those older than a day). Call inside a write transaction."""
    session.execute(delete(FailedAttempt).where(FailedAttempt.attempted_at < now - KEPT))
    session.add(FailedAttempt(action=action, name=_name(name), address=_address(address), attempted_at=now))
