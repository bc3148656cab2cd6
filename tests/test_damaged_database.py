"""A damaged SQLite file: the server refuses to start on it, /healthz reports it, `flashapp check` names it.

The damage is real: bytes flipped in the file's pages (never page 1, which SQLite reads on
every connection and which would stop everything at once), as a failing disk or a bad copy
leaves them.
"""

from __future__ import annotations

import sqlite3
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import insert, select

from flashapp import db
from flashapp.accounts import register_user
from flashapp.models import Card, ReviewLog, ReviewState
from tests.helpers import FAST_HASH_METHOD, T0, build_numbers_deck

PAGE_DAMAGE = ["page_type", "zeroed_leaf", "cell_pointer", "root_page", "zeroed_index", "cell_count", "free_space"]
# Damage that SQLite's quick check cannot see (a changed value, every page well formed): only
# `flashapp check`, which runs the full integrity check, finds it.
VALUE_DAMAGE = ["payload"]


@pytest.fixture
def filled_app(app, database_url, fill_once):
    """The app on an SQLite file of a few hundred pages: 3,000 reviews of 200 cards."""
    if not database_url.startswith("sqlite"):
        pytest.skip("damaged pages are an SQLite file's; PostgreSQL checks its own pages")
    with app.app_context():
        fill_once("3,000 reviews of 200 cards", db.engine, fill)
    return app


def fill() -> None:
    """3,000 reviews of 200 cards, in the database of the app whose context is pushed; its engine left disposed."""
    build_numbers_deck(db.session, count=200)
    users = [register_user(db.session, username=f"s{n}", password="long enough",
                           password_method=FAST_HASH_METHOD) for n in range(5)]
    db.session.flush()
    cards = list(db.session.scalars(select(Card.id)))
    db.session.execute(insert(ReviewLog), [
        {"user_id": user.id, "card_id": card, "rating": 3, "reviewed_at": T0 + timedelta(days=n),
         "duration_ms": 3000, "state_before": ReviewState.NEW, "due": T0 + timedelta(days=n + 1),
         "token": f"{user.id}-{card}-{n}"}
        for user in users for card in cards for n in range(3)])
    db.session.commit()
    db.session.remove()
    db.engine.dispose()


def database_file(app) -> Path:
    with app.app_context():
        return Path(db.engine.url.database)


def damage(path: Path, kind: str) -> None:
    """Flip bytes of one kind in the file at path (closed, its WAL checkpointed)."""
    connection = sqlite3.connect(path)
    connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    page_size = connection.execute("PRAGMA page_size").fetchone()[0]

    def pages(name: str, kind: str = "leaf") -> list[int]:
        return [row[0] for row in connection.execute(
            "SELECT pageno FROM dbstat WHERE name = ? AND pagetype = ? ORDER BY pageno", (name, kind))]

    leaf = pages("review_log")[len(pages("review_log")) // 2]
    index_leaf = pages("ix_review_log_card_id")[len(pages("ix_review_log_card_id")) // 2]
    root = connection.execute("SELECT rootpage FROM sqlite_master WHERE name = 'review_log'").fetchone()[0]
    connection.close()
    data = bytearray(path.read_bytes())
    at = (leaf - 1) * page_size
    assert leaf > 1 and index_leaf > 1 and root > 1
    if kind == "page_type":
        data[at] = 0x07  # no such b-tree page type
    elif kind == "zeroed_leaf":
        data[at:at + page_size] = bytes(page_size)
    elif kind == "cell_pointer":
        data[at + 8] ^= 0xFF
        data[at + 9] ^= 0xFF
    elif kind == "root_page":
        data[(root - 1) * page_size] = 0x07
    elif kind == "zeroed_index":
        data[(index_leaf - 1) * page_size:index_leaf * page_size] = bytes(page_size)
    elif kind == "cell_count":
        data[at + 3] ^= 0x7F
    elif kind == "free_space":
        data[at + 1] ^= 0x0F
    elif kind == "payload":
        data[at + page_size - 50:at + page_size - 40] = b"\xff" * 10
    path.write_bytes(data)


def stub_waitress(monkeypatch) -> list:
    """Record instead of serving: what is under test is what `serve` does before it listens."""
    from flashapp import cli, serving

    served: list = []
    monkeypatch.setattr(cli, "start_daily_backups", lambda app: None)
    monkeypatch.setattr(cli, "start_personal_fits", lambda app: None)
    monkeypatch.setattr(serving, "serve", lambda app, **options: served.append(app))
    return served


@pytest.mark.parametrize("kind", PAGE_DAMAGE)
def test_serve_refuses_a_damaged_database_and_says_how_to_recover(filled_app, monkeypatch, kind):
    served = stub_waitress(monkeypatch)
    path = database_file(filled_app)
    damage(path, kind)
    before = path.read_bytes()
    result = filled_app.test_cli_runner().invoke(args=["serve", "--port", "5999"])
    assert result.exit_code == 1, result.output
    assert "Error: Not serving: the database file is damaged. SQLite's quick check found:" in result.output
    assert "restore the latest good backup (`flashapp restore FILE`" in result.output
    assert served == []
    assert path.read_bytes() == before


def test_serve_starts_on_a_sound_database(filled_app, monkeypatch):
    served = stub_waitress(monkeypatch)
    result = filled_app.test_cli_runner().invoke(args=["serve", "--port", "5999"])
    assert result.exit_code == 0, result.output
    assert served == [filled_app]


@pytest.mark.parametrize("kind", PAGE_DAMAGE)
def test_healthz_reports_a_damaged_file(filled_app, kind):
    damage(database_file(filled_app), kind)
    response = filled_app.test_client().get("/healthz")
    assert response.status_code == 503
    body = response.get_json()
    assert body["status"] == "failing" and body["checks"]["integrity"].startswith("failing: damaged: ")


def test_healthz_reuses_its_quick_check_until_it_is_due_again(filled_app):
    client = filled_app.test_client()
    assert client.get("/healthz").get_json()["checks"]["integrity"] == "ok"
    damage(database_file(filled_app), "zeroed_leaf")
    # Within the interval the stored result stands: a health request stays a cheap one.
    assert client.get("/healthz").status_code == 200
    filled_app.extensions["flashapp.integrity"].every = timedelta(0)
    response = client.get("/healthz")
    assert response.status_code == 503 and response.get_json()["checks"]["integrity"].startswith("failing: damaged: ")


@pytest.mark.parametrize("kind", PAGE_DAMAGE + VALUE_DAMAGE)
def test_check_reports_damage_instead_of_crashing(filled_app, kind):
    path = database_file(filled_app)
    damage(path, kind)
    before = path.read_bytes()
    for args in (["check"], ["check", "--fix"]):
        result = filled_app.test_cli_runner().invoke(args=args)
        assert result.exit_code == 1, result.output
        assert result.exception is None or isinstance(result.exception, SystemExit), result.output
        assert "Traceback" not in result.output
        assert "restore a backup (`flashapp restore`)" in result.output
        assert "cannot be fixed by this command" in result.output
    assert path.read_bytes() == before


@pytest.mark.parametrize("kind", ["zeroed_leaf", "payload"])
def test_check_in_several_processes_reports_damage_as_one_does(filled_app, kind):
    path = database_file(filled_app)
    damage(path, kind)
    runner = filled_app.test_cli_runner()
    alone = runner.invoke(args=["check", "--workers", "1"])
    for args in (["check", "--workers", "2"], ["check", "--fix", "--workers", "2"]):
        result = runner.invoke(args=args)
        assert result.exit_code == 1 and "Traceback" not in result.output, result.output
        assert result.output == alone.output
