"""Where the app finds its templates, its bundled decks and its instance folder.

Run from a source checkout (the package sits next to `pyproject.toml`), these are the
checkout's own `templates/`, `decks/` and `instance/`. Installed from a wheel, the templates
and decks travel inside the package (the build maps them there) and the instance folder is
the user's data folder, because site-packages is no place for a database.
"""

from __future__ import annotations

import os
from pathlib import Path

from platformdirs import user_data_dir

PACKAGE_DIR = Path(__file__).resolve().parent


def source_checkout() -> Path | None:
    """The root of the source checkout this package runs from, or None when it is installed."""
    root = PACKAGE_DIR.parent
    if (root / "pyproject.toml").is_file() and (root / "templates").is_dir():
        return root
    return None


def templates_folder() -> Path:
    """The folder of the Jinja templates."""
    root = source_checkout()
    return root / "templates" if root else PACKAGE_DIR / "templates"


def bundled_decks_folder() -> Path:
    """The folder of the facts files that come with the app."""
    root = source_checkout()
    return root / "decks" if root else PACKAGE_DIR / "decks"


def instance_folder(*, override: str | None) -> Path:
    """The folder for the database, the secret key, the config file and the backups.

    Args:
        override: a folder chosen by the user (FLASHAPP_INSTANCE_PATH); wins when not empty.
    """
    if override:
        return Path(os.path.abspath(override))
    root = source_checkout()
    if root:
        return root / "instance"
    return Path(user_data_dir("flashapp", appauthor=False))
