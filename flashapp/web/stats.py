"""A student's own statistics page."""

from __future__ import annotations

from flask import Blueprint, render_template, request
from flask_login import login_required

from ..memory_stats import statistics_page
from .charts import page_context
from .helpers import learner, now, scheduler, session, study_settings

bp = Blueprint("stats", __name__)


@bp.route("/stats")
@login_required
def stats() -> str:
    """The logged-in student's statistics: today, the forecast, the calendar, retention, cards, buttons, hours."""
    page = statistics_page(session(), scheduler(), student=learner(), now=now(),
                           day_starts_at_hour=study_settings().day_starts_at_hour,
                           deck_slug=request.args.get("deck") or None, period=request.args.get("period"))
    return render_template("stats.html", **page_context(page))
