"""The request guard of ``musicindex serve`` (``web/security.py`` ``RequestGuard``) and the upload slot, against a
real server where it matters: the real ``musicindex serve`` in a subprocess (uvicorn, its own memory, its own 40
worker threads) for bodies sent over a socket, the upload flood and aborted uploads; the in-process app for the
origin rule, NUL characters and the last-resort error answer.
"""

from __future__ import annotations

import http.client
import json
import logging
import multiprocessing as mp
import os
import select
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
from fastapi.testclient import TestClient

from musicindex.db.scratch import scratch_database
from musicindex.errors import InvalidArgumentError
from musicindex.index import MusicIndex
from musicindex.localworker import settings_env
from musicindex.web import create_app
from tests.conftest import REPO, run_cli
from tests.test_web import TOKEN, build_library

MB = 1024 * 1024


# --------------------------------------------------------------------------- a real server
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def lib(base_settings, tmp_path_factory) -> Iterator[dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("guard")
    with scratch_database(base_settings.database_url, prefix="mi_guard") as db:
        library = build_library(db, tmp / "audio", n=36)
        settings = base_settings.with_(database_url=db.url, api_token=TOKEN)
        index = MusicIndex(db, settings)
        library.update(db=db, index=index, settings=settings, tmp=tmp)
        yield library
        index.close()


@pytest.fixture(scope="module")
def server(lib) -> Iterator[dict[str, Any]]:
    """The real ``musicindex serve`` on a free loopback port, its log in a file."""
    port = _free_port()
    log_path = lib["tmp"] / "serve.log"
    env = {**os.environ, **settings_env(lib["settings"]), "MUSICINDEX_API_TOKEN": TOKEN, "MUSICINDEX_LOG_LEVEL": "INFO"}
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "musicindex", "serve", "--port", str(port)],
            stdout=log, stderr=subprocess.STDOUT, env=env, cwd=REPO,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                if request(port, "GET", "/api/health", timeout=5)[0] == 200:
                    break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"serve did not start: {log_path.read_text()[-2000:]}")
            time.sleep(0.2)
        yield {"port": port, "pid": proc.pid, "log": log_path}
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def request(
    port: int, method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None,
    timeout: float = 60,
) -> tuple[int, dict[str, str], bytes]:  # fmt: skip
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        r = conn.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        conn.close()


def raw_post(port: int, path: str, head: dict[str, str], chunks: Iterator[bytes], wait: float = 0.5) -> int:
    """POST over a plain socket as a careful client does (like ``Expect: 100-continue``): send the headers, wait
    ``wait`` s for an early answer, else stream the body, stopping as soon as an answer arrives. The status."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=120)
    try:
        lines = [f"POST {path} HTTP/1.1", "Host: 127.0.0.1", *(f"{k}: {v}" for k, v in head.items()), "", ""]
        sock.sendall("\r\n".join(lines).encode())
        readable, _, _ = select.select([sock], [], [], wait)
        if not readable:
            try:
                for chunk in chunks:
                    sock.sendall(chunk)
                    if select.select([sock], [], [], 0)[0]:
                        break
            except (BrokenPipeError, ConnectionResetError):
                pass
        data = b""
        while b"\r\n" not in data:
            got = sock.recv(4096)
            if not got:
                break
            data += got
        return int(data.split(b" ", 2)[1])
    finally:
        sock.close()


def json_body(n: int) -> Iterator[bytes]:
    """A JSON document of ``n`` bytes (a train request with one huge model name), made as it is sent."""
    head, tail = b'{"models": ["', b'"]}'
    yield head
    left = n - len(head) - len(tail)
    block = b"x" * MB
    while left > 0:
        yield block[: min(left, MB)]
        left -= MB
    yield tail


class PeakMemory:
    """The largest resident size of a process while the block runs, sampled every 10 ms."""

    def __init__(self, pid: int):
        self.proc = psutil.Process(pid)
        self.base = self.peak = self.proc.memory_info().rss
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.proc.memory_info().rss)
            time.sleep(0.01)

    def __enter__(self) -> PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        time.sleep(0.2)
        self._stop.set()
        self._thread.join()

    @property
    def growth(self) -> int:
        return self.peak - self.base


def test_tokenless_huge_bodies_are_refused_before_they_are_read(server):
    """Before: two tokenless 500 MB JSON POSTs to /api/train got 401 only after both were read and parsed; the
    server grew by GBs. Now the token is checked before any byte of the body is read."""
    size = 200 * MB
    statuses: list[int] = []
    head = {"Content-Type": "application/json", "Content-Length": str(size)}
    with PeakMemory(server["pid"]) as mem:

        def post() -> None:
            statuses.append(raw_post(server["port"], "/api/train", head, json_body(size)))

        threads = [threading.Thread(target=post) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
    assert statuses == [401, 401]
    assert mem.growth < 32 * MB, f"the server grew by {mem.growth / MB:.0f} MB for two {size // MB} MB bodies"


def test_bodies_are_capped_at_once_or_while_they_stream(server, lib):
    auth = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    port = server["port"]
    with PeakMemory(server["pid"]) as mem:
        # a declared length over the JSON cap (64 KiB): 413 before anything is read
        assert raw_post(port, "/api/train", {**auth, "Content-Length": str(100 * MB)}, json_body(100 * MB)) == 413

        # no length (chunked): cut once it grows past the cap
        def chunked() -> Iterator[bytes]:
            for chunk in json_body(50 * MB):
                yield f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n"
            yield b"0\r\n\r\n"

        assert raw_post(port, "/api/train", {**auth, "Transfer-Encoding": "chunked"}, chunked(), wait=0.05) == 413
        # the upload's cap is its own setting (50 MB here): a declared 60 MB is refused at once
        up = {"Content-Type": "application/octet-stream", "Content-Length": str(60 * MB)}
        assert raw_post(port, "/api/similar-to-file?filename=x.wav", up, iter([b"\0" * MB] * 60)) == 413
    assert mem.growth < 32 * MB
    # a small JSON body still works
    status, _, body = request(port, "POST", "/api/train", json.dumps({"models": ["nope"]}).encode(), auth)
    assert status == 422 and json.loads(body)["error"] == "bad_argument"


def _p99(xs: list[float]) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(0.99 * len(xs)))]


def _flood(port: int, body: bytes, clients: int, seconds: float, out: Any) -> None:
    """``clients`` uploaders (threads) posting ``body`` again and again for ``seconds``: run in a process of its
    own, so their threads do not slow down the measuring process. Puts (status counts, Retry-After values)."""
    uploads: Counter[int] = Counter()
    retry_after: set[str | None] = set()
    lock = threading.Lock()
    stop_at = time.monotonic() + seconds

    def upload() -> None:
        while time.monotonic() < stop_at:
            try:
                status, headers, _ = request(port, "POST", "/api/similar-to-file?filename=q.ogg&k=3", body,
                                             {"Content-Type": "application/octet-stream"})  # fmt: skip
            except OSError:
                status, headers = -1, {}
            with lock:
                uploads[status] += 1
                if status == 429:
                    retry_after.add(headers.get("retry-after"))
            time.sleep(0.2)  # a client that retries five times a second (Retry-After says 5 s)

    threads = [threading.Thread(target=upload) for _ in range(clients)]
    for t in threads:
        t.start()
        time.sleep(0.005)
    for t in threads:
        t.join(180)
    out.put((dict(uploads), retry_after))


@pytest.mark.slow
def test_an_upload_flood_leaves_the_server_responsive(server, lib):
    """Before: 90 uploads each held one of the 40 worker threads while waiting up to 60 s for the one analysis
    slot; /api/health took 73 s. Now a taken slot answers 429 at once, before the body is read."""
    port = server["port"]
    body = Path(lib["audio"][1].path).read_bytes()  # a 6 s ogg
    seed = lib["rows"][5]["id"]
    # warm the server first (the first analysis compiles librosa's kernels; the first query loads the space)
    assert request(port, "POST", "/api/similar-to-file?filename=q.ogg&k=3", body)[0] == 200
    assert request(port, "GET", f"/api/tracks/{seed}/similar?k=5&space=ann")[0] == 200
    ctx = mp.get_context("fork")
    out = ctx.Queue()
    flood = ctx.Process(target=_flood, args=(port, body, 40, 5.0, out))
    flood.start()
    time.sleep(0.5)  # the 40 uploaders are under way
    latencies: dict[str, list[float]] = {"health": [], "search": [], "similar": []}
    stop_at = time.monotonic() + 4.0

    def probe(name: str, path: str) -> None:
        while time.monotonic() < stop_at:
            t0 = time.monotonic()
            status, _, _ = request(port, "GET", path)
            assert status == 200, (name, status)
            latencies[name].append(time.monotonic() - t0)
            time.sleep(0.05)

    probes = [
        threading.Thread(target=probe, args=("health", "/api/health")),
        threading.Thread(target=probe, args=("search", "/api/tracks?q=blue")),
        threading.Thread(target=probe, args=("similar", f"/api/tracks/{seed}/similar?k=5&space=ann")),
    ]
    for t in probes:
        t.start()
    for t in probes:
        t.join(180)
    uploads, retry_after = out.get(timeout=240)
    flood.join(30)
    for name, xs in latencies.items():
        assert len(xs) >= 5, (name, len(xs), uploads)
        assert _p99(xs) < 1.0, f"{name}: p99 {_p99(xs):.2f} s during the upload flood ({uploads})"
    assert uploads.get(429, 0) > 0 and retry_after == {"5"}, uploads
    assert uploads.get(200, 0) >= 1 and set(uploads) <= {200, 429}, uploads


def test_an_aborted_upload_is_one_log_line_and_frees_the_slot(server, lib):
    """Before: a client that went away mid-upload logged a full ERROR traceback (starlette ClientDisconnect)."""
    port = server["port"]
    start = server["log"].stat().st_size
    sock = socket.create_connection(("127.0.0.1", port))
    sock.sendall(
        b"POST /api/similar-to-file?filename=a.wav HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        b"Content-Type: application/octet-stream\r\nContent-Length: 1000000\r\n\r\n" + b"\0" * 5000
    )
    time.sleep(0.3)
    sock.close()
    body = Path(lib["audio"][1].path).read_bytes()
    deadline = time.monotonic() + 30
    while True:  # the slot is free again: the next upload is analysed, not refused
        status, _, answer = request(port, "POST", "/api/similar-to-file?filename=q.ogg&k=3", body)
        if status != 429 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert status == 200, answer[:300]
    time.sleep(0.5)
    with open(server["log"], "rb") as fh:
        fh.seek(start)
        log = fh.read().decode(errors="replace")
    assert "Traceback" not in log and "ERROR" not in log, log[-3000:]
    assert len([ln for ln in log.splitlines() if "went away" in ln]) == 1, log[-3000:]


# --------------------------------------------------------------------------- the origin rule (in-process)
@pytest.fixture(scope="module")
def client(lib) -> Iterator[TestClient]:
    lib["index"].users.add_user("guard", "guard-Password-1")  # the Subsonic API under /rest/ answers once one exists
    app = create_app(lib["index"])

    def boom() -> None:
        raise RuntimeError("a bug")

    app.add_api_route("/api/boom", boom)
    app.add_api_route("/boom", boom)
    # an account exists: reading needs a login or the token (issue 28); the origin rule comes first either way
    auth = {"Authorization": f"Bearer {TOKEN}"}
    with TestClient(app, base_url="http://127.0.0.1", raise_server_exceptions=False, headers=auth) as c:
        yield c


EVIL = {"Origin": "http://evil.example"}


def test_cross_site_changes_and_costly_reads_are_refused(client, lib):
    """Before: an upload with ``Origin: http://evil.example`` and ``Content-Type: text/plain`` (a request a browser
    sends without preflight) got 200; ``/api/evaluate?max_tracks=20000`` and ``/api/map?limit=20000`` answered any
    origin."""
    body = Path(lib["audio"][1].path).read_bytes()
    seed = lib["rows"][3]["id"]
    auth = {"Authorization": f"Bearer {TOKEN}"}
    refused = [
        ("POST", "/api/similar-to-file?filename=x.ogg", {**EVIL, "Content-Type": "text/plain"}, body),
        ("POST", "/api/similar-to-file?filename=x.ogg", {"Sec-Fetch-Site": "cross-site"}, body),
        ("POST", "/api/similar-to-file?filename=x.ogg", {"Origin": "null"}, body),
        ("POST", "/api/train", {**EVIL, **auth, "Content-Type": "text/plain"}, b"{}"),
        ("POST", f"/api/models/{lib['ann']}/promote", {**EVIL, **auth}, None),
        ("PUT", "/api/train", EVIL, b""),
        ("DELETE", "/api/models/1", {"Sec-Fetch-Site": "same-site"}, None),
        ("GET", "/api/evaluate?max_tracks=20000", EVIL, None),
        ("GET", "/api/map?limit=20000", EVIL, None),
        ("GET", "/api/map?limit=20000", {"Sec-Fetch-Site": "cross-site"}, None),
        ("GET", f"/api/m3u?ids={seed}", EVIL, None),
        ("GET", f"/api/tracks/{seed}/similar?format=m3u8", EVIL, None),
        ("GET", f"/api/tracks/{seed}/similar?k=1000&exact=true", {"Sec-Fetch-Site": "cross-site"}, None),
        ("GET", f"/api/recommend?liked={seed}", EVIL, None),
        ("GET", f"/api/playlist?start={seed}&end={seed + 1}", EVIL, None),
        ("GET", "/api/genres/jazz/tracks?format=m3u8", EVIL, None),
        ("GET", "/api/map", {"Origin": "http://127.0.0.1.evil.example"}, None),
        ("GET", "/api/map", {"Origin": "http://localhost:8765"}, None),  # another name is another origin
    ]
    for method, url, headers, content in refused:
        r = client.request(method, url, headers=headers, content=content)
        assert r.status_code == 403, (method, url, headers, r.status_code, r.text[:200])
        assert r.json()["error"] == "forbidden" and "MUSICINDEX_CORS_ORIGINS" in r.json()["message"]
    # this server's own pages, and programs that send no Origin, keep working
    allowed = [
        ("GET", "/api/map?limit=50", {"Origin": "http://127.0.0.1"}),
        ("GET", "/api/map?limit=50", {"Sec-Fetch-Site": "same-origin"}),
        ("GET", "/api/map?limit=50", {"Sec-Fetch-Site": "none"}),  # typed in the address bar
        ("GET", "/api/map?limit=50", {}),
        ("GET", "/api/health", EVIL),  # cheap reads answer (no CORS header: the browser hides them)
        ("GET", f"/tracks/{seed}", {"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "navigate"}),  # a link
        ("GET", "/rest/ping.view", EVIL),  # Subsonic clients authenticate every request themselves
        ("POST", "/rest/ping.view", {**EVIL, "Content-Type": "text/plain"}),
    ]
    for method, url, headers in allowed:
        r = client.request(method, url, headers=headers)
        assert r.status_code == 200, (method, url, headers, r.status_code, r.text[:200])
    r = client.post("/api/similar-to-file?filename=x.ogg&k=3", content=body, headers={"Origin": "http://127.0.0.1"})
    assert r.status_code == 200, r.text[:300]
    r = client.get("/api/health", headers=EVIL)
    assert "access-control-allow-origin" not in r.headers


def test_origins_listed_for_cors_may_call_costly_routes(lib):
    settings = lib["settings"].with_(cors_origins="http://localhost:4533")
    auth = {"Authorization": f"Bearer {TOKEN}"}  # reading needs the token once an account exists (issue 28)
    with TestClient(create_app(MusicIndex(lib["db"], settings)), base_url="http://127.0.0.1", headers=auth) as c:
        r = c.get("/api/map?limit=20", headers={"Origin": "http://localhost:4533", "Sec-Fetch-Site": "same-site"})
        assert r.status_code == 200 and r.headers["access-control-allow-origin"] == "http://localhost:4533"
        assert c.get("/api/map?limit=20", headers=EVIL).status_code == 403
        preflight = {"Origin": "http://localhost:4533", "Access-Control-Request-Method": "POST"}
        pre = c.options("/api/train", headers=preflight)
        assert pre.status_code == 200


# --------------------------------------------------------------------------- NUL, bodies, last resort (in-process)
def test_nul_in_any_text_parameter_is_a_422(client, lib):
    """Before: a plain-text 500 and a traceback for ``/api/models?state=%00`` (and the other URLs of the review
    that the query layer now refuses); pages answered 200 with the error inside."""
    t = lib["rows"][0]["id"]
    for url in (
        "/api/genres/a%00b/tracks", f"/api/tracks/{t}/similar?genre=%00",
        f"/api/recommend?liked={t}&exclude_artist=%00", f"/api/recommend?liked={t}&exclude_genre=a%00",
        "/api/models?state=%00", "/api/models?kind=%00",
        "/api/tracks?q=a%00", f"/api/m3u?ids={t}&title=%00", f"/api/m3u?ids={t}&base=/m%00", "/api/map?space=%00",
        f"/api/tracks/{t}/similar?space=%00&k=3", "/api/similar-to-file?filename=a%00.wav",
    ):  # fmt: skip
        r = client.post(url, content=b"x") if "similar-to-file" in url else client.get(url)
        assert r.status_code == 422 and r.json()["error"] == "bad_argument", (url, r.status_code, r.text[:200])
        assert "NUL" in r.json()["message"] and r.json()["exit_code"] == 2
    for url in ("/genres/a%00", f"/tracks/{t}?genre=%00", "/?q=a%00", "/recommend?space=%00"):
        r = client.get(url)
        assert r.status_code == 422 and "text/html" in r.headers["content-type"], (url, r.status_code)
        assert "NUL" in r.text
    r = client.post("/api/models/ann/rollback", headers={"Authorization": f"Bearer {TOKEN}"}, json={"x": "\x00"})
    assert r.status_code == 409  # JSON bodies: a NUL is data the route checks (here: no earlier version)


def test_models_kind_and_state_are_validated(lib):
    index = lib["index"]
    for kwargs in ({"state": "\x00"}, {"state": "bogus"}, {"kind": "\x00"}, {"kind": 5}, {"state": 1},
                   {"limit": 0}, {"limit": -1}, {"limit": "10"}, {"limit": True}):  # fmt: skip
        with pytest.raises(InvalidArgumentError):
            index.models(**kwargs)
    assert [m["kind"] for m in index.models(state="active", kind="ann")] == ["ann"]
    env = settings_env(lib["settings"])
    r = run_cli("models", "list", "--state", "bogus", env=env)
    assert r.returncode == 2 and "unknown model state" in r.stderr


def test_json_bodies_are_capped(client):
    auth = {"Authorization": f"Bearer {TOKEN}"}
    auth = {**auth, "Content-Type": "application/json"}
    r = client.post("/api/train", headers=auth, content=b'{"models": ["' + b"x" * 70_000 + b'"]}')
    assert r.status_code == 413 and r.json()["error"] == "too_large"

    def chunks() -> Iterator[bytes]:  # no Content-Length
        yield b'{"models": ["'
        for _ in range(100):
            yield b"x" * 1000
        yield b'"]}'

    r = client.post("/api/train", headers=auth, content=chunks())
    assert r.status_code == 413 and r.json()["error"] == "too_large"
    r = client.post("/api/train", headers={**auth, "Content-Length": "12abc"}, content=b"{}")
    assert r.status_code == 400


def test_unexpected_errors_answer_the_error_shape_and_log_the_traceback(client, caplog):
    """Before: a plain-text ``Internal Server Error``."""
    with caplog.at_level(logging.ERROR, logger="musicindex.web.security"):
        r = client.get("/api/boom")
    assert r.status_code == 500 and r.json() == {
        "error": "error", "message": "unexpected server error (the server's log has the details)", "exit_code": 1,
    }  # fmt: skip
    assert "RuntimeError: a bug" in caplog.text and "Traceback" in caplog.text
    assert "a bug" not in r.text
    r = client.get("/boom")
    assert r.status_code == 500 and "text/html" in r.headers["content-type"] and "a bug" not in r.text
