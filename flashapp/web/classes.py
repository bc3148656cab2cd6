"""The student's side of classes: joining with a code, and their own account and data."""

from __future__ import annotations

from flask import Blueprint, Response, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required
from werkzeug.wrappers import Response as BaseResponse

from .. import exports
from ..classroom import join_class, students_classrooms
from ..errors import DomainError
from ..personal import MIN_REVIEWS, desired_retention_of, latest_fit, parsed_parameters, reschedule_cards
from ..retention import cards_studied, chart_points, retention_costs, set_desired_retention
from .auth import show_beside_field, status_of_form
from .forms import EmptyForm, JoinForm, RetentionForm
from .helpers import (
    Question,
    address,
    confirm_page,
    download,
    learner,
    now,
    required,
    scheduler,
    session,
    study_settings,
    throttle_limits,
    user_id,
)

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


@bp.route("/account", methods=["GET", "POST"])
@login_required
def account() -> BaseResponse | tuple[str, int]:
    """Your account: classes, FSRS parameters and desired retention, password, and all your data to download."""
    user = learner()
    form = RetentionForm(desired_retention="" if user.desired_retention is None else f"{user.desired_retention:.2f}")
    if form.validate_on_submit():
        chosen = form.desired_retention.data
        try:
            set_desired_retention(session(), user_id=user_id(), desired_retention=float(chosen) if chosen else None)
        except DomainError as error:
            show_beside_field(form, error, "desired_retention")
        else:
            flash("Desired retention saved; it applies from your next answer.", "success")
            return redirect(url_for("classes.account"))
    parameters = parsed_parameters(user.own_parameters)
    costs = retention_costs(parameters, deck_size=cards_studied(session(), user_id=user_id()),
                            new_per_day=study_settings().new_cards_per_day)
    in_use = desired_retention_of(user) or scheduler().desired_retention
    page = render_template("account.html", classrooms=students_classrooms(session(), user_id()),
                           personal=latest_fit(session(), user_id()), parameters=parameters, form=form, costs=costs,
                           points=chart_points(costs), desired_retention=in_use, min_reviews=MIN_REVIEWS,
                           class_default=user.desired_retention is None and user.class_retention is not None)
    return page, 400 if form.errors else 200


RESCHEDULING = Question(
    "Reschedule your cards?",
    "Each card you have learned gets the due date your memory model and desired retention give it now, counted "
    "from your last answer: some cards come back sooner, some later. Your answers stay as they are.",
    "Reschedule my cards")


@bp.route("/account/reschedule", methods=["GET", "POST"])
@login_required
def reschedule() -> BaseResponse | str:
    """Work out the student's due dates again under their parameters and desired retention (after asking)."""
    cancel = url_for("classes.account") + "#memory"
    if request.method == "GET":
        return confirm_page(RESCHEDULING, cancel=cancel)
    if EmptyForm().validate_on_submit():
        done = reschedule_cards(session(), scheduler(), user_id=user_id())
        moved = done.sooner + done.later
        flash(f"Rescheduled {moved} of your {done.review_cards} learned cards: {done.sooner} sooner, "
              f"{done.later} later." if moved else
              f"All {done.review_cards} learned cards already fall due where your memory model puts them.",
              "success")
    return redirect(cancel)


@bp.route("/account/data.zip")
@login_required
def data() -> Response:
    """Everything the app keeps about you, as CSV files in one zip."""
    return download(exports.personal_data_zip(session(), user_id=user_id(), now=now()),
                    filename=f"flashapp-{current_user.username}-data.zip", mimetype="application/zip")
