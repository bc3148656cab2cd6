"""Permissions on the teacher's side: every route with an id walked as the wrong person."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from flashapp import db
from flashapp.models import Card, Classroom, User
from tests.helpers import AuthActions, create_class, csrf_token


@pytest.fixture
def school(built_app, runner):
    """Teacher A with a class and a student in it; teacher B; a student outside any class."""
    teacher_a, teacher_b = built_app.test_client(), built_app.test_client()
    AuthActions(teacher_a).register("teacher-a")
    runner.invoke(args=["user", "create", "--teacher", "teacher-b", "--password", "correct horse"])
    AuthActions(teacher_b).login("teacher-b")
    class_id = create_class(teacher_a)
    with built_app.app_context():
        code = db.session.get(Classroom, class_id).join_code
    student = built_app.test_client()
    AuthActions(student).register("ann", class_code=code)
    outsider = built_app.test_client()
    AuthActions(outsider).register("zed")
    with built_app.app_context():
        ids = {"class_id": class_id, "user_id": db.session.scalar(select(User.id).where(User.username == "ann")),
               "card_id": db.session.scalar(select(Card.id).limit(1)), "deck_id": 1}
    return {"a": teacher_a, "b": teacher_b, "ann": student, "zed": outsider, "ids": ids, "code": code}


def teacher_routes(app, ids):
    """Every URL of the teacher's side, with the given ids filled in, and its methods."""
    for rule in app.url_map.iter_rules():
        if rule.endpoint.startswith("teach."):
            url = rule.rule
            for name, value in ids.items():
                url = url.replace(f"<int:{name}>", str(value))
            assert "<" not in url, f"no id to fill in {rule.rule}"
            yield url, sorted(rule.methods - {"HEAD", "OPTIONS"})


def test_the_owner_reaches_every_teacher_page(built_app, school):
    for url, methods in teacher_routes(built_app, school["ids"]):
        if "GET" in methods:
            assert school["a"].get(url).status_code == 200, url


@pytest.mark.parametrize(("who", "allowed"), [("ann", {403}), ("zed", {403}), ("b", {403, 404})])
def test_nobody_else_reaches_a_teacher_page(built_app, school, who, allowed):
    client = school[who]
    token = csrf_token(client.get("/account").get_data(as_text=True))
    for url, methods in teacher_routes(built_app, school["ids"]):
        if who == "b" and url == "/teach/":
            continue  # B's own list of classes
        for method in methods:
            response = client.open(url, method=method, data={"csrf_token": token, "name": "x", "deck_id": "1"})
            assert response.status_code in allowed, (who, method, url, response.status_code)
    if who == "b":
        # Teacher B's own class list does not show A's class.
        assert "Anatomy 1" not in client.get("/teach/").get_data(as_text=True)


def test_a_teacher_cannot_see_a_student_of_another_class_of_their_own(built_app, school):
    other_class = create_class(school["a"], "Other")
    url = f"/teach/classes/{other_class}/students/{school['ids']['user_id']}"
    assert school["a"].get(url).status_code == 404
