"""Showing tokens without the app: signed by one key, bound to a user, a card and a time; read back or refused.

Answering through them (study.answer) on a real database, with fixed UTC times and fuzzing off.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from fsrs import Rating
from sqlalchemy import func, select

from flashapp import study
from flashapp.errors import Forbidden, Invalid
from flashapp.models import ReviewLog, Role, User
from flashapp.scheduling import MAX_DURATION_MS, Outcome
from flashapp.showings import LIFETIME, ExpiredShowing, ForgedShowing, OthersShowing, ShowingTokens
from tests.helpers import T0, build_numbers_deck

KEY = "showing-test-key-" + "k" * 20
TOKENS = ShowingTokens(KEY)


def test_a_token_reads_back_what_was_issued():
    token = TOKENS.issue(user_id=7, card_id=42, stamp="new", now=T0)
    shown = TOKENS.read(token, user_id=7, now=T0 + timedelta(seconds=3))
    assert (shown.user_id, shown.card_id, shown.stamp) == (7, 42, "new")
    assert shown.duration_ms(T0 + timedelta(seconds=3)) == 3000
    assert shown.key.startswith(f"{int(T0.timestamp() * 1000):x}.") and len(shown.key) <= 64


def test_every_showing_has_its_own_token_and_key():
    first, second = (TOKENS.issue(user_id=7, card_id=42, stamp="new", now=T0) for _ in range(2))
    assert first != second
    assert TOKENS.read(first, user_id=7, now=T0).key != TOKENS.read(second, user_id=7, now=T0).key


def test_a_token_signed_with_another_key_is_forged():
    elsewhere = ShowingTokens("another-install-key-" + "z" * 20).issue(user_id=7, card_id=42, stamp="new", now=T0)
    with pytest.raises(ForgedShowing) as refused:
        TOKENS.read(elsewhere, user_id=7, now=T0)
    assert isinstance(refused.value, Invalid) and "not recorded" in refused.value.message


@pytest.mark.parametrize("change", [
    lambda token: ("X" if token[0] != "X" else "Y") + token[1:],  # the payload
    # the signature (its first character: the last one also holds padding bits, which a change may leave alone)
    lambda token: token.rpartition(".")[0] + "." + ("A" if token.rpartition(".")[2][0] != "A" else "B")
    + token.rpartition(".")[2][1:],
    lambda token: token.split(".")[0],  # no signature at all
    lambda token: "1a2b3c4d5e.made-up-nonce",  # a token of the old, unsigned kind
    lambda token: "",
])
def test_a_changed_or_made_up_token_is_forged(change):
    token = TOKENS.issue(user_id=7, card_id=42, stamp="new", now=T0)
    with pytest.raises(ForgedShowing):
        TOKENS.read(change(token), user_id=7, now=T0)


def test_a_validly_signed_payload_of_another_shape_is_refused():
    # Only `issue` signs under this salt; signed text of another form is still not a showing.
    from itsdangerous import Signer, URLSafeSerializer

    from flashapp.showings import EARLIER_SALT, SALT

    signer = Signer(KEY, salt=SALT)
    for fields in ("7.42", "7.42.0.nonce", "7.x.0.nonce.new", "-7.42.0.nonce.new", "7.42.1e3.nonce.new",
                   "\u0667.42.0.nonce.new", " 7.42.0.nonce.new", "7.42.0" + "0" * 30 + ".nonce.new"):
        with pytest.raises(ForgedShowing):
            TOKENS.read(signer.sign(fields).decode(), user_id=7, now=T0)
    earlier = URLSafeSerializer(KEY, salt=EARLIER_SALT)
    for payload in ({"card": 42}, [7, 42], [7, "42", 0, "new", "n"], [True, 42, 0, "new", "n"], [7, 42, 0, 1, "n"]):
        with pytest.raises(ForgedShowing):
            TOKENS.read(earlier.dumps(payload), user_id=7, now=T0)


def test_a_token_issued_by_the_earlier_version_is_still_read():
    # A study page left open across an upgrade still records its answer.
    from itsdangerous import URLSafeSerializer

    from flashapp.showings import EARLIER_SALT

    shown_ms = int(T0.timestamp() * 1000)
    token = URLSafeSerializer(KEY, salt=EARLIER_SALT).dumps([7, 42, shown_ms, "2026-01-01T00:00:00+00:00", "abc"])
    shown = TOKENS.read(token, user_id=7, now=T0 + timedelta(seconds=2))
    assert (shown.user_id, shown.card_id, shown.stamp, shown.nonce) == (7, 42, "2026-01-01T00:00:00+00:00", "abc")
    assert shown.key == f"{shown_ms:x}.abc" and shown.duration_ms(T0 + timedelta(seconds=2)) == 2000


def test_a_stamp_with_dots_reads_back_whole():
    stamp = "2026-11-26T21:22:16.850895+00:00"
    token = TOKENS.issue(user_id=7, card_id=42, stamp=stamp, now=T0)
    assert TOKENS.read(token, user_id=7, now=T0).stamp == stamp


def test_another_users_token_is_refused():
    token = TOKENS.issue(user_id=7, card_id=42, stamp="new", now=T0)
    with pytest.raises(OthersShowing) as refused:
        TOKENS.read(token, user_id=8, now=T0)
    assert isinstance(refused.value, Forbidden)


def test_a_token_older_than_its_lifetime_is_refused():
    token = TOKENS.issue(user_id=7, card_id=42, stamp="new", now=T0)
    assert TOKENS.read(token, user_id=7, now=T0 + LIFETIME).card_id == 42
    with pytest.raises(ExpiredShowing) as refused:
        TOKENS.read(token, user_id=7, now=T0 + LIFETIME + timedelta(seconds=1))
    assert "6 hours" in refused.value.message


# ---------------------------------------------------------------- answering through a token

@pytest.fixture
def learner(session):
    build_numbers_deck(session, count=4)
    users = [User(username=name, password_hash="x", role=Role.STUDENT) for name in ("ann", "ben")]
    session.add_all(users)
    session.commit()
    return users[0].id, users[1].id


def screen(session, scheduler, user_id, now=T0):
    return study.study_screen(session, scheduler, TOKENS, user_id=user_id, slug="numbers", time_zone="UTC",
                              now=now, settings=study.StudySettings())


def reviews(session) -> list[ReviewLog]:
    session.expire_all()
    return list(session.scalars(select(ReviewLog).order_by(ReviewLog.id)))


@pytest.mark.parametrize(("seconds", "duration_ms"), [(7, 7000), (0, 0), (600, MAX_DURATION_MS)])
def test_the_duration_is_measured_from_the_showing_and_capped(session, scheduler, learner, seconds, duration_ms):
    ann, _ = learner
    shown = screen(session, scheduler, ann).showing
    outcome = study.answer(session, scheduler, TOKENS, user_id=ann, slug="numbers", token=shown.token,
                           rating=Rating.Good, now=T0 + timedelta(seconds=seconds))
    assert outcome is Outcome.RECORDED
    [review] = reviews(session)
    assert (review.card_id, review.duration_ms) == (shown.card_id, duration_ms)
    assert review.token == TOKENS.read(shown.token, user_id=ann, now=T0).key


def test_a_refused_token_records_nothing(session, scheduler, learner):
    ann, ben = learner
    shown = screen(session, scheduler, ann).showing
    forged = ShowingTokens("another-install-key-" + "z" * 20).issue(user_id=ann, card_id=shown.card_id + 1,
                                                                     stamp="new", now=T0)
    attempts = [(ben, shown.token, T0), (ann, forged, T0), (ann, shown.token, T0 + LIFETIME + timedelta(minutes=1))]
    for user_id, token, at in attempts:
        with pytest.raises((ForgedShowing, OthersShowing, ExpiredShowing)):
            study.answer(session, scheduler, TOKENS, user_id=user_id, slug="numbers", token=token,
                         rating=Rating.Easy, now=at)
    assert session.scalar(select(func.count(ReviewLog.id))) == 0


def test_a_replayed_token_is_a_repeat_even_after_the_card_moved_on(session, scheduler, learner):
    ann, _ = learner
    shown = screen(session, scheduler, ann).showing
    answers = [study.answer(session, scheduler, TOKENS, user_id=ann, slug="numbers", token=shown.token,
                            rating=rating, now=T0 + timedelta(seconds=n))
               for n, rating in enumerate((Rating.Again, Rating.Again, Rating.Easy))]
    assert answers == [Outcome.RECORDED, Outcome.DUPLICATE, Outcome.DUPLICATE]
    later = T0 + timedelta(minutes=2)
    again = screen(session, scheduler, ann, now=later).showing
    assert again.card_id == shown.card_id and again.token != shown.token  # due again: a new showing
    assert study.answer(session, scheduler, TOKENS, user_id=ann, slug="numbers", token=shown.token,
                        rating=Rating.Easy, now=later) is Outcome.DUPLICATE
    assert [r.rating for r in reviews(session)] == [Rating.Again]


def test_only_the_cards_shown_within_the_daily_limit_get_tokens(session, scheduler, learner):
    ann, _ = learner
    settings = study.StudySettings(new_cards_per_day=2)
    shown_cards = []
    for n in range(3):
        showing = study.study_screen(session, scheduler, TOKENS, user_id=ann, slug="numbers", time_zone="UTC",
                                     now=T0 + timedelta(seconds=n), settings=settings).showing
        if showing is None:
            break
        shown_cards.append(showing.card_id)
        study.answer(session, scheduler, TOKENS, user_id=ann, slug="numbers", token=showing.token,
                     rating=Rating.Easy, now=T0 + timedelta(seconds=n))
    assert len(shown_cards) == 2
    assert [r.card_id for r in reviews(session)] == shown_cards
