"""A user's own review history, as a page and as CSV."""

from __future__ import annotations

from flask import Blueprint, Response, current_app, render_template, request
from flask_login import current_user, login_required

from .. import exports
from ..history import history_query
from ..scheduling import zone
from .helpers import download, paginate, session, user_id

bp = Blueprint("history", __name__)


@bp.route("/history")
@login_required
def history() -> str:
    """Every answer the user gave, newest first, a page at a time."""
    pagination = paginate(history_query(user_id()), page=request.args.get("page", 1, type=int),
                          per_page=current_app.config["HISTORY_PAGE_SIZE"])
    return render_template("history.html", pagination=pagination, tz=zone(current_user.time_zone))


@bp.route("/history.csv")
@login_required
def history_csv() -> Response:
    """The same history as a CSV file."""
    return download(exports.history_csv(session(), user_id=user_id(), time_zone=current_user.time_zone),
                    filename=f"flashapp-history-{current_user.username}.csv", mimetype="text/csv")
