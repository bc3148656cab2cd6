"""Fixtures for browser tests: a real `flashapp serve` process and a headless Chromium.

Without Chromium (or without the playwright package) the browser tests are skipped,
unless FLASHAPP_REQUIRE_BROWSER=1, in which case they fail so CI cannot pass silently.

Each test module gets a server of its own on a fresh database (the first account
registered on a new install becomes the teacher, so modules must not share one).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import REPO, LiveServer, new_install, serving

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
ACTION_TIMEOUT_MS = 10_000


def _missing(message: str) -> None:
    """Skip, or fail when the environment says browser tests must run."""
    if os.environ.get("FLASHAPP_REQUIRE_BROWSER") == "1":
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


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
