"""Crowds against the real ``musicindex serve`` (issue 28): how fast the cheap routes answer while many clients
ask for costly ones. The figures the tests no longer assert (they check order and status codes, never a clock):
the status page's time with no worker to answer (the workers are asked in the background), and health, status and
similar while a crowd loops ``/api/map`` or floods ``/api/similar-to-file``.

    python benchmarks/crowd.py [--n 3000] [--seconds 20] [--map-clients 24] [--upload-clients 40]

One run, three phases side by side on the same server and machine: quiet, the map crowd, the upload flood. Probes
(one client each, one request at a time): ``/api/health``, ``/status`` (no worker runs: a look at the workers
takes its 1 s time-out, in the background), ``/api/tracks/{id}/similar``. Prints p50 / p99 of each probe per
phase, the crowd's answers by status, and the server's RSS. ``--n`` tracks are filled directly (features space,
a genre model, a kmeans: ``benchmarks/http_api.py``); the upload is a synthesized 6 s WAV.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse
import http.client
import io
import os
import random
import threading
import time
from collections import Counter
from collections.abc import Callable

import numpy as np
import psutil
import soundfile as sf

from benchmarks._common import bench_environment
from benchmarks.http_api import add_models_and_titles, load, start_serve, stats, wait_up
from benchmarks.query import fill


def get(port: int, method: str, path: str, body: bytes | None = None) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    try:
        conn.request(method, path, body=body, headers={"Content-Type": "application/octet-stream"} if body else {})
        r = conn.getresponse()
        r.read()
        return r.status
    except (OSError, http.client.HTTPException):
        return -1
    finally:
        conn.close()


def crowd(
    clients: int, ask: Callable[[], int], stop: threading.Event, statuses: Counter[int]
) -> list[threading.Thread]:
    lock = threading.Lock()

    def loop() -> None:
        while not stop.is_set():
            status = ask()
            with lock:
                statuses[status] += 1
            if status == 429:
                time.sleep(0.2)  # a client that retries five times a second

    threads = [threading.Thread(target=loop, daemon=True) for _ in range(clients)]
    for t in threads:
        t.start()
    return threads


def probe(port: int, path: str, seconds: float, out: list[float], failed: Counter[int]) -> None:
    stop_at = time.monotonic() + seconds
    while time.monotonic() < stop_at:
        t0 = time.perf_counter()
        status = get(port, "GET", path)
        out.append((time.perf_counter() - t0) * 1000)
        if status != 200:
            failed[status] += 1
        time.sleep(0.05)


def wav(seconds: float = 6.0, sr: int = 22050) -> bytes:
    t = np.arange(int(seconds * sr)) / sr
    y = 0.3 * np.sin(2 * np.pi * 220 * t) + 0.05 * np.random.default_rng(0).normal(size=t.size)
    buf = io.BytesIO()
    sf.write(buf, y.astype(np.float32), sr, format="WAV")
    return buf.getvalue()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=3000)
    ap.add_argument("--seconds", type=float, default=20.0, help="length of each phase")
    ap.add_argument("--map-clients", type=int, default=24)
    ap.add_argument("--upload-clients", type=int, default=40)
    args = ap.parse_args()
    print(f"load average before: {load()} ({os.cpu_count()} cores)", flush=True)
    with bench_environment("mi-crowd") as (settings, db, tmp):
        info = fill(db, args.n, ["features"], 0, max(1, (os.cpu_count() or 2) - 1), 1000, 0.8)
        add_models_and_titles(db, args.n)
        ids = [int(x) for x in info["ids"]]
        proc, port = start_serve(settings, tmp / "serve.log")
        body = wav()
        rng = random.Random(0)
        upload = "/api/similar-to-file?k=5&filename=q.wav"
        phases: dict[str, Callable[[], int] | None] = {
            "quiet": None,
            f"map crowd ({args.map_clients})": lambda: get(port, "GET", "/api/map?limit=3000"),
            f"upload flood ({args.upload_clients})": lambda: get(port, "POST", upload, body),
        }
        clients = {"quiet": 0, **{k: int(k.split("(")[1].rstrip(")")) for k in list(phases)[1:]}}
        rows = []
        try:
            wait_up(port, proc)
            server = psutil.Process(proc.pid)
            for path in ("/status", f"/api/tracks/{ids[0]}/similar?k=10", "/api/map?limit=3000"):  # warm-up
                get(port, "GET", path)
            for phase, ask in phases.items():
                stop = threading.Event()
                statuses: Counter[int] = Counter()
                threads = crowd(clients[phase], ask, stop, statuses) if ask is not None else []
                time.sleep(0.5 if threads else 0)
                probes = {"health": "/api/health", "status page": "/status",
                          "similar": f"/api/tracks/{rng.choice(ids)}/similar?k=10"}  # fmt: skip
                times: dict[str, list[float]] = {k: [] for k in probes}
                failed: dict[str, Counter[int]] = {k: Counter() for k in probes}
                ps = [threading.Thread(target=probe, args=(port, p, args.seconds, times[k], failed[k]))
                      for k, p in probes.items()]  # fmt: skip
                for t in ps:
                    t.start()
                for t in ps:
                    t.join()
                stop.set()
                for t in threads:
                    t.join(150)
                rss = server.memory_info().rss / 2**20
                for k in probes:
                    p50, _, p99 = stats(times[k])
                    rows.append((phase, k, len(times[k]), dict(failed[k]), p50, p99))
                rows.append((phase, "crowd", sum(statuses.values()), dict(statuses), rss, None))
                print(f"  {phase}: done ({load()})", flush=True)
        finally:
            proc.terminate()
            proc.wait(30)
    print(f"\n{args.n} tracks; each phase {args.seconds:.0f} s; probes one request at a time, 50 ms apart")
    print(f"{'phase':<20} {'probe':<12} {'answers':>7} {'p50 ms':>8} {'p99 ms':>9}  not 200")
    for phase, k, count, failed_by, a, b in rows:
        if k == "crowd":
            print(f"{phase:<20} {'crowd':<12} {count:>7} {'':>8} {'':>9}  by status {failed_by}; server RSS {a:.0f} MB")
        else:
            print(f"{phase:<20} {k:<12} {count:>7} {a:>8.1f} {b:>9.1f}  {failed_by or '-'}")
    print(f"load average after: {load()}", flush=True)


if __name__ == "__main__":
    main()
