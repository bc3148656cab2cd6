"""Creating and upgrading the database schema (Alembic through Flask-Migrate; needs an app context)."""

from __future__ import annotations

from flask_migrate import stamp, upgrade
from sqlalchemy import inspect

from . import db


def upgrade_database() -> None:
    """Create the schema in an empty database, or bring an existing one up to date in place."""
    if not inspect(db.engine).get_table_names():
        # A new database: create the current schema at once and mark it as migrated to the
        # newest revision (a test checks that the migrations arrive at the same schema).
        db.create_all()
        stamp(revision="head")
    else:
        upgrade()
