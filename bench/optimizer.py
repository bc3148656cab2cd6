"""Benchmark: fitting one student's FSRS parameters (fsrs-rs-python), its time and peak memory.

A simulated student answers a growing pile of cards day after day; each rating is drawn
from a known "true" memory model (FSRS with parameters unlike the defaults), elapsed time in
whole study days. The history is then fitted as `flashapp optimize` fits it (oldest 70 %
fitted, newest 30 % scored), at 10,000 and 100,000 reviews:

    .venv/bin/python bench/optimizer.py
    .venv/bin/python bench/optimizer.py --threshold   # where the fit stops returning the defaults

Time is wall-clock; peak memory is the process's peak RSS growth during the fit (the Rust
optimizer's memory is not on the Python heap), measured in a fresh child process per size.
"""

from __future__ import annotations

import argparse
import multiprocessing
import random
import resource
import time
from datetime import datetime, timedelta, timezone

import fsrs_rs_python as fsrs_rs

from flashapp.fitting import RevlogReview
from flashapp.personal import fit_candidate

TRUE_PARAMETERS = list(fsrs_rs.DEFAULT_PARAMETERS)
TRUE_PARAMETERS[0:4] = [0.1, 0.6, 1.2, 4.0]
TRUE_PARAMETERS[8] = 1.2
TRUE_PARAMETERS[20] = 0.4
START = datetime(2026, 1, 5, 9, tzinfo=timezone.utc)


def simulated_history(reviews: int, *, seed: int = 7, new_per_day: int = 20) -> list[RevlogReview]:
    """About `reviews` answers of one student who studies every day (UTC, day starting at 04:00)."""
    rng = random.Random(seed)
    truth = fsrs_rs.FSRS(TRUE_PARAMETERS)
    decay = -TRUE_PARAMETERS[20]
    factor = 0.9 ** (1 / decay) - 1
    memory: dict[int, fsrs_rs.MemoryState] = {}
    last: dict[int, int] = {}
    due: dict[int, int] = {}
    history: list[RevlogReview] = []
    day = 0
    while len(history) < reviews:
        todays = [card for card, when in due.items() if when <= day]
        todays += range(len(memory), len(memory) + new_per_day)
        for number, card in enumerate(todays):
            at = START + timedelta(days=day, seconds=20 * number)
            if card in memory:
                elapsed = day - last[card]
                recall = (1 + factor * elapsed / memory[card].stability) ** decay
                rating = rng.choices((2, 3, 4), (15, 75, 10))[0] if rng.random() < recall else 1
                states = truth.next_states(memory[card], 0.9, elapsed)
            else:
                rating = rng.choices((1, 2, 3, 4), (25, 10, 55, 10))[0]
                states = truth.next_states(None, 0.9, 0)
            after = (states.again, states.hard, states.good, states.easy)[rating - 1]
            memory[card], last[card] = after.memory, day
            due[card] = day + max(1, round(after.interval))
            history.append(RevlogReview(card, int(at.timestamp() * 1000), rating, "UTC", 4))
        day += 1
    return history[:reviews]


def _fit(size: int, queue: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    history = simulated_history(size)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.perf_counter()
    candidate = fit_candidate(history, None)
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    assert candidate is not None
    queue.put((seconds, (peak - before) / 1024, peak / 1024, candidate.current.log_loss, candidate.fitted.log_loss))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threshold", action="store_true")
    parser.add_argument("--size", type=int, action="append")
    arguments = parser.parse_args()
    if arguments.threshold:
        for size in (50, 100, 150, 200, 300, 400, 600, 800, 1000):
            candidate = fit_candidate(simulated_history(size), None)
            if candidate is None:
                print(f"{size:>6} reviews: too few to split")
                continue
            same = candidate.parameters == [float(w) for w in fsrs_rs.DEFAULT_PARAMETERS]
            print(f"{size:>6} reviews: {candidate.trained_on} answers to fit on, "
                  f"{'the defaults back' if same else 'fitted'}; log loss {candidate.current.log_loss:.4f} "
                  f"(defaults) vs {candidate.fitted.log_loss:.4f}, better: {candidate.better}")
        return
    for size in arguments.size or (10_000, 100_000):
        queue: multiprocessing.Queue = multiprocessing.Queue()  # type: ignore[type-arg]
        child = multiprocessing.get_context("fork").Process(target=_fit, args=(size, queue))
        child.start()
        seconds, grown, peak, default_loss, fitted_loss = queue.get()
        child.join()
        print(f"{size:>7,} reviews: fit {seconds:6.2f} s, peak RSS +{grown:7.1f} MiB (process peak {peak:7.1f} MiB); "
              f"log loss on the newest 30 %: defaults {default_loss:.4f}, fitted {fitted_loss:.4f}")


if __name__ == "__main__":
    main()
