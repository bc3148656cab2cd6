"""The schema versions this flashapp knows (its Alembic migrations), readable without an app."""

from __future__ import annotations

from functools import cache
from pathlib import Path

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


@cache
def schema_versions() -> tuple[str, ...]:
    """Every schema version this flashapp knows, oldest first (the last is the one it writes)."""
    from alembic.script import ScriptDirectory  # Alembic is imported only where it is used (see create_app)

    script = ScriptDirectory(str(MIGRATIONS))
    return tuple(revision.revision for revision in reversed(list(script.walk_revisions())))


def newer_schema_message(version: str, *, what: str = "the database") -> str:
    """Why a database written by a newer flashapp is refused, naming both versions."""
    return (f"{what} has schema version {version}, newer than this flashapp's {schema_versions()[-1]}: "
            "it was written by a newer version of flashapp; install that version (or a later one) to use it, "
            "or restore an older backup")
