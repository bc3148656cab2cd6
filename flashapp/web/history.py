"""A user's own review history, as a page and as CSV."""

from __future__ import annotations

from flask import Blueprint, Response, current_app, render_template, request
from flask_login import current_user, login_required

from .. import exports
from ..decks import all_decks, deck_by_slug
from ..history import history_days, history_query
from ..scheduling import StudyDays, zone
from .helpers import download, paginate, session, study_settings, user_id

bp = Blueprint("history", __name__)


@bp.route("/history")
@login_required
def history() -> str:
    """Every answer the user gave, newest first, grouped by day with each day's totals; one deck or all."""
    slug = request.args.get("deck") or None
    deck = deck_by_slug(session(), slug) if slug else None
    deck_ids = None if deck is None else [deck.id]
    pagination = paginate(history_query(user_id(), deck_ids=deck_ids), page=request.args.get("page", 1, type=int),
                          per_page=current_app.config["HISTORY_PAGE_SIZE"])
    days = history_days(session(), pagination.items, user_id=user_id(), deck_ids=deck_ids,
                        days=StudyDays(current_user.time_zone, study_settings().day_starts_at_hour))
    return render_template("history.html", pagination=pagination, days=days,
                           decks=all_decks(session(), visible_to=user_id()), deck=deck, tz=zone(current_user.time_zone))


@bp.route("/history.csv")
@login_required
def history_csv() -> Response:
    """The same history as a CSV file."""
    return download(exports.history_csv(session(), user_id=user_id(), time_zone=current_user.time_zone),
                    filename=f"flashapp-history-{current_user.username}.csv", mimetype="text/csv")
