"""`flashapp fit-parameters`: fits a revlog export with fsrs-rs-python and scores it against the defaults."""

from __future__ import annotations

import csv
import random

import fsrs_rs_python as fsrs_rs

from flashapp.stats import REVLOG_COLUMNS

DAY_MS = 86_400_000
START_MS = 1_767_600_000_000  # 2026-01-05, 08:00 UTC


def write_revlog(path, *, cards: int, reviews: int = 8, seed: int = 1) -> None:
    """A revlog in the export's layout: each card reviewed on the days a true FSRS model lets it be recalled."""
    rng = random.Random(seed)
    truth = fsrs_rs.FSRS([0.1, 0.6, 1.2, 4.0, *list(fsrs_rs.DEFAULT_PARAMETERS)[4:20], 0.4])
    with path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(REVLOG_COLUMNS)
        for card in range(1, cards + 1):
            day, memory = rng.randint(0, 30), None
            for number in range(reviews):
                if memory is None:
                    rating = rng.choice([1, 2, 3, 3, 3, 4])
                else:
                    elapsed = max(1, round(memory.stability * rng.uniform(0.5, 2.0)))
                    day += elapsed
                    recalled = rng.random() < (1 + (0.9 ** (1 / -0.4) - 1) * elapsed / memory.stability) ** -0.4
                    rating = rng.choice([2, 3, 3, 3, 4]) if recalled else 1
                states = truth.next_states(memory, 0.9, 0 if memory is None else elapsed)
                memory = (states.again, states.hard, states.good, states.easy)[rating - 1].memory
                writer.writerow([1_000_000_000 + card, START_MS + day * DAY_MS + rng.randint(0, 10 * 3600_000),
                                 rating, 0 if number == 0 else 2, 5000, "Europe/Berlin", 4, "ann", card])


def test_fit_parameters_prints_the_parameters_and_both_scores(runner, tmp_path):
    path = tmp_path / "class-1-revlog.csv"
    write_revlog(path, cards=400)
    result = runner.invoke(args=["fit-parameters", str(path)])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].startswith("3200 reviews: fitted on the oldest ")
    assert lines[1].startswith("Default parameters: log loss ") and lines[2].startswith("Fitted parameters:  log loss")
    assert len(lines[3].removeprefix("Parameters: ").split(", ")) == 21


def test_fit_parameters_refuses_a_history_too_short_to_score(runner, tmp_path):
    path = tmp_path / "first-answers-only.csv"
    write_revlog(path, cards=30, reviews=1)
    result = runner.invoke(args=["fit-parameters", str(path)])
    assert result.exit_code == 1 and "too few to fit and score parameters" in result.output
