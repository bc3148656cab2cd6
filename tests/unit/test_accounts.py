"""Passwords are stored as real scrypt hashes unless a configuration asks for another method."""

from __future__ import annotations

import json
from datetime import datetime, timezone

from fsrs import Scheduler
from werkzeug.security import check_password_hash

from flashapp.accounts import SignedIn, hash_password, password_matches, register_user, session_user
from flashapp.classroom import create_classroom, join_classroom
from flashapp.models import PersonalParameters, Role
from flashapp.personal import desired_retention_of, student_scheduler
from tests.helpers import FAST_HASH_METHOD

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=timezone.utc)
OWN = [0.3, *Scheduler().parameters[1:]]  # fitted parameters: the defaults but the first


def test_new_passwords_are_hashed_with_scrypt_by_default(session):
    user = register_user(session, username="ada", password="correct horse")
    session.commit()
    assert user.password_hash.startswith("scrypt:")
    assert "correct horse" not in user.password_hash
    assert password_matches(user.password_hash, "correct horse")
    assert not password_matches(user.password_hash, "correct horse!")


def test_another_method_is_used_only_when_asked_for():
    fast = hash_password("correct horse", method=FAST_HASH_METHOD)
    assert fast.startswith("pbkdf2:sha256:1$")
    assert password_matches(fast, "correct horse")
    assert hash_password("correct horse").startswith("scrypt:")


def test_a_missing_hash_never_matches():
    assert not password_matches(None, "correct horse")
    assert not password_matches(None, "not a real password")


def test_a_wrong_name_is_checked_against_a_hash_as_costly_as_a_new_password():
    """The hash checked when no such user exists has the parameters (so the cost) of a new scrypt hash."""
    from flashapp.accounts import _DUMMY_HASH

    method, salt, digest = _DUMMY_HASH.split("$")
    assert method == hash_password("correct horse").split("$")[0]
    assert len(salt) == 16 and len(bytes.fromhex(digest)) == 64
    assert check_password_hash(_DUMMY_HASH, "not a real password")


def test_a_login_session_reads_the_user_with_what_their_scheduling_needs(session):
    teacher = register_user(session, username="tess", password="correct horse", role="teacher",
                            password_method=FAST_HASH_METHOD)
    ada = register_user(session, username="ada", password="correct horse", password_method=FAST_HASH_METHOD)
    session.flush()
    classroom = create_classroom(session, teacher=teacher, name="Anatomy")
    join_classroom(session, user=ada, code=classroom.join_code)
    classroom.desired_retention = 0.85
    session.add(PersonalParameters(user_id=ada.id, parameters=json.dumps(OWN), tried_at=NOW,
                                   tried_review_count=500))
    session.commit()

    signed_in = session_user(session, ada.get_id())
    assert signed_in == SignedIn(
        id=ada.id, username="ada", role=Role.STUDENT, time_zone="UTC", session_token=ada.session_token,
        must_change_password=False, desired_retention=None, class_retention=0.85,
        own_parameters=json.dumps(OWN))
    assert signed_in.get_id() == ada.get_id() and not signed_in.is_teacher and signed_in.is_authenticated
    assert desired_retention_of(signed_in) == 0.85
    assert student_scheduler(Scheduler(), signed_in).parameters == tuple(OWN)

    bare = session_user(session, teacher.get_id())
    assert bare is not None and bare.is_teacher
    assert (bare.class_retention, bare.own_parameters, bare.desired_retention) == (None, None, None)


def test_a_login_session_ends_with_its_token_or_its_account(session):
    ada = register_user(session, username="ada", password="correct horse", password_method=FAST_HASH_METHOD)
    session.commit()
    user_id, token = ada.id, ada.session_token
    for wrong in (f"{user_id}:{token}x", f"{user_id}:", f"{user_id}", f"x{user_id}:{token}", f"{user_id + 1}:{token}"):
        assert session_user(session, wrong) is None, wrong
    ada.session_token = "replaced"
    session.commit()
    assert session_user(session, f"{user_id}:{token}") is None
    assert session_user(session, f"{user_id}:replaced") is not None
