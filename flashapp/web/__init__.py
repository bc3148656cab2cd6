"""HTTP only: blueprints parse a request, call one domain function, and render what it returns."""

from __future__ import annotations

from flask import Flask, g, request
from flask_login import LoginManager
from sqlalchemy.exc import SQLAlchemyError

from .. import db
from ..accounts import SignedIn, session_user
from ..database import may_write, read_snapshot
from ..scheduling import format_interval
from . import errors, guards, helpers, static_files

login_manager = LoginManager()
login_manager.login_view = "auth.login"
login_manager.login_message = "Log in to continue."
login_manager.login_message_category = "info"


@login_manager.user_loader
def load_user(session_id: str) -> SignedIn | None:
    """The user of a login session, unless that user has since ended all their sessions."""
    return session_user(helpers.session(), session_id)


def init_app(app: Flask) -> None:
    """Register the request hooks, the error pages and every blueprint."""
    in_flight = app.extensions["flashapp.in_flight"] = helpers.InFlight()
    # First of all request hooks, before anything opens a transaction.
    @app.before_request
    def _read_only_by_default() -> None:
        # Counted in flight first (`helpers.InFlight`), so that every request counted is counted out.
        in_flight.started()
        g.in_flight = True
        # A request reads in a plain transaction, which never waits for a writer; use cases that
        # write do so through `write_transaction`, which takes the write lock only for them.
        g.may_write_token = may_write.set(False)
        view = app.view_functions.get(request.endpoint) if request.endpoint else None
        g.read_snapshot_token = read_snapshot.set(getattr(view, "read_snapshot", True))

    @app.teardown_request
    def _restore_may_write(_error: BaseException | None) -> None:
        token = g.pop("may_write_token", None)
        if token is not None:
            may_write.reset(token)
        snapshot = g.pop("read_snapshot_token", None)
        if snapshot is not None:
            read_snapshot.reset(snapshot)
        if g.pop("in_flight", False):
            in_flight.ended()

    @app.teardown_request
    def _end_reading_with_commit(error: BaseException | None) -> None:
        # A request's reading transaction ends with COMMIT, not with the ROLLBACK of closing the session:
        # the two are the same for a transaction that wrote nothing, but on PostgreSQL a rollback makes
        # the driver forget every statement it had prepared on the connection, so that each request's
        # statements were planned afresh (the study page's counts took 1.5 ms to plan, twice as long as
        # to run). A request that failed, or left changes unwritten, is rolled back as before.
        if error is not None or not db.session.registry.has():
            return
        reading = db.session()
        if not reading.in_transaction() or reading.new or reading.dirty or reading.deleted:
            return
        try:
            reading.commit()
        except SQLAlchemyError:
            reading.rollback()

    guards.init_app(app)
    login_manager.init_app(app)
    app.extensions["flashapp.fixed_urls"] = {}
    app.extensions["flashapp.deck_urls"] = {}
    app.extensions["flashapp.signed_csrf_tokens"] = {}
    app.add_template_global(helpers.deck_url)
    app.add_template_filter(helpers.when)
    app.add_template_filter(helpers.percent)
    app.add_template_filter(format_interval, "interval")
    app.add_template_global(helpers.bar)
    errors.init_app(app)
    static_files.init_app(app)

    @app.context_processor
    def _page_values() -> dict[str, object]:
        # Registered after Flask-WTF's, so this `csrf_token` (signed once per session) is the templates'.
        return {"day_starts_at": f"{helpers.study_settings().day_starts_at_hour:02d}:00",
                "csrf_token": helpers.csrf_token, "urls": helpers.fixed_urls()}

    from . import auth, authoring, classes, decks, health, history, stats, study, teach

    for module in (auth, classes, decks, health, history, stats, study, teach, authoring):
        app.register_blueprint(module.bp)
