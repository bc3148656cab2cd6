"""Health check for monitors and load balancers."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify
from sqlalchemy.exc import SQLAlchemyError

from ..database import database_status
from .helpers import session

bp = Blueprint("health", __name__)


@bp.route("/healthz")
def healthz() -> Response | tuple[Response, int]:
    """200 with the database's status, or 503 when the database does not answer."""
    try:
        status = database_status(session())
    except SQLAlchemyError as error:
        session().rollback()
        return jsonify(status="error", database=f"unavailable: {type(error).__name__}"), 503
    return jsonify(status="ok", database=status)
