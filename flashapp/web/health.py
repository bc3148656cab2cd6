"""Health check for monitors and load balancers: a real round trip to the database, and named checks.

The body is JSON: `status` ("ok", "waiting" or "failing") and `checks`, one line per check, each
"ok" or "<state>: <what is wrong>". Any failing check makes the answer a 503; waiting writes
leave it a 200, since the server still answers and saves, only slowly.
"""

from __future__ import annotations

from flask import Blueprint, Response, current_app, jsonify
from sqlalchemy.exc import SQLAlchemyError

from .. import db
from ..database import database_status, write_gate
from .helpers import now, session

bp = Blueprint("health", __name__)

SEVERITY = {"ok": 0, "waiting": 1, "failing": 2}


def _database() -> str:
    try:
        return database_status(session())
    except SQLAlchemyError as error:
        session().rollback()
        return f"failing: the database does not answer ({type(error).__name__})"


def _integrity() -> str:
    # SQLite's quick check, run at start and again at most every ten minutes
    # (`integrity.IntegrityWatch`), not on every request.
    try:
        integrity = current_app.extensions["flashapp.integrity"].current(session(), now=now())
    except SQLAlchemyError as error:
        session().rollback()
        return f"failing: the file could not be checked ({type(error).__name__})"
    return "ok" if integrity.ok else f"failing: {integrity.summary()}"


@bp.route("/healthz")
def healthz() -> tuple[Response, int]:
    """200 while everything answers (writes may be waiting), 503 when any check fails."""
    # Each check is a line of its own: "ok", or "waiting: ..." / "failing: ..." saying what is wrong.
    checks = {"database": _database(), "writes": str(write_gate(db.engine).health()), "integrity": _integrity()}
    status = max((check.partition(":")[0] for check in checks.values()), key=SEVERITY.__getitem__)
    return jsonify(status=status, checks=checks), 503 if status == "failing" else 200
