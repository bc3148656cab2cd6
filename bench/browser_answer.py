"""Benchmark: from the key press that answers a card to the next question on screen, in headless Chromium.

Starts `flashapp serve` on a loopback port with a throw-away instance folder and a deck of plenty of
new cards, signs a student up, and studies in Debian's Chromium: once with JavaScript on (Space
shows the answer, a digit answers; the next card is swapped in) and once with it off (the answer
shown by a click, Good focused, Enter sends the plain form and the browser loads the next page).
Only the answer is timed: from the key press to the frame in which the next question is shown.

    .venv/bin/python bench/browser_answer.py [--answers 60]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from playwright.sync_api import Page, sync_playwright
from review_endpoint import bench_deck, free_port, percentile

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"]
PASSWORD = "benchmark password"
# True once the page shows a question whose showing token differs from the one answered.
NEXT_QUESTION_SHOWN = """token => {
    const field = document.querySelector('#answer-form input[name=token]');
    const question = document.querySelector('#card .question');
    return !!field && field.value !== token && !!question && question.getClientRects().length > 0;
}"""


def sign_up(page: Page, base: str, username: str) -> None:
    page.goto(f"{base}/register")
    page.fill("#username", username)
    page.fill("#password", PASSWORD)
    page.fill("#confirm", PASSWORD)
    with page.expect_navigation():
        page.click("button[type=submit]")


def token_of(page: Page) -> str:
    return page.locator("#answer-form input[name=token]").input_value()


def answer_with_javascript(page: Page, base: str, answers: int) -> list[float]:
    page.goto(f"{base}/study/bench")
    times = []
    for i in range(answers):
        token = token_of(page)
        page.keyboard.press("Space")
        page.locator("#answer").wait_for(state="visible")
        started = time.perf_counter()
        page.keyboard.press("4" if i % 3 else "3")
        page.wait_for_function(NEXT_QUESTION_SHOWN, arg=token, polling="raf")
        times.append(time.perf_counter() - started)
    return times


def answer_without_javascript(page: Page, base: str, answers: int) -> list[float]:
    page.goto(f"{base}/study/bench")
    times = []
    for i in range(answers):
        token = token_of(page)
        page.click("summary")
        page.locator(f'#answer-form button[data-key="{"4" if i % 3 else "3"}"]').focus()
        started = time.perf_counter()
        with page.expect_navigation():
            page.keyboard.press("Enter")
        page.wait_for_function(NEXT_QUESTION_SHOWN, arg=token, polling="raf")
        times.append(time.perf_counter() - started)
    return times


def line(name: str, values: list[float]) -> str:
    return (f"{name:<26} n={len(values):<4} median={statistics.median(values) * 1000:7.1f} ms  "
            f"p90={percentile(values, .9) * 1000:7.1f} ms  min={min(values) * 1000:6.1f}  "
            f"max={max(values) * 1000:6.1f}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--answers", type=int, default=60)
    parser.add_argument("--warm-up", type=int, default=3, help="answers in each mode that are not counted")
    args = parser.parse_args()
    flashapp = Path(sys.executable).parent / "flashapp"
    per_mode = args.answers + args.warm_up
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "FLASHAPP_INSTANCE_PATH": tmp, "FLASHAPP_DATABASE_URL": f"sqlite:///{tmp}/bench.sqlite"}
        deck = Path(tmp, "bench.yaml")
        deck.write_text(bench_deck(per_mode * 2 + 10))
        subprocess.run([flashapp, "deck", "build", deck], env=env, check=True, stdout=subprocess.DEVNULL)
        Path(tmp, "config.py").write_text("NEW_CARDS_PER_DAY = 100000\nPASSWORD_HASH_METHOD = 'pbkdf2:sha256:1000'\n")
        port = free_port()
        server = subprocess.Popen([flashapp, "serve", "--port", str(port)], env=env,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        base = f"http://127.0.0.1:{port}"
        try:
            for _ in range(100):
                try:
                    urllib.request.urlopen(base + "/healthz", timeout=1).read()
                    break
                except OSError:
                    time.sleep(0.1)
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
                try:
                    on = browser.new_context(viewport={"width": 1280, "height": 800}).new_page()
                    sign_up(on, base, "bench.on")
                    with_js = answer_with_javascript(on, base, per_mode)[args.warm_up:]
                    off = browser.new_context(viewport={"width": 1280, "height": 800},
                                              java_script_enabled=False).new_page()
                    sign_up(off, base, "bench.off")
                    without_js = answer_without_javascript(off, base, per_mode)[args.warm_up:]
                finally:
                    browser.close()
        finally:
            server.terminate()
            server.wait(timeout=10)

    print("key press -> next question visible, headless Chromium, local `flashapp serve` (SQLite)")
    print(line("JavaScript on (swap)", with_js))
    print(line("JavaScript off (page load)", without_js))


if __name__ == "__main__":
    main()
