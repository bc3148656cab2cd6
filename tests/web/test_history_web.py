"""The student's history page: grouped by day with the day's totals, the answer text, a deck filter."""

from __future__ import annotations

import re

import pytest

from tests.helpers import STUDY, AuthActions, answer, build_decks_in, showing, write_deck


@pytest.fixture
def two_decks(built_app, client, tmp_path):
    build_decks_in(built_app, [write_deck(tmp_path)])  # the planets deck, beside the bundled one
    AuthActions(client).register("ada")
    return client


def study_one(client, url: str, rating: str, *, slug: str) -> tuple[str, str]:
    """Answer the next card of a deck; its question and answer."""
    page = client.get(url).get_data(as_text=True)
    question = re.search(r'<h1 class="question">([^<]+)</h1>', page).group(1)
    shown = re.search(r'<p class="answer" id="answer">([^<]+)</p>', page).group(1)
    answer(client, showing(page), rating, slug=slug)
    return question, shown


def test_history_is_grouped_by_day_with_totals_and_shows_each_answer(two_decks):
    client = two_decks
    muscle = study_one(client, STUDY, "1", slug="back-muscles")
    study_one(client, STUDY, "3", slug="back-muscles")
    planet = study_one(client, "/study/planets", "4", slug="planets")
    page = client.get("/history").get_data(as_text=True)
    days = re.findall(r'<section class="history-day"', page)
    assert len(days) == 1
    heading = re.search(r'<h2 class="day-head"[^>]*>([^<]+)<span class="day-totals">([^<]+)</span>', page)
    assert heading.group(2) == "3 answers · 67% correct"
    date = heading.group(1).strip()
    assert page.count(date) == 1, "the date is written once, for its day, not on every row"
    assert len(re.findall(r"<time datetime=\"[^\"]+\">\d\d:\d\d</time>", page)) == 3
    assert f'{muscle[0]}<span class="card-answer">{muscle[1]}</span>' in page
    assert f'{planet[0]}<span class="card-answer">{planet[1]}</span>' in page


def test_history_can_show_one_deck(two_decks):
    client = two_decks
    muscle = study_one(client, STUDY, "1", slug="back-muscles")
    planet = study_one(client, "/study/planets", "4", slug="planets")
    page = client.get("/history?deck=planets").get_data(as_text=True)
    assert '<option value="planets" selected>' in page
    assert planet[0] in page and muscle[0] not in page
    assert "1 answer · 100% correct" in page
    everything = client.get("/history").get_data(as_text=True)
    assert planet[0] in everything and muscle[0] in everything
    assert client.get("/history?deck=no-such-deck").status_code == 404


def test_the_pages_of_one_deck_keep_the_filter(two_decks, built_app):
    built_app.config["HISTORY_PAGE_SIZE"] = 1
    client = two_decks
    for _ in range(2):
        study_one(client, "/study/planets", "4", slug="planets")
    page = client.get("/history?deck=planets").get_data(as_text=True)
    assert re.search(r'href="/history\?(deck=planets&amp;page=2|page=2&amp;deck=planets)"', page)
    # A day split over two pages shows the whole day's totals on each.
    assert "2 answers · 100% correct" in page
