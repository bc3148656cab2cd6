"""`flashapp serve`, with the CPU each request's thread spends on it counted by kind of request.

Started by `bench/load.py --request-cpu` in place of `flashapp serve` (same arguments). Around the work of
each request in a waitress thread (the app, and writing its response into the connection's buffer) it
takes the thread's own CPU time, user and kernel, its voluntary context switches and the wall time, and
adds them up per kind: method and path, a deck's slug replaced by `<slug>`. The totals go to the JSON
file named by FLASHAPP_BENCH_REQUEST_CPU every 200 requests and when the server is stopped (SIGTERM).

What it tells that the process's CPU does not: the app's own cost of each kind of request under the
load, apart from waitress's main thread (polling and sending), and from the other processes of the
machine. Linux only (`RUSAGE_THREAD`).
"""

from __future__ import annotations

import json
import os
import re
import resource
import signal
import sys
import threading
import time
from collections import defaultdict
from typing import Any

import waitress.task

OUT = os.environ["FLASHAPP_BENCH_REQUEST_CPU"]
FIELDS = ("requests", "cpu_seconds", "system_seconds", "wall_seconds", "voluntary_switches")

_totals: defaultdict[str, list[float]] = defaultdict(lambda: [0.0] * len(FIELDS))
_guard = threading.Lock()
_writing = threading.Lock()  # one dump at a time: two threads would write the same part file
_counted = [0]


def kind(method: str, path: str) -> str:
    """The kind of a request: its method and path, a deck's slug in a study path replaced by `<slug>`."""
    return f"{method} {re.sub(r'^/study/[^/]+', '/study/<slug>', path)}"


def dump() -> None:
    with _writing:
        with _guard:
            totals = {name: dict(zip(FIELDS, values, strict=True)) for name, values in _totals.items()}
        with open(OUT + ".part", "w") as handle:
            json.dump(totals, handle)
        os.replace(OUT + ".part", OUT)


_execute = waitress.task.WSGITask.execute


def execute(self: Any) -> None:
    before = resource.getrusage(resource.RUSAGE_THREAD)
    cpu, wall = time.thread_time(), time.perf_counter()
    try:
        _execute(self)
    finally:
        cpu, wall = time.thread_time() - cpu, time.perf_counter() - wall
        after = resource.getrusage(resource.RUSAGE_THREAD)
        name = kind(self.request.command, self.request.path)
        with _guard:
            values = _totals[name]
            for index, value in enumerate((1, cpu, after.ru_stime - before.ru_stime, wall,
                                           after.ru_nvcsw - before.ru_nvcsw)):
                values[index] += value
            _counted[0] += 1
            due = _counted[0] % 200 == 0
        if due:
            dump()


def _stopped(_signal: int, _frame: object) -> None:
    dump()
    sys.exit(0)


if __name__ == "__main__":
    waitress.task.WSGITask.execute = execute  # type: ignore[method-assign]
    signal.signal(signal.SIGTERM, _stopped)
    from flashapp.cli import main

    sys.argv[0] = "flashapp"
    main()
