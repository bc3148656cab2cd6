"""The `flashapp` command: a Flask CLI group, so `flashapp routes` and `flashapp shell` come with it."""

from __future__ import annotations

import socket
import sys
from datetime import datetime, timezone
from pathlib import Path

import click
from flask import Flask, current_app
from flask.cli import FlaskGroup, with_appcontext

from . import db
from .accounts import MIN_PASSWORD_LENGTH, USERNAME_RE, UsernameTaken, register_user
from .decksource import DeckSourceError, deck_files, load_deck
from .generation import BuildReport, build_deck
from .models import ROLE_STUDENT, ROLE_TEACHER, Deck


def _create_app() -> Flask:
    from . import create_app

    return create_app()


@click.group(cls=FlaskGroup, create_app=_create_app, add_version_option=False, load_dotenv=False)
def main() -> None:
    """flashapp: spaced-repetition flashcards for a class."""


def init_app(app: Flask) -> None:
    """Register the commands on the app's CLI (found by `flashapp` and by `flask --app flashapp`)."""
    app.cli.add_command(init_command)
    app.cli.add_command(serve_command)
    app.cli.add_command(deck_group)
    app.cli.add_command(user_group)


def build_decks(paths: list[Path]) -> list[BuildReport]:
    """Validate every file first, then build them all in one transaction (all or nothing)."""
    specs = [load_deck(path) for path in paths]
    seen: dict[str, str] = {}
    for spec in specs:
        if spec.slug in seen:
            raise DeckSourceError(spec.path, None, f"slug '{spec.slug}' is also used by {seen[spec.slug]}; "
                                                   "give each deck its own slug")
        seen[spec.slug] = spec.path
    now = datetime.now(timezone.utc)
    try:
        reports = [build_deck(db.session, spec, now=now) for spec in specs]
        db.session.commit()
    except Exception:
        db.session.rollback()
        raise
    return reports


def _build_or_fail(paths: list[Path]) -> None:
    try:
        reports = build_decks(paths)
    except DeckSourceError as error:
        raise click.ClickException(f"{error}\nNothing was changed.") from None
    for report in reports:
        click.echo(report.summary() if report.changed else f"{report.slug}: up to date")


def upgrade_database() -> None:
    """Create the schema in an empty database, or bring an existing one up to date in place."""
    from flask_migrate import stamp, upgrade
    from sqlalchemy import inspect

    if not inspect(db.engine).get_table_names():
        # A new database: create the current schema at once and mark it as migrated to the
        # newest revision (a test checks that the migrations arrive at the same schema).
        db.create_all()
        stamp(revision="head")
    else:
        upgrade()


@click.command("init")
@with_appcontext
def init_command() -> None:
    """Create or upgrade the database and build every deck in the decks folder."""
    upgrade_database()
    click.echo(f"Database ready: {db.engine.url.render_as_string(hide_password=True)}")
    decks_dir = Path(current_app.config["DECKS_DIR"])
    paths = deck_files(decks_dir) if decks_dir.is_dir() else []
    if not paths:
        click.echo(f"No deck files in {decks_dir}.")
        return
    _build_or_fail(paths)


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on; 0.0.0.0 serves the classroom network.")
@click.option("--port", default=5000, show_default=True, type=int)
@click.option("--threads", default=16, show_default=True, type=int, help="Requests served at once.")
@with_appcontext
def serve_command(host: str, port: int, threads: int) -> None:
    """Serve the app with waitress."""
    from waitress import serve

    app = current_app._get_current_object()
    for address in open_addresses(host, port):
        click.echo(f"Open {address} in a browser.")
    serve(app, host=host, port=port, threads=threads, ident="flashapp")


def open_addresses(host: str, port: int) -> list[str]:
    """The addresses a browser should open to reach a server listening on host:port."""
    if host not in ("0.0.0.0", "::", ""):
        return [f"http://{host}:{port}/"]
    found: list[str] = []
    try:
        for info in socket.getaddrinfo(socket.gethostname(), None, socket.AF_INET):
            address = info[4][0]
            if not address.startswith("127.") and address not in found:
                found.append(address)
    except OSError:
        pass
    return [f"http://{address}:{port}/" for address in found] + [f"http://127.0.0.1:{port}/ (this machine)"]


@click.group("deck")
def deck_group() -> None:
    """Build and export decks."""


@deck_group.command("build")
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@with_appcontext
def deck_build(paths: tuple[Path, ...]) -> None:
    """Build decks from facts files (default: every file in the decks folder)."""
    upgrade_database()
    if not paths:
        paths = tuple(deck_files(current_app.config["DECKS_DIR"]))
    _build_or_fail(list(paths))


@deck_group.command("export")
@click.argument("slug")
@click.option("-o", "--output", "output", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Where to write the .apkg file.")
@with_appcontext
def deck_export(slug: str, output: Path) -> None:
    """Write a deck as an Anki package."""
    from .anki_export import export_anki_package

    deck = db.session.scalar(db.select(Deck).where(Deck.slug == slug))
    if deck is None:
        slugs = ", ".join(db.session.scalars(db.select(Deck.slug).order_by(Deck.slug))) or "none yet"
        raise click.ClickException(f"No deck '{slug}'. Decks: {slugs}.")
    export_anki_package(db.session, deck_id=deck.id, out=output)
    click.echo(f"Wrote {output} ({len([n for n in deck.notes if not n.retired])} notes).")


@click.group("user")
def user_group() -> None:
    """Manage accounts."""


@user_group.command("create")
@click.argument("username")
@click.option("--teacher", is_flag=True, help="Make the account a teacher.")
@click.option("--password", prompt=True, hide_input=True, confirmation_prompt=True,
              help="Asked for when not given.")
@with_appcontext
def user_create(username: str, teacher: bool, password: str) -> None:
    """Create an account."""
    if not USERNAME_RE.match(username) or not 3 <= len(username) <= 40:
        raise click.ClickException("A username has 3 to 40 letters, digits, dots, hyphens or underscores.")
    if len(password) < MIN_PASSWORD_LENGTH:
        raise click.ClickException(f"A password needs at least {MIN_PASSWORD_LENGTH} characters.")
    try:
        user = register_user(db.session, username=username, password=password,
                             role=ROLE_TEACHER if teacher else ROLE_STUDENT)
        db.session.commit()
    except UsernameTaken:
        db.session.rollback()
        raise click.ClickException(f"The username '{username}' is taken.") from None
    click.echo(f"Created {user.role} '{user.username}'.")


if __name__ == "__main__":
    sys.exit(main())
