"""Error pages and the security headers every response carries."""

from __future__ import annotations

from flask import Flask, Response, render_template
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

from ..errors import Conflict, DomainError, Forbidden, Invalid, NotFound, TooManyAttempts

CONTENT_SECURITY_POLICY = "default-src 'self'; object-src 'none'; frame-ancestors 'none'; form-action 'self'"

# A domain error's status, in one place.
STATUS = ((NotFound, 404, "Not found"), (Forbidden, 403, "Not yours"), (Conflict, 409, "Already there"),
          (TooManyAttempts, 429, "Too many tries"), (Invalid, 400, "Not accepted"))


def status_of(error: DomainError) -> tuple[int, str]:
    """The HTTP status and page title for a domain error."""
    for kind, status, title in STATUS:
        if isinstance(error, kind):
            return status, title
    return 400, "Not accepted"


def _page(title: str, message: str, status: int) -> tuple[str, int]:
    return render_template("error.html", title=title, message=message), status


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

    @app.errorhandler(413)
    def _too_large(error: HTTPException) -> tuple[str, int]:
        return _page("Too large", "That upload is larger than this server accepts.", 413)
