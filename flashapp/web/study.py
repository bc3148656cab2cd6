"""Studying: the deck list, the study screen, answering and undo."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, url_for
from flask import session as cookie
from flask_login import current_user, login_required
from fsrs import Rating
from werkzeug.wrappers import Response

from .. import study
from ..scheduling import Outcome
from .forms import AnswerForm, EmptyForm
from .helpers import now, required, scheduler, session, study_settings, user_id

bp = Blueprint("study", __name__)


@bp.route("/")
@login_required
def home() -> str:
    """The decks, with this user's new, learning and due counts."""
    decks = study.deck_list(session(), user_id=user_id(), time_zone=current_user.time_zone, now=now(),
                            settings=study_settings())
    return render_template("home.html", assigned=[d for d in decks if d.assignment],
                           others=[d for d in decks if not d.assignment])


@bp.route("/study/<slug>", endpoint="study")
@login_required
def study_page(slug: str) -> str:
    """Show the next card of a deck, or say when the next one is due."""
    at = now()
    screen = study.study_screen(session(), scheduler(), user_id=user_id(), slug=slug,
                                time_zone=current_user.time_zone, now=at, settings=study_settings(),
                                undone_card_id=cookie.pop("undone_card", None))
    if screen.showing is None:
        return render_template("done.html", screen=screen, undo_form=EmptyForm(), now=at)
    # The answer's own fields are written out by the template; both forms carry the one CSRF token.
    form = EmptyForm()
    return render_template("study.html", screen=screen, card=screen.showing, form=form, undo_form=form)


@bp.route("/study/<slug>/answer", methods=["POST"])
@login_required
def answer(slug: str) -> Response | tuple[str, int]:
    """Record an answer to one showing of a card, then go on to the next card."""
    form = AnswerForm()
    if not form.validate_on_submit():
        problems = "; ".join(e for errors in form.errors.values() for e in errors)
        return render_template("error.html", title="Answer not recorded",
                               message=f"That answer could not be read ({problems}). Nothing was recorded.",
                               back=url_for("study.study", slug=slug)), 400
    outcome = study.answer(session(), scheduler(), user_id=user_id(), slug=slug,
                           card_id=required(form.card_id.data), rating=Rating(required(form.rating.data)),
                           token=required(form.token.data), stamp=required(form.stamp.data), now=now())
    if outcome is Outcome.STALE:
        flash("That card was already answered in another window; here is the next one.", "info")
    elif outcome is Outcome.UNAVAILABLE:
        flash("That card has been retired from the deck; here is the next one.", "info")
    return redirect(url_for("study.study", slug=slug), code=303)


@bp.route("/study/<slug>/undo", methods=["POST"])
@login_required
def undo(slug: str) -> Response:
    """Take back the latest answer in this deck and show that card again."""
    if EmptyForm().validate_on_submit():
        card_id = study.undo(session(), scheduler(), user_id=user_id(), slug=slug)
        if card_id:
            cookie["undone_card"] = card_id
            flash("Undid your last answer.", "info")
        else:
            flash("There is no answer to undo.", "info")
    return redirect(url_for("study.study", slug=slug), code=303)
