"""`flashapp optimize` and the fits `flashapp serve` runs by itself: each student's own parameters."""

from __future__ import annotations

import threading
import time

from sqlalchemy import select

from flashapp import db
from flashapp.accounts import register_user
from flashapp.fit_schedule import start_personal_fits
from flashapp.models import Card, PersonalParameters
from flashapp.scheduling import make_scheduler
from tests.helpers import FAST_HASH_METHOD, T0, build_numbers_deck, simulate_student


def studied(app, *, days: int, cards: int = 80) -> int:
    """A student 'ann' with `days` days of history drawn from a memory unlike the defaults; her answers."""
    with app.app_context():
        session = db.session()
        build_numbers_deck(session, count=cards)
        user = register_user(session, username="ann", password="long enough", password_method=FAST_HASH_METHOD)
        session.commit()
        ids = list(session.scalars(select(Card.id).order_by(Card.position)))
        answers = simulate_student(session, make_scheduler(enable_fuzzing=False), user_id=user.id, card_ids=ids,
                                   days=days, seed=5)
        db.session.remove()
        return answers


def fitted_row(app) -> PersonalParameters | None:
    with app.app_context():
        return db.session.scalar(select(PersonalParameters))


def test_optimize_a_named_student_keeps_better_parameters_and_says_so(app, runner):
    answers = studied(app, days=150)
    result = runner.invoke(args=["optimize", "--user", "ANN"])
    assert result.exit_code == 0, result.output
    assert result.output.startswith(f"ann ({answers} reviews): kept: log loss ")
    assert "memory states recomputed; due dates unchanged." in result.output
    row = fitted_row(app)
    assert row.parameters is not None and row.review_count == answers and row.log_loss_after < row.log_loss_before
    # Nothing has grown since: a round finds nobody to fit.
    again = runner.invoke(args=["optimize"])
    assert again.exit_code == 0 and again.output == "No student's history has grown enough for a new fit.\n"
    check = runner.invoke(args=["check"])
    assert check.exit_code == 0 and "No problems found." in check.output


def test_optimize_a_student_with_a_thin_history_keeps_the_defaults(app, runner):
    answers = studied(app, days=10, cards=20)
    result = runner.invoke(args=["optimize", "--user", "ann"])
    assert result.exit_code == 0, result.output
    assert f"ann ({answers} reviews): {answers} reviews: fewer than the 400 a fit needs" in result.output
    assert fitted_row(app).parameters is None


def test_optimize_an_unknown_student_changes_nothing(app, runner):
    result = runner.invoke(args=["optimize", "--user", "nobody"])
    assert result.exit_code == 1 and "There is no account 'nobody'. Nothing was changed." in result.output


def test_the_servers_round_fits_a_student_whose_history_is_long_enough(app):
    studied(app, days=150)
    stop = threading.Event()
    thread = start_personal_fits(app, interval_seconds=3600, stop=stop)
    try:
        deadline = time.monotonic() + 120
        while fitted_row(app) is None and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        stop.set()
        thread.join(120)
    assert not thread.is_alive()
    row = fitted_row(app)
    assert row is not None and row.parameters is not None and row.tried_at > T0
