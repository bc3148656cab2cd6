"""Passwords are stored as real scrypt hashes unless a configuration asks for another method."""

from __future__ import annotations

from flashapp.accounts import hash_password, password_matches, register_user
from tests.helpers import FAST_HASH_METHOD


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
