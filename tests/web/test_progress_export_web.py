"""The student's "Export to Anki with my progress" link: their own progress, never anyone else's."""

from __future__ import annotations

import io
import sqlite3
import zipfile

from tests.helpers import STUDY, AuthActions, answer, showing

PROGRESS = "/decks/back-muscles/my-progress.apkg"


def study(client, answers: int) -> None:
    for _ in range(answers):
        answer(client, showing(client.get(STUDY).get_data(as_text=True)), "3")


def package_contents(data: bytes, tmp_path, name: str) -> tuple[int, int]:
    """How many review-log rows and how many studied cards an .apkg holds."""
    path = tmp_path / f"{name}.anki2"
    path.write_bytes(zipfile.ZipFile(io.BytesIO(data)).read("collection.anki2"))
    connection = sqlite3.connect(path)
    try:
        return (connection.execute("SELECT count() FROM revlog").fetchone()[0],
                connection.execute("SELECT count() FROM cards WHERE type != 0").fetchone()[0])
    finally:
        connection.close()


def test_a_student_downloads_their_own_progress(built_app, client, tmp_path):
    AuthActions(client).register("mrs-k")  # the first account is the teacher's
    AuthActions(client).logout()
    AuthActions(client).register("ada")
    home = client.get("/").get_data(as_text=True)
    assert "with my progress" not in home, "nothing to take before the first answer"
    study(client, 3)
    home = client.get("/").get_data(as_text=True)
    assert f'<a href="{PROGRESS}" download>Export to Anki with my progress</a>' in home
    response = client.get(PROGRESS)
    assert response.status_code == 200
    assert response.headers["Content-Disposition"].startswith("attachment; filename=back-muscles-ada-")
    assert response.headers["Cache-Control"] == "no-store"
    assert package_contents(response.data, tmp_path, "ada") == (3, 3)

    # Another student gets their own: none of ada's answers.
    AuthActions(client).logout()
    AuthActions(client).register("bea")
    study(client, 1)
    assert package_contents(client.get(PROGRESS).data, tmp_path, "bea") == (1, 1)

    # The teacher gets their own progress too (none), never a student's: there is no way to name one.
    AuthActions(client).logout()
    AuthActions(client).login("mrs-k")
    assert package_contents(client.get(PROGRESS).data, tmp_path, "mrs-k") == (0, 0)
    assert client.get(PROGRESS + "?user=ada").status_code == 200
    assert package_contents(client.get(PROGRESS + "?user=ada").data, tmp_path, "again") == (0, 0)


def test_an_unknown_deck_is_not_found_and_a_visitor_must_log_in(built_app, client):
    assert client.get(PROGRESS).status_code == 302
    AuthActions(client).register("ada")
    response = client.get("/decks/no-such-deck/my-progress.apkg")
    assert response.status_code == 404
    assert "No deck" in response.get_data(as_text=True)


def test_the_account_page_lists_personal_parameters_for_anki(built_app, client):
    import json
    from datetime import datetime, timezone

    from flashapp import db
    from flashapp.accounts import find_user
    from flashapp.models import PersonalParameters
    from tests.helpers import true_parameters

    AuthActions(client).register("mrs-k")
    AuthActions(client).logout()
    AuthActions(client).register("ada")
    assert "fsrs-parameters" not in client.get("/account").get_data(as_text=True)
    stamp = datetime(2026, 3, 2, tzinfo=timezone.utc)
    with built_app.app_context():
        db.session.add(PersonalParameters(
            user_id=find_user(db.session(), "ada").id, parameters=json.dumps(true_parameters()), fitted_at=stamp,
            review_count=812, log_loss_before=0.47, rmse_before=0.09, log_loss_after=0.45, rmse_after=0.07,
            tried_at=stamp, tried_review_count=812, tried_outcome="kept"))
        db.session.commit()
    page = client.get("/account").get_data(as_text=True)
    listed = ", ".join(str(round(w, 4)) for w in true_parameters())
    assert f'<code class="fsrs-parameters">{listed}</code>' in page
