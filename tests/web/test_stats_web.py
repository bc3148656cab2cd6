"""The statistics page: the student's own, a teacher's view of a student, who may see which, bad addresses."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import func, select

from flashapp import db
from flashapp.models import Base, User
from tests.helpers import STUDY, AuthActions, answer, showing


@pytest.fixture
def pupil(built_app, classroom):
    """Ann, in the teacher's class, with three answers today: Again, Good, Good."""
    _, code = classroom
    client = built_app.test_client()
    AuthActions(client).register("ann", class_code=code)
    for rating in ("1", "3", "3"):
        answer(client, showing(client.get(STUDY).get_data(as_text=True)), rating)
    with built_app.app_context():
        user_id = db.session.scalar(select(User.id).where(User.username == "ann"))
    return client, user_id


def row_counts(app) -> dict[str, int]:
    with app.app_context():
        return {table.name: db.session.scalar(select(func.count()).select_from(table))
                for table in Base.metadata.sorted_tables}


def test_the_student_sees_today_and_every_chart_with_its_table(pupil):
    client, _ = pupil
    response = client.get("/stats")
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    page = response.get_data(as_text=True)
    today = re.search(r'<dl class="summary today-summary">(.*?)</dl>', page, re.S).group(1)
    numbers = re.findall(r"<dd>([^<]+)</dd>", today)
    assert numbers[0] == "3" and numbers[2] == "67%" and numbers[3] == "1"
    for heading in ("Calendar", "Due in the next 30 days", "Answers per day", "Card counts", "True retention",
                    "Answer buttons", "Hours of the day", "Review intervals", "Stability", "Difficulty",
                    "Recall predicted now"):
        assert f">{heading}" in page, heading
    charts = re.findall(r'<svg class="chart" viewBox="[^"]+" role="img" aria-label="([^"]+)"', page)
    # The calendar is drawn twice, a year in one row for wide screens and two half-years for phones.
    assert len(charts) == 11 and charts.count(charts[0]) == 2
    assert page.count('<details class="numbers">') == 10, "each chart has its numbers in a table"
    # Three answers to two cards, learning: the buttons table says so.
    assert re.search(r'<th scope="row">Learning</th><td class="num">1</td><td class="num">0</td>'
                     r'<td class="num">2</td><td class="num">0</td><td class="num">67%</td>', page)
    assert '<a href="/stats">Statistics</a>' in page


def test_periods_and_decks_are_chosen_by_address(pupil):
    client, _ = pupil
    year = client.get("/stats?period=year&deck=back-muscles").get_data(as_text=True)
    assert '<option value="year" selected>' in year
    assert '<option value="back-muscles" selected>' in year
    assert "Answers per day <span class=\"hint\">· last 12 months" in year
    today = client.get("/stats?period=today").get_data(as_text=True)
    assert '<option value="today" selected>' in today


@pytest.mark.parametrize(("query", "status", "message"), [
    ("period=decade", 400, "No period &#39;decade&#39;. Choose today, month or year."),
    ("deck=no-such-deck", 404, "No deck &#39;no-such-deck&#39;. Decks: back-muscles."),
    ("deck=no-such-deck&period=decade", 400, "Choose today, month or year."),
])
def test_an_unknown_period_or_deck_is_refused_and_changes_nothing(built_app, pupil, query, status, message):
    client, _ = pupil
    before = row_counts(built_app)
    response = client.get(f"/stats?{query}")
    assert response.status_code == status
    assert message in response.get_data(as_text=True)
    assert row_counts(built_app) == before


def test_the_page_needs_a_log_in(built_app):
    response = built_app.test_client().get("/stats")
    assert response.status_code == 302 and "/login" in response.headers["Location"]


def test_the_teacher_sees_a_students_page_from_the_roster(teacher, classroom, pupil):
    class_id, _ = classroom
    _, user_id = pupil
    roster = teacher.get(f"/teach/classes/{class_id}").get_data(as_text=True)
    url = f"/teach/classes/{class_id}/students/{user_id}/stats"
    assert f'href="/teach/classes/{class_id}/students/{user_id}/stats">Statistics' in roster
    student_page = teacher.get(f"/teach/classes/{class_id}/students/{user_id}").get_data(as_text=True)
    assert f'href="{url}"' in student_page
    response = teacher.get(url + "?period=year")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert "<h1>ann's statistics</h1>" in page
    assert re.search(r'<dd>3</dd>', page), "the student's answers, not the teacher's"
    assert f'action="{url}"' in page
    assert teacher.get(url + "?period=never").status_code == 400
    assert teacher.get(url + "?deck=never").status_code == 404


def test_only_the_students_teachers_see_their_page(built_app, classroom, pupil):
    class_id, _ = classroom
    student, user_id = pupil
    url = f"/teach/classes/{class_id}/students/{user_id}/stats"
    assert student.get(url).status_code == 403
    built_app.test_cli_runner().invoke(args=["user", "create", "--teacher", "mr-b", "--password", "correct horse"])
    other_teacher = built_app.test_client()
    AuthActions(other_teacher).login("mr-b")
    assert other_teacher.get("/teach/").status_code == 200
    assert other_teacher.get(url).status_code == 404
    outsider = built_app.test_client()
    AuthActions(outsider).register("zed")
    with built_app.app_context():
        zed = db.session.scalar(select(User.id).where(User.username == "zed"))
    teacher = built_app.test_client()
    AuthActions(teacher).login("mrs-k")
    assert teacher.get(f"/teach/classes/{class_id}/students/{zed}/stats").status_code == 404
    assert teacher.get(url).status_code == 200
