"""User accounts: registration and password checks (werkzeug scrypt hashes)."""

from __future__ import annotations

import re
from datetime import datetime, timedelta

from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from werkzeug.security import check_password_hash, generate_password_hash

from .models import LoginAttempt, Role, User, new_session_token

USERNAME_RE = re.compile(r"^[A-Za-z0-9_.-]+$")
MIN_PASSWORD_LENGTH = 8

# Checked against when no such user exists, so a wrong name costs as long as a wrong password.
_DUMMY_HASH = generate_password_hash("not a real password", method="scrypt")


class UsernameTaken(ValueError):
    """Another account already has this name."""


def find_user(session: Session, username: str) -> User | None:
    """The account with this name, ignoring case."""
    return session.scalar(select(User).where(func.lower(User.username) == username.strip().lower()))


# werkzeug's method for new hashes; the test configuration picks a fast one (PASSWORD_HASH_METHOD).
DEFAULT_HASH_METHOD = "scrypt"


def hash_password(password: str, *, method: str = DEFAULT_HASH_METHOD) -> str:
    """A werkzeug hash (scrypt by default). Slow on purpose (~0.1 s): compute it before a write transaction."""
    return generate_password_hash(password, method=method)


def register_user(session: Session, *, username: str, password: str | None = None, time_zone: str = "UTC",
                  role: Role | None = None, password_hash: str | None = None,
                  password_method: str = DEFAULT_HASH_METHOD) -> User:
    """Create an account. Without a role, the first account is the teacher and the rest students.

    Give the password, or its `hash_password` hash. Raises UsernameTaken. The caller commits.
    """
    if password_hash is None:
        if password is None:
            raise ValueError("give a password or its hash")
        password_hash = hash_password(password, method=password_method)
    username = username.strip()
    if find_user(session, username) is not None:
        raise UsernameTaken(username)
    if role is None:
        role = Role.TEACHER if session.scalar(select(func.count(User.id))) == 0 else Role.STUDENT
    user = User(username=username, password_hash=password_hash, role=Role(role), time_zone=time_zone)
    session.add(user)
    try:
        session.flush()
    except IntegrityError:
        raise UsernameTaken(username) from None
    return user


def password_matches(password_hash: str | None, password: str) -> bool:
    """Check a password against a stored hash; with no hash, spend the same time and say no."""
    if password_hash is None:
        check_password_hash(_DUMMY_HASH, password)
        return False
    return check_password_hash(password_hash, password)


# Log-in throttling: kept in the database so that it holds across worker processes.
THROTTLE_WINDOW = timedelta(minutes=1)
THROTTLE_LIMIT = 10
ATTEMPTS_KEPT = timedelta(days=1)


def login_throttled(session: Session, *, username: str, address: str, now: datetime) -> bool:
    """True when the account or the address has failed THROTTLE_LIMIT times within the last minute."""
    since = now - THROTTLE_WINDOW
    recent = select(LoginAttempt.id).where(LoginAttempt.attempted_at > since)
    by_name = session.scalar(select(func.count()).select_from(
        recent.where(LoginAttempt.username == username.strip().lower()).subquery()))
    if by_name >= THROTTLE_LIMIT:
        return True
    by_address = session.scalar(select(func.count()).select_from(
        recent.where(LoginAttempt.address == address).subquery()))
    return by_address >= THROTTLE_LIMIT


def record_failed_login(session: Session, *, username: str, address: str, now: datetime) -> None:
    """Remember a failed log-in (and forget those older than a day). The caller commits."""
    session.execute(delete(LoginAttempt).where(LoginAttempt.attempted_at < now - ATTEMPTS_KEPT))
    session.add(LoginAttempt(username=username.strip().lower()[:80], address=address[:64], attempted_at=now))


def end_all_sessions(user: User) -> None:
    """Make every existing login session of this user invalid. The caller commits."""
    user.session_token = new_session_token()


def set_password(user: User, *, password_hash: str, temporary: bool = False) -> None:
    """Store a new password hash and end the user's sessions. The caller commits.

    A temporary password (a teacher's reset) must be changed at the next log-in.
    """
    user.password_hash = password_hash
    user.must_change_password = temporary
    end_all_sessions(user)
