"""Accounts: register, log in, log out."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required, login_user, logout_user

from .. import db
from ..accounts import (
    UsernameTaken,
    end_all_sessions,
    find_user,
    hash_password,
    login_throttled,
    password_matches,
    record_failed_login,
    register_user,
    set_password,
)
from ..classroom import find_by_join_code, join_classroom
from . import now, writing
from .forms import ChangePasswordForm, EmptyForm, LoginForm, RegisterForm

bp = Blueprint("auth", __name__)


def _safe_next(target: str | None) -> str:
    if target and target.startswith("/") and not target.startswith("//") and not urlsplit(target).netloc:
        return target
    return url_for("study.home")


@bp.route("/register", methods=["GET", "POST"])
def register():
    """Create an account; the first one on a new install is the teacher."""
    if current_user.is_authenticated:
        return redirect(url_for("study.home"))
    form = RegisterForm()
    if request.method == "GET" and request.args.get("code"):
        form.class_code.data = request.args["code"]
    if form.validate_on_submit():
        # Hash first: the slow hash must not hold the database's write lock.
        password_hash = hash_password(form.password.data, method=current_app.config["PASSWORD_HASH_METHOD"])
        classroom = None
        if form.class_code.data:
            classroom = find_by_join_code(db.session, form.class_code.data)
            if classroom is None:
                form.class_code.errors.append("No class has that code. Check it with your teacher, "
                                              "or leave it empty and join later.")
        if not form.class_code.errors:
            try:
                with writing():
                    user = register_user(db.session, username=form.username.data, password_hash=password_hash,
                                         time_zone=form.time_zone.data)
                    if classroom is not None and not user.is_teacher:
                        join_classroom(db.session, user=user, code=classroom.join_code)
            except UsernameTaken:
                form.username.errors.append("That username is taken; choose another.")
            else:
                login_user(user)
                role = "the teacher" if user.is_teacher else "a student"
                joined = f" You are in {classroom.name}." if classroom is not None and not user.is_teacher else ""
                flash(f"Welcome, {user.username}. You are {role} on this install.{joined}", "success")
                return redirect(url_for("study.home"))
    status = 400 if form.errors else 200
    return render_template("register.html", form=form), status


@bp.route("/login", methods=["GET", "POST"])
def login():
    """Log in with username and password."""
    if current_user.is_authenticated:
        return redirect(url_for("study.home"))
    form = LoginForm()
    if form.validate_on_submit():
        at, address = now(), request.remote_addr or "unknown"
        # Read, then let go of the database before the slow password check; write only on failure.
        throttled = login_throttled(db.session, username=form.username.data, address=address, now=at)
        user = find_user(db.session, form.username.data)
        stored_hash = user.password_hash if user else None
        db.session.commit()
        if throttled:
            form.password.errors.append("Too many failed log-ins. Wait a minute, then try again.")
            return render_template("login.html", form=form), 429
        if not password_matches(stored_hash, form.password.data):
            user = None
        if user is None:
            with writing():
                record_failed_login(db.session, username=form.username.data, address=address, now=at)
            form.password.errors.append("That username and password do not match an account.")
        else:
            login_user(user, remember=False)
            return redirect(_safe_next(request.args.get("next")))
    status = 400 if form.errors else 200
    return render_template("login.html", form=form), status


@bp.route("/logout", methods=["POST"])
@login_required
def logout():
    """Log out."""
    form = EmptyForm()
    if form.validate_on_submit():
        with writing():
            end_all_sessions(current_user)
        logout_user()
        flash("You are logged out, on this device and every other.", "info")
    return redirect(url_for("auth.login"))


@bp.route("/account/password", methods=["GET", "POST"])
@login_required
def password():
    """Change your password; every other session of yours ends."""
    form = ChangePasswordForm()
    if form.validate_on_submit():
        if not password_matches(current_user.password_hash, form.current.data):
            form.current.errors.append("That is not your current password.")
        else:
            # Hash outside the write transaction: it is slow on purpose.
            new_hash = hash_password(form.password.data, method=current_app.config["PASSWORD_HASH_METHOD"])
            with writing():
                set_password(current_user, password_hash=new_hash)
            login_user(current_user._get_current_object())
            flash("Your password is changed. Other devices must log in again.", "success")
            return redirect(url_for("study.home"))
    status = 400 if form.errors else 200
    return render_template("password.html", form=form), status


# Pages a user who must choose a new password can still reach.
OPEN_WHILE_PASSWORD_MUST_CHANGE = {"auth.password", "auth.logout", "static", "health.healthz"}


@bp.before_app_request
def _require_new_password():
    """After a teacher's reset, the temporary password only opens the change-password page."""
    if (current_user.is_authenticated and current_user.must_change_password
            and request.endpoint not in OPEN_WHILE_PASSWORD_MUST_CHANGE):
        flash("Choose a new password to continue: the one you logged in with was temporary.", "info")
        return redirect(url_for("auth.password"))
