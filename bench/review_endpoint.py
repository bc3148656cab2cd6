"""Benchmark: the answer endpoint against a bare endpoint (GET /healthz) on the same real server.

Starts `flashapp serve` on a free loopback port with a throw-away instance folder, registers
a student, then alternates: answer a card (GET the study page, POST the answer) and GET
/healthz. Prints latency percentiles of each and the throughput ratio measured in this run.

    .venv/bin/python bench/review_endpoint.py [--answers 300]
"""

from __future__ import annotations

import argparse
import http.cookiejar
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path

# The answer form's fields: the CSRF token and the showing's signed token (it names the card).
FIELDS = ("csrf_token", "token")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def field(html: str, name: str) -> str:
    match = re.search(rf'name="{name}"[^>]*value="([^"]*)"', html) or re.search(
        rf'value="([^"]*)"[^>]*name="{name}"', html)
    if not match:
        raise RuntimeError(f"no {name} in the page; did the queue run dry?")
    return match.group(1)


def bench_deck(size: int) -> str:
    facts = "\n".join(f"  - {{relation: square, subject: '{n}', object: '{n * n}', section: main}}"
                      for n in range(1, size + 1))
    return ("deck:\n  slug: bench\n  title: Bench\n  source: generated\n  sections: {main: Main}\n"
            "relations:\n  square:\n    forward: 'What is the square of {subject}?'\nfacts:\n" + facts + "\n")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--answers", type=int, default=300)
    args = parser.parse_args()
    flashapp = Path(sys.executable).parent / "flashapp"
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "FLASHAPP_INSTANCE_PATH": tmp, "FLASHAPP_DATABASE_URL": f"sqlite:///{tmp}/bench.sqlite"}
        # A deck with plenty of new cards, so the queue never runs dry.
        deck = Path(tmp, "bench.yaml")
        deck.write_text(bench_deck(args.answers * 2))
        subprocess.run([flashapp, "deck", "build", deck], env=env, check=True, stdout=subprocess.DEVNULL)
        Path(tmp, "config.py").write_text("NEW_CARDS_PER_DAY = 100000\n")
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
            jar = http.cookiejar.CookieJar()
            opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
            page = opener.open(base + "/register").read().decode()
            body = urllib.parse.urlencode({"csrf_token": field(page, "csrf_token"), "username": "bench",
                                           "password": "benchmark password", "confirm": "benchmark password",
                                           "time_zone": "UTC"}).encode()
            opener.open(base + "/register", body).read()

            answer_times, page_times, health_times = [], [], []
            for i in range(args.answers):
                started = time.perf_counter()
                page = opener.open(base + "/study/bench").read().decode()
                page_times.append(time.perf_counter() - started)
                data = {name: field(page, name) for name in FIELDS}
                data["rating"] = "4" if i % 3 else "3"
                body = urllib.parse.urlencode(data).encode()
                started = time.perf_counter()
                # The POST answers 303 and urllib follows it: time only the POST itself.
                request = urllib.request.Request(base + "/study/bench/answer", body)
                conn_opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar), _NoRedirect)
                try:
                    conn_opener.open(request).read()
                except urllib.error.HTTPError as error:
                    if error.code != 303:
                        raise
                answer_times.append(time.perf_counter() - started)
                started = time.perf_counter()
                urllib.request.urlopen(base + "/healthz").read()
                health_times.append(time.perf_counter() - started)
        finally:
            server.terminate()
            server.wait(timeout=10)

    def line(name, values):
        return (f"{name:<22} n={len(values):<5} mean={statistics.mean(values) * 1000:7.2f} ms  "
                f"p50={percentile(values, .5) * 1000:7.2f}  p95={percentile(values, .95) * 1000:7.2f}  "
                f"p99={percentile(values, .99) * 1000:7.2f}")

    print(line("POST answer", answer_times))
    print(line("GET study page", page_times))
    print(line("GET /healthz", health_times))
    health = statistics.mean(health_times)
    print(f"answer throughput / healthz throughput = "
          f"{health / statistics.mean(answer_times):.2f} (same server, same run)")
    print(f"study cycle (page + answer) throughput / healthz throughput = "
          f"{health / (statistics.mean(answer_times) + statistics.mean(page_times)):.2f} (a zero-cost app: 0.5)")


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


if __name__ == "__main__":
    main()
