"""A second, independently written client against the real Subsonic server: subsonic-api 3.3.1 (TypeScript, npm),
run by the machine's Node.js (``tests/js/subsonic_client.mjs``; ``make test`` installs it with ``npm ci`` from
``tests/js/package-lock.json``). Without Node.js or the package the test is skipped with a loud reason; under
``CI=true`` that is a failure.

What it saw is checked here: token, API-key and form-post auth, albums and songs, the original stream and
transcodes (decoded back with PyAV), bookmarks, playback reports and now playing, and the protocol's error (never
an HTML page) for every endpoint the server does not offer.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
from pathlib import Path

import av
import pytest

from tests.subsonic_support import PASSWORDS

JS = Path(__file__).parent / "js"
NODE = shutil.which("node")


def _missing() -> str | None:
    if NODE is None:
        return "no `node` on PATH (Debian: apt-get install -y nodejs npm)"
    if not (JS / "node_modules" / "subsonic-api" / "package.json").exists():
        return "subsonic-api is not installed: `make js-client` (npm ci --prefix tests/js)"
    return None


@pytest.fixture(scope="module")
def seen(subsonic_library, tmp_path_factory) -> dict:
    missing = _missing()
    if missing:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"THE SECOND SUBSONIC CLIENT CANNOT RUN under CI=true: {missing}")
        pytest.skip(f"SECOND SUBSONIC CLIENT SKIPPED: {missing}")
    served = subsonic_library
    songs = served.ok("search3", query="", songCount=100, albumCount=0, artistCount=0)["searchResult3"]["song"]
    flac = next(s for s in songs if s["suffix"] == "flac")
    out = tmp_path_factory.mktemp("js")
    cfg = {"url": served.url, "username": "alice", "password": PASSWORDS["alice"], "apiKey": served.api_key,
           "songId": flac["id"], "out": str(out)}  # fmt: skip
    assert NODE is not None
    r = subprocess.run([NODE, str(JS / "subsonic_client.mjs"), json.dumps(cfg)], capture_output=True, text=True,
                       timeout=300, cwd=JS, check=False)  # fmt: skip
    assert r.returncode == 0, r.stderr[-3000:]
    result = json.loads(r.stdout)
    result["_out"], result["_song"], result["_flac"] = out, flac, served.root
    return result


def _decoded(path: Path) -> tuple[str, float]:
    with av.open(io.BytesIO(path.read_bytes())) as c:
        s = c.streams.audio[0]
        return s.codec_context.name, sum(f.samples for f in c.decode(s)) / s.codec_context.sample_rate


def test_auth_browsing_and_extensions(seen):
    assert seen["ping"] == seen["pingByKey"] == seen["pingByPost"] == "ok"
    assert seen["extensions"]["transcodeOffset"] == [1] and seen["extensions"]["playbackReport"] == [1]
    assert seen["albums"] == sorted(seen["albums"], key=str.casefold) and len(seen["albums"]) >= 3
    assert seen["albumSongs"] and seen["albumCreatedIsDate"] is True
    assert seen["song"] == seen["_song"]["title"]


def test_streams_and_transcodes(seen):
    assert seen["original"] == {"status": 200, "type": "audio/flac", "bytes": seen["_song"]["size"]}
    assert seen["stream_mp3"]["type"] == "audio/mpeg" and seen["stream_aac"]["type"] == "audio/aac"
    duration = seen["_song"]["duration"]
    for name, codec, seconds in (("mp3", "mp3float", duration), ("aac", "aac", duration),
                                 ("offset", "mp3float", duration - 1)):  # fmt: skip
        got_codec, got_seconds = _decoded(seen["_out"] / f"{name}.bin")
        assert got_codec == codec and abs(got_seconds - seconds) < 0.6, (name, got_codec, got_seconds)
    offset = seen["stream_offset"]
    assert offset["length"] is not None and int(offset["length"]) == offset["bytes"]
    assert seen["badFormat"]["status"] == 200 and seen["badFormat"]["type"].startswith("application/json")
    assert seen["badFormat"]["body"]["error"]["code"] == 0


def test_bookmarks_and_playback_reports(seen):
    assert seen["bookmarks"] == [{"id": seen["_song"]["id"], "position": 42000, "comment": "from node",
                                  "username": "alice"}]  # fmt: skip
    assert seen["deleteBookmark"] == "ok" and seen["afterDelete"] == 0
    assert seen["report_starting"] == seen["report_playing"] == seen["report_stopped"] == "ok"
    assert seen["_song"]["id"] in seen["nowPlaying"]


def test_lyrics_calls_parse(seen):
    assert seen["extensions"]["songLyrics"] == [1]
    assert seen["lyricsBySongId"] == {"status": "ok", "lyrics": []}  # the shared library has no lyrics
    assert seen["lyrics"] == {"status": "ok", "lyrics": {"value": ""}}


def test_every_endpoint_not_offered_is_the_protocols_error(seen):
    for name, answer in seen["notOffered"].items():
        assert "thrown" not in answer, (name, answer)  # an HTML page made the client throw before
        assert answer["status"] == "failed" and answer["error"]["code"] == 0, (name, answer)
    assert seen["avatar"]["status"] == 200 and seen["avatar"]["body"]["code"] == 0
