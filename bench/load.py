"""Load and fault harness for a real `flashapp serve` process.

    .venv/bin/python bench/load.py --db sqlite --mode pace                 # 100 students, 1 answer / 3 s, 60 s
    .venv/bin/python bench/load.py --db sqlite --mode saturation           # 32 students flat out, then /healthz
    .venv/bin/python bench/load.py --db sqlite --mode fault                # SIGKILL the server mid-load, restart
    .venv/bin/python bench/load.py --db postgresql --mode pace             # same against PostgreSQL
    .venv/bin/python bench/load.py --db postgresql --server gunicorn --workers 2 --mode saturation
    .venv/bin/python bench/load.py --db sqlite --mode profile              # pyinstrument on the answer endpoint
    .venv/bin/python bench/load.py --db sqlite --mode saturation --py-spy  # + py-spy on the server under load
    .venv/bin/python bench/load.py --db sqlite --mode saturation --request-cpu  # + each request's CPU

    Options: --students N, --seconds S, --kills K (fault, default 3), --cards C (deck size),
             --threads T (waitress threads, default 4 as `flashapp serve`), --no-keepalive (a new
             connection per request), --server gunicorn --workers W (needs `.venv/bin/pip install
             gunicorn`), --duplicate-share F (default 0.05), --answers N (profile), --slices K (saturation:
             answering and /healthz take turns K times, default 5; 1 with --py-spy), --py-spy (needs
             `.venv/bin/pip install py-spy`), --pg-url URL (default
             postgresql+psycopg://postgres@127.0.0.1:5432/flashapp_bench; that database is dropped
             and created again on every run), --keep (keep the instance folder and server log),
             --request-cpu (the server counts the CPU of each kind of request in its request threads,
             bench/serve_measured.py; printed after the run, with the cycle against /healthz by it).
    The exit status is 1 when a check fails (errors, a count mismatch, a failed fault check).

What it does: starts the server as a subprocess on a free loopback port with a throw-away
instance folder and a generated deck large enough that the queue never runs dry, then
runs simulated students as threads. Each student has its own keep-alive connection and
cookie jar, registers, then studies: GET /study/<slug>, POST /study/<slug>/answer. About
5% of answers are sent twice with the same token (alternately right after the first
response, and at the same moment over a second connection) to prove that an answer is
recorded once. Every loop is bounded in count and in time and the server is stopped at
the end. Only 127.0.0.1 is contacted.

Modes:
  pace        every student answers a card every 3 s; answer POST latency percentiles
              (target: 0 errors, p95 < 50 ms).
  saturation  the students answer as fast as they can, then the same threads hammer
              GET /healthz for as long, taking turns in --slices slices (5 by default: answer,
              /healthz, answer, ...), so that a change in the machine's speed during the run
              sways both alike; study cycles/s (a page and an answer each) divided
              by healthz/s (target >= 0.30 on SQLite, >= 0.25 on PostgreSQL; a zero-cost app
              would score 0.5, since a cycle is two requests). It also prints the same ratio per
              second of server CPU, which other processes on a busy machine sway less.
              One answer is two requests (the study page and the POST), a health check one.
              Before the first slice each student makes --warm-up study cycles and as many
              health checks (3 by default), not counted: a new server's first pages compile
              its templates and statements and build each deck's sibling map once, which
              made the first slice the slowest of every run (--warm-up 0 counts them).
  fault       load runs while the server is killed with SIGKILL (that pid only) and
              restarted on the same database; a POST cut off by the kill is re-sent with
              the same token, as a browser retry would. Then PRAGMA integrity_check
              (SQLite) and every acknowledged answer must be in review_log.
  profile     no server: pyinstrument around the answer POST on the Flask test client.

Every server mode ends by comparing the acknowledged answers (distinct tokens that got a
303; a second send of a token is not counted again; each counted by the one-time key its
signed token carries, which is what review_log keeps) with the review_log rows, read straight
from the database after the run.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import random
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from collections import Counter
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from pathlib import Path

VENV_BIN = Path(sys.executable).parent
DEFAULT_PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/flashapp_bench"
SLUG = "load"
# The answer form's fields: the CSRF token and the showing's signed token (it names the card).
FIELDS = ("csrf_token", "token")
PASSWORD = "load test password"
REQUEST_TIMEOUT = 20.0
DUPLICATE_SHARE = 0.05
# Weights of Again, Hard, Good, Easy.
RATING_WEIGHTS = (10, 15, 50, 25)
PACE_INTERVAL = 3.0

DEFAULTS = {  # mode: (students, seconds)
    "pace": (100, 60.0),
    "saturation": (32, 30.0),
    "fault": (24, 30.0),
    "profile": (1, 0.0),
}


# ---------------------------------------------------------------- helpers

# Study cycles (a page and an answer) per second over /healthz per second, both through the same server.
SATURATION_TARGETS = {"sqlite": 0.30, "postgresql": 0.25}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def field_value(html: str, name: str) -> str | None:
    match = re.search(rf'name="{name}"[^>]*value="([^"]*)"', html) or re.search(
        rf'value="([^"]*)"[^>]*name="{name}"', html)
    return match.group(1) if match else None


def review_token(signed: str) -> str:
    """The review_log token a showing's signed token records under: its one-time key.

    Only the payload is read here (the harness has no need of the server's key); the server
    checks the signature.
    """
    fields = signed.rpartition(".")[0]  # `user.card.shown_ms.nonce.stamp`, then the signature
    _user, _card, shown_ms, nonce, _stamp = fields.split(".", 4)
    return f"{int(shown_ms):x}.{nonce}"


def bench_deck(size: int) -> str:
    facts = "\n".join(f"  - {{relation: square, subject: '{n}', object: '{n * n}', section: main}}"
                      for n in range(1, size + 1))
    return (f"deck:\n  slug: {SLUG}\n  title: Load\n  source: generated\n  sections: {{main: Main}}\n"
            "relations:\n  square:\n    forward: 'What is the square of {subject}?'\nfacts:\n" + facts + "\n")


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


def plain_pg_url(url: str) -> str:
    """The libpq form of an SQLAlchemy URL (without the +driver part)."""
    scheme, rest = url.split("://", 1)
    return scheme.split("+", 1)[0] + "://" + rest


def process_cpu(pid: int, *, system_only: bool = False) -> float:
    """CPU seconds (user + system, or system alone) used so far by a process and its direct children
    (gunicorn workers)."""
    tick = os.sysconf("SC_CLK_TCK")
    pids = [pid]
    with contextlib.suppress(OSError):  # the process is gone, or this is not Linux
        pids += [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    total = 0.0
    for one in pids:
        try:
            fields = Path(f"/proc/{one}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[12]) if system_only else int(fields[11]) + int(fields[12])) / tick
    return total


def own_cpu() -> float:
    times = os.times()
    return times.user + times.system


# ---------------------------------------------------------------- database access (after the run)

class Database:
    def __init__(self, kind: str, tmp: Path, pg_url: str):
        self.kind = kind
        self.sqlite_path = tmp / "load.sqlite"
        self.pg_url = pg_url

    @property
    def url(self) -> str:
        return f"sqlite:///{self.sqlite_path}" if self.kind == "sqlite" else self.pg_url

    def recreate(self) -> None:
        if self.kind == "sqlite":
            return
        import psycopg

        target = plain_pg_url(self.pg_url)
        name = urllib.parse.urlsplit(target).path.lstrip("/")
        if not re.fullmatch(r"[a-z_][a-z0-9_]*", name) or name in ("postgres", "test", "template0", "template1"):
            raise SystemExit(f"refusing to drop database {name!r}; give a dedicated benchmark database")
        admin = urllib.parse.urlsplit(target)._replace(path="/postgres").geturl()
        with psycopg.connect(admin, autocommit=True) as connection:
            connection.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
            connection.execute(f"CREATE DATABASE {name}")

    def tokens(self) -> list[str]:
        if self.kind == "sqlite":
            with sqlite3.connect(self.sqlite_path, timeout=30) as connection:
                return [row[0] for row in connection.execute("SELECT token FROM review_log")]
        import psycopg

        with psycopg.connect(plain_pg_url(self.pg_url)) as connection:
            return [row[0] for row in connection.execute("SELECT token FROM review_log")]

    def integrity(self) -> str:
        if self.kind != "sqlite":
            return "n/a (PostgreSQL)"
        connection = sqlite3.connect(self.sqlite_path, timeout=30)
        try:
            return ", ".join(row[0] for row in connection.execute("PRAGMA integrity_check"))
        finally:
            connection.close()


# ---------------------------------------------------------------- the server process

class Server:
    def __init__(self, args, tmp: Path, database: Database):
        self.args = args
        self.tmp = tmp
        self.port = free_port()
        self.log = tmp / "server.log"
        self.env = {**os.environ, "FLASHAPP_INSTANCE_PATH": str(tmp / "instance"),
                    "FLASHAPP_DATABASE_URL": database.url}
        self.env.pop("FLASHAPP_SECRET_KEY", None)
        self.request_cpu = tmp / "request-cpu.json"
        if args.request_cpu:
            self.env["FLASHAPP_BENCH_REQUEST_CPU"] = str(self.request_cpu)
        self.process: subprocess.Popen | None = None

    def prepare(self) -> None:
        instance = self.tmp / "instance"
        decks = self.tmp / "decks"
        instance.mkdir()
        decks.mkdir()
        (decks / f"{SLUG}.yaml").write_text(bench_deck(self.args.cards))
        (instance / "config.py").write_text(f"NEW_CARDS_PER_DAY = 1000000\nDECKS_DIR = {str(decks)!r}\n")
        started = time.monotonic()
        done = subprocess.run([VENV_BIN / "flashapp", "init"], env=self.env, capture_output=True, text=True,
                              timeout=600)
        if done.returncode:
            raise RuntimeError(f"flashapp init failed:\n{done.stdout}\n{done.stderr}")
        load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
        print(f"setup: flashapp init with a {self.args.cards}-card deck took {time.monotonic() - started:.1f} s; "
              f"machine load average before the run: {load}")

    def command(self) -> list[str]:
        if self.args.server == "gunicorn":
            return [str(VENV_BIN / "gunicorn"), "-w", str(self.args.workers), "-b", f"127.0.0.1:{self.port}",
                    "flashapp:create_app()"]
        serve = [str(VENV_BIN / "flashapp")] if not self.args.request_cpu else [
            sys.executable, str(Path(__file__).resolve().parent / "serve_measured.py")]
        return [*serve, "serve", "--host", "127.0.0.1", "--port", str(self.port), "--threads", str(self.args.threads)]

    def start(self) -> None:
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(self.command(), env=self.env, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited with {self.process.returncode}; see {self.log}:\n"
                                   + self.log.read_text()[-2000:])
            try:
                connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
                connection.request("GET", "/healthz")
                response = connection.getresponse()
                response.read()
                connection.close()
                if response.status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.1)
        raise RuntimeError("server did not answer /healthz within 30 s")

    def kill(self) -> None:
        """SIGKILL this server process (its pid only) and reap it."""
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)

    def warnings(self) -> list[str]:
        if not self.log.exists():
            return []
        lines = self.log.read_text(errors="replace").splitlines()
        return [line for line in lines if re.search(r"WARNING|ERROR|Traceback|CRITICAL", line)]


# ---------------------------------------------------------------- one simulated student

class Connection:
    """A keep-alive HTTP/1.1 connection sharing a cookie jar with the student's other connection."""

    def __init__(self, port: int, jar: dict[str, str], keepalive: bool = True):
        self.http = http.client.HTTPConnection("127.0.0.1", port, timeout=REQUEST_TIMEOUT)
        self.jar = jar
        self.keepalive = keepalive

    def send(self, method: str, path: str, form: dict | None = None) -> None:
        headers = {"Connection": "keep-alive" if self.keepalive else "close"}
        if self.jar:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.jar.items())
        body = None
        if form is not None:
            body = urllib.parse.urlencode(form)
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        try:
            self.http.request(method, path, body=body, headers=headers)
        except BaseException:
            self.http.close()
            raise

    def receive(self) -> tuple[int, str]:
        try:
            response = self.http.getresponse()
            text = response.read().decode("utf-8", "replace")
        except BaseException:
            self.http.close()
            raise
        for header in response.headers.get_all("Set-Cookie") or []:
            cookie = SimpleCookie()
            cookie.load(header)
            for name, morsel in cookie.items():
                if morsel.value == "" or morsel["max-age"] == "0":
                    self.jar.pop(name, None)
                else:
                    self.jar[name] = morsel.value
        return response.status, text

    def call(self, method: str, path: str, form: dict | None = None) -> tuple[int, str]:
        self.send(method, path, form)
        return self.receive()

    def close(self) -> None:
        self.http.close()


@dataclass
class Stats:
    answer_latency: list[float] = field(default_factory=list)
    page_latency: list[float] = field(default_factory=list)
    answers: int = 0  # primary answer POSTs that got 303
    duplicates_sent: int = 0
    duplicates_concurrent: int = 0
    pages: int = 0
    healthz: int = 0
    healthz_latency: list[float] = field(default_factory=list)
    late: int = 0  # pace: answers started more than 1 s after their slot
    errors: Counter = field(default_factory=Counter)
    expected_failures: int = 0  # fault mode: connections cut by a kill
    retries: int = 0
    acknowledged: set = field(default_factory=set)  # tokens that got a 303
    unresolved: set = field(default_factory=set)  # fault: tokens sent but never acknowledged
    phase_ends: dict = field(default_factory=dict)
    answer_times: list[float] = field(default_factory=list)  # when each counted answer's 303 came back
    healthz_times: list[float] = field(default_factory=list)


class Outages:
    """Windows when the server was deliberately down (fault mode)."""

    def __init__(self):
        self.lock = threading.Lock()
        self.windows: list[list[float]] = []

    def begin(self) -> None:
        with self.lock:
            self.windows.append([time.monotonic(), float("inf")])

    def end(self) -> None:
        with self.lock:
            self.windows[-1][1] = time.monotonic()

    def covers(self, started: float, failed: float) -> bool:
        with self.lock:
            # A connection cut by the kill fails at or after the kill; allow 1 s after the restart
            # for a request that was queued on a dead socket.
            return any(started <= end + 1.0 and failed >= begin for begin, end in self.windows)


class Student(threading.Thread):
    def __init__(self, number: int, args, port: int, barrier: threading.Barrier, plan: dict,
                 outages: Outages):
        super().__init__(name=f"student-{number}", daemon=True)
        self.number = number
        self.args = args
        self.port = port
        self.barrier = barrier
        self.plan = plan
        self.outages = outages
        self.random = random.Random(number)
        self.jar: dict[str, str] = {}
        self.connection = Connection(port, self.jar, args.keepalive)
        self.stats = Stats()
        self.registered = False
        self.dup_count = 0

    # -- failures
    def _failed(self, kind: str, started: float, error: BaseException | None = None) -> None:
        if self.args.mode == "fault" and error is not None and self.outages.covers(started, time.monotonic()):
            self.stats.expected_failures += 1
            time.sleep(0.1 + self.random.random() * 0.2)
            return
        label = kind if error is None else f"{kind}: {type(error).__name__}: {error}"[:160]
        self.stats.errors[label] += 1
        if error is not None:
            time.sleep(0.05)

    # -- account
    def register(self) -> None:
        username = f"student{self.number:03d}"
        status, page = self.connection.call("GET", "/register")
        if status != 200:
            raise RuntimeError(f"GET /register answered {status}")
        form = {"csrf_token": field_value(page, "csrf_token"), "username": username, "password": PASSWORD,
                "confirm": PASSWORD, "time_zone": "UTC"}
        status, _ = self.connection.call("POST", "/register", form)
        if status == 400:  # taken: log in instead
            status, page = self.connection.call("GET", "/login")
            status, _ = self.connection.call("POST", "/login", {"csrf_token": field_value(page, "csrf_token"),
                                                                "username": username, "password": PASSWORD})
        if status != 302:
            raise RuntimeError(f"register/login answered {status}")
        self.registered = True

    # -- one study step
    def study_once(self, deadline: float) -> bool:
        """GET the study page and answer it. False when the phase is over."""
        started = time.monotonic()
        try:
            status, page = self.connection.call("GET", f"/study/{SLUG}")
        except (OSError, http.client.HTTPException) as error:
            self._failed("study page", started, error)
            return time.monotonic() < deadline
        self.stats.page_latency.append(time.monotonic() - started)
        if status != 200:
            self._failed(f"study page HTTP {status}", started)
            return time.monotonic() < deadline
        self.stats.pages += 1
        form = {name: field_value(page, name) for name in FIELDS}
        if None in form.values():
            self._failed("study page without a card (queue ran dry?)", started)
            return time.monotonic() < deadline
        form["rating"] = str(self.random.choices((1, 2, 3, 4), RATING_WEIGHTS)[0])
        duplicate = self.random.random() < self.args.duplicate_share
        concurrent = duplicate and self.dup_count % 2 == 1
        if duplicate:
            self.dup_count += 1
        self.answer(form, duplicate, concurrent, deadline)
        return time.monotonic() < deadline

    def answer(self, form: dict, duplicate: bool, concurrent: bool, deadline: float) -> None:
        token = form["token"]
        path = f"/study/{SLUG}/answer"
        attempts = 0
        while True:
            attempts += 1
            started = time.monotonic()
            second = None
            try:
                self.connection.send("POST", path, form)
                if concurrent:
                    # The same answer at the same moment on another connection (a double click).
                    second = Connection(self.port, self.jar, self.args.keepalive)
                    try:
                        second.send("POST", path, form)
                    except (OSError, http.client.HTTPException) as error:
                        self._failed("concurrent duplicate answer POST", started, error)
                        second.close()
                        second = None
                status, _ = self.connection.receive()
                elapsed = time.monotonic() - started
            except (OSError, http.client.HTTPException) as error:
                if second is not None:
                    second.close()
                self._failed("answer POST", started, error)
                if (self.args.mode == "fault" and time.monotonic() < deadline + 5
                        and attempts < 200):
                    # Cut off by a kill: send the same answer again, as a browser retry would.
                    self.stats.retries += 1
                    continue
                self.stats.unresolved.add(token)
                return
            break
        if status == 303:
            self.stats.acknowledged.add(token)
        if second is not None:
            try:
                second_status, _ = second.receive()
                self.stats.duplicates_sent += 1
                self.stats.duplicates_concurrent += 1
                if second_status == 303:
                    self.stats.acknowledged.add(token)
                else:
                    self._failed(f"concurrent duplicate answer HTTP {second_status}", started)
            except (OSError, http.client.HTTPException) as error:
                self._failed("concurrent duplicate answer POST", started, error)
            finally:
                second.close()
        if status != 303:
            self._failed(f"answer HTTP {status}", started)
            self.stats.unresolved.add(token)
            return
        self.stats.answers += 1
        self.stats.answer_latency.append(elapsed)
        self.stats.answer_times.append(started + elapsed)
        if duplicate and not concurrent:
            # The same form sent again after the first response (back button, re-submit).
            started = time.monotonic()
            try:
                status, _ = self.connection.call("POST", path, form)
            except (OSError, http.client.HTTPException) as error:
                self._failed("duplicate answer POST", started, error)
                return
            self.stats.duplicates_sent += 1
            if status != 303:
                self._failed(f"duplicate answer HTTP {status}", started)

    def healthz_once(self) -> None:
        started = time.monotonic()
        try:
            status, _ = self.connection.call("GET", "/healthz")
        except (OSError, http.client.HTTPException) as error:
            self._failed("healthz", started, error)
            return
        if status != 200:
            self._failed(f"healthz HTTP {status}", started)
            return
        self.stats.healthz += 1
        done = time.monotonic()
        self.stats.healthz_latency.append(done - started)
        self.stats.healthz_times.append(done)

    # -- the thread
    def run(self) -> None:
        try:
            try:
                self.register()
            except Exception as error:  # noqa: BLE001 - counted, the run goes on
                self.stats.errors[f"register: {type(error).__name__}: {error}"[:160]] += 1
            if self.registered and self.args.mode == "saturation":
                # Not counted: before the first barrier, which starts the clock of the slices.
                for _ in range(self.args.warm_up):
                    self.study_once(time.monotonic() + 60)
                    self.healthz_once()
            self.barrier.wait(timeout=300)
            slices = self.args.slices if self.args.mode == "saturation" else 1
            if not self.registered:
                if self.args.mode == "saturation":
                    for _ in range(2 * slices):  # keep the phases' barriers
                        self.barrier.wait(timeout=self.args.seconds + 120)
                return
            t0 = self.plan["t0"]
            seconds = self.args.seconds
            deadline = t0 + seconds
            max_steps = int(seconds * 1000) + 10
            if self.args.mode == "pace":
                offset = self.plan["offsets"][self.number]
                for step in range(max_steps):
                    slot = t0 + offset + step * PACE_INTERVAL
                    if slot >= deadline:
                        break
                    delay = slot - time.monotonic()
                    if delay > 0:
                        time.sleep(delay)
                    elif delay < -1:
                        self.stats.late += 1
                    self.study_once(deadline)
            elif self.args.mode == "fault":
                for _ in range(max_steps):
                    if time.monotonic() >= deadline or not self.study_once(deadline):
                        break
            else:
                # Saturation: answer, then /healthz, in alternating slices that all students start together.
                length = seconds / slices
                for _ in range(slices):
                    deadline = self.plan["marks"][-1][0] + length
                    for _ in range(max_steps):
                        if time.monotonic() >= deadline or not self.study_once(deadline):
                            break
                    self.barrier.wait(timeout=seconds + 120)
                    deadline = self.plan["marks"][-1][0] + length
                    for _ in range(int(length * 10000)):
                        if time.monotonic() >= deadline:
                            break
                        self.healthz_once()
                    self.barrier.wait(timeout=seconds + 120)
            self.stats.phase_ends["answers"] = time.monotonic()
        except threading.BrokenBarrierError:
            self.stats.errors["barrier broken (another student failed or timed out)"] += 1
        finally:
            self.connection.close()


# ---------------------------------------------------------------- running a mode

def run_load(args, server: Server, database: Database) -> int:
    outages = Outages()
    plan: dict = {}
    rng = random.Random(12345)
    plan["offsets"] = {n: rng.random() * PACE_INTERVAL for n in range(args.students)}

    plan["marks"] = []

    def action():
        # Each time every student is through a barrier: when, and the CPU used so far.
        sample = (process_cpu(server.process.pid), own_cpu(), process_cpu(server.process.pid, system_only=True))
        now = time.monotonic()
        plan["marks"].append((now, sample))
        if "t0" not in plan:
            plan["t0"] = now
            plan["cpu_t0"] = sample

    barrier = threading.Barrier(args.students, action=action)
    students = [Student(n, args, server.port, barrier, plan, outages) for n in range(args.students)]
    registration_started = time.monotonic()
    for student in students:
        student.start()

    profiles: dict[str, Path] = {}
    profiler = None
    if args.py_spy and args.mode in ("pace", "saturation"):
        def record():
            waited = time.monotonic() + 300
            while "t0" not in plan and time.monotonic() < waited:
                time.sleep(0.05)
            time.sleep(2)
            half = max(1.0, args.seconds / 2 - 3)
            pid = server.process.pid
            for kind, idle in (("gil", False), ("idle", True)):
                out = py_spy_record(pid, half, server.tmp / f"py-spy-{kind}.txt", idle=idle)
                if out is not None:
                    profiles[kind] = out

        profiler = threading.Thread(target=record, daemon=True)
        profiler.start()

    kills = []
    if args.mode == "fault":
        # Wait until the load is on, then kill and restart the server at evenly spaced times.
        waited = time.monotonic() + 300
        while "t0" not in plan and time.monotonic() < waited:
            time.sleep(0.05)
        print(f"setup: {args.students} students registered in {plan['t0'] - registration_started:.1f} s")
        times = [plan["t0"] + args.seconds * (k + 1) / (args.kills + 1) for k in range(args.kills)]
        for at in times:
            delay = at - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            pid = server.process.pid
            outages.begin()
            server.kill()
            killed = time.monotonic()
            server.start()
            outages.end()
            integrity = database.integrity()
            kills.append((pid, outages.windows[-1][1] - killed, integrity))
            print(f"fault: SIGKILL pid {pid} at t={killed - plan['t0']:.1f} s; restarted as pid "
                  f"{server.process.pid} in {outages.windows[-1][1] - killed:.1f} s; "
                  f"integrity_check right after restart: {integrity}")

    limit = time.monotonic() + args.seconds * (2 if args.mode == "saturation" else 1) + 300 + 10 * args.slices
    for student in students:
        student.join(timeout=max(0.1, limit - time.monotonic()))
    stuck = [s.name for s in students if s.is_alive()]
    cpu_end = (process_cpu(server.process.pid), own_cpu(), process_cpu(server.process.pid, system_only=True))
    if "t0" in plan and args.mode != "fault":
        print(f"setup: {args.students} students registered in {plan['t0'] - registration_started:.1f} s")

    total = Stats()
    for student in students:
        s = student.stats
        total.answer_latency += s.answer_latency
        total.page_latency += s.page_latency
        total.healthz_latency += s.healthz_latency
        total.answers += s.answers
        total.duplicates_sent += s.duplicates_sent
        total.duplicates_concurrent += s.duplicates_concurrent
        total.pages += s.pages
        total.healthz += s.healthz
        total.late += s.late
        total.errors.update(s.errors)
        total.expected_failures += s.expected_failures
        total.retries += s.retries
        total.acknowledged |= s.acknowledged
        total.unresolved |= s.unresolved
    total.unresolved -= total.acknowledged
    total.acknowledged = {review_token(token) for token in total.acknowledged}
    total.unresolved = {review_token(token) for token in total.unresolved}
    if stuck:
        total.errors[f"student threads still running at the end: {len(stuck)}"] += 1

    t0 = plan.get("t0", time.monotonic())
    marks = plan["marks"]
    if args.mode == "saturation" and len(marks) == 2 * args.slices + 1:
        # Counted within each slice's own length from its start (the requests still under way at its end
        # are left out of the count and the time alike); CPU from barrier to barrier.
        length = args.seconds / args.slices
        starts = [mark[0] for mark in marks]
        answer_windows = [(starts[k], starts[k] + length) for k in range(0, 2 * args.slices, 2)]
        healthz_windows = [(starts[k], starts[k] + length) for k in range(1, 2 * args.slices, 2)]
        answers_counted = sum(begin <= at <= end for s in students for at in s.stats.answer_times
                              for begin, end in answer_windows)
        healthz_counted = sum(begin <= at <= end for s in students for at in s.stats.healthz_times
                              for begin, end in healthz_windows)
        answer_seconds = healthz_seconds = length * args.slices
        answer_cpu = sum(marks[k + 1][1][0] - marks[k][1][0] for k in range(0, 2 * args.slices, 2))
        healthz_cpu = sum(marks[k + 1][1][0] - marks[k][1][0] for k in range(1, 2 * args.slices, 2))
        answer_own = sum(marks[k + 1][1][1] - marks[k][1][1] for k in range(0, 2 * args.slices, 2))
        healthz_own = sum(marks[k + 1][1][1] - marks[k][1][1] for k in range(1, 2 * args.slices, 2))
        answer_system = sum(marks[k + 1][1][2] - marks[k][1][2] for k in range(0, 2 * args.slices, 2))
        healthz_system = sum(marks[k + 1][1][2] - marks[k][1][2] for k in range(1, 2 * args.slices, 2))
        answer_wall = sum(marks[k + 1][0] - marks[k][0] for k in range(0, 2 * args.slices, 2))
        healthz_wall = sum(marks[k + 1][0] - marks[k][0] for k in range(1, 2 * args.slices, 2))
    else:
        answer_end = max((s.stats.phase_ends.get("answers", t0) for s in students), default=t0)
        answer_seconds = max(1e-9, answer_end - t0)
        answers_counted, healthz_counted = total.answers, total.healthz
    error_count = sum(total.errors.values())

    server.stop()
    rows = database.tokens()
    label = f"{args.db}, {args.server}" + (f" -w {args.workers}" if args.server == "gunicorn" else
                                         f" --threads {args.threads}")
    label += ", keep-alive" if args.keepalive else ", a connection per request"
    if args.mode == "saturation":
        label += f", {args.slices} alternating slices of {args.seconds / args.slices:g} s each"
    print(f"== {args.mode}: {args.students} students, {args.seconds:g} s, {label} ==")
    print(f"answers acknowledged (303): {total.answers}, {answers_counted} of them within the answer time "
          f"({answer_seconds:.1f} s) = {answers_counted / answer_seconds:.1f} answers/s; study pages: {total.pages}; "
          f"duplicate sends: {total.duplicates_sent} ({total.duplicates_concurrent} concurrent)")
    print(f"POST answer latency: p50 {ms(percentile(total.answer_latency, .50))}, "
          f"p95 {ms(percentile(total.answer_latency, .95))}, p99 {ms(percentile(total.answer_latency, .99))}, "
          f"max {ms(max(total.answer_latency, default=float('nan')))}")
    print(f"GET study page latency: p50 {ms(percentile(total.page_latency, .50))}, "
          f"p95 {ms(percentile(total.page_latency, .95))}, p99 {ms(percentile(total.page_latency, .99))}")

    def cpu_share(phase: str, server_cpu: float, own: float, seconds: float, system: float) -> None:
        print(f"CPU during the {phase} phase: server {server_cpu / seconds * 100:.0f}% "
              f"({system / seconds * 100:.0f}% in the kernel), "
              f"load generator {own / seconds * 100:.0f}% of one core ({os.cpu_count()} cores)")

    if args.mode == "pace" and "cpu_t0" in plan:
        cpu_share("answer", cpu_end[0] - plan["cpu_t0"][0], cpu_end[1] - plan["cpu_t0"][1], answer_seconds,
                  cpu_end[2] - plan["cpu_t0"][2])
    if args.mode == "pace":
        p95 = percentile(total.answer_latency, .95)
        verdict = "OK" if error_count == 0 and p95 < 0.050 else "MISSED"
        print(f"errors: {error_count}; late starts (>1 s behind the 3 s pace): {total.late}")
        print(f"target: 0 errors, p95 < 50 ms -> got {error_count} errors, p95 {ms(p95)}: {verdict}")
    if args.mode == "saturation" and len(marks) == 2 * args.slices + 1:
        cpu_share("answer", answer_cpu, answer_own, answer_wall, answer_system)
        answers_rate = answers_counted / answer_seconds
        healthz_rate = healthz_counted / healthz_seconds
        ratio = answers_rate / healthz_rate if healthz_rate else float("nan")
        print(f"GET /healthz: {total.healthz}, {healthz_counted} of them within the health check time "
              f"({healthz_seconds:.1f} s) = {healthz_rate:.1f} healthz/s; "
              f"latency p50 {ms(percentile(total.healthz_latency, .50))}, "
              f"p95 {ms(percentile(total.healthz_latency, .95))}")
        cpu_share("healthz", healthz_cpu, healthz_own, healthz_wall, healthz_system)
        per_slice = [(sum(b <= at <= e for st in students for at in st.stats.answer_times) / length,
                      sum(hb <= at <= he for st in students for at in st.stats.healthz_times) / length)
                     for (b, e), (hb, he) in zip(answer_windows, healthz_windows, strict=True)]
        print("slice by slice, cycles/s / healthz/s: "
              + "; ".join(f"{a:.0f}/{h:.0f} = {a / h:.3f}" if h else f"{a:.0f}/0" for a, h in per_slice))
        print(f"errors: {error_count}")
        target = SATURATION_TARGETS[args.db]
        print(f"study cycles/s / healthz/s = {answers_rate:.1f} / {healthz_rate:.1f} = {ratio:.3f} "
              f"(target >= {target}): {'OK' if ratio >= target else 'MISSED'}")
        # The same ratio per second of server CPU: less swayed by other processes on the machine.
        print(f"per server CPU second: {total.answers / max(1e-9, answer_cpu):.1f} study cycles, "
              f"{total.healthz / max(1e-9, healthz_cpu):.1f} healthz: ratio "
              f"{total.answers / max(1e-9, answer_cpu) / (total.healthz / max(1e-9, healthz_cpu)):.3f}")
    elif args.mode == "saturation":
        print(f"errors: {error_count} (the phases did not all run: no ratio)")
    for kind, count in total.errors.most_common(8):
        print(f"  error x{count}: {kind}")

    acknowledged = total.acknowledged
    row_tokens = Counter(rows)
    repeated = [token for token, count in row_tokens.items() if count > 1]
    missing = acknowledged - set(row_tokens)
    extra = set(row_tokens) - acknowledged
    failed = bool(error_count) or bool(stuck)
    if args.mode == "fault":
        final_integrity = database.integrity()
        print(f"fault: {len(kills)} SIGKILL(s); connections cut by the kills: {total.expected_failures}; "
              f"answers re-sent with the same token after a cut: {total.retries}; other errors: {error_count}")
        print(f"integrity_check after the run: {final_integrity}")
        print(f"acknowledged = {len(acknowledged)}, present in review_log = {len(acknowledged) - len(missing)}, "
              f"review rows = {len(rows)}, rows never acknowledged = {len(extra)} "
              f"(unresolved sends: {len(total.unresolved)}), tokens stored twice = {len(repeated)}")
        ok = (not missing and not repeated and final_integrity == "ok" if args.db == "sqlite"
              else not missing and not repeated)
        ok = ok and all(k[2] in ("ok", "n/a (PostgreSQL)") for k in kills) and extra <= total.unresolved
        print("fault result: every acknowledged answer survived the kills, none twice: OK" if ok else
              f"!!! FAULT CHECK FAILED: missing {len(missing)} acknowledged, {len(repeated)} stored twice, "
              f"{len(extra - total.unresolved)} rows nobody sent !!!")
        failed = failed or not ok
    else:
        if len(acknowledged) == len(rows) and not missing and not repeated:
            print(f"acknowledged = {len(acknowledged)}, review rows = {len(rows)}: OK")
        else:
            print(f"!!! MISMATCH !!! acknowledged = {len(acknowledged)}, review rows = {len(rows)} "
                  f"(acknowledged but missing: {len(missing)}, rows not acknowledged: {len(extra)}, "
                  f"tokens stored twice: {len(repeated)})")
            failed = True
        if args.db == "sqlite":
            print(f"integrity_check after the run: {database.integrity()}")
    if profiler is not None:
        profiler.join(timeout=120)
        if "gil" in profiles:
            report_stacks("py-spy on the server during the answer phase, samples of the thread holding the GIL",
                          stacks_from_pyspy(profiles["gil"]))
        if "idle" in profiles:
            report_wall("py-spy on the server during the answer phase: waitress worker threads by wall time",
                        stacks_from_pyspy(profiles["idle"]))
    if args.request_cpu:
        report_request_cpu(server.request_cpu)
    warnings = server.warnings()
    if warnings:
        kinds = Counter(re.sub(r"\d+", "N", line)[:110] for line in warnings)
        print(f"server log: {len(warnings)} warning/error lines: "
              + "; ".join(f"{count} x '{kind}'" for kind, count in kinds.most_common(4)))
    return 1 if failed else 0


def report_request_cpu(path: Path) -> None:
    """Each kind of request's CPU in the server's request threads (`bench/serve_measured.py`), and the study cycle
    against `/healthz` by that CPU alone."""
    try:
        totals = json.loads(path.read_text())
    except (OSError, ValueError):
        print(f"request CPU: nothing written to {path}")
        return
    print("--- CPU of each kind of request in the server's request threads (the app and writing its response; "
          "waitress's main thread left out) ---")
    per: dict[str, float] = {}
    for name, kind in sorted(totals.items(), key=lambda item: -item[1]["requests"]):
        count = kind["requests"]
        if count < 100:
            continue
        per[name] = kind["cpu_seconds"] / count
        print(f"  {name:30s} {count:6.0f} requests: CPU {per[name] * 1e3:.3f} ms "
              f"({kind['system_seconds'] / count * 1e3:.3f} ms in the kernel), "
              f"wall {kind['wall_seconds'] / count * 1e3:.2f} ms, "
              f"{kind['voluntary_switches'] / count:.1f} voluntary context switches")
    cycle = per.get("GET /study/<slug>", 0.0) + per.get("POST /study/<slug>/answer", 0.0)
    if cycle and per.get("GET /healthz"):
        print(f"  /healthz against a study cycle (a page and an answer) by this CPU: "
              f"{per['GET /healthz'] * 1e3:.3f} / {cycle * 1e3:.3f} ms = {per['GET /healthz'] / cycle:.3f}")


# ---------------------------------------------------------------- profile mode

def run_profile(args, tmp: Path, database: Database) -> int:
    """pyinstrument around the answer POST (and separately the study page) on the Flask test client."""
    try:
        from pyinstrument import Profiler
    except ImportError:
        raise SystemExit("profile mode needs pyinstrument: .venv/bin/pip install pyinstrument") from None
    from datetime import datetime, timezone

    from sqlalchemy import event

    from flashapp import create_app, db
    from flashapp.decks import build_decks
    from flashapp.schema import upgrade_database

    deck = tmp / f"{SLUG}.yaml"
    deck.write_text(bench_deck(args.cards))
    app = create_app({"INSTANCE_PATH": str(tmp / "instance"), "SQLALCHEMY_DATABASE_URI": database.url,
                      "SECRET_KEY": "profile-key-" + "x" * 32, "NEW_CARDS_PER_DAY": 1000000})
    with app.app_context():
        upgrade_database()
        build_decks(db.session(), [deck], now=datetime.now(timezone.utc))
        db.session.remove()
    sql_time = {"answer": 0.0, "page": 0.0, "current": None}
    sql_count = Counter()

    with app.app_context():
        engine = db.engine

    @event.listens_for(engine, "before_cursor_execute")
    def _before(conn, cursor, statement, parameters, context, executemany):
        conn.info["started"] = time.perf_counter()

    @event.listens_for(engine, "after_cursor_execute")
    def _after(conn, cursor, statement, parameters, context, executemany):
        if sql_time["current"]:
            sql_time[sql_time["current"]] += time.perf_counter() - conn.info.pop("started")
            sql_count[sql_time["current"]] += 1

    client = app.test_client()
    page = client.get("/register").get_data(as_text=True)
    client.post("/register", data={"csrf_token": field_value(page, "csrf_token"), "username": "profiled",
                                   "password": PASSWORD, "confirm": PASSWORD, "time_zone": "UTC"})
    answer_profiler, page_profiler = Profiler(interval=0.0005), Profiler(interval=0.0005)
    rng = random.Random(1)
    answer_wall = page_wall = 0.0
    n = args.answers
    for _ in range(n):
        sql_time["current"] = "page"
        page_profiler.start()
        started = time.perf_counter()
        html = client.get(f"/study/{SLUG}").get_data(as_text=True)
        page_wall += time.perf_counter() - started
        page_profiler.stop()
        form = {name: field_value(html, name) for name in FIELDS}
        form["rating"] = str(rng.choices((1, 2, 3, 4), RATING_WEIGHTS)[0])
        sql_time["current"] = "answer"
        answer_profiler.start()
        started = time.perf_counter()
        response = client.post(f"/study/{SLUG}/answer", data=form)
        answer_wall += time.perf_counter() - started
        answer_profiler.stop()
        sql_time["current"] = None
        assert response.status_code == 303, response.status_code
    health_wall = 0.0
    for _ in range(n):
        started = time.perf_counter()
        client.get("/healthz")
        health_wall += time.perf_counter() - started
    print(f"== profile: {n} study cycles on the test client, {args.db} ==")
    print(f"POST answer  mean {ms(answer_wall / n)}; SQL (cursor execute) {ms(sql_time['answer'] / n)} "
          f"in {sql_count['answer'] / n:.1f} statements")
    print(f"GET study    mean {ms(page_wall / n)}; SQL (cursor execute) {ms(sql_time['page'] / n)} "
          f"in {sql_count['page'] / n:.1f} statements")
    print(f"GET /healthz mean {ms(health_wall / n)}")
    for title, profiler in (("POST /study/<slug>/answer", answer_profiler), ("GET /study/<slug>", page_profiler)):
        session = profiler.last_session
        report_stacks(f"pyinstrument, {title}", stacks_from_pyinstrument(session), unit="s sampled")
    with app.app_context():
        db.session.remove()
        db.engine.dispose()
    return 0


# Frames worth naming in a profile: (label, regular expression on "function (path:line)").
KEY_FRAMES = (
    ("POST answer view (web/study.py answer)", r"^([\w<>]+\.)*answer \(.*web/study\.py"),
    ("GET study view (web/study.py study)", r"^([\w<>]+\.)*study \(.*web/study\.py"),
    ("healthz view", r"^([\w<>]+\.)*healthz \("),
    ("  answer_card", r"^([\w<>]+\.)*answer_card \("),
    ("  due_counts", r"^([\w<>]+\.)*due_counts \("),
    ("  next_card", r"^([\w<>]+\.)*next_card \("),
    ("  _introduced_since", r"^([\w<>]+\.)*_introduced_since \("),
    ("  preview_intervals (4 FSRS previews)", r"^([\w<>]+\.)*preview_intervals \("),
    ("  FSRS review_card", r"^([\w<>]+\.)*review_card \(.*fsrs"),
    ("load_user (Flask-Login, every request)", r"^([\w<>]+\.)*load_user \(.*web/__init__"),
    ("form validation incl. CSRF", r"^([\w<>]+\.)*(validate_on_submit|protect) \("),
    ("render_template (Jinja)", r"^([\w<>]+\.)*render_template \("),
    ("redirect/url_for/flash", r"^([\w<>]+\.)*(redirect|url_for|flash) \((?!.*sqlalchemy)"),
    ("Flask session cookie save/open", r"^([\w<>]+\.)*(save_session|open_session) \("),
    ("SQLAlchemy statement compile (cache miss/key)", r"^([\w<>]+\.)*(_compile_w_cache|_generate_cache_key) \("),
    ("DBAPI execute (the database itself)", r"^([\w<>]+\.)*(do_execute|do_execute_no_params|Cursor\.execute) \("),
    ("BEGIN IMMEDIATE (SQLite write lock)", r"^([\w<>]+\.)*_on_begin \("),
    ("session commit", r"^([\w<>]+\.)*commit \(.*orm/session\.py"),
    ("  DBAPI commit (WAL write + fsync)", r"^([\w<>]+\.)*(do_commit|Connection\.commit) \("),
    ("pool checkout (+ pre-ping)", r"^([\w<>]+\.)*(_checkout|_do_ping_w_event|do_ping) \("),
    ("password hashing (scrypt)", r"^([\w<>]+\.)*(generate_password_hash|check_password_hash) \("),
    ("Flask wsgi_app (the whole app)", r"^([\w<>]+\.)*wsgi_app \(.*flask"),
    ("waitress: task service (request in a worker)", r"^([\w<>]+\.)*service \(.*waitress/task\.py"),
    ("waitress: main loop (accept/read/write)", r"^([\w<>]+\.)*loop \(.*waitress/wasyncore\.py"),
)


def frame_label(function: str, path: str | None, line) -> str:
    path = "/".join(Path(path or "?").parts[-3:])
    return f"{function} ({path}:{line})"


def stacks_from_pyinstrument(session) -> list[tuple[tuple[str, ...], float]]:
    """(stack, self seconds) for every frame of a pyinstrument session, root first."""
    stacks = []

    def walk(frame, above: tuple[str, ...]):
        stack = (*above, frame_label(frame.function, frame.file_path, frame.line_no))
        if frame.total_self_time > 0:
            stacks.append((stack, frame.total_self_time))
        for child in frame.children:
            if not child.is_synthetic:
                walk(child, stack)

    walk(session.root_frame(), ())
    return stacks


def stacks_from_pyspy(path: Path) -> list[tuple[tuple[str, ...], float]]:
    """(stack, samples) from py-spy's raw (collapsed) output, root first."""
    stacks = []
    for line in path.read_text(errors="replace").splitlines():
        frames, _, count = line.rpartition(" ")
        if frames and count.isdigit():
            stack = []
            for frame in frames.split(";"):
                match = re.match(r"^(.*) \((.*):(\d+)\)$", frame)
                stack.append(frame_label(*match.groups()) if match else frame)
            stacks.append((tuple(stack), float(count)))
    return stacks


def report_stacks(title: str, stacks, top: int = 20, unit: str = "samples") -> None:
    """Top self-time frames and the share of time inside each key frame."""
    total = sum(weight for _, weight in stacks) or 1.0
    own: Counter = Counter()
    for stack, weight in stacks:
        own[stack[-1]] += weight
    print(f"\n--- {title} ({total:.{0 if unit == 'samples' else 2}f} {unit}) ---")
    print("self time, top frames (where the CPU is):")
    for name, weight in own.most_common(top):
        print(f"  {weight / total * 100:5.1f}%  {name}")
    print("inclusive time of key frames (inside it and everything it calls):")
    for label, pattern in KEY_FRAMES:
        regex = re.compile(pattern)
        share = sum(weight for stack, weight in stacks if any(regex.search(f) for f in stack)) / total
        if share >= 0.002:
            print(f"  {share * 100:5.1f}%  {label}")


def report_wall(title: str, stacks) -> None:
    """What waitress's worker threads were doing, by wall time (py-spy --idle samples)."""
    buckets: Counter = Counter()
    rules = (
        ("waiting for the SQLite write lock (BEGIN IMMEDIATE, busy handler)", r"_on_begin \("),
        ("password hashing", r"(generate|check)_password_hash \("),
        ("commit (WAL write + fsync)", r"(do_commit|Connection\.commit) \("),
        ("SQL execute in the driver", r"(do_execute|do_execute_no_params) \("),
        ("template rendering", r"render_template \("),
        ("other Python in the app (ORM, Flask, forms; includes waiting for the GIL)", r"wsgi_app \(.*flask"),
        ("waitress request handling outside the app", r"service \(.*waitress/task\.py"),
    )
    compiled = [(label, re.compile(pattern)) for label, pattern in rules]
    for stack, weight in stacks:
        joined = ";".join(stack)
        if "handler_thread" not in joined:
            continue  # the main loop thread and anything else
        if "service (" not in joined and "Task.service" not in joined and "execute (" not in joined:
            buckets["idle worker waiting for a request"] += weight
            continue
        for label, regex in compiled:
            if any(regex.search(f) for f in stack):
                buckets[label] += weight
                break
        else:
            buckets["other"] += weight
    total = sum(buckets.values()) or 1.0
    print(f"\n--- {title} ({total:.0f} thread samples) ---")
    for label, weight in buckets.most_common():
        print(f"  {weight / total * 100:5.1f}%  {label}")


def py_spy_record(pid: int, seconds: float, out: Path, *, idle: bool) -> Path | None:
    exe = shutil.which("py-spy", path=str(VENV_BIN)) or shutil.which("py-spy")
    if exe is None:
        print("py-spy: not installed (.venv/bin/pip install py-spy); no server profile")
        return None
    command = [exe, "record", "--pid", str(pid), "--duration", str(max(1, int(seconds))), "--rate", "200",
               "--format", "raw", "--output", str(out), "--nonblocking", "--full-filenames"]
    command.append("--idle" if idle else "--gil")
    done = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 60)
    if done.returncode or not out.exists():
        print(f"py-spy failed: {done.stderr.strip()[-300:]}")
        return None
    return out


# ---------------------------------------------------------------- main

def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--mode", choices=("pace", "saturation", "fault", "profile"), default="pace")
    parser.add_argument("--students", type=int, help="default: 100 pace, 32 saturation, 24 fault")
    parser.add_argument("--seconds", type=float, help="default: 60 pace, 30 saturation and fault")
    parser.add_argument("--slices", type=int, default=5,
                        help="saturation: how many times answering and /healthz take turns, each for "
                             "seconds/slices (default 5), so that a change in the machine's speed during the "
                             "run sways both alike")
    parser.add_argument("--warm-up", type=int, default=3,
                        help="saturation: study cycles and health checks each student makes, not counted, "
                             "before the first slice (default 3)")
    parser.add_argument("--kills", type=int, default=3, help="fault: how many times the server is killed")
    parser.add_argument("--cards", type=int, help="deck size (default: enough that the queue never runs dry)")
    parser.add_argument("--answers", type=int, default=300, help="profile: study cycles to profile")
    parser.add_argument("--server", choices=("waitress", "gunicorn"), default="waitress")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn worker processes")
    parser.add_argument("--threads", type=int, default=4, help="waitress threads (flashapp serve --threads)")
    parser.add_argument("--duplicate-share", type=float, default=DUPLICATE_SHARE,
                        help="share of answers sent twice with the same token")
    parser.add_argument("--no-keepalive", dest="keepalive", action="store_false",
                        help="a new connection for every request instead of one keep-alive connection per student")
    parser.add_argument("--py-spy", action="store_true",
                        help="pace/saturation: sample the server with py-spy during the answer phase")
    parser.add_argument("--pg-url", default=DEFAULT_PG_URL)
    parser.add_argument("--keep", action="store_true", help="keep the instance folder and server log")
    parser.add_argument("--request-cpu", action="store_true",
                        help="waitress: count each kind of request's CPU in the server's request threads "
                             "(bench/serve_measured.py) and print it after the run")
    args = parser.parse_args(argv)
    students, seconds = DEFAULTS[args.mode]
    args.students = args.students or students
    args.seconds = args.seconds if args.seconds is not None else seconds
    if args.py_spy or args.slices < 1:
        args.slices = 1  # py-spy records one answer phase
    if not 1 <= args.students <= 500 or not 0 <= args.seconds <= 600:
        parser.error("--students must be 1..500 and --seconds 0..600")
    if args.mode == "fault" and args.server != "waitress":
        parser.error("fault mode kills the single `flashapp serve` process; use --server waitress")
    if args.request_cpu and (args.server != "waitress" or args.mode == "profile"):
        parser.error("--request-cpu counts the requests of `flashapp serve` (waitress): not with gunicorn or profile")
    if args.cards is None:
        # Enough new cards for the fastest student: pace needs seconds/3, saturation is open-ended.
        args.cards = max(200, args.answers + 50) if args.mode == "profile" else (
            int(args.seconds / PACE_INTERVAL) + 50 if args.mode == "pace" else 1500)

    tmp = Path(tempfile.mkdtemp(prefix="flashapp-load-"))
    database = Database(args.db, tmp, args.pg_url)
    try:
        database.recreate()
        if args.mode == "profile":
            return run_profile(args, tmp, database)
        server = Server(args, tmp, database)
        server.prepare()
        server.start()
        try:
            return run_load(args, server, database)
        finally:
            server.stop()
    finally:
        if args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
