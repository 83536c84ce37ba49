"""The OpenSubsonic API (``/rest`` on ``musicindex serve``) against the real server and PostgreSQL, driven by an
independently written client (py-opensonic) and by raw HTTP where a client cannot go (XML against the XSD, Range,
hostile and malformed calls, form bodies)."""

from __future__ import annotations

import hashlib
import io
import itertools
import logging
import os
from pathlib import Path

import pytest
from libopensonic import Connection
from libopensonic import errors as os_errors

from musicindex.textnorm import sort_key
from musicindex.web import create_app
from tests.subsonic_support import PASSWORDS, Served, ServerThread, opensubsonic_schema


@pytest.fixture(scope="module")
def served(subsonic_library):
    return subsonic_library


@pytest.fixture
def client(served):
    conn = Connection("http://127.0.0.1", "alice", PASSWORDS["alice"], port=served.port, app_name="tests")
    yield conn
    conn.cleanup()


def _album_ids(served):
    return [a["id"] for a in served.ok("getAlbumList2", type="alphabeticalByName", size=50)["albumList2"]["album"]]


# --------------------------------------------------------------------------- auth
def _ping(served, *args, **kwargs) -> bool:
    conn = Connection("http://127.0.0.1", *args, port=served.port, **kwargs)
    try:
        return bool(conn.ping())
    finally:
        conn.cleanup()


def test_every_auth_scheme_and_its_failures(served):
    assert _ping(served, "alice", PASSWORDS["alice"])  # token + salt
    assert _ping(served, api_key=served.api_key)  # OpenSubsonic apiKey
    assert _ping(served, "BOB", PASSWORDS["bob"], legacy_auth=True)  # p=enc:HEX, the name in any case
    base = {"v": "1.16.1", "c": "t", "f": "json"}
    assert served.raw("ping", {**base, "u": "bob", "p": PASSWORDS["bob"]}).json()["status"] == "ok"  # plain p

    def code(**params):
        return served.raw("ping.view", {**base, **params}).json()["error"]["code"]

    assert code(u="alice", p="wrong") == 40
    assert code(u="nobody", p="x") == 40
    assert code(u="local listener", p="x") == 40  # the system user is no login
    assert code(apiKey="mi_not-a-key") == 44
    assert code(apiKey=served.api_key, u="alice") == 43
    assert code(u="alice", p="x", t="y", s="z") == 43
    assert code() == 10
    assert code(u="alice", t="abc") == 10  # a token without its salt
    assert code(u="alice", p=PASSWORDS["alice"], v="2.0.0") == 30
    assert code(u="alice", p=PASSWORDS["alice"], v="0.9.0") == 20
    with pytest.raises(os_errors.CredentialError):  # py-opensonic's error for code 40
        _ping(served, "alice", "nope")


def test_extensions_are_answered_without_auth_and_name_sonic_similarity(served):
    r = served.raw("getOpenSubsonicExtensions", {"f": "json"}).json()
    names = {e["name"]: e["versions"] for e in r["openSubsonicExtensions"]}
    assert names == {"formPost": [1], "apiKeyAuthentication": [1], "sonicSimilarity": [1], "transcodeOffset": [1],
                     "playbackReport": [1], "indexBasedQueue": [1], "songLyrics": [1]}  # fmt: skip
    assert "transcoding" not in names  # the newer transcoding extension is not offered (docs/subsonic.md)
    assert r["openSubsonic"] is True and r["type"] == "musicindex" and r["version"] == "1.16.1"
    assert r["serverVersion"]
    assert served.raw("ping", {"f": "json"}).json()["error"]["code"] == 10  # everything else needs auth


def test_token_info_and_user(served, client):
    assert served.ok("tokenInfo")["tokenInfo"]["username"] == "alice"
    keyed = Connection("http://127.0.0.1", api_key=served.api_key, port=served.port)
    try:
        assert keyed.token_info().username == "alice"
    finally:
        keyed.cleanup()
    me = client.get_user("alice")
    assert me.admin_role is True and me.stream_role is True
    assert served.error("getUser", user="bob", username="alice") == 50


# --------------------------------------------------------------------------- browsing
def test_folders_indexes_artists_and_directories(served, client):
    # raw: py-opensonic 10.4 iterates musicFolders itself instead of musicFolders.musicFolder (the spec's shape)
    (folder,) = served.ok("getMusicFolders")["musicFolders"]["musicFolder"]
    assert folder == {"id": 1, "name": "music"}
    artists = client.get_artists()
    names = [a.name for i in artists.index for a in i.artist]
    assert "Ana Sól" in names and all(a.album_count >= 1 for i in artists.index for a in i.artist)
    assert artists.ignored_articles.split()[0] == "The"
    assert names == sorted(names, key=lambda n: n.lower().removeprefix("the "))
    indexes = client.get_indexes()
    assert [a.name for i in indexes.index for a in i.artist] == names
    first = artists.index[0].artist[0]
    d = client.get_music_directory(first.id)
    assert d.name == first.name and d.child and all(c.is_dir for c in d.child)
    songs = client.get_music_directory(d.child[0].id)
    assert songs.child and not any(c.is_dir for c in songs.child) and songs.parent == first.id
    assert served.error("getMusicDirectory", id="tr-1") == 70


def test_artist_album_and_song_carry_the_opensubsonic_fields(served, client):
    ana = next(a for i in client.get_artists().index for a in i.artist if a.name == "Ana Sól")
    artist = client.get_artist(ana.id)
    (battle,) = [a for a in artist.album if a.name == "Battle"]
    album = client.get_album(battle.id)
    assert album.song_count == len(album.song) == 1
    song = client.get_song(album.song[0].id)
    assert song.title == "Wesnoth Théme" and song.track == 2 and song.disc_number == 1 and song.year == 1999
    assert song.media_type == "song" and song.type == "music" and not song.is_dir
    assert song.suffix == "ogg" and song.content_type == "audio/ogg" and song.size > 0 and song.duration == 3
    assert song.bit_rate and song.bit_rate > 0 and song.path == "jazz/jazz.00001.ogg"
    assert song.genre == "jazz" and [g.name for g in song.genres] == ["jazz"]
    assert set(song.moods) == {"Mellow", "chill"}  # musicnn top tags that are moods
    assert song.bpm is None  # a 3-s song has no measured tempo (6 s of beats at least): none is made up
    # ReplayGain from the measured loudness: track gain = -18 LUFS - its loudness; its album is that song alone
    assert song.replay_gain is not None
    assert song.replay_gain.track_gain == pytest.approx(song.replay_gain.album_gain, abs=0.011)  # 0.01-dB rounding
    assert 0 < song.replay_gain.track_peak <= 1.5 and song.replay_gain.album_peak == song.replay_gain.track_peak
    assert song.album_id == battle.id and song.artist_id == ana.id and song.created
    assert song.played is None and song.play_count == 0
    full = client.get_album(_album_ids(served)[0])
    order = [(s.disc_number or 0, s.track or 0) for s in full.song]
    assert order == sorted(order)
    assert served.error("getAlbum", id="al-999999") == 70
    assert served.error("getSong", id="al-1") == 70  # an album id is no song id
    assert served.error("getArtist", id="42") == 70  # ids carry their type


def test_genres_and_songs_by_genre(served, client):
    genres = {g.value: g for g in client.get_genres()}
    assert set(genres) == {"rock", "jazz", "techno"}
    assert genres["jazz"].song_count == 3 and genres["jazz"].album_count >= 1
    first = client.get_songs_by_genre("rock", count=2)
    rest = client.get_songs_by_genre("rock", count=2, offset=2)
    assert len(first) == 2 and len(rest) == 1 and {s.id for s in first}.isdisjoint(s.id for s in rest)
    assert client.get_songs_by_genre("polka") == []
    # a song without genre tags has its label's genre (else the genre model's prediction: Snapshot.genre_join)
    from sqlalchemy import text

    song = first[0]
    tid = int(song.id.removeprefix("tr-"))
    with served.index.db.engine.begin() as conn:
        old = conn.execute(text("SELECT genres, label FROM tracks WHERE id = :t"), {"t": tid}).one()
        conn.execute(text("UPDATE tracks SET genres = '{}', label = 'blues' WHERE id = :t"), {"t": tid})
    try:
        labelled = client.get_song(song.id)
        assert labelled.genre == "blues" and [g.name for g in labelled.genres] == ["blues"]
        assert [s.id for s in client.get_songs_by_genre("blues")] == [song.id]
    finally:
        with served.index.db.engine.begin() as conn:
            conn.execute(text("UPDATE tracks SET genres = :g, label = :l WHERE id = :t"),
                         {"g": old[0], "l": old[1], "t": tid})  # fmt: skip


def test_album_lists_of_every_type(served, client):
    for kind in served.index.catalog.ALBUM_LIST_TYPES:
        params = {"from_year": 1900, "to_year": 2100} if kind == "byYear" else {}
        if kind == "byGenre":
            params = {"genre": "rock"}
        albums = client.get_album_list2(kind, size=50, **params)
        assert isinstance(albums, list), kind
        # raw: py-opensonic reads getAlbumList's albums as AlbumID3, the spec's are folder Child elements
        raw = {"fromYear": 1900, "toYear": 2100} if kind == "byYear" else params
        folders = served.ok("getAlbumList", type=kind, size=50, **raw)["albumList"]["album"]
        assert len(folders) == len(albums) and all(a["isDir"] for a in folders), kind
    names = [a.name for a in client.get_album_list2("alphabeticalByName", size=50)]
    assert len(names) > 1 and names == sorted(names, key=sort_key)  # the library's own sort rule (textnorm)
    page1 = client.get_album_list2("alphabeticalByName", size=2)
    page2 = client.get_album_list2("alphabeticalByName", size=2, offset=2)
    assert [a.id for a in page1 + page2] == [a.id for a in client.get_album_list2("alphabeticalByName", size=4)]
    up = [a.year for a in client.get_album_list2("byYear", size=50, from_year=1900, to_year=2100)]
    down = [a.year for a in client.get_album_list2("byYear", size=50, from_year=2100, to_year=1900)]
    assert up == sorted(up) and down == sorted(down, reverse=True)
    assert all(a.genre == "rock" for a in client.get_album_list2("byGenre", size=50, genre="rock"))
    assert served.error("getAlbumList2", type="bestOfAll") == 0
    assert served.error("getAlbumList2") == 10


def test_random_songs(served, client):
    assert len(client.get_random_songs(size=4)) == 4
    assert {s.genre for s in client.get_random_songs(size=50, genre="techno")} == {"techno"}
    assert len(served.ok("getRandomSongs", size=100000)["randomSongs"]["song"]) == 9  # bounded, not refused
    assert client.get_random_songs(size=10, from_year=3000, to_year=3001) == []


# --------------------------------------------------------------------------- search
def test_search_finds_word_parts_in_any_case_or_accent(served, client):
    for q in ("wésnoth", "WESNOTH", "snot", "théme sol"):
        r = client.search3(q)
        assert [s.title for s in r.song] == ["Wesnoth Théme"], q
    assert [a.name for a in client.search3("ana").artist] == ["Ana Sól"]
    assert [a.name for a in client.search3("battle").album] == ["Battle"]
    r2 = client.search2("wesnoth")
    assert [s.title for s in r2.song] == ["Wesnoth Théme"]
    assert client.search3("zzzqqq").song == []


def test_an_empty_search_lists_everything_in_stable_pages(served):
    ids = []
    for offset in range(0, 12, 4):
        r = served.ok("search3", query="", songCount=4, songOffset=offset, artistCount=0, albumCount=0)
        ids += [s["id"] for s in r["searchResult3"].get("song", [])]
    assert len(ids) == len(set(ids)) == 9
    everything = served.ok("search3", query='""', songCount=500)["searchResult3"]  # a client's quoted empty query
    assert [s["id"] for s in everything["song"]] == ids
    assert len(everything["album"]) >= 3 and len(everything["artist"]) >= 3


# --------------------------------------------------------------------------- a listener's state
def test_star_rate_scrobble_and_what_lists_show(served, client):
    song = client.search3("wesnoth").song[0]
    album_id, artist_id = song.album_id, song.artist_id
    client.star(sids=[song.id], album_ids=[album_id], artist_ids=[artist_id])
    starred = client.get_starred2()
    assert [s.id for s in starred.song] == [song.id]
    assert [a.id for a in starred.album] == [album_id] and [a.id for a in starred.artist] == [artist_id]
    assert [a.id for a in client.get_starred().album] == [album_id]
    assert client.get_song(song.id).starred is not None
    assert served.ok("getStarred2", user="bob")["starred2"] == {"artist": [], "album": [], "song": []}  # per user
    client.set_rating(song.id, 4)
    client.set_rating(album_id, 5)
    assert client.get_song(song.id).user_rating == 4
    assert [a.id for a in client.get_album_list2("highest")] == [album_id]
    client.set_rating(song.id, 0)
    assert client.get_song(song.id).user_rating is None
    assert served.error("setRating", id=song.id, rating=6) == 0
    client.scrobble(song.id, submission=True)
    client.scrobble(song.id, submission=True)
    after = client.get_song(song.id)
    assert after.play_count == 2 and after.played is not None
    assert [a.id for a in client.get_album_list2("frequent")] == [album_id]
    assert [a.id for a in client.get_album_list2("recent")] == [album_id]
    assert [s.id for s in client.get_top_songs("ana sol")][:1] == [song.id]
    client.scrobble(song.id, submission=False)
    now = client.get_now_playing()
    assert [(e.id, e.username, e.player_name) for e in now] == [(song.id, "alice", "tests")]
    client.unstar(sids=[song.id], album_ids=[album_id], artist_ids=[artist_id])
    assert served.ok("getStarred2")["starred2"] == {"artist": [], "album": [], "song": []}
    assert served.error("star", id="tr-999999") == 70
    assert served.error("star") == 10


def test_playlists_own_public_and_refused(served, client):
    songs = [s.id for s in client.get_random_songs(size=4)]
    client.create_playlist(name="Mine", song_ids=songs[:3])  # py-opensonic answers True; the playlist is listed
    (made,) = client.get_playlists()
    made = client.get_playlist(made.id)
    assert made.name == "Mine" and [e.id for e in made.entry] == songs[:3] and made.owner == "alice"
    answered = served.ok("createPlaylist", name="Answered")["playlist"]  # the API answers the new playlist
    assert answered["name"] == "Answered" and answered["songCount"] == 0
    served.ok("deletePlaylist", id=answered["id"])
    client.update_playlist(made.id, name="Renamed", comment="for tests", song_ids_to_add=[songs[3]],
                           song_indices_to_remove=[0])  # fmt: skip
    served.ok("updatePlaylist", playlistId=made.id, public=True)  # py-opensonic has no 'public' argument
    got = client.get_playlist(made.id)
    assert got.name == "Renamed" and got.comment == "for tests" and got.public
    assert [e.id for e in got.entry] == [*songs[1:3], songs[3]] and got.song_count == 3
    client.create_playlist(playlist_id=made.id, song_ids=songs[:1])
    assert [e.id for e in client.get_playlist(made.id).entry] == songs[:1]
    bobs = served.ok("getPlaylists", user="bob")["playlists"]["playlist"]
    assert [p["id"] for p in bobs] == [made.id]  # public: bob sees it
    assert served.error("updatePlaylist", user="bob", playlistId=made.id, name="mine now") == 50
    assert served.error("deletePlaylist", user="bob", id=made.id) == 50
    private = served.ok("createPlaylist", user="bob", name="Bob's")["playlist"]["id"]
    assert private not in [p.id for p in client.get_playlists()]
    assert served.error("getPlaylist", id=private) == 70  # another's private playlist is not there
    client.delete_playlist(made.id)  # py-opensonic names the parameter id
    served.ok("deletePlaylist", user="alice", id=private)  # an admin may delete any
    assert client.get_playlists() == []
    assert served.error("getPlaylist", id="pl-999999") == 70


def test_play_queue(served, client):
    songs = [s.id for s in client.get_random_songs(size=3)]
    client.save_play_queue(songs, current=songs[1], position=12_345)
    q = client.get_play_queue()
    assert [e.id for e in q.entry] == songs and q.current == songs[1] and q.position == 12_345
    assert q.username == "alice" and q.changed_by == "tests"
    assert served.ok("getPlayQueue", user="bob").get("playQueue") is None
    assert served.error("savePlayQueue", id=songs[0], current=songs[2]) == 0  # current must be queued
    served.ok("savePlayQueue")  # no id: the queue is cleared
    assert served.ok("getPlayQueue").get("playQueue") is None


# --------------------------------------------------------------------------- media
def test_stream_and_download_with_range(served, client):
    song = client.search3("wesnoth").song[0]
    raw = (served.root / "jazz" / "jazz.00001.ogg").read_bytes()
    base = {"u": "alice", "p": PASSWORDS["alice"], "v": "1.16.1", "c": "t", "id": song.id}
    full = served.raw("stream", {**base, "format": "raw"})  # the original (transcodes: tests/test_subsonic_phone.py)
    assert full.status == 200 and full.body == raw and full.headers["content-type"] == "audio/ogg"
    part = served.raw("stream.view", base, headers={"Range": "bytes=100-199"})
    assert part.status == 206 and part.body == raw[100:200] and part.headers["content-range"].endswith(f"/{len(raw)}")
    post = served.raw("stream", base, method="POST", headers={"Range": "bytes=-10"})
    assert post.status == 206 and post.body == raw[-10:]
    head = served.raw("stream", base, method="HEAD")
    assert head.status == 200 and head.body == b"" and head.headers["content-length"] == str(len(raw))
    dl = served.raw("download", base)
    assert dl.body == raw and dl.headers["content-disposition"].startswith("attachment")
    assert served.raw("stream", {**base, "id": "tr-999999", "f": "json"}).json()["error"]["code"] == 70


def test_cover_art_resized_cached_and_not_found(served, client):
    from PIL import Image

    album = next(a for a in client.get_album_list2("alphabeticalByName", size=50) if a.cover_art)
    base = {"u": "alice", "p": PASSWORDS["alice"], "v": "1.16.1", "c": "t", "id": album.cover_art}
    small = served.raw("getCoverArt", {**base, "size": 64})
    assert small.status == 200 and small.headers["content-type"].startswith("image/")
    assert max(Image.open(io.BytesIO(small.body)).size) == 64
    original = served.raw("getCoverArt", base)
    assert max(Image.open(io.BytesIO(original.body)).size) == 300  # the embedded picture as it is
    tiny = served.raw("getCoverArt", {**base, "size": 1})
    assert max(Image.open(io.BytesIO(tiny.body)).size) == 32  # the smallest size step (covers.SIZE_STEPS)
    cache = Path(served.index.settings.home) / "covers"
    assert len(list(cache.iterdir())) >= 3
    again = served.raw("getCoverArt", {**base, "size": 64}, headers={"If-None-Match": small.headers["etag"]})
    assert again.status == 304
    song = client.get_album(album.id).song[0]
    assert served.raw("getCoverArt", {**base, "id": song.cover_art, "size": 64}).body == small.body
    assert served.raw("getCoverArt", {**base, "id": "al-999999", "f": "json"}).json()["error"]["code"] == 70
    assert served.raw("getCoverArt", {**base, "id": "../../etc", "f": "json"}).json()["error"]["code"] == 70


def test_a_sweep_of_odd_cover_sizes_makes_a_handful_of_files(served, client):
    """Issue 28 item 11: sizes snap to covers.SIZE_STEPS and never exceed the source, so a sweep cannot flush the
    cache (before: 120 sizes made 122 files)."""
    from PIL import Image

    album = next(a for a in client.get_album_list2("alphabeticalByName", size=50) if a.cover_art)
    base = {"u": "alice", "p": PASSWORDS["alice"], "v": "1.16.1", "c": "t", "id": album.cover_art}
    cache = Path(served.index.settings.home) / "covers"
    before = set(cache.iterdir()) if cache.exists() else set()
    for size in range(600, 1200, 5):  # 120 odd sizes
        r = served.raw("getCoverArt", {**base, "size": size})
        assert r.status == 200 and max(Image.open(io.BytesIO(r.body)).size) == 300  # never above the source
    assert len(set(cache.iterdir()) - before) <= 1


def test_the_cover_cache_keeps_under_its_cap_oldest_out_first(tmp_path):
    from musicindex.media.covers import Cover, CoverCache

    cache = CoverCache(tmp_path / "covers", cap_bytes=2500)
    for i in range(5):
        cache.put(f"k{i}", Cover(bytes([i]) * 1000, "image/png", f'"{i}"'))
        os.utime(tmp_path / "covers" / f"k{i}.png", (1000 + i, 1000 + i))  # a clear age order
    cache.prune()
    assert sorted(p.name for p in (tmp_path / "covers").iterdir()) == ["k3.png", "k4.png"]
    assert cache.get("k4").data == bytes([4]) * 1000 and cache.get("k0") is None
    assert not [p for p in (tmp_path / "covers").iterdir() if p.name.startswith(".")]  # no temporary file left


def test_a_cover_file_swapped_for_a_link_outside_is_refused(served, tmp_path):
    secret = tmp_path / "secret.png"
    secret.write_bytes((served.root / "rock" / "rock.00000.flac").read_bytes()[:10])
    folder = served.root / "linked"
    folder.mkdir()
    with served.index.db.engine.begin() as conn:
        from sqlalchemy import text

        aid = conn.execute(text("SELECT id FROM albums ORDER BY id LIMIT 1")).scalar_one()
        old = conn.execute(text("SELECT cover_kind, cover_path, cover_track_id FROM albums WHERE id = :a"),
                           {"a": aid}).one()  # fmt: skip
        os.symlink(secret, folder / "cover.png")
        conn.execute(text("UPDATE albums SET cover_kind = 'file', cover_path = :p WHERE id = :a"),
                     {"p": str(folder / "cover.png"), "a": aid})  # fmt: skip
    try:
        reply = served.raw("getCoverArt", {"u": "alice", "p": PASSWORDS["alice"], "v": "1.16.1", "c": "t",
                                           "f": "json", "id": f"al-{aid}", "size": 32})  # fmt: skip
        assert reply.json()["error"]["code"] == 70
        (folder / "folder.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"not really a picture" * 50)  # inside, no image
        with served.index.db.engine.begin() as conn:
            conn.execute(text("UPDATE albums SET cover_path = :p WHERE id = :a"),
                         {"p": str(folder / "folder.png"), "a": aid})  # fmt: skip
        garbage = served.raw("getCoverArt", {"u": "alice", "p": PASSWORDS["alice"], "v": "1.16.1", "c": "t",
                                             "f": "json", "id": f"al-{aid}", "size": 32})  # fmt: skip
        assert garbage.json()["error"]["code"] == 70
    finally:
        with served.index.db.engine.begin() as conn:
            conn.execute(text("UPDATE albums SET cover_kind = :k, cover_path = :p, cover_track_id = :t WHERE id = :a"),
                         {"k": old[0], "p": old[1], "t": old[2], "a": aid})  # fmt: skip


# --------------------------------------------------------------------------- the sound of the index
def test_similar_songs_and_artists_from_the_sonic_space(served, client):
    seed = client.search3("wesnoth").song[0]
    mix = client.get_similar_songs2(seed.id, count=8)
    assert mix and seed.id not in [s.id for s in mix]
    assert all(a.artist_id != b.artist_id for a, b in itertools.pairwise(mix))  # no same-artist runs
    assert mix[0].genre == "jazz"  # the nearest sound is its own genre's
    assert [s.id for s in client.get_similar_songs(seed.id, count=8)] == [s.id for s in mix]
    album_mix = client.get_similar_songs2(seed.album_id, count=5)
    assert album_mix and all(s.album_id != seed.album_id for s in album_mix[:1])
    info = client.get_artist_info2(seed.artist_id, count=5)
    assert info.similar_artist and seed.artist_id not in [a.id for a in info.similar_artist]
    assert client.get_artist_info(seed.artist_id, count=5).similar_artist
    assert client.get_album_info2(seed.album_id) is not None


def test_sonic_similarity_extension(served, client):
    seed = client.search3("wesnoth").song[0]
    matches = client.get_sonic_similar_tracks(seed.id, count=5)
    assert len(matches) == 5 and seed.id not in [m.entry.id for m in matches]
    sims = [m.similarity for m in matches]
    assert all(0.0 <= s <= 1.0 for s in sims) and sims == sorted(sims, reverse=True)
    end = next(s for s in client.get_random_songs(size=9) if s.genre == "techno")
    path = client.find_sonic_path(seed.id, end.id, count=5)
    assert path[0].entry.id == seed.id and path[-1].entry.id == end.id and path[0].similarity == 1.0
    assert len({m.entry.id for m in path}) == len(path) <= 5
    assert served.error("findSonicPath", startSongId=seed.id, endSongId=seed.id) == 0
    assert served.error("getSonicSimilarTracks", id="tr-999999") == 70


# --------------------------------------------------------------------------- formats and transports
XML_CALLS = [
    ("ping", {}), ("getLicense", {}), ("getOpenSubsonicExtensions", {}), ("getScanStatus", {}),
    ("getMusicFolders", {}), ("getIndexes", {}), ("getArtists", {}), ("getGenres", {}), ("tokenInfo", {}),
    ("getUser", {"username": "alice"}), ("getAlbumList", {"type": "newest"}),
    ("getAlbumList2", {"type": "alphabeticalByArtist"}), ("getRandomSongs", {"size": 3}),
    ("getSongsByGenre", {"genre": "jazz"}), ("getStarred", {}), ("getStarred2", {}), ("getNowPlaying", {}),
    ("search2", {"query": "wesnoth"}), ("search3", {"query": ""}), ("getPlaylists", {}), ("getPlayQueue", {}),
    ("getTopSongs", {"artist": "Ana Sól"}), ("getAlbum", {"id": "al-404"}), ("getSong", {"id": "nope"}),
    ("getAlbumList2", {}),
]  # fmt: skip


def test_xml_answers_validate_against_the_subsonic_xsd(served, client):
    from lxml import etree

    schema = opensubsonic_schema()
    seed = client.search3("wesnoth").song[0]
    pl = served.ok("createPlaylist", name="xml", songId=seed.id)["playlist"]["id"]
    client.star(sids=[seed.id], album_ids=[seed.album_id], artist_ids=[seed.artist_id])
    client.set_rating(seed.album_id, 3)
    client.scrobble(seed.id, submission=False)
    client.save_play_queue([seed.id], current=seed.id, position=5)
    ids = [
        ("getArtist", {"id": seed.artist_id}), ("getAlbum", {"id": seed.album_id}), ("getSong", {"id": seed.id}),
        ("getMusicDirectory", {"id": seed.artist_id}), ("getMusicDirectory", {"id": seed.album_id}),
        ("getArtistInfo", {"id": seed.artist_id}), ("getArtistInfo2", {"id": seed.artist_id}),
        ("getAlbumInfo", {"id": seed.album_id}), ("getAlbumInfo2", {"id": seed.album_id}),
        ("getSimilarSongs", {"id": seed.id}), ("getSimilarSongs2", {"id": seed.artist_id}),
        ("getSonicSimilarTracks", {"id": seed.id}), ("getPlaylist", {"id": pl}), ("getPlayQueue", {}),
        ("getStarred", {}), ("getStarred2", {}), ("getNowPlaying", {}), ("getAlbumList2", {"type": "highest"}),
        ("findSonicPath", {"startSongId": seed.id, "endSongId": client.get_random_songs(size=1)[0].id}),
        ("search3", {"query": "ana"}), ("star", {"id": seed.id}),
    ]  # fmt: skip
    try:
        for name, params in XML_CALLS + ids:
            body = served.call(name, fmt="xml", **params)["xml"]
            doc = etree.fromstring(body)
            assert schema.validate(doc), (name, schema.error_log.last_error, body[:400])
    finally:
        client.delete_playlist(pl)
        client.unstar(sids=[seed.id], album_ids=[seed.album_id], artist_ids=[seed.artist_id])
        client.set_rating(seed.album_id, 0)
    genre = etree.fromstring(served.call("getGenres", fmt="xml")["xml"]).find(
        f"{{{'http://subsonic.org/restapi'}}}genres"
    )
    assert sorted(g.text for g in genre) == ["jazz", "rock", "techno"]


def test_json_jsonp_and_form_posts(served):
    auth = [("u", "alice"), ("p", PASSWORDS["alice"]), ("v", "1.16.1"), ("c", "t")]
    jsonp = served.raw("ping", [*auth, ("f", "jsonp"), ("callback", "cb.done_1")])
    assert jsonp.body.startswith(b'cb.done_1({"subsonic-response"') and jsonp.body.endswith(b");")
    bad = served.raw("ping", [*auth, ("f", "jsonp"), ("callback", "alert(1)//")])
    assert bad.json()["error"]["code"] == 0 and b"alert" not in bad.body
    form = served.raw("getGenres.view", [*auth, ("f", "json")], method="POST")
    assert form.json()["status"] == "ok"
    boundary = "xYzBoundary"
    parts = "".join(f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'
                    for k, v in [*auth, ("f", "json")])  # fmt: skip
    multipart = served.raw(
        "ping", method="POST", body=(parts + f"--{boundary}--\r\n").encode(),
        headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
    )  # fmt: skip
    assert multipart.json()["status"] == "ok"
    assert served.raw("ping", [*auth]).headers["content-type"].startswith("text/xml")  # XML by default


def test_start_scan_is_for_admins(served):
    assert served.error("startScan", user="bob") == 50
    status = served.ok("startScan")["scanStatus"]
    assert status["scanning"] is True and status["count"] == 9
    assert served.ok("getScanStatus")["scanStatus"]["count"] == 9


# --------------------------------------------------------------------------- no accounts, the failure limit
def test_no_rest_without_accounts_and_the_system_user_is_no_login(index):
    index.users.local_user()
    with ServerThread(create_app(index)) as server:
        s = Served(index, server.url, server.port, Path("."), "")
        r = s.raw("ping", {"u": "local listener", "p": "", "f": "json"})
        assert r.status == 404 and b"user add" in r.body
        assert s.raw("getOpenSubsonicExtensions").status == 404
        assert index.users.list_users() == []


def test_failed_logins_are_limited_per_user_and_address(served, caplog):
    from musicindex.index import MusicIndex

    own = MusicIndex(served.index.db, served.index.settings)  # its own limiter: the other tests' address stays free
    with ServerThread(create_app(own)) as server:
        s = Served(own, server.url, server.port, served.root, served.api_key)
        base = {"v": "1.16.1", "c": "t", "f": "json"}
        with caplog.at_level(logging.WARNING, logger="musicindex.users"):
            for _ in range(10):
                assert s.raw("ping", {**base, "u": "bob", "p": "guess"}).json()["error"]["code"] == 40
            # cooling down: even the right password is answered 40 at once, without checking, saying so
            right = s.raw("ping", {**base, "u": "bob", "p": PASSWORDS["bob"]}).json()
            assert right["error"]["code"] == 40 and right["error"]["message"].startswith("too many attempts, retry in")
            # per (address, account): another account from the same address is not locked out
            assert s.raw("ping", {**base, "u": "alice", "p": PASSWORDS["alice"]}).json()["status"] == "ok"
        warnings = [r for r in caplog.records if "failed attempts" in r.getMessage()]
        assert len(warnings) == 1  # one line when the pair's cool-down starts
        assert all(PASSWORDS["bob"] not in r.getMessage() and "guess" not in r.getMessage() for r in warnings)
    # the module's server has its own limiter: bob still logs in there
    assert served.ok("ping", user="bob")["status"] == "ok"


def test_user_commands_of_the_cli(served, tmp_path):
    from musicindex.localworker import settings_env
    from musicindex.users import UserService
    from tests.conftest import run_cli

    def users() -> UserService:  # a service of its own each time: no login looked up a moment ago is reused
        return UserService(served.index.db, served.index.settings)

    env = settings_env(served.index.settings)
    added = run_cli("user", "add", "Carol", "--password-stdin", env=env, input="carol-Pass-9\n")
    assert added.returncode == 0, added.stderr
    assert "carol-Pass-9" not in added.stdout + added.stderr  # never echoed
    assert users().authenticate_password("carol", "carol-Pass-9") is not None
    again = run_cli("user", "add", "CAROL", "--password-stdin", env=env, input="x\n")
    assert again.returncode == 2 and "exists" in again.stderr
    bad = run_cli("user", "add", "bad:name", "--password-stdin", env=env, input="x\n")
    assert bad.returncode == 2 and "':'" in bad.stderr
    listed = run_cli("user", "list", "--json", env=env)
    assert "Carol" in listed.stdout and "local listener" not in listed.stdout and "carol-Pass" not in listed.stdout
    changed = run_cli("user", "passwd", "carol", "--password-stdin", env=env, input="new-Pass-10\n")
    assert changed.returncode == 0 and "new-Pass-10" not in changed.stdout + changed.stderr
    assert users().authenticate_password("carol", "new-Pass-10") is not None
    key = run_cli("user", "apikey", "carol", env=env)
    assert key.returncode == 0
    api_key = key.stdout.strip().splitlines()[0]
    assert users().authenticate_api_key(api_key).name == "Carol"
    with served.index.db.engine.connect() as conn:
        from sqlalchemy import text

        stored = conn.execute(text("SELECT key_hash FROM api_keys ORDER BY id DESC LIMIT 1")).scalar_one()
        secret = conn.execute(text("SELECT password_enc FROM users WHERE name = 'Carol'")).scalar_one()
    assert stored == hashlib.sha256(api_key.encode()).hexdigest() and b"new-Pass-10" not in bytes(secret)
    missing = run_cli("user", "passwd", "nobody", "--password-stdin", env=env, input="x\n")
    assert missing.returncode == 6 and "no user named" in missing.stderr
    removed = run_cli("user", "remove", "carol", env=env)
    assert removed.returncode == 0 and users().authenticate_api_key(api_key) is None


def test_the_demo_makes_a_demo_account_and_says_how_to_use_it(index):
    import re

    from rich.console import Console

    from musicindex.cli.demo import _demo_user

    for _ in range(2):  # a second demo run gives the account a new password
        out = io.StringIO()
        _demo_user(Console(file=out, width=400), index)
        text = out.getvalue()
        password = re.search(r"password (\S+) \(shown once", text).group(1)
        assert index.users.authenticate_password("demo", password) is not None
        assert "http://127.0.0.1:8765" in text and "docs/subsonic.md" in text
    assert [u.name for u in index.users.list_users()] == ["demo"]


def test_system_media_and_info_endpoints_through_py_opensonic(served, client):
    import asyncio

    assert client.get_license()["license"]["valid"] is True
    assert {e.name for e in client.get_open_subsonic_extensions()} >= {"sonicSimilarity", "formPost"}
    assert client.get_scan_status().count == 9
    song = client.search3("wesnoth").song[0]
    assert client.get_album_info(song.album_id) is not None
    cover = client.get_cover_art(song.cover_art, size=48)
    assert cover.status == 200 and cover.headers["Content-Type"].startswith("image/")
    stream = client.stream(song.id)  # py-opensonic POSTs its form; an aiohttp response read on its own loop
    body = asyncio.run_coroutine_threadsafe(stream.read(), client._loop).result()
    assert stream.status == 200 and body == (served.root / "jazz" / "jazz.00001.ogg").read_bytes()
    download = client.download(song.id)
    assert download.headers["Content-Disposition"].startswith("attachment")
    asyncio.run_coroutine_threadsafe(download.read(), client._loop).result()


def test_too_many_parameters_are_refused_and_the_server_still_answers(served):
    """(The table of bad Subsonic input is ``SUBSONIC_ROWS`` in ``tests/test_hostile_inputs.py``.)"""
    base = [("u", "alice"), ("p", PASSWORDS["alice"]), ("v", "1.16.1"), ("c", "hostile"), ("f", "json")]
    body = "&".join(["id=tr-1"] * 3000 + [f"{k}={v}" for k, v in base]).encode()
    many = served.raw("star", method="POST", body=body, headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert b'status="failed"' in many.body and b'<error code="0"' in many.body  # XML: the body named f=json
    assert served.raw("ping", base).json()["status"] == "ok"
