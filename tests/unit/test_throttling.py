"""Throttling and the checks on typed names, as domain code: a plain session, fixed UTC times."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from flashapp import accounts, classroom
from flashapp.errors import Invalid, TooManyAttempts
from flashapp.models import Classroom, FailedAttempt, Role, User
from flashapp.throttling import JOIN, LOG_IN, PASSWORD, Limits, is_throttled, record_failure
from tests.helpers import FAST_HASH_METHOD, T0

LIMITS = Limits(per_name_and_address=3, per_address=5, window=timedelta(minutes=1))


def fail(session, *, action=LOG_IN, name="ann", address="10.0.0.1", now=T0, times=1):
    for _ in range(times):
        record_failure(session, action=action, name=name, address=address, now=now)
    session.commit()


def throttled(session, *, action=LOG_IN, name="ann", address="10.0.0.1", now=T0):
    return is_throttled(session, action=action, name=name, address=address, now=now, limits=LIMITS)


def test_failures_count_per_name_and_address(session):
    fail(session, times=3)
    assert throttled(session)
    assert throttled(session, name=" ANN ")  # names are compared as log-in compares them
    assert not throttled(session, address="10.0.0.2")  # the same name from elsewhere
    assert not throttled(session, name="bob")  # another name from the same address


def test_one_address_meets_a_higher_ceiling_over_every_name(session):
    for name in ("a", "b", "c", "d"):
        fail(session, name=name)
    assert not throttled(session, name="e")
    fail(session, name="e")
    assert throttled(session, name="someone-new")
    assert not throttled(session, name="someone-new", address="10.0.0.2")


def test_each_action_keeps_its_own_count(session):
    fail(session, action=JOIN, times=5)
    assert throttled(session, action=JOIN)
    assert not throttled(session, action=LOG_IN)
    assert not throttled(session, action=PASSWORD)


def test_failures_older_than_the_window_do_not_count(session):
    fail(session, times=3)
    assert throttled(session, now=T0 + timedelta(seconds=59))
    assert not throttled(session, now=T0 + timedelta(seconds=60))


def test_failures_older_than_a_day_are_forgotten_when_a_new_one_comes(session):
    fail(session, times=3)
    fail(session, name="bob", now=T0 + timedelta(days=1, seconds=1))
    assert session.scalars(select(FailedAttempt.name)).all() == ["bob"]


@pytest.fixture
def ann(session):
    teacher = accounts.create_account(session, username="mrs-k", password="long enough", role=Role.TEACHER,
                                      method=FAST_HASH_METHOD)
    made = classroom.start_class(session, teacher_id=teacher.id, name="Year 10")
    student = accounts.create_account(session, username="ann", password="long enough", role=Role.STUDENT,
                                      method=FAST_HASH_METHOD)
    return {"id": student.id, "code": made.join_code}


def test_wrong_join_codes_are_counted_until_joining_is_refused(session, ann):
    for n in range(3):
        with pytest.raises(Invalid):
            classroom.join_class(session, user_id=ann["id"], code=f"WRONG{n}", address="10.0.0.1", now=T0,
                                 limits=LIMITS)
    with pytest.raises(TooManyAttempts) as refused:
        classroom.join_class(session, user_id=ann["id"], code=ann["code"], address="10.0.0.1", now=T0, limits=LIMITS)
    assert refused.value.field == "code"
    later = T0 + timedelta(minutes=1)
    assert classroom.join_class(session, user_id=ann["id"], code=ann["code"], address="10.0.0.1", now=later,
                                limits=LIMITS).name == "Year 10"


def test_wrong_current_passwords_are_counted_until_changing_is_refused(session, ann):
    for n in range(3):
        with pytest.raises(Invalid):
            accounts.change_password(session, user_id=ann["id"], current=f"guess {n}", new="a new secret",
                                     address="10.0.0.1", now=T0, limits=LIMITS, method=FAST_HASH_METHOD)
    with pytest.raises(TooManyAttempts) as refused:
        accounts.change_password(session, user_id=ann["id"], current="long enough", new="a new secret",
                                 address="10.0.0.1", now=T0, limits=LIMITS, method=FAST_HASH_METHOD)
    assert refused.value.field == "current"


def test_the_current_password_cannot_be_chosen_as_the_new_one(session, ann):
    before = session.get(User, ann["id"]).password_hash
    with pytest.raises(Invalid) as refused:
        accounts.change_password(session, user_id=ann["id"], current="long enough", new="long enough",
                                 address="10.0.0.1", now=T0, method=FAST_HASH_METHOD)
    assert refused.value.field == "password"
    session.expire_all()
    assert session.get(User, ann["id"]).password_hash == before


@pytest.mark.parametrize("username", ["ab\n", "abc\n", "abc\x00", "a\tbc", "   ", "ab", "a" * 41, "a b c"])
def test_a_username_that_should_be_refused_is_refused_by_the_domain(session, username):
    with pytest.raises(Invalid) as refused:
        accounts.create_account(session, username=username, password="long enough", role=Role.STUDENT,
                                method=FAST_HASH_METHOD)
    assert refused.value.field == "username"
    assert session.scalar(select(func.count(User.id))) == 0


@pytest.mark.parametrize(("password", "message"), [
    ("short", "at least 8"), ("x" * 10_000, "at most 200"), ("long\x00enough", "control characters"),
])
def test_a_password_that_should_be_refused_says_why(session, password, message):
    with pytest.raises(Invalid, match=message):
        accounts.create_account(session, username="ann", password=password, role=Role.STUDENT,
                                method=FAST_HASH_METHOD)


@pytest.mark.parametrize("name", ["   ", "", "A", "Year\x0010", "Year\n10", "x" * 81])
def test_a_class_name_that_should_be_refused_is_refused_by_the_domain(session, ann, name):
    teacher_id = session.scalar(select(User.id).where(User.username == "mrs-k"))
    with pytest.raises(Invalid) as refused:
        classroom.start_class(session, teacher_id=teacher_id, name=name)
    assert refused.value.field == "name"
    assert session.scalar(select(func.count(Classroom.id))) == 1
