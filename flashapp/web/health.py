"""Health check for monitors and load balancers."""

from __future__ import annotations

from flask import Blueprint, Response, current_app, jsonify
from sqlalchemy.exc import SQLAlchemyError

from ..database import database_status
from .helpers import now, session

bp = Blueprint("health", __name__)


@bp.route("/healthz")
def healthz() -> Response | tuple[Response, int]:
    """200 with the database's status, or 503 when it does not answer or its file is damaged.

    The file's integrity is SQLite's quick check, run at start and again at most every ten
    minutes (`integrity.IntegrityWatch`), not on every request.
    """
    try:
        status = database_status(session())
        integrity = current_app.extensions["flashapp.integrity"].current(session(), now=now())
    except SQLAlchemyError as error:
        session().rollback()
        return jsonify(status="error", database=f"unavailable: {type(error).__name__}"), 503
    if not integrity.ok:
        return jsonify(status="error", database=status, integrity=integrity.summary()), 503
    return jsonify(status="ok", database=status, integrity=integrity.summary())
