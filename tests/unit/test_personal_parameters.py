"""Each student's own FSRS parameters: fitted from their history, kept only when better, used for their cards."""

from __future__ import annotations

import json
from datetime import timedelta

import fsrs_rs_python as fsrs_rs
import pytest
from fsrs import Rating, State
from sqlalchemy import select
from sqlalchemy.orm import Session

from flashapp.accounts import register_user
from flashapp.consistency import check_database
from flashapp.errors import Invalid
from flashapp.models import Card, CardState, PersonalParameters, ReviewLog, User
from flashapp.personal import (
    MIN_REVIEWS,
    optimize_student,
    parameters_in_use,
    reschedule_cards,
    student_scheduler,
    students_due_for_a_fit,
)
from flashapp.retention import retention_costs, set_desired_retention, valid_retention
from flashapp.scheduling import make_scheduler, preview_intervals, replay, rescheduled_due
from tests.helpers import FAST_HASH_METHOD, T0, build_numbers_deck, simulate_student, true_parameters

DEFAULTS = [float(w) for w in fsrs_rs.DEFAULT_PARAMETERS]


def student(session, name="ada"):
    user = register_user(session, username=name, password="long enough", password_method=FAST_HASH_METHOD)
    session.commit()
    return user


def cards(session, count):
    build_numbers_deck(session, count=count)
    return [card.id for card in session.scalars(select(Card).order_by(Card.position))]


@pytest.fixture
def studied(session, scheduler, fill_once):
    """A student with about a thousand answers drawn from a memory unlike the defaults."""
    def study() -> tuple[int, int]:
        user = student(session)
        answers = simulate_student(session, scheduler, user_id=user.id, card_ids=cards(session, 80), days=150, seed=5)
        return user.id, answers

    user_id, answers = fill_once("a student of 150 days", session.get_bind(), study)
    assert answers >= MIN_REVIEWS
    return session.get(User, user_id)


def test_a_fit_that_predicts_better_is_kept_and_the_memory_states_follow_it(session, scheduler, studied):
    due_before = dict(session.execute(select(CardState.card_id, CardState.due)).all())
    stability_before = dict(session.execute(select(CardState.card_id, CardState.stability)).all())
    finished = T0 + timedelta(days=151)

    outcome = optimize_student(session, scheduler, user_id=studied.id, now=finished)

    assert outcome.kept, outcome.message
    candidate = outcome.candidate
    assert candidate.fitted.log_loss < candidate.current.log_loss
    assert candidate.fitted.rmse_bins < candidate.current.rmse_bins
    print(f"\n{outcome.reviews} reviews: log loss {candidate.current.log_loss:.4f} -> {candidate.fitted.log_loss:.4f}, "
          f"RMSE(bins) {candidate.current.rmse_bins:.4f} -> {candidate.fitted.rmse_bins:.4f}, kept")
    row = session.get(PersonalParameters, studied.id)
    assert row.fitted_at == finished and row.review_count == outcome.reviews
    assert (row.log_loss_before, row.log_loss_after) == (candidate.current.log_loss, candidate.fitted.log_loss)
    fitted = json.loads(row.parameters)
    assert fitted != DEFAULTS
    # The fit moves the first-day stabilities towards the truth (0.1, 0.6, 1.2, 4.0) from the defaults'.
    truth = true_parameters()
    assert sum(abs(fitted[i] - truth[i]) for i in range(4)) < sum(abs(DEFAULTS[i] - truth[i]) for i in range(4))
    # Memory states are now the replay under the new parameters; due dates stay.
    assert outcome.states_recomputed > 0
    assert dict(session.execute(select(CardState.card_id, CardState.due)).all()) == due_before
    assert dict(session.execute(select(CardState.card_id, CardState.stability)).all()) != stability_before
    own = make_scheduler(enable_fuzzing=False, parameters=fitted)
    for state in session.scalars(select(CardState)):
        reviews = session.scalars(select(ReviewLog).where(ReviewLog.card_id == state.card_id)
                                  .order_by(ReviewLog.reviewed_at, ReviewLog.id)).all()
        replayed = replay(own, state.card_id, reviews, time_zone="UTC")
        assert state.stability == pytest.approx(replayed.stability, rel=1e-9)
        assert state.difficulty == pytest.approx(replayed.difficulty, rel=1e-9)
    session.commit()
    # `flashapp check` replays each student under their own parameters: nothing to report.
    report = check_database(session, scheduler, fix=False)
    assert report.problems == []


def test_the_check_would_see_states_worked_out_with_other_parameters(session, scheduler, studied):
    """The check is not blind: parameters kept without recomputing the states are a mismatch."""
    session.add(PersonalParameters(user_id=studied.id, parameters=json.dumps(true_parameters()), tried_at=T0,
                                   tried_review_count=0))
    session.commit()
    report = check_database(session, scheduler, fix=False)
    assert any("differs from its" in problem.message for problem in report.problems)


def test_a_fit_no_better_than_the_parameters_in_use_is_not_kept(session, scheduler, studied):
    first = optimize_student(session, scheduler, user_id=studied.id, now=T0 + timedelta(days=151))
    assert first.kept
    states = dict(session.execute(select(CardState.card_id, CardState.stability)).all())
    # The same history again: the new candidate is fitted on the same answers and is no better.
    again = optimize_student(session, scheduler, user_id=studied.id, now=T0 + timedelta(days=152))
    assert not again.kept and again.message.startswith("not kept")
    row = session.get(PersonalParameters, studied.id)
    assert row.fitted_at == T0 + timedelta(days=151) and row.tried_at == T0 + timedelta(days=152)
    assert dict(session.execute(select(CardState.card_id, CardState.stability)).all()) == states


def test_a_thin_history_keeps_the_defaults_and_waits_for_growth(session, scheduler):
    user = student(session)
    answers = simulate_student(session, scheduler, user_id=user.id, card_ids=cards(session, 20), days=12, seed=2)
    assert answers < MIN_REVIEWS
    assert students_due_for_a_fit(session) == []
    outcome = optimize_student(session, scheduler, user_id=user.id, now=T0 + timedelta(days=12))
    assert not outcome.kept and "fewer than" in outcome.message
    session.refresh(user)
    assert parameters_in_use(user.personal) is None
    # With a lower threshold it is due; once tried, not again until the history grows by a fifth.
    assert students_due_for_a_fit(session, min_reviews=10) == []  # tried at this very count
    row = session.get(PersonalParameters, user.id)
    row.tried_review_count = int(answers / 1.2) + 1
    session.commit()
    assert students_due_for_a_fit(session, min_reviews=10) == []
    row.tried_review_count = int(answers / 1.2) - 1
    session.commit()
    assert students_due_for_a_fit(session, min_reviews=10) == [user.id]


def test_a_students_scheduler_uses_their_parameters_and_desired_retention(session):
    user = student(session)
    [card_id, *_] = cards(session, 1)
    install = make_scheduler(enable_fuzzing=False)
    assert student_scheduler(install, user) is install
    good = preview_intervals(install, card_id, None, T0, time_zone="UTC", user_id=user.id)[Rating.Easy]
    user.desired_retention = 0.8
    lower = preview_intervals(student_scheduler(install, user), card_id, None, T0, time_zone="UTC",
                              user_id=user.id)[Rating.Easy]
    assert lower > good  # a lower desired retention spaces reviews further apart
    user.desired_retention = None
    session.add(PersonalParameters(user_id=user.id, parameters=json.dumps(true_parameters()), tried_at=T0,
                                   tried_review_count=0))
    session.commit()
    session.refresh(user)
    own = preview_intervals(student_scheduler(install, user), card_id, None, T0, time_zone="UTC",
                            user_id=user.id)[Rating.Easy]
    assert own < good  # the true memory's Easy stability (4.0 days) is far below the defaults' (~8 days)
    assert session.scalar(select(User.id).where(User.id == user.id)) == user.id


def test_desired_retention_is_between_070_and_097():
    assert valid_retention(0.7) == 0.7 and valid_retention(0.97) == 0.97
    for value in (0.69, 0.98, 1.0):
        with pytest.raises(Invalid):
            valid_retention(value)


def test_a_higher_desired_retention_costs_more_reviews_and_keeps_more_cards():
    costs = retention_costs(None, deck_size=300, new_per_day=20)
    assert [c.desired_retention for c in costs] == [0.80, 0.85, 0.90, 0.95]
    reviews = [c.reviews_per_day for c in costs]
    remembered = [c.remembered for c in costs]
    assert reviews == sorted(reviews) and reviews[0] < reviews[-1]
    assert remembered == sorted(remembered) and 0 < remembered[-1] <= 300


def test_a_fit_overtaken_by_another_fit_of_the_same_student_gives_way(session, engine, scheduler, studied,
                                                                      monkeypatch):
    """The server's background fit and `flashapp optimize` racing on one student: the first written stands."""
    import flashapp.personal as personal

    real_fit = personal.fit_candidate
    finished = T0 + timedelta(days=151)
    others: list = []

    def fit_while_another_finishes(*args, **kwargs):
        candidate = real_fit(*args, **kwargs)
        if not others:  # the other fit runs, whole, in its own session while this one is still fitting
            others.append(None)
            with Session(engine) as other:
                others[0] = optimize_student(other, scheduler, user_id=studied.id, now=finished)
        return candidate

    monkeypatch.setattr(personal, "fit_candidate", fit_while_another_finishes)
    outcome = optimize_student(session, scheduler, user_id=studied.id, now=finished + timedelta(minutes=1))
    assert others[0].kept
    assert not outcome.kept and "another fit" in outcome.message
    row = session.get(PersonalParameters, studied.id, populate_existing=True)
    assert row.tried_at == finished and row.fitted_at == finished  # the first one's record, untouched
    session.commit()
    assert check_database(session, scheduler, fix=False).problems == []


def test_rescheduling_gives_each_review_card_the_due_its_new_memory_model_puts_it_at(session, scheduler, studied):
    """After a kept fit the due dates stay; rescheduling moves them, the log keeps the first ones, the check agrees."""
    finished = T0 + timedelta(days=151)
    assert optimize_student(session, scheduler, user_id=studied.id, now=finished).kept
    before = {state.card_id: state.due for state in session.scalars(select(CardState))}
    answered = {row.id: row.due for row in session.scalars(select(ReviewLog))}
    done = reschedule_cards(session, scheduler, user_id=studied.id)
    assert done.review_cards > 20 and done.sooner + done.later > 10
    user = session.get(User, studied.id)
    own = student_scheduler(scheduler, user)
    moved = 0
    for state in session.scalars(select(CardState)):
        expected = rescheduled_due(own, state, user_id=studied.id, card_id=state.card_id, time_zone="UTC")
        if state.state == State.Review:
            assert state.due == expected
            moved += state.due != before[state.card_id]
        else:
            assert expected is None and state.due == before[state.card_id]  # learning steps stay
    assert moved == done.sooner + done.later
    for row in session.scalars(select(ReviewLog)):  # every answer keeps the due it scheduled
        assert (row.due_as_answered or row.due) == answered[row.id]
        assert row.due_as_answered is None or row.due != row.due_as_answered
    session.commit()
    assert check_database(session, scheduler, fix=False).problems == []
    # Done again with nothing changed since: nothing moves.
    assert reschedule_cards(session, scheduler, user_id=studied.id).sooner == 0
    assert reschedule_cards(session, scheduler, user_id=studied.id).later == 0


def test_a_higher_desired_retention_reschedules_cards_sooner(session, scheduler, studied):
    before = {state.card_id: state.due for state in session.scalars(select(CardState).where(
        CardState.state == State.Review))}
    set_desired_retention(session, user_id=studied.id, desired_retention=0.95)
    done = reschedule_cards(session, scheduler, user_id=studied.id)
    after = {state.card_id: state.due for state in session.scalars(select(CardState).where(
        CardState.state == State.Review))}
    assert done.later == 0 and done.sooner > 0
    assert all(after[card] <= before[card] for card in before)
    session.commit()
    assert check_database(session, scheduler, fix=False).problems == []
