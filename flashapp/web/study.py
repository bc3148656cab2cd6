"""Studying: the deck list with due counts, the study screen, answering and undo."""

from __future__ import annotations

import secrets
from datetime import datetime

from flask import Blueprint, abort, current_app, flash, redirect, render_template, session, url_for
from flask_login import current_user, login_required
from fsrs import Rating, State
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from .. import db
from ..classroom import assigned_decks
from ..models import Card, CardState, Deck
from ..scheduling import (
    RATINGS,
    Outcome,
    answer_card,
    day_start,
    due_counts,
    format_interval,
    next_card,
    next_day_start,
    next_due,
    preview_intervals,
    state_stamp,
    undo_last_answer,
)
from ..stats import deck_progress
from . import now, writing
from .forms import AnswerForm, EmptyForm

bp = Blueprint("study", __name__)

RATING_LABELS = {Rating.Again: "Again", Rating.Hard: "Hard", Rating.Good: "Good", Rating.Easy: "Easy"}


def _scheduler():
    return current_app.extensions["flashapp.scheduler"]


def _day_bounds(at: datetime) -> tuple[datetime, datetime]:
    hour = current_app.config["DAY_STARTS_AT_HOUR"]
    return (day_start(at, current_user.time_zone, hour=hour),
            next_day_start(at, current_user.time_zone, hour=hour))


def _new_token(at: datetime) -> str:
    """A one-time token for one showing of a card; it also carries when the card was shown."""
    return f"{int(at.timestamp() * 1000):x}.{secrets.token_urlsafe(12)}"


def _duration_ms(token: str, at: datetime) -> int | None:
    try:
        shown_ms = int(token.split(".", 1)[0], 16)
    except ValueError:
        return None
    return max(0, int(at.timestamp() * 1000) - shown_ms)


def _deck_or_404(slug: str) -> Deck:
    deck = db.session.scalar(select(Deck).where(Deck.slug == slug))
    if deck is None:
        abort(404)
    return deck


def _card_just_undone(deck: Deck) -> tuple[Card, CardState | None] | None:
    """The card whose answer was just undone, shown once more so it can be answered again."""
    card_id = session.pop("undone_card", None)
    if card_id is None:
        return None
    card = db.session.get(Card, card_id)
    if card is None or card.deck_id != deck.id or card.retired:
        return None
    state = db.session.scalar(select(CardState).where(CardState.user_id == current_user.id,
                                                      CardState.card_id == card.id))
    return card, state


@bp.route("/")
@login_required
def home():
    """The decks, with this user's new, learning and due counts."""
    at = now()
    begins, ends = _day_bounds(at)
    decks = list(db.session.scalars(select(Deck).order_by(Deck.title)))
    counts = due_counts(db.session, user_id=current_user.id, deck_ids=[d.id for d in decks], now=at,
                        day_begins=begins, day_ends=ends, new_per_day=current_app.config["NEW_CARDS_PER_DAY"])
    assigned = assigned_decks(db.session, current_user.id)
    progress = {p.deck_id: p for p in deck_progress(db.session, user_id=current_user.id,
                                                    deck_ids=list(assigned), now=at)}
    return render_template("home.html", assigned=[d for d in decks if d.id in assigned],
                           others=[d for d in decks if d.id not in assigned], counts=counts,
                           targets=assigned, progress=progress)


@bp.route("/study/<slug>")
@login_required
def study(slug: str):
    """Show the next card of a deck, or say when the next one is due."""
    deck = _deck_or_404(slug)
    at = now()
    begins, ends = _day_bounds(at)
    new_per_day = current_app.config["NEW_CARDS_PER_DAY"]
    counts = due_counts(db.session, user_id=current_user.id, deck_ids=[deck.id], now=at, day_begins=begins,
                        day_ends=ends, new_per_day=new_per_day)[deck.id]
    can_undo = counts.started > 0  # every started card has at least one answer to take back
    picked = _card_just_undone(deck) or next_card(
        db.session, user_id=current_user.id, deck_id=deck.id, now=at, day_begins=begins, day_ends=ends,
        new_per_day=new_per_day, counts=counts)
    if picked is None:
        upcoming = next_due(db.session, user_id=current_user.id, deck_id=deck.id)
        return render_template("done.html", deck=deck, next_due=upcoming, next_day=ends, counts=counts,
                               can_undo=can_undo, undo_form=EmptyForm(), now=at)
    card, state = picked
    intervals = preview_intervals(_scheduler(), card.id, state, at)
    buttons = [(int(r), RATING_LABELS[r], format_interval(intervals[r])) for r in RATINGS]
    form = AnswerForm(card_id=card.id, token=_new_token(at), stamp=state_stamp(state))
    state_name = None if state is None else ("review" if state.state is State.Review else "learning")
    return render_template("study.html", deck=deck, card=card, note=card.note, is_new=state is None,
                           state_name=state_name,
                           buttons=buttons, form=form, counts=counts, can_undo=can_undo, undo_form=EmptyForm())


@bp.route("/study/<slug>/answer", methods=["POST"])
@login_required
def answer(slug: str):
    """Record an answer to one showing of a card, then go on to the next card."""
    deck = _deck_or_404(slug)
    form = AnswerForm()
    if not form.validate_on_submit():
        problems = "; ".join(e for errors in form.errors.values() for e in errors)
        return render_template("error.html", title="Answer not recorded",
                               message=f"That answer could not be read ({problems}). Nothing was recorded.",
                               back=url_for("study.study", slug=slug)), 400
    card = db.session.get(Card, form.card_id.data)
    if card is None or card.deck_id != deck.id:
        abort(404)
    at, user_id, card_id = now(), current_user.id, card.id
    for attempt in range(2):
        try:
            with writing():
                result = answer_card(db.session, _scheduler(), user_id=user_id, card_id=card_id,
                                     rating=Rating(form.rating.data), token=form.token.data, now=at,
                                     shown_stamp=form.stamp.data, duration_ms=_duration_ms(form.token.data, at))
            break
        except IntegrityError:
            # A simultaneous copy of this answer got in first; look again.
            if attempt:
                raise
    if result.outcome is Outcome.STALE:
        flash("That card was already answered in another window; here is the next one.", "info")
    elif result.outcome is Outcome.UNAVAILABLE:
        flash("That card has been retired from the deck; here is the next one.", "info")
    return redirect(url_for("study.study", slug=slug), code=303)


@bp.route("/study/<slug>/undo", methods=["POST"])
@login_required
def undo(slug: str):
    """Take back the latest answer in this deck and show that card again."""
    deck = _deck_or_404(slug)
    form = EmptyForm()
    if form.validate_on_submit():
        user_id, deck_id = current_user.id, deck.id
        with writing():
            card_id = undo_last_answer(db.session, _scheduler(), user_id=user_id, deck_id=deck_id)
        if card_id:
            session["undone_card"] = card_id
            flash("Undid your last answer.", "info")
        else:
            flash("There is no answer to undo.", "info")
    return redirect(url_for("study.study", slug=slug), code=303)
