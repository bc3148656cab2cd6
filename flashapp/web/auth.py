"""Accounts: sign up, log in, log out, change password."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import Blueprint, flash, g, redirect, render_template, request, url_for
from flask import session as cookie
from flask_login import current_user, login_required, login_user, logout_user
from flask_wtf import FlaskForm
from werkzeug.wrappers import Response

from .. import accounts
from ..errors import DomainError
from ..models import User
from .errors import status_of
from .forms import ChangePasswordForm, EmptyForm, LoginForm, RegisterForm
from .helpers import address, hash_method, now, required, session, throttle_limits, user_id

bp = Blueprint("auth", __name__)

Page = Response | tuple[str, int]


def _safe_next(target: str | None) -> str:
    # A backslash counts as a slash in browsers: "/\\host" would leave the site.
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target \
            and not urlsplit(target).netloc:
        return target
    return url_for("study.home")


def show_beside_field(form: FlaskForm, error: DomainError, default: str) -> int:
    """Put a domain error's message under the form field it is about; the status to answer with."""
    field = getattr(form, error.field if error.field and hasattr(form, error.field) else default)
    field.errors = [*field.errors, error.message]
    return status_of(error)[0]


def status_of_form(form: FlaskForm, status: int | None) -> int:
    """200 for a form shown, 400 when it was refused, or the domain error's own status."""
    if status is not None:
        return status
    return 400 if form.errors else 200


def start_session(user: User) -> None:
    """Log in with a fresh session: nothing from before (the CSRF token above all) carries over."""
    cookie.clear()
    g.pop("csrf_token", None)  # Flask-WTF's token for this request, made from the old session
    login_user(user, remember=False)


@bp.route("/register", methods=["GET", "POST"])
def register() -> Page:
    """Create an account; the first one on a new install is the teacher."""
    if current_user.is_authenticated:
        return redirect(url_for("study.home"))
    form = RegisterForm()
    status = None
    if request.method == "GET" and request.args.get("code"):
        form.class_code.data = request.args["code"]
    if form.validate_on_submit():
        try:
            password_hash = accounts.hash_password(required(form.password.data), method=hash_method())
            made = accounts.register(session(), username=required(form.username.data), password_hash=password_hash,
                                     time_zone=required(form.time_zone.data), class_code=form.class_code.data or None,
                                     address=address(), now=now(), limits=throttle_limits())
        except DomainError as error:
            status = show_beside_field(form, error, "username")
        else:
            start_session(made.user)
            role = "the teacher" if made.user.is_teacher else "a student"
            joined = f" You are in {made.classroom_name}." if made.classroom_name else ""
            flash(f"Welcome, {made.user.username}. You are {role} on this install.{joined}", "success")
            if made.user.is_teacher:
                flash("Next: create a class under Classes; students join it with the code it comes with.", "info")
            return redirect(url_for("study.home"))
    return render_template("register.html", form=form, first_account=not accounts.install_has_accounts(session())), \
        status_of_form(form, status)


@bp.route("/login", methods=["GET", "POST"])
def login() -> Page:
    """Log in with username and password."""
    if current_user.is_authenticated:
        return redirect(url_for("study.home"))
    form = LoginForm()
    status = None
    if form.validate_on_submit():
        try:
            user = accounts.log_in(session(), username=required(form.username.data),
                                   password=required(form.password.data), address=address(), now=now(),
                                   limits=throttle_limits())
        except DomainError as error:
            status = show_beside_field(form, error, "password")
        else:
            start_session(user)
            return redirect(_safe_next(request.args.get("next")))
    return render_template("login.html", form=form, first_visit=not accounts.install_has_accounts(session())), \
        status_of_form(form, status)


@bp.route("/logout", methods=["POST"])
@login_required
def logout() -> Response:
    """Log out, on this device and every other."""
    if EmptyForm().validate_on_submit():
        accounts.log_out(session(), user_id=user_id())
        logout_user()
        cookie.clear()
        flash("You are logged out, on this device and every other.", "info")
    return redirect(url_for("auth.login"))


@bp.route("/account/password", methods=["GET", "POST"])
@login_required
def password() -> Page:
    """Change your password; every other session of yours ends."""
    form = ChangePasswordForm()
    status = None
    if form.validate_on_submit():
        try:
            user = accounts.change_password(session(), user_id=user_id(), current=required(form.current.data),
                                            new=required(form.password.data), address=address(), now=now(),
                                            limits=throttle_limits(), method=hash_method())
        except DomainError as error:
            status = show_beside_field(form, error, "current")
        else:
            start_session(user)
            flash("Your password is changed. Other devices must log in again.", "success")
            return redirect(url_for("study.home"))
    return render_template("password.html", form=form), status_of_form(form, status)


# Pages a user who must choose a new password can still reach.
OPEN_WHILE_PASSWORD_MUST_CHANGE = {"auth.password", "auth.logout", "static", "health.healthz"}


@bp.before_app_request
def _require_new_password() -> Response | None:
    """After a teacher's reset, the temporary password only opens the change-password page."""
    if (current_user.is_authenticated and current_user.must_change_password
            and request.endpoint not in OPEN_WHILE_PASSWORD_MUST_CHANGE):
        flash("Choose a new password to continue: the one you logged in with was temporary.", "info")
        return redirect(url_for("auth.password"))
    return None
