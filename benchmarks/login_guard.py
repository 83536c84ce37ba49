"""What the login rule costs (issue 28): the same cheap read through the real ``musicindex serve``, with no account
(no session to look up) and with accounts and a logged-in session (the session looked up in a worker thread on
every request), in alternating rounds of one run so both see the same machine.

    python benchmarks/login_guard.py [--requests 400] [--rounds 4]

Reads ``GET /api/library/genres`` (an empty library: the route's own work is tiny, so the figure is mostly the
server's per-request cost) with one keep-alive client on loopback; prints p50 / p95 of the client-observed
latency per case and their ratio. Narrower than a user's whole page: it isolates the guard.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse
import http.client
import os
import re
import statistics
import subprocess
import time
import urllib.parse

from benchmarks._common import bench_environment
from benchmarks.http_api import free_port, load, wait_up
from musicindex.index import MusicIndex
from musicindex.localworker import settings_env

PATH = "/api/library/genres"


def timed(conn: http.client.HTTPConnection, n: int, headers: dict[str, str]) -> list[float]:
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        conn.request("GET", PATH, headers=headers)
        r = conn.getresponse()
        r.read()
        out.append((time.perf_counter() - t0) * 1000)
        assert r.status == 200, r.status
    return out


def login(port: int, name: str, password: str) -> str:
    """The session cookie of ``name`` logged in through the login form."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request("GET", "/login")
    r = conn.getresponse()
    page = r.read().decode()
    anon = r.getheader("set-cookie", "").split(";")[0]
    csrf = re.search(r'name="csrf-token" content="([^"]+)"', page).group(1)  # type: ignore[union-attr]
    body = urllib.parse.urlencode({"name": name, "password": password, "csrf": csrf, "next": "/"})
    headers = {"Content-Type": "application/x-www-form-urlencoded", "Cookie": anon}
    conn.request("POST", "/login", body=body, headers=headers)
    r = conn.getresponse()
    r.read()
    assert r.status == 303, r.status
    return r.getheader("set-cookie", "").split(";")[0]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--requests", type=int, default=400)
    ap.add_argument("--rounds", type=int, default=4)
    args = ap.parse_args()
    print(f"load average before: {load()} ({os.cpu_count()} cores)", flush=True)
    with bench_environment("mi-guard") as (settings, db, tmp):
        index = MusicIndex(db, settings)
        port = free_port()
        env = {**{k: v for k, v in os.environ.items() if not k.startswith("MUSICINDEX_")}, **settings_env(settings)}
        with (tmp / "serve.log").open("w") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "musicindex", "serve", "--port", str(port)],
                env=env, stdout=log, stderr=subprocess.STDOUT, cwd=Path(__file__).resolve().parents[1],
            )  # fmt: skip
        times: dict[str, list[float]] = {"no account": [], "accounts, logged in": []}
        try:
            wait_up(port, proc)
            for _ in range(args.rounds):
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                timed(conn, 20, {})  # warm-up
                times["no account"] += timed(conn, args.requests, {})
                conn.close()
                index.users.add_user("bench", "bench-pass-1")
                time.sleep(2.5)  # the server's "any account?" answer is kept 2 s
                cookie = login(port, "bench", "bench-pass-1")
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                timed(conn, 20, {"Cookie": cookie})
                times["accounts, logged in"] += timed(conn, args.requests, {"Cookie": cookie})
                conn.close()
                index.users.remove_user("bench")
                time.sleep(2.5)
        finally:
            proc.terminate()
            proc.wait(30)
            index.close()
    print(f"GET {PATH}, 1 keep-alive client, {args.rounds} alternating rounds of {args.requests} requests")
    print(f"{'case':<22} {'requests':>8} {'p50 ms':>8} {'p95 ms':>8}")
    p50 = {}
    for case, ms in times.items():
        ms.sort()
        p50[case] = statistics.median(ms)
        print(f"{case:<22} {len(ms):>8} {p50[case]:>8.2f} {ms[int(0.95 * (len(ms) - 1))]:>8.2f}")
    print(f"ratio of p50 (logged in / no account): {p50['accounts, logged in'] / p50['no account']:.2f}")
    print(f"load average after: {load()}", flush=True)


if __name__ == "__main__":
    main()
