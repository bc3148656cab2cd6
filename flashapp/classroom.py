"""Classes: join codes, membership, assigned decks and teachers' care of student accounts."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import delete, or_, select
from sqlalchemy.orm import Session, selectinload

from .accounts import DEFAULT_HASH_METHOD, hash_password, set_password
from .database import write_transaction
from .errors import Forbidden, Invalid, NotFound
from .models import Assignment, Classroom, Deck, Enrollment, User
from .text_input import clean_line
from .throttling import DEFAULT_LIMITS, JOIN, Limits, record_failure, refuse_when_throttled

# No look-alikes: no 0/O, 1/I/L, 2/Z, 5/S, 8/B.
JOIN_CODE_ALPHABET = "ACDEFGHJKMNPQRTUVWXY34679"
JOIN_CODE_LENGTH = 6
TEMPORARY_PASSWORD_LENGTH = 10
MIN_CLASS_NAME_LENGTH = 2
MAX_CLASS_NAME_LENGTH = 80
WRONG_CODES_MESSAGE = "Too many wrong class codes. Wait a minute, then try again."


def check_class_name(name: str) -> str:
    """A class name without its surrounding spaces, or Invalid (beside "name") saying what to change."""
    return clean_line(name, what="A class name", field="name", min_length=MIN_CLASS_NAME_LENGTH,
                      max_length=MAX_CLASS_NAME_LENGTH)


class JoinCodeInvalid(ValueError):
    """No class has this join code (it may have been replaced)."""


class NotAStudent(ValueError):
    """Only students join classes."""


def normalize_join_code(text: str) -> str:
    """A join code as typed, made canonical: upper case, without spaces or hyphens."""
    return "".join(ch for ch in text.upper() if ch not in " -\t")


def _new_join_code(session: Session) -> str:
    while True:
        code = "".join(secrets.choice(JOIN_CODE_ALPHABET) for _ in range(JOIN_CODE_LENGTH))
        if session.scalar(select(Classroom.id).where(Classroom.join_code == code)) is None:
            return code


def create_classroom(session: Session, *, teacher: User, name: str) -> Classroom:
    """A new class of this teacher's, with a fresh join code. The caller commits."""
    if not teacher.is_teacher:
        raise Forbidden("Only teachers create classes.")
    classroom = Classroom(name=check_class_name(name), teacher_id=teacher.id, join_code=_new_join_code(session))
    session.add(classroom)
    session.flush()
    return classroom


def regenerate_join_code(session: Session, classroom: Classroom) -> str:
    """Replace the class's join code; the old one stops working at once. The caller commits."""
    classroom.join_code = _new_join_code(session)
    session.flush()
    return classroom.join_code


def find_by_join_code(session: Session, code: str) -> Classroom | None:
    """The class whose current join code this is."""
    code = normalize_join_code(code)
    if not code:
        return None
    return session.scalar(select(Classroom).where(Classroom.join_code == code))


def join_classroom(session: Session, *, user: User, code: str) -> Classroom:
    """Enrol a student in the class with this code (joining twice changes nothing). The caller commits."""
    if user.is_teacher:
        raise NotAStudent()
    classroom = find_by_join_code(session, code)
    if classroom is None:
        raise JoinCodeInvalid(code)
    existing = session.scalar(select(Enrollment).where(Enrollment.classroom_id == classroom.id,
                                                       Enrollment.user_id == user.id))
    if existing is None:
        session.add(Enrollment(classroom_id=classroom.id, user_id=user.id))
        session.flush()
    return classroom


def remove_student(session: Session, *, classroom: Classroom, user_id: int) -> bool:
    """Take a student out of a class; their reviews stay theirs. The caller commits."""
    removed = session.scalars(delete(Enrollment).where(Enrollment.classroom_id == classroom.id,
                                                       Enrollment.user_id == user_id).returning(Enrollment.id)).all()
    return bool(removed)


def teachers_classrooms(session: Session, teacher_id: int) -> list[Classroom]:
    """A teacher's classes, with their students and assignments loaded."""
    return list(session.scalars(
        select(Classroom).where(Classroom.teacher_id == teacher_id)
        .options(selectinload(Classroom.enrollments), selectinload(Classroom.assignments))
        .order_by(Classroom.name, Classroom.id)
    ))


def all_classrooms(session: Session) -> list[Classroom]:
    """Every class on this install, by name."""
    return list(session.scalars(select(Classroom).order_by(Classroom.name, Classroom.id)))


def students_classrooms(session: Session, user_id: int) -> list[Classroom]:
    """The classes a student belongs to."""
    return list(session.scalars(
        select(Classroom).join(Enrollment, Enrollment.classroom_id == Classroom.id)
        .where(Enrollment.user_id == user_id).order_by(Classroom.name)
    ))


def is_student_of(session: Session, *, teacher_id: int, student_id: int) -> bool:
    """True when the student is in at least one of this teacher's classes."""
    return session.scalar(
        select(Enrollment.id).join(Classroom, Classroom.id == Enrollment.classroom_id)
        .where(Classroom.teacher_id == teacher_id, Enrollment.user_id == student_id).limit(1)
    ) is not None


def assign_deck(session: Session, *, classroom: Classroom, deck_id: int,
                target_date: date | None = None) -> Assignment:
    """Assign a deck to a class, or change its target date. The caller commits."""
    deck = session.get(Deck, deck_id)
    if deck is None or deck.owner_id not in (None, classroom.teacher_id):  # another teacher's deck: not there
        raise Invalid("There is no such deck to assign.", field="deck_id")
    assignment = session.scalar(select(Assignment).where(Assignment.classroom_id == classroom.id,
                                                         Assignment.deck_id == deck_id))
    if assignment is None:
        assignment = Assignment(classroom_id=classroom.id, deck_id=deck_id)
        session.add(assignment)
    assignment.target_date = target_date
    session.flush()
    return assignment


def unassign_deck(session: Session, *, classroom: Classroom, deck_id: int) -> None:
    """Stop assigning a deck to a class; nobody's progress is touched. The caller commits."""
    session.execute(delete(Assignment).where(Assignment.classroom_id == classroom.id,
                                             Assignment.deck_id == deck_id))


@dataclass(frozen=True)
class AssignedDeck:
    deck_id: int
    target_date: date | None
    classroom_name: str


def assigned_decks(session: Session, user_id: int) -> dict[int, AssignedDeck]:
    """The decks assigned to any of a student's classes, each with its earliest target date."""
    rows = session.execute(
        select(Assignment.deck_id, Assignment.target_date, Classroom.name)
        .join(Classroom, Classroom.id == Assignment.classroom_id)
        .join(Enrollment, Enrollment.classroom_id == Classroom.id)
        .where(Enrollment.user_id == user_id)
    ).all()
    result: dict[int, AssignedDeck] = {}
    for deck_id, target, name in rows:
        known = result.get(deck_id)
        if known is None or (target and (known.target_date is None or target < known.target_date)):
            result[deck_id] = AssignedDeck(deck_id, target, name)
    return result


def temporary_password() -> str:
    """A one-time password that is easy to read out: lower-case letters and digits without look-alikes.

    A teacher's reset stores its hash with `accounts.set_password(..., temporary=True)`.
    """
    return "".join(secrets.choice(JOIN_CODE_ALPHABET.lower() + "2345678") for _ in range(TEMPORARY_PASSWORD_LENGTH))


# --- Use cases: each owns its transaction --------------------------------------------------------


def own_classroom(session: Session, *, teacher_id: int, class_id: int) -> Classroom:
    """One of this teacher's classes; another teacher's class is simply not found (NotFound)."""
    classroom = session.get(Classroom, class_id)
    if classroom is None or classroom.teacher_id != teacher_id:
        raise NotFound("There is no such class among yours.")
    return classroom


def enrolled_student(session: Session, *, teacher_id: int, class_id: int, user_id: int) -> tuple[Classroom, User]:
    """A student of one of this teacher's classes, with the class (NotFound otherwise)."""
    classroom = own_classroom(session, teacher_id=teacher_id, class_id=class_id)
    student = session.scalar(
        select(User).join(Enrollment, Enrollment.user_id == User.id)
        .where(Enrollment.classroom_id == classroom.id, User.id == user_id))
    if student is None:
        raise NotFound("There is no such student in this class.")
    return classroom, student


def start_class(session: Session, *, teacher_id: int, name: str) -> Classroom:
    """A teacher starts a new class; students join it with the code it comes with."""
    with write_transaction(session):
        teacher = session.get(User, teacher_id)
        if teacher is None:
            raise NotFound("No such account.")
        return create_classroom(session, teacher=teacher, name=name)


def join_class(session: Session, *, user_id: int, code: str, address: str, now: datetime,
               limits: Limits = DEFAULT_LIMITS) -> Classroom:
    """A student joins the class with this code.

    Raises Invalid (no such code, which is counted; or a teacher), or TooManyAttempts after too many
    wrong codes from this student at this address (or from this address at all).
    """
    user = session.get(User, user_id)
    if user is None:
        raise NotFound("No such account.")
    refuse_when_throttled(session, action=JOIN, name=user.username, address=address, now=now, limits=limits,
                          message=WRONG_CODES_MESSAGE, field="code")
    if user.is_teacher:
        raise Invalid("Teachers do not join classes; students do.", field="code")
    if find_by_join_code(session, code) is None:
        with write_transaction(session):
            record_failure(session, action=JOIN, name=user.username, address=address, now=now)
        raise Invalid("No class has that code. Check it with your teacher: codes can be replaced.", field="code")
    with write_transaction(session):
        try:
            return join_classroom(session, user=user, code=code)
        except JoinCodeInvalid:  # replaced in the moment since it was looked up
            raise Invalid("No class has that code. Check it with your teacher: codes can be replaced.",
                          field="code") from None


def new_join_code(session: Session, *, teacher_id: int, class_id: int) -> str:
    """Replace a class's join code; the old one stops working at once."""
    with write_transaction(session):
        return regenerate_join_code(session, own_classroom(session, teacher_id=teacher_id, class_id=class_id))


def assign(session: Session, *, teacher_id: int, class_id: int, deck_id: int, target_date: date | None) -> None:
    """Assign a deck to one of this teacher's classes, or change its target date."""
    with write_transaction(session):
        classroom = own_classroom(session, teacher_id=teacher_id, class_id=class_id)
        assign_deck(session, classroom=classroom, deck_id=deck_id, target_date=target_date)


def unassign(session: Session, *, teacher_id: int, class_id: int, deck_id: int) -> None:
    """Stop assigning a deck to one of this teacher's classes; nobody's progress is touched."""
    with write_transaction(session):
        unassign_deck(session, classroom=own_classroom(session, teacher_id=teacher_id, class_id=class_id),
                      deck_id=deck_id)


def remove_from_class(session: Session, *, teacher_id: int, class_id: int, user_id: int) -> User:
    """Take a student out of one of this teacher's classes; their account and history stay."""
    with write_transaction(session):
        classroom, student = enrolled_student(session, teacher_id=teacher_id, class_id=class_id, user_id=user_id)
        remove_student(session, classroom=classroom, user_id=student.id)
        return student


def reset_student_password(session: Session, *, teacher_id: int, class_id: int, user_id: int,
                           method: str = DEFAULT_HASH_METHOD) -> str:
    """Give a student of this teacher's class a temporary password, returned once to be read out.

    The student's sessions end and they must choose a new password at their next log-in.
    """
    enrolled_student(session, teacher_id=teacher_id, class_id=class_id, user_id=user_id)
    temporary = temporary_password()
    password_hash = hash_password(temporary, method=method)  # slow on purpose: before the write lock
    with write_transaction(session):
        _, student = enrolled_student(session, teacher_id=teacher_id, class_id=class_id, user_id=user_id)
        set_password(student, password_hash=password_hash, temporary=True)
    return temporary


def deck_choices(session: Session, *, teacher_id: int | None = None) -> list[tuple[int, str]]:
    """The decks a teacher may assign as (id, title): the bundled ones and their own (every deck without a teacher)."""
    query = select(Deck.id, Deck.title).order_by(Deck.title)
    if teacher_id is not None:
        query = query.where(or_(Deck.owner_id.is_(None), Deck.owner_id == teacher_id))
    return [(deck_id, title) for deck_id, title in session.execute(query)]
