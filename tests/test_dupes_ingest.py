"""Duplicates wired into ingestion (issue 31 phase 2): the ``fingerprint`` stage runs in the one pass, a new copy
joins its recording's group when it is ingested (re-encoded, gain-changed, trimmed), a version joins the song's
group, a missing file leaves its groups and comes back, a tag change regroups, and a file that cannot be
fingerprinted is indexed with its reason and stays ungrouped. Real PostgreSQL, real files (synthesized)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from mutagen.flac import FLAC
from sqlalchemy import text

from musicindex import ingest
from musicindex.dupes import links
from musicindex.vocab import SAME_RECORDING, SAME_SONG
from tests.unit.test_fingerprint import SR, song

SECONDS = 95.0


@pytest.fixture(scope="module")
def songs() -> dict[int, np.ndarray]:
    return {k: song(40 + k, seconds=SECONDS) for k in range(3)}


def write(path: Path, y: np.ndarray, *, title: str | None = None, artist: str | None = None, album: str = "",
          **kw) -> Path:  # fmt: skip
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, y, SR, **kw)
    if title is not None:
        tags = FLAC(path)
        tags["title"], tags["artist"] = title, artist or ""
        if album:
            tags["album"] = album
        tags.save()
    return path


def run(db, root: Path) -> dict[str, str]:
    """Register and analyse ``root``; the outcome per file name."""
    reg = ingest.register(db, [root])
    ingest.process_tracks(db, reg.queued_ids)
    with db.engine.connect() as c:
        return {Path(p).name: st for p, st in c.execute(text("SELECT path, status FROM tracks"))}


def groups(db, kind=None) -> list[tuple[str, set[str]]]:
    with db.session() as s:
        names = {i: Path(p).name for i, p in s.execute(text("SELECT id, path FROM tracks"))}
        return sorted((g.kind, {names[t] for t in g.track_ids}) for g in links.load_groups(s, kind))


def test_copies_and_versions_join_their_groups_as_they_are_ingested(index, tmp_path, songs):
    db, root = index.db, tmp_path / "lib"
    write(root / "a.flac", songs[0], title="Blue Sky (Remastered 2011)", artist="The Band")
    write(root / "b.flac", songs[1], title="Green Grass", artist="The Band")
    write(root / "jingle.wav", songs[2][: 10 * SR])
    assert set(run(db, root).values()) == {"indexed"}
    assert groups(db) == []
    with db.engine.connect() as c:
        sql = "SELECT t.path, f.error FROM track_fingerprints f JOIN tracks t ON t.id = f.track_id"
        reasons = {row.path: row.error for row in c.execute(text(sql))}
        records = [r["fingerprint"] for (r,) in c.execute(text("SELECT stage_versions FROM tracks"))]
    assert reasons[str(root / "jingle.wav")].startswith("too short to fingerprint")
    assert reasons[str(root / "a.flac")] is None and records == [1, 1, 1]
    assert index.track_details(str(root / "jingle.wav")).notes["fingerprint"].startswith("not fingerprinted: too short")

    # copies arrive: a lossy re-encode at another rate in mono, a trimmed and -6 dB copy; and a live version
    write(root / "copies" / "a.mp3", songs[0], format="MP3")
    write(root / "copies" / "a-trim.wav", 0.5 * songs[0][int(3.3 * SR) :])
    write(root / "live.flac", songs[2], title="Blue Sky - Live", artist="The Band feat. Guest")
    assert set(run(db, root).values()) == {"indexed"}
    recording = {"a.flac", "a.mp3", "a-trim.wav"}
    assert groups(db) == [(SAME_RECORDING, recording), (SAME_SONG, recording | {"live.flac"})]
    assert groups(db, SAME_RECORDING) == [(SAME_RECORDING, recording)]

    # a copy's file goes: it leaves its groups; it comes back: it is in them again (no new lookup needed)
    moved = root / "copies" / "a.mp3"
    kept = moved.read_bytes()
    moved.unlink()
    run(db, root)
    assert groups(db, SAME_RECORDING) == [(SAME_RECORDING, {"a.flac", "a-trim.wav"})]
    moved.write_bytes(kept)
    run(db, root)
    assert groups(db, SAME_RECORDING) == [(SAME_RECORDING, recording)]

    # tags change: the other song of the band retitled as a version of Blue Sky joins the song group, and leaves
    tags = FLAC(root / "b.flac")
    tags["title"] = "Blue Sky (Radio Edit)"
    tags.save()
    run(db, root)
    assert (SAME_SONG, recording | {"live.flac", "b.flac"}) in groups(db)
    tags["title"] = "Green Grass"
    tags.save()
    run(db, root)
    assert groups(db, SAME_SONG) == [(SAME_SONG, recording | {"live.flac"})]

    # a deleted track's rows go with it
    with db.session() as s:
        s.execute(text("DELETE FROM tracks WHERE path = :p"), {"p": str(root / "a.flac")})
    assert groups(db, SAME_RECORDING) == [(SAME_RECORDING, {"a.mp3", "a-trim.wav"})]


def test_duplicates_through_the_api_the_cli_and_http(index, tmp_path, songs):
    """``index.duplicates()`` lists each group with its files' quality facts and the preferred file (lossless, else
    the higher bit rate); ``prefer_duplicate`` chooses another; the CLI, ``/api/duplicates`` and the page agree."""
    from fastapi.testclient import TestClient

    from musicindex.localworker import settings_env
    from musicindex.web.server import create_app
    from tests.conftest import run_cli

    db, root = index.db, tmp_path / "lib"
    write(root / "a.flac", songs[0], title="Blue Sky", artist="The Band")
    write(root / "a.mp3", songs[0], format="MP3")
    write(root / "b.wav", songs[1])
    run(db, root)
    (g,) = index.duplicates()
    files = {Path(t.path).name: t for t in g.tracks}
    assert g.kind == SAME_RECORDING and 0.5 <= g.confidence <= 1 and set(files) == {"a.flac", "a.mp3"}
    assert files["a.flac"].preferred and g.preferred == files["a.flac"].id and "lossless" in g.reason
    assert files["a.flac"].format == "FLAC" and files["a.mp3"].format == "MP3"
    assert files["a.mp3"].bit_rate and files["a.flac"].sample_rate == SR and files["a.mp3"].duration
    assert index.duplicates("song") == [] and index.duplicates("same recording")[0].track_ids == g.track_ids

    (chosen,) = index.prefer_duplicate(str(root / "a.mp3"))
    assert chosen.preferred == files["a.mp3"].id and chosen.reason == "chosen"
    assert "fingerprint" not in index.track_details(str(root / "b.wav")).notes

    env = settings_env(index.settings)
    res = run_cli("duplicates", "--kind", "recording", "--json", env=env)
    assert res.returncode == 0, res.stderr
    assert [x["preferred"] for x in json.loads(res.stdout)] == [files["a.mp3"].id]
    res = run_cli("prefer", str(files["a.flac"].id), env=env)
    assert res.returncode == 0 and f"preferred: {files['a.flac'].id} (chosen)" in res.stdout, res.stderr

    # an album holding one recording twice lists it once, by its preferred file; the other stays reachable
    write(root / "album" / "1.flac", songs[1], title="Green Grass", artist="The Band", album="Blue Album")
    write(root / "album" / "1-quiet.flac", 0.5 * songs[1], title="Green Grass", artist="The Band", album="Blue Album")
    run(db, root)
    with db.engine.connect() as c:
        album_id, quiet = c.execute(text("SELECT album_id, id FROM tracks WHERE path LIKE '%1-quiet.flac'")).one()
    first = [s.id for s in index.catalog.album(album_id).songs]
    assert len(first) == 1 and first != [quiet] and index.catalog.song(quiet).id == quiet
    index.prefer_duplicate(quiet)
    assert [s.id for s in index.catalog.album(album_id).songs] == [quiet]

    with TestClient(create_app(index), base_url="http://127.0.0.1") as client:
        body = client.get("/api/duplicates?kind=recording").json()
        assert (body[0]["kind"], body[0]["preferred"]) == (SAME_RECORDING, files["a.flac"].id)
        assert {t["path"] for t in body[0]["tracks"]} == {str(root / "a.flac"), str(root / "a.mp3")}
        assert client.get("/api/duplicates?kind=song").json() == [] and len(body) == 2
        html = client.get("/duplicates").text
        assert f'data-id="{files["a.mp3"].id}"' in html and 'class="play"' in html


def test_mixes_never_play_a_copy_of_the_seed_or_two_files_of_one_group(index, tmp_path, songs):
    """Similar, radio (recommend with a history), instant mixes and sonic paths: the seed's copies (re-encoded,
    gain-changed and trimmed) no longer come first, an answer holds one file per group, and
    ``allow_duplicates=True`` brings them back (the twin is then the nearest: the test can fail)."""
    from musicindex.vocab import TRACK

    db, root = index.db, tmp_path / "lib"
    others = {k: song(60 + k, seconds=SECONDS) for k in range(6)}
    write(root / "seed.flac", songs[0], title="Seed", artist="A")
    write(root / "copy.mp3", songs[0], format="MP3")
    write(root / "copy-trim.wav", 0.5 * songs[0][int(2.5 * SR) :])
    write(root / "copy-end.wav", songs[0][: -3 * SR])  # lossless, its end cut: the nearest twin by the features
    for k, y in others.items():
        write(root / f"o{k}.flac", y, title=f"Other {k}", artist=f"B{k}")
    run(db, root)
    with db.engine.connect() as c:
        ids = {Path(p).name: i for i, p in c.execute(text("SELECT id, path FROM tracks"))}
    seed, copies = ids["seed.flac"], {ids["copy.mp3"], ids["copy-trim.wav"], ids["copy-end.wav"]}
    group = {seed} | copies
    assert [set(g.track_ids) for g in index.duplicates()] == [group]

    with_twins = index.similar(seed, k=8, allow_duplicates=True, explain=False)
    assert with_twins.items[0].id == ids["copy-end.wav"] and copies <= {h.id for h in with_twins.items}
    assert not copies & {h.id for h in index.similar(seed, k=8, explain=False).items}

    radio = index.recommend([seed], history=[ids["o0.flac"]], k=8, explain=False)
    assert radio.items and not copies & {h.id for h in radio.items}
    mix = index.mixes.instant_mix(TRACK, seed)
    assert mix and not group & {s.id for s in mix}
    path = index.playlist(seed, ids["o1.flac"], n=6, explain=False)
    assert not copies & {h.id for h in path.items}

    # Subsonic's instant mix (getSimilarSongs): the same engine, over the protocol
    from fastapi.testclient import TestClient

    from musicindex.web.server import create_app

    index.users.add_user("alice", "alice-Secret-1")
    auth = {"u": "alice", "p": "alice-Secret-1", "v": "1.16.1", "c": "test", "f": "json"}
    with TestClient(create_app(index), base_url="http://127.0.0.1") as client:
        body = client.get("/rest/getSimilarSongs", params={**auth, "id": f"tr-{seed}", "count": 8}).json()
    played = {int(x["id"].removeprefix("tr-")) for x in body["subsonic-response"]["similarSongs"]["song"]}
    assert played and not group & played, body

    # seeded elsewhere: one file of the group at most
    everything = index.similar(ids["o2.flac"], k=8, explain=False)
    assert len(group & {h.id for h in everything.items}) == 1 and len(everything.items) == 6
    assert len(group & {h.id for h in index.similar(ids["o2.flac"], k=9, allow_duplicates=True).items}) == 4
    assert len(group & {s.id for s in index.mixes.instant_mix(TRACK, ids["o3.flac"])}) == 1

    # evaluation: a query's copies never count as its neighbours. The 4 files of the group are "rock", two others
    # "jazz"; k=3: a rock query has only the 2 jazz tracks left (precision 0), a jazz one 1 jazz track at most
    # (1/3): at most 1/9 in all, where the copies would count 1 for each rock query
    truth = {str(root / n): ("rock" if ids[n] in group else "jazz") for n in ids if ids[n] in group or n < "o2"}
    report = index.evaluate(k=3, labels=truth)
    assert any("4 files in 1 same-recording groups" in n for n in report.notes), report.notes
    (features,) = [s for s in report.spaces if s.space == "features"]
    assert features.queries == 6 and features.precision_at_10 <= 1 / 9 + 1e-9
