"""Fixtures for browser tests: a real `flashapp serve` process and a headless Chromium.

Without Chromium (or without the playwright package) the browser tests are skipped,
unless FLASHAPP_REQUIRE_BROWSER=1, in which case they fail so CI cannot pass silently.

Each test module gets a server of its own on a fresh database (the first account
registered on a new install becomes the teacher, so modules must not share one).
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.helpers import FAST_HASH_METHOD, REPO

SCREENSHOTS = REPO / "screenshots"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SERVER_START_TIMEOUT = 30.0
CLI_TIMEOUT = 120.0
ACTION_TIMEOUT_MS = 10_000


def _missing(message: str) -> None:
    """Skip, or fail when the environment says browser tests must run."""
    if os.environ.get("FLASHAPP_REQUIRE_BROWSER") == "1":
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


def _flashapp_script() -> Path:
    """The `flashapp` console script of the interpreter running the tests."""
    bindir = Path(sys.executable).parent
    for name in ("flashapp", "flashapp.exe"):
        if (bindir / name).exists():
            return bindir / name
    pytest.fail(f"no flashapp script next to {sys.executable}; install the project with pip install -e .",
                pytrace=False)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _healthy(url: str) -> bool:
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


def new_install(folder: Path) -> FlashappInstall:
    """A fresh install in folder, made with `flashapp init` (schema plus the bundled deck).

    Its instance config picks the tests' fast password hash, for the server and every command.
    """
    instance = folder / "instance"
    instance.mkdir(parents=True, exist_ok=True)
    (instance / "config.py").write_text(f"PASSWORD_HASH_METHOD = {FAST_HASH_METHOD!r}\n")
    env = dict(os.environ,
               FLASHAPP_INSTANCE_PATH=str(instance),
               FLASHAPP_DATABASE_URL=f"sqlite:///{folder / 'e2e.sqlite'}")
    env.pop("FLASHAPP_SECRET_KEY", None)
    install = FlashappInstall(folder=folder, env=env, script=_flashapp_script())
    install.run("init")
    return install


@contextlib.contextmanager
def serving(install: FlashappInstall) -> Iterator[LiveServer]:
    """Run `flashapp serve` for an install on a free port until the block ends."""
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    log_path = install.folder / "server.log"
    with open(log_path, "w") as log:
        process = subprocess.Popen([str(install.script), "serve", "--host", "127.0.0.1", "--port", str(port)],
                                   env=install.env, cwd=install.folder, stdin=subprocess.DEVNULL,
                                   stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + SERVER_START_TIMEOUT
        while not _healthy(f"{base}/healthz"):
            if process.poll() is not None:
                pytest.fail(f"flashapp serve exited with {process.returncode}:\n{log_path.read_text()}",
                            pytrace=False)
            if time.monotonic() > deadline:
                pytest.fail(f"flashapp serve did not answer /healthz within {SERVER_START_TIMEOUT:.0f}s:\n"
                            f"{log_path.read_text()}", pytrace=False)
            time.sleep(0.1)
        yield LiveServer(base=base, install=install, log=log_path)
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)


@pytest.fixture(scope="session")
def browser():
    """A headless Debian Chromium, driven by playwright."""
    if not CHROMIUM.exists():
        _missing("Chromium not found at /usr/bin/chromium; install Debian's chromium to run browser tests")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _missing("playwright is not installed; install the test extras (pip install -e '.[test]') "
                 "to run browser tests")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture(scope="module")
def server(browser, tmp_path_factory) -> Iterator[LiveServer]:
    """A real `flashapp serve` process for this test module, on a fresh SQLite database with the bundled deck.

    Depends on `browser` so that a missing browser skips before any server starts.
    """
    install = new_install(tmp_path_factory.mktemp("e2e-server"))
    with serving(install) as live:
        yield live


@pytest.fixture(scope="module")
def live_server(server) -> str:
    """Base URL of this module's server."""
    return server.base


@pytest.fixture
def new_context(browser):
    """Make browser contexts (separate cookie jars) that are all closed after the test."""
    made = []

    def make(**options):
        context = browser.new_context(**options)
        context.set_default_timeout(ACTION_TIMEOUT_MS)
        made.append(context)
        return context

    yield make
    for context in made:
        context.close()


@pytest.fixture(scope="session")
def screenshots() -> Path:
    """The git-ignored folder the browser tests save their screenshots to."""
    SCREENSHOTS.mkdir(exist_ok=True)
    return SCREENSHOTS
