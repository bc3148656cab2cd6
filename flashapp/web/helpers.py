"""What every blueprint shares: the request's session, clock and scheduler, filters, CSV responses, roles."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from functools import wraps
from typing import Any, TypeVar, cast

from flask import (
    Flask,
    Request,
    Response,
    abort,
    current_app,
    g,
    render_template,
    request,
    stream_with_context,
    url_for,
)
from flask import session as cookie
from flask_login import current_user, login_required
from flask_sqlalchemy.pagination import Pagination
from flask_wtf.csrf import generate_csrf
from fsrs import Scheduler
from markupsafe import Markup, escape
from sqlalchemy import Select
from sqlalchemy.orm import Session
from werkzeug.local import LocalProxy

from .. import db
from ..database import may_write
from ..errors import Invalid
from ..network import Listening
from ..personal import Learner, student_scheduler
from ..scheduling import zone
from ..showings import ShowingTokens
from ..study import StudySettings
from ..throttling import Limits
from .forms import EmptyForm

F = TypeVar("F", bound=Callable[..., Any])
T = TypeVar("T")


def this_app() -> Flask:
    """The app handling the request, itself: each attribute read through the `current_app` proxy costs
    more than a microsecond (a failed look-up on the proxy, then the context variable), this once."""
    return cast("LocalProxy[Flask]", current_app)._get_current_object()


def this_request() -> Request:
    """The request itself, read once rather than through the `request` proxy at every attribute (see `this_app`)."""
    return cast("LocalProxy[Request]", request)._get_current_object()


def session() -> Session:
    """The request's database session (a plain Session, as the domain functions expect)."""
    return db.session()


def now() -> datetime:
    """The request's clock (the one place views read the time)."""
    return datetime.now(timezone.utc)


def scheduler() -> Scheduler:
    """The install's FSRS scheduler."""
    return cast(Scheduler, this_app().extensions["flashapp.scheduler"])


def learner() -> Learner:
    """The logged-in user, with what their own scheduling needs (read with them at the start of the request)."""
    return cast(Learner, current_user._get_current_object())


def own_scheduler(user: Learner | None = None) -> Scheduler:
    """The logged-in student's scheduler: their own parameters and desired retention, loaded with them.

    `user` is the logged-in user when the caller has it at hand (`learner()`).
    """
    return student_scheduler(scheduler(), learner() if user is None else user)


def showing_tokens() -> ShowingTokens:
    """The install's signer of study showings."""
    return cast(ShowingTokens, this_app().extensions["flashapp.showings"])


def study_settings() -> StudySettings:
    """The install's study rules, from its configuration."""
    config = this_app().config
    return StudySettings(new_cards_per_day=config["NEW_CARDS_PER_DAY"], day_starts_at_hour=config["DAY_STARTS_AT_HOUR"])


def throttle_limits() -> Limits:
    """The install's limits on failed log-ins, join codes and current passwords, from its configuration."""
    config = current_app.config
    return Limits(per_name_and_address=config["THROTTLE_FAILURES_PER_NAME_AND_ADDRESS"],
                  per_address=config["THROTTLE_FAILURES_PER_ADDRESS"],
                  window=timedelta(seconds=config["THROTTLE_WINDOW_SECONDS"]))


def address() -> str:
    """The address the request came from, as throttling counts it."""
    return request.remote_addr or "unknown"


def hash_method() -> str:
    """The werkzeug method for new password hashes."""
    return cast(str, current_app.config["PASSWORD_HASH_METHOD"])


_LISTENING = "flashapp.listening"


def serving_at(app: Flask, listening: Listening) -> None:
    """Tell the app where its server listens (`flashapp serve` does, before it serves)."""
    app.extensions[_LISTENING] = listening


def listening() -> Listening | None:
    """Where this app's server listens; None when it was not started by `flashapp serve` (a WSGI host of
    one's own, the test client), and then where it can be reached is unknown."""
    return cast("Listening | None", current_app.extensions.get(_LISTENING))


def required(value: T | None) -> T:
    """A form value that validation guarantees is there (its InputRequired validator ran)."""
    if value is None:
        raise Invalid("A required value is missing.")
    return value


def user_id() -> int:
    """The logged-in user's id."""
    return learner().id


def plans_one_write(view: F) -> F:
    """Mark a view whose reads only plan one write that checks them again under the write lock (answering a card).

    Its request reads without a snapshot of its own (`database.read_snapshot`): on SQLite each read is a statement
    on its own, without the BEGIN and COMMIT of a read transaction. A page the view draws in the same request (the
    study page after a refused showing) reads the same way, so its counts and its card may come from moments a few
    microseconds apart, as two pages in a row do. Put it above `login_required`, so that it marks the view the app
    calls.
    """
    view.read_snapshot = False  # type: ignore[attr-defined]  # read by `web._read_only_by_default`
    return view


def teacher_required(view: F) -> F:
    """Log-in required, and teachers only (403 for students)."""

    @wraps(view)
    @login_required
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        if not current_user.is_teacher:
            abort(403)
        return view(*args, **kwargs)

    return cast(F, wrapped)


class InFlight:
    """How many requests the app is working on.

    Each request counts from its first request hook until its teardown, a download until its view hands
    over the stream. Between two chunks, a download gives way to the requests in flight for a moment
    (`give_way`): a teacher's export of a whole class then does its reading while no student's page is
    waiting for the same cores. On PostgreSQL, whose server process writes the export's lines on those
    cores, the class's study pages beside the revlog of 300 students went from 1.7-2.0 times their p95
    alone to 1.2-1.35 times, the export from 1.75 to 2.1 s.
    """

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self.requests = 0

    def started(self) -> None:
        """A request has come in."""
        with self._changed:
            self.requests += 1

    def ended(self) -> None:
        """A request is done, or has handed over its download's stream."""
        with self._changed:
            self.requests -= 1
            if not self.requests:
                self._changed.notify_all()

    def give_way(self, seconds: float) -> bool:
        """Wait, at most `seconds`, until no request is in flight; whether none is."""
        with self._changed:
            return self._changed.wait_for(lambda: not self.requests, timeout=seconds)


# The longest a download waits, between two chunks, for the other requests to be done: each chunk of the class
# revlog is one student's lines, so 300 students' export waits six seconds at the very most, on a server
# that never has a moment without a request.
GIVE_WAY_SECONDS = 0.02


def download(chunks: Iterable[str] | Iterable[bytes], *, filename: str, mimetype: str) -> Response:
    """A streamed attachment: the chunks are made while the response is sent, inside the request's context.

    Memory stays flat however large the file; the request's read transaction stays open until the end.
    """
    # The view's own reads are done: let go of the connection now, so that a body nobody reads holds
    # none; the chunks read in a transaction of their own.
    db.session.commit()
    # The request is done but for its stream, which gives way to the requests in flight (`InFlight`).
    in_flight: InFlight = this_app().extensions["flashapp.in_flight"]
    if g.pop("in_flight", False):
        in_flight.ended()
    # stream_with_context is typed for one kind of chunk at a time; text and bytes both stream alike.
    stream = cast("Iterator[str]", _reading(iter(chunks), in_flight))
    return Response(stream_with_context(stream), mimetype=mimetype,
                    headers={"Content-Disposition": f'attachment; filename="{filename}"'})


def _reading(chunks: Iterator[T], in_flight: InFlight) -> Iterator[T]:
    """The chunks, each made in a read-only transaction as the rest of a request reads, after giving way to the
    other requests in flight (`InFlight`).

    A streamed body is made after the view has returned, outside the request's own setting. Its
    read transaction ends with the last chunk rather than when the server closes the response.
    """
    while True:
        in_flight.give_way(GIVE_WAY_SECONDS)
        token = may_write.set(False)
        try:
            chunk = next(chunks)
        except StopIteration:
            db.session.commit()
            return
        finally:
            may_write.reset(token)
        yield chunk


# Signed CSRF tokens kept at most: one for each session that was shown a page lately.
_SIGNED_CSRF_TOKENS_KEPT = 4096


def csrf_token() -> str:
    """Flask-WTF's CSRF token for a page's forms (the `csrf_token()` of the templates), signed once per session.

    Flask-WTF signs the session's token afresh for every page, with the time of signing. The
    tokens never expire here (`WTF_CSRF_TIME_LIMIT` is None), so the session's token signed once
    passes the check as well as one signed now; signing took a fifth of drawing the study page.
    With a time limit set, every page signs its own, as Flask-WTF does.
    """
    flask_app = this_app()
    config = flask_app.config
    if config.get("WTF_CSRF_TIME_LIMIT") is not None:
        return cast(str, generate_csrf())
    field = config.get("WTF_CSRF_FIELD_NAME", "csrf_token")
    known = cast("dict[str, str]", flask_app.extensions["flashapp.signed_csrf_tokens"])
    raw = cookie.get(field)
    signed = known.get(raw) if isinstance(raw, str) else None
    if signed is None:
        signed = cast(str, generate_csrf())  # makes the session's token when it has none
        if len(known) >= _SIGNED_CSRF_TOKENS_KEPT:
            known.clear()
        known[cookie[field]] = signed
    return signed


class FixedUrls(dict[str | tuple[str, str], str]):
    """The addresses of links with no variable part under one mount point, each worked out on first use.

    Templates read a page's as `urls['study.home']` and a static file's as `urls['static', 'style.css']`.
    Every page's header carries a dozen: building each through the URL map on every request cost more
    than the rest of the header, and even a template's call of a function per link cost a sixth of
    drawing the study page, where a look-up in this mapping costs next to nothing.
    """

    def __missing__(self, key: str | tuple[str, str]) -> str:
        url = url_for(key) if isinstance(key, str) else url_for(key[0], filename=key[1])
        self[key] = url
        return url


# Mount points kept at most (the server or a proxy in front of it sets the mount point, not the visitor).
_MOUNT_POINTS_KEPT = 64


def fixed_urls() -> FixedUrls:
    """The fixed addresses (`FixedUrls`) under the request's mount point."""
    known = cast("dict[str, FixedUrls]", this_app().extensions["flashapp.fixed_urls"])
    mount_point = this_request().script_root
    urls = known.get(mount_point)
    if urls is None:
        if len(known) >= _MOUNT_POINTS_KEPT:
            known.clear()
        urls = known[mount_point] = FixedUrls()
    return urls


# Decks' addresses kept at most (a slug comes from a deck read from the database, so this bounds nothing real).
_DECK_URLS_KEPT = 4096


def deck_url(endpoint: str, slug: str) -> str:
    """`url_for` for one of a deck's study addresses, worked out once per mount point and deck.

    The study page names its answer and undo addresses, and every answer redirects to the page:
    three trips through the URL map per card otherwise.
    """
    known = cast("dict[tuple[str, str, str], str]", this_app().extensions["flashapp.deck_urls"])
    key = (this_request().script_root, endpoint, slug)
    url = known.get(key)
    if url is None:
        if len(known) >= _DECK_URLS_KEPT:
            known.clear()
        url = known[key] = url_for(endpoint, slug=slug)
    return url


def when(value: datetime, at: datetime) -> str:
    """A due time in words, in the user's own time zone: 'in 8 minutes (14:32)', 'tomorrow at 04:00'."""
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


def bar(share: float, label: str, tone: str = "accent") -> Markup:
    """A small horizontal bar drawn as SVG, for a share from 0 to 1.

    A function rather than a Jinja macro: a roster draws one per student, and a macro call
    costs several times the markup it writes.
    """
    width = 100 * max(0.0, min(1.0, share))
    return Markup(f'<svg class="bar bar-{escape(tone)}" viewBox="0 0 100 8" width="100" height="8" role="img" '
                  f'aria-label="{escape(label)}"><rect class="bar-track" x="0" y="0" width="100" height="8" rx="4">'
                  f'</rect><rect class="bar-fill" x="0" y="0" width="{width:.1f}" height="8" rx="4"></rect></svg>')


def percent(share: float | None) -> str:
    """A share from 0 to 1 as a whole percentage; a dash when there is none."""
    return "–" if share is None else f"{round(100 * share)}%"


LAST_PAGE_ASKED = 10**9


def paginate(query: Select[Any], *, page: int, per_page: int) -> Pagination:
    """One page of a domain query's results (Flask-SQLAlchemy's pagination); past the end, the last page."""
    # A page past the end shows the last one, so a huge number can be cut down to one the database can
    # offset by (an offset past 2^63 does not fit in its integers).
    page = min(max(1, page), LAST_PAGE_ASKED)
    pagination = db.paginate(query, page=page, per_page=per_page, error_out=False)
    if pagination.page > 1 and not pagination.items and pagination.pages:
        pagination = db.paginate(query, page=pagination.pages, per_page=per_page, error_out=False)
    return pagination


@dataclass(frozen=True)
class Question:
    """What a destructive action asks first, on its own page or in a dialog: the same words in both."""

    title: str
    message: str
    button: str


def confirm_page(question: Question, *, cancel: str) -> str:
    """A page that asks before a destructive action; its form posts back to the same address."""
    return render_template("teach/confirm.html", question=question, cancel=cancel, action_form=EmptyForm())
