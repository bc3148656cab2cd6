"""The study page's counts and progress, the done screen's summary and custom study, the deck list's wording."""

from __future__ import annotations

import re

import pytest

from tests.helpers import NEXT_DAY_START, STUDY, AuthActions, answer, csrf_token, showing


@pytest.fixture
def one_new_a_day(built_app, client):
    built_app.config["NEW_CARDS_PER_DAY"] = 1
    AuthActions(client).register("ada")
    return client


def counts(html: str) -> dict[str, int]:
    """The study page's counts by queue: {'new': 0, 'learning': 1, 'review': 0}."""
    return {queue: int(number) for queue, number in
            re.findall(r'<span class="count (new|learning|review)[^"]*"[^>]*>(\d+) <small>', html)}


def current_count(html: str) -> str:
    found = re.findall(r'<span class="count (\w+) current"[^>]*aria-current="true"', html)
    assert len(found) == 1, found
    return found[0]


def test_a_learning_card_shown_early_is_counted_and_marked_as_the_current_one(one_new_a_day):
    client = one_new_a_day
    first = client.get(STUDY).get_data(as_text=True)
    assert counts(first) == {"new": 1, "learning": 0, "review": 0}
    assert current_count(first) == "new"
    answer(client, showing(first), "3")  # learning, due in 10 minutes: shown early, as nothing else is left
    page = client.get(STUDY).get_data(as_text=True)
    assert '<p class="card-meta">Learning ·' in page
    assert counts(page) == {"new": 0, "learning": 1, "review": 0}
    assert current_count(page) == "learning"
    assert "1 answered today · 1 left" in page


def test_right_after_again_the_card_counts_as_learning(built_app, client):
    AuthActions(client).register("ada")
    answer(client, showing(client.get(STUDY).get_data(as_text=True)), "1")  # due again in a minute
    page = client.get(STUDY).get_data(as_text=True)
    assert counts(page)["learning"] == 1 and counts(page)["new"] == 19
    assert current_count(page) == "new"
    assert "1 answered today" in page


def finish_the_day(client, rating: str = "4") -> str:
    """Answer (Easy) until the deck is done for today; the done page."""
    for _ in range(10):
        page = client.get(STUDY).get_data(as_text=True)
        if "All caught up" in page:
            return page
        answer(client, showing(page), rating)
    raise AssertionError("the deck never ran out of cards")


def test_the_done_screen_sums_up_the_day_and_gives_one_next_time(one_new_a_day):
    client = one_new_a_day
    answer(client, showing(client.get(STUDY).get_data(as_text=True)), "1")
    done = finish_the_day(client)
    summary = re.search(r'<dl class="summary" id="summary">(.*?)</dl>', done, re.S)
    assert summary, done
    facts = dict(re.findall(r"<dt>([^<]+)</dt><dd>([^<]+)</dd>", summary.group(1)))
    assert facts["Cards studied"] == "1" and facts["Answers"] == "2"
    assert facts["Correct"] == "50%" and facts["Streak"] == "1 day"
    assert "Time spent" in facts
    # One time for the next cards, never two that disagree.
    assert len(re.findall(r"\b(?:today|tomorrow) at \d\d:\d\d|in \d+ minutes?", done)) == 1
    # New cards open with the next study day, at 04:00: later today when the test runs after midnight, and in
    # minutes (or now) when it runs in the hour before (the page reads the real clock).
    assert re.search(rf"Next cards <strong>{NEXT_DAY_START}</strong>, with new cards\.", done)
    assert "new cards open" not in done


def test_more_new_cards_today_lets_the_student_go_on(one_new_a_day):
    client = one_new_a_day
    done = finish_the_day(client)
    assert "Study 10 more new cards today" in done
    response = client.post("/study/back-muscles/more-new", data={"csrf_token": csrf_token(done)})
    assert response.status_code == 303
    page = client.get(STUDY).get_data(as_text=True)
    assert "10 more new cards for today." in page
    assert counts(page)["new"] == 10 and current_count(page) == "new"
    # The home page counts them too.
    assert "<b>10</b> new" in client.get("/").get_data(as_text=True)


def test_more_new_cards_without_a_csrf_token_changes_nothing(one_new_a_day):
    client = one_new_a_day
    finish_the_day(client)
    client.post("/study/back-muscles/more-new", data={})
    assert "All caught up" in client.get(STUDY).get_data(as_text=True)


def review_rows(app) -> int:
    from sqlalchemy import func, select

    from flashapp import db
    from flashapp.models import ReviewAhead, ReviewLog

    with app.app_context():
        return (db.session.scalar(select(func.count(ReviewLog.id))) or 0,
                db.session.scalar(select(func.count(ReviewAhead.id))) or 0)


def as_if_a_day_ago(app) -> None:
    """Move every answer and card state a day back, as if the day's study had been done yesterday."""
    from datetime import timedelta

    from sqlalchemy import select

    from flashapp import db
    from flashapp.models import CardState, ReviewLog

    with app.app_context():
        day = timedelta(days=1)
        for review in db.session.scalars(select(ReviewLog)):
            review.reviewed_at, review.due = review.reviewed_at - day, review.due - day
        for state in db.session.scalars(select(CardState)):
            state.last_review, state.due = state.last_review - day, state.due - day
        db.session.commit()


def test_review_ahead_opens_the_next_days_reviews_today(built_app, one_new_a_day):
    client = one_new_a_day
    # Yesterday: Good, Good: the day's one new card graduated, due in a few days. Today: one new card, Easy.
    first_day = finish_the_day(client, "3")
    assert "Review ahead" not in first_day  # the only review card was answered today: buried until tomorrow
    as_if_a_day_ago(built_app)
    done = finish_the_day(client, "4")
    assert '<label for="ahead-days">Review ahead</label>' in done
    assert '<option value="7">cards due in the next 7 days (1)</option>' in done
    answers_before = review_rows(built_app)[0]
    response = client.post("/study/back-muscles/ahead", data={"csrf_token": csrf_token(done), "days": "7"})
    assert response.status_code == 303
    page = client.get(STUDY).get_data(as_text=True)
    assert "1 card due in the next 7 days is open to review now." in page
    assert "Reviewing ahead" in page
    assert counts(page)["review"] == 1 and current_count(page) == "review"
    answer(client, showing(page), "3")
    after = client.get(STUDY).get_data(as_text=True)
    assert "All caught up" in after and review_rows(built_app) == (answers_before + 1, 1)


@pytest.mark.parametrize(("days", "message"), [("2", "Not a valid choice"), ("many", "could not coerce"),
                                           ("1", "No cards of this deck fall due in the next 1 day.")])
def test_review_ahead_refuses_a_choice_not_offered_and_changes_nothing(built_app, one_new_a_day, days, message):
    client = one_new_a_day
    finish_the_day(client, "4")  # Easy: due in about a week, not tomorrow
    as_if_a_day_ago(built_app)
    done = finish_the_day(client, "4")
    assert '<option value="1" disabled>cards due in the next 1 day (0)</option>' in done
    before = review_rows(built_app)
    response = client.post("/study/back-muscles/ahead", data={"csrf_token": csrf_token(done), "days": days})
    assert response.status_code == 400 and message in response.get_data(as_text=True)
    assert client.post("/study/back-muscles/ahead", data={"days": "7"}).status_code == 400  # no CSRF token
    assert review_rows(built_app) == before
    assert "All caught up" in client.get(STUDY).get_data(as_text=True)


def test_the_deck_list_offers_actions_and_keeps_the_anki_export_aside(one_new_a_day):
    client = one_new_a_day
    home = client.get("/").get_data(as_text=True)
    assert "Anki .apkg" not in home
    actions = re.search(r'<div class="deck-actions">(.*?)</div>', home, re.S).group(1)
    assert "Study" in actions and "apkg" not in actions
    assert re.search(r'href="/decks/back-muscles.apkg"[^>]*>Export to Anki</a>', home)
    assert "Anki, the flashcard app" in home
    finish_the_day(client)
    home = client.get("/").get_data(as_text=True)
    assert "Done for now" not in home
    actions = re.search(r'<div class="deck-actions">(.*?)</div>', home, re.S).group(1)
    assert ">Review today's work</a>" in actions
    assert "Done for today" in home


def test_a_facts_other_cards_wait_for_the_next_study_day(built_app, client, tmp_path):
    from tests.helpers import build_decks_in, write_deck

    build_decks_in(built_app, [write_deck(tmp_path)])  # planets: Jupiter's moon both ways, Mars and the rocky planets
    AuthActions(client).register("ada")
    seen = []
    for _ in range(4):
        page = client.get("/study/planets").get_data(as_text=True)
        if "All caught up" in page:
            break
        seen.append(re.search(r'<h1 class="question">([^<]+)</h1>', page).group(1))
        answer(client, showing(page), "4", slug="planets")
    assert seen == ["What is the largest moon of Jupiter?", "What kind of planet is Mars?"]
    home = client.get("/").get_data(as_text=True)
    planets = re.search(r'<h2><a href="/study/planets">.*?</li>', home, re.S)
    assert "<b>0</b> new" in planets.group(0) and "Done for today" in planets.group(0)
