"""The hostile-input corpus: a table of bad inputs per interface, each with the outcome it must get.

Every row names its interface, the input and the expected outcome: an HTTP status and error category (the JSON
error shape; ``html`` for the HTML error page), a CLI exit code, a Python exception class, an SQLSTATE, a track's
final status and reason. The parametrized tests below run each table; the number of rows tried is the number of
parametrized cases. Nothing is printed.

Interfaces: the HTTP JSON API and the pages (in-process, the real app over a real database), the CLI (the real
``musicindex`` command in subprocesses, argv without a shell: a NUL cannot be passed in argv at all, so control
characters stand in for it there), the Python API (``MusicIndex`` methods), the SQL functions of migrations
0002 and 0005, and files (``musicindex.sample.badfiles`` and other hostile files through ingest: each ends failed
with a reason or is skipped, the batch goes on).
"""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from musicindex import errors as E
from musicindex import ingest
from musicindex.db.scratch import scratch_database
from musicindex.index import MusicIndex
from musicindex.localworker import settings_env
from musicindex.sample import badfiles
from musicindex.web import create_app
from tests.conftest import run_cli
from tests.test_web import TOKEN, build_library


@dataclass(frozen=True)
class Row:
    """One hostile input: the interface, the input, the outcome it must get."""

    interface: str
    input: Any
    expect: Any
    why: str = ""

    def __str__(self) -> str:
        shown = self.input if isinstance(self.input, str) else repr(self.input)
        return f"{self.interface}:{shown[:90]}"


# --------------------------------------------------------------------------- HTTP JSON API
# input: (method, url, headers, body); expect: (status, error category | None for "not an error answer").
# In urls: {t} a track with a real file, {m} a track without one, {a} another track, {ann} the ann version id.
AUTH = {"Authorization": f"Bearer {TOKEN}"}
JSONH = {**AUTH, "Content-Type": "application/json"}
FORM = {"Content-Type": "application/x-www-form-urlencoded"}
G = "GET"
P = "POST"


def http(url: str, status: int, category: str | None, method: str = G, headers: dict | None = None,
         body: bytes | None = None, why: str = "") -> Row:  # fmt: skip
    return Row("http", (method, url, headers or {}, body), (status, category), why)


# fmt: off
HTTP_ROWS = [
    # NUL characters, everywhere a text goes
    http("/api/tracks?q=a%00b", 422, "bad_argument"),
    http("/api/tracks?q=blue&field=%00", 422, "bad_argument"),
    http("/api/genres/a%00b/tracks", 422, "bad_argument"),
    http("/api/genres/%00/tracks?format=m3u8", 422, "bad_argument"),
    http("/api/tracks/{t}/similar?genre=%00", 422, "bad_argument"),
    http("/api/tracks/{t}/similar?space=%00", 422, "bad_argument"),
    http("/api/tracks/{t}/similar?base=/m%00&format=m3u8", 422, "bad_argument"),
    http("/api/recommend?liked={t}&exclude_artist=%00", 422, "bad_argument"),
    http("/api/recommend?liked={t}&exclude_genre=a%00", 422, "bad_argument"),
    http("/api/recommend?liked={t}&space=%00", 422, "bad_argument"),
    http("/api/models?state=%00", 422, "bad_argument"),
    http("/api/models?kind=%00", 422, "bad_argument"),
    http("/api/m3u?ids={t}&title=%00", 422, "bad_argument"),
    http("/api/m3u?ids={t}&base=%00", 422, "bad_argument"),
    http("/api/map?space=%00", 422, "bad_argument"),
    http("/api/playlist?start={t}&end={a}&space=%00", 422, "bad_argument"),
    http("/api/tracks/{t}/cluster?model=%00", 422, "bad_argument"),
    http("/api/similar-to-file?filename=%00.wav", 422, "bad_argument", P, body=b"x"),
    # "log out everywhere" (a page's form): the CSRF token is checked before anything else
    http("/account/sessions", 403, "html", P, FORM, b"csrf=forged"),
    http("/account/sessions", 403, "html", P, FORM, b"csrf=%00"),
    http("/account/sessions", 403, "html", P, FORM, b""),
    http("/account/sessions", 422, "html", P, FORM, b"csrf=" + b"x" * 300),
    http("/api/models/%00/rollback", 422, "bad_argument", P, AUTH),
    http("/api/tracks?q=blue&%00=1", 422, "bad_argument", why="NUL in a parameter's name"),
    # numbers: huge, negative, beyond 2**62, not numbers
    http("/api/tracks/0", 422, "bad_argument"),
    http("/api/tracks/-1", 422, "bad_argument"),
    http(f"/api/tracks/{2**62}", 404, "unknown_track", why="the largest id accepted"),
    http(f"/api/tracks/{2**62 + 1}", 422, "bad_argument"),
    http(f"/api/tracks/{2**63}", 422, "bad_argument"),
    http("/api/tracks/" + "9" * 400, 422, "bad_argument"),
    http("/api/tracks/1e3", 422, "bad_argument"),
    http("/api/tracks/0x10", 422, "bad_argument"),
    http("/api/tracks/{t}/similar?k=0", 422, "bad_argument"),
    http("/api/tracks/{t}/similar?k=-5", 422, "bad_argument"),
    http("/api/tracks/{t}/similar?k=1001", 422, "bad_argument"),
    http("/api/tracks/{t}/similar?k=1e309", 422, "bad_argument"),
    http("/api/tracks/{t}/similar?k=NaN", 422, "bad_argument"),
    http("/api/tracks/{t}/similar?k=" + "9" * 5000, 422, "bad_argument"),
    http("/api/tracks/{t}/similar?exclude_same_artist=maybe", 422, "bad_argument"),
    # the search options: one parser on every route that reads them
    http("/api/tracks/{t}/similar?exclude_same_album=2", 422, "bad_argument"),
    http("/api/tracks/{t}/similar?genre=jazz&genre=polka", 422, "unknown_genre"),
    http("/api/tracks/{t}/similar?min_tag_probability=NaN", 422, "bad_argument"),
    http("/api/tracks/{t}/similar?ef_search=1001", 422, "bad_argument"),
    http("/api/tracks/{t}/similar?artist_spacing=-1", 422, "bad_argument"),
    http("/api/tracks/{t}/similar?colour=red", 200, None, why="a parameter that is no option is left alone"),
    # the descriptor filters (issue #30): tempo, key, mood, energy
    http("/api/tracks/{t}/similar?tempo=300-100", 422, "bad_argument", why="minimum above maximum"),
    http("/api/tracks/{t}/similar?tempo=5-1000", 422, "bad_argument"),
    http("/api/tracks/{t}/similar?tempo=fast", 422, "bad_argument"),
    http("/api/tracks/{t}/similar?tempo=120%00", 422, "bad_argument"),
    http("/api/tracks/{t}/similar?tempo=" + "1" * 5000, 422, "bad_argument"),
    http("/api/tracks/{t}/similar?key=H%23", 422, "bad_argument"),
    http("/api/tracks/{t}/similar?key=13A", 422, "bad_argument"),
    http("/api/tracks/{t}/similar?key=A%00minor", 422, "bad_argument"),
    http("/api/tracks/{t}/similar?key=" + "A" * 5000, 422, "bad_argument"),
    http("/api/tracks/{t}/similar?mood=melancholic", 422, "bad_argument"),
    http("/api/tracks/{t}/similar?mood=%00", 422, "bad_argument"),
    http("/api/tracks/{t}/similar?mood=" + "&mood=".join(["calm"] * 7), 422, "bad_argument"),
    http("/api/tracks/{t}/similar?energy=2-3", 422, "bad_argument"),
    http("/api/recommend?liked={t}&tempo=NaN-130", 422, "bad_argument"),
    http("/api/playlist?start={t}&end={a}&key=%E2%99%AF", 422, "bad_argument"),
    http("/api/tracks/{t}/similar?tempo=118-128&key=8A&mood=calm&energy=0-1", 200, None,
         why="well-formed filters answer (possibly with no track)"),
    http("/api/recommend?liked={t}&exclude_track=abc", 422, "bad_argument", why="tracks by id only over HTTP"),
    http("/api/recommend?liked={t}&exclude_track=/etc/passwd", 422, "bad_argument"),
    http("/api/recommend?liked={t}&exclude_track=" + str(2**62 + 1), 422, "bad_argument"),
    http("/api/playlist?start={t}&end={a}&n=1", 422, "bad_argument"),
    http("/api/playlist?start={t}&end={a}&tag=" + "&tag=".join(["rock"] * 11), 422, "bad_argument"),
    http("/api/tracks?q=blue&limit=-1", 422, "bad_argument"),
    http("/api/tracks?q=blue&offset=10001", 422, "bad_argument"),
    http("/api/status?failures=101", 422, "bad_argument"),
    http("/api/map?limit=1", 422, "bad_argument"),
    http("/api/map?limit=20001", 422, "bad_argument"),
    http("/api/evaluate?max_tracks=1000000", 422, "bad_argument"),
    http("/api/evaluate?k=0", 422, "bad_argument"),
    http("/api/recommend?liked={t}&artist_spacing=101", 422, "bad_argument"),
    http("/api/recommend?liked=-1", 404, "unknown_track"),
    http("/api/recommend?liked=" + "&liked=".join(["1"] * 101), 422, "bad_argument"),
    http("/api/playlist?start={t}&end=" + "9" * 30, 422, "bad_argument"),
    http("/api/playlist?start={t}&end={t}", 422, "bad_argument"),
    http("/api/m3u?ids=" + "&ids=".join(["1"] * 1001), 422, "bad_argument"),
    http("/api/m3u?ids=999999999", 404, "unknown_track"),
    http(f"/api/models/{2**31}", 422, "bad_argument"),
    http("/api/models/-5", 422, "bad_argument"),
    http("/api/models/2147483647", 404, "unknown_model"),
    http("/api/models?limit=0", 422, "bad_argument"),
    # unknown enums
    http("/api/tracks?q=blue&field=path", 422, "bad_argument"),
    http("/api/tracks/{t}/similar?format=xml", 422, "bad_argument"),
    http("/api/tracks/{t}/similar?space=mfcc", 422, "bad_argument"),
    http("/api/tracks/{t}/similar?genre=polka", 422, "unknown_genre"),
    http("/api/tracks/{t}/cluster?model=dbscan", 422, "bad_argument"),
    http("/api/map?color_by=mood", 422, "bad_argument"),
    http("/api/models?state=bogus", 422, "bad_argument"),
    http("/api/models?kind=bogus", 422, "bad_argument"),
    http("/api/models/bogus/rollback", 422, "bad_argument", P, AUTH),
    http("/api/genres/polka/tracks", 422, "unknown_genre"),
    # overlong strings
    http("/api/tracks?q=" + "x" * 201, 422, "bad_argument"),
    http("/api/genres/" + "g" * 101 + "/tracks", 422, "bad_argument"),
    http("/api/m3u?ids={t}&base=/" + "a" * 5000, 422, "bad_argument"),
    http("/api/m3u?ids={t}&title=" + "t" * 201, 422, "bad_argument"),
    http("/api/recommend?liked={t}&exclude_artist=" + "a" * 201, 422, "bad_argument"),
    http("/api/similar-to-file?filename=" + "f" * 256, 422, "bad_argument", P, body=b"x"),
    http("/api/tracks/{t}/similar?space=" + "s" * 33, 422, "bad_argument"),
    http("/api/models/" + "k" * 17 + "/rollback", 422, "bad_argument", P, AUTH),
    # odd text: invalid UTF-8 and look-alikes of NUL are data, never a 500
    http("/api/tracks?q=%FF%FE", 422, "bad_argument", why="invalid UTF-8: no letter to look for"),
    http("/api/tracks?q=%ED%A0%80", 422, "bad_argument", why="an encoded surrogate"),
    http("/api/genres/%C0%80/tracks", 422, "unknown_genre", why="overlong UTF-8 for NUL"),
    http("/api/tracks?q=%2500", 200, None, why="a percent sign and two zeros are no NUL"),
    http("/api/tracks?q=x'); DROP TABLE tracks; --", 200, None),
    http("/api/tracks?q=" + "%E2%80%AE" * 50, 422, "bad_argument", why="right-to-left overrides only"),
    # bodies: bad JSON, wrong types, wrong content types
    http("/api/train", 422, "bad_argument", P, JSONH, b"{"),
    http("/api/train", 422, "bad_argument", P, JSONH, b'{"models": "knn"}'),
    http("/api/train", 422, "bad_argument", P, JSONH, b'{"models": [1, 2]}'),
    http("/api/train", 422, "bad_argument", P, JSONH, b'{"models": ["\\u0000"]}'),
    http("/api/train", 422, "bad_argument", P, JSONH, b'{"models": ["nope"]}'),
    http("/api/train", 422, "bad_argument", P, JSONH, b'{"quick": "maybe"}'),
    http("/api/train", 422, "bad_argument", P, JSONH, b'{"quick": 1e999}'),
    http("/api/train", 422, "bad_argument", P, JSONH, b'{"models": ["knn"], "models": {"a": 1}}'),
    http("/api/train", 400, "bad_request", P, JSONH, b"[" * 30000 + b"]" * 30000, why="nesting deeper than the parser"),
    http("/api/train", 413, "too_large", P, JSONH, b'{"models": ["' + b"x" * 70000 + b'"]}'),
    http("/api/train", 415, "unsupported_media_type", P, {**AUTH, "Content-Type": "text/plain"}, b'{"models": []}',
         why="before: the body was ignored and every model queued"),
    http("/api/train", 415, "unsupported_media_type", P, {**AUTH, "Content-Type": "application/x-www-form-urlencoded"},
         b"models=knn"),
    http("/api/ingest", 415, "unsupported_media_type", P, AUTH, b'{"roots": []}', why="no Content-Type"),
    http("/api/train", 400, "bad_request", P, {**JSONH, "Content-Length": "12x"}, b"{}"),
    http("/api/ingest", 422, "bad_argument", P, JSONH, b'{"roots": ["/etc"]}'),
    http("/api/ingest", 422, "bad_argument", P, JSONH, b'{"roots": ["../../etc"]}'),
    http("/api/ingest", 422, "bad_argument", P, JSONH, b'{"label_from": "csv:/etc/passwd"}'),
    http("/api/ingest", 422, "bad_argument", P, JSONH, b'{"roots": "/"}'),
    http("/api/similar-to-file", 422, "bad_argument", P, body=b""),
    http("/api/similar-to-file?filename=x.mp3", 422, "audio_error", P, body=b"\x00garbage" * 500),
    http("/api/similar-to-file?filename=../../etc/passwd", 422, "audio_error", P, body=b"RIFF" + b"\x00" * 100),
    http("/api/similar-to-file", 415, "unsupported_media_type", P,
         {"Content-Type": "multipart/form-data; boundary=x"}, b"--x--"),
    http("/api/similar-to-file", 413, "too_large", P, {"Content-Length": str(10**12)}, b""),
    # methods, routes, tokens
    http("/api/train", 405, "method_not_allowed"),
    http("/api/tracks/{t}", 405, "method_not_allowed", "DELETE"),
    http("/api/tracks/{t}", 405, "method_not_allowed", "PUT", body=b"{}"),
    http("/api/nothing-here", 404, "not_found"),
    http("/api/tracks/{t}/audio/../../../etc/passwd", 404, "not_found"),
    http("/api/train", 401, "unauthorized", P, {"Authorization": "Bearer"}, b"{}"),
    http("/api/train", 401, "unauthorized", P, {"Authorization": "Bearer " + "x" * 10000}, b"{}"),
    http("/api/train", 401, "unauthorized", P, {"Authorization": f"Basic {TOKEN}"}, b"{}"),
    http("/api/train", 401, "unauthorized", P, {"Authorization": f"Bearer {TOKEN[:-1]}"}, b"{}"),
    http("/api/train", 401, "unauthorized", P, {"Content-Length": str(10**9)}, b"", why="token before size"),
    http("/api/models/{ann}/promote", 401, "unauthorized", P, {"Cookie": f"token={TOKEN}"}),
    # cross-site (the origin rule)
    http("/api/similar-to-file?filename=x.wav", 403, "forbidden", P,
         {"Origin": "http://evil.example", "Content-Type": "text/plain"}, b"x"),
    http("/api/evaluate?max_tracks=20000", 403, "forbidden", headers={"Origin": "http://evil.example"}),
    http("/api/map?limit=20000", 403, "forbidden", headers={"Sec-Fetch-Site": "cross-site"}),
    http("/api/train", 403, "forbidden", P, {**JSONH, "Origin": "null"}, b"{}"),
    # the Host header (DNS rebinding)
    http("/api/health", 400, "bad_host", headers={"Host": "evil.example"}),
    http("/api/health", 400, "bad_host", headers={"Host": "127.0.0.1.evil.example"}),
    http("/api/health", 400, "bad_host", headers={"Host": "localhost@evil.example"}),
    http("/api/health", 400, "bad_host", headers={"Host": ""}),
    http("/api/health", 200, None, headers={"Host": "[::1]:8765"}),
    http("/api/health", 200, None, headers={"X-Forwarded-Host": "evil.example"}, why="ignored"),
    http("/api/health", 400, "bad_host", headers={"Host": "localhost:80@evil.example"}, why="userinfo after a port"),
    http("/api/health", 400, "bad_host", headers={"Host": "127.0.0.1:80/evil"}, why="a path in the Host"),
    http("/api/health", 400, "bad_host", headers={"Host": "localhost:8x"}, why="a port that is no number"),
    http("/api/library/me", 200, None, headers={"X-Forwarded-For": "1.2.3.4", "X-Forwarded-Proto": "https"},
         why="no trusted proxy: forwarded headers are nobody's word"),
    http("/api/library/me", 200, None, headers={"Cookie": "mi_session=" + "A" * 4000}, why="a huge cookie"),
    http("/api/library/me", 200, None, headers={"Cookie": "mi_session=eyJ1IjoxLCJ0IjoxLCJuIjoieCJ9.AAAA"},
         why="a forged session: anonymous"),
    # static files: path traversal
    http("/static/..%2F..%2F..%2Fetc%2Fpasswd", 404, "html"),
    http("/static/%2e%2e/%2e%2e/%2e%2e/%2e%2e/etc/passwd", 404, "html"),
    http("/static/%252e%252e/%252e%252e/etc/passwd", 404, "html"),
    http("/static//etc/passwd", 404, "html"),
    http("/static/..\\..\\etc\\passwd", 404, "html"),
    http("/static/app.js%00.png", 422, "html"),
    http("/api/tracks/..%2F..%2Fetc%2Fpasswd/audio", 404, "not_found"),
    http("/api/tracks/{t}/audio?path=/etc/passwd", 200, None, why="a path parameter is ignored: the track's file"),
    # audio: bad Range headers, a track without a file
    http("/api/tracks/{t}/audio", 200, None, headers={"Range": "bytes=abc"}),
    http("/api/tracks/{t}/audio", 200, None, headers={"Range": "bytes=--1"}),
    http("/api/tracks/{t}/audio", 200, None, headers={"Range": "bytes=9-1"}),
    http("/api/tracks/{t}/audio", 200, None, headers={"Range": "bits=0-1"}),
    http("/api/tracks/{t}/audio", 200, None, headers={"Range": "bytes=0-0,1-1,2-2"}),
    http("/api/tracks/{t}/audio", 206, None, headers={"Range": "bytes=0-" + "9" * 400}),
    http("/api/tracks/{t}/audio", 416, None, headers={"Range": "bytes=-0"}),
    http("/api/tracks/{t}/audio", 416, None, headers={"Range": "bytes=" + "9" * 400 + "-"}),
    http("/api/tracks/{t}/audio", 200, None, headers={"If-Range": "garbage", "Range": "bytes=0-0"}),
    http("/api/tracks/{t}/audio", 200, None, headers={"If-Modified-Since": "Mon, 99 Foo 99999 99:99:99 GMT"}),
    http("/api/tracks/{m}/audio", 404, "file_missing"),
    http(f"/api/tracks/{2**62}/audio", 404, "unknown_track"),
    # duplicates (issue 31): a read under the login rule; its kind, limit and offset checked
    http("/api/tracks/{t}/similar?allow_duplicates=maybe", 422, "bad_argument"),
    http("/api/tracks/{t}/similar?allow_duplicates=true", 200, None, why="the seed's copies allowed back"),
    http("/api/duplicates?kind=%00", 422, "bad_argument"),
    http("/api/duplicates?kind=bogus", 422, "bad_argument"),
    http("/api/duplicates?kind=" + "r" * 33, 422, "bad_argument"),
    http("/api/duplicates?kind=' OR 1=1 --", 422, "bad_argument", why="no SQL: the kind is checked against a list"),
    http("/api/duplicates?limit=0", 422, "bad_argument"),
    http("/api/duplicates?limit=1001", 422, "bad_argument"),
    http("/api/duplicates?offset=-1", 422, "bad_argument"),
    http("/api/duplicates?offset=" + "9" * 30, 422, "bad_argument"),
    http("/api/duplicates?kind=RECORDING&offset=10000000", 200, None, why="an alias; past the end: an empty list"),
]
# fmt: on

# --------------------------------------------------------------------------- pages
# input: url; expect: (status, "html") for the HTML error page, (200, None) for a page
PAGE_ROWS = [
    Row("page", "/genres/%00", (422, "html")),
    Row("page", "/genres/a%00b", (422, "html")),
    Row("page", "/tracks/{t}?genre=%00", (422, "html")),
    Row("page", "/?q=a%00", (422, "html")),
    Row("page", "/?q=" + "x" * 201, (422, "html")),
    Row("page", "/?offset=-1", (422, "html")),
    Row("page", "/?field=path", (422, "html")),
    Row("page", "/tracks/abc", (422, "html")),
    Row("page", "/tracks/0", (422, "html")),
    Row("page", "/tracks/" + "9" * 30, (422, "html")),
    Row("page", "/tracks/999999999", (404, "html")),
    Row("page", "/tracks/{t}?k=0", (200, None), "the 'sounds like' part says what k accepts (the page stands)"),
    Row("page", "/tracks/{t}?exclude_same_album=maybe", (200, None), "the search option's error, in its part"),
    Row("page", "/tracks/{t}?space=mfcc", (200, None), "a part that cannot answer says why"),
    Row("page", "/tracks/{t}?tempo=300-100", (200, None), "the tempo filter's error, in its part"),
    Row("page", "/tracks/{t}?key=%3Cscript%3Ealert(1)%3C/script%3E", (200, None), "a hostile key: refused, escaped"),
    Row("page", "/tracks/{t}?tempo=%22%3E%3Cscript%3Ealert(1)%3C/script%3E", (200, None), "shown back escaped"),
    Row("page", "/tracks/{t}?mood=%00", (422, "html"), "NUL: refused before any part answers"),
    Row("page", "/genres/polka", (422, "html")),
    Row("page", "/playlist?start=abc", (200, None), "the builder says 'is no track id' (no error page)"),
    Row("page", "/playlist?start=999999999", (200, None), "the builder says 'no track' (no error page)"),
    Row("page", "/playlist?start_q=%00", (422, "html")),
    Row("page", "/recommend?liked=abc", (422, "html")),
    Row("page", "/recommend?liked=999999999", (404, "html")),
    Row("page", "/map?color_by=x", (422, "html")),
    Row("page", "/duplicates?kind=%00", (422, "html")),
    Row("page", "/duplicates?kind=bogus", (422, "html")),
    Row("page", "/duplicates?limit=0", (422, "html")),
    Row("page", "/duplicates?kind=song", (200, None)),
    Row("page", "/nothing-here", (404, "html")),
    Row("page", "/?q=%3Cscript%3Ealert(1)%3C/script%3E", (200, None), "escaped"),
]

# --------------------------------------------------------------------------- CLI
# input: argv (no shell; argv cannot hold NUL, so control characters stand in); expect: exit code
CLI_ROWS = [
    Row("cli", ("duplicates", "--kind", "bogus"), 2),
    Row("cli", ("duplicates", "--limit", "0"), 2),
    Row("cli", ("prefer", "999999999"), 6),
    Row("cli", ("prefer", "{t}"), 2, "a track in no group: says so"),
    Row("cli", ("similar", "999999999"), 6),
    Row("cli", ("similar", "/no/such/file.flac"), 6),
    Row("cli", ("similar", "-5"), 2, "an option-like track: click refuses it"),
    Row("cli", ("similar", "9" * 40), 6, "too long for an id: taken as a path"),
    Row("cli", ("similar", "{t}", "-k", "0"), 2),
    Row("cli", ("similar", "{t}", "-k", "abc"), 2),
    Row("cli", ("similar", "{t}", "--space", "mfcc"), 2),
    Row("cli", ("similar", "{t}", "--genre", "a\x01b"), 2),
    Row("cli", ("similar", "{t}", "--m3u-base", "relative/dir", "--m3u", "/tmp/mi-hostile.m3u8"), 2),
    Row("cli", ("by-genre", "polka"), 2),
    Row("cli", ("by-genre", "\x1b[31mred"), 2),
    Row("cli", ("models", "list", "--state", "bogus"), 2),
    Row("cli", ("models", "list", "--kind", "bogus"), 2),
    Row("cli", ("models", "list", "--limit", "-1"), 2),
    Row("cli", ("models", "show", "999999"), 8),
    Row("cli", ("models", "show", "abc"), 2),
    Row("cli", ("models", "rollback", "bogus"), 2),
    Row("cli", ("playlist", "{t}", "{t}"), 2),
    Row("cli", ("recommend", "--like", "999999999"), 6),
    Row("cli", ("search", "--tag", "\x7f"), 2, "a tag no model knows"),
    Row("cli", ("similar", "{t}", "--bogus-option"), 2),
    Row("cli", ("similar", "{t}", "--tempo", "300-100"), 2),
    Row("cli", ("similar", "{t}", "--key", "H#"), 2),
    Row("cli", ("similar", "{t}", "--mood", "melancholic"), 2),
    Row("cli", ("similar", "{t}", "--energy", "\x01"), 2),
    Row("cli", ("no-such-command",), 2),
    # the embedded servers on TCP (`services start --listen`): refused before anything starts or stops
    Row(
        "cli",
        ("services", "start", "--listen", "db.example.org", "--password-file", "/etc/hostname"),
        2,
        "a host name: only IP addresses",
    ),
    Row("cli", ("services", "start", "--listen", "10.0.0.1;rm -rf /", "--password-file", "/etc/hostname"), 2),
    Row("cli", ("services", "start", "--listen", "a\x01b"), 2),
    Row("cli", ("services", "start", "--listen", "10.0.0.1"), 2, "TCP without a password"),
    Row("cli", ("services", "start", "--listen", "10.0.0.1", "--password-file", "/no/such/file"), 2),
    Row(
        "cli",
        ("services", "start", "--listen", "10.0.0.1", "--password-file", "/etc/passwd"),
        2,
        "a file others can read",
    ),
    Row("cli", ("services", "start", "--password-file", "/etc/passwd"), 2, "a password without --listen"),
]

# --------------------------------------------------------------------------- Python API
# input: (method, args, kwargs) with "<t>" for a track with a file, "<a>" another; expect: an exception class
PY = "python"


class _Opaque:
    """An argument of no accepted type, with a stable repr (test ids must match across xdist workers)."""

    def __repr__(self) -> str:
        return "<opaque object>"


PYTHON_ROWS = [
    Row(PY, ("duplicates", ("bogus",), {}), E.InvalidArgumentError),
    Row(PY, ("duplicates", (3,), {}), E.InvalidArgumentError),
    Row(PY, ("duplicates", (), {"limit": "10"}), E.InvalidArgumentError),
    Row(PY, ("duplicates", (), {"offset": -1}), E.InvalidArgumentError),
    Row(PY, ("prefer_duplicate", (2**63,), {}), E.TrackNotFoundError),
    Row(PY, ("prefer_duplicate", ("<t>",), {}), E.InvalidArgumentError),
    Row(PY, ("similar", (None,), {}), E.InvalidArgumentError),
    Row(PY, ("similar", (True,), {}), E.InvalidArgumentError),
    Row(PY, ("similar", (1.5,), {}), E.InvalidArgumentError),
    Row(PY, ("similar", (b"/x",), {}), E.InvalidArgumentError),
    Row(PY, ("similar", (-1,), {}), E.TrackNotFoundError),
    Row(PY, ("similar", (2**63,), {}), E.TrackNotFoundError),
    Row(PY, ("similar", (10**30,), {}), E.TrackNotFoundError),
    Row(PY, ("similar", ("/no/such/file.flac",), {}), E.TrackNotFoundError),
    Row(PY, ("similar", ("a\x00b",), {}), E.InvalidArgumentError),
    Row(PY, ("similar", ("<t>",), {"k": 0}), E.InvalidArgumentError),
    Row(PY, ("similar", ("<t>",), {"k": 1001}), E.InvalidArgumentError),
    Row(PY, ("similar", ("<t>",), {"k": "10"}), E.InvalidArgumentError),
    Row(PY, ("similar", ("<t>",), {"k": True}), E.InvalidArgumentError),
    Row(PY, ("similar", ("<t>",), {"k": 2.0}), E.InvalidArgumentError),
    Row(PY, ("similar", ("<t>",), {"space": "mfcc"}), E.InvalidArgumentError),
    Row(PY, ("similar", ("<t>",), {"space": 5}), E.InvalidArgumentError),
    Row(PY, ("similar", ("<t>",), {"space": "cnn"}), E.ModelNotTrainedError),
    Row(PY, ("similar", ("<t>",), {"genre": "\x00"}), E.InvalidArgumentError),
    Row(PY, ("similar", ("<t>",), {"genre": "polka"}), E.UnknownGenreError),
    Row(PY, ("similar", ("<t>",), {"ef_search": -1}), E.InvalidArgumentError),
    Row(PY, ("similar", ("<t>",), {"colour": "red"}), E.InvalidArgumentError),
    Row(PY, ("similar", ("<t>",), {"exclude_same_album": "yes"}), E.InvalidArgumentError),
    Row(PY, ("similar", ("<t>",), {"genre": ["jazz", "polka"]}), E.UnknownGenreError),
    Row(PY, ("similar", ("<t>",), {"options": "k=5"}), E.InvalidArgumentError),
    Row(PY, ("similar", ("<t>",), {"tempo": "300-100"}), E.InvalidArgumentError),
    Row(PY, ("similar", ("<t>",), {"tempo": (float("inf"), 130)}), E.InvalidArgumentError),
    Row(PY, ("similar", ("<t>",), {"key": "H#"}), E.InvalidArgumentError),
    Row(PY, ("similar", ("<t>",), {"key": 8}), E.InvalidArgumentError),
    Row(PY, ("similar", ("<t>",), {"mood": "melancholic"}), E.InvalidArgumentError),
    Row(PY, ("similar", ("<t>",), {"mood": ["calm", None]}), E.InvalidArgumentError),
    Row(PY, ("similar", ("<t>",), {"energy": (0.9, 0.1)}), E.InvalidArgumentError),
    Row(PY, ("recommend", (["<t>"],), {"exclude_tracks": [True]}), E.InvalidArgumentError),
    Row(PY, ("mixes.instant_mix", ("song", 1), {}), E.InvalidArgumentError),
    Row(PY, ("recommend", ([],), {}), E.InvalidArgumentError),
    Row(PY, ("recommend", (["<t>"] * 1001,), {}), E.InvalidArgumentError),
    Row(PY, (("recommend", (["<t>"],), {"exclude_artists": ["\x00"]})), E.InvalidArgumentError),
    Row(PY, (("recommend", (["<t>"],), {"exclude_genres": [None]})), E.InvalidArgumentError),
    Row(PY, (("recommend", (["<t>"],), {"artist_spacing": -1})), E.InvalidArgumentError),
    Row(PY, (("recommend", (["<t>"],), {"k": 10**9})), E.InvalidArgumentError),
    Row(PY, ("by_genre", ("",), {}), E.InvalidArgumentError),
    Row(PY, ("by_genre", (None,), {}), E.InvalidArgumentError),
    Row(PY, ("by_genre", ("polka",), {}), E.UnknownGenreError),
    Row(PY, ("by_genre", ("x" * 1000,), {}), E.InvalidArgumentError),
    Row(PY, ("by_genre", ("jazz",), {"k": -1}), E.InvalidArgumentError),
    Row(PY, ("playlist", ("<t>", "<t>"), {}), E.InvalidArgumentError),
    Row(PY, ("playlist", ("<t>", "<a>"), {"n": 1}), E.InvalidArgumentError),
    Row(PY, ("playlist", ("<t>", "<a>"), {"n": 201}), E.InvalidArgumentError),
    Row(PY, ("search_tracks", ("",), {}), E.InvalidArgumentError),
    Row(PY, ("search_tracks", ("\x00",), {}), E.InvalidArgumentError),
    Row(PY, ("search_tracks", (123,), {}), E.InvalidArgumentError),
    Row(PY, ("search_tracks", ("blue",), {"field": "path"}), E.InvalidArgumentError),
    Row(PY, ("search_tracks", ("blue",), {"limit": 0}), E.InvalidArgumentError),
    Row(PY, ("search_tracks", ("blue",), {"offset": -1}), E.InvalidArgumentError),
    Row(PY, ("track_details", (0,), {}), E.TrackNotFoundError),
    Row(PY, ("track_summaries", (["<t>"] * 1001,), {}), E.InvalidArgumentError),
    Row(PY, ("track_files", ([None],), {}), E.InvalidArgumentError),
    Row(PY, ("library.track_file", (2**62,), {}), E.TrackNotFoundError),
    Row(PY, ("genre_of", (_Opaque(),), {}), E.InvalidArgumentError),
    Row(PY, ("cluster_of", ("<t>",), {"model": "dbscan"}), E.InvalidArgumentError),
    Row(PY, ("cluster_of", ("<t>",), {"model": "birch"}), E.ModelNotTrainedError),
    Row(PY, ("tags_of", ("<t>",), {"n": 0}), E.InvalidArgumentError),
    Row(PY, ("tags_of", ("<t>",), {"n": 1001}), E.InvalidArgumentError),
    Row(PY, ("search_by_tags", (["no such tag"],), {}), E.InvalidArgumentError),
    Row(PY, ("search_by_tags", ([],), {}), E.InvalidArgumentError),
    Row(PY, ("search_by_tags", (["\x00"],), {}), E.InvalidArgumentError),
    Row(PY, ("library.library_map", (), {"limit": 1}), E.InvalidArgumentError),
    Row(PY, ("library.library_map", ("mfcc",), {}), E.InvalidArgumentError),
    Row(PY, ("library.library_map", (), {"color_by": "mood"}), E.InvalidArgumentError),
    Row(PY, ("models", (), {"state": "\x00"}), E.InvalidArgumentError),
    Row(PY, ("models", (), {"state": "bogus"}), E.InvalidArgumentError),
    Row(PY, ("models", (), {"kind": 5}), E.InvalidArgumentError),
    Row(PY, ("models", (), {"limit": 0}), E.InvalidArgumentError),
    Row(PY, ("model", (2**40,), {}), E.ModelNotTrainedError),
    Row(PY, ("rollback", ("bogus",), {}), E.InvalidArgumentError),
    Row(PY, ("promote", ([2**40],), {}), E.InvalidArgumentError),
    Row(PY, ("evaluate", (), {"max_tracks": 10**9}), E.InvalidArgumentError),
    Row(PY, ("evaluate", (), {"k": 0}), E.InvalidArgumentError),
    Row(PY, ("train", ("nope",), {"local": True}), E.InvalidArgumentError),
    Row(PY, ("train", ("\x00",), {"local": True}), E.InvalidArgumentError),
    Row(PY, ("ingest", (["/a\x00b"],), {"wait": False}), E.InvalidArgumentError),
    Row(PY, ("ingest", (["/no/such/folder"],), {"wait": False}), E.InvalidArgumentError),
    Row(PY, ("ingest", (["/tmp"],), {"wait": False, "label_from": "csv:/x\x00"}), E.InvalidArgumentError),
    Row(PY, ("ingest", (["/tmp"],), {"wait": False, "label_from": "bogus"}), E.InvalidArgumentError),
    Row(PY, ("watch", (["/a\x00"],), {}), E.InvalidArgumentError),
    Row(PY, ("similar_to_file", ("/a\x00b",), {}), E.InvalidArgumentError),
    Row(PY, ("similar_to_file", (None,), {}), E.InvalidArgumentError),
    Row(PY, ("evaluate", (), {"labels": "csv:/x\x00"}), E.InvalidArgumentError),
    Row(PY, ("train", ("knn",), {"local": True, "test_size": 2.0}), E.InvalidArgumentError),
]

# --------------------------------------------------------------------------- SQL functions
# input: SQL with {t} for a track; expect: ("rows", n) or ("rows", ">0") or ("error", SQLSTATE)
SQL = "sql"
SQL_ROWS = [
    Row(SQL, "SELECT * FROM musicindex_similar(NULL)", ("error", "P0002")),
    Row(SQL, "SELECT * FROM musicindex_similar(-1)", ("error", "P0002")),
    Row(SQL, "SELECT * FROM musicindex_similar(9223372036854775807)", ("error", "P0002")),
    Row(SQL, "SELECT * FROM musicindex_similar({t}, -1)", ("error", "22023")),
    Row(SQL, "SELECT * FROM musicindex_similar({t}, 0)", ("error", "22023")),
    Row(SQL, "SELECT * FROM musicindex_similar({t}, NULL)", ("error", "22023")),
    Row(SQL, "SELECT * FROM musicindex_similar({t}, 1001)", ("error", "22023")),
    Row(SQL, "SELECT * FROM musicindex_similar({t}, 10, 'mfcc')", ("error", "22023")),
    Row(SQL, "SELECT * FROM musicindex_similar({t}, 10, '')", ("error", "22023")),
    Row(SQL, "SELECT * FROM musicindex_similar({t}, 10, 'features''; DROP TABLE tracks; --')", ("error", "22023")),
    Row(SQL, "SELECT * FROM musicindex_similar({t}, 10, 'cnn')", ("error", "55000")),
    Row(SQL, "SELECT * FROM musicindex_similar({t}, 5, NULL)", ("rows", 5), "NULL space: the best available"),
    Row(SQL, "SELECT * FROM musicindex_similar({t}, 5, 'ann')", ("rows", 5)),
    Row(SQL, "SELECT * FROM musicindex_by_genre(NULL)", ("rows", 0)),
    Row(SQL, "SELECT * FROM musicindex_by_genre('polka')", ("rows", 0)),
    Row(SQL, "SELECT * FROM musicindex_by_genre('jazz', -1)", ("rows", 1), "k clamped to [1, 1000]"),
    Row(SQL, "SELECT * FROM musicindex_by_genre('jazz', NULL)", ("rows", ">0")),
    Row(SQL, "SELECT * FROM musicindex_by_genre('jazz', 2147483647)", ("rows", ">0")),
    Row(SQL, "SELECT * FROM musicindex_genre_of(NULL)", ("rows", 0)),
    Row(SQL, "SELECT * FROM musicindex_genre_of(-1)", ("rows", 0)),
    Row(SQL, "SELECT musicindex_genre_model_version('bogus')", ("rows", 1)),
    Row(SQL, "SELECT musicindex_active_version(NULL)", ("rows", 1)),
    Row(SQL, "SELECT * FROM musicindex_top_tags({t}, -5)", ("rows", 1), "n clamped to [1, 50]"),
    Row(SQL, "SELECT * FROM musicindex_top_tags(NULL)", ("rows", 0)),
    Row(SQL, "SELECT * FROM musicindex_top_tags({t}, NULL)", ("rows", ">0")),
    Row(SQL, "SELECT * FROM musicindex_tracks_with_tag(NULL)", ("error", "22023")),
    Row(SQL, "SELECT * FROM musicindex_tracks_with_tag('no such tag')", ("error", "22023")),
    Row(SQL, "SELECT * FROM musicindex_tracks_with_tag('mellow', 0.3, -1)", ("error", "22023")),
    Row(SQL, "SELECT * FROM musicindex_tracks_with_tag('mellow', 0.3, NULL)", ("error", "22023")),
    Row(SQL, "SELECT * FROM musicindex_tracks_with_tag('mellow', NULL)", ("rows", 0)),
    Row(SQL, "SELECT * FROM musicindex_tracks_with_tag('mellow', 'NaN')", ("rows", 0)),
    Row(SQL, "SELECT * FROM musicindex_tracks_with_tag('mellow', 2.0)", ("rows", 0)),
    Row(SQL, "SELECT * FROM musicindex_tracks_with_tag('mellow', -1.0, 5)", ("rows", 5)),
    Row(SQL, "SELECT musicindex_search_doc(NULL, NULL, NULL, NULL)", ("rows", 1)),
]

# --------------------------------------------------------------------------- files through ingest
# input: the file's maker (badfiles); expect: ("failed", reason substring) / ("indexed", "") / ("skipped", "")
FILE_ROWS = [
    Row("file", "zero_byte", ("failed", "empty")),
    Row("file", "random_mp3", ("failed", "")),
    Row("file", "random_wav", ("failed", "")),
    Row("file", "truncated_header_wav", ("failed", "")),
    Row("file", "too_short_wav", ("failed", "too short")),
    Row("file", "silent_wav", ("failed", "silent")),
    Row("file", "nan_inf_wav", ("failed", "non-finite")),
    Row("file", "random.flac", ("failed", "")),
    Row("file", "random.ogg", ("failed", "")),
    Row("file", "random.aiff", ("failed", "")),
    Row("file", "huge_header.wav", ("failed", ""), "a header claiming 2**31 frames over a tiny body"),
    Row("file", "fifo.wav", ("skipped", ""), "a FIFO named like audio never blocks the batch"),
    Row("file", "folder.mp3", ("skipped", ""), "a folder named like audio"),
    Row("file", "link-out.wav", ("skipped", ""), "a symlink out of the folder (to /dev/zero)"),
    Row("file", "became-fifo.wav", ("failed", "not a regular file"), "a FIFO swapped in after registration"),
    Row("file", "symlink_loop", ("indexed", ""), "the file inside a looping folder, once"),
    Row("file", "good.ogg", ("indexed", ""), "the batch goes on"),
]

# --------------------------------------------------------------------------- Subsonic API (/rest/)
# input: (endpoint, parameters); expect: the Subsonic error code of the answer (HTTP 200, status "failed": 0 a
# value not accepted, 10 a required parameter missing, 20 a client too old, 70 not found), or an HTTP status
# (>= 100). The calls are made as the account "corpus" (password in p, JSON); {t} and {a} in a value: track ids.
NUL = "\x00"


def sub(endpoint: str, params: dict[str, str], expect: int, why: str = "") -> Row:
    return Row("subsonic", (endpoint, tuple(params.items())), expect, why)


# fmt: off
SUBSONIC_ROWS = [
    sub("search3", {"query": f"a{NUL}b"}, 0, "NUL in a search"),
    sub("getAlbum", {"id": f"al-1{NUL}"}, 0, "NUL in an id"),
    sub("ping", {"u": f"ali{NUL}ce"}, 0, "NUL in the user name"),
    sub("getSongsByGenre", {"genre": f"rock{NUL}"}, 0, "NUL in a genre"),
    sub("search3", {"query": "", "songCount": str(10**12)}, 0, "a count beyond 32 bits"),
    sub("search3", {"query": "", "songCount": "-5"}, 0, "a negative count"),
    sub("getAlbumList2", {"type": "newest", "offset": "-1"}, 0, "a negative offset"),
    sub("getSongsByGenre", {"genre": "rock", "offset": str(10**9)}, 0, "an offset beyond the bound"),
    sub("getAlbumList2", {"type": "newest", "size": "ten"}, 0, "a size that is no number"),
    sub("getRandomSongs", {"size": "1e9"}, 0, "a float size"),
    sub("getAlbumList2", {"type": "worst"}, 0, "an unknown list type"),
    sub("getAlbumList", {}, 10, "a list type missing"),
    sub("getAlbumList2", {"type": "byGenre"}, 0, "byGenre without a genre"),
    sub("getAlbumList2", {"type": "byYear", "fromYear": "100000", "toYear": "1"}, 0, "a year beyond 9999"),
    sub("getAlbum", {}, 10, "an id missing"),
    sub("getSong", {}, 10, "a song id missing"),
    sub("stream", {}, 10, "stream without an id"),
    sub("getCoverArt", {}, 10, "a cover without an id"),
    sub("getSong", {"id": "al-1"}, 70, "an album id for a song"),
    sub("getAlbum", {"id": "tr-{t}"}, 70, "a song id for an album"),
    sub("getArtist", {"id": "ar-"}, 70, "an id without a number"),
    sub("getAlbum", {"id": "al-" + "9" * 40}, 70, "an id of 40 digits"),
    sub("getCoverArt", {"id": "../../etc/passwd"}, 70, "a path as an id"),
    sub("getSong", {"id": "tr-1 OR 1=1"}, 70, "SQL as an id"),
    sub("getAlbum", {"id": "al-999999"}, 70, "an id that is not there"),
    sub("stream", {"id": "al-1"}, 70, "streaming an album id"),
    sub("getMusicDirectory", {"id": "pl-1"}, 70, "a playlist as a directory"),
    sub("updatePlaylist", {"playlistId": "pl-999999", "name": "x"}, 70, "an unknown playlist"),
    sub("getIndexes", {"musicFolderId": "99"}, 70, "an unknown music folder"),
    sub("setRating", {"id": "tr-{t}", "rating": "9"}, 0, "a rating of 9"),
    sub("setRating", {"id": "tr-{t}", "rating": "five"}, 0, "a rating that is no number"),
    sub("setRating", {"id": "tr-{t}"}, 10, "a rating missing"),
    sub("scrobble", {"id": "tr-{t}", "time": "-5"}, 0, "a scrobble time before 1970"),
    sub("scrobble", {"id": "tr-{t}", "submission": "maybe"}, 0, "submission that is no boolean"),
    sub("getCoverArt", {"id": "al-1", "size": "-1"}, 0, "a negative cover size"),
    sub("findSonicPath", {"startSongId": "tr-{t}", "endSongId": "tr-{a}", "count": "1000"}, 0, "a sonic path of 1000"),
    sub("findSonicPath", {"startSongId": "tr-{t}"}, 10, "a sonic path without its end"),
    sub("getSimilarSongs2", {"id": "tr-{t}", "count": "ten"}, 0, "a mix's count that is no number"),
    sub("getSimilarSongs2", {"id": "tr-{t}", "count": "-1"}, 0, "a negative mix count"),
    sub("getSonicSimilarTracks", {"id": "tr-{t}", "count": "1e3"}, 0, "a float count"),
    sub("getArtistInfo2", {"id": "ar-1", "count": str(2**40)}, 0, "a similar-artist count beyond 32 bits"),
    sub("createPlaylist", {}, 10, "a playlist without name or id"),
    sub("updatePlaylist", {"playlistId": "pl-1", "songIndexToRemove": "x"}, 0, "a removed index that is no number"),
    sub("getUser", {}, 10, "getUser without a name"),
    sub("getTopSongs", {}, 10, "top songs without an artist"),
    sub("ping", {"f": "jsonp", "callback": "alert(document.cookie)"}, 0, "a jsonp callback that is script"),
    sub("ping", {"v": "abc"}, 20, "a version that is no version"),
    sub("search3", {"query": "x" * 20_000}, 0, "a value of 20 000 characters"),
    sub("deleteEverything", {}, 0, "an endpoint that does not exist"),
    sub("getPodcasts.view", {"id": "x"}, 0, "an endpoint not offered"),
    sub("getLyricsBySongId", {"id": "al-1"}, 70, "lyrics of an album"),
    sub("getLyricsBySongId", {}, 10, "lyrics without a song"),
    sub("getLyricsBySongId", {"id": f"tr-1{NUL}"}, 0, "NUL in a lyrics id"),
    sub("getLyrics", {"artist": f"x{NUL}", "title": "y"}, 0, "NUL in a lyrics artist"),
    sub("getLyrics", {"title": "x" * 20_000}, 0, "a lyrics title of 20 000 characters"),
    sub("createUser", {"username": "mallory", "password": "x"}, 0, "user management over the API"),
    sub("stream", {"id": "tr-{t}", "format": "xyz"}, 0, "an unknown transcode format"),
    sub("stream", {"id": "tr-{t}", "format": "mp3", "maxBitRate": "-1"}, 0, "a negative maxBitRate"),
    sub("stream", {"id": "tr-{t}", "format": "mp3", "timeOffset": "nan"}, 0, "a timeOffset that is NaN"),
    sub("stream", {"id": "tr-{t}", "format": "mp3", "timeOffset": "-5"}, 0, "a negative timeOffset"),
    sub("stream", {"id": "tr-{t}", "format": "mp3", "timeOffset": "1e9"}, 0, "a timeOffset past the end"),
    sub("stream", {"id": "tr-{t}", "format": "mp3", "estimateContentLength": "2"}, 0, "a length flag not a bool"),
    sub("createBookmark", {"id": "tr-{t}"}, 10, "a bookmark without a position"),
    sub("createBookmark", {"id": "tr-{t}", "position": "-1"}, 0, "a negative bookmark position"),
    sub("createBookmark", {"id": "tr-{t}", "position": "1", "comment": "x" * 5000}, 0, "a bookmark comment too long"),
    sub("createBookmark", {"id": "al-1", "position": "1"}, 70, "a bookmark of an album"),
    sub("deleteBookmark", {"id": "tr-999999"}, 70, "deleting a bookmark that is not there"),
    sub("reportPlayback", {"mediaId": "tr-{t}", "mediaType": "song", "positionMs": "0", "state": "rewinding"}, 0,
        "an unknown playback state"),
    sub("reportPlayback", {"mediaId": "tr-{t}", "mediaType": "podcast", "positionMs": "0", "state": "playing"}, 0,
        "a podcast playback"),
    sub("reportPlayback", {"mediaId": "tr-{t}", "mediaType": "song", "positionMs": "0"}, 10, "a report without state"),
    sub("reportPlayback", {"mediaId": "tr-{t}", "mediaType": "song", "positionMs": "0", "state": "playing",
                           "playbackRate": "nan"}, 0, "a playback rate that is NaN"),
    sub("reportPlayback", {"mediaId": "tr-{t}", "mediaType": "song", "positionMs": "1e3", "state": "playing"}, 0,
        "a position that is no integer"),
    sub("savePlayQueueByIndex", {"id": "tr-{t}", "currentIndex": "5"}, 10, "a queue index past its end"),
    sub("savePlayQueueByIndex", {"currentIndex": "0"}, 0, "a queue index without songs"),
    sub("ping", {"p": None, "t": "é", "s": "x"}, 40, "a non-ASCII token (was a TypeError, code 0)"),
    sub("ping", {"p": None, "u": "nobody", "t": "é", "s": "x"}, 40, "a non-ASCII token of an unknown user"),
    sub("ping", {"p": None, "u": None, "apiKey": "ключ-🔑"}, 44, "a non-ASCII API key"),
    sub("ping", {"p": None, "u": "ｃｏｒｐｕｓ", "t": "0" * 32, "s": "x"}, 40, "a fullwidth spelling of the name"),
    sub("ping", {"u": "x" * 5000}, 40, "a name of 5000 characters"),
    sub("ping", {"p": "enc:zz"}, 40, "enc: that is no hex"),
]
# fmt: on

ROWS = HTTP_ROWS + PAGE_ROWS + CLI_ROWS + PYTHON_ROWS + SQL_ROWS + FILE_ROWS + SUBSONIC_ROWS


# =========================================================================== fixtures
@pytest.fixture(scope="module")
def lib(base_settings, tmp_path_factory) -> Iterator[dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("hostile")
    with scratch_database(base_settings.database_url, prefix="mi_hostile") as db:
        library = build_library(db, tmp / "audio", n=36, musicnn=True)
        settings = base_settings.with_(database_url=db.url, api_token=TOKEN)
        index = MusicIndex(db, settings)
        rows = library["rows"]
        ctx = {"t": rows[0]["id"], "a": rows[1]["id"], "m": rows[10]["id"], "ann": library["ann"]}
        library.update(db=db, index=index, settings=settings, tmp=tmp, ctx=ctx)
        yield library
        index.close()


@pytest.fixture(scope="module")
def client(lib) -> Iterator[TestClient]:
    with TestClient(create_app(lib["index"]), base_url="http://127.0.0.1", raise_server_exceptions=False) as c:
        yield c


def _check_answer(r: Any, expect: tuple[int, str | None], api: bool) -> None:
    status, category = expect
    assert r.status_code == status, (r.status_code, r.text[:300])
    assert "Traceback" not in r.text
    ctype = r.headers.get("content-type", "")
    if category == "html":
        assert ctype.startswith("text/html"), ctype
    elif category is not None:
        assert ctype.startswith("application/json"), (ctype, r.text[:200])
        body = r.json()
        assert body["error"] == category and body["message"], body
    elif status >= 400 and status != 416:
        raise AssertionError(f"an error answer {status} without its category")
    if api and status >= 500:
        assert ctype.startswith("application/json")


# =========================================================================== tests
@pytest.mark.parametrize("row", HTTP_ROWS, ids=str)
def test_http(row: Row, client, lib):
    method, url, headers, body = row.input
    r = client.request(method, url.format(**lib["ctx"]), headers=headers, content=body)
    _check_answer(r, row.expect, api=True)


@pytest.mark.parametrize("row", PAGE_ROWS, ids=str)
def test_page(row: Row, client, lib):
    r = client.get(row.input.format(**lib["ctx"]))
    _check_answer(r, row.expect, api=False)
    if row.expect[0] == 200:
        assert r.headers["content-type"].startswith("text/html") and "<script>alert" not in r.text


@pytest.fixture(scope="module")
def cli_results(lib) -> dict[Row, Any]:
    """Every CLI row run once, three at a time (each is a real `musicindex` process)."""
    env = {**settings_env(lib["settings"]), "MUSICINDEX_LOG_LEVEL": "WARNING"}

    def run(row: Row) -> Any:
        return run_cli(*(a.format(**lib["ctx"]) for a in row.input), env=env, timeout=120)

    with ThreadPoolExecutor(3) as pool:
        return dict(zip(CLI_ROWS, pool.map(run, CLI_ROWS), strict=True))


@pytest.mark.parametrize("row", CLI_ROWS, ids=str)
def test_cli(row: Row, cli_results):
    r = cli_results[row]
    assert r.returncode == row.expect, (r.returncode, r.stdout[-500:], r.stderr[-1000:])
    assert "Traceback" not in r.stderr and "Traceback" not in r.stdout
    assert r.stderr.strip(), "an error says what is wrong"


def _arg(x: Any, ctx: dict[str, int]) -> Any:
    if isinstance(x, str) and x in ("<t>", "<a>"):
        return ctx[x[1]]
    if isinstance(x, list):
        return [_arg(v, ctx) for v in x]
    return x


@pytest.mark.parametrize("row", PYTHON_ROWS, ids=str)
def test_python_api(row: Row, lib):
    name, args, kwargs = row.input
    ctx = lib["ctx"]
    with pytest.raises(row.expect) as info:
        method = functools.reduce(getattr, name.split("."), lib["index"])  # "library.track_file": a service's
        method(*(_arg(a, ctx) for a in args), **{k: _arg(v, ctx) for k, v in kwargs.items()})
    assert str(info.value), "the error says what to do"


@pytest.mark.parametrize("row", SQL_ROWS, ids=str)
def test_sql_function(row: Row, lib):
    kind, want = row.expect
    sql = row.input.format(**lib["ctx"])
    with lib["db"].engine.connect() as conn:
        if kind == "error":
            with pytest.raises(DBAPIError) as info:
                conn.execute(text(sql)).all()
            assert info.value.orig is not None and info.value.orig.pgcode == want, info.value
            assert str(info.value.orig).strip()
        else:
            rows = conn.execute(text(sql)).all()
            assert len(rows) > 0 if want == ">0" else len(rows) == want, (len(rows), rows[:3])


def _make_file(name: str, folder: Path) -> Path:
    """One hostile file (or folder, FIFO, link) in ``folder``, by the name of its row."""
    if hasattr(badfiles, name):
        return Path(getattr(badfiles, name)(folder / name))
    d = folder / name.replace(".", "_")
    d.mkdir(parents=True)
    p = d / name
    if name.startswith("random."):
        p.write_bytes(os.urandom(50_000).replace(b"\xff", b"\x00"))
    elif name == "huge_header.wav":
        import struct

        header = b"RIFF" + struct.pack("<I", 0xFFFFFFF0) + b"WAVE"
        header += b"fmt " + struct.pack("<IHHIIHH", 16, 1, 1, 22050, 44100, 2, 16)
        header += b"data" + struct.pack("<I", 0xFFFFFFE0)
        p.write_bytes(header + b"\x01\x02" * 1000)
    elif name == "fifo.wav":
        os.mkfifo(p)
    elif name == "folder.mp3":
        p.mkdir()
        (p / "inside.txt").write_text("not audio")
    elif name == "link-out.wav":
        p.symlink_to("/dev/zero")
    elif name == "became-fifo.wav":
        p.write_bytes(b"RIFF" + b"\x00" * 100)  # replaced by a FIFO once registered (see ``ingested``)
    elif name == "good.ogg":
        from musicindex.sample.library import generate_library

        track = generate_library(d / "lib", per_genre=1, genres=["jazz"], duration=5.0, formats=("ogg",))[0]
        os.replace(track.path, p)
    return p


@pytest.fixture(scope="module")
def ingested(lib) -> dict[str, Any]:
    """Every file row made in one folder, registered and analysed in one batch (in this process)."""
    root = lib["tmp"] / "hostile-files"
    made = {row.input: _make_file(row.input, root) for row in FILE_ROWS}
    reg = ingest.register(lib["db"], [root])
    fifo = made["became-fifo.wav"]
    fifo.unlink()
    os.mkfifo(fifo)
    ingest.process_tracks(lib["db"], reg.queued_ids)
    with lib["db"].engine.connect() as conn:
        tracks = conn.execute(
            text("SELECT path, status, error FROM tracks WHERE path LIKE :p"), {"p": f"{root}/%"}
        ).all()
    return {"made": made, "tracks": {p: (s, e) for p, s, e in tracks}, "reg": reg, "root": root}


@pytest.mark.parametrize("row", FILE_ROWS, ids=str)
def test_file_through_ingest(row: Row, ingested):
    status, reason = row.expect
    made = ingested["made"][row.input]
    tracks = ingested["tracks"]
    if row.input == "symlink_loop":  # the one real file of the looping folder, registered once
        mine = {p: v for p, v in tracks.items() if p.startswith(str(made.parent))}
        assert len(mine) == 1 and next(iter(mine.values()))[0] == status, mine
        return
    if status == "skipped":
        assert str(made) not in tracks, tracks.get(str(made))
        return
    got = tracks[str(made)]
    assert got[0] == status, got
    if status == "failed":
        assert got[1] and reason in got[1].lower(), got


def test_the_corpus_is_large_and_every_row_is_distinct():
    assert len(ROWS) >= 100 and len({(r.interface, json.dumps(r.input, default=repr)) for r in ROWS}) == len(ROWS)
    assert {r.interface for r in ROWS} == {"http", "page", "cli", "python", "sql", "file", "subsonic"}


SUBSONIC_PASSWORD = "corpus-Password-1"


@pytest.fixture(scope="module")
def subsonic_auth(lib) -> dict[str, str]:
    """An account for the Subsonic rows (made before the first /rest call: /rest answers only once one exists)."""
    lib["index"].users.add_user("corpus", SUBSONIC_PASSWORD)
    return {"u": "corpus", "p": SUBSONIC_PASSWORD, "v": "1.16.1", "c": "corpus", "f": "json"}


@pytest.mark.parametrize("row", SUBSONIC_ROWS, ids=str)
def test_subsonic(row: Row, client, lib, subsonic_auth):
    endpoint, params = row.input
    given = {**subsonic_auth, **{k: None if v is None else v.format(**lib["ctx"]) for k, v in params}}
    r = client.get(f"/rest/{endpoint}", params={k: v for k, v in given.items() if v is not None})  # None: left out
    assert "Traceback" not in r.text
    if row.expect >= 100:
        assert r.status_code == row.expect, (r.status_code, r.text[:300])
        return
    assert r.status_code == 200, (r.status_code, r.text[:300])
    body = r.json()["subsonic-response"]
    assert body["status"] == "failed" and body["error"]["code"] == row.expect, body
    assert body["error"]["message"] and NUL not in body["error"]["message"]
