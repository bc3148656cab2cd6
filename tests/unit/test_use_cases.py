"""The use cases own their transactions and refuse with domain errors that change nothing.

No app: a plain Session on a real database, fixed UTC datetimes, fuzzing off.
"""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from fsrs import Rating
from sqlalchemy import func, select
from werkzeug.security import check_password_hash

from flashapp import accounts, classroom, study
from flashapp.database import write_transaction
from flashapp.errors import Conflict, Invalid, NotFound, TooManyAttempts
from flashapp.models import Enrollment, FailedAttempt, ReviewLog, Role, User
from flashapp.scheduling import Outcome, make_scheduler
from flashapp.showings import ShowingTokens
from flashapp.throttling import DEFAULT_LIMITS
from tests.helpers import FAST_HASH_METHOD, T0, build_numbers_deck


def users(session) -> int:
    return session.scalar(select(func.count(User.id)))


@pytest.fixture
def school(session):
    for slug in ("odds", "evens"):
        build_numbers_deck(session, count=3, slug=slug)
    session.commit()
    teacher = accounts.create_account(session, username="mrs-k", password="long enough", role=Role.TEACHER,
                                      method=FAST_HASH_METHOD)
    other = accounts.create_account(session, username="mr-b", password="long enough", role=Role.TEACHER,
                                    method=FAST_HASH_METHOD)
    made = classroom.start_class(session, teacher_id=teacher.id, name="Year 10")
    ann = accounts.register(session, username="ann",
                            password_hash=accounts.hash_password("long enough", method=FAST_HASH_METHOD),
                            time_zone="UTC", class_code=made.join_code.lower(), address="10.0.0.1", now=T0)
    return {"teacher": teacher.id, "other": other.id, "class": made.id, "code": made.join_code,
            "ann": ann.user.id, "joined": ann.classroom_name}


def test_a_write_transaction_commits_its_block_and_rolls_all_of_it_back_on_error(session):
    with write_transaction(session):
        session.add(User(username="kept", password_hash="x", role=Role.STUDENT))
    def fails_half_way() -> None:
        with write_transaction(session):
            session.add(User(username="lost", password_hash="x", role=Role.STUDENT))
            session.flush()
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        fails_half_way()
    assert session.scalars(select(User.username)).all() == ["kept"]


def test_a_use_case_called_inside_another_joins_its_transaction(session):
    def outer_use_case() -> None:
        with write_transaction(session):
            accounts.create_account(session, username="inner", password="long enough", role=Role.STUDENT,
                                    method=FAST_HASH_METHOD)
            raise RuntimeError("the outer use case fails after the inner one finished")

    with pytest.raises(RuntimeError):
        outer_use_case()
    assert users(session) == 0


def test_signing_up_with_a_class_code_joins_the_class(session, school):
    assert school["joined"] == "Year 10"
    assert session.scalar(select(Enrollment.user_id)) == school["ann"]


@pytest.mark.parametrize(("username", "code", "error", "field"), [
    ("ann", None, Conflict, "username"),
    ("ben", "WRONG1", Invalid, "class_code"),
])
def test_a_refused_sign_up_says_which_field_and_changes_nothing(session, school, username, code, error, field):
    before = users(session)
    with pytest.raises(error) as refused:
        accounts.register(session, username=username, password_hash="x", time_zone="UTC", class_code=code,
                          address="10.0.0.1", now=T0)
    assert refused.value.field == field and refused.value.message
    assert users(session) == before


def test_a_wrong_password_is_refused_and_remembered_until_log_in_is_throttled(session, school):
    limit = DEFAULT_LIMITS.per_name_and_address
    for _ in range(limit):
        with pytest.raises(Invalid):
            accounts.log_in(session, username="ann", password="wrong password", address="10.0.0.9", now=T0)
    assert session.scalar(select(func.count(FailedAttempt.id))) == limit
    with pytest.raises(TooManyAttempts):
        accounts.log_in(session, username="ann", password="long enough", address="10.0.0.9", now=T0)
    later = datetime(2026, 3, 2, 9, 5, tzinfo=timezone.utc)
    assert accounts.log_in(session, username="ANN", password="long enough", address="10.0.0.9", now=later).id \
        == school["ann"]


def test_changing_a_password_needs_the_current_one(session, school):
    user = session.get(User, school["ann"])
    old_hash, old_token = user.password_hash, user.session_token
    with pytest.raises(Invalid) as refused:
        accounts.change_password(session, user_id=user.id, current="not it", new="a new secret",
                                 address="10.0.0.1", now=T0, method=FAST_HASH_METHOD)
    assert refused.value.field == "current" and session.get(User, user.id).password_hash == old_hash
    accounts.change_password(session, user_id=user.id, current="long enough", new="a new secret",
                             address="10.0.0.1", now=T0, method=FAST_HASH_METHOD)
    session.expire_all()
    user = session.get(User, school["ann"])
    assert check_password_hash(user.password_hash, "a new secret") and user.session_token != old_token


def test_another_teachers_class_is_not_found_for_every_use_case(session, school):
    mine = {"teacher_id": school["other"], "class_id": school["class"]}
    for call in (lambda: classroom.new_join_code(session, **mine),
                 lambda: classroom.assign(session, deck_id=1, target_date=None, **mine),
                 lambda: classroom.unassign(session, deck_id=1, **mine),
                 lambda: classroom.remove_from_class(session, user_id=school["ann"], **mine),
                 lambda: classroom.reset_student_password(session, user_id=school["ann"], method=FAST_HASH_METHOD,
                                                          **mine)):
        with pytest.raises(NotFound):
            call()
    assert session.scalar(select(Enrollment.user_id)) == school["ann"]


def test_a_reset_password_is_temporary_and_opens_the_account_once(session, school):
    temporary = classroom.reset_student_password(session, teacher_id=school["teacher"], class_id=school["class"],
                                                 user_id=school["ann"], method=FAST_HASH_METHOD)
    session.expire_all()
    ann = session.get(User, school["ann"])
    assert ann.must_change_password and check_password_hash(ann.password_hash, temporary)


def test_an_answer_to_a_card_of_another_deck_is_not_found_and_records_nothing(session, school):
    scheduler = make_scheduler(enable_fuzzing=False)
    showings = ShowingTokens("use-case-test-key-" + "x" * 20)
    screen = study.study_screen(session, scheduler, showings, user_id=school["ann"], slug="odds", time_zone="UTC",
                                now=T0, settings=study.StudySettings())
    shown = screen.showing
    assert shown is not None
    with pytest.raises(NotFound):
        study.answer(session, scheduler, showings, user_id=school["ann"], slug="evens", token=shown.token,
                     rating=Rating.Good, now=T0)
    assert session.scalar(select(func.count(ReviewLog.id))) == 0
    outcomes = [study.answer(session, scheduler, showings, user_id=school["ann"], slug="odds", token=shown.token,
                             rating=Rating.Good, now=T0) for _ in range(2)]
    assert outcomes == [Outcome.RECORDED, Outcome.DUPLICATE]
    assert session.scalar(select(func.count(ReviewLog.id))) == 1
    assert study.undo(session, scheduler, user_id=school["ann"], slug="odds") == shown.card_id
    assert session.scalar(select(func.count(ReviewLog.id))) == 0
