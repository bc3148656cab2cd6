"""Plain helpers and constants the tests share; the fixtures that use them live in conftest.py.

Test modules import from here (or from the e2e package's pages.py), never from one another.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import os
import re
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import psutil
import pytest
import yaml
from fsrs import Rating
from sqlalchemy import select

from flashapp.accounts import register_user
from flashapp.decksource import parse_deck_text
from flashapp.generation import build_deck
from flashapp.models import Card, Deck
from flashapp.scheduling import answer_card

REPO = Path(__file__).resolve().parent.parent
BUNDLED_DECK = REPO / "decks" / "back-muscles.yaml"

# A Monday morning: the fixed "now" of the domain tests.
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)

# werkzeug's cheapest method: the tests make hundreds of accounts, and scrypt costs ~0.1 s
# each. The app's default, scrypt, keeps tests of its own: tests/unit/test_accounts.py,
# tests/test_config.py and the web log-in test in tests/web/test_accounts_web.py.
FAST_HASH_METHOD = "pbkdf2:sha256:1"


# ---------------------------------------------------------------- the app's own set-up steps
# The tests reach the schema and deck-building steps of `flashapp init` only through these two
# helpers, so that when those steps move, only this place changes.

def upgrade_database_in(app) -> None:
    """Create or upgrade the app's schema, as `flashapp init` does."""
    from flashapp import db
    from flashapp.schema import upgrade_database

    with app.app_context():
        upgrade_database()
        db.session.remove()


def build_decks_in(app, paths: Iterable[Path]) -> None:
    """Build facts files into the app's database, as `flashapp deck build` does."""
    from flashapp import db
    from flashapp.decks import build_decks

    with app.app_context():
        build_decks(db.session(), list(paths), now=datetime.now(timezone.utc))
        db.session.remove()


# ---------------------------------------------------------------- test decks

def _scalar(value) -> str:
    """A YAML scalar for value: plain when it reads back unchanged, double-quoted otherwise."""
    if isinstance(value, bool):
        return "true" if value else "false"
    text = str(value)
    return text if _reads_back_plain(text) else _quoted(text)


@functools.cache
def _reads_back_plain(text: str) -> bool:
    """Whether text written as a plain YAML scalar reads back as itself. Cached, as `_quoted` is: the test decks
    ask both of the same few hundred strings again and again, and each answer costs a YAML parse or dump."""
    try:
        return yaml.safe_load(f"value: {text}") == {"value": text}
    except yaml.YAMLError:
        return False


@functools.cache
def _quoted(text: str) -> str:
    return yaml.safe_dump(text, default_style='"', allow_unicode=True, width=float("inf")).rstrip("\n")


def deck_text(*, slug: str, title: str, source: str, sections: dict[str, str],
              relations: dict[str, dict[str, str]], facts: list[dict]) -> str:
    """A facts file laid out as decks/README.md shows it: one field a line, templates quoted.

    Every test deck is written by this one function, so line numbers stay predictable.
    """
    lines = ["deck:", f"  slug: {_scalar(slug)}", f"  title: {_scalar(title)}", f"  source: {_scalar(source)}",
             "  sections:"]
    lines += [f"    {key}: {_scalar(name)}" for key, name in sections.items()]
    lines.append("relations:")
    for relation, templates in relations.items():
        lines.append(f"  {relation}:")
        lines += [f"    {template}: {_quoted(text)}" for template, text in templates.items()]
    lines.append("facts:")
    for fact in facts:
        first, *rest = fact.items()
        lines.append(f"  - {first[0]}: {_scalar(first[1])}")
        lines += [f"    {field}: {_scalar(value)}" for field, value in rest]
    return "\n".join(lines) + "\n"


# The small deck most tests use: two relations, one reversible and one grouped, one supplemented
# fact. The deck source tests count lines in it (the first fact starts on line 15).
PLANETS = deck_text(
    slug="planets", title="Planets", source="A small test text", sections={"orbits": "Orbits"},
    relations={
        "moon": {"forward": "What is the largest moon of {subject}?", "reverse": "{object} orbits which planet?"},
        "kind": {"forward": "What kind of planet is {subject}?", "grouped": "Which planets are {object}?"},
    },
    facts=[
        {"relation": "moon", "subject": "Jupiter", "object": "Ganymede", "section": "orbits"},
        {"relation": "kind", "subject": "Mars", "object": "rocky", "section": "orbits", "supplemented": True},
    ],
)


@functools.cache  # the same few decks are written for hundreds of tests
def numbers_deck(count: int = 8, *, slug: str = "numbers") -> str:
    """A deck of `count` one-card facts, "What is the square of n?", in order: for scheduling tests."""
    return deck_text(
        slug=slug, title=slug.title(), source="test", sections={"main": "Main"},
        relations={"square": {"forward": "What is the square of {subject}?"}},
        facts=[{"relation": "square", "subject": str(n), "object": str(n * n), "section": "main"}
               for n in range(1, count + 1)],
    )


def build_numbers_deck(session, *, count: int = 8, slug: str = "numbers", now: datetime = T0) -> Deck:
    """Build a numbers deck into session (the caller commits) and return it."""
    build_deck(session, parse_deck_text(numbers_deck(count, slug=slug), f"{slug}.yaml"), now=now)
    return session.scalar(select(Deck).where(Deck.slug == slug))


def with_lines(text: str, old: str, new: str) -> str:
    """text with the first `old` replaced by `new`; `old` must be there."""
    assert old in text
    return text.replace(old, new, 1)


def write_deck(folder: Path, text: str = PLANETS, *, name: str = "planets.yaml") -> Path:
    """Write a facts file into folder and return its path."""
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


# ---------------------------------------------------------------- the web through the test client

STUDY = "/study/back-muscles"
# How the done page names the start of the next study day (04:00 UTC), whenever a test runs: the page reads the
# real clock, so in the hour before 04:00 it says "in N minutes (04:00)".
NEXT_DAY_START = r"(?:(?:today|tomorrow) at 04:00|in \d+ minutes? \(04:00\)|now)"

_CSRF_RE = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"|name="csrf_token" value="([^"]+)"')


def csrf_token(html: str) -> str:
    """The CSRF token from a rendered form."""
    match = _CSRF_RE.search(html)
    assert match, "no CSRF token in the page"
    return match.group(1) or match.group(2)


class AuthActions:
    """Sign up, log in and log out through the real forms."""

    def __init__(self, client):
        self.client = client

    def register(self, username="ada", password="correct horse", time_zone="UTC", class_code=None):
        token = csrf_token(self.client.get("/register").get_data(as_text=True))
        data = {"username": username, "password": password, "confirm": password, "time_zone": time_zone,
                "csrf_token": token}
        if class_code is not None:
            data["class_code"] = class_code
        return self.client.post("/register", data=data)

    def login(self, username="ada", password="correct horse"):
        token = csrf_token(self.client.get("/login").get_data(as_text=True))
        return self.client.post("/login", data={"username": username, "password": password, "csrf_token": token})

    def logout(self):
        token = csrf_token(self.client.get("/").get_data(as_text=True))
        return self.client.post("/logout", data={"csrf_token": token})


def _hidden(html: str, name: str) -> str:
    match = re.search(rf'name="{name}"[^>]*value="([^"]*)"', html) or \
        re.search(rf'value="([^"]*)"[^>]*name="{name}"', html)
    assert match, f"no {name} on the study page"
    return match.group(1)


def showing(html: str) -> dict[str, str]:
    """The showing on a study page: the answer form's fields (its CSRF token and the signed showing
    token the server issued), and the id of the card shown (from the page, for the tests to compare).
    """
    card = re.search(r'<article class="card-view" id="card" data-card="(\d+)"', html)
    assert card, "no card on the study page"
    return {"csrf_token": _hidden(html, "csrf_token"), "token": _hidden(html, "token"), "card_id": card.group(1)}


def answer(client, fields, rating="3", *, slug="back-muscles", **extra):
    """Post an answer to a showing, as the study page's form does: its CSRF token, its signed token, a rating.

    The shown card's id is not sent: the server reads the card from the token. `extra` adds fields.
    """
    data = {name: value for name, value in fields.items() if name != "card_id"}
    data.update(rating=rating, **extra)
    return client.post(f"/study/{slug}/answer", data=data)


def create_class(client, name="Anatomy 1") -> int:
    """Make a class as the logged-in teacher; its id."""
    token = csrf_token(client.get("/teach/").get_data(as_text=True))
    response = client.post("/teach/", data={"name": name, "csrf_token": token})
    assert response.status_code == 302, response.get_data(as_text=True)
    return int(re.search(r"/teach/classes/(\d+)", response.headers["Location"]).group(1))


# ---------------------------------------------------------------- faults of the machine

def fill_disk(folder: Path) -> Path:
    """Write a file into folder until its filesystem has not one byte left; the file's path (delete it to free)."""
    filler = folder / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        for size in (1 << 20, 1 << 12, 1):
            try:
                while True:
                    os.write(fd, b"\0" * size)
            except OSError as error:
                if error.errno != errno.ENOSPC:
                    raise
    finally:
        os.close(fd)
    return filler


@contextlib.contextmanager
def read_only(path: Path) -> Iterator[Path]:
    """Make a file or folder read-only until the block ends, for real.

    As root (whom permissions do not stop) by mounting it read-only onto itself; otherwise by
    taking away its write permissions. Files opened for writing before the block stay writable.
    """
    if os.geteuid() != 0:
        mode = path.stat().st_mode
        path.chmod(mode & ~0o222)
        try:
            yield path
        finally:
            path.chmod(mode)
        return
    subprocess.run(["mount", "--bind", str(path), str(path)], check=True)
    try:
        subprocess.run(["mount", "-o", "remount,bind,ro", str(path)], check=True)
        yield path
    finally:
        # Lazily, so that a file a failed test left open does not leave the mount behind.
        subprocess.run(["umount", "--lazy", str(path)], check=True)


# ---------------------------------------------------------------- a real `flashapp serve`

SERVER_START_TIMEOUT = 30.0
CLI_TIMEOUT = 120.0
PORT_ATTEMPTS = 3  # ports tried by `serving` before it gives up


def flashapp_script() -> Path:
    """The `flashapp` console script of the interpreter running the tests."""
    bindir = Path(sys.executable).parent
    for name in ("flashapp", "flashapp.exe"):
        if (bindir / name).exists():
            return bindir / name
    pytest.fail(f"no flashapp script next to {sys.executable}; install the project with pip install -e .",
                pytrace=False)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def answers_health(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
        return False


@dataclass(frozen=True)
class FlashappInstall:
    """One install: an instance folder and a SQLite file, and the environment that selects them."""

    folder: Path
    env: dict[str, str]
    script: Path

    def run(self, *args: str | os.PathLike, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run `flashapp ARGS` against this install; fail the test when it fails (unless check=False)."""
        command = [str(self.script), *map(str, args)]
        result = subprocess.run(command, env=self.env, cwd=self.folder, capture_output=True, text=True,
                                stdin=subprocess.DEVNULL, timeout=CLI_TIMEOUT)
        if check and result.returncode != 0:
            pytest.fail(f"`flashapp {' '.join(map(str, args))}` failed ({result.returncode}):\n"
                        f"{result.stdout}\n{result.stderr}", pytrace=False)
        return result

    def create_user(self, username: str, password: str, *, teacher: bool = False) -> None:
        """`flashapp user create`, for accounts a test needs but does not sign up through the pages."""
        self.run("user", "create", username, "--password", password, *(["--teacher"] if teacher else []))


@dataclass(frozen=True)
class LiveServer:
    """A running `flashapp serve` process and the install it serves."""

    base: str
    install: FlashappInstall
    log: Path

    def url(self, path: str) -> str:
        return self.base + path

    def flashapp(self, *args: str | os.PathLike, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run a `flashapp` command against the database this server uses."""
        return self.install.run(*args, check=check)


def new_install(folder: Path, *, config: str = "") -> FlashappInstall:
    """A fresh install in folder, made with `flashapp init` (schema plus the bundled deck).

    Its instance config picks the tests' fast password hash, for the server and every command,
    followed by `config` (more lines of instance/config.py).
    """
    instance = folder / "instance"
    instance.mkdir(parents=True, exist_ok=True)
    (instance / "config.py").write_text(f"PASSWORD_HASH_METHOD = {FAST_HASH_METHOD!r}\n{config}")
    env = dict(os.environ,
               FLASHAPP_INSTANCE_PATH=str(instance),
               FLASHAPP_DATABASE_URL=f"sqlite:///{folder / 'e2e.sqlite'}")
    env.pop("FLASHAPP_SECRET_KEY", None)
    install = FlashappInstall(folder=folder, env=env, script=flashapp_script())
    install.run("init")
    return install


@contextlib.contextmanager
def serving(install: FlashappInstall, *options: str) -> Iterator[LiveServer]:
    """Run `flashapp serve [OPTIONS]` for an install on a free port until the block ends.

    Other test processes (the suite runs in parallel) start servers and open connections too, so a port found
    free may be taken before this server binds it. The server counts as started only once its own process
    listens on the port, never because another one answers there; one that finds its port taken is started
    again on another.
    """
    log_path = install.folder / "server.log"
    for attempt in range(1, PORT_ATTEMPTS + 1):
        port = free_port()
        with open(log_path, "w") as log:
            process = subprocess.Popen([str(install.script), "serve", "--host", "127.0.0.1", "--port", str(port),
                                        *options], env=install.env, cwd=install.folder, stdin=subprocess.DEVNULL,
                                       stdout=log, stderr=subprocess.STDOUT)
        try:
            if _wait_until_serving(process, port, log_path, last_attempt=attempt == PORT_ATTEMPTS):
                yield LiveServer(base=f"http://127.0.0.1:{port}", install=install, log=log_path)
                return
        finally:
            _stop(process)


def _wait_until_serving(process: subprocess.Popen, port: int, log_path: Path, *, last_attempt: bool) -> bool:
    """True once the server process listens on port and answers /healthz; False when it found the port taken."""
    deadline = time.monotonic() + SERVER_START_TIMEOUT
    while not (_listens_on(process.pid, port) and answers_health(f"http://127.0.0.1:{port}/healthz")):
        if process.poll() is not None:
            log = log_path.read_text()
            if "Address already in use" in log and not last_attempt:
                return False
            pytest.fail(f"flashapp serve exited with {process.returncode}:\n{log}", pytrace=False)
        if time.monotonic() > deadline:
            pytest.fail(f"flashapp serve did not answer /healthz within {SERVER_START_TIMEOUT:.0f}s:\n"
                        f"{log_path.read_text()}", pytrace=False)
        time.sleep(0.1)
    return True


def _listens_on(pid: int, port: int) -> bool:
    try:
        sockets = psutil.Process(pid).net_connections(kind="tcp4")
    except psutil.Error:
        return False
    return any(s.status == psutil.CONN_LISTEN and s.laddr.port == port for s in sockets)


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


# ---------------------------------------------------------------- a student with a known memory
# A "true" memory unlike FSRS's defaults: quicker to forget at first, slower to grow.
def true_parameters() -> list[float]:
    import fsrs_rs_python as fsrs_rs

    weights = [float(w) for w in fsrs_rs.DEFAULT_PARAMETERS]
    weights[0:4] = [0.1, 0.6, 1.2, 4.0]
    weights[8] = 1.2
    weights[20] = 0.4
    return weights


def simulate_student(session, scheduler, *, user_id: int, card_ids: list[int], days: int, seed: int,
                     start: datetime = T0, new_per_day: int = 8) -> int:
    """The student studies what is due every day through `answer_card`, rating as the true memory says.

    Learning cards come back the same day until they graduate; time zone UTC. Returns the
    number of answers given.
    """
    import random
    from datetime import timedelta

    import fsrs_rs_python as fsrs_rs
    from fsrs import Rating

    from flashapp.scheduling import answer_card

    rng = random.Random(seed)
    truth = fsrs_rs.FSRS(true_parameters())
    decay = -true_parameters()[20]
    factor = 0.9 ** (1 / decay) - 1
    memory: dict[int, object] = {}
    last_day: dict[int, int] = {}
    due: dict[int, datetime] = {}
    learning: dict[int, bool] = {}
    introduced = answers = 0
    for day in range(days):
        now = start + timedelta(days=day, minutes=rng.randint(0, 600))
        today = (now - timedelta(hours=4)).date().toordinal()
        queue = [c for c in due if not learning[c] and (due[c] - timedelta(hours=4)).date().toordinal() <= today]
        queue += card_ids[introduced:introduced + new_per_day]
        introduced = min(len(card_ids), introduced + new_per_day)
        while queue:
            card = queue.pop(0)
            if card in memory:
                elapsed = today - last_day[card]
                recall = (1 + factor * elapsed / memory[card].stability) ** decay  # type: ignore[attr-defined]
                rating = rng.choices((Rating.Hard, Rating.Good, Rating.Easy), (15, 75, 10))[0] \
                    if rng.random() < recall else Rating.Again
                states = truth.next_states(memory[card], 0.9, elapsed)
            else:
                rating = rng.choices((Rating.Again, Rating.Hard, Rating.Good, Rating.Easy), (25, 10, 55, 10))[0]
                states = truth.next_states(None, 0.9, 0)
            memory[card] = getattr(states, rating.name.lower()).memory
            last_day[card] = today
            answers += 1
            result = answer_card(session, scheduler, user_id=user_id, card_id=card, rating=rating,
                                 token=f"student-{user_id}-{answers}", now=now, duration_ms=4000)
            due[card] = result.review.due
            learning[card] = (due[card] - timedelta(hours=4)).date().toordinal() <= today
            now += timedelta(seconds=rng.randint(5, 30))
            if learning[card]:
                now = max(now, due[card])
                queue.append(card)
        session.commit()
    return answers


# ---------------------------------------------------------------- processes killed half-way

def locked_source(folder: Path):
    """A small SQLite file (rollback journal) and a connection holding its exclusive lock.

    A backup of it waits, after it has made its temporary file, until the lock is released
    (`connection.rollback()`); close the connection when done.
    """
    import sqlite3

    path = folder / "source.sqlite"
    connection = sqlite3.connect(path, isolation_level=None)
    connection.execute("PRAGMA journal_mode=DELETE")
    connection.execute("CREATE TABLE IF NOT EXISTS filler (x TEXT)")
    connection.execute("INSERT INTO filler VALUES ('something to copy')")
    connection.execute("BEGIN EXCLUSIVE")
    connection.execute("INSERT INTO filler VALUES ('not committed')")
    return path, connection


def start_backup_process(source: Path, target: Path):
    """`backup_sqlite(source, target)` in a process of its own (a `subprocess.Popen`)."""
    import subprocess
    import sys

    script = "import sys\nfrom flashapp.backup import backup_sqlite\nbackup_sqlite(sys.argv[1], sys.argv[2])\n"
    return subprocess.Popen([sys.executable, "-c", script, str(source), str(target)], cwd=REPO)


def wait_for_file(folder: Path, pattern: str, *, process=None, timeout: float = 20.0) -> Path:
    """The first file in folder matching pattern, waited for (while `process`, if given, runs)."""
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = sorted(folder.glob(pattern)) if folder.is_dir() else []
        if found:
            return found[0]
        assert process is None or process.poll() is None, "the process ended before making its file"
        time.sleep(0.001)
    raise AssertionError(f"no {pattern} in {folder} after {timeout} s")


def kill(process) -> None:
    """SIGKILL a process and reap it: nothing of its own clean-up runs."""
    import signal

    process.send_signal(signal.SIGKILL)
    assert process.wait(10) == -signal.SIGKILL


# ---------------------------------------------------------------- a student studying through the study screen
def study_every_evening(session, scheduler, *, user_id: int, slug: str, time_zone: str, first_day, days: int,
                        seed: int, new_per_day: int = 10, leave_last_day_unfinished: bool = False) -> int:
    """The student opens the deck's study screen most evenings and answers what it shows until it has nothing.

    Drives the app's own use cases (`study_screen`, then `answer` with the showing's token) at
    fixed times: an evening session at about 18:00 in `time_zone` from the date `first_day`,
    skipping about one day in six, a few seconds per answer, ratings drawn from `seed`. With
    `leave_last_day_unfinished`, the last session stops right after the first new card it shows,
    leaving that card (and any lapsed one) in learning.
    Returns the number of answers recorded.
    """
    import random
    from datetime import time as clock_time
    from datetime import timedelta
    from zoneinfo import ZoneInfo

    from fsrs import Rating

    from flashapp.scheduling import Outcome
    from flashapp.showings import ShowingTokens
    from flashapp.study import StudySettings, answer, study_screen

    rng = random.Random(seed)
    showings = ShowingTokens("simulated-student-key")
    settings = StudySettings(new_cards_per_day=new_per_day)
    recorded = 0
    for day in range(days):
        if day and day < days - 1 and rng.random() < 1 / 6:
            continue
        start = datetime.combine(first_day + timedelta(days=day), clock_time(18, 0), tzinfo=ZoneInfo(time_zone))
        now = start.astimezone(timezone.utc) + timedelta(minutes=rng.randint(0, 120))
        while True:
            screen = study_screen(session, scheduler, showings, user_id=user_id, slug=slug, time_zone=time_zone,
                                  now=now, settings=settings)
            session.commit()
            if screen.showing is None:
                break
            now += timedelta(seconds=rng.randint(3, 25))
            rating = rng.choices((Rating.Again, Rating.Hard, Rating.Good, Rating.Easy), (12, 13, 63, 12))[0] \
                if screen.showing.state is not None else rng.choice((Rating.Again, Rating.Hard, Rating.Good))
            outcome = answer(session, scheduler, showings, user_id=user_id, slug=slug, token=screen.showing.token,
                             rating=rating, now=now)
            assert outcome is Outcome.RECORDED
            recorded += 1
            if leave_last_day_unfinished and day == days - 1 and screen.showing.state is None:
                break
            now += timedelta(seconds=rng.randint(1, 5))
    return recorded

# ---------------------------------------------------------------- documents for decks written in the browser

def simple_pdf(lines: list[str]) -> bytes:
    """A small valid PDF with one page showing each line of text (Helvetica), written by hand.

    An empty line leaves a gap, as between paragraphs.
    """
    def escape(text: str) -> str:
        return text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")

    commands = ["BT", "/F1 11 Tf", "14 TL", "56 780 Td"]
    for line in lines:
        commands.append(f"({escape(line)}) Tj T*" if line else "T*")
    commands.append("ET")
    stream = "\n".join(commands).encode("latin-1")
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length " + str(len(stream)).encode() + b" >>\nstream\n" + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n".encode() + body + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    for offset in offsets:
        out += f"{offset:010d} 00000 n \n".encode()
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    return bytes(out)


def encrypted_pdf() -> bytes:
    """A password-protected PDF (pypdf writes it)."""
    import io

    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(simple_pdf(["Secret text."]))))
    writer.encrypt(user_password="secret", owner_password="owner")
    buffer = io.BytesIO()
    writer.write(buffer)
    return buffer.getvalue()


# The document of the browser-written deck's tests, as lines of its PDF.
PDF_LINES = [
    "The Water Cycle",
    "",
    "Evaporation is the change of liquid water into vapour. The Sun supplies the heat, e.g. on a warm day.",
    "Clouds form when vapour cools by about 0.5 degrees per 100 m.",
    "",
    "Precipitation",
    "",
    "Precipitation is water that falls from clouds as rain, snow or hail.",
    "Dr. Rain says that gravity pulls it down.",
]


# --- A history to check ---------------------------------------------------------------------

STUDY_RATINGS = [Rating.Good, Rating.Again, Rating.Good, Rating.Easy, Rating.Hard, Rating.Good]


def study(session, scheduler, *, users=("ada", "bob"), cards=4, answers=3) -> None:
    """Each user answers the first `cards` cards `answers` times (one review for the last card)."""
    deck_cards = list(session.scalars(select(Card).order_by(Card.position)))[:cards]
    for u, name in enumerate(users):
        user = register_user(session, username=name, password="long enough", password_method=FAST_HASH_METHOD)
        session.flush()
        for c, card in enumerate(deck_cards):
            count = 1 if c == len(deck_cards) - 1 else answers
            at = T0 + timedelta(minutes=u)
            for n in range(count):
                answer_card(session, scheduler, user_id=user.id, card_id=card.id, now=at,
                            rating=STUDY_RATINGS[(u + c + n) % len(STUDY_RATINGS)], token=f"{name}-{card.id}-{n}")
                at += timedelta(days=1 + 2 * n, minutes=c)
    session.commit()
