"""Creating and upgrading the database schema (Alembic through Flask-Migrate; needs an app context)."""

from __future__ import annotations

from alembic.runtime.migration import MigrationContext
from flask_migrate import stamp, upgrade
from sqlalchemy import Engine, inspect, text

from . import db
from .database import write_transaction
from .schema_versions import newer_schema_message, schema_versions


class SchemaError(Exception):
    """The database's schema is not one this version of flashapp can use; the message says what to do."""


def database_version(engine: Engine) -> str | None:
    """The schema version recorded in the database (None for an empty one or one without a record)."""
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def schema_problem(engine: Engine) -> str | None:
    """Why the app cannot serve from this database as it is, or None when its schema is the current one."""
    versions = schema_versions()
    if not inspect(engine).get_table_names():
        return "the database is empty: run `flashapp init` first"
    current = database_version(engine)
    if current is None:
        return "the database records no schema version: it is not a flashapp database, or was made by hand"
    if current not in versions:
        return newer_schema_message(current)
    if current != versions[-1]:
        return (f"the database has schema version {current}, older than this flashapp's {versions[-1]}: "
                "run `flashapp init` to bring it up to date")
    return None


def upgrade_database() -> None:
    """Create the schema in an empty database, or bring an existing one up to date in place.

    Raises `SchemaError`, changing nothing, when the database was written by a newer flashapp.
    """
    if not inspect(db.engine).get_table_names():
        # A new database: create the current schema at once and mark it as migrated to the
        # newest revision (a test checks that the migrations arrive at the same schema).
        db.create_all()
        stamp(revision="head")
        return
    current = database_version(db.engine)
    if current is not None and current not in schema_versions():
        raise SchemaError(newer_schema_message(current))
    upgrade()
    refresh_statistics()


def refresh_statistics() -> None:
    """Give the query planner fresh statistics on every table and index.

    A migration may add indexes or rewrite whole tables, and a restored backup can hold years of
    reviews. PostgreSQL analyses again on its own as tables grow; SQLite never does, and plans
    with what it last saw (or with no statistics at all). SQLite reads at most a few hundred rows
    per index, so this takes a moment whatever the size of the school.
    """
    with write_transaction(db.session()) as session:
        if session.get_bind().dialect.name == "sqlite":
            session.execute(text("PRAGMA analysis_limit=400"))
        session.execute(text("ANALYZE"))
