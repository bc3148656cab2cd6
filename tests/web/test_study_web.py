"""The web UI through the test client: pages, forms, CSRF, one answer per showing, undo, isolation."""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

import pytest
from sqlalchemy import func, select

from flashapp import db
from flashapp.models import Card, CardState, ReviewLog, User
from tests.helpers import NEXT_DAY_START, STUDY, AuthActions, answer, build_decks_in, csrf_token, showing, write_deck


def review_count(app, username=None) -> int:
    with app.app_context():
        query = select(func.count(ReviewLog.id))
        if username:
            query = query.join(User, User.id == ReviewLog.user_id).where(User.username == username)
        return db.session.scalar(query)


@pytest.fixture
def student(built_app, client):
    auth = AuthActions(client)
    auth.register("ada")
    return auth


def test_the_first_account_is_the_teacher_and_the_next_a_student(app, client):
    auth = AuthActions(client)
    response = auth.register("teach")
    assert response.status_code == 302
    assert "You are the teacher" in client.get("/").get_data(as_text=True)
    auth.logout()
    auth.register("pupil")
    with app.app_context():
        roles = dict(db.session.execute(select(User.username, User.role)).all())
    assert roles == {"teach": "teacher", "pupil": "student"}


def test_every_page_renders(student, client):
    pages = {"/": "Back muscles", STUDY: "Show answer", "/history": "No answers yet",
             "/history.csv": "reviewed_at_utc", "/healthz": '"database"'}
    for url, text in pages.items():
        response = client.get(url)
        assert response.status_code == 200, url
        assert text in response.get_data(as_text=True), url
    apkg = client.get("/decks/back-muscles.apkg")
    assert apkg.status_code == 200 and apkg.data[:2] == b"PK"
    student.logout()
    for url in ("/login", "/register"):
        assert client.get(url).status_code == 200


def test_pages_need_a_login(built_app, client):
    for url in ("/", STUDY, "/history", "/history.csv", "/decks/back-muscles.apkg"):
        response = client.get(url)
        assert response.status_code == 302 and "/login" in response.headers["Location"], url


def test_healthz_reports_the_database(app, client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok", "checks": {"database": "ok", "writes": "ok", "integrity": "ok"}}


def test_every_response_carries_the_security_headers(client):
    response = client.get("/login")
    assert response.headers["Content-Security-Policy"].startswith(
        "default-src 'self'; object-src 'none'; frame-ancestors 'none'")
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert "<script>" not in response.get_data(as_text=True)


def test_the_study_page_shows_a_question_and_four_buttons_with_intervals(student, client):
    html = client.get(STUDY).get_data(as_text=True)
    assert "Which layer" in html or "?" in html
    labels = re.findall(r'<span class="interval">([^<]+)</span>\s*<span class="label">(\w+)</span>', html)
    assert labels == [("&lt;1m", "Again"), ("&lt;6m", "Hard"), ("&lt;10m", "Good"), ("8d", "Easy")]


def test_answering_moves_on_and_is_recorded(student, client, built_app):
    first = showing(client.get(STUDY).get_data(as_text=True))
    response = answer(client, first, "4")
    assert response.status_code == 303 and response.headers["Location"].endswith(STUDY)
    second = showing(client.get(STUDY).get_data(as_text=True))
    assert second["card_id"] != first["card_id"]
    assert review_count(built_app) == 1


def test_the_same_answer_sent_twice_records_one_review(student, client, built_app):
    fields = showing(client.get(STUDY).get_data(as_text=True))
    assert answer(client, fields, "3").status_code == 303
    again = answer(client, fields, "3")
    assert again.status_code == 303
    assert review_count(built_app) == 1
    page = client.get(STUDY).get_data(as_text=True)
    assert "already answered" not in page


def test_a_post_without_a_csrf_token_is_refused_and_changes_nothing(student, client, built_app):
    fields = showing(client.get(STUDY).get_data(as_text=True))
    del fields["csrf_token"]
    response = answer(client, fields)
    assert response.status_code == 400
    assert "expired or was not sent by this site" in response.get_data(as_text=True)
    assert client.post(f"{STUDY}/undo").status_code == 400
    assert client.post("/logout").status_code == 400
    assert review_count(built_app) == 0
    assert client.get("/").status_code == 200  # still logged in


@pytest.mark.parametrize(("change", "message"), [
    ({"rating": "7"}, "A rating is 1 to 4."),
    ({"rating": "good"}, "Choose Again, Hard, Good or Easy."),
    ({"token": ""}, "This answer carries no showing of a card."),
])
def test_a_bad_answer_gets_a_message_and_records_nothing(student, client, built_app, change, message):
    fields = showing(client.get(STUDY).get_data(as_text=True))
    data = {"csrf_token": fields["csrf_token"], "token": fields["token"], "rating": "3", **change}
    response = client.post(f"{STUDY}/answer", data=data)
    assert response.status_code == 400
    body = response.get_data(as_text=True)
    assert "Nothing was recorded" in body and message in body
    assert review_count(built_app) == 0


def test_a_showing_answered_through_another_deck_or_no_deck_is_not_found(student, client, built_app):
    fields = showing(client.get(STUDY).get_data(as_text=True))
    build_decks_in(built_app, [write_deck(Path(built_app.instance_path))])
    assert answer(client, fields, slug="planets").status_code == 404
    assert answer(client, fields, slug="no-such-deck").status_code == 404
    assert client.get("/study/no-such-deck").status_code == 404
    assert review_count(built_app) == 0
    assert answer(client, fields).status_code == 303
    assert review_count(built_app) == 1


def test_an_answer_given_in_another_window_makes_this_showing_stale(student, client, built_app):
    first_window = showing(client.get(STUDY).get_data(as_text=True))
    second_window = showing(client.get(STUDY).get_data(as_text=True))
    assert first_window["card_id"] == second_window["card_id"] and first_window["token"] != second_window["token"]
    assert answer(client, first_window, "4").status_code == 303
    stale = answer(client, second_window, "1")
    assert stale.status_code == 303
    assert "already answered in another window" in client.get(STUDY).get_data(as_text=True)
    assert review_count(built_app) == 1


def test_undo_restores_the_card_and_shows_it_again(student, client, built_app):
    fields = showing(client.get(STUDY).get_data(as_text=True))
    answer(client, fields, "4")
    token = csrf_token(client.get(STUDY).get_data(as_text=True))
    response = client.post(f"{STUDY}/undo", data={"csrf_token": token})
    assert response.status_code == 303
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Undid your last answer." in page and "There is no answer to undo" not in page
    assert showing(page)["card_id"] == fields["card_id"]
    assert "New card" in page
    assert "Undo last answer" not in page  # nothing left to undo
    assert review_count(built_app) == 0
    with built_app.app_context():
        assert db.session.scalar(select(func.count(CardState.id))) == 0
    # Shown once: answering it goes on to the next card, and the address cannot bring it back.
    answer(client, showing(page), "4")
    assert showing(client.get(STUDY).get_data(as_text=True))["card_id"] != fields["card_id"]
    assert showing(client.get(f"{STUDY}?card={fields['card_id']}").get_data(as_text=True))["card_id"] != \
        fields["card_id"]
    assert review_count(built_app) == 1
    with built_app.app_context():
        assert db.session.scalar(select(func.count(CardState.id))) == 1


def test_one_user_cannot_see_or_undo_another_users_answers(built_app, client):
    ada = AuthActions(client)
    ada.register("ada")
    answer(client, showing(client.get(STUDY).get_data(as_text=True)), "4")
    ada.logout()

    bob = AuthActions(client)
    bob.register("bob")
    assert "No answers yet" in client.get("/history").get_data(as_text=True)
    assert client.get("/history.csv").get_data(as_text=True).count("\n") == 1
    token = csrf_token(client.get(STUDY).get_data(as_text=True))
    client.post(f"{STUDY}/undo", data={"csrf_token": token})
    assert review_count(built_app, "ada") == 1
    # Bob's study page still offers him the first new card: Ada's answer is hers alone.
    with built_app.app_context():
        first = db.session.scalar(select(Card.id).order_by(Card.position).limit(1))
    assert showing(client.get(STUDY).get_data(as_text=True))["card_id"] == str(first)


def test_history_lists_answers_newest_first_and_pages(student, client, built_app):
    built_app.config["HISTORY_PAGE_SIZE"] = 2
    questions = []
    for rating in ("4", "3", "4"):
        page = client.get(STUDY).get_data(as_text=True)
        questions.append(re.search(r'<h1 class="question">([^<]+)</h1>', page).group(1))
        answer(client, showing(page), rating)
    first = client.get("/history").get_data(as_text=True)
    assert "3 answers" in first and "Page 1 of 2" in first
    rows = re.findall(r'<td class="question">([^<]+)<', first)
    assert rows == [questions[2], questions[1]]
    second = client.get("/history?page=2").get_data(as_text=True)
    assert re.findall(r'<td class="question">([^<]+)<', second) == [questions[0]]
    assert client.get("/history?page=99").status_code == 200

    table = list(csv.DictReader(io.StringIO(client.get("/history.csv").get_data(as_text=True))))
    assert [row["rating_name"] for row in table] == ["Easy", "Good", "Easy"]
    assert table[1]["interval"] == "10m" and table[1]["interval_seconds"] == "600"


def test_the_done_page_says_when_the_next_card_is_due(built_app, client):
    built_app.config["NEW_CARDS_PER_DAY"] = 1
    AuthActions(client).register("ada")
    answer(client, showing(client.get(STUDY).get_data(as_text=True)), "3")  # learning, due in 10 minutes
    page = client.get(STUDY).get_data(as_text=True)
    # With only that learning card left it is shown early, as Anki does, and labelled as learning.
    assert '<p class="card-meta">Learning ·' in page
    fields = showing(page)
    answer(client, fields, "4")
    done = client.get(STUDY).get_data(as_text=True)
    assert "All caught up" in done
    # The next study day begins at 04:00 (later today after midnight, in minutes in the hour before).
    assert re.search(rf"Next cards <strong>{NEXT_DAY_START}</strong>", done)
    assert "Today's new cards are done" in done


def test_the_pages_links_follow_the_mount_point_they_are_served_under(student, client):
    plain = client.get(STUDY).get_data(as_text=True)
    assert 'href="/static/style.css?v=' in plain and 'href="/history"' in plain
    mounted = client.get(STUDY, base_url="http://localhost/flash/").get_data(as_text=True)
    assert 'href="/flash/static/style.css?v=' in mounted and 'href="/flash/history"' in mounted
    assert 'src="/flash/static/study.js?v=' in mounted
    assert 'href="/history"' in client.get(STUDY).get_data(as_text=True)
