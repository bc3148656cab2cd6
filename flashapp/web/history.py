"""A user's own review history, as a page and as CSV, and reviews brought back from Anki."""

from __future__ import annotations

from flask import Blueprint, Response, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.wrappers import Response as Redirect

from .. import csrf, exports
from ..anki_import import ImportLimits, import_anki_file
from ..decks import all_decks, deck_by_slug
from ..errors import Invalid
from ..history import history_days, history_query
from ..scheduling import StudyDays, zone
from .forms import AnkiUploadForm
from .helpers import download, now, paginate, scheduler, session, study_settings, user_id

bp = Blueprint("history", __name__)

# Room in an upload's body for the form around the file (its token, the part headers).
FORM_OVERHEAD_BYTES = 64 * 1024


def _history_page(form: AnkiUploadForm) -> str:
    slug = request.args.get("deck") or None
    deck = deck_by_slug(session(), slug) if slug else None
    deck_ids = None if deck is None else [deck.id]
    pagination = paginate(history_query(user_id(), deck_ids=deck_ids), page=request.args.get("page", 1, type=int),
                          per_page=current_app.config["HISTORY_PAGE_SIZE"])
    days = history_days(session(), pagination.items, user_id=user_id(), deck_ids=deck_ids,
                        days=StudyDays(current_user.time_zone, study_settings().day_starts_at_hour))
    return render_template("history.html", pagination=pagination, days=days,
                           decks=all_decks(session(), visible_to=user_id()), deck=deck,
                           tz=zone(current_user.time_zone), upload=form)


@bp.route("/history")
@login_required
def history() -> str:
    """Every answer the user gave, newest first, grouped by day with each day's totals; one deck or all."""
    return _history_page(AnkiUploadForm())


@bp.route("/history.csv")
@login_required
def history_csv() -> Response:
    """The same history as a CSV file."""
    return download(exports.history_csv(session(), user_id=user_id(), time_zone=current_user.time_zone),
                    filename=f"flashapp-history-{current_user.username}.csv", mimetype="text/csv")


# The app-wide CSRF check would read the body before this view raises its size limit; the form checks
# its own CSRF token instead (a Flask-WTF form does, with the same key), so no request goes unchecked.
@csrf.exempt
@bp.route("/history/anki", methods=["POST"])
@login_required
def import_from_anki() -> Redirect | tuple[str, int]:
    """Merge the reviews of an uploaded Anki export into the user's history, then show what was added."""
    limit = int(current_app.config["ANKI_UPLOAD_MAX_BYTES"])
    request.max_content_length = limit + FORM_OVERHEAD_BYTES
    try:
        form = AnkiUploadForm()
    except RequestEntityTooLarge:
        form = AnkiUploadForm(formdata=None)
        form.file.errors = [f"This file is larger than the {limit // (1024 * 1024)} MB this server accepts. "
                            "Export only the deck from this app (an .apkg with scheduling) rather than the "
                            "whole collection."]
        return _history_page(form), 413
    if not form.validate_on_submit():
        if form.csrf_token.errors:
            form.file.errors = [*form.file.errors, "This form has expired or was not sent by this site: "
                                                   "reload the page and upload the file again. Nothing was changed."]
        return _history_page(form), 400
    try:
        report = import_anki_file(session(), scheduler(), user_id=user_id(), source=form.file.data.stream,
                                  now=now(), limits=ImportLimits(upload_bytes=limit))
    except Invalid as error:
        form.file.errors = [*form.file.errors, error.message]
        return _history_page(form), 400
    flash(report.summary(), "success" if report.added else "info")
    return redirect(url_for("history.history"), code=303)
