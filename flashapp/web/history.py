"""A user's own review history, as a page and as CSV."""

from __future__ import annotations

import csv
import io

from flask import Blueprint, Response, current_app, render_template, request
from flask_login import current_user, login_required

from ..history import history_query, review_history
from ..scheduling import format_interval, zone
from .helpers import paginate, session, user_id

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
    tz = zone(current_user.time_zone)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["reviewed_at_utc", "reviewed_at_local", "deck", "card_key", "question", "rating",
                     "rating_name", "interval_seconds", "interval", "due_utc", "duration_ms"])
    for row in review_history(session(), user_id=user_id()):
        review = row.review
        writer.writerow([review.reviewed_at.isoformat(), review.reviewed_at.astimezone(tz).isoformat(),
                         row.deck_slug, row.card_key, row.question, int(review.rating), review.rating.name,
                         int(review.interval.total_seconds()), format_interval(review.interval),
                         review.due.isoformat(), review.duration_ms if review.duration_ms is not None else ""])
    filename = f"flashapp-history-{current_user.username}.csv"
    return Response(out.getvalue(), mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="{filename}"'})
