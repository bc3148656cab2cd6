"""`flashapp progress import USER FILE`: reviews back from an Anki export, from the command line."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import func, select

from flashapp import db
from flashapp.anki_export import export_anki_package
from flashapp.models import Deck, ReviewLog, ReviewOrigin
from tests.anki_study import export, import_package, new_collection, study
from tests.helpers import build_decks_in, write_deck


@pytest.fixture
def planets_from_anki(app, runner, tmp_path):
    """The planets deck built, a student 'pupil', and a package of it studied in Anki; (path, answers)."""
    build_decks_in(app, [write_deck(tmp_path)])
    assert runner.invoke(args=["user", "create", "pupil", "--password", "long enough"]).exit_code == 0
    with app.app_context():
        deck = db.session.scalar(select(Deck).where(Deck.slug == "planets"))
        export_anki_package(db.session, deck_id=deck.id, out=tmp_path / "planets.apkg")
        db.session.remove()
    col = new_collection(tmp_path / "anki")
    import_package(col, tmp_path / "planets.apkg")
    answers = study(col, "Planets", start=datetime.now(timezone.utc) - timedelta(days=6), days=4, seed=9)
    package, col = export(col, tmp_path, "colpkg")
    col.close()
    return package, answers


def reviews(app) -> list[tuple]:
    with app.app_context():
        rows = db.session.execute(select(ReviewLog.origin, func.count()).group_by(ReviewLog.origin)).all()
        db.session.remove()
    return [tuple(row) for row in rows]


def test_progress_import_adds_the_reviews_once(app, runner, planets_from_anki):
    package, answers = planets_from_anki
    result = runner.invoke(args=["progress", "import", "pupil", str(package)])
    assert result.exit_code == 0, result.output
    assert result.output.startswith(f"pupil: Added {answers} reviews from Anki")
    assert reviews(app) == [(ReviewOrigin.ANKI, answers)]
    again = runner.invoke(args=["progress", "import", "PUPIL", str(package)])
    assert again.exit_code == 0 and "No new reviews" in again.output
    assert reviews(app) == [(ReviewOrigin.ANKI, answers)]


def test_progress_import_refuses_with_a_reason_and_changes_nothing(app, runner, planets_from_anki, tmp_path):
    package, _ = planets_from_anki
    notes = tmp_path / "notes.apkg"
    notes.write_text("not a package")
    refused = runner.invoke(args=["progress", "import", "pupil", str(notes)])
    assert refused.exit_code == 1
    assert "This file is not an Anki export." in refused.output and "Nothing was changed." in refused.output
    nobody = runner.invoke(args=["progress", "import", "nobody", str(package)])
    assert nobody.exit_code == 1 and "There is no account 'nobody'" in nobody.output
    assert reviews(app) == []
