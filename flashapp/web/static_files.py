"""Static files under content-hashed URLs, so browsers keep them for a year and never ask again.

Each file's hash is worked out once, when the app starts. `url_for('static', filename=...)` adds it
as `?v=<hash>`; a response to a URL carrying the file's current hash may be kept unchanged for a
year. A URL without a hash, or with an old one, is served as before (checked on every use), so a
page cached from an older version never pins the wrong file.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from flask import Flask, request
from werkzeug.wrappers import Response

HASH_ARG = "v"
YEAR_SECONDS = 365 * 24 * 3600
CACHED_FOR_GOOD = f"public, max-age={YEAR_SECONDS}, immutable"


def content_hashes(folder: Path) -> dict[str, str]:
    """The first 16 hex digits of each file's SHA-256, by its path under `folder` (with forward slashes)."""
    hashes: dict[str, str] = {}
    if folder.is_dir():
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                hashes[path.relative_to(folder).as_posix()] = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
    return hashes


def init_app(app: Flask) -> None:
    """Hash the static files once, add the hash to their URLs and cache the responses to hashed URLs."""
    hashes = content_hashes(Path(app.static_folder or ""))
    app.extensions["flashapp.static_hashes"] = hashes

    @app.url_defaults
    def _add_content_hash(endpoint: str, values: dict[str, Any]) -> None:
        if endpoint == "static" and HASH_ARG not in values:
            digest = hashes.get(str(values.get("filename", "")))
            if digest:
                values[HASH_ARG] = digest

    @app.after_request
    def _cache_hashed_files(response: Response) -> Response:
        if (request.endpoint == "static" and response.status_code in (200, 304)
                and request.view_args is not None
                and request.args.get(HASH_ARG) == hashes.get(str(request.view_args.get("filename")))):
            response.headers["Cache-Control"] = CACHED_FOR_GOOD
        return response
