"""Fixtures shared by the web tests of a teacher's pages: the teacher and their first class."""

from __future__ import annotations

import pytest

from flashapp import db
from flashapp.models import Classroom
from tests.helpers import AuthActions, create_class


@pytest.fixture
def teacher(built_app):
    """The install's first account (so the teacher), logged in."""
    client = built_app.test_client()
    AuthActions(client).register("mrs-k")
    return client


@pytest.fixture
def classroom(built_app, teacher):
    """The teacher's class: its id and join code."""
    class_id = create_class(teacher)
    with built_app.app_context():
        return class_id, db.session.get(Classroom, class_id).join_code
