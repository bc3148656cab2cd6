"""Studying: the deck list, the study screen, answering and undo."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, url_for
from flask import session as cookie
from flask_login import login_required
from fsrs import Rating
from werkzeug.wrappers import Response

from .. import study
from ..scheduling import Outcome
from ..showings import RefusedShowing
from .errors import status_of
from .forms import AnswerForm, EmptyForm, Form, ReviewAheadForm
from .helpers import (
    deck_url,
    learner,
    now,
    own_scheduler,
    plans_one_write,
    required,
    session,
    showing_tokens,
    study_settings,
    user_id,
)

bp = Blueprint("study", __name__)


@bp.route("/")
@login_required
def home() -> str:
    """The decks, with this user's new, learning and due counts."""
    decks = study.deck_list(session(), user_id=user_id(), time_zone=learner().time_zone, now=now(),
                            settings=study_settings())
    return render_template("home.html", assigned=[d for d in decks if d.assignment],
                           others=[d for d in decks if not d.assignment])


def _study_screen(slug: str) -> str:
    """The study page of a deck: its next card with a freshly signed showing, or when the next is due."""
    at, user = now(), learner()
    screen = study.study_screen(session(), own_scheduler(user), showing_tokens(), user_id=user.id, slug=slug,
                                time_zone=user.time_zone, now=at, settings=study_settings(),
                                undone_card_id=cookie.pop("undone_card", None))
    if screen.showing is None:
        return render_template("done.html", screen=screen, now=at, more_new=study.MORE_NEW_CARDS,
                               ahead_form=ReviewAheadForm())
    return render_template("study.html", screen=screen, card=screen.showing)


def _unreadable(form: Form, slug: str, *, title: str, what: str, outcome: str) -> tuple[str, int]:
    """The page for a study form that could not be read: what was wrong, and the way back to the deck."""
    problems = "; ".join(e for errors in form.errors.values() for e in errors)
    return render_template("error.html", title=title, message=f"{what} could not be read ({problems}). {outcome}",
                           back=url_for("study.study", slug=slug)), 400


@bp.route("/study/<slug>", endpoint="study")
@login_required
def study_page(slug: str) -> str:
    """Show the next card of a deck, or say when the next one is due."""
    return _study_screen(slug)


@bp.route("/study/<slug>/answer", methods=["POST"])
@plans_one_write  # the plan is checked again when written: a token used twice, a state moved since
@login_required
def answer(slug: str) -> Response | tuple[str, int]:
    """Record an answer to one showing of a card, then go on to the next card."""
    form = AnswerForm()
    if not form.validate_on_submit():
        return _unreadable(form, slug, title="Answer not recorded", what="That answer", outcome="Nothing was recorded.")
    user = learner()
    try:
        outcome = study.answer(session(), own_scheduler(user), showing_tokens(), user_id=user.id, slug=slug,
                               token=required(form.token.data), rating=Rating(required(form.rating.data)),
                               now=now())
    except RefusedShowing as refused:
        # The study page carries on with the card the server would show now; the status tells a script.
        flash(refused.message, "error")
        return _study_screen(slug), status_of(refused)[0]
    if outcome is Outcome.STALE:
        flash("That card was already answered in another window; here is the next one.", "info")
    elif outcome is Outcome.UNAVAILABLE:
        flash("That card has been retired from the deck; here is the next one.", "info")
    return redirect(deck_url("study.study", slug), code=303)


@bp.route("/study/<slug>/undo", methods=["POST"])
@login_required
def undo(slug: str) -> Response:
    """Take back the latest answer in this deck and show that card again."""
    if EmptyForm().validate_on_submit():
        card_id = study.undo(session(), own_scheduler(), user_id=user_id(), slug=slug)
        if card_id:
            cookie["undone_card"] = card_id
            flash("Undid your last answer.", "info")
        else:
            flash("There is no answer to undo.", "info")
    return redirect(url_for("study.study", slug=slug), code=303)


@bp.route("/study/<slug>/more-new", methods=["POST"])
@login_required
def more_new(slug: str) -> Response:
    """Add more new cards of this deck for today only, then go on studying."""
    if EmptyForm().validate_on_submit():
        added = study.more_new_cards(session(), user_id=user_id(), slug=slug, now=now())
        flash(f"{added} more new card{'' if added == 1 else 's'} for today.", "success")
    return redirect(url_for("study.study", slug=slug), code=303)


@bp.route("/study/<slug>/ahead", methods=["POST"])
@login_required
def review_ahead(slug: str) -> Response | tuple[str, int]:
    """Open the review cards of the next few study days for today, then go on studying."""
    form = ReviewAheadForm()
    if not form.validate_on_submit():
        return _unreadable(form, slug, title="Nothing opened", what="That choice", outcome="Nothing was changed.")
    days = required(form.days.data)
    opened = study.review_ahead(session(), user_id=user_id(), slug=slug, days_ahead=days, now=now(),
                                time_zone=learner().time_zone, settings=study_settings())
    flash(f"{opened} card{'' if opened == 1 else 's'} due in the next {days} day{'' if days == 1 else 's'} "
          f"{'is' if opened == 1 else 'are'} open to review now.", "success")
    return redirect(url_for("study.study", slug=slug), code=303)
