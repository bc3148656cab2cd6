"""A user's own review history, as a page and as CSV."""

from __future__ import annotations

import csv
import io

from flask import Blueprint, Response, current_app, render_template, request
from flask_login import current_user, login_required
from sqlalchemy import func, select

from .. import db
from ..history import review_history
from ..models import ReviewLog
from ..scheduling import format_interval, zone

bp = Blueprint("history", __name__)

RATING_NAMES = {1: "Again", 2: "Hard", 3: "Good", 4: "Easy"}


@bp.route("/history")
@login_required
def history():
    """Every answer the user gave, newest first, a page at a time."""
    size = current_app.config["HISTORY_PAGE_SIZE"]
    total = db.session.scalar(select(func.count(ReviewLog.id)).where(ReviewLog.user_id == current_user.id))
    pages = max(1, -(-total // size))
    page = min(max(1, request.args.get("page", 1, type=int)), pages)
    rows = review_history(db.session, user_id=current_user.id, limit=size, offset=(page - 1) * size)
    return render_template("history.html", rows=rows, page=page, pages=pages, total=total,
                           tz=zone(current_user.time_zone), ratings=RATING_NAMES, format_interval=format_interval)


@bp.route("/history.csv")
@login_required
def history_csv():
    """The same history as a CSV file."""
    tz = zone(current_user.time_zone)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["reviewed_at_utc", "reviewed_at_local", "deck", "card_key", "question", "rating",
                     "rating_name", "interval_seconds", "interval", "due_utc", "duration_ms"])
    for row in review_history(db.session, user_id=current_user.id):
        review = row.review
        writer.writerow([review.reviewed_at.isoformat(), review.reviewed_at.astimezone(tz).isoformat(),
                         row.deck_slug, row.card_key, row.question, review.rating, RATING_NAMES[review.rating],
                         int(review.interval.total_seconds()), format_interval(review.interval),
                         review.due.isoformat(), review.duration_ms if review.duration_ms is not None else ""])
    filename = f"flashapp-history-{current_user.username}.csv"
    return Response(out.getvalue(), mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="{filename}"'})
