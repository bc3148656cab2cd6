"""No CSV the app writes hands a spreadsheet a formula: every download, every file in data.zip.

Class names, usernames and card text that start with = + - @ (or hold a semicolon before one)
are written so that a spreadsheet shows them as text; numbers stay numbers.
"""

from __future__ import annotations

import csv
import io
import re
import zipfile

import pytest

from flashapp import db
from flashapp.models import Classroom
from tests.helpers import AuthActions, build_decks_in, create_class, csrf_token, deck_text, showing, write_deck

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
CLASS_NAMES = ['=HYPERLINK("http://example.test/?leak","open me")', "+SUM(1+1)", "@SUM(A1)", "Biology;=1+1"]
STUDENT = "-2-3"
TEACHER = "-mrs-k"
SUBJECTS = {"link": '=HYPERLINK("http://example.test/","x")', "sum": "+SUM(1+1)", "at": "@SUM(A1)",
            "minus": "-2+3", "tab": "a\t=1+1", "semicolon": "a;=1+1", "plain": "plain text"}
# Every CSV download of the app; a new one must join this list (and so this test).
DOWNLOADS = ["/account/data.zip", "/history.csv", "/teach/classes/<int:class_id>/progress.csv",
             "/teach/classes/<int:class_id>/revlog.csv"]


def hostile_deck() -> str:
    return deck_text(slug="hostile", title="Hostile", source="test", sections={"main": "Main"},
                     relations={"general": {"forward": "{subject}"}},
                     facts=[{"relation": "general", "id": key, "subject": subject,
                             "object": f"answer {key}", "section": "main"}
                            for key, subject in SUBJECTS.items()])


@pytest.fixture
def downloads(app, tmp_path) -> dict[str, str]:
    """Every CSV the app writes, by name, after a student with a formula for a name studied formula cards."""
    build_decks_in(app, [write_deck(tmp_path, hostile_deck(), name="hostile.yaml")])
    teacher = app.test_client()
    AuthActions(teacher).register(TEACHER)
    class_ids = [create_class(teacher, name) for name in CLASS_NAMES]
    with app.app_context():
        codes = [db.session.get(Classroom, class_id).join_code for class_id in class_ids]
    student = app.test_client()
    AuthActions(student).register(STUDENT, class_code=codes[0])
    for code in codes[1:]:
        token = csrf_token(student.get("/join").get_data(as_text=True))
        assert student.post("/join", data={"code": code, "csrf_token": token}).status_code == 302
    for _ in SUBJECTS:
        fields = showing(student.get("/study/hostile").get_data(as_text=True))
        assert student.post("/study/hostile/answer", data={**fields, "rating": "1"}).status_code in (200, 302, 303)

    rules = sorted(rule.rule for rule in app.url_map.iter_rules() if rule.rule.endswith((".csv", ".zip")))
    assert rules == sorted(DOWNLOADS)
    files = {"history.csv": student.get("/history.csv").get_data(as_text=True)}
    with zipfile.ZipFile(io.BytesIO(student.get("/account/data.zip").data)) as archive:
        for name in archive.namelist():
            files[f"data.zip/{name}"] = archive.read(name).decode("utf-8")
    files["progress.csv"] = teacher.get(f"/teach/classes/{class_ids[0]}/progress.csv").get_data(as_text=True)
    files["revlog.csv"] = teacher.get(f"/teach/classes/{class_ids[0]}/revlog.csv").get_data(as_text=True)
    assert sorted(files) == ["data.zip/account.csv", "data.zip/card_states.csv", "data.zip/classes.csv",
                             "data.zip/reviews.csv", "history.csv", "progress.csv", "revlog.csv"]
    return files


def cells(text: str) -> list[str]:
    return [cell for row in csv.reader(io.StringIO(text, newline="")) for cell in row]


def is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


def test_no_cell_of_any_csv_starts_a_formula(downloads):
    for name, text in downloads.items():
        risky = [cell for cell in cells(text) if cell.startswith(FORMULA_STARTS) and not is_number(cell)]
        assert risky == [], name


def test_names_and_card_text_come_back_as_text_behind_a_single_quote(downloads):
    questions = {"'" + subject if subject.startswith(FORMULA_STARTS) else subject for subject in SUBJECTS.values()}
    expected = {
        "data.zip/account.csv": {"'" + STUDENT},
        "data.zip/classes.csv": {"'" + name if name.startswith(FORMULA_STARTS) else name for name in CLASS_NAMES}
                                | {"'" + TEACHER},
        "data.zip/reviews.csv": questions,
        "data.zip/card_states.csv": questions,
        "history.csv": questions,
        "progress.csv": {"'" + STUDENT},
        "revlog.csv": {"'" + STUDENT},
    }
    for name, wanted in expected.items():
        assert wanted <= set(cells(downloads[name])), name


def test_a_class_name_with_a_semicolon_is_quoted_so_a_semicolon_reader_keeps_it_whole(downloads):
    # Spreadsheets in many locales split CSV lines on semicolons: "Biology;=1+1" must stay one cell.
    text = downloads["data.zip/classes.csv"]
    assert '"Biology;=1+1"' in text
    for delimiter in (";", "\t"):
        read = [cell for row in csv.reader(io.StringIO(text, newline=""), delimiter=delimiter) for cell in row]
        assert not [cell for cell in read if cell.startswith(FORMULA_STARTS)], delimiter


def test_numbers_stay_numbers(downloads):
    revlog = list(csv.reader(io.StringIO(downloads["revlog.csv"], newline="")))
    assert len(revlog) == 1 + len(SUBJECTS)
    assert all(row[:5] == [str(int(cell)) for cell in row[:5]] for row in revlog[1:])
    # The rows with a formula-like name quote their text, never their numbers.
    # Columns: card_id, review_time, review_rating, review_state, review_duration, timezone,
    # next_day_starts_at, user, deck_card_id.
    assert all(re.fullmatch(r'(\d+,){5}"[^"]+",\d+,"\'-2-3",\d+', line)
               for line in downloads["revlog.csv"].splitlines()[1:])
