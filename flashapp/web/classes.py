"""The student's side of classes: joining with a code, and their own account and data."""

from __future__ import annotations

import csv
import io
import zipfile

from flask import Blueprint, Response, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required
from werkzeug.wrappers import Response as BaseResponse

from ..classroom import join_class, students_classrooms
from ..errors import DomainError
from ..history import card_states, review_history
from .auth import show_beside_field
from .forms import JoinForm
from .helpers import required, session, user_id

bp = Blueprint("classes", __name__)


@bp.route("/join", methods=["GET", "POST"])
def join() -> BaseResponse | tuple[str, int]:
    """Join a class with its code (new students are sent to sign up with the code filled in)."""
    code = request.args.get("code", "")
    if not current_user.is_authenticated:
        return redirect(url_for("auth.register", code=code))
    form = JoinForm(code=code)
    if form.validate_on_submit():
        try:
            classroom = join_class(session(), user_id=user_id(), code=required(form.code.data))
        except DomainError as error:
            show_beside_field(form, error, "code")
        else:
            flash(f"You are in {classroom.name}.", "success")
            return redirect(url_for("study.home"))
    return render_template("join.html", form=form,
                           classrooms=students_classrooms(session(), user_id())), 400 if form.errors else 200


@bp.route("/account")
@login_required
def account() -> str:
    """Your account: classes, password, and all your data to download."""
    return render_template("account.html", classrooms=students_classrooms(session(), user_id()))


def _csv(rows: list[list[object]]) -> str:
    out = io.StringIO()
    csv.writer(out).writerows(rows)
    return out.getvalue()


@bp.route("/account/data.zip")
@login_required
def data() -> Response:
    """Everything the app keeps about you, as CSV files in one zip."""
    user = current_user
    account: list[list[object]] = [["username", "role", "time_zone", "created_at_utc"],
               [user.username, user.role, user.time_zone, user.created_at.isoformat()]]
    classes: list[list[object]] = [["class", "teacher"]]
    classes += [[c.name, c.teacher.username] for c in students_classrooms(session(), user.id)]
    reviews: list[list[object]] = [["reviewed_at_utc", "deck", "card_key", "question", "rating", "state_before",
                                    "due_utc", "duration_ms"]]
    for row in review_history(session(), user_id=user.id):
        r = row.review
        reviews.append([r.reviewed_at.isoformat(), row.deck_slug, row.card_key, row.question, int(r.rating),
                        int(r.state_before), r.due.isoformat(), "" if r.duration_ms is None else r.duration_ms])
    states: list[list[object]] = [["deck", "card_key", "question", "state", "step", "stability", "difficulty",
                                   "due_utc", "last_review_utc"]]
    for state, key, question, slug in card_states(session(), user_id=user.id):
        states.append([slug, key, question, int(state.state), "" if state.step is None else state.step,
                       state.stability, state.difficulty, state.due.isoformat(),
                       state.last_review.isoformat() if state.last_review else ""])
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, rows in (("account", account), ("classes", classes), ("reviews", reviews),
                           ("card_states", states)):
            archive.writestr(f"{name}.csv", _csv(rows))
    return Response(buffer.getvalue(), mimetype="application/zip",
                    headers={"Content-Disposition": f'attachment; filename="flashapp-{user.username}-data.zip"'})
