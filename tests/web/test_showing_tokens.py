"""Only a showing the server issued can be answered: forged, tampered, other students' and old tokens are refused.

Each refusal records nothing, says why, and carries on with the study page. Every test runs on
SQLite and, when FLASHAPP_TEST_POSTGRES_URL is set, on PostgreSQL.
"""

from __future__ import annotations

import re
import time
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import func, select

from flashapp import db
from flashapp.models import Card, Deck, ReviewLog, User
from flashapp.showings import LIFETIME, ShowingTokens
from tests.helpers import STUDY, AuthActions, answer, showing


def reviews(app) -> list[tuple[str, int, int | None]]:
    """(username, card id, duration) of every review, oldest first."""
    with app.app_context():
        rows = db.session.execute(select(User.username, ReviewLog.card_id, ReviewLog.duration_ms)
                                  .join(User, User.id == ReviewLog.user_id).order_by(ReviewLog.id))
        return [tuple(row) for row in rows]


def card_ids(app) -> list[int]:
    """The bundled deck's cards, in study order."""
    with app.app_context():
        return list(db.session.scalars(select(Card.id).join(Deck).where(Deck.slug == "back-muscles")
                                       .order_by(Card.position)))


def user_id(app, username: str) -> int:
    with app.app_context():
        return db.session.scalar(select(User.id).where(User.username == username))


@pytest.fixture
def ada(built_app, client):
    AuthActions(client).register("ada")
    return client


def assert_refused_and_carried_on(response, status: int, message: str) -> None:
    """The answer was refused with `status`, and the page is the study page with a card and the reason."""
    assert response.status_code == status
    html = response.get_data(as_text=True)
    assert message in html
    assert '<p class="flash error">' in html
    showing(html)  # a card to study, with a fresh showing to answer it by


def old_style_answer(client, fields, *, card_id, token, rating="3"):
    """An answer as a client could forge it before showings were signed: it names its card and its time."""
    return client.post(f"{STUDY}/answer", data={"csrf_token": fields["csrf_token"], "card_id": str(card_id),
                                                "token": token, "stamp": "new", "rating": rating})


def test_a_forged_card_id_is_ignored_and_the_shown_card_is_answered(built_app, ada):
    fields = showing(ada.get(STUDY).get_data(as_text=True))
    other = next(card for card in card_ids(built_app) if str(card) != fields["card_id"])
    response = answer(ada, fields, "4", card_id=str(other), stamp="new")
    assert response.status_code == 303
    assert [card for _, card, _ in reviews(built_app)] == [int(fields["card_id"])]


def test_an_answer_for_a_card_never_shown_is_refused(built_app, ada):
    fields = showing(ada.get(STUDY).get_data(as_text=True))
    never_shown = card_ids(built_app)[5]
    made_up = f"{int(time.time() * 1000):x}.made-up-showing"
    response = old_style_answer(ada, fields, card_id=never_shown, token=made_up)
    assert_refused_and_carried_on(response, 400, "not for a card this site showed you")
    assert reviews(built_app) == []


def test_a_tampered_token_is_refused(built_app, ada):
    fields = showing(ada.get(STUDY).get_data(as_text=True))
    payload, _, signature = fields["token"].rpartition(".")
    # Another card in the same signed shape, the signature kept; and the whole token signed with another key.
    key = ShowingTokens("not-this-servers-key-" + "q" * 20)
    elsewhere = key.issue(user_id=user_id(built_app, "ada"), card_id=card_ids(built_app)[5], stamp="new",
                          now=datetime.now(timezone.utc))
    for token in (payload[:-2] + ("AA" if payload[-2:] != "AA" else "BB") + "." + signature,
                  elsewhere.rpartition(".")[0] + "." + signature, elsewhere, "0" + fields["token"][1:]):
        assert_refused_and_carried_on(answer(ada, {**fields, "token": token}), 400, "not recorded")
    assert reviews(built_app) == []


def test_another_students_token_is_refused(built_app):
    ada, bob = built_app.test_client(), built_app.test_client()
    AuthActions(ada).register("ada")
    AuthActions(bob).register("bob")
    adas = showing(ada.get(STUDY).get_data(as_text=True))
    bobs = showing(bob.get(STUDY).get_data(as_text=True))
    response = answer(bob, {**bobs, "token": adas["token"]}, "1")
    assert_refused_and_carried_on(response, 403, "shown to another account")
    assert reviews(built_app) == []
    assert answer(ada, adas, "4").status_code == 303
    assert answer(bob, bobs, "4").status_code == 303
    assert sorted(name for name, _, _ in reviews(built_app)) == ["ada", "bob"]


def test_a_replayed_token_is_a_repeat_not_a_second_answer(built_app, ada):
    first = showing(ada.get(STUDY).get_data(as_text=True))
    assert answer(ada, first, "4").status_code == 303
    second = showing(ada.get(STUDY).get_data(as_text=True))
    assert answer(ada, second, "4").status_code == 303
    for rating in ("1", "4"):
        replay = answer(ada, first, rating)
        assert replay.status_code == 303
    assert [card for _, card, _ in reviews(built_app)] == [int(first["card_id"]), int(second["card_id"])]
    assert "already answered" not in ada.get(STUDY).get_data(as_text=True)


def test_a_token_shown_too_long_ago_is_refused(built_app, ada):
    fields = showing(ada.get(STUDY).get_data(as_text=True))
    tokens = built_app.extensions["flashapp.showings"]
    long_ago = datetime.now(timezone.utc) - LIFETIME - timedelta(minutes=5)
    old = tokens.issue(user_id=user_id(built_app, "ada"), card_id=int(fields["card_id"]), stamp="new", now=long_ago)
    assert_refused_and_carried_on(answer(ada, {**fields, "token": old}), 400, "shown more than 6 hours ago")
    assert reviews(built_app) == []


def test_the_duration_a_client_sends_is_ignored(built_app, ada):
    started = time.monotonic()
    fields = showing(ada.get(STUDY).get_data(as_text=True))
    response = answer(ada, fields, "3", duration="60000", duration_ms="60000")
    elapsed_ms = (time.monotonic() - started) * 1000
    assert response.status_code == 303
    [(_, _, duration)] = reviews(built_app)
    # Measured by the server between showing and answer, both inside the test's own window.
    assert duration is not None and 0 <= duration <= elapsed_ms + 1


def test_the_duration_cannot_be_stretched_through_the_token(built_app, ada):
    fields = showing(ada.get(STUDY).get_data(as_text=True))
    # Before showings were signed, the token's hex prefix was the time shown: a 0 made it a minute.
    stretched = re.sub(r"^[0-9a-f]+\.", "0.", fields["token"]) if re.match(r"^[0-9a-f]+\.", fields["token"]) \
        else "0" + fields["token"][1:]
    response = answer(ada, {**fields, "token": stretched})
    assert response.status_code == 400
    assert reviews(built_app) == []


def test_an_unshown_new_card_past_the_daily_limit_is_refused(built_app, ada):
    built_app.config["NEW_CARDS_PER_DAY"] = 2
    for _ in range(2):
        answer(ada, showing(ada.get(STUDY).get_data(as_text=True)), "4")
    done = ada.get(STUDY).get_data(as_text=True)
    assert "All caught up" in done, "the daily limit of 2 new cards showed a third"
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', done).group(1)
    answered = {card for _, card, _ in reviews(built_app)}
    for card in [c for c in card_ids(built_app) if c not in answered][:3]:
        made_up = f"{int(time.time() * 1000):x}.new-card-{card}"
        response = old_style_answer(ada, {"csrf_token": csrf}, card_id=card, token=made_up, rating="4")
        assert response.status_code == 400
        assert "All caught up" in response.get_data(as_text=True)  # the study page carries on
    assert len(reviews(built_app)) == 2
    with built_app.app_context():
        assert db.session.scalar(select(func.count(ReviewLog.id))) == 2


# ---------------------------------------------------------------- hostile values in the answer's fields

def post_json(client, fields, body):
    return client.post(f"{STUDY}/answer", json=body, headers={"X-CSRFToken": fields["csrf_token"]})


@pytest.mark.parametrize("rating", ["9" * 30, "9" * 5000, "-1", "0", "3.0", " ", "٣"])
def test_a_huge_or_odd_rating_in_a_form_is_a_clear_400(built_app, ada, rating):
    fields = showing(ada.get(STUDY).get_data(as_text=True))
    response = answer(ada, fields, rating)
    assert response.status_code == 400
    body = response.get_data(as_text=True)
    assert "Nothing was recorded" in body and ("Choose Again, Hard, Good or Easy." in body or "1 to 4" in body)
    assert reviews(built_app) == []


@pytest.mark.parametrize("change", [
    {"rating": 10 ** 40}, {"rating": True}, {"rating": 3.5}, {"rating": None}, {"rating": {"value": 3}},
    {"rating": [[3]]}, {"token": 12345}, {"token": None}, {"token": {"card": 1}}, {"token": [[1, 2]]},
    {"token": 10 ** 40}, {"token": "x" * 5000}, {},
])
def test_an_answer_sent_as_json_is_refused_whatever_it_holds(built_app, ada, change):
    # Only the page's own form body is read: a JSON answer, well-formed or not, records nothing.
    fields = showing(ada.get(STUDY).get_data(as_text=True))
    response = post_json(ada, fields, {"token": fields["token"], "rating": 3, **change})
    assert response.status_code == 415
    assert "Nothing was changed" in response.get_data(as_text=True)
    assert reviews(built_app) == []


@pytest.mark.parametrize("body", [[1, 2], "ab", 5, [["token", "x"], ["rating", "3"]]])
def test_a_json_answer_that_is_not_an_object_is_refused(built_app, ada, body):
    fields = showing(ada.get(STUDY).get_data(as_text=True))
    response = post_json(ada, fields, body)
    assert response.status_code == 415
    assert "Nothing was changed" in response.get_data(as_text=True)
    assert reviews(built_app) == []


@pytest.mark.parametrize("token", ["x" * 5000, "9" * 400 + "." * 400])
def test_an_oversized_token_in_a_form_is_a_clear_400(built_app, ada, token):
    fields = showing(ada.get(STUDY).get_data(as_text=True))
    response = ada.post(f"{STUDY}/answer", data={"csrf_token": fields["csrf_token"], "token": token, "rating": "3"})
    assert response.status_code == 400
    assert "Nothing was recorded" in response.get_data(as_text=True)
    assert reviews(built_app) == []
