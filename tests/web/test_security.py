"""Security: sessions that really end, cookie flags, other students' data out of reach."""

from __future__ import annotations

import io
import os
import re
import sqlite3
import tempfile
import zipfile

import pytest
from sqlalchemy import func, select

from flashapp import db
from flashapp.models import ReviewLog
from tests.helpers import STUDY, AuthActions, answer, csrf_token, showing


def session_cookie(client) -> str:
    cookie = client.get_cookie("session")
    assert cookie is not None
    return cookie.value


def test_a_cookie_captured_before_log_out_no_longer_works(app, client):
    auth = AuthActions(client)
    auth.register("ada")
    captured = session_cookie(client)
    auth.logout()
    client.set_cookie("session", captured)
    response = client.get("/history")
    assert response.status_code == 302 and "/login" in response.headers["Location"]


def test_a_session_keeps_one_signed_csrf_token_that_only_it_can_use(app):
    ada, ben = app.test_client(), app.test_client()
    AuthActions(ada).register("ada")
    AuthActions(ben).register("ben")
    first = csrf_token(ada.get("/").get_data(as_text=True))
    assert csrf_token(ada.get("/history").get_data(as_text=True)) == first
    assert first in app.extensions["flashapp.signed_csrf_tokens"].values()  # signed once for the session
    bens = csrf_token(ben.get("/").get_data(as_text=True))
    assert bens != first
    # Ada's token is refused in Ben's session, and nothing happens.
    refused = ben.post("/logout", data={"csrf_token": first})
    assert refused.status_code == 400 and "Form expired" in refused.get_data(as_text=True)
    assert ben.get("/history").status_code == 200
    # Her own passes; logging in again starts a session with a token of its own.
    assert ada.post("/logout", data={"csrf_token": first}).status_code == 302
    assert ada.get("/history").status_code == 302
    AuthActions(ada).login("ada")
    assert csrf_token(ada.get("/").get_data(as_text=True)) not in (first, bens)


@pytest.fixture
def csrf_checks(monkeypatch) -> list[str]:
    """The tokens Flask-WTF's own check unsigned, in order (it still does all its work)."""
    import flask_wtf.csrf

    checked: list[str] = []
    validate = flask_wtf.csrf.validate_csrf

    def counting(data, *args, **kwargs):
        checked.append(data)
        return validate(data, *args, **kwargs)

    monkeypatch.setattr(flask_wtf.csrf, "validate_csrf", counting)
    return checked


def test_the_token_signed_for_the_session_is_taken_without_unsigning_it_again(app, csrf_checks):
    ada = app.test_client()
    AuthActions(ada).register("ada")
    checked_at_register = len(csrf_checks)
    token = csrf_token(ada.get("/").get_data(as_text=True))
    assert ada.post("/logout", data={"csrf_token": token}).status_code == 302
    assert len(csrf_checks) == checked_at_register  # the page's own token: not unsigned again
    assert ada.get("/history").status_code == 302  # and the log-out happened


def test_a_token_sent_in_a_header_or_signed_elsewhere_goes_through_flask_wtfs_check(app, csrf_checks):
    ada = app.test_client()
    AuthActions(ada).register("ada")
    page_token = csrf_token(ada.get("/").get_data(as_text=True))
    assert ada.post("/logout", headers={"X-CSRFToken": page_token}).status_code == 302
    assert csrf_checks[-1] == page_token
    AuthActions(ada).login("ada")
    page_token = csrf_token(ada.get("/").get_data(as_text=True))
    # A token for the same session as another process signs it: same key and salt, signed at another time.
    import time

    from itsdangerous import TimestampSigner, URLSafeTimedSerializer

    class AnHourAgo(TimestampSigner):
        def get_timestamp(self) -> int:
            return int(time.time()) - 3600

    raw = app.session_interface.open_session(app, _request_with_cookie(app, ada))["csrf_token"]
    other = URLSafeTimedSerializer(app.secret_key, salt="wtf-csrf-token", signer=AnHourAgo).dumps(raw)
    assert other != page_token
    assert ada.post("/logout", data={"csrf_token": other}).status_code == 302
    assert csrf_checks[-1] == other
    # A forged one is refused by that check, and nothing happens.
    AuthActions(ada).login("ada")
    forged = ada.post("/logout", data={"csrf_token": page_token[:-2] + "xx"})
    assert forged.status_code == 400 and "Form expired" in forged.get_data(as_text=True)
    assert ada.get("/history").status_code == 200


def _request_with_cookie(app, client):
    """A request carrying the client's session cookie, to read its session as the app would."""
    from werkzeug.test import EnvironBuilder

    cookie = client.get_cookie("session")
    assert cookie is not None
    environ = EnvironBuilder(path="/", headers={"Cookie": f"session={cookie.value}"}).get_environ()
    return app.request_class(environ)


def test_over_https_the_referrer_is_checked_even_with_the_sessions_own_token(app, csrf_checks):
    ada = app.test_client()
    AuthActions(ada).register("ada")
    token = csrf_token(ada.get("/", base_url="https://localhost").get_data(as_text=True))
    refused = ada.post("/logout", base_url="https://localhost", data={"csrf_token": token})
    assert refused.status_code == 400 and "Form expired" in refused.get_data(as_text=True)
    assert ada.get("/history", base_url="https://localhost").status_code == 200  # still logged in
    assert ada.post("/logout", base_url="https://localhost", data={"csrf_token": token},
                    headers={"Referer": "https://localhost/"}).status_code == 302
    assert csrf_checks[-1] == token


def test_with_a_time_limit_every_page_signs_its_csrf_token_as_flask_wtf_does(app):
    from flask import g, session

    from flashapp.web.helpers import csrf_token as page_csrf_token

    app.config["WTF_CSRF_TIME_LIMIT"] = 3600
    with app.test_request_context("/"):
        session["csrf_token"] = "a session's own token"
        signed = page_csrf_token()
        assert g.csrf_token == signed  # made by Flask-WTF for this request
    assert app.extensions["flashapp.signed_csrf_tokens"] == {}


def test_log_out_ends_the_sessions_on_every_device(app):
    phone, laptop = app.test_client(), app.test_client()
    AuthActions(phone).register("ada")
    AuthActions(laptop).login("ada")
    assert laptop.get("/history").status_code == 200
    AuthActions(phone).logout()
    assert laptop.get("/history").status_code == 302


def test_changing_the_password_ends_other_sessions_but_keeps_this_one(app):
    phone, laptop = app.test_client(), app.test_client()
    AuthActions(phone).register("ada")
    AuthActions(laptop).login("ada")
    old_cookie = session_cookie(phone)
    token = csrf_token(phone.get("/account/password").get_data(as_text=True))
    response = phone.post("/account/password", data={"current": "correct horse", "password": "new password!",
                                                     "confirm": "new password!", "csrf_token": token})
    assert response.status_code == 302
    assert phone.get("/history").status_code == 200
    assert laptop.get("/history").status_code == 302
    replay = app.test_client()
    replay.set_cookie("session", old_cookie)
    assert replay.get("/history").status_code == 302
    assert AuthActions(app.test_client()).login("ada", "new password!").status_code == 302


@pytest.mark.parametrize(("fields", "message", "status"), [
    ({"current": "wrong password"}, "That is not your current password.", 400),
    ({"password": "short", "confirm": "short"}, "at least 8 characters", 400),
    ({"confirm": "different!"}, "The two passwords differ.", 400),
])
def test_a_bad_password_change_gets_a_message_and_changes_nothing(app, client, fields, message, status):
    AuthActions(client).register("ada")
    token = csrf_token(client.get("/account/password").get_data(as_text=True))
    data = {"current": "correct horse", "password": "new password!", "confirm": "new password!",
            "csrf_token": token, **fields}
    response = client.post("/account/password", data=data)
    assert response.status_code == status
    assert message in response.get_data(as_text=True)
    AuthActions(client).logout()
    assert AuthActions(client).login("ada", "correct horse").status_code == 302


def test_session_cookies_are_http_only_and_same_site_lax(app, client):
    response = AuthActions(client).register("ada")
    header = response.headers["Set-Cookie"]
    assert "HttpOnly" in header and "SameSite=Lax" in header


def test_every_template_is_free_of_inline_script(app, client):
    AuthActions(client).register("ada")
    for url in ("/", STUDY, "/history", "/account/password", "/no-such-page"):
        html = client.get(url).get_data(as_text=True)
        scripts = re.findall(r"<script\b([^>]*)>(.*?)</script>", html, re.S)
        assert all('src="/static/' in attrs and not body.strip() for attrs, body in scripts), url
        assert not re.search(r"\son[a-z]+=", html), url


def test_a_request_larger_than_the_limit_is_refused(app, client):
    AuthActions(client).register("ada")
    response = client.post("/login", data={"username": "x" * (app.config["MAX_CONTENT_LENGTH"] + 10)})
    assert response.status_code == 413


def test_no_route_with_an_id_shows_or_changes_another_students_data(built_app):
    ada, bob = built_app.test_client(), built_app.test_client()
    AuthActions(ada).register("teach")  # the first account is the teacher; use two students
    AuthActions(ada).logout()
    AuthActions(ada).register("ada")
    AuthActions(bob).register("bob")
    page = ada.get(STUDY).get_data(as_text=True)
    ada_card = showing(page)
    answer(ada, ada_card, "4")
    with built_app.app_context():
        ada_reviews = db.session.scalar(select(func.count(ReviewLog.id)))

    # Every rule that takes a value from the URL, walked as Bob with Ada's ids and keys.
    # (the teacher's routes are walked in test_teach_permissions.py, their own decks' in test_authoring_web.py)
    rules = [r for r in built_app.url_map.iter_rules()
             if r.arguments and r.endpoint != "static" and not r.endpoint.startswith(("teach.", "authoring."))]
    assert {r.endpoint for r in rules} == {"study.study", "study.answer", "study.undo", "study.more_new",
                                           "study.review_ahead", "decks.export", "decks.export_progress"}
    bob_page = bob.get(STUDY).get_data(as_text=True)
    assert "Undo last answer" not in bob_page
    undo_token = csrf_token(bob_page)
    assert bob.post(f"{STUDY}/undo", data={"csrf_token": undo_token}).status_code == 303
    # Naming a card in the address does not pick what is shown: Bob gets his own queue.
    bob_page = bob.get(f"{STUDY}?card={int(ada_card['card_id']) + 5}").get_data(as_text=True)
    assert showing(bob_page)["card_id"] == ada_card["card_id"] and "New card" in bob_page
    # Bob replaying Ada's showing (her token) is refused and records nothing for either of them.
    replay = answer(bob, {**ada_card, "csrf_token": undo_token}, "1")
    assert replay.status_code == 403
    with built_app.app_context():
        assert db.session.scalar(select(func.count(ReviewLog.id))) == ada_reviews
    assert "No answers yet" in bob.get("/history").get_data(as_text=True)
    # More new cards asked for by Bob are Bob's alone.
    ada_new = re.search(r"(\d+) <small>new</small>", ada.get(STUDY).get_data(as_text=True)).group(1)
    assert bob.post(f"{STUDY}/more-new", data={"csrf_token": undo_token}).status_code == 303
    assert re.search(r"(\d+) <small>new</small>", ada.get(STUDY).get_data(as_text=True)).group(1) == ada_new
    assert bob.post("/study/no-such-deck/more-new", data={"csrf_token": undo_token}).status_code == 404
    assert bob.get("/decks/no-such-deck.apkg").status_code == 404
    assert bob.get("/study/no-such-deck").status_code == 404
    # Reviewing ahead in Ada's deck opens nothing for Bob (he has no cards due) and nothing of Ada's.
    refused = bob.post(f"{STUDY}/ahead", data={"csrf_token": undo_token, "days": "7"})
    assert refused.status_code == 400 and "No cards of this deck fall due" in refused.get_data(as_text=True)
    assert bob.post("/study/no-such-deck/ahead", data={"csrf_token": undo_token, "days": "7"}).status_code == 404
    # The progress export is always the logged-in student's own: Bob's holds none of Ada's answers.
    progress = bob.get("/decks/back-muscles/my-progress.apkg")
    assert progress.status_code == 200
    with zipfile.ZipFile(io.BytesIO(progress.data)) as package, tempfile.TemporaryDirectory() as folder:
        package.extract("collection.anki2", folder)
        connection = sqlite3.connect(os.path.join(folder, "collection.anki2"))
        try:
            assert connection.execute("select count(*) from revlog").fetchone() == (0,)
            assert connection.execute("select count(*) from cards where type != 0").fetchone() == (0,)
        finally:
            connection.close()
    assert bob.get("/decks/no-such-deck/my-progress.apkg").status_code == 404
