"""Transcoding benchmark: the real ``musicindex serve`` transcoding real full-length recordings for music apps.

    python benchmarks/transcode.py [--files 24] [--streams 16,32] [--window 45] [--devset DIR]

The user's path with the defaults: ``musicindex worker`` and ``musicindex ingest DIR --wait`` over ``--files``
full-length recordings of the dev set (``benchmarks/devset.py``: Debian game soundtracks, Ogg Vorbis, linked into a
temporary folder), ``musicindex user add``, then ``musicindex serve`` (one uvicorn process, default settings:
``MUSICINDEX_TRANSCODE_MAX_STREAMS`` = 16 per core, no transcode cache). Measured over ``/rest/stream`` with token
auth on loopback:

1. **speed** per format (mp3 128, opus 96, aac 128, m4a 128 kbps): one client at a time downloads whole transcodes
   as fast as it can; figures: audio seconds per wall second of one stream, and audio seconds per CPU second of the
   server process (times real time per core);
2. **first byte**: time from the request to the first audio byte of a 128 kbps MP3 transcode, 30 requests;
3. **streams at real-time pace**: N clients each play a different song as a phone would (playback starts after 2 s
   of audio are buffered, the player holds at most 10 s ahead and consumes 16 000 bytes a second) for ``--window``
   seconds; an underrun is a moment a client has less than it has played. Meanwhile ``/rest/ping`` is asked every
   100 ms (p50/p99). The server's RSS is sampled: memory per stream = (peak - idle) / N.

The CPU model and the load average are printed with the figures.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse
import csv
import hashlib
import http.client
import os
import socket
import subprocess
import threading
import time
import urllib.parse

import numpy as np
import psutil

from benchmarks._common import bench_environment
from benchmarks.http_api import free_port, load, wait_up
from benchmarks.ingest import cpu_model
from musicindex.localworker import LocalWorker, settings_env

DEVSET = Path("~/.cache/musicindex-devset/set").expanduser()
USER, PASSWORD = "bench", "bench-password-1"
FORMATS = (("mp3", 128), ("opus", 96), ("aac", 128), ("m4a", 128))
RATE = 128_000 // 8
PREBUFFER_S, AHEAD_S = 2.0, 10.0


def _auth() -> dict[str, str]:
    """Token authentication with a fresh salt."""
    salt = os.urandom(8).hex()
    return {"u": USER, "t": hashlib.md5((PASSWORD + salt).encode()).hexdigest(), "s": salt, "v": "1.16.1",
            "c": "bench", "f": "json"}  # fmt: skip


def _query(song: str, **params: object) -> str:
    return "/rest/stream?" + urllib.parse.urlencode({**_auth(), "id": song, **params})


def _get(port: int, path: str, timeout: float = 120) -> tuple[int, float, bytes]:
    """(status, seconds to the first body byte, body)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    t0 = time.perf_counter()
    conn.request("GET", path)
    r = conn.getresponse()
    first = r.read(1)
    t1 = time.perf_counter() - t0
    body = first + r.read()
    conn.close()
    return r.status, t1, body


def _json(port: int, path: str) -> dict:
    import json

    return json.loads(_get(port, path)[2])["subsonic-response"]


def speed(
    port: int, server: psutil.Process, songs: list[tuple[str, float]]
) -> list[tuple[str, int, float, float, float]]:
    """Per format: (format, kbps, audio s, x real time of one stream (wall), x real time per core (server CPU))."""
    out = []
    for fmt, kbps in FORMATS:
        cpu0 = sum(server.cpu_times()[:2])
        wall, audio = 0.0, 0.0
        for song, duration in songs[:6]:
            t0 = time.perf_counter()
            status, _, body = _get(port, _query(song, format=fmt, maxBitRate=kbps))
            wall += time.perf_counter() - t0
            if status != 200 or len(body) < 1000:
                raise SystemExit(f"stream {song} as {fmt}: HTTP {status}, {len(body)} bytes")
            audio += duration
        cpu = sum(server.cpu_times()[:2]) - cpu0
        out.append((fmt, kbps, audio, audio / wall, audio / max(cpu, 1e-9)))
    return out


def first_bytes(port: int, songs: list[tuple[str, float]], n: int = 30) -> list[float]:
    ms = []
    for k in range(n):
        song = songs[k % len(songs)][0]
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        t0 = time.perf_counter()
        conn.request("GET", _query(song, format="mp3", maxBitRate=128))
        r = conn.getresponse()
        r.read(1)
        ms.append((time.perf_counter() - t0) * 1000)
        conn.close()  # the transcode is dropped at once: the server cancels it
    return ms


class Player(threading.Thread):
    """A phone playing one 128 kbps stream in real time (see the module's docstring)."""

    def __init__(self, port: int, song: str, window: float):
        super().__init__(daemon=True)
        self.port, self.song, self.window = port, song, window
        self.underruns = 0
        self.starved_s = 0.0
        self.status = 0
        self.received = 0
        self.error = ""

    def run(self) -> None:
        try:
            self._play()
        except Exception as exc:  # noqa: BLE001 - counted as a failed stream
            self.error = f"{type(exc).__name__}: {exc}"

    def _play(self) -> None:
        sock = socket.create_connection(("127.0.0.1", self.port), timeout=30)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 32 * 1024)
        path = _query(self.song, format="mp3", maxBitRate=128)
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = sock.recv(4096)
            if not chunk:
                raise ConnectionError("closed before the head")
            head += chunk
        self.status = int(head.split(b" ", 2)[1])
        head, _, rest = head.partition(b"\r\n\r\n")
        self.received = len(rest)  # chunked framing counted too: a few bytes per 32 KiB
        if self.status != 200:
            return
        t_play = None
        start = time.monotonic()
        starving = False
        while True:
            now = time.monotonic()
            if t_play is None and self.received >= PREBUFFER_S * RATE:
                t_play = now
            played = 0.0 if t_play is None else (now - t_play) * RATE
            if t_play is not None and now - t_play >= self.window:
                break
            if t_play is not None and self.received < played:
                if not starving:
                    self.underruns += 1
                    starving = True
            else:
                starving = False
            if self.received >= played + AHEAD_S * RATE:  # the player's buffer is full: wait
                time.sleep(0.05)
                continue
            if now - start > self.window + 60:
                raise TimeoutError("the stream never reached its window")
            sock.settimeout(0.2)
            try:
                chunk = sock.recv(16384)
            except TimeoutError:
                if starving:
                    self.starved_s += 0.2
                continue
            if not chunk:
                break
            self.received += len(chunk)
        sock.close()


def sustain(port: int, server: psutil.Process, songs: list[tuple[str, float]], n: int, window: float) -> dict:
    idle = server.memory_info().rss
    players = [Player(port, songs[k % len(songs)][0], window) for k in range(n)]
    pings: list[float] = []
    peak = idle
    done = threading.Event()

    def ping() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        while not done.is_set():
            path = "/rest/ping?" + urllib.parse.urlencode(_auth())
            t0 = time.perf_counter()
            conn.request("GET", path)
            conn.getresponse().read()
            pings.append((time.perf_counter() - t0) * 1000)
            time.sleep(0.1)
        conn.close()

    pinger = threading.Thread(target=ping, daemon=True)
    for p in players:
        p.start()
    pinger.start()
    while any(p.is_alive() for p in players):
        peak = max(peak, server.memory_info().rss)
        time.sleep(0.5)
    done.set()
    pinger.join(10)
    failed = [p for p in players if p.status != 200 or p.error]
    p50, p99 = (float(np.percentile(pings, q)) for q in (50, 99)) if pings else (0.0, 0.0)
    return {
        "streams": n,
        "failed": len(failed),
        "statuses": sorted({p.status for p in failed}),
        "errors": sorted({p.error for p in failed if p.error})[:3],
        "underruns": sum(p.underruns for p in players),
        "clients_with_underruns": sum(1 for p in players if p.underruns),
        "starved_s": sum(p.starved_s for p in players),
        "ping_p50": p50,
        "ping_p99": p99,
        "pings": len(pings),
        "mb_per_stream": (peak - idle) / n / 2**20,
        "peak_mb": peak / 2**20,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--devset", type=Path, default=DEVSET)
    ap.add_argument("--files", type=int, default=24, help="full-length recordings ingested and streamed")
    ap.add_argument("--streams", default="16,32", help="concurrent real-time streams, one run per number")
    ap.add_argument("--window", type=float, default=45.0, help="seconds each real-time stream plays")
    ap.add_argument("--only", choices=("all", "speed", "streams"), default="all", help="which measures to run")
    args = ap.parse_args()
    rows = [r for r in csv.DictReader((args.devset / "all.csv").open()) if float(r["duration_s"]) >= 90]
    if not rows:
        raise SystemExit(f"no dev set at {args.devset}: build it with `python benchmarks/devset.py`")
    rows = sorted(rows, key=lambda r: r["path"])[: args.files]
    minutes = sum(float(r["duration_s"]) for r in rows) / 60
    print(f"transcode benchmark: {len(rows)} recordings of the dev set ({minutes:.0f} min), {cpu_model()}, "
          f"{os.cpu_count()} cores, load {load()}", flush=True)  # fmt: skip
    repo = Path(__file__).resolve().parents[1]
    with bench_environment("mi-transcode") as (settings, _db, tmp):
        music = tmp / "music"
        music.mkdir()
        for r in rows:
            src = Path(r["path"])
            dst = music / f"{r['package']}-{src.name}"
            try:
                os.link(src, dst)
            except OSError:
                dst.write_bytes(src.read_bytes())
        env = {**os.environ, **settings_env(settings)}
        t0 = time.perf_counter()
        with LocalWorker(settings, log_path=tmp / "worker.log"):
            subprocess.run([sys.executable, "-m", "musicindex", "ingest", str(music), "--wait"], env=env, check=True,
                           stdout=subprocess.DEVNULL, cwd=repo)  # fmt: skip
        print(f"ingested in {time.perf_counter() - t0:.0f} s", flush=True)
        subprocess.run([sys.executable, "-m", "musicindex", "user", "add", USER, "--password-stdin"], env=env,
                       input=PASSWORD + "\n", text=True, check=True, stdout=subprocess.DEVNULL, cwd=repo)  # fmt: skip
        port = free_port()
        log = (tmp / "serve.log").open("w")
        proc = subprocess.Popen([sys.executable, "-m", "musicindex", "serve", "--port", str(port)], env=env,
                                stdout=log, stderr=subprocess.STDOUT, cwd=repo)  # fmt: skip
        try:
            wait_up(port, proc)
            server = psutil.Process(proc.pid)
            query = urllib.parse.urlencode({**_auth(), "query": "", "songCount": 500})
            found = _json(port, "/rest/search3?" + query)
            songs = [(s["id"], float(s["duration"])) for s in found["searchResult3"]["song"]]
            print(f"{len(songs)} songs served on port {port}\n", flush=True)
            if args.only in ("all", "speed"):
                print("| format | kbps | audio s | x real time, one stream (wall) | x real time per core (server CPU) "
                      "|")  # fmt: skip
                print("| --- | --- | --- | --- | --- |")
                for fmt, kbps, audio, wall_x, cpu_x in speed(port, server, songs):
                    print(f"| {fmt} | {kbps} | {audio:.0f} | {wall_x:.1f} | {cpu_x:.1f} |", flush=True)
                fb = np.asarray(first_bytes(port, songs))
                print(f"\nfirst byte of a 128 kbps MP3 transcode: p50 {np.percentile(fb, 50):.1f} ms, "
                      f"p99 {np.percentile(fb, 99):.1f} ms ({len(fb)} requests)\n", flush=True)  # fmt: skip
            if args.only == "speed":
                return
            print("| streams at real-time pace | failed | underruns (clients) | ping p50 ms | ping p99 ms | "
                  "server RSS peak MB | MB per stream | load after |")  # fmt: skip
            print("| --- | --- | --- | --- | --- | --- | --- | --- |")
            for n in (int(x) for x in args.streams.split(",")):
                time.sleep(3)
                s = sustain(port, server, songs, n, args.window)
                print(f"| {n} | {s['failed']} {s['statuses'] or ''} | {s['underruns']} ({s['clients_with_underruns']})"
                      f" | {s['ping_p50']:.1f} | {s['ping_p99']:.1f} | {s['peak_mb']:.0f} | {s['mb_per_stream']:.2f}"
                      f" | {load()} |", flush=True)  # fmt: skip
                if s["errors"]:
                    print("   errors:", s["errors"])
        finally:
            proc.terminate()
            proc.wait(30)
            log.close()


if __name__ == "__main__":
    main()
