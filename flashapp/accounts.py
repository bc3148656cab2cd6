"""User accounts: registration and password checks (werkzeug scrypt hashes)."""

from __future__ import annotations

import re

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from werkzeug.security import check_password_hash, generate_password_hash

from .models import ROLE_STUDENT, ROLE_TEACHER, User

USERNAME_RE = re.compile(r"^[A-Za-z0-9_.-]+$")
MIN_PASSWORD_LENGTH = 8

# Checked against when no such user exists, so a wrong name costs as long as a wrong password.
_DUMMY_HASH = generate_password_hash("not a real password", method="scrypt")


class UsernameTaken(ValueError):
    """Another account already has this name."""


def find_user(session: Session, username: str) -> User | None:
    """The account with this name, ignoring case."""
    return session.scalar(select(User).where(func.lower(User.username) == username.strip().lower()))


def register_user(session: Session, *, username: str, password: str, time_zone: str = "UTC",
                  role: str | None = None) -> User:
    """Create an account. Without a role, the first account is the teacher and the rest students.

    Raises UsernameTaken. The caller commits.
    """
    username = username.strip()
    if find_user(session, username) is not None:
        raise UsernameTaken(username)
    if role is None:
        role = ROLE_TEACHER if session.scalar(select(func.count(User.id))) == 0 else ROLE_STUDENT
    user = User(username=username, password_hash=generate_password_hash(password, method="scrypt"),
                role=role, time_zone=time_zone)
    session.add(user)
    try:
        session.flush()
    except IntegrityError:
        raise UsernameTaken(username) from None
    return user


def authenticate(session: Session, *, username: str, password: str) -> User | None:
    """The user whose name and password match, else None."""
    user = find_user(session, username)
    if user is None:
        check_password_hash(_DUMMY_HASH, password)
        return None
    return user if check_password_hash(user.password_hash, password) else None
