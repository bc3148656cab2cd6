"""Error pages and the security headers every response carries."""

from __future__ import annotations

import secrets
from types import TracebackType

from flask import Flask, Response, current_app, g, render_template, request
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException, InternalServerError

from ..errors import Busy, Conflict, DomainError, Forbidden, Invalid, NotFound, NotSaved, TooManyAttempts

CONTENT_SECURITY_POLICY = "default-src 'self'; object-src 'none'; frame-ancestors 'none'; form-action 'self'"

# A domain error's status, in one place.
STATUS = ((NotFound, 404, "Not found"), (Forbidden, 403, "Not yours"), (Conflict, 409, "Already there"),
          (TooManyAttempts, 429, "Too many tries"), (Invalid, 400, "Not accepted"))
# Seconds a browser or script is told to wait before trying a write again.
RETRY_AFTER_SECONDS = 5


def status_of(error: DomainError) -> tuple[int, str]:
    """The HTTP status and page title for a domain error."""
    for kind, status, title in STATUS:
        if isinstance(error, kind):
            return status, title
    return 400, "Not accepted"


def _page(title: str, message: str, status: int) -> tuple[str, int]:
    return render_template("error.html", title=title, message=message), status


class FlashApp(Flask):
    """The app: Flask, except that an unexpected error is logged under an id its error page shows."""

    def log_exception(self, exc_info: tuple[type, BaseException, TracebackType] | tuple[None, None, None]) -> None:
        """Log the error and its traceback as "Error <id> on METHOD /path", keeping the id for the page."""
        g.error_id = secrets.token_hex(4)
        self.logger.error("Error %s on %s %s", g.error_id, request.method, request.path, exc_info=exc_info)


# When even the error page cannot be drawn (its layout reads the user from the database), this is sent.
BARE_ERROR_PAGE = ("<!doctype html><html lang=\"en\"><meta charset=\"utf-8\"><title>Something went wrong</title>"
                   "<h1>Something went wrong</h1><p>The server could not finish this. Go back and try again; "
                   "if it keeps happening, tell your teacher the error id.</p>"
                   "<p>The error id is <code>{error_id}</code>.</p></html>")


def _server_error(error: InternalServerError) -> tuple[str, int]:
    """The app's own page for an unexpected error: no details, only the id the log has them under."""
    from .. import db

    error_id = g.get("error_id")
    if error_id is None:  # a 500 raised on purpose (abort(500)) was not logged as an exception
        error_id = g.error_id = secrets.token_hex(4)
        current_app.logger.error("Error %s on %s %s: %s", error_id, request.method, request.path, error)
    try:
        db.session.rollback()  # the failed request may have left its transaction unusable
        return render_template("error.html", title="Something went wrong", error_id=error_id,
                               message="The server could not finish this. Go back and try again; if it "
                                       "keeps happening, tell your teacher the error id below."), 500
    except Exception:  # noqa: BLE001 - the page must go out whatever else is broken; the log has the cause
        return BARE_ERROR_PAGE.format(error_id=error_id), 500


def init_app(app: Flask) -> None:
    @app.after_request
    def _security_headers(response: Response) -> Response:
        response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        return response

    @app.errorhandler(DomainError)
    def _domain_error(error: DomainError) -> tuple[str, int]:
        status, title = status_of(error)
        return _page(title, error.message, status)

    @app.errorhandler(NotSaved)
    def _not_saved(error: NotSaved) -> tuple[str, int, dict[str, str]]:
        # The student sees what to do; the log says what happened, for whoever runs the server.
        app.logger.warning("Not saved (%s %s): %s", request.method, request.path, error.cause)
        title = "Busy, try again" if isinstance(error, Busy) else "Not saved"
        return (*_page(title, error.message, 503), {"Retry-After": str(RETRY_AFTER_SECONDS)})

    @app.errorhandler(CSRFError)
    def _csrf_error(error: CSRFError) -> tuple[str, int]:
        return _page("Form expired", "This form has expired or was not sent by this site. "
                                     "Go back, reload the page and try again.", 400)

    @app.errorhandler(400)
    def _bad_request(error: HTTPException) -> tuple[str, int]:
        return _page("Not accepted", "This request could not be read. Go back, reload the page and try again.", 400)

    @app.errorhandler(415)
    def _not_a_form(error: HTTPException) -> tuple[str, int]:
        return _page("Not a form", "Send this form from its page: this address only reads a form as a browser "
                                   "sends it. Nothing was changed.", 415)

    @app.errorhandler(403)
    def _forbidden(error: HTTPException) -> tuple[str, int]:
        return _page("Not yours", "You do not have access to this page.", 403)

    @app.errorhandler(404)
    def _not_found(error: HTTPException) -> tuple[str, int]:
        return _page("Not found", "There is nothing at this address.", 404)

    app.register_error_handler(InternalServerError, _server_error)

    @app.errorhandler(413)
    def _too_large(error: HTTPException) -> tuple[str, int]:
        return _page("Too large", "That upload is larger than this server accepts.", 413)
