"""Creating and upgrading the database schema (Alembic through Flask-Migrate; needs an app context)."""

from __future__ import annotations

from flask_migrate import stamp, upgrade
from sqlalchemy import inspect, text

from . import db
from .database import write_transaction


def upgrade_database() -> None:
    """Create the schema in an empty database, or bring an existing one up to date in place."""
    if not inspect(db.engine).get_table_names():
        # A new database: create the current schema at once and mark it as migrated to the
        # newest revision (a test checks that the migrations arrive at the same schema).
        db.create_all()
        stamp(revision="head")
    else:
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
