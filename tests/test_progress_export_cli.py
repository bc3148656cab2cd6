"""`flashapp progress export USER SLUG -o FILE`: a student's progress as an Anki package, and clear refusals."""

from __future__ import annotations

import sqlite3
import zipfile
from datetime import date

from flashapp import db
from flashapp.accounts import find_user
from tests.helpers import BUNDLED_DECK, AuthActions, study_every_evening


def test_progress_export_writes_the_students_progress(app, runner, client, tmp_path):
    assert runner.invoke(args=["deck", "build", str(BUNDLED_DECK)]).exit_code == 0
    AuthActions(client).register("mrs-k")
    AuthActions(client).logout()
    AuthActions(client).register("ada", time_zone="Asia/Tokyo")
    with app.app_context():
        session = db.session()
        ada = find_user(session, "ada")
        answers = study_every_evening(session, app.extensions["flashapp.scheduler"], user_id=ada.id,
                                      slug="back-muscles", time_zone="Asia/Tokyo", first_day=date(2026, 3, 2), days=4,
                                      seed=3)
        db.session.remove()

    out = tmp_path / "ada.apkg"
    result = runner.invoke(args=["progress", "export", "ada", "back-muscles", "-o", str(out)])
    assert result.exit_code == 0, result.output
    inside = tmp_path / "inside.anki2"
    inside.write_bytes(zipfile.ZipFile(out).read("collection.anki2"))
    connection = sqlite3.connect(inside)
    try:
        reviews = connection.execute("SELECT count() FROM revlog").fetchone()[0]
        studied = connection.execute("SELECT count() FROM cards WHERE type != 0").fetchone()[0]
    finally:
        connection.close()
    assert reviews == answers > 0
    assert result.output == f"Wrote {out}: 80 cards, {studied} of them studied by ada, {answers} reviews.\n"


def test_progress_export_names_what_is_wrong_and_writes_nothing(app, runner, client, tmp_path):
    assert runner.invoke(args=["deck", "build", str(BUNDLED_DECK)]).exit_code == 0
    AuthActions(client).register("mrs-k")
    out = tmp_path / "out.apkg"
    nobody = runner.invoke(args=["progress", "export", "nobody", "back-muscles", "-o", str(out)])
    assert nobody.exit_code == 1
    assert "Error: There is no account 'nobody'. Nothing was written." in nobody.output
    no_deck = runner.invoke(args=["progress", "export", "mrs-k", "nope", "-o", str(out)])
    assert no_deck.exit_code == 1
    assert "Error: No deck 'nope'. Decks: back-muscles. Nothing was written." in no_deck.output
    assert not out.exists()
    missing_output = runner.invoke(args=["progress", "export", "mrs-k", "back-muscles"])
    assert missing_output.exit_code == 2 and "Missing option '-o'" in missing_output.output
