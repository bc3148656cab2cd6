"""The `flashapp` command: a Flask CLI group, so `flashapp routes` and `flashapp shell` come with it."""

from __future__ import annotations

import sys
from datetime import datetime, timezone
from pathlib import Path

import click
from flask import Flask, current_app
from flask.cli import FlaskGroup, with_appcontext

from . import db
from .accounts import create_account
from .backup import (
    BackupError,
    backup_file_name,
    backup_sqlite,
    remove_abandoned_temp_files,
    restore_sqlite,
    sqlite_path,
)
from .backup_schedule import backup_folder, start_daily_backups
from .candidates import candidates_in_document
from .classroom import all_classrooms
from .database import write_gate
from .decks import build_decks, deck_facts_file, export_deck
from .decksource import DeckLimits, DeckSourceError, deck_files
from .errors import DomainError, NotFound, NotSaved
from .fit_schedule import start_personal_fits
from .integrity import RESTORE_ADVICE, quick_check
from .models import Role
from .network import Listening, open_addresses
from .schema import SchemaError, schema_problem, upgrade_database
from .schema_versions import schema_versions
from .storage import StorageError, check_writable
from .web.helpers import serving_at

# How often the serving threads hand round the interpreter lock (Python's default is 0.005 s).
SWITCH_INTERVAL_SECONDS = 0.001


def _create_app() -> Flask:
    from . import create_app

    try:
        return create_app()
    except StorageError as error:
        raise click.ClickException(error.message) from None


def _not_saved(error: NotSaved) -> click.ClickException:
    return click.ClickException(f"Not saved: {error.cause}. Nothing was changed; try again.")


def _writable_or_fail() -> None:
    """Stop with one line naming what is read-only and how to fix it, before anything starts."""
    try:
        check_writable(instance_path=current_app.instance_path, database_url=db.engine.url)
    except StorageError as error:
        raise click.ClickException(error.message) from None


@click.group(cls=FlaskGroup, create_app=_create_app, add_version_option=False, load_dotenv=False)
@click.version_option(package_name="flashapp", prog_name="flashapp", message="%(prog)s %(version)s")
def main() -> None:
    """flashapp: spaced-repetition flashcards for a class."""


def init_app(app: Flask) -> None:
    """Register the commands on the app's CLI (found by `flashapp` and by `flask --app flashapp`)."""
    app.cli.add_command(init_command)
    app.cli.add_command(serve_command)
    app.cli.add_command(deck_group)
    app.cli.add_command(user_group)
    app.cli.add_command(backup_command)
    app.cli.add_command(restore_command)
    app.cli.add_command(check_command)
    app.cli.add_command(fit_parameters_command)
    app.cli.add_command(optimize_command)
    app.cli.add_command(progress_group)


def _build_or_fail(paths: list[Path]) -> None:
    try:
        reports = build_decks(db.session(), paths, now=datetime.now(timezone.utc),
                              limits=DeckLimits.from_config(current_app.config))
    except DeckSourceError as error:
        raise click.ClickException(f"{error}\nNothing was changed.") from None
    except NotSaved as error:
        raise _not_saved(error) from None
    for report in reports:
        click.echo(report.summary() if report.changed else f"{report.slug}: up to date")


def _upgrade_or_fail() -> None:
    try:
        upgrade_database()
    except SchemaError as error:
        raise click.ClickException(f"{error}.\nNothing was changed.") from None


@click.command("init")
@with_appcontext
def init_command() -> None:
    """Create or upgrade the database and build every deck in the decks folder."""
    _writable_or_fail()
    _upgrade_or_fail()
    click.echo(f"Instance folder: {current_app.instance_path}")
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
# Four: on a 2-core machine the server answered 10-15 % more study cycles and health checks a second with
# four threads than with eight, on SQLite and on PostgreSQL alike (bench/load.py --mode saturation --threads,
# runs in turns), and a streamed export or a long page still leaves three threads to the students.
@click.option("--threads", default=4, show_default=True, type=int,
              help="Requests served at once (more threads only contend for one Python interpreter lock).")
@click.option("--connection-limit", default=1000, show_default=True, type=int,
              help="Open connections accepted at once (a browser keeps several open).")
@with_appcontext
def serve_command(host: str, port: int, threads: int, connection_limit: int) -> None:
    """Serve the app with waitress, printing the addresses to open and each class's join code."""
    from . import serving

    _writable_or_fail()
    app = current_app._get_current_object()  # type: ignore[attr-defined]  # the proxy's documented way to the app
    _refuse_unservable_database(app)
    _remove_abandoned_temp_files(app)
    serving_at(app, Listening(host, port))
    # Writes stuck waiting for the write lock hold their threads: keep two free for pages that only read.
    write_gate(db.engine).waiting_at_most = max(1, threads - 2)
    for address in open_addresses(host, port):
        click.echo(f"Open {address} in a browser.")
    for classroom in all_classrooms(db.session()):
        click.echo(f"Class {classroom.name}: join code {classroom.join_code}")
    db.session.remove()
    start_daily_backups(app)
    start_personal_fits(app)
    # A thread back from the disk (an answer's commit waits for its fsync) holds the write lock until it wins the
    # interpreter lock again from the threads rendering pages: hand that lock round every millisecond rather
    # than every five, so that the other writers are let in sooner.
    sys.setswitchinterval(SWITCH_INTERVAL_SECONDS)
    serving.serve(app, host=host, port=port, threads=threads, connection_limit=connection_limit,
                  asyncore_use_poll=True, ident="flashapp")


def _refuse_unservable_database(app: Flask) -> None:
    """Stop `serve` before it starts on a database of another schema version or a damaged file."""
    problem = schema_problem(db.engine)
    if problem is not None:
        raise click.ClickException(f"Not serving: {problem}.")
    result = quick_check(db.session(), now=datetime.now(timezone.utc))
    db.session.remove()
    app.extensions["flashapp.integrity"].record(result)
    if not result.ok:
        shown = "\n".join(f"  {finding}" for finding in result.findings[:5])
        raise click.ClickException(
            f"Not serving: the database file is damaged. SQLite's quick check found:\n{shown}\n"
            f"To recover, {RESTORE_ADVICE}.")


def _remove_abandoned_temp_files(app: Flask) -> None:
    """Remove what backups and restores killed half-way left behind."""
    database = sqlite_path(db.engine.url)
    if database is None:
        return
    removed = (remove_abandoned_temp_files(database.parent, database_path=database)
               + remove_abandoned_temp_files(backup_folder(app)))
    if removed:
        click.echo(f"Removed {len(removed)} temporary files left by interrupted backups or restores.")


@click.group("deck")
def deck_group() -> None:
    """Build and export decks."""


@deck_group.command("build")
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@with_appcontext
def deck_build(paths: tuple[Path, ...]) -> None:
    """Build decks from facts files (default: every file in the decks folder)."""
    _upgrade_or_fail()
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
    try:
        notes = export_deck(db.session(), slug=slug, out=output)
    except NotFound as error:
        raise click.ClickException(error.message) from None
    click.echo(f"Wrote {output} ({notes} notes).")


@deck_group.command("facts")
@click.argument("slug")
@click.option("-o", "--output", "output", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Where to write the facts file (.yaml).")
@with_appcontext
def deck_facts(slug: str, output: Path) -> None:
    """Write a built deck as a facts file, which `deck build` reads back to the same cards and keys."""
    try:
        facts = deck_facts_file(db.session(), slug=slug, limits=DeckLimits.from_config(current_app.config))
    except NotFound as error:
        raise click.ClickException(error.message) from None
    except DeckSourceError as error:
        raise click.ClickException(f"{error}\nNothing was written.") from None
    try:
        output.write_text(facts.text, encoding="utf-8")
    except OSError as error:
        raise click.ClickException(f"Cannot write {output}: {error.strerror}.") from None
    click.echo(f"Wrote {output} ({facts.facts} facts).")
    if not facts.matches_build:
        click.echo(f"Note: the deck's facts file changed since '{slug}' was last built; the file written holds "
                   f"the facts file as it is now. Run `flashapp deck build` to bring the deck in line.")


@deck_group.command("candidates")
@click.argument("document", type=click.Path(path_type=Path))
def deck_candidates(document: Path) -> None:
    """Print the candidate facts found in a document (plain text or markdown), section by section."""
    limit = DeckLimits().deck_max_file_bytes
    if not document.is_file():
        what = "is a folder" if document.is_dir() else "does not exist" if not document.exists() else \
            "is not a regular file"
        raise click.ClickException(f"{document} {what}; give a plain-text or markdown file.")
    try:
        with document.open("rb") as file:
            data = file.read(limit + 1)
    except OSError as error:
        raise click.ClickException(f"Cannot read {document}: {error.strerror}.") from None
    if len(data) > limit:
        raise click.ClickException(f"{document} is longer than {limit:,} bytes; split it into smaller documents.")
    if b"\x00" in data:
        raise click.ClickException(f"{document} is not a text file; give a plain-text or markdown file "
                                   "(copy the text out of a PDF or a word-processor file first).")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise click.ClickException(f"{document} is not UTF-8 text; save it again as UTF-8.") from None
    if not text.strip():
        raise click.ClickException(f"{document} is empty.")
    candidates = candidates_in_document(text)
    section = None
    for candidate in candidates:
        if candidate.section != section:
            section = candidate.section
            click.echo(f"# {section or '(before the first heading)'}")
        click.echo(f"[{candidate.relation}] {candidate.subject} -> {candidate.object}\n"
                   f"    {candidate.reason}: {candidate.sentence}")
    click.echo(f"{len(candidates)} candidate facts in {document}.")


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
    try:
        user = create_account(db.session(), username=username, password=password,
                              role=Role.TEACHER if teacher else Role.STUDENT,
                              method=current_app.config["PASSWORD_HASH_METHOD"])
    except DomainError as error:
        raise click.ClickException(error.message) from None
    except NotSaved as error:
        raise _not_saved(error) from None
    click.echo(f"Created {user.role} '{user.username}'.")


# --- Backups and consistency checks ------------------------------------------------------------
# `flashapp backup`, `flashapp restore`, `flashapp check`, and the daily backups of `flashapp serve`.

PROBLEMS_SHOWN = 50


def _problems(count: int) -> str:
    return f"{count} problem" + ("" if count == 1 else "s")


def _sqlite_database_or_fail(postgres_advice: str) -> Path:
    """The SQLite database file of the app, or a ClickException saying what to do instead."""
    url = db.engine.url
    database = sqlite_path(url)
    if database is None:
        if url.get_backend_name() == "postgresql":
            raise click.ClickException(f"The database is PostgreSQL: {postgres_advice}")
        raise click.ClickException(f"Only SQLite database files are handled here, not "
                                   f"{url.render_as_string(hide_password=True)}.")
    return database


@click.command("backup")
@click.option("--to", "folder", type=click.Path(file_okay=False, path_type=Path),
              help="Folder to write the backup to (default: backups/ in the instance folder).")
@with_appcontext
def backup_command(folder: Path | None) -> None:
    """Back up the SQLite database while the server keeps running.

    Uses SQLite's online backup API (never a plain copy of a live file) and checks the copy.
    For PostgreSQL, use pg_dump.
    """
    database = _sqlite_database_or_fail("back it up with pg_dump, e.g. `pg_dump -Fc -f flashapp.dump DBNAME`.")
    folder = folder or backup_folder(current_app)
    target = folder / backup_file_name(now=datetime.now(timezone.utc))
    try:
        backup_sqlite(database, target)
    except BackupError as error:
        raise click.ClickException(f"Backup failed: {error}") from None
    click.echo(f"Backup written to {target}")


@click.command("restore")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@with_appcontext
def restore_command(file: Path) -> None:
    """Replace the SQLite database with the backup FILE. Stop the server first.

    A damaged file or one that is not a flashapp database is refused and nothing changes.
    The database being replaced is first saved in the instance folder's backups/.
    For PostgreSQL, use pg_restore.
    """
    database = _sqlite_database_or_fail("restore a pg_dump file with pg_restore.")
    # This process's own pooled connections would look like a running server.
    db.session.remove()
    db.engine.dispose()
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    saved = backup_folder(current_app) / f"flashapp-before-restore-{stamp}.sqlite"
    existed = database.exists()
    try:
        restore_sqlite(file, database, save_current_to=saved, known_versions=schema_versions())
    except BackupError as error:
        raise click.ClickException(f"Restore refused: {error}.\nNothing was changed.") from None
    click.echo(f"Restored {file} into {database}.")
    if existed:
        click.echo(f"The database it replaced was saved as {saved}.")
    click.echo("Run `flashapp init` (it brings an older backup up to date), then start the server again.")


@click.command("check")
@click.option("--fix", is_flag=True, help="Repair what can be repaired, in short transactions while the server runs.")
@click.option("--workers", type=click.IntRange(min=1), default=None,
              help="Processes that replay the reviews (default: one per CPU for a large review log).")
@with_appcontext
def check_command(fix: bool, workers: int | None) -> None:
    """Check the database: card states against the review logs, orphaned rows, SQLite integrity.

    Exits with status 1 while problems remain.
    """
    from .consistency import check_database

    db.session.remove()
    report = check_database(db.session(), current_app.extensions["flashapp.scheduler"], fix=fix, workers=workers)
    db.session.remove()
    click.echo(f"Checked {report.states_checked} card states and {report.reviews_checked} reviews.")
    if not report.problems:
        click.echo("No problems found.")
        return
    click.echo(f"Found {_problems(len(report.problems))}:")
    for problem in report.problems[:PROBLEMS_SHOWN]:
        click.echo(f"  - {problem.message}")
    if len(report.problems) > PROBLEMS_SHOWN:
        click.echo(f"  ... and {len(report.problems) - PROBLEMS_SHOWN} more.")
    if report.repaired:
        click.echo(f"Fixed {_problems(len(report.repaired))}.")
    unfixed = report.unfixed
    if unfixed:
        fixable = [p for p in unfixed if p.fixable]
        if fixable:
            click.echo(f"{_problems(len(fixable))} can be fixed with `flashapp check --fix`.")
        if len(fixable) < len(unfixed):
            click.echo(f"{_problems(len(unfixed) - len(fixable))} cannot be fixed by this command.")
        sys.exit(1)


@click.command("fit-parameters")
@click.argument("revlog", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--test-share", default=0.3, show_default=True, type=click.FloatRange(0.05, 0.9),
              help="The share of the newest answers kept aside to score the parameters on.")
def fit_parameters_command(revlog: Path, test_share: float) -> None:
    """Fit FSRS parameters to a class revlog CSV (from the class page) and score them against the defaults."""
    from .fitting import fit_parameters, read_revlog

    with revlog.open(newline="", encoding="utf-8") as lines:
        try:
            reviews = read_revlog(lines)
        except (KeyError, ValueError) as error:
            raise click.ClickException(f"{revlog} is not a flashapp revlog export ({error}).") from None
    try:
        fit = fit_parameters(reviews, test_share=test_share)
    except ValueError as error:
        raise click.ClickException(f"{error}.") from None
    click.echo(f"{len(reviews)} reviews: fitted on the oldest {fit.trained_on} answers a day or more apart, "
               f"scored on the newest {fit.tested_on}.")
    click.echo(f"Default parameters: log loss {fit.default.log_loss:.4f}, RMSE {fit.default.rmse_bins:.4f}")
    click.echo(f"Fitted parameters:  log loss {fit.fitted.log_loss:.4f}, RMSE {fit.fitted.rmse_bins:.4f}")
    click.echo("Parameters: " + ", ".join(f"{w:.4f}" for w in fit.parameters))
    if not fit.better:
        click.echo("The fitted parameters predict no better than the defaults: keep the defaults.")


@click.command("optimize")
@click.option("--user", "username", help="Fit this student now, whatever their history's growth.")
@with_appcontext
def optimize_command(username: str | None) -> None:
    """Fit students' own FSRS parameters: those whose history has grown enough, or one named student.

    New parameters are kept only when they predict the student's newest answers better (log loss
    and RMSE) than the ones in use; their memory states are then recomputed from their reviews.
    """
    from .accounts import find_user
    from .personal import optimize_due_students, optimize_student

    session = db.session()
    scheduler = current_app.extensions["flashapp.scheduler"]
    at = datetime.now(timezone.utc)
    try:
        if username is not None:
            user = find_user(session, username)
            if user is None:
                raise click.ClickException(f"There is no account '{username}'. Nothing was changed.")
            outcomes = [optimize_student(session, scheduler, user_id=user.id, now=at)]
        else:
            outcomes = optimize_due_students(session, scheduler, now=at, budget_seconds=float("inf"))
    except NotSaved as error:
        raise _not_saved(error) from None
    if not outcomes:
        click.echo("No student's history has grown enough for a new fit.")
    for outcome in outcomes:
        click.echo(f"{outcome.username} ({outcome.reviews} reviews): {outcome.message}")
        if outcome.kept:
            click.echo(f"  {outcome.states_recomputed} memory states recomputed; due dates unchanged.")


# --- A student's progress to and from Anki ------------------------------------------------------

@click.group("progress")
def progress_group() -> None:
    """Carry a student's progress to Anki and bring reviews back from it."""


@progress_group.command("export")
@click.argument("username")
@click.argument("slug")
@click.option("-o", "--output", "output", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Where to write the .apkg file.")
@with_appcontext
def progress_export(username: str, slug: str, output: Path) -> None:
    """Write a deck with one student's scheduling, review history and memory states as an Anki package."""
    from .anki_progress import export_progress

    try:
        summary = export_progress(db.session(), current_app.extensions["flashapp.scheduler"], username=username,
                                  slug=slug, out=output, now=datetime.now(timezone.utc))
    except NotFound as error:
        raise click.ClickException(f"{error.message} Nothing was written.") from None
    click.echo(f"Wrote {output}: {summary.cards} cards, {summary.studied_cards} of them studied by {username}, "
               f"{summary.reviews} reviews.")


@progress_group.command("import")
@click.argument("username")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@with_appcontext
def progress_import(username: str, file: Path) -> None:
    """Merge the reviews in an Anki export FILE (.apkg with scheduling, or .colpkg) into USERNAME's history.

    Reviews of this app's cards that the history does not have are added, marked as done in Anki,
    and those cards replayed; importing the same file again adds nothing.
    """
    from .accounts import find_user
    from .anki_import import ImportLimits, import_anki_file

    session = db.session()
    user = find_user(session, username)
    if user is None:
        raise click.ClickException(f"There is no account '{username}'. Nothing was changed.")
    try:
        report = import_anki_file(session, current_app.extensions["flashapp.scheduler"], user_id=user.id,
                                  source=file, now=datetime.now(timezone.utc),
                                  limits=ImportLimits(upload_bytes=int(current_app.config["ANKI_UPLOAD_MAX_BYTES"])))
    except DomainError as error:
        raise click.ClickException(f"{error.message}\nNothing was changed.") from None
    except NotSaved as error:
        raise _not_saved(error) from None
    click.echo(f"{username}: {report.summary()}")


if __name__ == "__main__":
    sys.exit(main())
