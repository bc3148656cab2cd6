"""Deck downloads: any deck as an Anki package."""

from __future__ import annotations

import io

from flask import Blueprint, abort, send_file
from flask_login import login_required
from sqlalchemy import select

from .. import db
from ..anki_export import export_anki_package
from ..models import Deck

bp = Blueprint("decks", __name__)


@bp.route("/decks/<slug>.apkg")
@login_required
def export(slug: str):
    """Download the deck as an .apkg file that Anki imports."""
    deck = db.session.scalar(select(Deck).where(Deck.slug == slug))
    if deck is None:
        abort(404)
    buffer = io.BytesIO()
    export_anki_package(db.session, deck_id=deck.id, out=buffer)
    buffer.seek(0)
    return send_file(buffer, mimetype="application/octet-stream", as_attachment=True,
                     download_name=f"{deck.slug}.apkg")
