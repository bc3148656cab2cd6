"""Benchmark: the study cycle against /healthz in instructions, counted by valgrind's callgrind.

A count of instructions does not move with the machine's load, as seconds do on a shared machine.
Each measurement is one process on the Flask test client (no server): set up an install with a
generated deck and a few students, warm up, then run N rounds of either nothing, a study cycle per
student (GET the study page, POST the answer) or a `/healthz` per student. The setup is the same in
all three, so the differences give the instructions of one cycle and of one `/healthz`, and their
ratio is the in-process counterpart of `bench/load.py --mode saturation` (a zero-cost app: 0.5). The
study pages run on a clock of the bench's own, moved on as a student flat out in saturation moves it on,
so that the cards studied, and the count, do not depend on how slowly valgrind runs.

    .venv/bin/python bench/instructions.py                       # this checkout
    .venv/bin/python bench/instructions.py --against ../old      # and another checkout, in the same run
    .venv/bin/python bench/instructions.py --server              # a real `flashapp serve`, 8 students at once
    .venv/bin/python bench/instructions.py --warm-up 120         # after 120 answers each, as late in saturation

`--server` counts the instructions of a real server instead: `flashapp serve` (waitress, four threads)
under callgrind, with the students' requests sent over HTTP by as many client threads, at once. Its
counts include waitress and the work of students answering at the same moment (their answers share a
commit), which the test client leaves out. Collection is zeroed and dumped around each phase with
`callgrind_control`, so the set-up and the warm-up are not counted. The server runs on the real clock.

Needs valgrind (Debian's package). Takes a few minutes: Python runs some fifty times slower under it.
"""

from __future__ import annotations

import argparse
import atexit
import glob
import http.client
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

from load import FIELDS, PASSWORD, RATING_WEIGHTS, SLUG, Connection, bench_deck, field_value, free_port  # noqa: E402

STUDENTS = 8
WARM_UP_ROUNDS = 5
# How far a page or an answer moves the study pages' clock on: 32 students flat out make about 140 cycles a second.
STEP = timedelta(milliseconds=115)


def run(mode: str, rounds: int, warm_up: int = WARM_UP_ROUNDS) -> None:
    """One measured process: set up, `warm_up` rounds, then `rounds` rounds of `mode` (none, cycles or healthz)."""
    from flashapp import create_app, db
    from flashapp.decks import build_decks
    from flashapp.schema import upgrade_database

    tmp = Path(tempfile.mkdtemp())
    atexit.register(shutil.rmtree, tmp, ignore_errors=True)
    deck = tmp / f"{SLUG}.yaml"
    deck.write_text(bench_deck(600))
    app = create_app({"INSTANCE_PATH": str(tmp / "instance"), "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp}/x.sqlite",
                      "SECRET_KEY": "instructions-key-" + "x" * 32, "NEW_CARDS_PER_DAY": 1000000,
                      "PASSWORD_HASH_METHOD": "pbkdf2:sha256:1000"})
    with app.app_context():
        upgrade_database()
        build_decks(db.session(), [deck], now=datetime.now(timezone.utc))
        db.session.remove()
    # `/healthz` checks the whole file again once its last check is ten minutes old: a long run under valgrind
    # would count that check in some of its processes and not in others.
    app.extensions["flashapp.integrity"].every = timedelta(days=365)
    clients = []
    for number in range(STUDENTS):
        client = app.test_client()
        page = client.get("/register").get_data(as_text=True)
        response = client.post("/register", data={"csrf_token": field_value(page, "csrf_token"),
                                                  "username": f"student{number:03d}", "password": PASSWORD,
                                                  "confirm": PASSWORD, "time_zone": "UTC"})
        assert response.status_code == 302, response.status_code
        clients.append(client)
    rng = random.Random(1)
    # The study pages run on a clock of the bench's own, moved on by each page and answer as a student flat out
    # in `load.py --mode saturation` moves on: under valgrind, with the real clock, learning cards fell due
    # during the run as they never do in saturation, and the count depended on how slowly valgrind ran.
    from flashapp.web import study as study_views

    clock = [datetime.now(timezone.utc)]
    study_views.now = lambda: clock[0]  # the view module's own name for the clock

    def cycle(client) -> None:
        clock[0] += STEP
        html = client.get(f"/study/{SLUG}").get_data(as_text=True)
        form = {name: field_value(html, name) for name in FIELDS}
        form["rating"] = str(rng.choices((1, 2, 3, 4), RATING_WEIGHTS)[0])
        clock[0] += STEP
        assert client.post(f"/study/{SLUG}/answer", data=form).status_code == 303

    for _ in range(warm_up):
        for client in clients:
            cycle(client)
            client.get("/healthz")
    for _ in range(rounds):
        for client in clients:
            if mode == "cycles":
                cycle(client)
            elif mode == "healthz":
                assert client.get("/healthz").status_code == 200


def count(checkout: Path | None, mode: str, rounds: int, warm_up: int) -> int:
    """The instructions of one measured process, as callgrind counts them."""
    env = dict(os.environ)
    env["PYTHONHASHSEED"] = "0"  # the same hashes, and so the same dict and set layouts, in every run
    if checkout is not None:
        env["PYTHONPATH"] = str(checkout)  # its package before the installed one
    done = subprocess.run(["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", sys.executable,
                           __file__, "--run", mode, "--rounds", str(rounds), "--warm-up", str(warm_up)],
                          env=env, capture_output=True, text=True, check=True)
    found = re.search(r"Collected : (\d+)", done.stderr)
    if found is None:
        raise SystemExit(f"no count from callgrind:\n{done.stderr[-2000:]}")
    return int(found.group(1))


def measure(label: str, checkout: Path | None, rounds: int, warm_up: int) -> float:
    base = count(checkout, "none", 1, warm_up)
    cycles = count(checkout, "cycles", rounds, warm_up)
    healthz = count(checkout, "healthz", 2 * rounds, warm_up)
    per_cycle = (cycles - base) / (rounds * STUDENTS)
    per_healthz = (healthz - base) / (2 * rounds * STUDENTS)
    ratio = per_healthz / per_cycle
    print(f"{label}: a study cycle {per_cycle / 1e6:.2f} M instructions, /healthz {per_healthz / 1e6:.2f} M: "
          f"healthz / cycle = {ratio:.3f} (the saturation target: 0.30 on SQLite)")
    return per_cycle


def _server_phase(pid: int, out: Path, students: list[Connection], clients: int, rounds: int, step) -> int:
    """The instructions the server runs while `clients` threads take the students through `rounds` of `step`."""
    subprocess.run(["callgrind_control", "--zero", str(pid)], check=True, capture_output=True)

    def client(group: list[Connection]) -> None:
        for _ in range(rounds):
            for connection in group:
                step(connection)

    threads = [threading.Thread(target=client, args=(students[k::clients],)) for k in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    before = set(glob.glob(f"{out}*"))
    subprocess.run(["callgrind_control", "--dump", str(pid)], check=True, capture_output=True)
    deadline = time.monotonic() + 60
    while True:
        dumps = set(glob.glob(f"{out}*")) - before
        # A dump is complete once its summary line is written.
        totals = [int(line.split()[1]) for dump in dumps for line in Path(dump).read_text().splitlines()
                  if line.startswith("summary:")]
        if dumps and len(totals) == len(dumps):
            return sum(totals)
        if time.monotonic() > deadline:
            raise SystemExit(f"callgrind wrote no dump for {pid}")
        time.sleep(0.5)


def measure_server(label: str, checkout: Path | None, rounds: int, clients: int, warm_up: int) -> float:
    """A study cycle and `/healthz` in a real server's instructions, `clients` students at a time."""
    tmp = Path(tempfile.mkdtemp(prefix="flashapp-instructions-"))
    (tmp / "instance").mkdir()
    (tmp / "decks").mkdir()
    (tmp / "decks" / f"{SLUG}.yaml").write_text(bench_deck(600))
    (tmp / "instance" / "config.py").write_text(f"NEW_CARDS_PER_DAY = 1000000\nDECKS_DIR = {str(tmp / 'decks')!r}\n"
                                                "PASSWORD_HASH_METHOD = 'pbkdf2:sha256:1000'\n")
    env = {**os.environ, "FLASHAPP_INSTANCE_PATH": str(tmp / "instance"), "PYTHONHASHSEED": "0",
           "FLASHAPP_DATABASE_URL": f"sqlite:///{tmp}/flashapp.sqlite"}
    env.pop("FLASHAPP_SECRET_KEY", None)
    if checkout is not None:
        env["PYTHONPATH"] = str(checkout)
    subprocess.run([sys.executable, "-m", "flashapp", "init"], env=env, check=True, capture_output=True)
    port, out = free_port(), tmp / "callgrind.out"
    with open(tmp / "server.log", "wb") as log:
        server = subprocess.Popen(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", sys.executable,
                                   "-m", "flashapp", "serve", "--host", "127.0.0.1", "--port", str(port)],
                                  env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 600
        while True:
            try:
                probe = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
                try:
                    probe.request("GET", "/healthz")
                    if probe.getresponse().status == 200:
                        break
                finally:
                    probe.close()
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(f"the server did not start; see {tmp / 'server.log'}") from None
                time.sleep(1)
        rng = random.Random(1)
        students = []
        for number in range(STUDENTS):
            connection = Connection(port, {})
            connection.http.timeout = 600
            _, page = connection.call("GET", "/register")
            status, _ = connection.call("POST", "/register", {
                "csrf_token": field_value(page, "csrf_token"), "username": f"student{number:03d}",
                "password": PASSWORD, "confirm": PASSWORD, "time_zone": "UTC"})
            assert status == 302, status
            students.append(connection)

        def cycle(connection: Connection) -> None:
            status, page = connection.call("GET", f"/study/{SLUG}")
            assert status == 200, status
            form = {name: field_value(page, name) for name in FIELDS}
            form["rating"] = str(rng.choices((1, 2, 3, 4), RATING_WEIGHTS)[0])
            status, _ = connection.call("POST", f"/study/{SLUG}/answer", form)
            assert status == 303, status

        def healthz(connection: Connection) -> None:
            status, _ = connection.call("GET", "/healthz")
            assert status == 200, status

        _server_phase(server.pid, out, students, clients, warm_up, cycle)
        per_cycle = _server_phase(server.pid, out, students, clients, rounds, cycle) / (rounds * STUDENTS)
        per_healthz = _server_phase(server.pid, out, students, clients, 2 * rounds, healthz) / (2 * rounds * STUDENTS)
    finally:
        server.terminate()
        try:
            server.wait(timeout=120)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"{label}: a study cycle {per_cycle / 1e6:.2f} M instructions, /healthz {per_healthz / 1e6:.2f} M: "
          f"healthz / cycle = {per_healthz / per_cycle:.3f} (flashapp serve, {clients} students at a time)")
    return per_cycle


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=10, help="measured rounds (a cycle per student each)")
    parser.add_argument("--against", type=Path, help="another checkout of flashapp, measured in the same run")
    parser.add_argument("--server", action="store_true", help="count a real `flashapp serve` under callgrind")
    parser.add_argument("--clients", type=int, default=STUDENTS,
                        help=f"--server: students sending requests at the same time (1 to {STUDENTS})")
    parser.add_argument("--warm-up", type=int, default=WARM_UP_ROUNDS,
                        help="cycles each student answers before counting: the study page's cost grows with the "
                             "day's answers (a student flat out in load.py's saturation answers 100 to 200)")
    parser.add_argument("--run", choices=("none", "cycles", "healthz"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.run:
        run(args.run, args.rounds, args.warm_up)
        return
    if args.server:
        if not 1 <= args.clients <= STUDENTS:
            parser.error(f"--clients must be 1 to {STUDENTS}")
        print(f"{STUDENTS} students, {args.rounds} measured rounds after {args.warm_up}, SQLite, flashapp serve")
        here = measure_server("this checkout", None, args.rounds, args.clients, args.warm_up)
        if args.against:
            other = measure_server(str(args.against), args.against.resolve(), args.rounds, args.clients,
                                   args.warm_up)
            print(f"a study cycle here takes {here / other:.3f} of the instructions it takes in {args.against}")
        return
    print(f"{STUDENTS} students, {args.rounds} measured rounds after {args.warm_up}, SQLite, Flask test client")
    here = measure("this checkout", None, args.rounds, args.warm_up)
    if args.against:
        other = measure(str(args.against), args.against.resolve(), args.rounds, args.warm_up)
        print(f"a study cycle here takes {here / other:.3f} of the instructions it takes in {args.against}")


if __name__ == "__main__":
    main()
