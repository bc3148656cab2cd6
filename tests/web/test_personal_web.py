"""The student's memory model on the account page, their desired retention, and the roster's parameters column."""

from __future__ import annotations

import json
import re
from datetime import datetime, timezone

import pytest
from sqlalchemy import func, select

from flashapp import db
from flashapp.models import CardState, Classroom, PersonalParameters, ReviewLog, User
from tests.helpers import STUDY, AuthActions, answer, create_class, csrf_token, showing, true_parameters


@pytest.fixture
def student(built_app, teacher):
    class_id = create_class(teacher)
    with built_app.app_context():
        code = db.session.get(Classroom, class_id).join_code
    client = built_app.test_client()
    AuthActions(client).register("ann", class_code=code)
    return client, class_id


def give_personal_parameters(app, username="ann"):
    with app.app_context():
        user = db.session.scalar(select(User).where(User.username == username))
        db.session.add(PersonalParameters(
            user_id=user.id, parameters=json.dumps(true_parameters()),
            fitted_at=datetime(2026, 3, 2, tzinfo=timezone.utc),
            review_count=812, log_loss_before=0.4673, rmse_before=0.0889, log_loss_after=0.4534, rmse_after=0.0719,
            tried_at=datetime(2026, 3, 2, tzinfo=timezone.utc), tried_review_count=812, tried_outcome="kept"))
        db.session.commit()


def test_the_account_page_says_the_defaults_are_in_use_until_a_fit_is_kept(built_app, student):
    client, _ = student
    page = client.get("/account").get_data(as_text=True)
    assert "The default FSRS parameters are in use." in page
    give_personal_parameters(built_app)
    page = client.get("/account").get_data(as_text=True)
    assert "Personal FSRS parameters in use" in page and "02 Mar 2026" in page and "812 reviews" in page
    assert "0.4673 → 0.4534" in page and "0.0889 → 0.0719" in page


def test_the_account_page_prices_each_desired_retention_in_a_chart_and_a_table(student):
    client, _ = student
    page = client.get("/account").get_data(as_text=True)
    assert "<svg" in page and "<polyline" in page
    rows = [float(x) for x in re.findall(r"<tr><td>(0\.\d\d)</td>", page)]
    assert rows == [0.80, 0.85, 0.90, 0.95]


def easy_interval(client) -> float:
    """The Easy button's interval on the study page, in days."""
    label = re.findall(r'<span class="interval">([^<]+)</span>', client.get(STUDY).get_data(as_text=True))[-1]
    number, unit = re.fullmatch(r"([\d.]+)(d|mo|y)", label).groups()
    return float(number) * {"d": 1, "mo": 365 / 12, "y": 365}[unit]


def choose_retention(client, value: str):
    token = csrf_token(client.get("/account").get_data(as_text=True))
    return client.post("/account", data={"desired_retention": value, "csrf_token": token})


def test_a_student_chooses_a_desired_retention_and_their_buttons_follow_it(built_app, student):
    client, _ = student
    assert easy_interval(client) == 8  # a new card's Easy under the defaults at 0.90
    response = choose_retention(client, "0.75")
    assert response.status_code == 302
    with built_app.app_context():
        assert db.session.scalar(select(User.desired_retention).where(User.username == "ann")) == 0.75
    assert "Now: <b>0.75</b>" in client.get("/account").get_data(as_text=True)
    assert easy_interval(client) > 8
    choose_retention(client, "0.97")
    assert easy_interval(client) < 8
    choose_retention(client, "")
    assert easy_interval(client) == 8


def test_a_desired_retention_out_of_range_is_refused_and_changes_nothing(built_app, student):
    client, _ = student
    token = csrf_token(client.get("/account").get_data(as_text=True))
    response = client.post("/account", data={"desired_retention": "0.99", "csrf_token": token})
    assert response.status_code == 400
    # The message sits beside the input, which points to it.
    html = response.get_data(as_text=True)
    assert html.count('id="desired_retention-error"') == 1
    assert 'aria-describedby="desired_retention-error"' in html and 'aria-invalid="true"' in html
    with built_app.app_context():
        assert db.session.scalar(select(User.desired_retention).where(User.username == "ann")) is None


def test_the_roster_says_whose_parameters_are_personal(built_app, teacher, student):
    _, class_id = student
    assert ">defaults<" in teacher.get(f"/teach/classes/{class_id}").get_data(as_text=True)
    give_personal_parameters(built_app)
    page = teacher.get(f"/teach/classes/{class_id}").get_data(as_text=True)
    assert 'personal <span class="hint">since 02 Mar</span>' in page


def set_class_default(teacher, class_id: int, value: str):
    token = csrf_token(teacher.get(f"/teach/classes/{class_id}").get_data(as_text=True))
    return teacher.post(f"/teach/classes/{class_id}/retention", data={"desired_retention": value, "csrf_token": token})


def test_a_class_default_retention_applies_to_students_who_chose_none(built_app, teacher, student):
    client, class_id = student
    assert set_class_default(teacher, class_id, "0.75").status_code == 303
    assert easy_interval(client) > 8
    assert "Now: <b>0.75</b> (your class's default)" in client.get("/account").get_data(as_text=True)
    choose_retention(client, "0.97")  # the student's own choice wins
    assert easy_interval(client) < 8
    choose_retention(client, "")
    set_class_default(teacher, class_id, "")
    assert easy_interval(client) == 8


def test_a_class_default_out_of_range_or_for_another_teachers_class_changes_nothing(built_app, teacher, student):
    _, class_id = student
    set_class_default(teacher, class_id, "0.5")
    other = built_app.test_client()
    AuthActions(other).register("mr-b")
    with built_app.app_context():
        db.session.get(User, 3).role = "teacher"  # mrs-k, ann, then mr-b
        db.session.commit()
    token = csrf_token(other.get("/teach/").get_data(as_text=True))
    response = other.post(f"/teach/classes/{class_id}/retention",
                          data={"desired_retention": "0.8", "csrf_token": token})
    assert response.status_code == 404
    with built_app.app_context():
        assert db.session.get(Classroom, class_id).desired_retention is None


def test_a_student_reschedules_their_cards_after_asking(built_app, student):
    client, _ = student
    for _ in range(3):  # three new cards answered Easy: review cards due in days
        assert answer(client, showing(client.get(STUDY).get_data(as_text=True)), "4").status_code == 303
    with built_app.app_context():
        dues = dict(db.session.execute(select(CardState.card_id, CardState.due)).all())
    assert len(dues) == 3
    account = client.get("/account").get_data(as_text=True)
    assert 'href="/account/reschedule"' in account
    question = client.get("/account/reschedule")  # asks first, changing nothing
    assert question.status_code == 200 and "Reschedule your cards?" in question.get_data(as_text=True)
    assert client.post("/account/reschedule", data={}).status_code == 400  # no CSRF token: refused, nothing done
    choose_retention(client, "0.97")
    with built_app.app_context():
        assert dict(db.session.execute(select(CardState.card_id, CardState.due)).all()) == dues
    token = csrf_token(question.get_data(as_text=True))
    done = client.post("/account/reschedule", data={"csrf_token": token}, follow_redirects=True)
    assert "Rescheduled 3 of your 3 learned cards: 3 sooner, 0 later." in done.get_data(as_text=True)
    with built_app.app_context():
        after = dict(db.session.execute(select(CardState.card_id, CardState.due)).all())
        assert all(after[card] < dues[card] for card in dues)
        assert db.session.scalar(select(func.count(ReviewLog.id)).where(ReviewLog.due_as_answered.is_not(None))) == 3
