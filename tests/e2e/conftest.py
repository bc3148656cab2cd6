"""Fixtures for browser tests: a real `flashapp serve` process and a headless Chromium.

Without Chromium (or without the playwright package) the browser tests are skipped,
unless FLASHAPP_REQUIRE_BROWSER=1, in which case they fail so CI cannot pass silently.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
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


@pytest.fixture(scope="session")
def live_server(browser, tmp_path_factory):
    """Base URL of a real `flashapp serve` process on a fresh SQLite database with the bundled deck.

    Depends on `browser` so that a missing browser skips before any server starts.
    """
    tmp = tmp_path_factory.mktemp("e2e-server")
    env = dict(os.environ,
               FLASHAPP_INSTANCE_PATH=str(tmp / "instance"),
               FLASHAPP_DATABASE_URL=f"sqlite:///{tmp / 'e2e.sqlite'}")
    env.pop("FLASHAPP_SECRET_KEY", None)
    script = _flashapp_script()

    init = subprocess.run([str(script), "init"], env=env, cwd=tmp, capture_output=True, text=True, timeout=120)
    if init.returncode != 0:
        pytest.fail(f"flashapp init failed ({init.returncode}):\n{init.stdout}\n{init.stderr}", pytrace=False)

    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    log_path = tmp / "server.log"
    with open(log_path, "w") as log:
        process = subprocess.Popen([str(script), "serve", "--host", "127.0.0.1", "--port", str(port)],
                                   env=env, cwd=tmp, stdout=log, stderr=subprocess.STDOUT)
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
        yield base
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)


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
