"""The library model maintained by ingestion: artists and albums with stable ids, counters, covers, search text."""

from __future__ import annotations

import os
import shutil

from sqlalchemy import text

from musicindex import ingest, textnorm
from musicindex.ingest.library import TAGS_VERSION
from musicindex.sample.library import cover_image, write_audio, write_tags
from musicindex.sample.synth import synthesize


def _song(path, *, title=None, artist=None, album=None, albumartist=None, track=None, disc=None, picture=None,
          genre="rock", seconds=4.0, seed=0):  # fmt: skip
    path.parent.mkdir(parents=True, exist_ok=True)
    write_audio(path, synthesize(genre, seconds, 22050, seed), 22050)
    if title is not None:
        write_tags(path, title=title, artist=artist or "", album=album or "", year=2001, genre=genre, track=track,
                   albumartist=albumartist, disc=disc, picture=picture)  # fmt: skip
    return path


def _ingest(index, root):
    reg = ingest.register(index.db, [root])
    ingest.process_tracks(index.db, reg.queued_ids)
    return reg


def _rows(index, sql, **params):
    with index.db.engine.connect() as conn:
        return [tuple(r) for r in conn.execute(text(sql), params)]


def test_tracks_get_artists_and_albums_with_counters_and_covers(index, tmp_path):
    root = tmp_path / "music"
    picture = cover_image("Blue Train", seed=3)
    _song(root / "a" / "1.flac", title="One", artist="Coltrane", album="Blue Train", track=1, picture=picture)
    _song(root / "a" / "2.flac", title="Two", artist="Lee Morgan", albumartist="Coltrane", album="Blue Train", track=2)
    _song(root / "b" / "1.ogg", title="Solo", artist="The Beatles", album="Help", track=1, genre="reggae")
    (root / "b" / "Folder.JPG").write_bytes(cover_image("Help", seed=4))
    _song(root / "Artist X" / "Untagged" / "x1.wav", seed=1)
    _song(root / "Artist X" / "Untagged" / "x2.wav", seed=2)
    _song(root / "Other" / "x.wav", seed=5)
    _ingest(index, root)

    albums = _rows(
        index,
        "SELECT al.name, ar.name, al.song_count, al.folder IS NOT NULL, al.cover_kind, round(al.duration) "
        "FROM albums al JOIN artists ar ON ar.id = al.artist_id ORDER BY al.name",
    )
    assert albums == [
        ("Blue Train", "Coltrane", 2, False, "embedded", 8),  # album artist groups both tracks
        ("Help", "The Beatles", 1, False, "file", 4),  # Folder.JPG beside it (any case)
        ("Other", "Other", 1, True, None, 4),  # a folder at the root: named after itself
        ("Untagged", "Artist X", 2, True, None, 8),  # no tags: the folder's name, the artist from the folder above
    ]
    # a track's own artist is an artist row too; the sort key leaves out the article
    assert _rows(index, "SELECT sort_key FROM artists WHERE name = 'The Beatles'") == [("beatles",)]
    tracks = _rows(index, "SELECT t.title, ar.name, t.track_no, t.has_picture, t.tags_version, t.bit_rate > 0 "
                          "FROM tracks t JOIN artists ar ON ar.id = t.artist_id WHERE t.album = 'Blue Train' "
                          "ORDER BY t.track_no")  # fmt: skip
    assert tracks == [
        ("One", "Coltrane", 1, True, TAGS_VERSION, True),
        ("Two", "Lee Morgan", 2, False, TAGS_VERSION, True),
    ]
    # the search text is folded and its trigrams are indexed
    ((stext, grams),) = _rows(index, "SELECT search_text, search_grams FROM tracks WHERE title = 'Solo'")
    assert stext == "solo the beatles help reggae b" and set(textnorm.grams("beatles")) <= set(grams)


def test_a_retagged_or_moved_file_keeps_its_track_id_and_albums_their_ids(index, tmp_path):
    root = tmp_path / "music"
    song = _song(root / "a" / "1.flac", title="One", artist="Ana", album="First", track=1)
    _song(root / "a" / "2.flac", title="Two", artist="Ana", album="First", track=2, seed=1)
    _ingest(index, root)
    ((tid, first_album),) = _rows(index, "SELECT id, album_id FROM tracks WHERE title = 'One'")
    # re-tagged: same track, another album; the first album keeps its id and one song
    write_tags(song, title="One", artist="Ana", album="Second", year=2001, genre="rock", track=1)
    _ingest(index, root)
    ((tid2, second_album),) = _rows(index, "SELECT id, album_id FROM tracks WHERE title = 'One'")
    assert tid2 == tid and second_album != first_album
    assert _rows(index, "SELECT name, song_count FROM albums ORDER BY name") == [("First", 1), ("Second", 1)]
    # tagged back: the first album, with its old id
    write_tags(song, title="One", artist="Ana", album="First", year=2001, genre="rock", track=1)
    _ingest(index, root)
    assert _rows(index, "SELECT album_id FROM tracks WHERE id = :t", t=tid) == [(first_album,)]
    assert _rows(index, "SELECT name, song_count FROM albums ORDER BY name") == [("First", 2), ("Second", 0)]
    # moved to another folder: the same track id (the content is the same), still in its album
    (root / "moved").mkdir()
    shutil.move(song, root / "moved" / "1.flac")
    _ingest(index, root)
    assert _rows(index, "SELECT id, album_id, status FROM tracks WHERE path LIKE '%/moved/1.flac'") == [
        (tid, first_album, "indexed")
    ]


def test_a_missing_file_leaves_its_album_counters(index, tmp_path):
    root = tmp_path / "music"
    gone = _song(root / "a" / "1.ogg", title="One", artist="Ana", album="First", track=1)
    _song(root / "a" / "2.ogg", title="Two", artist="Ana", album="First", track=2, seed=1)
    _ingest(index, root)
    assert _rows(index, "SELECT song_count FROM albums") == [(2,)]
    os.unlink(gone)
    _ingest(index, root)
    assert _rows(index, "SELECT song_count FROM albums") == [(1,)]


def test_tracks_read_by_an_older_tag_reader_are_read_again_without_audio_work(index, tmp_path):
    root = tmp_path / "music"
    _song(root / "a" / "1.mp3", title="One", artist="Ana", album="First", track=7)
    _ingest(index, root)
    with index.db.engine.begin() as conn:  # as a library indexed before the library model existed
        conn.execute(
            text(
                "UPDATE tracks SET tags_version = NULL, track_no = NULL, album_id = NULL, artist_id = NULL, "
                "stage_versions = stage_versions - 'tags'"
            )
        )
        computed = conn.execute(text("SELECT computed_at FROM track_features")).scalar_one()
    reg = ingest.register(index.db, [root])
    assert reg.changed == 1  # queued as outdated
    (outcome,) = ingest.process_tracks(index.db, reg.queued_ids)
    assert outcome.status == "indexed" and not outcome.did_audio_work
    assert _rows(index, "SELECT track_no, tags_version, album_id IS NOT NULL FROM tracks") == [(7, TAGS_VERSION, True)]
    with index.db.engine.connect() as conn:  # the features were not computed again
        assert conn.execute(text("SELECT computed_at FROM track_features")).scalar_one() == computed


def test_search_finds_words_inside_names_whatever_their_case_and_accents(index, tmp_path):
    root = tmp_path / "music"
    _song(root / "w" / "1.ogg", title="Battle of Wesnoth", artist="Frogatto Ensemble", album="Heir", track=1)
    _song(root / "w" / "2.ogg", title="Calm Night", artist="Café Quartet", album="Heir", track=2, seed=1)
    _ingest(index, root)
    ids = {t: i for i, t in _rows(index, "SELECT id, title FROM tracks")}
    for query, title in (("wésnoth", "Battle of Wesnoth"), ("NOTH", "Battle of Wesnoth"), ("cafe", "Calm Night"),
                         ("quartet calm", "Calm Night"), ("ogatt", "Battle of Wesnoth")):  # fmt: skip
        assert index.search_tracks(query).ids == [ids[title]], query
    assert index.search_tracks("heir").ids[:2] and len(index.search_tracks("heir")) == 2
    assert index.search_tracks("cafe", field="title").ids == []  # field restricted
    # a track whose search text was not made yet (read before the library existed) is still found
    with index.db.engine.begin() as conn:
        conn.execute(text("UPDATE tracks SET search_text = NULL, search_grams = NULL WHERE title = 'Calm Night'"))
    assert index.search_tracks("calm").ids == [ids["Calm Night"]]
