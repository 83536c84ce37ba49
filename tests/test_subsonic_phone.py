"""Subsonic for phones against the real app on a loopback port and the real PostgreSQL: transcoding with PyAV (a
transcoded stream decoded back: codec, duration, bitrate), the cap on transcodes, a client that goes away, corrupt
files, the transcode cache; bookmarks, playback reports (plays and skips), the index-based play queue; the
protocol's error for every name not offered, HEAD that never changes anything, short player messages."""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import os
import socket
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest
import soundfile as sf

from musicindex import ingest
from musicindex.db.scratch import scratch_database
from musicindex.index import MusicIndex
from musicindex.sample.library import generate_library
from musicindex.users import playback
from musicindex.web import create_app
from tests.subsonic_support import PASSWORDS, Reply, Served, ServerThread, opensubsonic_schema

MAX_STREAMS = 2
PW = {**PASSWORDS, "carol": "carol-pass-1"}
LONG_SECONDS = 600


@pytest.fixture(scope="module")
def phone(base_settings, tmp_path_factory) -> Iterator[dict[str, Any]]:
    """Two 20 s songs (FLAC, MP3) and two more FLACs spoilt on disk after indexing (garbage; the second half
    zeroed), a 10-minute FLAC, users alice and bob; served with at most 2 transcodes and a transcode cache."""
    tmp = tmp_path_factory.mktemp("phone")
    root = tmp / "music"
    generate_library(root, per_genre=4, genres=("rock",), duration=20.0, sr=44100, channels=2,
                     formats=("flac", "mp3", "flac", "flac"))  # fmt: skip
    t = np.arange(8000 * LONG_SECONDS) / 8000
    sf.write(root / "rock" / "long.flac", 0.2 * np.sin(2 * np.pi * 220 * t) * (1 + 0.1 * np.sin(t)), 8000)
    settings = base_settings.with_(home=tmp / "home", transcode_max_streams=MAX_STREAMS, transcode_cache_mb=64)
    with scratch_database(base_settings.database_url, prefix="mi_phone") as db:
        index = MusicIndex(db, settings.with_(database_url=db.url))
        reg = ingest.register(index.db, [root])
        ingest.process_tracks(index.db, reg.queued_ids)
        ids = {Path(r.path).name: r.id for r in index.track_files(list(reg.queued_ids))}
        _spoil(root / "rock" / "rock.00002.flac", lambda data: os.urandom(len(data)))
        _spoil(
            root / "rock" / "rock.00003.flac", lambda data: data[: len(data) // 2] + bytes(len(data) - len(data) // 2)
        )
        index.users.add_user("alice", PASSWORDS["alice"], admin=True)
        index.users.add_user("bob", PASSWORDS["bob"])
        index.users.add_user("carol", PW["carol"])
        app = create_app(index)
        try:
            with ServerThread(app) as server:
                served = Served(index, server.url, server.port, root, index.users.new_api_key("alice"))
                yield {"served": served, "index": index, "app": app, "ids": ids, "root": root}
        finally:
            index.close()


def _spoil(path: Path, change: Any) -> None:
    """Replace the content of ``path`` in place, keeping its size and mtime (what the server checks)."""
    st = path.stat()
    data = path.read_bytes()
    path.write_bytes(change(data))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))


def _auth(user: str = "alice", fmt: str = "json") -> dict[str, str]:
    salt = hashlib.sha256(str(time.monotonic_ns()).encode()).hexdigest()[:12]
    token = hashlib.md5((PW[user] + salt).encode()).hexdigest()
    return {"u": user, "t": token, "s": salt, "v": "1.16.1", "c": "phone-tests", "f": fmt}


def _stream(phone: dict[str, Any], name: str, user: str = "alice", method: str = "GET", **params: Any) -> Reply:
    return phone["served"].raw("stream", {**_auth(user), "id": f"tr-{phone['ids'][name]}", **params}, method=method)


def _transcoder(phone: dict[str, Any]) -> Any:
    return phone["app"].state.subsonic.transcoder(phone["index"].settings)


def _decoded(body: bytes) -> tuple[str, float]:
    """(codec, seconds) of an encoded stream, every frame decoded."""
    with av.open(io.BytesIO(body)) as c:
        s = c.streams.audio[0]
        samples = sum(f.samples for f in c.decode(s))
        return s.codec_context.name, samples / s.codec_context.sample_rate


def _wait(condition: Any, seconds: float = 60.0) -> bool:
    """Poll ``condition`` until it holds or ``seconds`` pass (a bound on a hang, not a speed requirement)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return bool(condition())


# --------------------------------------------------------------------------- transcoding
FORMATS = [("mp3", 128, "mp3float", "audio/mpeg"), ("opus", 96, "opus", "audio/ogg"), ("aac", 128, "aac", "audio/aac"),
           ("m4a", 160, "aac", "audio/mp4")]  # fmt: skip


@pytest.mark.parametrize(("fmt", "kbps", "codec", "media_type"), FORMATS)
def test_a_transcoded_stream_decodes_back_with_its_codec_duration_and_bitrate(phone, fmt, kbps, codec, media_type):
    r = _stream(phone, "rock.00000.flac", format=fmt, maxBitRate=kbps)
    assert r.status == 200 and r.headers["content-type"] == media_type, (r.status, r.body[:200])
    assert r.headers["x-transcode"].startswith(f"{fmt}; kbps={kbps}")
    name, seconds = _decoded(r.body)
    assert name == codec
    assert abs(seconds - 20.0) < 0.2, seconds
    measured = len(r.body) * 8 / 20.0 / 1000
    assert abs(measured - kbps) / kbps < 0.10, (fmt, measured)
    assert _wait(lambda: _transcoder(phone).active == 0, 30)


def test_what_stream_sends_for_format_bitrate_and_the_listeners_maximum(phone):
    flac = (phone["root"] / "rock" / "rock.00000.flac").read_bytes()
    mp3 = (phone["root"] / "rock" / "rock.00001.mp3").read_bytes()
    assert _stream(phone, "rock.00000.flac").body == flac  # no parameter: the original
    assert _stream(phone, "rock.00000.flac", format="raw", maxBitRate=64).body == flac  # raw wins over its maxBitRate
    assert _stream(phone, "rock.00001.mp3", format="mp3", maxBitRate=320).body == mp3  # already an mp3 below 320
    assert _stream(phone, "rock.00001.mp3", maxBitRate=0).body == mp3  # 0: no limit
    low = _stream(phone, "rock.00000.flac", maxBitRate=64)  # below the file's bitrate: the default format
    assert low.headers["content-type"] == "audio/mpeg" and low.headers["x-transcode"].startswith("mp3; kbps=64")
    huge = _stream(phone, "rock.00000.flac", format="mp3", maxBitRate=99999999)  # the codec's highest
    assert huge.headers["x-transcode"].startswith("mp3; kbps=320")
    # a listener's own maximum applies to everything they stream, raw included
    phone["index"].users.set_max_bit_rate("bob", 64)
    try:
        assert phone["served"].call("getUser", user="bob", username="bob")["user"]["maxBitRate"] == 64
        for params in ({}, {"format": "raw"}, {"maxBitRate": 256}):
            r = _stream(phone, "rock.00000.flac", user="bob", **params)
            assert r.headers["x-transcode"].startswith("mp3; kbps=64"), params
            assert abs(len(r.body) * 8 / 20.0 / 1000 - 64) / 64 < 0.10
        assert _stream(phone, "rock.00000.flac", user="alice").body == flac  # alice has none
    finally:
        phone["index"].users.set_max_bit_rate("bob", 0)
    assert _stream(phone, "rock.00000.flac", user="bob").body == flac
    assert _stream(phone, "rock.00000.flac", method="POST").body == flac  # a form post streams too
    assert "maxBitRate" not in phone["served"].call("getUser", user="bob", username="bob")["user"]


def test_time_offset_estimated_length_and_head(phone):
    r = _stream(phone, "rock.00000.flac", format="mp3", maxBitRate=128, timeOffset=12)
    name, seconds = _decoded(r.body)
    assert name == "mp3float" and abs(seconds - 8.0) < 0.2, seconds
    est = _stream(phone, "rock.00000.flac", format="opus", maxBitRate=64, estimateContentLength="true")
    assert int(est.headers["content-length"]) == len(est.body) == 20 * 64000 // 8  # cut or padded to the estimate
    assert _decoded(est.body)[0] == "opus"
    head = _stream(phone, "rock.00000.flac", method="HEAD", format="aac", maxBitRate=96, estimateContentLength="true")
    assert head.status == 200 and head.body == b"" and head.headers["content-type"] == "audio/aac"
    assert head.headers["content-length"] == str(20 * 96000 // 8)
    # the original file with an offset is a transcode in the default format (the player asked to start there)
    off = _stream(phone, "rock.00001.mp3", timeOffset="5.5")
    assert off.headers["x-transcode"].startswith("mp3; kbps=192; offset=5.5")
    assert abs(_decoded(off.body)[1] - 14.5) < 0.3


BAD_STREAMS = [({"format": "xyz"}, "accepted: raw, mp3, opus, aac, m4a"), ({"maxBitRate": "-1"}, "maxBitRate"),
               ({"maxBitRate": "fast"}, "maxBitRate"), ({"timeOffset": "-1"}, "timeOffset"),
               ({"timeOffset": "nan"}, "timeOffset"), ({"timeOffset": "inf"}, "timeOffset"),
               ({"timeOffset": "20"}, "past the end"), ({"timeOffset": "1e9", "format": "mp3"}, "past the end"),
               ({"estimateContentLength": "maybe", "format": "mp3"}, "estimateContentLength")]  # fmt: skip


@pytest.mark.parametrize(("params", "words"), BAD_STREAMS)
def test_bad_stream_parameters_are_the_protocols_error(phone, params, words):
    r = _stream(phone, "rock.00000.flac", **params)
    assert r.status == 200 and r.headers["content-type"].startswith("application/json")
    body = r.json()
    assert body["status"] == "failed" and body["error"]["code"] == 0 and words in body["error"]["message"], body


def test_a_corrupt_file_is_the_protocols_error_and_a_half_file_ends_cleanly(phone):
    for fmt in ("json", "xml"):
        r = phone["served"].raw(
            "stream", {**_auth(fmt=fmt), "id": f"tr-{phone['ids']['rock.00002.flac']}", "format": "mp3"}
        )
        assert r.status == 200
        if fmt == "json":
            error = r.json()["error"]
            assert error["code"] == 0 and error["message"].startswith("this song cannot be transcoded")
            assert str(phone["root"]) not in error["message"]
        else:
            assert r.headers["content-type"].startswith("text/xml") and b'status="failed"' in r.body
    half = _stream(phone, "rock.00003.flac", format="mp3", maxBitRate=128)
    assert half.status == 200 and half.headers["content-type"] == "audio/mpeg"
    name, seconds = _decoded(half.body)  # the readable half, then a clean end
    assert name == "mp3float" and 3 < seconds < 20.5, seconds
    assert _wait(lambda: _transcoder(phone).active == 0, 30)


def _open_stream(phone: dict[str, Any], user: str) -> tuple[socket.socket, bytes]:
    """A raw stream request from a client with a tiny receive buffer that reads only the answer's head."""
    query = urllib.parse.urlencode(
        {**_auth(user), "id": f"tr-{phone['ids']['long.flac']}", "format": "mp3", "maxBitRate": 128}
    )
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", phone["served"].port))
    sock.sendall(f"GET /rest/stream?{query} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = sock.recv(1024)
        if not chunk:
            break
        head += chunk
    return sock, head


def test_a_client_that_goes_away_stops_its_transcode_and_the_cap_turns_the_next_away(phone):
    transcoder = _transcoder(phone)
    assert transcoder.per_owner == 1  # a quarter of the 2 slots, at least one
    assert _wait(lambda: transcoder.active == 0, 30)
    clients = [_open_stream(phone, user) for user in ("alice", "bob")]
    try:
        assert all(head.startswith(b"HTTP/1.1 200") for _, head in clients), [h[:80] for _, h in clients]
        assert transcoder.active == MAX_STREAMS  # 10 minutes of audio each: held back by clients that do not read
        for user, words in (("carol", "transcoding 2 streams already"), ("alice", "this account has 1")):
            busy = _stream(phone, "rock.00000.flac", user=user, format="opus")
            assert busy.status == 429 and busy.headers["retry-after"] == "5"
            error = busy.json()["error"]
            assert error["code"] == 0 and words in error["message"] and "retry in 5 s" in error["message"], error
        assert phone["served"].call("ping")["status"] == "ok"  # everything else still answers
        flac = (phone["root"] / "rock" / "rock.00000.flac").read_bytes()
        assert _stream(phone, "rock.00000.flac", user="carol").body == flac  # the original needs no slot
    finally:
        for sock, _ in clients:
            sock.close()
    # the stall limit is 120 s: only noticing the disconnect frees the slots within this wait
    assert _wait(lambda: transcoder.active == 0, 60), transcoder.active
    assert _stream(phone, "rock.00000.flac", format="opus", maxBitRate=64).status == 200


def test_a_finished_transcode_is_cached_and_served_with_range(phone):
    first = _stream(phone, "rock.00000.flac", format="mp3", maxBitRate=96)
    assert first.headers["accept-ranges"] == "none"
    folder = Path(phone["index"].settings.home) / "transcodes"
    assert _wait(lambda: any(p.suffix == ".mp3" for p in folder.iterdir()), 30)
    again = _stream(phone, "rock.00000.flac", format="mp3", maxBitRate=96)
    assert again.body == first.body and again.headers["accept-ranges"] == "bytes"
    part = phone["served"].raw(
        "stream", {**_auth(), "id": f"tr-{phone['ids']['rock.00000.flac']}", "format": "mp3", "maxBitRate": 96},
        headers={"Range": "bytes=1000-1999"},
    )  # fmt: skip
    assert part.status == 206 and part.body == first.body[1000:2000]
    assert not [p for p in folder.iterdir() if p.name.startswith(".part-")]


# --------------------------------------------------------------------------- bookmarks and playback reports
def test_bookmarks_per_listener(phone):
    served, ids = phone["served"], phone["ids"]
    song = f"tr-{ids['rock.00000.flac']}"
    assert served.ok("getBookmarks")["bookmarks"].get("bookmark") == []
    served.ok("createBookmark", id=song, position=61_000, comment="chapter 2")
    served.ok("createBookmark", id=f"tr-{ids['long.flac']}", position=5)
    served.ok("createBookmark", id=song, position=62_500)  # replaces alice's bookmark of that song
    marks = served.ok("getBookmarks")["bookmarks"]["bookmark"]
    assert [m["entry"]["id"] for m in marks] == [song, f"tr-{ids['long.flac']}"]
    assert marks[0]["position"] == 62_500 == marks[0]["entry"]["bookmarkPosition"]
    assert marks[0]["username"] == "alice" and marks[0]["comment"] == "" and marks[0]["created"].endswith("Z")
    assert served.call("getBookmarks", user="bob")["bookmarks"]["bookmark"] == []  # bob sees none of alice's
    assert served.error("deleteBookmark", user="bob", id=song) == 70
    xml = served.call("getBookmarks", fmt="xml")["xml"]
    from lxml import etree

    opensubsonic_schema().assertValid(etree.fromstring(xml))
    served.ok("deleteBookmark", id=song)
    assert served.error("deleteBookmark", id=song) == 70
    assert served.error("createBookmark", id=song, position=-1) == 0
    assert served.error("createBookmark", id=song) == 10
    assert served.error("createBookmark", id="al-1", position=1) == 70
    assert served.error("createBookmark", id="tr-999999", position=1) == 70
    served.ok("deleteBookmark", id=f"tr-{ids['long.flac']}")


def _report(phone: dict[str, Any], track: str, state: str, position: int, at: dt.datetime, **kw: Any) -> Any:
    index = phone["index"]  # the library function itself: its clock is the test's
    return playback.report(index.db, index.users.user("bob").id, phone["ids"][track], state, position, client="car",
                           now=at, **kw)  # fmt: skip


def test_playback_reports_count_plays_and_skips(phone):
    index, served = phone["index"], phone["served"]
    bob = index.users.user("bob").id
    t0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    s = dt.timedelta(seconds=1)
    users = index.users

    def users_report(*args: Any, **kw: Any) -> Any:
        return _report(phone, *args, **kw)

    # a 20 s song heard whole: one play at 10 s (half), no skip
    assert not users_report("rock.00000.flac", "starting", 0, t0).counted
    users_report("rock.00000.flac", "playing", 0, t0 + s)
    assert users_report("rock.00000.flac", "playing", 11_000, t0 + 12 * s).counted
    stop = users_report("rock.00000.flac", "stopped", 20_000, t0 + 21 * s)
    assert not stop.skipped and not stop.counted
    # the 10-minute song stopped after 10 s: a skip; twice, then skipped_track_ids names it
    for k in range(2):
        start = t0 + (100 + 60 * k) * s
        users_report("long.flac", "starting", 0, start)
        users_report("long.flac", "playing", 0, start)
        users_report("long.flac", "paused", 8_000, start + 8 * s)
        assert users_report("long.flac", "stopped", 8_000, start + 40 * s).skipped  # paused time is not heard
    # another song starting on the same client ends the one before where it was (a skip here)
    users_report("rock.00001.mp3", "starting", 0, t0 + 300 * s)
    users_report("rock.00001.mp3", "playing", 0, t0 + 300 * s)
    moved_on = users_report("rock.00000.flac", "starting", 0, t0 + 302 * s)
    assert moved_on.skipped
    users_report("rock.00000.flac", "stopped", 0, t0 + 303 * s)  # never played: not a skip
    # ignoreScrobble: now playing only
    users_report("rock.00001.mp3", "starting", 0, t0 + 400 * s, ignore_scrobble=True)
    users_report("rock.00001.mp3", "playing", 0, t0 + 400 * s, ignore_scrobble=True)
    assert not users_report("rock.00001.mp3", "stopped", 20_000, t0 + 421 * s, ignore_scrobble=True).counted
    with index.db.session() as sess:
        from sqlalchemy import text

        plays = dict(sess.execute(text("SELECT item_id, play_count FROM annotations WHERE user_id = :u AND "
                                       "item_type = 'track'"), {"u": bob}).all())  # fmt: skip
    assert plays == {phone["ids"]["rock.00000.flac"]: 1}
    assert users.skipped_track_ids(bob, days=36500) == [phone["ids"]["long.flac"]]
    assert users.skipped_track_ids(bob, min_skips=1, days=36500) == [phone["ids"]["long.flac"],
                                                                     phone["ids"]["rock.00001.mp3"]]  # fmt: skip
    # over the API: now playing while it plays, gone once stopped; bad reports are the protocol's errors
    song = f"tr-{phone['ids']['rock.00001.mp3']}"
    served.ok("reportPlayback", user="bob", mediaId=song, mediaType="song", positionMs=0, state="starting")
    served.ok("reportPlayback", user="bob", mediaId=song, mediaType="song", positionMs=1000, state="playing",
              playbackRate="1.5")  # fmt: skip
    playing = served.ok("getNowPlaying")["nowPlaying"]["entry"]
    assert [e["id"] for e in playing if e["username"] == "bob"] == [song]
    served.ok("reportPlayback", user="bob", mediaId=song, mediaType="song", positionMs=2000, state="stopped")
    assert not [e for e in served.ok("getNowPlaying")["nowPlaying"].get("entry", []) if e["username"] == "bob"]
    bad = [
        ({"state": "rewinding"}, 0), ({"mediaType": "podcast"}, 0), ({"positionMs": "-5"}, 0),
        ({"playbackRate": "0"}, 0), ({"playbackRate": "fast"}, 0), ({"mediaId": "al-1"}, 70),
        ({"state": None}, 10),
    ]  # fmt: skip
    for change, code in bad:
        params = {"mediaId": song, "mediaType": "song", "positionMs": 0, "state": "playing", **change}
        assert served.error("reportPlayback", user="bob", **{k: v for k, v in params.items() if v is not None}) == code


def test_index_based_play_queue(phone):
    served, ids = phone["served"], phone["ids"]
    a, b = f"tr-{ids['rock.00000.flac']}", f"tr-{ids['rock.00001.mp3']}"
    served.ok("savePlayQueueByIndex", id=[a, b, a], currentIndex=2, position=1234)
    q = served.ok("getPlayQueueByIndex")["playQueueByIndex"]
    assert [e["id"] for e in q["entry"]] == [a, b, a] and q["currentIndex"] == 2 and q["position"] == 1234
    assert served.ok("getPlayQueue")["playQueue"]["current"] == a  # the same queue for the classic calls
    served.ok("savePlayQueue", id=[b, a], current=a)
    assert served.ok("getPlayQueueByIndex")["playQueueByIndex"]["currentIndex"] == 1
    assert served.error("savePlayQueueByIndex", id=[a, b], currentIndex=2) == 10
    assert served.error("savePlayQueueByIndex", id=[a, b]) == 10
    assert served.error("savePlayQueueByIndex", currentIndex=0) == 0
    served.ok("savePlayQueueByIndex")  # nothing: the queue is cleared
    assert "playQueueByIndex" not in served.ok("getPlayQueueByIndex")
    from lxml import etree

    served.ok("savePlayQueueByIndex", id=[a], currentIndex=0)
    opensubsonic_schema().assertValid(etree.fromstring(served.call("getPlayQueueByIndex", fmt="xml")["xml"]))
    served.ok("savePlayQueueByIndex")


# --------------------------------------------------------------------------- the protocol everywhere
NOT_OFFERED = ("getPodcasts", "getShares", "getInternetRadioStations", "getUsers",
               "createUser", "getAvatar", "jukeboxControl", "hls", "getVideos", "getChatMessages",
               "getTranscodeDecision", "deleteEverything", "nonsense/with/slashes", "x" * 300)  # fmt: skip


def test_every_name_not_offered_is_the_protocols_error_in_the_requested_format(phone):
    served = phone["served"]
    from lxml import etree

    schema = opensubsonic_schema()
    for name in NOT_OFFERED:
        for suffix in ("", ".view"):
            for method in ("GET", "POST"):
                r = served.raw(name + suffix, {**_auth(fmt="json")}, method=method)
                assert r.status == 200, (name, r.status, r.body[:100])
                error = r.json()["error"]
                assert error["code"] == 0 and "not offered" in error["message"], (name, error)
        xml = served.raw(name, {**_auth(fmt="xml")})
        assert xml.status == 200 and xml.headers["content-type"].startswith("text/xml")
        schema.assertValid(etree.fromstring(xml.body))
        jsonp = served.raw(name, {**_auth(fmt="jsonp"), "callback": "cb"})
        assert jsonp.body.startswith(b"cb(") and json.loads(jsonp.body[3:-2])["subsonic-response"]["status"] == "failed"
    # without credentials too (nothing is revealed but the name asked for), and not the web's HTML 404
    bare = served.raw("getPodcasts", {"f": "json"})
    assert bare.status == 200 and bare.json()["error"]["code"] == 0


def test_head_never_changes_anything(phone):
    served, index = phone["served"], phone["index"]
    alice = index.users.user("alice").id
    song = f"tr-{phone['ids']['rock.00000.flac']}"
    before = len(index.listener.playlists(alice))
    calls = [("createPlaylist", {"name": "by HEAD", "songId": song}), ("star", {"id": song}),
             ("setRating", {"id": song, "rating": 5}), ("scrobble", {"id": song}), ("savePlayQueue", {"id": song}),
             ("createBookmark", {"id": song, "position": 5}), ("startScan", {}),
             ("reportPlayback", {"mediaId": song, "mediaType": "song", "positionMs": 0, "state": "starting"}),
             ]  # fmt: skip
    for name, params in calls:
        for path in (name, name + ".view"):
            r = served.raw(path, {**_auth(), **params}, method="HEAD")
            assert r.status == 405 and r.headers["allow"] == "GET, POST", (name, r.status)
    assert len(index.listener.playlists(alice)) == before
    assert served.ok("getSong", id=song)["song"].get("starred") is None
    assert served.ok("getBookmarks")["bookmarks"].get("bookmark") == []
    assert served.raw("getAlbumList2", {**_auth(), "type": "newest"}, method="HEAD").status == 200  # reads answer


def test_player_messages_carry_no_sql_or_admin_advice(phone):
    served = phone["served"]
    for name, params in (("getSong", {"id": "tr-999999"}), ("stream", {"id": "tr-999999"}),
                         ("createBookmark", {"id": "tr-999999", "position": 1})):  # fmt: skip
        error = served.call(name, **params)["error"]
        assert error == {"code": 70, "message": "song not found"}, (name, error)
