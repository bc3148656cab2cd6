"""The flashapp command: init is idempotent, a broken deck changes nothing, export writes an .apkg."""

from __future__ import annotations

import zipfile

import pytest
from sqlalchemy import select

from flashapp import db
from flashapp.database import make_engine, write_gate
from flashapp.models import Card, Deck, Note, User
from flashapp.network import Listening
from tests.helpers import BUNDLED_DECK, FAST_HASH_METHOD, PLANETS, with_lines, write_deck


def snapshot(app):
    """Everything a build could touch, as plain values."""
    with app.app_context():
        decks = [(d.slug, d.title, d.built_at) for d in db.session.scalars(select(Deck).order_by(Deck.slug))]
        notes = [(n.key, n.subject, n.object, n.retired, n.updated_at)
                 for n in db.session.scalars(select(Note).order_by(Note.key))]
        cards = [(c.key, c.question, c.answer, c.retired, c.updated_at)
                 for c in db.session.scalars(select(Card).order_by(Card.key))]
        db.session.remove()
    return decks, notes, cards


def test_init_twice_is_harmless(app, runner):
    first = runner.invoke(args=["init"])
    assert first.exit_code == 0, first.output
    assert "back-muscles:" in first.output and "cards added" in first.output
    before = snapshot(app)
    assert len(before[2]) > 50
    second = runner.invoke(args=["init"])
    assert second.exit_code == 0, second.output
    assert "back-muscles: up to date" in second.output
    assert snapshot(app) == before


def test_a_broken_deck_is_refused_with_its_line_and_changes_nothing(app, runner, tmp_path):
    assert runner.invoke(args=["init"]).exit_code == 0
    before = snapshot(app)
    good = write_deck(tmp_path)
    broken = write_deck(tmp_path, with_lines(PLANETS, "  - relation: kind", "  - relation: colour")
                        .replace("planets", "moons"), name="broken.yaml")
    result = runner.invoke(args=["deck", "build", str(good), str(broken)])
    assert result.exit_code == 1
    assert f"{broken}:19: unknown relation 'colour'" in result.output
    assert "Nothing was changed." in result.output
    assert snapshot(app) == before


def test_a_wording_fix_rebuilt_from_the_cli_updates_in_place(app, runner, tmp_path):
    deck = write_deck(tmp_path)
    assert runner.invoke(args=["deck", "build", str(deck)]).exit_code == 0
    write_deck(tmp_path, with_lines(PLANETS, "    object: Ganymede", "    object: Ganymede, the largest moon"))
    result = runner.invoke(args=["deck", "build", str(deck)])
    assert "0 notes added, 1 updated, 0 retired; 0 cards added, 2 updated" in result.output


def test_deck_export_writes_an_apkg(app, runner, tmp_path):
    runner.invoke(args=["deck", "build", str(BUNDLED_DECK)])
    out = tmp_path / "deck.apkg"
    result = runner.invoke(args=["deck", "export", "back-muscles", "-o", str(out)])
    assert result.exit_code == 0, result.output
    with zipfile.ZipFile(out) as archive:
        assert set(archive.namelist()) == {"collection.anki2", "media"}
    missing = runner.invoke(args=["deck", "export", "nope", "-o", str(out)])
    assert missing.exit_code == 1 and "No deck 'nope'. Decks: back-muscles." in missing.output


def test_user_create_makes_teachers_and_students(app, runner):
    assert runner.invoke(args=["user", "create", "--teacher", "mrs-k", "--password", "long enough"]).exit_code == 0
    result = runner.invoke(args=["user", "create", "pupil"], input="long enough\nlong enough\n")
    assert result.exit_code == 0, result.output
    assert runner.invoke(args=["user", "create", "MRS-K", "--password", "long enough"]).exit_code == 1
    short = runner.invoke(args=["user", "create", "other", "--password", "short"])
    assert short.exit_code == 1 and "at least 8 characters" in short.output
    with app.app_context():
        roles = dict(db.session.execute(select(User.username, User.role)).all())
    assert roles == {"mrs-k": "teacher", "pupil": "student"}


def test_serve_prints_the_addresses_and_every_class_code(app, runner, monkeypatch):
    from flashapp.accounts import register_user
    from flashapp.classroom import create_classroom

    with app.app_context():
        teacher = register_user(db.session, username="mrs-k", password="long enough", role="teacher",
                                password_method=FAST_HASH_METHOD)
        codes = [create_classroom(db.session, teacher=teacher, name=name).join_code for name in ("Year 10", "Year 11")]
        db.session.commit()
    served = {}
    # Everything up to the blocking call is real; the server itself is not started here.
    monkeypatch.setattr("flashapp.serving.serve", lambda wsgi_app, **options: served.update(options))
    monkeypatch.setattr("flashapp.cli.start_daily_backups", lambda app: served.setdefault("backups", True))
    monkeypatch.setattr("flashapp.cli.start_personal_fits", lambda app: served.setdefault("fits", True))
    monkeypatch.setattr("flashapp.network.lan_addresses", lambda: ["192.168.1.20"])
    result = runner.invoke(args=["serve", "--host", "0.0.0.0", "--port", "8080"])
    assert result.exit_code == 0, result.output
    assert "Open http://192.168.1.20:8080/ in a browser." in result.output
    assert f"Class Year 10: join code {codes[0]}" in result.output
    assert f"Class Year 11: join code {codes[1]}" in result.output
    assert served["host"] == "0.0.0.0" and served["port"] == 8080 and served["threads"] == 4
    assert served["connection_limit"] == 1000 and served["backups"] is True
    # The pages learn where the server listens from the app, not from its configuration.
    assert app.extensions["flashapp.listening"] == Listening("0.0.0.0", 8080) and "SERVE_HOST" not in app.config


def test_a_command_meeting_a_held_database_says_busy_and_changes_nothing(app, runner, database_url):
    if not database_url.startswith("sqlite"):
        pytest.skip("the write lock is SQLite's")
    with app.app_context():
        write_gate(db.engine).wait_seconds = 0.2
    holder = make_engine(database_url)
    with holder.begin():  # BEGIN IMMEDIATE: another program holds the write lock
        result = runner.invoke(args=["user", "create", "grace", "--password", "long enough password"])
    holder.dispose()
    assert result.exit_code == 1
    assert "Error: Not saved: the write lock stayed taken for over 0.2 s" in result.output
    assert "Nothing was changed" in result.output and "Traceback" not in result.output
    with app.app_context():
        assert db.session.scalar(select(User).where(User.username == "grace")) is None
