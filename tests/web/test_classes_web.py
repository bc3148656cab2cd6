"""Running a class through the web: join codes, assignments, the dashboard, password resets, exports."""

from __future__ import annotations

import csv
import io
import re
import zipfile

from sqlalchemy import func, select

from flashapp import db
from flashapp.models import Classroom, Enrollment, ReviewLog
from flashapp.network import Listening
from flashapp.web.helpers import serving_at
from tests.helpers import STUDY, AuthActions, answer, csrf_token, showing


def enrolled(app) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count(Enrollment.id)))


def test_a_student_signs_up_with_the_code_and_lands_in_the_class(built_app, classroom):
    _, code = classroom
    student = built_app.test_client()
    response = AuthActions(student).register("ann", class_code=code.lower())
    assert response.status_code == 302
    assert "You are in Anatomy 1." in student.get("/").get_data(as_text=True)
    assert enrolled(built_app) == 1


def test_a_wrong_code_at_sign_up_is_refused_and_creates_nobody(built_app, classroom):
    student = built_app.test_client()
    response = AuthActions(student).register("ann", class_code="WRONG1")
    assert response.status_code == 400
    assert "No class has that code" in response.get_data(as_text=True)
    assert AuthActions(student).login("ann").status_code == 400  # no such account was made


def test_a_new_code_replaces_the_old_one(built_app, teacher, classroom):
    class_id, old = classroom
    token = csrf_token(teacher.get(f"/teach/classes/{class_id}").get_data(as_text=True))
    teacher.post(f"/teach/classes/{class_id}/code", data={"csrf_token": token})
    with built_app.app_context():
        new = db.session.get(Classroom, class_id).join_code
    assert new != old
    student = built_app.test_client()
    AuthActions(student).register("ann", class_code="")
    token = csrf_token(student.get("/join").get_data(as_text=True))
    refused = student.post("/join", data={"code": old, "csrf_token": token})
    assert refused.status_code == 400 and "codes can be replaced" in refused.get_data(as_text=True)
    assert student.post("/join", data={"code": new, "csrf_token": token}).status_code == 302
    assert enrolled(built_app) == 1


def logged_in_at(app, base_url, username="mrs-k"):
    """A client that reaches the server at another address, logged in there."""
    client = app.test_client()
    token = csrf_token(client.get("/login", base_url=base_url).get_data(as_text=True))
    client.post("/login", base_url=base_url,
                data={"username": username, "password": "correct horse", "csrf_token": token})
    return client


def test_the_join_page_shows_the_address_the_code_and_a_qr_code(built_app, classroom, monkeypatch):
    class_id, code = classroom
    lan, local = "http://10.1.2.3:5000", "http://127.0.0.1:5000"
    page = logged_in_at(built_app, lan).get(f"/teach/classes/{class_id}/join", base_url=lan).get_data(as_text=True)
    assert code in page and '<b class="address">http://10.1.2.3:5000/</b>' in page
    assert "<svg" in page and "<script" not in page
    # Opened on the teacher's own machine, the page shows the addresses students can reach instead.
    monkeypatch.setattr("flashapp.web.teach.lan_addresses", lambda: ["192.168.1.20"])
    page = logged_in_at(built_app, local).get(f"/teach/classes/{class_id}/join", base_url=local).get_data(as_text=True)
    assert '<b class="address">http://192.168.1.20:5000/</b>' in page and "127.0.0.1" not in page


def test_an_assigned_deck_comes_first_with_its_target(built_app, teacher, classroom):
    class_id, code = classroom
    token = csrf_token(teacher.get(f"/teach/classes/{class_id}").get_data(as_text=True))
    response = teacher.post(f"/teach/classes/{class_id}/assignments",
                            data={"deck_id": "1", "target_date": "2030-06-01", "csrf_token": token})
    assert response.status_code == 303
    student = built_app.test_client()
    AuthActions(student).register("ann", class_code=code)
    home = student.get("/").get_data(as_text=True)
    assert "Assigned to you" in home and "all started by Sat 01 Jun 2030" in home and "0 of 80 cards started" in home


def test_a_bad_assignment_gets_a_message_and_changes_nothing(built_app, teacher, classroom):
    class_id, _ = classroom
    token = csrf_token(teacher.get(f"/teach/classes/{class_id}").get_data(as_text=True))
    response = teacher.post(f"/teach/classes/{class_id}/assignments",
                            data={"deck_id": "999", "target_date": "not a date", "csrf_token": token},
                            follow_redirects=True)
    assert "Nothing was assigned" in response.get_data(as_text=True)
    assert "No deck assigned yet" in response.get_data(as_text=True)


def test_the_roster_shows_a_students_reviews(built_app, teacher, classroom):
    class_id, code = classroom
    student = built_app.test_client()
    AuthActions(student).register("ann", class_code=code)
    for rating in ("3", "4", "4"):
        answer(student, showing(student.get(STUDY).get_data(as_text=True)), rating)
    dashboard = teacher.get(f"/teach/classes/{class_id}").get_data(as_text=True)
    # The name's cell also links to the student's statistics.
    row = re.search(r"<tr class=\"[^\"]*\">\s*<td class=\"who-cell\"><a href=\"[^\"]+\">ann</a>.*?</td>(.*?)</tr>",
                    dashboard, re.S).group(1)
    assert "3 / 80" in row
    assert re.search(r'<td class="num" data-label="Reviews, 7 days">3</td>', row)
    forgetting = teacher.get(f"/teach/classes/{class_id}?sort=name").get_data(as_text=True)
    assert "Facts the class is forgetting" in forgetting and "All good." in forgetting


def test_progress_and_revlog_exports(teacher, classroom, student):
    class_id, _ = classroom
    progress = list(csv.DictReader(io.StringIO(teacher.get(f"/teach/classes/{class_id}/progress.csv")
                                               .get_data(as_text=True))))
    assert [(p["student"], p["cards_introduced"], p["reviews_7d"]) for p in progress] == [("ann", "1", "1")]
    revlog = list(csv.reader(io.StringIO(teacher.get(f"/teach/classes/{class_id}/revlog.csv").get_data(as_text=True))))
    assert revlog[0] == ["card_id", "review_time", "review_rating", "review_state", "review_duration", "timezone",
                         "next_day_starts_at", "user", "deck_card_id"]
    assert revlog[1][2:4] == ["3", "0"] and revlog[1][7] == "ann" and int(revlog[1][1]) > 1_700_000_000_000
    assert revlog[1][5:7] == ["UTC", "4"]


def test_a_download_left_after_its_first_chunk_lets_go_of_the_database(built_app, teacher, classroom, student):
    class_id, _ = classroom
    with built_app.app_context():
        pool = db.engine.pool

    response = teacher.get(f"/teach/classes/{class_id}/revlog.csv", buffered=False)
    first = next(iter(response.response))
    response.close()  # the teacher's browser went away

    assert first.startswith(b"card_id,review_time")
    assert pool.checkedout() == 0  # the request's session was closed with the body
    answer(student, showing(student.get(STUDY).get_data(as_text=True)), "4")
    revlog = teacher.get(f"/teach/classes/{class_id}/revlog.csv").get_data(as_text=True)
    assert len(revlog.strip().splitlines()) == 3


def test_a_password_reset_forces_a_new_password_at_the_next_log_in(built_app, teacher, classroom):
    class_id, code = classroom
    student = built_app.test_client()
    AuthActions(student).register("ann", class_code=code)
    with built_app.app_context():
        user_id = db.session.scalar(select(Enrollment.user_id))
    page = teacher.get(f"/teach/classes/{class_id}/students/{user_id}").get_data(as_text=True)
    reset = teacher.post(f"/teach/classes/{class_id}/students/{user_id}/password",
                         data={"csrf_token": csrf_token(page)})
    assert reset.headers["Cache-Control"] == "no-store"
    temporary = re.search(r'id="temporary-password">([a-z0-9]+)<', reset.get_data(as_text=True)).group(1)
    assert student.get("/").status_code == 302  # her old session ended

    assert AuthActions(student).login("ann", "correct horse").status_code == 400
    assert AuthActions(student).login("ann", temporary).status_code == 302
    blocked = student.get(STUDY)
    assert blocked.status_code == 302 and blocked.headers["Location"].endswith("/account/password")
    token = csrf_token(student.get("/account/password").get_data(as_text=True))
    student.post("/account/password", data={"current": temporary, "password": "my own again",
                                             "confirm": "my own again", "csrf_token": token})
    assert student.get(STUDY).status_code == 200


def test_removing_a_student_keeps_their_history(built_app, teacher, classroom, student):
    class_id, _ = classroom
    with built_app.app_context():
        user_id = db.session.scalar(select(Enrollment.user_id))
    page = teacher.get(f"/teach/classes/{class_id}/students/{user_id}").get_data(as_text=True)
    teacher.post(f"/teach/classes/{class_id}/students/{user_id}/remove", data={"csrf_token": csrf_token(page)})
    assert enrolled(built_app) == 0
    assert teacher.get(f"/teach/classes/{class_id}/students/{user_id}").status_code == 404
    with built_app.app_context():
        assert db.session.scalar(select(func.count(ReviewLog.id))) == 1
    assert "1 answer" in student.get("/history").get_data(as_text=True)


def test_a_student_downloads_all_their_own_data(student):
    response = student.get("/account/data.zip")
    with zipfile.ZipFile(io.BytesIO(response.data)) as archive:
        assert sorted(archive.namelist()) == ["account.csv", "card_states.csv", "classes.csv", "reviews.csv"]
        reviews = list(csv.DictReader(io.StringIO(archive.read("reviews.csv").decode())))
        classes = list(csv.DictReader(io.StringIO(archive.read("classes.csv").decode())))
        states = list(csv.DictReader(io.StringIO(archive.read("card_states.csv").decode())))
    assert len(reviews) == 1 and reviews[0]["rating"] == "3"
    assert classes == [{"class": "Anatomy 1", "teacher": "mrs-k"}]
    assert len(states) == 1


def test_every_new_page_renders(built_app, teacher, classroom):
    class_id, code = classroom
    student = built_app.test_client()
    AuthActions(student).register("ann", class_code=code)
    for url in ("/join", "/account", "/account/password", "/"):
        assert student.get(url).status_code == 200, url
    for url in ("/teach/", f"/teach/classes/{class_id}", f"/teach/classes/{class_id}/join",
                f"/teach/classes/{class_id}/cards/1"):
        assert teacher.get(url).status_code == 200, url


def test_the_dashboard_not_the_join_page_warns_when_the_server_only_listens_to_this_machine(
        built_app, teacher, classroom, monkeypatch):
    class_id, _ = classroom
    monkeypatch.setattr("flashapp.web.teach.lan_addresses", lambda: ["192.168.1.20"])
    serving_at(built_app, Listening("127.0.0.1", 5000))
    assert "Students cannot reach this address yet" in teacher.get(f"/teach/classes/{class_id}").get_data(as_text=True)
    poster = teacher.get(f"/teach/classes/{class_id}/join").get_data(as_text=True)
    assert "only accepts connections" not in poster and "HOST=0.0.0.0" not in poster
    serving_at(built_app, Listening("0.0.0.0", 5000))
    page = teacher.get(f"/teach/classes/{class_id}").get_data(as_text=True)
    assert "Students cannot reach" not in page and "<b>http://192.168.1.20/</b>" in page


def test_unassigning_a_deck_keeps_everyones_progress(built_app, teacher, classroom):
    class_id, code = classroom
    token = csrf_token(teacher.get(f"/teach/classes/{class_id}").get_data(as_text=True))
    teacher.post(f"/teach/classes/{class_id}/assignments", data={"deck_id": "1", "csrf_token": token})
    student = built_app.test_client()
    AuthActions(student).register("ann", class_code=code)
    answer(student, showing(student.get(STUDY).get_data(as_text=True)), "3")
    assert "Assigned to you" in student.get("/").get_data(as_text=True)
    response = teacher.post(f"/teach/classes/{class_id}/assignments/1/remove", data={"csrf_token": token},
                            follow_redirects=True)
    assert "Students keep their progress" in response.get_data(as_text=True)
    assert "No deck assigned yet" in response.get_data(as_text=True)
    assert "Assigned to you" not in student.get("/").get_data(as_text=True)
    assert "1 answer" in student.get("/history").get_data(as_text=True)
