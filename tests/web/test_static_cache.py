"""Static files: content-hashed URLs in every page, kept by browsers for a year; anything else re-checked."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from flashapp.web.static_files import content_hashes
from tests.helpers import AuthActions

STATIC_URL = re.compile(r'(?:href|src)="(/static/[^"]+)"')


def static_urls(html: str) -> list[str]:
    return STATIC_URL.findall(html)


def test_every_page_links_its_static_files_by_content_hash(app, client):
    AuthActions(client).register("ada")
    pages = [client.get(path).get_data(as_text=True) for path in ("/", "/history", "/study/back-muscles")]
    urls = {url for html in pages for url in static_urls(html)}
    assert {"style.css", "icon.svg"} <= {url.split("?")[0].removeprefix("/static/") for url in urls}, urls
    folder = app.static_folder
    for url in urls:
        path, _, query = url.partition("?")
        content = (Path(folder) / path.removeprefix("/static/")).read_bytes()
        assert query == "v=" + hashlib.sha256(content).hexdigest()[:16], url


def test_a_hashed_url_is_cached_for_a_year(client):
    url = static_urls(client.get("/login").get_data(as_text=True))[0]
    response = client.get(url)
    response.close()
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "public, max-age=31536000, immutable"


def test_a_url_without_the_current_hash_is_checked_every_time(client):
    for url in ("/static/style.css", "/static/style.css?v=0123456789abcdef"):
        response = client.get(url)
        response.close()
        assert response.status_code == 200
        assert "immutable" not in response.headers.get("Cache-Control", ""), url
        assert "max-age=31536000" not in response.headers.get("Cache-Control", ""), url


def test_a_changed_file_gets_a_new_url(tmp_path):
    (tmp_path / "app.css").write_text("body { color: black; }")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "a.js").write_text("1;")
    before = content_hashes(tmp_path)
    (tmp_path / "app.css").write_text("body { color: navy; }")
    after = content_hashes(tmp_path)
    assert set(before) == {"app.css", "sub/a.js"}
    assert before["app.css"] != after["app.css"]
    assert before["sub/a.js"] == after["sub/a.js"]


def test_pages_are_not_cached_for_a_year(client):
    assert "immutable" not in client.get("/login").headers.get("Cache-Control", "")
