"""The teacher's pages through the test client: trouble cards, confirmations, the poster, the roster, first visit."""

from __future__ import annotations

import re

from sqlalchemy import select

from flashapp import db
from flashapp.models import Classroom, User
from flashapp.network import Listening
from flashapp.web.helpers import serving_at
from tests.helpers import STUDY, AuthActions, answer, csrf_token, new_install, showing


def join(app, code, name):
    student = app.test_client()
    AuthActions(student).register(name, class_code=code)
    return student


def student_id(app, name) -> int:
    with app.app_context():
        return db.session.scalar(select(User.id).where(User.username == name))


def test_a_card_missed_by_students_is_listed_with_their_names_and_a_quiet_class_is_all_good(
        built_app, teacher, classroom):
    class_id, code = classroom
    ann, ben, cat = (join(built_app, code, name) for name in ("ann", "ben", "cat"))
    answer(cat, showing(cat.get(STUDY).get_data(as_text=True)), "3")
    page = teacher.get(f"/teach/classes/{class_id}").get_data(as_text=True)
    assert "All good." in page and 'class="trouble"' not in page  # one answer is no evidence
    for student in (ann, ben):  # everyone's first card is the deck's first: two Again of three answers
        answer(student, showing(student.get(STUDY).get_data(as_text=True)), "1")
    page = teacher.get(f"/teach/classes/{class_id}").get_data(as_text=True)
    trouble = re.search(r'<ol class="trouble">(.*?)</ol>', page, re.S)
    assert trouble, "no list of cards in trouble"
    cards = re.findall(r'<li class="trouble-card">.*?</li>', trouble.group(1), re.S)
    assert len(cards) == 1
    assert "Missed by ann, ben" in cards[0] and "Again 67% of 3 answers" in cards[0]


def test_new_code_asks_first_on_a_page_that_works_without_scripts(built_app, teacher, classroom):
    class_id, old = classroom
    dashboard = teacher.get(f"/teach/classes/{class_id}").get_data(as_text=True)
    assert f'action="/teach/classes/{class_id}/code"' not in dashboard  # no one-click form
    assert re.search(rf'<a [^>]*href="/teach/classes/{class_id}/code"[^>]*data-confirm=', dashboard)
    confirm = teacher.get(f"/teach/classes/{class_id}/code")
    text = confirm.get_data(as_text=True)
    assert confirm.status_code == 200 and "Replace the join code of Anatomy 1?" in text and old in text
    with built_app.app_context():
        assert db.session.get(Classroom, class_id).join_code == old  # asking changed nothing
    teacher.post(f"/teach/classes/{class_id}/code", data={"csrf_token": csrf_token(text)})
    with built_app.app_context():
        assert db.session.get(Classroom, class_id).join_code != old


def test_reset_and_remove_ask_first_and_sit_above_the_history(built_app, teacher, classroom):
    class_id, code = classroom
    ann = join(built_app, code, "ann")
    answer(ann, showing(ann.get(STUDY).get_data(as_text=True)), "3")
    user_id = student_id(built_app, "ann")
    base = f"/teach/classes/{class_id}/students/{user_id}"
    page = teacher.get(base).get_data(as_text=True)
    assert page.index(f'href="{base}/password"') < page.index("<h2>History</h2>")
    assert page.index(f'href="{base}/remove"') < page.index("<h2>History</h2>")
    assert f'action="{base}/password"' not in page and f'action="{base}/remove"' not in page
    asked = teacher.get(f"{base}/password").get_data(as_text=True)
    assert "Reset ann&#39;s password?" in asked and "logged out on every device" in asked
    assert ann.get("/").status_code == 200  # asking did not log her out
    asked = teacher.get(f"{base}/remove").get_data(as_text=True)
    assert "Remove ann from Anatomy 1?" in asked
    teacher.post(f"{base}/remove", data={"csrf_token": csrf_token(asked)})
    assert teacher.get(base).status_code == 404


def test_the_join_poster_is_clean_and_has_a_heading(built_app, teacher, classroom):
    class_id, code = classroom
    serving_at(built_app, Listening("127.0.0.1", 5000))
    poster = teacher.get(f"/teach/classes/{class_id}/join").get_data(as_text=True)
    assert re.search(r"<h1[^>]*>Join <b>Anatomy 1</b></h1>", poster)
    assert code in poster and re.search(r'<svg viewBox="0 0 \d+ \d+"', poster)  # scales to a phone, whole
    assert "mrs-k" not in poster and "Log out" not in poster and 'class="topbar"' not in poster
    assert "make run" not in poster and "flash error" not in poster


def test_the_roster_labels_every_number_for_the_phone_layout(built_app, teacher, classroom):
    class_id, code = classroom
    ann = join(built_app, code, "ann")
    answer(ann, showing(ann.get(STUDY).get_data(as_text=True)), "3")
    page = teacher.get(f"/teach/classes/{class_id}").get_data(as_text=True)
    row = re.search(r'<tbody>(.*?)</tbody>', re.search(r'<table class="roster">.*?</table>', page, re.S).group(0),
                    re.S).group(1)
    for label in ("Cards started", "Reviews, 7 days", "Retention, 30 days", "Due now", "Last active",
                  "Needs a look"):
        assert f'data-label="{label}"' in row, label


def test_retention_without_review_answers_says_why(built_app, teacher, classroom):
    class_id, code = classroom
    ann = join(built_app, code, "ann")
    for _ in range(3):
        answer(ann, showing(ann.get(STUDY).get_data(as_text=True)), "3")
    page = teacher.get(f"/teach/classes/{class_id}").get_data(as_text=True)
    cell = re.search(r'data-label="Retention, 30 days">(.*?)</td>', page, re.S).group(1)
    assert "no reviews of learned cards yet" in cell
    assert "Retention counts answers to cards a student has already learned" in page
    student_page = teacher.get(f"/teach/classes/{class_id}/students/{student_id(built_app, 'ann')}")
    assert "retention: no reviews of learned cards yet" in student_page.get_data(as_text=True)


def test_the_card_page_shows_the_fact_in_words_and_keeps_identifiers_folded(built_app, teacher, classroom):
    class_id, _ = classroom
    page = teacher.get(f"/teach/classes/{class_id}/cards/1").get_data(as_text=True)
    assert "How many layers of muscle make up the back? Three." in page
    assert "<dt>Subject</dt>" not in page
    details = re.search(r"<details class=\"key\">(.*?)</details>", page, re.S)
    assert details and "back-muscles/general/layer-count/forward" in details.group(1)
    outside = page.replace(details.group(0), "")
    assert "back-muscles/general/layer-count" not in outside and "general" not in outside.lower().split("<main")[1]
    assert "in the section “Overview”" in page


def test_class_downloads_are_named_after_the_class_and_the_day(built_app, teacher, classroom):
    class_id, _ = classroom
    for kind in ("progress", "revlog"):
        disposition = teacher.get(f"/teach/classes/{class_id}/{kind}.csv").headers["Content-Disposition"]
        assert re.fullmatch(rf'attachment; filename="anatomy-1-{kind}-\d{{4}}-\d{{2}}-\d{{2}}\.csv"', disposition)


def test_the_dashboard_shows_who_is_studying_now_and_completion_per_assignment(built_app, teacher, classroom):
    class_id, code = classroom
    token = csrf_token(teacher.get(f"/teach/classes/{class_id}").get_data(as_text=True))
    teacher.post(f"/teach/classes/{class_id}/assignments",
                 data={"deck_id": "1", "target_date": "2030-06-01", "csrf_token": token})
    ann = join(built_app, code, "ann")
    join(built_app, code, "ben")
    answer(ann, showing(ann.get(STUDY).get_data(as_text=True)), "3")
    page = teacher.get(f"/teach/classes/{class_id}").get_data(as_text=True)
    assert "Studying now: ann" in page
    completion = re.search(r'<ul class="completion">(.*?)</ul>', page, re.S).group(1)
    assert "Back muscles" in completion and "01 Jun 2030" in completion
    assert "0 of 2 students have started all 80 cards" in completion


def test_a_first_visit_says_what_this_is_and_leads_the_teacher_to_a_class(app, client):
    first = client.get("/", follow_redirects=True).get_data(as_text=True)
    assert "Welcome to flashapp" in first and "The first account made here is the teacher's" in first
    assert "Log in to continue." not in first
    register = client.get("/register").get_data(as_text=True)
    assert "Create the teacher&#39;s account" in register and "class_code" not in register
    AuthActions(client).register("mrs-k")
    assert "Next: create a class under Classes" in client.get("/").get_data(as_text=True)
    # Once there is an account, the log-in page is the usual one.
    other = app.test_client()
    assert "Welcome to flashapp" not in other.get("/login").get_data(as_text=True)


def test_init_prints_only_what_a_teacher_needs(tmp_path):
    install = new_install(tmp_path)
    result = install.run("init")
    assert "INFO" not in result.stderr and "alembic" not in result.stderr.lower()
    assert "Database ready" in result.stdout
