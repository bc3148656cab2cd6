"""Untrusted input: bodies that are not forms, huge numbers, control characters, caching, CSRF at log-in."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from flashapp import db
from flashapp.models import Classroom, Enrollment, ReviewLog, User
from flashapp.web.guards import LARGEST_ID
from tests.helpers import STUDY, AuthActions, create_class, csrf_token, showing


def table_counts(app) -> dict[str, int]:
    with app.app_context():
        return {model.__name__: db.session.scalar(select(func.count()).select_from(model))
                for model in (User, Classroom, Enrollment)}


@pytest.fixture
def school(built_app):
    """A teacher with a class, and a student in it (both logged in, each in their own client)."""
    teacher = built_app.test_client()
    AuthActions(teacher).register("mrs-k")
    class_id = create_class(teacher)
    with built_app.app_context():
        code = db.session.get(Classroom, class_id).join_code
    student = built_app.test_client()
    AuthActions(student).register("ann", class_code=code)
    with built_app.app_context():
        ann = db.session.scalar(select(User.id).where(User.username == "ann"))
    return {"teacher": teacher, "student": student, "class_id": class_id, "code": code, "ann": ann}


# ---------------------------------------------------------------- finding 1: typed JSON bodies

def json_post(client, url, body, *, page="/login"):
    token = csrf_token(client.get(page).get_data(as_text=True))
    return client.post(url, json=body, headers={"X-CSRFToken": token})


@pytest.mark.parametrize("url", ["/login", "/register"])
@pytest.mark.parametrize("value", [123, None, ["ada"], {"a": 1}, True])
def test_a_json_body_on_an_anonymous_form_is_refused_not_a_crash(built_app, client, url, value):
    before = table_counts(built_app)
    response = json_post(client, url, {"username": value, "password": value, "confirm": value})
    assert response.status_code == 415
    assert "Send this form from its page" in response.get_data(as_text=True)
    assert table_counts(built_app) == before


@pytest.mark.parametrize(("url", "page"), [
    ("/join", "/join"), (f"{STUDY}/answer", STUDY), ("/account/password", "/account/password"),
])
def test_a_json_body_on_a_students_form_is_refused(built_app, school, url, page):
    before = table_counts(built_app)
    response = json_post(school["student"], url, {"code": 123, "card_id": 1, "token": 12345678, "stamp": 1,
                                                  "rating": 3, "current": 1, "password": 1, "confirm": 1},
                         page=page)
    assert response.status_code == 415
    assert table_counts(built_app) == before


def test_a_json_body_on_the_teachers_form_is_refused(built_app, school):
    before = table_counts(built_app)
    response = json_post(school["teacher"], "/teach/", {"name": 123}, page="/teach/")
    assert response.status_code == 415
    assert table_counts(built_app) == before


def test_a_file_sent_for_a_text_field_is_not_read_as_text(built_app, client):
    import io

    token = csrf_token(client.get("/login").get_data(as_text=True))
    response = client.post("/login", data={"username": (io.BytesIO(b"ada"), "name.txt"), "password": "x" * 8,
                                           "csrf_token": token}, content_type="multipart/form-data")
    assert response.status_code == 400
    assert "Enter your username." in response.get_data(as_text=True)


def test_a_form_sent_as_multipart_still_works(built_app, client):
    token = csrf_token(client.get("/register").get_data(as_text=True))
    response = client.post("/register", data={"username": "ada", "password": "correct horse",
                                              "confirm": "correct horse", "time_zone": "UTC", "csrf_token": token},
                           content_type="multipart/form-data")
    assert response.status_code == 302


# ---------------------------------------------------------------- finding 5: integers of 2^63 and more

@pytest.mark.parametrize("number", [2**31, 2**63, 2**64, 10**30])
def test_huge_ids_in_teacher_addresses_are_not_found(built_app, school, number):
    class_id, ann = school["class_id"], school["ann"]
    teacher = school["teacher"]
    token = csrf_token(teacher.get("/teach/").get_data(as_text=True))
    urls = [f"/teach/classes/{number}", f"/teach/classes/{number}/join", f"/teach/classes/{number}/progress.csv",
            f"/teach/classes/{number}/revlog.csv", f"/teach/classes/{class_id}/students/{number}",
            f"/teach/classes/{class_id}/cards/{number}"]
    for url in urls:
        assert teacher.get(url).status_code == 404, url
    posts = [f"/teach/classes/{number}/code", f"/teach/classes/{number}/assignments",
             f"/teach/classes/{class_id}/assignments/{number}/remove",
             f"/teach/classes/{class_id}/students/{number}/password",
             f"/teach/classes/{number}/students/{ann}/remove"]
    for url in posts:
        assert teacher.post(url, data={"csrf_token": token, "deck_id": "1"}).status_code == 404, url


def test_the_largest_id_a_database_holds_is_simply_not_found(built_app, school):
    assert school["teacher"].get(f"/teach/classes/{LARGEST_ID}").status_code == 404


@pytest.mark.parametrize("page", [str(2**62), str(2**63), str(10**40), "-5", "abc"])
def test_a_huge_page_number_shows_the_last_page(built_app, school, page):
    teacher, class_id, ann = school["teacher"], school["class_id"], school["ann"]
    assert teacher.get(f"/teach/classes/{class_id}/students/{ann}?page={page}").status_code == 200
    assert school["student"].get(f"/history?page={page}").status_code == 200


@pytest.mark.parametrize("card_id", [str(2**31), str(2**63), str(10**30), "-1"])
def test_a_huge_card_id_sent_with_an_answer_is_ignored(built_app, school, card_id):
    # The card comes from the signed showing token; a card_id field is not read at all.
    student = school["student"]
    fields = showing(student.get(STUDY).get_data(as_text=True))
    response = student.post(f"{STUDY}/answer", data={**fields, "card_id": card_id, "rating": "3"})
    assert response.status_code == 303
    with built_app.app_context():
        assert db.session.scalars(select(ReviewLog.card_id)).all() == [int(fields["card_id"])]


# ---------------------------------------------------------------- finding 7: personal pages are not kept

def test_every_personal_page_and_download_says_no_store(built_app, school):
    student, teacher, class_id, ann = school["student"], school["teacher"], school["class_id"], school["ann"]
    for url in ("/", "/account", "/account/data.zip", "/history", "/history.csv", STUDY,
                "/decks/back-muscles.apkg"):
        with student.get(url) as response:
            assert response.status_code == 200, url
            assert response.headers["Cache-Control"] == "no-store", url
            response.get_data()
    for url in (f"/teach/classes/{class_id}", f"/teach/classes/{class_id}/progress.csv",
                f"/teach/classes/{class_id}/revlog.csv", f"/teach/classes/{class_id}/students/{ann}"):
        with teacher.get(url) as response:
            assert response.status_code == 200, url
            assert response.headers["Cache-Control"] == "no-store", url
            response.get_data()


def test_static_files_may_still_be_cached(built_app, school):
    with school["student"].get("/static/style.css") as response:
        assert response.status_code == 200
        assert "no-store" not in response.headers.get("Cache-Control", "")


# ---------------------------------------------------------------- finding 8: the temporary password

def test_the_temporary_password_cannot_be_kept_as_the_new_one(built_app, school):
    import re

    teacher, student, class_id, ann = school["teacher"], school["student"], school["class_id"], school["ann"]
    page = teacher.get(f"/teach/classes/{class_id}/students/{ann}").get_data(as_text=True)
    reset = teacher.post(f"/teach/classes/{class_id}/students/{ann}/password", data={"csrf_token": csrf_token(page)})
    temporary = re.search(r'id="temporary-password">([a-z0-9]+)<', reset.get_data(as_text=True)).group(1)
    AuthActions(student).login("ann", temporary)
    token = csrf_token(student.get("/account/password").get_data(as_text=True))
    response = student.post("/account/password", data={"current": temporary, "password": temporary,
                                                        "confirm": temporary, "csrf_token": token})
    assert response.status_code == 400
    assert "Choose a new password, not the one you have now." in response.get_data(as_text=True)
    with built_app.app_context():
        assert db.session.get(User, ann).must_change_password
    assert student.get(STUDY).headers["Location"].endswith("/account/password")


# ---------------------------------------------------------------- finding 11: names that must be refused

def register_form(client, **fields):
    token = csrf_token(client.get("/register").get_data(as_text=True))
    data = {"username": "ada", "password": "correct horse", "confirm": "correct horse", "time_zone": "UTC",
            "csrf_token": token, **fields}
    return client.post("/register", data=data)


@pytest.mark.parametrize(("username", "message"), [
    ("ab\n", "Username cannot contain control characters"),
    ("abc\n", "Username cannot contain control characters"),
    ("ab\x00c", "Username cannot contain control characters"),
    ("   ", "Choose a username."),
    ("a b c", "Use letters, digits, dots, hyphens and underscores only."),
])
def test_a_bad_username_is_refused_beside_the_field(built_app, client, username, message):
    response = register_form(client, username=username)
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert message in html and 'id="username-error"' in html
    assert table_counts(built_app)["User"] == 0


def test_a_field_says_each_problem_once_under_one_id(built_app, client):
    # A short name breaks two of the field's rules that say the same thing: one message, one element to point at.
    response = register_form(client, username="ab")
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert html.count("A username has 3 to 40 characters.") == 1
    assert html.count('id="username-error"') == 1
    assert 'aria-describedby="username-error"' in html
    assert table_counts(built_app)["User"] == 0


@pytest.mark.parametrize(("name", "message"), [
    ("     ", "Give the class a name."),
    ("Anatomy\x00", "Class name cannot contain control characters"),
    ("Ana\ttomy", "Class name cannot contain control characters"),
    ("\u0085Anatomy", "Class name cannot contain control characters"),
])
def test_a_bad_class_name_is_refused_beside_the_field(built_app, school, name, message):
    teacher = school["teacher"]
    before = table_counts(built_app)
    token = csrf_token(teacher.get("/teach/").get_data(as_text=True))
    response = teacher.post("/teach/", data={"name": name, "csrf_token": token})
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert message in html and 'id="name-error"' in html
    assert table_counts(built_app) == before


def test_a_class_name_is_stored_without_its_surrounding_spaces(built_app, school):
    class_id = create_class(school["teacher"], "  Biology 2  ")
    with built_app.app_context():
        assert db.session.get(Classroom, class_id).name == "Biology 2"


@pytest.mark.parametrize(("url", "field", "value", "message"), [
    ("/login", "username", "ada\x00", "Username cannot contain control characters"),
    ("/login", "password", "pass\x00word", "Password cannot contain control characters"),
])
def test_control_characters_in_the_log_in_form_are_refused(built_app, client, url, field, value, message):
    token = csrf_token(client.get(url).get_data(as_text=True))
    data = {"username": "ada", "password": "correct horse", "csrf_token": token, field: value}
    response = client.post(url, data=data)
    assert response.status_code == 400
    assert message in response.get_data(as_text=True)


def test_a_control_character_in_a_join_code_is_refused(built_app, school):
    student = school["student"]
    token = csrf_token(student.get("/join").get_data(as_text=True))
    response = student.post("/join", data={"code": school["code"] + "\x00", "csrf_token": token})
    assert response.status_code == 400
    assert "Class code cannot contain control characters" in response.get_data(as_text=True)


def test_control_characters_in_the_address_are_not_found(built_app, school):
    student = school["student"]
    assert student.get("/study/back-muscles%00").status_code == 404
    assert student.get("/decks/back%0A.apkg").status_code == 404
    assert school["teacher"].get(f"/teach/classes/{school['class_id']}?sort=%00").status_code == 400


# ---------------------------------------------------------------- finding 12: the real password limit

def test_a_very_long_password_is_refused_with_the_real_limit(built_app, client):
    response = register_form(client, password="x" * 10_000, confirm="x" * 10_000)
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert "A password can be at most 200 characters long." in html
    assert "at least 8" not in html


# ---------------------------------------------------------------- finding 13: CSRF tokens at log-in

def test_a_csrf_token_from_before_log_out_no_longer_works_after_logging_in_again(built_app, client):
    auth = AuthActions(client)
    auth.register("ada")
    old = csrf_token(client.get("/account/password").get_data(as_text=True))
    auth.logout()
    auth.login("ada")
    response = client.post("/logout", data={"csrf_token": old})
    assert response.status_code == 400
    assert client.get("/account").status_code == 200  # still logged in: the old token did nothing


def test_a_csrf_token_from_before_log_in_does_not_work_after_it(built_app, client):
    AuthActions(client).register("ada")
    AuthActions(client).logout()
    before = csrf_token(client.get("/login").get_data(as_text=True))
    client.post("/login", data={"username": "ada", "password": "correct horse", "csrf_token": before})
    response = client.post("/account/password", data={"current": "correct horse", "password": "new password!",
                                                       "confirm": "new password!", "csrf_token": before})
    assert response.status_code == 400
    assert "This form has expired" in response.get_data(as_text=True)


@pytest.mark.parametrize("target", ["/\\evil.example", "//evil.example", "https://evil.example/"])
def test_after_log_in_the_next_address_stays_on_this_site(built_app, client, target):
    AuthActions(client).register("ada")
    AuthActions(client).logout()
    token = csrf_token(client.get("/login").get_data(as_text=True))
    response = client.post("/login", query_string={"next": target},
                           data={"username": "ada", "password": "correct horse", "csrf_token": token})
    assert response.status_code == 302 and response.headers["Location"] == "/"
