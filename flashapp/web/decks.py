"""Deck downloads: any deck as an Anki package, and a student's own progress in it."""

from __future__ import annotations

import io

from flask import Blueprint, Response, send_file
from flask_login import current_user, login_required

from ..anki_progress import export_user_progress, progress_file_name
from ..decks import export_deck
from .helpers import learner, now, scheduler, session, user_id

bp = Blueprint("decks", __name__)


@bp.route("/decks/<slug>.apkg")
@login_required
def export(slug: str) -> Response:
    """Download the deck as an .apkg file that Anki imports."""
    buffer = io.BytesIO()
    export_deck(session(), slug=slug, out=buffer, visible_to=user_id())
    buffer.seek(0)
    return send_file(buffer, mimetype="application/octet-stream", as_attachment=True, download_name=f"{slug}.apkg")


@bp.route("/decks/<slug>/my-progress.apkg")
@login_required
def export_progress(slug: str) -> Response:
    """Download the deck with the logged-in user's own scheduling, review history and memory states."""
    user = learner()
    buffer = io.BytesIO()
    at = now()
    export_user_progress(session(), scheduler(), user=user, slug=slug, out=buffer, now=at)
    buffer.seek(0)
    return send_file(buffer, mimetype="application/octet-stream", as_attachment=True,
                     download_name=progress_file_name(slug, current_user.username, at))
