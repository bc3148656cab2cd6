"""The student's side of classes: joining with a code, and their own account and data."""

from __future__ import annotations

from flask import Blueprint, Response, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required
from werkzeug.wrappers import Response as BaseResponse

from .. import exports
from ..classroom import join_class, students_classrooms
from ..errors import DomainError
from .auth import show_beside_field, status_of_form
from .forms import JoinForm
from .helpers import address, download, now, required, session, throttle_limits, user_id

bp = Blueprint("classes", __name__)


@bp.route("/join", methods=["GET", "POST"])
def join() -> BaseResponse | tuple[str, int]:
    """Join a class with its code (new students are sent to sign up with the code filled in)."""
    code = request.args.get("code", "")
    if not current_user.is_authenticated:
        return redirect(url_for("auth.register", code=code))
    form = JoinForm(code=code)
    status = None
    if form.validate_on_submit():
        try:
            classroom = join_class(session(), user_id=user_id(), code=required(form.code.data), address=address(),
                                   now=now(), limits=throttle_limits())
        except DomainError as error:
            status = show_beside_field(form, error, "code")
        else:
            flash(f"You are in {classroom.name}.", "success")
            return redirect(url_for("study.home"))
    return render_template("join.html", form=form,
                           classrooms=students_classrooms(session(), user_id())), status_of_form(form, status)


@bp.route("/account")
@login_required
def account() -> str:
    """Your account: classes, password, and all your data to download."""
    return render_template("account.html", classrooms=students_classrooms(session(), user_id()))


@bp.route("/account/data.zip")
@login_required
def data() -> Response:
    """Everything the app keeps about you, as CSV files in one zip."""
    return download(exports.personal_data_zip(session(), user_id=user_id(), now=now()),
                    filename=f"flashapp-{current_user.username}-data.zip", mimetype="application/zip")
