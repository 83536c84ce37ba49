"""Bad Subsonic input, row by row: each call is answered with the Subsonic error code (or HTTP status) of its row,
never a 500, never a traceback, and the server keeps answering.

Codes: 0 generic (a value that is not accepted), 10 a required parameter missing, 20 a client too old, 70 not found.
The calls are made as alice (password in ``p``) on a server of their own, so no row counts as a failed login of the
other Subsonic tests' server.
"""

from __future__ import annotations

import pytest

from musicindex.web import create_app
from tests.subsonic_support import PASSWORDS, Served, ServerThread

NUL = "\x00"
SUBSONIC_ROWS: list[tuple[str, str, dict[str, str], int]] = [
    # (what, endpoint, parameters, expected error code; an HTTP status when >= 100)
    ("NUL in a search", "search3", {"query": f"a{NUL}b"}, 0),
    ("NUL in an id", "getAlbum", {"id": f"al-1{NUL}"}, 0),
    ("NUL in the user name", "ping", {"u": f"ali{NUL}ce"}, 0),
    ("NUL in a genre", "getSongsByGenre", {"genre": f"rock{NUL}"}, 0),
    ("a count beyond 32 bits", "search3", {"query": "", "songCount": str(10**12)}, 0),
    ("a negative count", "search3", {"query": "", "songCount": "-5"}, 0),
    ("a negative offset", "getAlbumList2", {"type": "newest", "offset": "-1"}, 0),
    ("an offset beyond the bound", "getSongsByGenre", {"genre": "rock", "offset": str(10**9)}, 0),
    ("a size that is no number", "getAlbumList2", {"type": "newest", "size": "ten"}, 0),
    ("a float size", "getRandomSongs", {"size": "1e9"}, 0),
    ("an unknown list type", "getAlbumList2", {"type": "worst"}, 0),
    ("a list type missing", "getAlbumList", {}, 10),
    ("byGenre without a genre", "getAlbumList2", {"type": "byGenre"}, 0),
    ("a year beyond 9999", "getAlbumList2", {"type": "byYear", "fromYear": "100000", "toYear": "1"}, 0),
    ("an id missing", "getAlbum", {}, 10),
    ("a song id missing", "getSong", {}, 10),
    ("stream without an id", "stream", {}, 10),
    ("a cover without an id", "getCoverArt", {}, 10),
    ("an album id for a song", "getSong", {"id": "al-1"}, 70),
    ("a song id for an album", "getAlbum", {"id": "tr-1"}, 70),
    ("an id without a number", "getArtist", {"id": "ar-"}, 70),
    ("an id of 40 digits", "getAlbum", {"id": "al-" + "9" * 40}, 70),
    ("a path as an id", "getCoverArt", {"id": "../../etc/passwd"}, 70),
    ("SQL as an id", "getSong", {"id": "tr-1 OR 1=1"}, 70),
    ("an id that is not there", "getAlbum", {"id": "al-999999"}, 70),
    ("streaming an album id", "stream", {"id": "al-1"}, 70),
    ("a playlist as a directory", "getMusicDirectory", {"id": "pl-1"}, 70),
    ("an unknown playlist", "updatePlaylist", {"playlistId": "pl-999999", "name": "x"}, 70),
    ("an unknown music folder", "getIndexes", {"musicFolderId": "99"}, 70),
    ("a rating of 9", "setRating", {"id": "tr-1", "rating": "9"}, 0),
    ("a rating that is no number", "setRating", {"id": "tr-1", "rating": "five"}, 0),
    ("a rating missing", "setRating", {"id": "tr-1"}, 10),
    ("a scrobble time before 1970", "scrobble", {"id": "tr-1", "time": "-5"}, 0),
    ("submission that is no boolean", "scrobble", {"id": "tr-1", "submission": "maybe"}, 0),
    ("a negative cover size", "getCoverArt", {"id": "al-1", "size": "-1"}, 0),
    ("a sonic path of 1000", "findSonicPath", {"startSongId": "tr-1", "endSongId": "tr-2", "count": "1000"}, 0),
    ("a sonic path without its end", "findSonicPath", {"startSongId": "tr-1"}, 10),
    ("a playlist without name or id", "createPlaylist", {}, 10),
    ("a song index to remove that is no number", "updatePlaylist", {"playlistId": "pl-1", "songIndexToRemove": "x"}, 0),
    ("getUser without a name", "getUser", {}, 10),
    ("top songs without an artist", "getTopSongs", {}, 10),
    ("a jsonp callback that is script", "ping", {"f": "jsonp", "callback": "alert(document.cookie)"}, 0),
    ("a version that is no version", "ping", {"v": "abc"}, 20),
    ("a value of 20 000 characters", "search3", {"query": "x" * 20_000}, 0),
    ("an endpoint that does not exist", "deleteEverything", {}, 404),
]


@pytest.fixture(scope="module")
def hostile(subsonic_library):
    with ServerThread(create_app(subsonic_library.index)) as server:
        yield Served(subsonic_library.index, server.url, server.port, subsonic_library.root, subsonic_library.api_key)


@pytest.mark.parametrize(("what", "endpoint", "params", "expected"), SUBSONIC_ROWS, ids=[r[0] for r in SUBSONIC_ROWS])
def test_bad_subsonic_input_is_a_subsonic_error(hostile, what, endpoint, params, expected):
    base = {"u": "alice", "p": PASSWORDS["alice"], "v": "1.16.1", "c": "hostile", "f": "json"}
    reply = hostile.raw(endpoint, {**base, **params})
    if expected >= 100:
        assert reply.status == expected, what
        return
    assert reply.status == 200, (what, reply.body[:200])
    body = reply.json()
    assert body["status"] == "failed" and body["error"]["code"] == expected, (what, body)
    assert "Traceback" not in body["error"]["message"] and NUL not in body["error"]["message"]


def test_too_many_parameters_and_the_server_still_answers(hostile):
    base = [("u", "alice"), ("p", PASSWORDS["alice"]), ("v", "1.16.1"), ("c", "hostile"), ("f", "json")]
    body = "&".join(["id=tr-1"] * 3000 + [f"{k}={v}" for k, v in base]).encode()
    many = hostile.raw("star", method="POST", body=body, headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert b'status="failed"' in many.body and b'<error code="0"' in many.body  # XML: the body named f=json
    assert hostile.raw("ping", base).json()["status"] == "ok"
