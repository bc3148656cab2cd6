"""Classes: join codes without look-alikes, joining, regenerating, assignments, password resets."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import func, select
from werkzeug.security import check_password_hash

from flashapp.accounts import hash_password, register_user, set_password
from flashapp.classroom import (
    JOIN_CODE_ALPHABET,
    JoinCodeInvalid,
    NotAStudent,
    assign_deck,
    assigned_decks,
    create_classroom,
    is_student_of,
    join_classroom,
    regenerate_join_code,
    remove_student,
    temporary_password,
)
from flashapp.errors import Forbidden, Invalid
from flashapp.models import Enrollment
from tests.helpers import FAST_HASH_METHOD, build_numbers_deck


@pytest.fixture
def people(session):
    teacher = register_user(session, username="mrs-k", password="long enough", password_method=FAST_HASH_METHOD)
    ann = register_user(session, username="ann", password="long enough", password_method=FAST_HASH_METHOD)
    session.commit()
    return teacher, ann


def test_join_codes_use_no_look_alike_characters(session, people):
    teacher, _ = people
    codes = {create_classroom(session, teacher=teacher, name=f"Class {i}").join_code for i in range(40)}
    assert len(codes) == 40
    assert all(len(code) == 6 and set(code) <= set(JOIN_CODE_ALPHABET) for code in codes)
    assert not set("0O1IL2Z5S8B") & set(JOIN_CODE_ALPHABET)


def test_a_student_joins_with_the_code_however_it_is_typed(session, people):
    teacher, ann = people
    classroom = create_classroom(session, teacher=teacher, name="Anatomy 1")
    typed = " " + classroom.join_code[:3].lower() + "-" + classroom.join_code[3:].lower() + " "
    assert join_classroom(session, user=ann, code=typed) == classroom
    join_classroom(session, user=ann, code=classroom.join_code)  # twice changes nothing
    assert session.scalar(select(func.count(Enrollment.id))) == 1
    assert is_student_of(session, teacher_id=teacher.id, student_id=ann.id)


def test_a_wrong_or_replaced_code_is_refused(session, people):
    teacher, ann = people
    classroom = create_classroom(session, teacher=teacher, name="Anatomy 1")
    with pytest.raises(JoinCodeInvalid):
        join_classroom(session, user=ann, code="XXXXXX")
    old = classroom.join_code
    new = regenerate_join_code(session, classroom)
    assert new != old
    with pytest.raises(JoinCodeInvalid):
        join_classroom(session, user=ann, code=old)
    assert join_classroom(session, user=ann, code=new) == classroom


def test_only_students_join_and_only_teachers_create(session, people):
    teacher, ann = people
    classroom = create_classroom(session, teacher=teacher, name="Anatomy 1")
    with pytest.raises(NotAStudent):
        join_classroom(session, user=teacher, code=classroom.join_code)
    with pytest.raises(Forbidden):
        create_classroom(session, teacher=ann, name="Mine")


def test_removing_a_student_keeps_them_and_their_account(session, people):
    teacher, ann = people
    classroom = create_classroom(session, teacher=teacher, name="Anatomy 1")
    join_classroom(session, user=ann, code=classroom.join_code)
    assert remove_student(session, classroom=classroom, user_id=ann.id) is True
    assert not is_student_of(session, teacher_id=teacher.id, student_id=ann.id)
    assert remove_student(session, classroom=classroom, user_id=ann.id) is False


def test_assigned_decks_take_the_earliest_target_across_classes(session, people):
    teacher, ann = people
    deck = build_numbers_deck(session)
    first = create_classroom(session, teacher=teacher, name="Class A")
    second = create_classroom(session, teacher=teacher, name="Class B")
    for classroom in (first, second):
        join_classroom(session, user=ann, code=classroom.join_code)
    assign_deck(session, classroom=first, deck_id=deck.id, target_date=date(2026, 5, 1))
    assign_deck(session, classroom=second, deck_id=deck.id, target_date=date(2026, 4, 1))
    assert assigned_decks(session, ann.id)[deck.id].target_date == date(2026, 4, 1)
    assign_deck(session, classroom=second, deck_id=deck.id, target_date=None)  # changing, not adding
    assert assigned_decks(session, ann.id)[deck.id].target_date == date(2026, 5, 1)
    with pytest.raises(Invalid):
        assign_deck(session, classroom=first, deck_id=9999)


def test_a_password_reset_gives_a_one_time_password_and_ends_sessions(session, people):
    _, ann = people
    token = ann.session_token
    temporary = temporary_password()
    set_password(ann, password_hash=hash_password(temporary, method=FAST_HASH_METHOD), temporary=True)
    assert len(temporary) == 10 and ann.must_change_password
    assert check_password_hash(ann.password_hash, temporary)
    assert not check_password_hash(ann.password_hash, "long enough")
    assert ann.session_token != token
