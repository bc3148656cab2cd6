"""Accounts: register, log in, log out."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required, login_user, logout_user

from .. import db
from ..accounts import UsernameTaken, authenticate, register_user
from .forms import EmptyForm, LoginForm, RegisterForm

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
    if form.validate_on_submit():
        try:
            user = register_user(db.session, username=form.username.data, password=form.password.data,
                                 time_zone=form.time_zone.data)
        except UsernameTaken:
            db.session.rollback()
            form.username.errors.append("That username is taken; choose another.")
        else:
            db.session.commit()
            login_user(user)
            role = "the teacher" if user.is_teacher else "a student"
            flash(f"Welcome, {user.username}. You are {role} on this install.", "success")
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
        user = authenticate(db.session, username=form.username.data, password=form.password.data)
        if user is None:
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
        logout_user()
        flash("You are logged out.", "info")
    return redirect(url_for("auth.login"))
