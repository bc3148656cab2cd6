"""User accounts: sign-up, log-in and log-out, passwords (werkzeug scrypt hashes) and log-in throttling."""

from __future__ import annotations

import hmac
import re
from dataclasses import dataclass
from datetime import datetime
from typing import ClassVar

from sqlalchemy import bindparam, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from werkzeug.security import check_password_hash, generate_password_hash

from .database import write_transaction
from .errors import Conflict, Invalid, NotFound
from .models import PersonalParameters, Role, User, new_session_token
from .prepared import Prepared
from .text_input import clean_line, control_characters_message, has_control_characters
from .throttling import DEFAULT_LIMITS, JOIN, LOG_IN, PASSWORD, Limits, record_failure, refuse_when_throttled

# `\Z` and not `$`: `$` also matches before a final newline, so "ann\n" would pass.
USERNAME_RE = re.compile(r"[A-Za-z0-9_.-]+\Z")
USERNAME_MESSAGE = "Use letters, digits, dots, hyphens and underscores only."
MIN_USERNAME_LENGTH = 3
MAX_USERNAME_LENGTH = 40
MIN_PASSWORD_LENGTH = 8
MAX_PASSWORD_LENGTH = 200
SHORT_PASSWORD_MESSAGE = f"A password needs at least {MIN_PASSWORD_LENGTH} characters."
LONG_PASSWORD_MESSAGE = f"A password can be at most {MAX_PASSWORD_LENGTH} characters long."

# Checked against when no such user exists, so a wrong name costs as long as a wrong password. Written out
# rather than made at import: hashing it took 0.15 s in every process that imports this module (each
# command, each process of `flashapp check`). Its parameters are those of a new scrypt hash (a unit test
# compares them); no password ever matches it, as `password_matches` says no whatever the check finds.
_DUMMY_HASH = ("scrypt:32768:8:1$3fEXBfEYlrdDZoxX$fd682bb8b98a2fc0fde4c2ddfc6171ee9e10c8b3f140c16512b842f544a9799d"
               "7b5c6402298fbba7039be14151cf9331141e92637c4286a80e84369a3b79dc91")


def check_username(username: str) -> str:
    """A new account's name without its surrounding spaces, or Invalid (beside "username") saying what to change."""
    username = clean_line(username, what="A username", field="username", min_length=MIN_USERNAME_LENGTH,
                          max_length=MAX_USERNAME_LENGTH)
    if not USERNAME_RE.fullmatch(username):
        raise Invalid(USERNAME_MESSAGE, field="username")
    return username


def check_new_password(password: str, *, field: str = "password") -> None:
    """Raise Invalid (beside `field`) unless password is 8 to 200 characters without control characters."""
    if has_control_characters(password):
        raise Invalid(control_characters_message("A password"), field=field)
    if len(password) < MIN_PASSWORD_LENGTH:
        raise Invalid(SHORT_PASSWORD_MESSAGE, field=field)
    if len(password) > MAX_PASSWORD_LENGTH:
        raise Invalid(LONG_PASSWORD_MESSAGE, field=field)


class UsernameTaken(ValueError):
    """Another account already has this name."""


def find_user(session: Session, username: str) -> User | None:
    """The account with this name, ignoring case."""
    return session.scalar(select(User).where(func.lower(User.username) == username.strip().lower()))


# werkzeug's method for new hashes; the test configuration picks a fast one (PASSWORD_HASH_METHOD).
DEFAULT_HASH_METHOD = "scrypt"


def install_has_accounts(session: Session) -> bool:
    """True once anyone has an account; before that, the next account made is the teacher's."""
    return session.scalar(select(User.id).limit(1)) is not None


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


# --- Use cases: each owns its transaction --------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SignedIn:
    """The user of a request, as read when it began: what its pages and its student's scheduling need.

    A plain value rather than a mapped `User`: every request loads one, and building a mapped object
    with its personal parameters cost three times what reading the row does. Use cases that change an
    account take its id and load it themselves.
    """

    id: int
    username: str
    role: Role
    time_zone: str
    session_token: str
    must_change_password: bool
    desired_retention: float | None  # their own (None: their class's, else the install's)
    class_retention: float | None  # their classes' default
    own_parameters: str | None  # their own FSRS parameters (JSON), None while the defaults are in use

    # The four members Flask-Login asks of a user (as `User` has them).
    is_authenticated: ClassVar[bool] = True
    is_active: ClassVar[bool] = True
    is_anonymous: ClassVar[bool] = False

    @property
    def is_teacher(self) -> bool:
        return self.role == Role.TEACHER

    def get_id(self) -> str:
        return f"{self.id}:{self.session_token}"


# Every request loads its user: one row with what the request's scheduler needs (own parameters, class
# retention), by a statement compiled once.
_SESSION_USER = Prepared(
    select(User.id, User.username, User.role, User.time_zone, User.session_token, User.must_change_password,
           User.desired_retention, User.class_retention.label("class_retention"),
           PersonalParameters.parameters.label("own_parameters"))
    .outerjoin(PersonalParameters, PersonalParameters.user_id == User.id)
    .where(User.id == bindparam("user_id")))


def session_user(session: Session, session_id: str) -> SignedIn | None:
    """The user of a login session id (`user_id:token`), unless they have since ended all their sessions."""
    user_id, _, token = session_id.partition(":")
    if not user_id.isdigit() or not token:
        return None
    row = _SESSION_USER.first(session.connection(), {"user_id": int(user_id)})
    if row is None or not hmac.compare_digest(row.session_token, token):
        return None
    return SignedIn(*row)


@dataclass(frozen=True)
class Registered:
    """A new account, and the class it joined at sign-up if any."""

    user: User
    classroom_name: str | None


def register(session: Session, *, username: str, password_hash: str, time_zone: str, address: str,
             now: datetime, class_code: str | None = None, limits: Limits = DEFAULT_LIMITS) -> Registered:
    """Create an account (the first on a new install is the teacher), joining a class when a code is given.

    Hash the password with `hash_password` first: it is slow and must not hold the write lock.
    Raises Invalid (a bad name, an unknown class code), TooManyAttempts (too many wrong codes from this
    address) or Conflict (username taken); nothing is changed then, except that a wrong code is counted.
    """
    from .classroom import WRONG_CODES_MESSAGE, find_by_join_code, join_classroom

    username = check_username(username)
    classroom = None
    if class_code:
        refuse_when_throttled(session, action=JOIN, name=username, address=address, now=now, limits=limits,
                              message=WRONG_CODES_MESSAGE, field="class_code")
        classroom = find_by_join_code(session, class_code)
        if classroom is None:
            with write_transaction(session):
                record_failure(session, action=JOIN, name=username, address=address, now=now)
            raise Invalid("No class has that code. Check it with your teacher, or leave it empty and join later.",
                          field="class_code")
    try:
        with write_transaction(session):
            user = register_user(session, username=username, password_hash=password_hash, time_zone=time_zone)
            joined = None
            if classroom is not None and not user.is_teacher:
                joined = join_classroom(session, user=user, code=classroom.join_code).name
    except UsernameTaken:
        raise Conflict("That username is taken; choose another.", field="username") from None
    return Registered(user, joined)


def log_in(session: Session, *, username: str, password: str, address: str, now: datetime,
           limits: Limits = DEFAULT_LIMITS) -> User:
    """The account these credentials open. Raises TooManyAttempts or Invalid (and records the failure).

    Reads first, then lets go of the database for the slow password check; writes only on failure.
    """
    try:
        refuse_when_throttled(session, action=LOG_IN, name=username, address=address, now=now, limits=limits,
                              message="Too many failed log-ins. Wait a minute, then try again.", field="password")
        user = find_user(session, username)
        stored_hash = user.password_hash if user else None
    finally:
        if session.in_transaction():
            session.commit()
    if user is None or not password_matches(stored_hash, password):
        with write_transaction(session):
            record_failure(session, action=LOG_IN, name=username, address=address, now=now)
        raise Invalid("That username and password do not match an account.", field="password")
    return user


def log_out(session: Session, *, user_id: int) -> None:
    """End every login session of this user, on every device."""
    with write_transaction(session):
        user = session.get(User, user_id)
        if user is not None:
            end_all_sessions(user)


def change_password(session: Session, *, user_id: int, current: str, new: str, address: str, now: datetime,
                    limits: Limits = DEFAULT_LIMITS, method: str = DEFAULT_HASH_METHOD) -> User:
    """Replace a user's password after checking the current one; their other sessions end.

    Raises Invalid when the current password is wrong (and counts the failure), when the new one is
    not acceptable or is the current one (a teacher's temporary password cannot be kept), and
    TooManyAttempts after too many wrong ones. Both slow hash steps run outside the write lock.
    """
    user = session.get(User, user_id)
    if user is None:
        raise NotFound("No such account.")
    refuse_when_throttled(session, action=PASSWORD, name=user.username, address=address, now=now, limits=limits,
                          message="Too many wrong passwords. Wait a minute, then try again.", field="current")
    if not password_matches(user.password_hash, current):
        with write_transaction(session):
            record_failure(session, action=PASSWORD, name=user.username, address=address, now=now)
        raise Invalid("That is not your current password.", field="current")
    check_new_password(new)
    if new == current:
        raise Invalid("Choose a new password, not the one you have now.", field="password")
    new_hash = hash_password(new, method=method)
    with write_transaction(session):
        set_password(user, password_hash=new_hash)
    return user


def create_account(session: Session, *, username: str, password: str, role: Role,
                   method: str = DEFAULT_HASH_METHOD) -> User:
    """An account made by the install's owner (the command line). Raises Invalid or Conflict."""
    username = check_username(username)
    check_new_password(password)
    password_hash = hash_password(password, method=method)
    try:
        with write_transaction(session):
            return register_user(session, username=username, password_hash=password_hash, role=role)
    except UsernameTaken:
        raise Conflict(f"The username '{username}' is taken.", field="username") from None
