"""Fuzzing the listener surfaces (issue 28): new routes cannot ship a 500 or a traceback.

* The JSON API and the pages' fragments, from the app's own OpenAPI schema (``/api/openapi.json``) by Schemathesis
  (property-based: Hypothesis draws valid and invalid parameters, bodies and headers for each operation), against the
  in-process app over a real database: no 5xx, no traceback text in any body. The budget is small and fixed
  (``FUZZ_EXAMPLES`` per operation, derandomised: the same cases every run, so a failure is reproducible).
* ``/rest`` (Subsonic): every endpoint the router serves, each with every hostile value of the corpus
  (``tests/test_hostile_inputs.py``'s Subsonic rows, and more) in every common parameter: the answer is the
  protocol's (``subsonic-response`` with ``status`` ok or failed), or a file; never a 500, an HTML page or a
  traceback.

The token is not sent: the changes (ingest, train, promote, rollback) are fuzzed as the guard's refusals.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error

from musicindex.index import MusicIndex
from musicindex.web import create_app, subsonic
from tests.test_hostile_inputs import NUL, SUBSONIC_ROWS
from tests.test_web import library_index

FUZZ_EXAMPLES = int(os.environ.get("MUSICINDEX_FUZZ_EXAMPLES", "6"))
"""Cases drawn per operation and mode (valid, invalid): 49 operations, 478 requests, ~40 s at load 9.
``MUSICINDEX_FUZZ_EXAMPLES=200 pytest tests/test_fuzz.py`` runs a longer hunt."""
PASSWORD = "fuzz-Password-1"


@pytest.fixture(scope="module")
def lib(base_settings, tmp_path_factory) -> Iterator[dict[str, Any]]:
    with library_index(base_settings, tmp_path_factory.mktemp("fuzz"), "mi_fuzz", n=24) as lib:
        yield lib


@pytest.fixture(scope="module")
def app(lib) -> Any:
    """The app over the library; it also answers the ``Host: testserver`` of Schemathesis's ASGI client."""
    settings = lib["index"].settings.with_(allowed_hosts="127.0.0.1,testserver")
    return create_app(MusicIndex(lib["db"], settings))


def no_traceback(ctx: Any, response: Any, case: Any) -> bool | None:
    """No body holds a Python traceback or an exception's internals."""
    text = response.content.decode("utf-8", "replace") if response.content else ""
    assert "Traceback (most recent call last)" not in text, text[:300]
    assert 'File "/' not in text, text[:300]
    return None


def test_the_json_api_answers_every_generated_request_without_a_server_error(app):
    """Valid and invalid requests (Schemathesis's positive and negative modes) for every operation of the schema."""
    schema = schemathesis.openapi.from_asgi("/api/openapi.json", app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 40, len(operations)
    cases: Counter[str] = Counter()
    slow: list[tuple[float, str]] = []
    for op in operations:
        started = time.perf_counter()
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @settings(
                max_examples=FUZZ_EXAMPLES, deadline=None, derandomize=True, database=None,
                suppress_health_check=list(HealthCheck), phases=[Phase.explicit, Phase.generate, Phase.shrink],
            )  # fmt: skip
            @given(case=op.as_strategy(generation_mode=mode))
            def run(case: Any) -> None:
                response = case.call_and_validate(checks=[not_a_server_error, no_traceback])
                cases[f"{response.status_code // 100}xx"] += 1

            try:
                run()
            except Unsatisfiable:  # an operation without parameters has no invalid request to draw
                assert mode is GenerationMode.NEGATIVE, op.label
                cases["no negative case"] += 1
        slow.append((time.perf_counter() - started, op.label))
    assert cases["5xx"] == 0 and cases["2xx"] > len(operations), cases
    print(f"fuzzed {len(operations)} operations: {sum(cases.values())} cases {dict(cases)}")
    print("slowest operations (s):", [(round(t, 1), label) for t, label in sorted(slow, reverse=True)[:5]])


# --------------------------------------------------------------------------- /rest
HOSTILE = sorted(
    {v for row in SUBSONIC_ROWS for _, v in row.input[1] if v is not None and "{" not in v}
    | {NUL, "", " ", "-1", "0", "2147483648", "1e400", "nan", "inf", "tr-", "al-0", "pl-" + "9" * 30, "ar-1%",
       "../../etc/passwd", "<script>", "é" * 300, "true", "[]", "{}"}
)  # fmt: skip
"""Hostile parameter values: the corpus's (without its track-id templates) and a few more."""
PARAMS = (
    "id", "query", "size", "count", "offset", "type", "genre", "songId", "albumId", "artistId", "playlistId",
    "name", "position", "time", "submission", "format", "maxBitRate", "timeOffset", "rating", "fromYear", "toYear",
    "musicFolderId", "startSongId", "endSongId", "songIndexToRemove", "songIdToAdd", "current", "currentIndex",
    "mediaId", "mediaType", "positionMs", "state", "comment", "artist", "title", "username", "estimateContentLength",
)  # fmt: skip
"""The parameters the endpoints read (docs/subsonic.md), all given the same hostile value."""


@pytest.fixture(scope="module")
def rest(lib) -> Iterator[TestClient]:
    """An app of its own, made after the account (``/rest`` answers once one exists; an app that answered before
    keeps "no account" for a few seconds)."""
    lib["index"].users.add_user("fuzz", PASSWORD, admin=True)
    app = create_app(MusicIndex(lib["db"], lib["index"].settings))
    with TestClient(app, base_url="http://127.0.0.1", raise_server_exceptions=False) as c:
        yield c


def endpoints() -> list[str]:
    """Every endpoint name the Subsonic router serves (its included routers walked)."""

    def walk(routes: list[Any]) -> Iterator[str]:
        for r in routes:
            inner = getattr(r, "original_router", None)
            if inner is not None:
                yield from walk(inner.routes)
            elif getattr(r, "name", "").startswith("subsonic.") and not r.path.endswith((".view", "{name:path}")):
                yield r.name.removeprefix("subsonic.")

    # startScan re-ingests the folders (docs/subsonic.md): a change, not a read to fuzz
    return sorted(set(walk(subsonic.router.routes)) - {"startScan"})


def test_every_subsonic_endpoint_answers_hostile_values_in_the_protocol(rest):
    names = endpoints()
    assert len(names) >= 50, names  # the router serves every endpoint docs/subsonic.md lists
    auth = {"u": "fuzz", "p": PASSWORD, "v": "1.16.1", "c": "fuzz", "f": "json"}
    seen: Counter[str] = Counter()
    bad = []
    for name in names:
        for value in HOSTILE:
            long = len(quote(value)) * len(PARAMS) > 50_000  # a URL holds 64 KiB: a long value goes in a few
            given = ("id", "query") if long else PARAMS
            r = rest.get(f"/rest/{name}", params={**dict.fromkeys(given, value), **auth})
            ctype = r.headers.get("content-type", "")
            text = r.text if not ctype.startswith(("audio/", "image/")) else ""
            if r.status_code >= 500 or "Traceback" in text or ctype.startswith("text/html"):
                bad.append((name, value[:20], r.status_code, text[:160]))
                continue
            if ctype.startswith(("audio/", "image/")):
                seen["file"] += 1
                continue
            body = r.json().get("subsonic-response") if ctype.startswith("application/json") else None
            if not isinstance(body, dict) or body.get("status") not in ("ok", "failed"):
                bad.append((name, value[:20], r.status_code, text[:160]))
                continue
            seen[body["status"]] += 1
    assert bad == [], bad[:10]
    assert seen["failed"] > len(names) and sum(seen.values()) == len(names) * len(HOSTILE), seen
