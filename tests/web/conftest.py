"""Fixtures shared by the web tests of a teacher's pages: the teacher and their first class."""

from __future__ import annotations

import pytest

from flashapp import db
from flashapp.models import Classroom
from tests.helpers import STUDY, AuthActions, answer, create_class, showing


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


@pytest.fixture
def student(built_app, classroom):
    """Ann, who joined the class and answered one card Good."""
    ann = built_app.test_client()
    AuthActions(ann).register("ann", class_code=classroom[1])
    answer(ann, showing(ann.get(STUDY).get_data(as_text=True)), "3")
    return ann
