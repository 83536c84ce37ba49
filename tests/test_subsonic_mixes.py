"""Subsonic answers about artists that exist only as album artists (a soundtrack's composer, a compilation's
"Various Artists"), track numbers of untagged songs, mixes that leave out what a listener keeps skipping, and
lyrics (``.lrc`` beside the file, tags; hostile ``.lrc`` files): against the real app on a loopback port and the
real PostgreSQL (issue #29)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from musicindex import ingest
from musicindex.db.scratch import scratch_database
from musicindex.index import MusicIndex
from musicindex.sample.library import generate_library, write_tags
from musicindex.users import playback
from musicindex.web import create_app
from tests.subsonic_support import GENRES, PASSWORDS, Served, ServerThread, add_musicnn, opensubsonic_schema

COMPOSER = "Composer Zed"
SINGERS = ("Singer Ann", "Singer Bo", "Singer Ann")


@pytest.fixture(scope="module")
def served(base_settings, tmp_path_factory) -> Iterator[Served]:
    """3 genres x 3 songs (FLAC, FLAC, MP3); the rock ones are a soundtrack: album artist ``COMPOSER``, songs by
    ``SINGERS``, no track-number tags (so their numbers come from the file names). Lyrics: ``LYRICS`` beside or
    inside the files, and hostile ``.lrc`` files (a symlink out of the folder, binary, too large)."""
    tmp = tmp_path_factory.mktemp("mixes")
    root = tmp / "music"
    generate_library(root, per_genre=3, genres=GENRES, duration=3.0, formats=("flac", "flac", "mp3"))
    rock = sorted((root / "rock").iterdir())
    for i, (path, singer) in enumerate(zip(rock, SINGERS, strict=True)):
        write_tags(path, title=f"Cue {i}", artist=singer, album="Field Score", year=2001, genre="rock",
                   albumartist=COMPOSER)  # fmt: skip
    _write_lyrics(root, tmp)
    with scratch_database(base_settings.database_url, prefix="mi_mixes") as db:
        index = MusicIndex(db, base_settings.with_(database_url=db.url, home=tmp / "home"))
        reg = ingest.register(index.db, [root])
        ingest.process_tracks(index.db, reg.queued_ids)
        add_musicnn(index.db)
        index.users.add_user("alice", PASSWORDS["alice"], admin=True)
        index.users.add_user("bob", PASSWORDS["bob"])
        try:
            with ServerThread(create_app(index)) as server:
                yield Served(index, server.url, server.port, root, index.users.new_api_key("alice"))
        finally:
            index.close()


LRC = "[la:de]\n[offset:-250]\n[00:00.50]Grüße aus dem Feld\n[00:01.75][00:02.50]Refrain\n"


def _write_lyrics(root: Path, tmp: Path) -> None:
    from mutagen.flac import FLAC
    from mutagen.id3 import ID3, USLT

    (root / "rock" / "rock.00000.lrc").write_bytes(LRC.encode("cp1252"))  # another encoding than UTF-8
    tagged = FLAC(root / "rock" / "rock.00001.flac")
    tagged["LYRICS"] = "Unsynced one\nline two\n"
    tagged.save()
    id3 = ID3(root / "rock" / "rock.00002.mp3")
    id3.add(USLT(encoding=3, lang="eng", desc="", text="Mp3 words\nsecond"))
    id3.save()
    (tmp / "outside.lrc").write_text("[00:01.00]secret from outside the folder\n")
    (root / "jazz" / "jazz.00000.lrc").symlink_to(tmp / "outside.lrc")
    (root / "jazz" / "jazz.00001.lrc").write_bytes(b"\x7fELF\x00\x01" + bytes(range(256)) * 8)
    (root / "techno" / "techno.00000.lrc").write_bytes(b"[00:01.00]la\n" * 30_000)  # 390 KB


def _artist_id(served: Served, name: str) -> str:
    found = served.ok("search3", query=name, artistCount=5, albumCount=0, songCount=5)["searchResult3"]
    ids = {a["name"]: a["id"] for a in found.get("artist", [])}
    ids |= {s["artist"]: s["artistId"] for s in found.get("song", [])}
    return ids[name]


def _score(served: Served) -> dict[str, Any]:
    albums = served.ok("getAlbumList2", type="alphabeticalByName", size=50)["albumList2"]["album"]
    album = next(a for a in albums if a["name"] == "Field Score")
    return served.ok("getAlbum", id=album["id"])["album"]


def test_an_album_artist_without_songs_of_its_own_has_mixes_similar_artists_and_top_songs(served):
    composer = _artist_id(served, COMPOSER)
    score = {s["id"] for s in _score(served)["song"]}
    for name, element in (("getSimilarSongs", "similarSongs"), ("getSimilarSongs2", "similarSongs2")):
        songs = served.ok(name, id=composer, count=5)[element]["song"]
        assert songs, name  # was [] (the seeds were only the tracks with the composer as their artist)
        assert not {s["id"] for s in songs} & score  # the seeds themselves left out
    similar = served.ok("getArtistInfo2", id=composer, count=5)["artistInfo2"].get("similarArtist", [])
    assert similar and COMPOSER not in {a["name"] for a in similar}
    top = served.ok("getTopSongs", artist=COMPOSER.upper(), count=10)["topSongs"]["song"]
    assert {s["id"] for s in top} == score


def test_a_track_only_artists_album_count_is_its_album_list(served):
    singer = served.ok("getArtist", id=_artist_id(served, SINGERS[0]))["artist"]
    assert singer["album"] and singer["albumCount"] == len(singer["album"]) == 1
    listed = served.ok("getArtists")["artists"]["index"]
    for artist in (a for group in listed for a in group["artist"]):
        detail = served.ok("getArtist", id=artist["id"])["artist"]
        assert detail["albumCount"] == len(detail["album"]) >= artist["albumCount"] >= 1, artist["name"]


def test_songs_without_a_track_tag_are_numbered_in_file_name_order(served):
    songs = _score(served)["song"]
    assert [s["track"] for s in songs] == [1, 2, 3]
    assert [s["path"].rsplit("/", 1)[-1] for s in songs] == ["rock.00000.flac", "rock.00001.flac", "rock.00002.mp3"]
    for s in songs:  # one number per song wherever it is answered
        assert served.ok("getSong", id=s["id"])["song"]["track"] == s["track"]


def _mix(served: Served, seed: str, user: str) -> list[str]:
    return [s["id"] for s in served.call("getSimilarSongs2", user=user, id=seed, count=8)["similarSongs2"]["song"]]


def test_mixes_stop_offering_what_the_listener_keeps_skipping(served):
    index = served.index
    alice = index.users.user("alice").id
    jazz = [s["id"] for s in served.ok("getSongsByGenre", genre="jazz", count=10)["songsByGenre"]["song"]]
    seed = jazz[0]
    before = _mix(served, seed, "alice")
    skipped = before[0]
    track = int(skipped.removeprefix("tr-"))
    start = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=30)
    for k in range(2):  # started, heard for 0.3 s of 3 s, stopped: a skip, twice
        at = start + dt.timedelta(minutes=k)
        playback.report(index.db, alice, track, "starting", 0, client="car", now=at)
        playback.report(index.db, alice, track, "playing", 0, client="car", now=at)
        end = playback.report(
            index.db, alice, track, "stopped", 300, client="car", now=at + dt.timedelta(milliseconds=300)
        )
        assert end.skipped
    assert index.users.skipped_track_ids(alice) == [track]
    after = _mix(served, seed, "alice")
    assert skipped not in after and after  # the rest of the mix is still offered
    assert skipped in _mix(served, seed, "bob")  # another listener's skips are not alice's
    served.call("star", user="alice", id=seed)
    try:  # "for you" from the same listener's star leaves the skipped song out too
        found = [h.id for h in index.mixes.for_you(alice).result]
        assert found and track not in found
    finally:
        served.call("unstar", user="alice", id=seed)


# --------------------------------------------------------------------------- lyrics
def _ids(served: Served) -> dict[str, str]:
    found = served.ok("search3", query="", songCount=100, albumCount=0, artistCount=0)["searchResult3"]["song"]
    return {s["path"].rsplit("/", 1)[-1]: s["id"] for s in found}


def _lyrics(served: Served, song: str, fmt: str = "json") -> Any:
    r = served.call("getLyricsBySongId", fmt=fmt, id=song)
    return r if fmt == "xml" else r["lyricsList"].get("structuredLyrics", [])


def test_synced_lyrics_from_an_lrc_beside_the_file_and_unsynced_from_tags(served):
    from lxml import etree

    ids = _ids(served)
    (synced,) = _lyrics(served, ids["rock.00000.flac"])
    lines = [{"start": 750, "value": "Grüße aus dem Feld"}, {"start": 2000, "value": "Refrain"},
             {"start": 2750, "value": "Refrain"}]  # fmt: skip
    assert synced == {"displayArtist": "Singer Ann", "displayTitle": "Cue 0", "lang": "de", "offset": 0,
                      "synced": True, "line": lines}  # fmt: skip
    (flac,) = _lyrics(served, ids["rock.00001.flac"])
    assert not flac["synced"] and flac["lang"] == "xxx" and flac["line"] == [{"value": "Unsynced one"},
                                                                             {"value": "line two"}]  # fmt: skip
    (mp3,) = _lyrics(served, ids["rock.00002.mp3"])
    assert mp3["lang"] == "eng" and [x["value"] for x in mp3["line"]] == ["Mp3 words", "second"]
    assert _lyrics(served, ids["jazz.00002.mp3"]) == []  # none at all
    opensubsonic_schema().assertValid(etree.fromstring(_lyrics(served, ids["rock.00000.flac"], "xml")["xml"]))
    assert served.error("getLyricsBySongId", id="tr-999999") == 70


def test_legacy_get_lyrics_by_artist_and_title(served):
    from lxml import etree

    found = served.ok("getLyrics", artist="singer ann", title="cue 0")["lyrics"]
    assert found == {"artist": "Singer Ann", "title": "Cue 0", "value": "Grüße aus dem Feld\nRefrain\nRefrain"}
    assert served.ok("getLyrics", title="Cue 1")["lyrics"]["value"] == "Unsynced one\nline two"
    assert served.ok("getLyrics", artist="Singer Bo", title="Cue 0")["lyrics"] == {"value": ""}  # not that artist's
    assert served.ok("getLyrics", artist="nobody", title="nothing")["lyrics"] == {"value": ""}
    opensubsonic_schema().assertValid(etree.fromstring(served.call("getLyrics", fmt="xml", title="Cue 0")["xml"]))


def test_hostile_lrc_files_are_refused_and_the_song_still_answers(served):
    ids = _ids(served)
    assert _lyrics(served, ids["jazz.00000.flac"]) == []  # a symlink leading out of the music folder
    assert _lyrics(served, ids["jazz.00001.flac"]) == []  # binary
    assert _lyrics(served, ids["techno.00000.flac"]) == []  # larger than MAX_LYRICS_BYTES
    assert served.ok("getSong", id=ids["jazz.00000.flac"])["song"]["id"] == ids["jazz.00000.flac"]


def test_py_opensonic_reads_the_lyrics(served):
    from libopensonic import Connection

    ids = _ids(served)
    conn = Connection("http://127.0.0.1", "alice", PASSWORDS["alice"], port=served.port, app_name="tests")
    try:
        (synced,) = conn.get_lyrics_by_song_id(ids["rock.00000.flac"])
        assert synced.synced and synced.lang == "de" and synced.display_title == "Cue 0"
        assert [(x.start, x.value) for x in synced.line] == [(750, "Grüße aus dem Feld"), (2000, "Refrain"),
                                                               (2750, "Refrain")]  # fmt: skip
        assert conn.get_lyrics_by_song_id(ids["jazz.00001.flac"]) == []
        assert conn.get_lyrics(artist="Singer Bo", title="Cue 1").value == "Unsynced one\nline two"
        assert conn.get_lyrics(artist="nobody", title="nothing").value == ""
    finally:
        conn.cleanup()
