"""flashapp: spaced-repetition flashcards for a class."""

from __future__ import annotations

import hmac
import os
import secrets
from datetime import timedelta
from pathlib import Path
from typing import Any, cast

from flask import Flask, Request, current_app, g, request, session
from flask_sqlalchemy import SQLAlchemy
from flask_wtf.csrf import CSRFProtect
from werkzeug.local import LocalProxy

from .database import DEFAULT_WRITE_WAIT_SECONDS, configure_engine
from .models import Base
from .paths import bundled_decks_folder, instance_folder, templates_folder
from .schema_versions import MIGRATIONS
from .storage import StorageError

# Objects stay readable after a commit: a request reads, writes through one use case, then renders.
db = SQLAlchemy(model_class=Base, session_options={"expire_on_commit": False})


class SessionCSRFProtect(CSRFProtect):  # type: ignore[misc]  # Flask-WTF ships no type information
    """Flask-WTF's CSRF check, which takes the token this process signed for the session as checked.

    The pages carry the session's token signed once (`web.helpers.csrf_token`, kept in the app's
    `flashapp.signed_csrf_tokens`). A form sending back exactly that token for the same session
    would pass Flask-WTF's check, which unsigns it again: that took as long as a fiftieth of a study
    cycle. Anything else (another token, one signed by another process, a header instead of the
    form field, a body that is not a plain form, such as an upload, tokens with a time limit, a request
    over HTTPS, whose referrer Flask-WTF checks) goes through Flask-WTF's own check.
    """

    def protect(self, apply_exemptions: bool = False) -> None:
        # The app and the request themselves, not their proxies: each read through a proxy costs a microsecond.
        app = cast("LocalProxy[Flask]", current_app)._get_current_object()
        asked = cast("LocalProxy[Request]", request)._get_current_object()
        config = app.config
        # Only plain forms: an upload's body (multipart) is left unread here, for its view to judge.
        if (asked.endpoint and asked.method in config["WTF_CSRF_METHODS"]
                and asked.mimetype == "application/x-www-form-urlencoded"
                and config.get("WTF_CSRF_TIME_LIMIT") is None and not asked.is_secure):
            field = config.get("WTF_CSRF_FIELD_NAME", "csrf_token")
            raw, sent = session.get(field), asked.form.get(field)
            signed = app.extensions.get("flashapp.signed_csrf_tokens", {}).get(raw) \
                if isinstance(raw, str) else None
            if isinstance(signed, str) and isinstance(sent, str) and hmac.compare_digest(sent, signed):
                g.csrf_valid = True  # as Flask-WTF marks a request whose token it checked
                return
        super().protect(apply_exemptions=apply_exemptions)


csrf = SessionCSRFProtect()

# Secret keys that must never protect a real install.
WELL_KNOWN_SECRET_KEYS = {"dev", "secret", "changeme", "change-me", "development", "test"}


def _instance_path() -> str:
    return str(instance_folder(override=os.environ.get("FLASHAPP_INSTANCE_PATH")))


def _load_or_create_secret_key(instance_path: str) -> str:
    """A random key made once per install and kept in the instance folder."""
    path = Path(instance_path) / "secret_key"
    if path.exists():
        return path.read_text().strip()
    key = secrets.token_hex(32)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError as error:
        raise StorageError(f"Cannot make the secret key {path} ({error.strerror}): make {instance_path} "
                           f"writable for the user running flashapp, or set FLASHAPP_INSTANCE_PATH to a "
                           f"writable folder.") from error
    with os.fdopen(fd, "w") as handle:
        handle.write(key)
    return key


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    """Build the app: defaults, then `instance/config.py`, then the environment, then `test_config`."""
    from .web.errors import FlashApp

    instance_path = (test_config or {}).get("INSTANCE_PATH") or _instance_path()
    app = FlashApp(
        __name__,
        instance_path=instance_path,
        instance_relative_config=True,
        template_folder=str(templates_folder()),
    )
    try:
        os.makedirs(app.instance_path, exist_ok=True)
    except OSError as error:
        raise StorageError(f"Cannot make the instance folder {app.instance_path} ({error.strerror}): set "
                           f"FLASHAPP_INSTANCE_PATH to a writable folder.") from error

    app.config.from_mapping(
        SQLALCHEMY_DATABASE_URI="sqlite:///" + os.path.join(app.instance_path, "flashapp.sqlite"),
        DECKS_DIR=str(bundled_decks_folder()),
        NEW_CARDS_PER_DAY=20,
        DAY_STARTS_AT_HOUR=4,
        DESIRED_RETENTION=0.9,
        LEARNING_STEPS_MINUTES=(1, 10),
        RELEARNING_STEPS_MINUTES=(10,),
        MAXIMUM_INTERVAL_DAYS=36500,
        ENABLE_FUZZING=True,
        HISTORY_PAGE_SIZE=50,
        PASSWORD_HASH_METHOD="scrypt",
        WRITE_WAIT_SECONDS=DEFAULT_WRITE_WAIT_SECONDS,
        THROTTLE_WINDOW_SECONDS=60,
        THROTTLE_FAILURES_PER_NAME_AND_ADDRESS=10,
        THROTTLE_FAILURES_PER_ADDRESS=100,
        MAX_CONTENT_LENGTH=1024 * 1024,
        # An Anki export uploaded to bring reviews back (the one upload larger than MAX_CONTENT_LENGTH).
        ANKI_UPLOAD_MAX_BYTES=64 * 1024 * 1024,
        # The largest document a teacher may upload or paste for a deck (below MAX_CONTENT_LENGTH, so
        # that a larger one gets its message beside the field).
        DOCUMENT_MAX_BYTES=512_000,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        REMEMBER_COOKIE_HTTPONLY=True,
        REMEMBER_COOKIE_SAMESITE="Lax",
        PERMANENT_SESSION_LIFETIME=timedelta(days=30),
        WTF_CSRF_TIME_LIMIT=None,
    )
    app.config.from_pyfile("config.py", silent=True)
    if os.environ.get("FLASHAPP_DATABASE_URL"):
        app.config["SQLALCHEMY_DATABASE_URI"] = os.environ["FLASHAPP_DATABASE_URL"]
    if os.environ.get("FLASHAPP_SECRET_KEY"):
        app.config["SECRET_KEY"] = os.environ["FLASHAPP_SECRET_KEY"]
    if test_config:
        app.config.update(test_config)
    if not app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite"):
        # A server connection can go stale between requests; a file cannot.
        app.config.setdefault("SQLALCHEMY_ENGINE_OPTIONS", {"pool_pre_ping": True})
    if not app.config.get("SECRET_KEY"):
        app.config["SECRET_KEY"] = _load_or_create_secret_key(app.instance_path)
    if app.config["SECRET_KEY"].strip().lower() in WELL_KNOWN_SECRET_KEYS or len(
        app.config["SECRET_KEY"]
    ) < 16:
        raise RuntimeError(
            "FLASHAPP_SECRET_KEY is empty, too short or a well-known value; "
            "unset it to use the key generated in the instance folder."
        )

    db.init_app(app)
    # Imported here, not with the package: Flask-Migrate brings Alembic (a fifth of a second), which the
    # processes that only read or check a database (`flashapp check`'s) never use.
    from flask_migrate import Migrate

    # Batch mode lets Alembic alter SQLite tables (by copying them) as well as PostgreSQL ones.
    Migrate(directory=str(MIGRATIONS), render_as_batch=True, compare_type=True).init_app(app, db)
    csrf.init_app(app)
    with app.app_context():
        configure_engine(db.engine, write_wait_seconds=float(app.config["WRITE_WAIT_SECONDS"]))

    from .scheduling import make_scheduler

    app.extensions["flashapp.scheduler"] = make_scheduler(
        desired_retention=app.config["DESIRED_RETENTION"],
        learning_steps_minutes=app.config["LEARNING_STEPS_MINUTES"],
        relearning_steps_minutes=app.config["RELEARNING_STEPS_MINUTES"],
        maximum_interval_days=app.config["MAXIMUM_INTERVAL_DAYS"],
        enable_fuzzing=app.config["ENABLE_FUZZING"],
        day_starts_at_hour=app.config["DAY_STARTS_AT_HOUR"],
    )

    from .showings import ShowingTokens

    # Study pages sign each showing of a card with the install's key; answers are checked against it.
    app.extensions["flashapp.showings"] = ShowingTokens(app.config["SECRET_KEY"])
    from .integrity import IntegrityWatch

    app.extensions["flashapp.integrity"] = IntegrityWatch()

    from . import cli, web

    web.init_app(app)
    cli.init_app(app)
    return app
