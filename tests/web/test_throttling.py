"""Throttling through the web: log-in, join codes and the current password, counted per name and address."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from flashapp import db
from flashapp.models import Classroom, Enrollment, FailedAttempt, User
from tests.helpers import AuthActions, create_class, csrf_token

LIMIT = 10  # the default failures per name and address


def log_in_from(client, username, password="wrong password", address="10.0.0.1"):
    token = csrf_token(client.get("/login").get_data(as_text=True))
    return client.post("/login", data={"username": username, "password": password, "csrf_token": token},
                       environ_base={"REMOTE_ADDR": address})


def failures(app, action) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count(FailedAttempt.id)).where(FailedAttempt.action == action))


@pytest.fixture
def school(built_app):
    teacher = built_app.test_client()
    AuthActions(teacher).register("mrs-k")
    class_id = create_class(teacher)
    with built_app.app_context():
        code = db.session.get(Classroom, class_id).join_code
    return {"teacher": teacher, "class_id": class_id, "code": code}


def test_ten_failed_log_ins_for_one_account_from_one_address_are_answered_429(app, client):
    AuthActions(client).register("ada")
    AuthActions(client).logout()
    for _ in range(LIMIT):
        assert log_in_from(client, "ada", address="10.0.0.1").status_code == 400
    refused = log_in_from(client, "ada", password="correct horse", address="10.0.0.1")
    assert refused.status_code == 429
    html = refused.get_data(as_text=True)
    assert "Too many failed log-ins" in html and 'id="password-error"' in html
    assert client.get("/").status_code == 302  # the right password did not get through either


def test_a_guesser_elsewhere_cannot_lock_a_student_out_of_their_own_machine(app, client):
    AuthActions(client).register("ada")
    AuthActions(client).logout()
    guesser = app.test_client()
    for _ in range(LIMIT + 5):
        log_in_from(guesser, "ada", address="10.6.6.6")
    assert log_in_from(guesser, "ada", address="10.6.6.6").status_code == 429
    assert log_in_from(client, "ada", password="correct horse", address="10.0.0.7").status_code == 302


def test_a_class_behind_one_router_does_not_share_one_count(app):
    clients = {}
    for n in range(30):
        clients[n] = app.test_client()
        AuthActions(clients[n]).register(f"pupil{n}")
        AuthActions(clients[n]).logout()
    for n, client in clients.items():
        for _ in range(3):  # everyone mistypes three times, all from the school's one public address
            assert log_in_from(client, f"pupil{n}", address="192.0.2.1").status_code == 400
    for n, client in clients.items():
        assert log_in_from(client, f"pupil{n}", password="correct horse", address="192.0.2.1").status_code == 302


def test_one_address_trying_many_accounts_meets_a_higher_ceiling(app, client):
    app.config["THROTTLE_FAILURES_PER_ADDRESS"] = 25
    for n in range(25):
        assert log_in_from(client, f"user{n}", address="10.9.9.9").status_code == 400
    assert log_in_from(client, "someone", address="10.9.9.9").status_code == 429
    assert log_in_from(client, "someone", address="10.9.9.8").status_code == 400
    assert failures(app, "log-in") == 26


def test_the_limits_come_from_the_configuration(app, client):
    app.config["THROTTLE_FAILURES_PER_NAME_AND_ADDRESS"] = 3
    for _ in range(3):
        assert log_in_from(client, "ada").status_code == 400
    assert log_in_from(client, "ada").status_code == 429
    app.config["THROTTLE_WINDOW_SECONDS"] = 0  # nothing recent any more
    assert log_in_from(client, "ada").status_code == 400


def join(client, code, address="10.0.0.1"):
    token = csrf_token(client.get("/join").get_data(as_text=True))
    return client.post("/join", data={"code": code, "csrf_token": token}, environ_base={"REMOTE_ADDR": address})


def test_guessing_join_codes_is_answered_429_after_ten_wrong_ones(built_app, school):
    student = built_app.test_client()
    AuthActions(student).register("ann")
    for n in range(LIMIT):
        wrong = join(student, f"WRONG{n}")
        assert wrong.status_code == 400 and "No class has that code" in wrong.get_data(as_text=True)
    refused = join(student, school["code"])
    assert refused.status_code == 429
    html = refused.get_data(as_text=True)
    assert "Too many wrong class codes" in html and 'id="code-error"' in html
    with built_app.app_context():
        assert db.session.scalar(select(func.count(Enrollment.id))) == 0
    # Another student at the same address still joins.
    other = built_app.test_client()
    AuthActions(other).register("bob")
    assert join(other, school["code"]).status_code == 302


def test_guessing_join_codes_at_sign_up_is_throttled_too(built_app, school):
    client = built_app.test_client()
    for n in range(LIMIT):
        assert AuthActions(client).register("ann", class_code=f"WRONG{n}").status_code == 400
    refused = AuthActions(client).register("ann", class_code=school["code"])
    assert refused.status_code == 429
    assert "Too many wrong class codes" in refused.get_data(as_text=True)
    with built_app.app_context():
        assert db.session.scalar(select(func.count(User.id))) == 1  # the teacher only
    assert failures(built_app, "join") == LIMIT


def change_password(client, current, new="a new secret", address="10.0.0.1"):
    token = csrf_token(client.get("/account/password").get_data(as_text=True))
    return client.post("/account/password", data={"current": current, "password": new, "confirm": new,
                                                   "csrf_token": token}, environ_base={"REMOTE_ADDR": address})


def test_guessing_the_current_password_is_answered_429_after_ten_wrong_ones(app, client):
    AuthActions(client).register("ada")
    for n in range(LIMIT):
        assert change_password(client, f"guess number {n}").status_code == 400
    refused = change_password(client, "correct horse")
    assert refused.status_code == 429
    html = refused.get_data(as_text=True)
    assert "Too many wrong passwords" in html and 'id="current-error"' in html
    AuthActions(client).logout()
    assert AuthActions(client).login("ada", "correct horse").status_code == 302  # unchanged
