"""The teacher's side: classes, join codes, assignments, the dashboard, student care, exports."""

from __future__ import annotations

import csv
import io
from functools import wraps
from urllib.parse import urlsplit

import segno
from flask import Blueprint, Response, abort, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required
from markupsafe import Markup
from sqlalchemy import select

from .. import db
from ..classroom import (
    assign_deck,
    create_classroom,
    regenerate_join_code,
    remove_student,
    teachers_classrooms,
    temporary_password,
    unassign_deck,
)
from ..accounts import hash_password, set_password
from ..history import review_history
from ..models import Card, Classroom, Deck, Enrollment, User
from ..network import is_loopback, lan_addresses
from ..scheduling import format_interval, zone
from ..stats import REVLOG_COLUMNS, class_deck_ids, class_revlog, class_roster, deck_progress, forgotten_cards
from . import now, writing
from .forms import AssignForm, ClassForm, EmptyForm
from .history import RATING_NAMES

bp = Blueprint("teach", __name__, url_prefix="/teach")

ROSTER_SORTS = {
    "name": lambda r: r.username.lower(),
    "introduced": lambda r: r.introduced_share,
    "reviews": lambda r: r.reviews_7d,
    "retention": lambda r: -1 if r.retention_30d is None else r.retention_30d,
    "due": lambda r: r.due_now,
    "active": lambda r: r.last_active.timestamp() if r.last_active else 0,
    "behind": lambda r: len(r.behind),
}


def teacher_required(view):
    """Log-in required, and teachers only (403 for students)."""

    @wraps(view)
    @login_required
    def wrapped(*args, **kwargs):
        if not current_user.is_teacher:
            abort(403)
        return view(*args, **kwargs)

    return wrapped


def _own_classroom(class_id: int) -> Classroom:
    """One of the current teacher's classes; another teacher's class is simply not found."""
    classroom = db.session.get(Classroom, class_id)
    if classroom is None or classroom.teacher_id != current_user.id:
        abort(404)
    return classroom


def _enrolled_student(classroom: Classroom, user_id: int) -> User:
    student = db.session.scalar(
        select(User).join(Enrollment, Enrollment.user_id == User.id)
        .where(Enrollment.classroom_id == classroom.id, User.id == user_id))
    if student is None:
        abort(404)
    return student


def _scheduler():
    return current_app.extensions["flashapp.scheduler"]


@bp.route("/", methods=["GET", "POST"])
@teacher_required
def classes():
    """The teacher's classes, and a form to start a new one."""
    form = ClassForm()
    if form.validate_on_submit():
        with writing():
            classroom = create_classroom(db.session, teacher=current_user, name=form.name.data)
        flash(f"Class “{classroom.name}” created. Students join with the code {classroom.join_code}.", "success")
        return redirect(url_for("teach.dashboard", class_id=classroom.id))
    status = 400 if form.errors else 200
    return render_template("teach/classes.html", classrooms=teachers_classrooms(db.session, current_user.id),
                           form=form), status


def _assign_form() -> AssignForm:
    form = AssignForm()
    form.deck_id.choices = [(deck.id, deck.title) for deck in db.session.scalars(select(Deck).order_by(Deck.title))]
    return form


@bp.route("/classes/<int:class_id>")
@teacher_required
def dashboard(class_id: int):
    """A class at a glance: who is keeping up, and which facts the class is forgetting."""
    classroom = _own_classroom(class_id)
    at = now()
    sort = request.args.get("sort", "behind")
    if sort not in ROSTER_SORTS:
        sort = "behind"
    descending = request.args.get("dir", "desc" if sort == "behind" else "asc") == "desc"
    roster = sorted(class_roster(db.session, classroom_id=classroom.id, now=at), key=ROSTER_SORTS["name"])
    roster.sort(key=ROSTER_SORTS[sort], reverse=descending)
    cards = forgotten_cards(db.session, _scheduler(), classroom_id=classroom.id, now=at, limit=15)
    decks = {deck.id: deck for deck in db.session.scalars(
        select(Deck).where(Deck.id.in_(class_deck_ids(db.session, classroom.id))))}
    return render_template("teach/dashboard.html", classroom=classroom, roster=roster, cards=cards, sort=sort,
                           descending=descending, decks=decks, assign_form=_assign_form(),
                           action_form=EmptyForm(), now=at, tz=zone(current_user.time_zone))


@bp.route("/classes/<int:class_id>/code", methods=["POST"])
@teacher_required
def new_code(class_id: int):
    """Replace the class's join code; the old code stops working."""
    classroom = _own_classroom(class_id)
    if EmptyForm().validate_on_submit():
        with writing():
            code = regenerate_join_code(db.session, _own_classroom(class_id))
        flash(f"New join code: {code}. The old code no longer works.", "success")
    return redirect(url_for("teach.dashboard", class_id=class_id), code=303)


@bp.route("/classes/<int:class_id>/assignments", methods=["POST"])
@teacher_required
def assign(class_id: int):
    """Assign a deck to the class, optionally with a target date."""
    classroom = _own_classroom(class_id)
    form = _assign_form()
    if form.validate_on_submit():
        with writing():
            assign_deck(db.session, classroom=_own_classroom(class_id), deck_id=form.deck_id.data,
                        target_date=form.target_date.data)
        flash("Deck assigned.", "success")
    else:
        problems = "; ".join(e for errors in form.errors.values() for e in errors)
        flash(f"Nothing was assigned: {problems}", "error")
    return redirect(url_for("teach.dashboard", class_id=class_id), code=303)


@bp.route("/classes/<int:class_id>/assignments/<int:deck_id>/remove", methods=["POST"])
@teacher_required
def unassign(class_id: int, deck_id: int):
    """Stop assigning a deck to the class (nobody's progress is touched)."""
    classroom = _own_classroom(class_id)
    if EmptyForm().validate_on_submit():
        with writing():
            unassign_deck(db.session, classroom=_own_classroom(class_id), deck_id=deck_id)
        flash("Deck no longer assigned. Students keep their progress.", "info")
    return redirect(url_for("teach.dashboard", class_id=class_id), code=303)


def join_addresses() -> list[str]:
    """The addresses students should open: the one this browser used, unless only this machine can use it."""
    here = urlsplit(request.host_url)
    if not is_loopback(here.hostname or ""):
        return [request.host_url]
    port = f":{here.port}" if here.port else ""
    return [f"{here.scheme}://{address}{port}/" for address in lan_addresses()] or [request.host_url]


@bp.route("/classes/<int:class_id>/join")
@teacher_required
def join_poster(class_id: int):
    """A page to project: the address, the join code in large type, and a QR code."""
    classroom = _own_classroom(class_id)
    addresses = join_addresses()
    target = addresses[0].rstrip("/") + url_for("classes.join", code=classroom.join_code)
    svg = segno.make(target, error="m").svg_inline(scale=8, border=2, dark="#1f2733", light="#ffffff")
    local_only = is_loopback(current_app.config.get("SERVE_HOST") or "0.0.0.0")
    return render_template("teach/join_poster.html", classroom=classroom, addresses=addresses, target=target,
                           local_only=local_only,
                           qr=Markup(svg))


@bp.route("/classes/<int:class_id>/students/<int:user_id>")
@teacher_required
def student(class_id: int, user_id: int):
    """One student's progress and history, for the teachers of their classes."""
    classroom = _own_classroom(class_id)
    pupil = _enrolled_student(classroom, user_id)
    size = current_app.config["HISTORY_PAGE_SIZE"]
    page = max(1, request.args.get("page", 1, type=int))
    rows = review_history(db.session, user_id=pupil.id, limit=size + 1, offset=(page - 1) * size)
    progress = deck_progress(db.session, user_id=pupil.id, deck_ids=class_deck_ids(db.session, classroom.id),
                             now=now())
    return render_template("teach/student.html", classroom=classroom, pupil=pupil, progress=progress,
                           rows=rows[:size], page=page, has_more=len(rows) > size, ratings=RATING_NAMES,
                           format_interval=format_interval, tz=zone(current_user.time_zone),
                           action_form=EmptyForm())


@bp.route("/classes/<int:class_id>/students/<int:user_id>/password", methods=["POST"])
@teacher_required
def reset_student_password(class_id: int, user_id: int):
    """Give a student a temporary password, shown once; they choose a new one at their next log-in."""
    classroom = _own_classroom(class_id)
    pupil = _enrolled_student(classroom, user_id)
    if not EmptyForm().validate_on_submit():
        abort(400)
    temporary = temporary_password()
    password_hash = hash_password(temporary, method=current_app.config["PASSWORD_HASH_METHOD"])  # slow on purpose: outside the write transaction
    with writing():
        set_password(_enrolled_student(_own_classroom(class_id), user_id), password_hash=password_hash,
                     temporary=True)
    response = Response(render_template("teach/temporary_password.html", classroom=classroom, pupil=pupil,
                                        temporary=temporary))
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.route("/classes/<int:class_id>/students/<int:user_id>/remove", methods=["POST"])
@teacher_required
def remove(class_id: int, user_id: int):
    """Take a student out of the class; their account and history stay."""
    classroom = _own_classroom(class_id)
    pupil = _enrolled_student(classroom, user_id)
    if EmptyForm().validate_on_submit():
        with writing():
            remove_student(db.session, classroom=_own_classroom(class_id), user_id=user_id)
        flash(f"{pupil.username} is no longer in {classroom.name}. Their history is kept.", "info")
    return redirect(url_for("teach.dashboard", class_id=class_id), code=303)


@bp.route("/classes/<int:class_id>/cards/<int:card_id>")
@teacher_required
def card(class_id: int, card_id: int):
    """One card, the fact behind it, and how the class is doing on it."""
    classroom = _own_classroom(class_id)
    item = db.session.get(Card, card_id)
    if item is None or item.deck_id not in class_deck_ids(db.session, classroom.id):
        abort(404)
    rows = forgotten_cards(db.session, _scheduler(), classroom_id=classroom.id, now=now(), card_id=item.id)
    return render_template("teach/card.html", classroom=classroom, card=item, note=item.note,
                           stats=rows[0] if rows else None)


def _csv_response(header: list[str], rows, filename: str) -> Response:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(header)
    writer.writerows(rows)
    return Response(out.getvalue(), mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="{filename}"'})


@bp.route("/classes/<int:class_id>/progress.csv")
@teacher_required
def progress_csv(class_id: int):
    """The roster as CSV."""
    classroom = _own_classroom(class_id)
    roster = class_roster(db.session, classroom_id=classroom.id, now=now())
    rows = [(r.username, r.introduced, r.total, r.reviews_7d,
             "" if r.retention_30d is None else f"{r.retention_30d:.3f}", r.review_answers_30d, r.due_now,
             r.last_active.isoformat() if r.last_active else "", "; ".join(r.behind)) for r in roster]
    header = ["student", "cards_introduced", "cards_total", "reviews_7d", "retention_30d", "review_answers_30d",
              "due_now", "last_active_utc", "falling_behind"]
    return _csv_response(header, rows, f"class-{classroom.id}-progress.csv")


@bp.route("/classes/<int:class_id>/revlog.csv")
@teacher_required
def revlog_csv(class_id: int):
    """The class's review history in the FSRS optimiser's revlog layout."""
    classroom = _own_classroom(class_id)
    return _csv_response(REVLOG_COLUMNS, class_revlog(db.session, classroom_id=classroom.id),
                         f"class-{classroom.id}-revlog.csv")
