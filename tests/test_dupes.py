"""The fingerprint index against the real PostgreSQL: a new file finds the stored copies of its recording through
the index (never all pairs), is verified, and finds nothing else; keys are replaced and deleted with their track;
a track that cannot be fingerprinted keeps its reason."""

from __future__ import annotations

import numpy as np
import pytest
from sqlalchemy import text

from musicindex.audio import fingerprint as F
from musicindex.dupes import store
from tests.unit.test_fingerprint import SR, fp_of, song


@pytest.fixture(scope="module")
def audio() -> dict[str, np.ndarray]:
    base = {f"song{k}": song(10 + k, seconds=95.0) for k in range(5)}
    base["song0-cut"] = base["song0"][int(4.4 * SR) :] * 0.5  # trimmed start, -6 dB
    base["song1-noisy"] = base["song1"] + 0.02 * np.random.default_rng(1).standard_normal(base["song1"].size).astype(
        np.float32
    )
    return base


@pytest.fixture(scope="module")
def prints(audio) -> dict[str, F.Fingerprint]:
    return {name: fp_of(y) for name, y in audio.items()}


def _tracks(session, names) -> dict[str, int]:
    ids = {}
    for name in names:
        ids[name] = session.execute(
            text("INSERT INTO tracks (path, status) VALUES (:p, 'indexed') RETURNING id"), {"p": f"/music/{name}.flac"}
        ).scalar_one()
    return ids


def test_a_new_file_finds_its_recording_through_the_index(fresh_db, prints):
    with fresh_db.session() as s:
        ids = _tracks(s, prints)
        for name in ("song0", "song1", "song2", "song3", "song4"):
            assert store.store(s, ids[name], prints[name]) > 50
    with fresh_db.session() as s:
        found = store.find_recordings(s, prints["song0-cut"], exclude=[ids["song0-cut"]])
        assert [c.track_id for c in found if c.same] == [ids["song0"]]
        best = found[0]
        assert best.votes >= store.MIN_VOTES
        assert best.match.offset == pytest.approx(4.4, abs=0.1)  # the stored track's time minus the new one's
        assert [c.track_id for c in store.find_recordings(s, prints["song1-noisy"]) if c.same] == [ids["song1"]]
        for name in ("song2", "song3"):  # a stored track finds itself and nothing else
            assert [c.track_id for c in store.find_recordings(s, prints[name]) if c.same] == [ids[name]]
            assert not any(c.same for c in store.find_recordings(s, prints[name], exclude=[ids[name]]))
        stats = store.key_stats(s)
        assert stats["fingerprints"] == 5 and stats["keys"] > 250


def test_keys_are_replaced_removed_and_deleted_with_the_track(fresh_db, prints):
    with fresh_db.session() as s:
        ids = _tracks(s, ["a", "b"])
        n = store.store(s, ids["a"], prints["song2"])
        assert store.store(s, ids["a"], prints["song2"]) == n  # storing again replaces, never doubles
        assert s.execute(text("SELECT count(*) FROM fingerprint_keys")).scalar_one() == n
        store.store(s, ids["b"], prints["song3"])
    with fresh_db.session() as s:
        assert [c.track_id for c in store.find_recordings(s, prints["song2"]) if c.same] == [ids["a"]]
        s.execute(text("DELETE FROM tracks WHERE id = :i"), {"i": ids["a"]})  # a deleted file leaves: cascade
        assert not any(c.same for c in store.find_recordings(s, prints["song2"]))
        assert s.execute(text("SELECT count(*) FROM track_fingerprints")).scalar_one() == 1
        store.remove(s, [ids["b"]])
        assert s.execute(text("SELECT count(*) FROM fingerprint_keys")).scalar_one() == 0


def test_a_track_that_cannot_be_fingerprinted_keeps_its_reason(fresh_db, prints):
    with fresh_db.session() as s:
        ids = _tracks(s, ["jingle", "song"])
        reason = "too short to fingerprint: 6.0 s (at least 15 s)"
        assert store.store(s, ids["jingle"], None, reason) == 0
        store.store(s, ids["song"], prints["song4"])
        rows = s.execute(text("SELECT track_id, data IS NULL, error FROM track_fingerprints ORDER BY track_id")).all()
        assert rows == [(ids["jingle"], True, reason), (ids["song"], False, None)]
        assert set(store.load(s, [ids["jingle"], ids["song"]])) == {ids["song"]}
        with pytest.raises(ValueError, match="a fingerprint or an error"):
            store.store(s, ids["song"], prints["song4"], "both")


def test_two_copies_written_at_once_by_two_workers_still_find_each_other(fresh_db, prints):
    """The fingerprint stage's write holds the index's advisory lock until its batch commits: a second batch
    (another worker) waits for it, then its lookup sees the first copy. Without the lock the second lookup would
    run at once and find nothing (the first copy is not committed yet)."""
    import threading
    import time

    from musicindex.dupes import links

    with fresh_db.session() as s:
        ids = _tracks(s, ["song0", "song0-cut"])
    first = fresh_db.sessions()  # a batch transaction left open
    links.lock(first)
    links.index_track(first, ids["song0"], links.TrackPrint(prints["song0"], None, None, None, 95.0))
    found: list = []

    def second_worker() -> None:
        with fresh_db.session() as s:
            links.lock(s)
            found.extend(links.index_track(s, ids["song0-cut"], links.TrackPrint(prints["song0-cut"], None, None,
                                                                                    None, 90.6)))  # fmt: skip

    t = threading.Thread(target=second_worker)
    t.start()
    time.sleep(1.0)  # the second batch is waiting for the lock (or, without it, done already)
    first.commit()
    first.close()
    t.join(60)
    assert [(x.kind, {x.a, x.b}) for x in found] == [("same recording", set(ids.values()))]


def test_the_same_song_check_reads_the_musicnn_embeddings_when_both_have_one(fresh_db, prints):
    """Same title and artist, close durations: a version of one song, unless their musicnn embeddings (the active
    version's) say the audio is another song (cosine under 0.6)."""
    from musicindex.dupes import links

    with fresh_db.session() as s:
        ids = _tracks(s, ["album", "live", "other"])
        for name, title in (("album", "Blue Sky"), ("live", "Blue Sky (Live)"), ("other", "Blue Sky")):
            s.execute(
                text("UPDATE tracks SET title = :x, artist = 'The Band' WHERE id = :t"), {"x": title, "t": ids[name]}
            )
        s.execute(text("INSERT INTO model_versions (id, kind, state, params) VALUES (7, 'musicnn', 'active', '{}')"))
        for name, vec in (("album", "[1, 0.2, 0]"), ("live", "[0.9, 0.3, 0.1]"), ("other", "[0, 0.1, 1]")):
            s.execute(text("INSERT INTO embeddings VALUES (7, :t, 'musicnn', CAST(:v AS vector))"),
                      {"t": ids[name], "v": vec})  # fmt: skip
        links.lock(s)
        links.index_track(s, ids["album"], links.TrackPrint(None, "too short", "Blue Sky", "The Band", 200.0))
        made = links.index_track(s, ids["live"], links.TrackPrint(None, "too short", "Blue Sky (Live)", "The Band",
                                                                   230.0))  # fmt: skip
        assert [(x.kind, {x.a, x.b}) for x in made] == [("same song", {ids["album"], ids["live"]})]
        assert "sound" in made[0].why
        other = links.index_track(s, ids["other"], links.TrackPrint(None, "too short", "Blue Sky", "The Band", 210.0))
        assert other == []  # the title says one song, the audio another
