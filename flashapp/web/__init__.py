"""HTTP only: blueprints parse requests, call the domain modules and render the result."""

from __future__ import annotations

import hmac
from contextlib import contextmanager
from datetime import datetime, timezone

from flask import Flask, g, render_template
from flask_login import LoginManager
from flask_wtf.csrf import CSRFError

from .. import db
from ..database import may_write
from ..models import User

login_manager = LoginManager()
login_manager.login_view = "auth.login"
login_manager.login_message = "Log in to continue."
login_manager.login_message_category = "info"

CONTENT_SECURITY_POLICY = "default-src 'self'; object-src 'none'; frame-ancestors 'none'; form-action 'self'"


@login_manager.user_loader
def load_user(session_id: str) -> User | None:
    """The user of a login session, unless that user has since ended all their sessions."""
    user_id, _, token = session_id.partition(":")
    try:
        user = db.session.get(User, int(user_id))
    except ValueError:
        return None
    if user is None or not token or not hmac.compare_digest(user.session_token, token):
        return None
    return user


@contextmanager
def writing():
    """A transaction that may write, for the part of a request that changes data.

    Ends the request's read transaction first, so the write lock (on SQLite: BEGIN
    IMMEDIATE, taken in turn with other writers) is held only for this block. Commits at
    the end and rolls back on an exception.
    """
    db.session.commit()
    token = may_write.set(True)
    try:
        yield
        db.session.commit()
    except BaseException:
        db.session.rollback()
        raise
    finally:
        may_write.reset(token)


def now() -> datetime:
    """The request's clock (the one place views read the time)."""
    return datetime.now(timezone.utc)


def when(value: datetime, at: datetime) -> str:
    """A due time in words, in the user's own time zone: 'in 8 minutes (14:32)', 'tomorrow at 04:00'."""
    from flask_login import current_user

    from ..scheduling import zone

    tz = zone(current_user.time_zone if current_user.is_authenticated else "UTC")
    local, today = value.astimezone(tz), at.astimezone(tz)
    clock = local.strftime("%H:%M")
    seconds = (value - at).total_seconds()
    if seconds <= 60:
        return "now"
    if seconds < 3600:
        minutes = round(seconds / 60)
        return f"in {minutes} minute{'s' if minutes != 1 else ''} ({clock})"
    days = (local.date() - today.date()).days
    if days == 0:
        return f"today at {clock}"
    if days == 1:
        return f"tomorrow at {clock}"
    return f"on {local.strftime('%a %d %b')} at {clock}"


def percent(share: float | None) -> str:
    """A share from 0 to 1 as a whole percentage; a dash when there is none."""
    return "–" if share is None else f"{round(100 * share)}%"


def init_app(app: Flask) -> None:
    # First of all request hooks, before anything opens a transaction.
    @app.before_request
    def _read_only_by_default():
        # A request reads in a plain transaction, which never waits for a writer; the parts
        # that write say so with `writing()`, which takes the write lock only for them.
        g.may_write_token = may_write.set(False)

    @app.teardown_request
    def _restore_may_write(_error):
        token = g.pop("may_write_token", None)
        if token is not None:
            may_write.reset(token)

    login_manager.init_app(app)
    app.add_template_filter(when)
    app.add_template_filter(percent)

    from . import auth, classes, decks, health, history, study, teach

    for module in (auth, classes, decks, health, history, study, teach):
        app.register_blueprint(module.bp)

    @app.after_request
    def _security_headers(response):
        response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        return response

    @app.errorhandler(CSRFError)
    def _csrf_error(error):
        return render_template("error.html", title="Form expired",
                               message="This form has expired or was not sent by this site. "
                                       "Go back, reload the page and try again."), 400

    @app.errorhandler(403)
    def _forbidden(error):
        return render_template("error.html", title="Not yours",
                               message="You do not have access to this page."), 403

    @app.errorhandler(404)
    def _not_found(error):
        return render_template("error.html", title="Not found",
                               message="There is nothing at this address."), 404

    @app.errorhandler(413)
    def _too_large(error):
        return render_template("error.html", title="Too large",
                               message="That upload is larger than this server accepts."), 413
