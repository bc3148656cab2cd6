"""A real `flashapp serve` when another program holds the database or the database cannot be written."""

from __future__ import annotations

import http.cookiejar
import json
import re
import sqlite3
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest

from tests.helpers import free_port, new_install, read_only, serving

# Generous bounds that only prove nothing hangs.
ANSWERED_WITHIN = 15
THREADS_DONE_WITHIN = 60


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


class Visitor:
    """One browser: its own cookies, pages fetched as they are, redirects not followed."""

    def __init__(self, base: str):
        self.base = base
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()), _NoRedirect)

    def request(self, path: str, data: dict[str, str] | None = None, *,
                timeout: float = ANSWERED_WITHIN) -> tuple[int, str]:
        body = urllib.parse.urlencode(data).encode() if data is not None else None
        try:
            with self.opener.open(self.base + path, body, timeout=timeout) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode()

    def sign_up_form(self, username: str) -> dict[str, str]:
        page = self.request("/register")[1]
        token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)
        return {"csrf_token": token, "username": username, "password": "long enough password",
                "confirm": "long enough password", "time_zone": "UTC"}


def _users(database) -> int:
    with sqlite3.connect(database) as connection:
        return connection.execute('SELECT count(*) FROM "user"').fetchone()[0]


def test_a_writer_holding_the_database_gets_busy_pages_while_reading_pages_and_healthz_answer(tmp_path):
    # A long wait, so that the waiting sign-ups are still waiting when the lock is let go: everything
    # below that must answer, answers while another program holds the lock.
    install = new_install(tmp_path, config="WRITE_WAIT_SECONDS = 60\n")
    database = tmp_path / "e2e.sqlite"
    with serving(install, "--threads", "4") as server:
        students = [Visitor(server.base) for _ in range(8)]
        forms = [student.sign_up_form(f"student{n}") for n, student in enumerate(students)]
        reader = Visitor(server.base)
        answers: dict[int, tuple[int, str]] = {}

        def sign_up(n: int) -> None:
            try:
                answers[n] = students[n].request("/register", forms[n], timeout=THREADS_DONE_WITHIN)
            except OSError as error:  # a time-out: the assertions below report it
                answers[n] = (0, repr(error))

        def health() -> str:
            status, body = reader.request("/healthz")
            assert status == 200, body
            return json.loads(body)["checks"]["writes"]

        sign_ups = [threading.Thread(target=sign_up, args=(n,)) for n in range(len(students))]
        holder = sqlite3.connect(database, isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")  # another program holds the write lock
        try:
            # One sign-up waits; the health check says so once it has waited half a second.
            sign_ups[0].start()
            for _ in range(300):
                if "1 waiting for the write lock" in (writes := health()):
                    break
                time.sleep(0.05)
            assert writes.startswith("waiting: 1 waiting for the write lock"), writes
            # Writes are stuck: of seven more sign-ups, more than the server has threads, one more
            # waits and the other six are turned away at once, saving nothing.
            for thread in sign_ups[1:]:
                thread.start()
            for _ in range(300):
                if len(answers) >= 6:
                    break
                time.sleep(0.05)
            turned_away = [page for status, page in answers.values() if status == 503]
            assert len(turned_away) == 6, answers
            for page in turned_away:
                assert "Busy, try again" in page and "Nothing was saved" in page
            # Pages that only read, and the health check, keep answering.
            assert reader.request("/login")[0] == 200
            writes = health()
            assert writes.startswith("waiting: 2 waiting for the write lock") and "6 turned away as busy" in writes
            assert _users(database) == 0
        finally:
            holder.rollback()
            holder.close()

        # Let go: the two that waited are saved.
        for thread in sign_ups:
            thread.join(THREADS_DONE_WITHIN)
        assert not any(thread.is_alive() for thread in sign_ups)
        assert sorted(status for status, _ in answers.values()) == [302] * 2 + [503] * 6, answers
        assert _users(database) == 2
        assert health().startswith("waiting: 6 turned away as busy")
        log = server.log.read_text()
        assert "Not saved (POST /register): writes were stuck and 2 already waited for the write lock" in log


def _start(install, *args: str) -> subprocess.CompletedProcess[str]:
    """Run `flashapp ARGS` that is expected to stop at once; one that keeps serving fails the test."""
    try:
        return subprocess.run([str(install.script), *args], env=install.env, cwd=install.folder,
                              capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=ANSWERED_WITHIN)
    except subprocess.TimeoutExpired:
        pytest.fail(f"`flashapp {' '.join(args)}` started although it cannot save anything")


def _refusal(result: subprocess.CompletedProcess[str]) -> str:
    """The one line a refused start printed."""
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


def test_serve_and_init_refuse_a_read_only_database_file_naming_it_and_the_fix(tmp_path):
    install = new_install(tmp_path)
    database = tmp_path / "e2e.sqlite"
    with read_only(database):
        for command in (("serve", "--port", str(free_port())), ("init",)):
            line = _refusal(_start(install, *command))
            assert line.startswith(f"Error: {database} is read-only") and f"chmod u+w '{database}'" in line
    with serving(install) as server:  # writable again: it starts
        assert Visitor(server.base).request("/healthz")[0] == 200


def test_serve_refuses_a_read_only_instance_folder_naming_it_and_the_fix(tmp_path):
    install = new_install(tmp_path)
    instance = tmp_path / "instance"
    with read_only(instance):
        line = _refusal(_start(install, "serve", "--port", str(free_port())))
    assert line.startswith(f"Error: {instance} is read-only") and "FLASHAPP_INSTANCE_PATH" in line
