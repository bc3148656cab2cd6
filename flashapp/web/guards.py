"""What every request passes through: form bodies only, ids a database can hold, addresses without
control characters, and no caching of anything but the static files."""

from __future__ import annotations

from typing import Any

from flask import Flask, Response, abort, request
from werkzeug.routing import IntegerConverter, Map

from ..errors import Invalid, NotFound
from ..text_input import has_control_characters

# The largest id a table holds: ids are INTEGER columns, 32 bits on PostgreSQL (which refuses a larger
# number compared with one, as SQLite refuses one past 2^63). A larger number in an address or a form
# is nothing this app could have made.
LARGEST_ID = 2**31 - 1

# The bodies a browser sends from a form. Anything else sent to a form's address (JSON, text, XML) is
# refused before any form reads it.
FORM_BODIES = {"application/x-www-form-urlencoded", "multipart/form-data"}
BODY_METHODS = {"POST", "PUT", "PATCH", "DELETE"}


class IdConverter(IntegerConverter):
    """`<int:...>` in every route: a whole number from 0 to LARGEST_ID, or no match (404)."""

    def __init__(self, map: Map, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("max", LARGEST_ID)
        super().__init__(map, *args, **kwargs)


def install_converters(app: Flask) -> None:
    """Make `<int:...>` bounded; call before any blueprint is registered."""
    app.url_map.converters["int"] = IdConverter


def init_app(app: Flask) -> None:
    install_converters(app)

    @app.before_request
    def _refuse_what_no_page_sends() -> None:
        if request.method in BODY_METHODS and request.mimetype and request.mimetype not in FORM_BODIES:
            abort(415)
        for value in (request.view_args or {}).values():
            if isinstance(value, str) and has_control_characters(value):
                raise NotFound("There is nothing at this address.")
        if any(has_control_characters(text) for key, values in request.args.lists() for text in (key, *values)):
            raise Invalid("This address holds a character that cannot be typed (such as a line break). "
                          "Check the link and try again.")

    @app.after_request
    def _no_store(response: Response) -> Response:
        # Personal pages and downloads must not stay in a shared computer's cache; static files may.
        if request.endpoint != "static":
            response.headers["Cache-Control"] = "no-store"
        return response
