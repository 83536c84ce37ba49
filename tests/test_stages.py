"""Analysis as stages: a stage added to the list runs in the one pass with its own version, reads the audio it asks
for from the track's one decode (the window, or the whole track at another rate), the open file, or other stages'
outputs; a version bump re-runs that stage only (and the stages it reads)."""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf
from sqlalchemy import text

from musicindex import audio, ingest
from musicindex.audio.decode import read_audio
from musicindex.audio.window import AnalysisWindow
from musicindex.errors import AudioError
from musicindex.ingest import stages
from musicindex.ingest.stages import Audio, Needs, Stage, TrackWork
from musicindex.vocab import FEATURE_NAMES, SPAN_TRACK, SPAN_WINDOW

RUNS: Counter[str] = Counter()
SEEN: dict[str, dict[int, Any]] = {}


class Fingerprint(Stage):
    """Whole track, low rate (as an audio fingerprint would read it)."""

    name, version = "test_fingerprint", 1
    needs = Needs(audio=(Audio(11025, SPAN_TRACK),))

    def analyse(self, work: TrackWork) -> Any:
        RUNS[self.name] += 1
        y = work.audio.get(Audio(11025, SPAN_TRACK))
        SEEN.setdefault(self.name, {})[work.id] = len(y)
        return len(y)


class Lyrics(Stage):
    """The open file only: a sidecar .lrc beside it (no audio)."""

    name, version = "test_lyrics", 1

    def analyse(self, work: TrackWork) -> Any:
        RUNS[self.name] += 1
        side = os.path.splitext(work.fs)[0] + ".lrc"
        found = Path(side).read_text(encoding="utf-8") if os.path.exists(side) else None
        SEEN.setdefault(self.name, {})[work.id] = found
        return found


class Mood(Stage):
    """Reads other stages' outputs (the features, the fingerprint) and the window at 16 kHz."""

    name, version = "test_mood", 1
    needs = Needs(audio=(Audio(16000),), stages=("features", "test_fingerprint"))

    def analyse(self, work: TrackWork) -> Any:
        RUNS[self.name] += 1
        energy = float(work.outputs["features"][2])  # rms_mean
        SEEN.setdefault(self.name, {})[work.id] = (energy, work.outputs["test_fingerprint"])
        return energy


@pytest.fixture
def extra_stages(monkeypatch):
    RUNS.clear()
    SEEN.clear()
    stage_list = (*stages.STAGES, Fingerprint(), Lyrics(), Mood())  # a stage is one line in the list
    monkeypatch.setattr(stages, "STAGES", stage_list)
    decodes: Counter[str] = Counter()
    real = audio.read_audio

    def counted(path, *args, **kwargs):
        decodes[os.path.basename(os.fsdecode(path))] += 1
        return real(path, *args, **kwargs)

    monkeypatch.setattr(audio, "read_audio", counted)
    return decodes


def _write(path, seconds: float, sr: int = 44100, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    y = 0.3 * np.sin(2 * np.pi * (220 + 40 * seed) * t) + 0.05 * rng.standard_normal(t.size)
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, np.stack([y, y], axis=1).astype(np.float32), sr)


def _records(db) -> dict[str, dict[str, int]]:
    with db.engine.connect() as conn:
        return {os.path.basename(p): r for p, r in conn.execute(text("SELECT path, stage_versions FROM tracks"))}


def test_new_stages_run_in_the_one_pass_and_only_outdated_ones_run_again(index, tmp_path, extra_stages, monkeypatch):
    root = tmp_path / "lib"
    _write(root / "long.wav", 70.0, seed=1)  # longer than the 30 s window from 30 s
    _write(root / "short.wav", 8.0, seed=2)
    (root / "short.lrc").write_text("[00:01.00] la la", encoding="utf-8")
    reg = ingest.register(index.db, [root])
    outcomes = ingest.process_tracks(index.db, reg.queued_ids)
    assert [o.status for o in outcomes] == ["indexed", "indexed"]
    ids = dict(zip(["long.wav", "short.wav"], sorted(reg.queued_ids), strict=True))
    assert extra_stages == {"long.wav": 1, "short.wav": 1}  # one decode per track for every stage
    assert RUNS == {"test_fingerprint": 2, "test_lyrics": 2, "test_mood": 2}
    # the whole track at 11 025 Hz, not the window
    assert SEEN["test_fingerprint"][ids["long.wav"]] == pytest.approx(70.0 * 11025, abs=2)
    assert SEEN["test_fingerprint"][ids["short.wav"]] == pytest.approx(8.0 * 11025, abs=2)
    assert SEEN["test_lyrics"] == {ids["long.wav"]: None, ids["short.wav"]: "[00:01.00] la la"}
    assert SEEN["test_mood"][ids["short.wav"]][1] == SEEN["test_fingerprint"][ids["short.wav"]]
    records = _records(index.db)
    expected = {s.name: s.version for s in stages.declared() if s.required}
    assert all(r == expected for r in records.values()), records  # no embedding model ran in this process

    # a newer lyrics reader: that stage alone runs again, with no audio work
    assert ingest.register(index.db, [root]).queued_ids == []
    monkeypatch.setattr(Lyrics, "version", 2)
    RUNS.clear()
    extra_stages.clear()
    again = ingest.register(index.db, [root])
    assert sorted(again.queued_ids) == sorted(ids.values())
    outcomes = ingest.process_tracks(index.db, again.queued_ids)
    assert RUNS == {"test_lyrics": 2} and not extra_stages and not any(o.did_audio_work for o in outcomes)
    assert all(r["test_lyrics"] == 2 for r in _records(index.db).values())

    # a newer mood: it runs with the stages it reads (features, fingerprint), over one decode; not the others
    monkeypatch.setattr(Mood, "version", 2)
    RUNS.clear()
    with index.db.engine.connect() as conn:
        computed = dict(conn.execute(text("SELECT track_id, computed_at FROM spectrograms")).all())
    outcomes = ingest.process_tracks(index.db, ingest.register(index.db, [root]).queued_ids)
    assert RUNS == {"test_mood": 2, "test_fingerprint": 2} and extra_stages == {"long.wav": 1, "short.wav": 1}
    with index.db.engine.connect() as conn:
        assert dict(conn.execute(text("SELECT track_id, computed_at FROM spectrograms")).all()) == computed
    assert all(r["test_mood"] == 2 and r["spectrogram"] == 1 for r in _records(index.db).values())


def test_a_failing_stage_fails_the_track_with_its_reason(index, tmp_path, monkeypatch):
    class Picky(Stage):
        name, version = "test_picky", 1

        def analyse(self, work: TrackWork) -> Any:
            if work.path.endswith("b.wav"):
                raise AudioError("picky: no b files")
            return None

    monkeypatch.setattr(stages, "STAGES", (*stages.STAGES, Picky()))
    root = tmp_path / "lib"
    _write(root / "a.wav", 3.0, seed=1)
    _write(root / "b.wav", 3.0, seed=2)
    outcomes = ingest.process_tracks(index.db, ingest.register(index.db, [root]).queued_ids)
    assert [(o.status, o.reason) for o in outcomes] == [("indexed", None), ("failed", "picky: no b files")]


@pytest.mark.parametrize("fmt", ["WAV", "OGG", "MP3"])
def test_one_decode_for_the_window_and_the_whole_track(tmp_path, fmt):
    """The window cut from a whole-track decode is sample for sample the window decoded alone (MP3 included, whose
    seek needs a lead-in); the track comes at every rate asked for."""
    path = tmp_path / f"x.{fmt.lower()}"
    sr = 44100
    t = np.arange(int(75 * sr)) / sr
    y = (0.3 * np.sin(2 * np.pi * 330 * t) * (1 + 0.5 * np.sin(2 * np.pi * 0.5 * t))).astype(np.float32)
    with sf.SoundFile(path, "w", sr, 2, format=fmt) as out:  # in 1 s blocks: one large Vorbis write crashes libsndfile
        for i in range(0, len(y), sr):
            out.write(np.stack([y[i : i + sr], 0.5 * y[i : i + sr]], axis=1))
    window = AnalysisWindow()
    alone, info = read_audio(path, window, [(SPAN_WINDOW, 22050), (SPAN_WINDOW, 16000)])
    both, info2 = read_audio(path, window, [(SPAN_WINDOW, 22050), (SPAN_WINDOW, 16000), (SPAN_TRACK, 11025),
                                            (SPAN_TRACK, sr)])  # fmt: skip
    assert info == info2
    for rate in (22050, 16000):
        np.testing.assert_array_equal(both[(SPAN_WINDOW, rate)], alone[(SPAN_WINDOW, rate)])
    assert both[(SPAN_TRACK, sr)].shape[0] == info.frames
    assert abs(both[(SPAN_TRACK, 11025)].shape[0] - info.frames / 4) <= 2
    first, _ = read_audio(path, window, [(SPAN_TRACK, 11025)], track_seconds=10.0)
    assert abs(first[(SPAN_TRACK, 11025)].shape[0] - 10 * 11025) <= 2


def test_a_failing_batch_step_leaves_its_stage_outdated_and_the_tracks_indexed(index, tmp_path, monkeypatch):
    """A network failing over a batch (the embedding stages' ``complete``): the tracks are indexed without that
    stage's output, recorded as version 0, so the next ingest runs that stage again (and only it)."""

    class Network(Stage):
        name, version = "test_network", 1
        broken = True

        def analyse(self, work: TrackWork) -> Any:
            return work.id

        def complete(self, results) -> None:
            if self.broken:
                raise RuntimeError("the network is down")
            for r in results:
                r.outputs[self.name] = -r.outputs[self.name]

    net = Network()
    monkeypatch.setattr(stages, "STAGES", (*stages.STAGES, net))
    root = tmp_path / "lib"
    _write(root / "a.wav", 3.0, seed=1)
    outcomes = ingest.process_tracks(index.db, ingest.register(index.db, [root]).queued_ids)
    assert [o.status for o in outcomes] == ["indexed"]
    assert _records(index.db)["a.wav"]["test_network"] == 0
    net.broken = False
    again = ingest.register(index.db, [root])
    assert again.queued_ids == [outcomes[0].track_id]
    assert not ingest.process_tracks(index.db, again.queued_ids)[0].did_audio_work  # it reads no audio
    assert _records(index.db)["a.wav"]["test_network"] == 1


def test_migration_0009_records_what_the_tables_hold(empty_db):
    """An index of revision 0008: each indexed track's record says which stages its stored values came from."""
    empty_db.upgrade("0008")
    vec = "[" + ",".join(["0.5"] * 43) + "]"
    cols = ", ".join(FEATURE_NAMES)
    with empty_db.engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO tracks (id, path, status, tags_version, duration) VALUES (1, '/a.ogg', 'indexed', 1, 30), "
                "(2, '/b.ogg', 'indexed', NULL, 30), (3, '/c.ogg', 'pending', NULL, NULL)"
            )
        )
        conn.execute(
            text(f"INSERT INTO track_features (track_id, version, vec, {cols}) "
                 f"SELECT id, 1, CAST(:v AS vector), {', '.join(['0.5'] * 43)} FROM tracks WHERE id IN (1, 2)"),
            {"v": vec},
        )  # fmt: skip
        conn.execute(
            text("INSERT INTO spectrograms (track_id, version, n_mels, n_frames, data) VALUES (1, 1, 96, 1, '\\x00')")
        )
        conn.execute(
            text(
                "INSERT INTO model_versions (id, kind, state, params) VALUES "
                "(7, 'musicnn', 'active', '{\"model\": \"MSD_musicnn\", \"extractor_version\": 1}')"
            )
        )
        conn.execute(text("INSERT INTO embeddings VALUES (7, 1, 'musicnn', '[1, 2]')"))
    empty_db.upgrade()
    with empty_db.engine.connect() as conn:
        records = dict(conn.execute(text("SELECT id, stage_versions FROM tracks ORDER BY id")).all())
    assert records == {
        1: {"tags": 1, "decode": 1, "features": 1, "spectrogram": 1, "embedding.musicnn": 1},
        2: {"decode": 1, "features": 1},  # no tags record: read again; no spectrogram: computed again
        3: {},
    }
    # and this code agrees: track 1 is up to date, track 2 is outdated (tags, spectrogram); the stages added after
    # 0009 (descriptors 0013, fingerprint 0014) have no record here: the first ingest after the upgrade runs them
    before = [s for s in stages.declared() if s.name not in ("descriptors", "fingerprint")]
    assert not stages.outdated(before, records[1]) and stages.outdated(before, records[2])
    assert stages.outdated(stages.declared(), records[1])
