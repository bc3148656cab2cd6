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

# Generous bounds that only prove nothing hangs: the server is told to wait 2 s for the write lock,
# and before it waited 30 s in its own queue and 30 s more at SQLite's lock.
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

    def request(self, path: str, data: dict[str, str] | None = None) -> tuple[int, str]:
        body = urllib.parse.urlencode(data).encode() if data is not None else None
        try:
            with self.opener.open(self.base + path, body, timeout=ANSWERED_WITHIN) as response:
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
    install = new_install(tmp_path, config="WRITE_WAIT_SECONDS = 2\n")
    database = tmp_path / "e2e.sqlite"
    with serving(install, "--threads", "4") as server:
        students = [Visitor(server.base) for _ in range(8)]
        forms = [student.sign_up_form(f"student{n}") for n, student in enumerate(students)]
        reader = Visitor(server.base)

        holder = sqlite3.connect(database, isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")  # another program holds the write lock
        try:
            answers: dict[int, tuple[int, str]] = {}

            def sign_up(n: int) -> None:
                try:
                    answers[n] = students[n].request("/register", forms[n])
                except OSError as error:  # a time-out: the assertion below reports it
                    answers[n] = (0, repr(error))

            sign_ups = [threading.Thread(target=sign_up, args=(n,)) for n in range(len(students))]
            for thread in sign_ups:
                thread.start()
            # More sign-ups than the server has threads are waiting or turned away: reading still works.
            for _ in range(300):
                status, body = reader.request("/healthz")
                assert status == 200, body
                assert reader.request("/login")[0] == 200
                writes = json.loads(body)["checks"]["writes"]
                if "waiting for the write lock" in writes:
                    break
                time.sleep(0.05)
            assert writes.startswith("waiting: ") and "waiting for the write lock" in writes, writes
            for thread in sign_ups:
                thread.join(THREADS_DONE_WITHIN)
            assert not any(thread.is_alive() for thread in sign_ups)
            # Every sign-up came back, before the lock was let go, as a busy page.
            assert sorted(status for status, _ in answers.values()) == [503] * len(students), answers
            for _, page in answers.values():
                assert "Busy, try again" in page and "Nothing was saved" in page
            status, body = reader.request("/healthz")
            assert status == 200 and "turned away as busy in the last minute" in json.loads(body)["checks"]["writes"]
        finally:
            holder.rollback()
            holder.close()

        assert _users(database) == 0
        assert students[0].request("/register", students[0].sign_up_form("student0"))[0] == 302
        assert _users(database) == 1
        log = server.log.read_text()
        assert "Not saved (POST /register): the write lock stayed taken for over 2 s" in log


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
