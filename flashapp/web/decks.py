"""Deck downloads: any deck as an Anki package."""

from __future__ import annotations

import io

from flask import Blueprint, Response, send_file
from flask_login import login_required

from ..decks import export_deck
from .helpers import session, user_id

bp = Blueprint("decks", __name__)


@bp.route("/decks/<slug>.apkg")
@login_required
def export(slug: str) -> Response:
    """Download the deck as an .apkg file that Anki imports."""
    buffer = io.BytesIO()
    export_deck(session(), slug=slug, out=buffer, visible_to=user_id())
    buffer.seek(0)
    return send_file(buffer, mimetype="application/octet-stream", as_attachment=True, download_name=f"{slug}.apkg")
