"""Registering and logging in: clear messages, nothing changed on bad input."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import func, select

from flashapp import db
from flashapp.models import User
from tests.helpers import AuthActions, csrf_token


def user_count(app) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count(User.id)))


def test_register_log_out_and_log_in(app, client):
    app.config["PASSWORD_HASH_METHOD"] = "scrypt"  # the one web test that makes and checks a real scrypt hash
    auth = AuthActions(client)
    assert auth.register("ada").status_code == 302
    assert auth.logout().status_code == 302
    assert client.get("/").status_code == 302
    response = auth.login("ADA")
    assert response.status_code == 302
    assert "Your decks" in client.get("/").get_data(as_text=True)
    with app.app_context():
        stored = db.session.scalar(select(User.password_hash))
    assert stored.startswith("scrypt:") and "correct horse" not in stored


@pytest.mark.parametrize(("fields", "message"), [
    ({"password": "short", "confirm": "short"}, "A password needs at least 8 characters."),
    ({"confirm": "something else"}, "The two passwords differ."),
    ({"username": "a b"}, "Use letters, digits, dots, hyphens and underscores only."),
    ({"username": "ab"}, "A username has 3 to 40 characters."),
    ({"time_zone": "Mars/Olympus"}, "Not a valid choice"),
])
def test_bad_registration_input_gets_a_message_and_creates_nobody(app, client, fields, message):
    token = csrf_token(client.get("/register").get_data(as_text=True))
    data = {"username": "ada", "password": "correct horse", "confirm": "correct horse", "time_zone": "UTC",
            "csrf_token": token, **fields}
    response = client.post("/register", data=data)
    assert response.status_code == 400
    assert message in response.get_data(as_text=True)
    assert user_count(app) == 0


def test_a_taken_username_is_refused_whatever_its_case(app, client):
    AuthActions(client).register("ada")
    AuthActions(client).logout()
    response = AuthActions(client).register("Ada")
    assert response.status_code == 409
    assert "That username is taken" in response.get_data(as_text=True)
    assert user_count(app) == 1


def test_a_wrong_password_is_refused_with_a_message(app, client):
    auth = AuthActions(client)
    auth.register("ada")
    auth.logout()
    for name, password in (("ada", "wrong password"), ("nobody", "correct horse")):
        response = auth.login(name, password)
        assert response.status_code == 400
        assert "do not match an account" in response.get_data(as_text=True)
        assert client.get("/").status_code == 302


def test_registration_without_a_csrf_token_is_refused(app, client):
    response = client.post("/register", data={"username": "ada", "password": "correct horse",
                                              "confirm": "correct horse", "time_zone": "UTC"})
    assert response.status_code == 400
    assert user_count(app) == 0


def test_login_does_not_redirect_off_site(app, client):
    auth = AuthActions(client)
    auth.register("ada")
    auth.logout()
    token = csrf_token(client.get("/login").get_data(as_text=True))
    response = client.post("/login?next=https://evil.example/", data={"username": "ada",
                                                                     "password": "correct horse",
                                                                     "csrf_token": token})
    assert response.headers["Location"] == "/"


def test_the_sign_up_page_keeps_the_time_zone_chosen_and_offers_utc_to_the_next_visitor(app, client):
    """The time zone list is drawn once per chosen zone: a refused sign-up keeps its choice, a new page has UTC."""
    def chosen(html: str) -> list[str]:
        return re.findall(r'<option selected value="([^"]*)">', html)

    page = client.get("/register").get_data(as_text=True)
    assert chosen(page) == ["UTC"]
    assert page.count("<option") > 300 and '<option value="Asia/Tokyo">Asia/Tokyo</option>' in page
    for _ in range(2):  # the second time from the remembered drawing
        refused = client.post("/register", data={
            "username": "ada", "password": "correct horse", "confirm": "other horse", "time_zone": "Asia/Tokyo",
            "csrf_token": csrf_token(page)}).get_data(as_text=True)
        assert "The two passwords differ." in refused
        assert chosen(refused) == ["Asia/Tokyo"]
    assert chosen(client.get("/register").get_data(as_text=True)) == ["UTC"]
    assert user_count(app) == 0
