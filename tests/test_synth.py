"""Fast tests of the synthesized library (musicindex.sample.synth) and the hostile-file generators."""

from __future__ import annotations

import os

import librosa
import mutagen
import numpy as np
import pytest
import soundfile as sf

from musicindex.sample import badfiles
from musicindex.sample.library import FORMATS, generate_library
from musicindex.sample.styles import GENRES
from musicindex.sample.synth import synthesize

SR = 22050


# --- synthesize ---------------------------------------------------------------------


def test_genres_spec():
    assert len(GENRES) >= 6
    for name, style in GENRES.items():
        assert style.name == name
        lo, hi = style.tempo
        assert 40 <= lo <= hi <= 240


@pytest.mark.parametrize("genre", sorted(GENRES))
def test_shape_dtype_range(genre):
    y = synthesize(genre, duration=3.0, sr=SR, seed=1)
    assert y.dtype == np.float32 and y.shape == (3 * SR, 1)
    assert np.isfinite(y).all()
    peak = float(np.abs(y).max())
    assert 0.3 < peak <= 1.0
    assert float(np.sqrt(np.mean(y**2))) > 0.01  # not silent


def test_deterministic_for_seed():
    a = synthesize("jazz", 4.0, SR, seed=42)
    b = synthesize("jazz", 4.0, SR, seed=42)
    c = synthesize("jazz", 4.0, SR, seed=43)
    d = synthesize("rock", 4.0, SR, seed=42)
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)
    assert not np.array_equal(a[:, 0], d[:, 0])


def test_multichannel_and_sample_rate():
    y = synthesize("reggae", 2.0, 44100, seed=0, channels=2)
    assert y.shape == (88200, 2)
    assert not np.allclose(y[:, 0], y[:, 1])  # voices are panned
    y6 = synthesize("techno", 1.0, 48000, seed=0, channels=6)
    assert y6.shape == (48000, 6) and np.isfinite(y6).all()


def test_bad_arguments():
    with pytest.raises(ValueError):
        synthesize("polka", 1.0)
    with pytest.raises(ValueError):
        synthesize("rock", 0.0)


def _centroid_and_onsets(y: np.ndarray) -> tuple[float, float]:
    S = np.abs(librosa.stft(y, n_fft=2048, hop_length=512))
    freqs = librosa.fft_frequencies(sr=SR, n_fft=2048)
    cent = float(np.mean((freqs[:, None] * S).sum(0) / (S.sum(0) + 1e-9)))
    env = librosa.onset.onset_strength(S=librosa.amplitude_to_db(S), sr=SR)
    onsets = librosa.onset.onset_detect(onset_envelope=env, sr=SR)
    return cent, len(onsets) / (y.shape[0] / SR)


def test_styles_are_separable():
    """Spectral centroid and onset rate separate beatless ambient from techno and metal."""
    stats = {}
    for g in ("ambient", "techno", "metal", "classical"):
        vals = [_centroid_and_onsets(synthesize(g, 8.0, SR, seed=s)[:, 0]) for s in range(3)]
        stats[g] = np.array(vals)
    amb, tech, met, cla = (stats[g] for g in ("ambient", "techno", "metal", "classical"))
    # every techno clip is brighter than every ambient clip, by a clear margin
    assert tech[:, 0].min() > 1.5 * amb[:, 0].max()
    assert met[:, 0].min() > 1.3 * cla[:, 0].max()
    # metal/techno are far busier rhythmically than ambient
    assert tech[:, 1].mean() > 2.0 * amb[:, 1].mean()
    assert met[:, 1].mean() > 2.0 * amb[:, 1].mean()


def test_tempo_follows_spec():
    """The beat grid follows the genre's tempo range (onset autocorrelation peak)."""
    y = synthesize("techno", 12.0, SR, seed=3)[:, 0]
    tempo = float(librosa.feature.tempo(y=y, sr=SR)[0])
    lo, hi = GENRES["techno"].tempo
    assert lo - 4 <= tempo <= hi + 4 or lo - 4 <= tempo / 2 <= hi + 4 or lo - 4 <= tempo * 2 <= hi + 4


# --- files ---------------------------------------------------------------------------

ALL_FORMATS = ("wav", "flac", "ogg", "mp3", "aiff", "au")


def test_generate_library_all_formats(tmp_path):
    tracks = generate_library(
        tmp_path, per_genre=6, genres=["rock", "jazz"], duration=3.0, formats=ALL_FORMATS, seed=7, channels=2
    )
    assert len(tracks) == 12
    assert sorted(p.name for p in (tmp_path / "rock").iterdir()) == [
        f"rock.{i:05d}.{ext}" for i, ext in enumerate(ALL_FORMATS)
    ]
    for t in tracks:
        assert t.path.parent.name == t.genre and t.path.is_file()
        assert t.path.name.startswith(f"{t.genre}.") and t.path.suffix == "." + t.format
        info = sf.info(str(t.path))
        assert info.format == FORMATS[t.format][0]
        assert info.channels == 2 and info.samplerate == SR
        assert abs(info.duration - 3.0) < 0.05, (t.format, info.duration)
        data, _sr = sf.read(str(t.path), dtype="float32")
        assert data.shape[1] == 2 and abs(data.shape[0] - 3 * SR) < 0.05 * SR
        assert np.abs(data).max() > 0.1
        # tags
        f = mutagen.File(str(t.path))
        if t.format == "au":
            assert not t.tagged
            continue
        assert t.tagged and f is not None and f.tags is not None
        if t.format in ("flac", "ogg"):
            tags = {k: v[0] for k, v in f.tags.items()}
            got = (tags["title"], tags["artist"], tags["album"], tags["date"], tags["genre"])
        else:
            got = (
                str(f.tags["TIT2"]),
                str(f.tags["TPE1"]),
                str(f.tags["TALB"]),
                str(f.tags["TDRC"]),
                str(f.tags["TCON"]),
            )
        assert got == (t.title, t.artist, t.album, str(t.year), t.genre)
    artists = {t.artist for t in tracks if t.genre == "rock"}
    assert 2 <= len(artists) <= 4


def test_generate_library_layout_and_reuse(tmp_path):
    tracks = generate_library(tmp_path, per_genre=3, duration=1.0, formats=("wav", "au"))
    assert len(tracks) == 3 * len(GENRES)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(GENRES)
    assert not list(tmp_path.rglob(".*"))  # no temporary files left behind
    before = {t.path: os.stat(t.path).st_mtime_ns for t in tracks}
    again = generate_library(tmp_path, per_genre=3, duration=1.0, formats=("wav", "au"))
    assert [t.path for t in again] == [t.path for t in tracks]
    assert {t.path: os.stat(t.path).st_mtime_ns for t in again} == before  # untouched
    # a damaged file (different size) is rewritten
    victim = tracks[1].path  # an .au file: no tags, decided by size
    victim.write_bytes(b"junk")
    generate_library(tmp_path, per_genre=3, duration=1.0, formats=("wav", "au"))
    assert sf.info(str(victim)).duration == pytest.approx(1.0, abs=0.01)


def test_generate_library_without_tags(tmp_path):
    (t,) = generate_library(tmp_path, per_genre=1, genres=["hiphop"], duration=1.0, formats=("flac",), tags=False)
    assert not t.tagged
    f = mutagen.File(str(t.path))
    assert f.tags is None or "title" not in f.tags


def test_library_is_deterministic(tmp_path):
    a = generate_library(tmp_path / "a", per_genre=2, genres=["metal"], duration=1.0)
    b = generate_library(tmp_path / "b", per_genre=2, genres=["metal"], duration=1.0)
    for x, y in zip(a, b, strict=True):
        assert (x.seed, x.title, x.artist, x.album) == (y.seed, y.title, y.artist, y.album)
        assert x.path.read_bytes() == y.path.read_bytes()


def test_synthesis_is_fast():
    import time

    synthesize("metal", 30.0, SR, seed=0)  # warm caches
    t0 = time.perf_counter()
    synthesize("classical", 30.0, SR, seed=1)
    assert time.perf_counter() - t0 < 1.0  # ~30 ms in practice; generous for slow CI


# --- hostile inputs --------------------------------------------------------------------


def test_bad_set(tmp_path):
    bad = badfiles.make_bad_set(tmp_path)
    assert set(bad) == {"zero_byte", "random_mp3", "random_wav", "truncated_header", "too_short", "silence", "nan_inf"}
    assert all(p.is_file() for p in bad.values())
    assert bad["zero_byte"].stat().st_size == 0
    assert bad["random_mp3"].suffix == ".mp3" and bad["random_mp3"].stat().st_size == 65536
    assert b"\xff" not in bad["random_mp3"].read_bytes()
    assert bad["random_wav"].suffix == ".wav"
    assert 0 < bad["truncated_header"].stat().st_size < 44
    for key in ("zero_byte", "random_mp3", "random_wav", "truncated_header"):
        with pytest.raises(sf.LibsndfileError):
            sf.read(str(bad[key]))
    # valid but too short
    info = sf.info(str(bad["too_short"]))
    assert info.duration == pytest.approx(0.2, abs=0.001)
    # ten minutes of digital silence
    info = sf.info(str(bad["silence"]))
    assert (info.samplerate, info.channels, info.subtype) == (22050, 1, "PCM_16")
    assert info.duration == pytest.approx(600.0)
    assert bad["silence"].stat().st_size == 44 + 600 * 22050 * 2
    chunk, _ = sf.read(str(bad["silence"]), frames=22050, start=300 * 22050, dtype="int16")
    assert chunk.shape == (22050,) and not chunk.any()
    # NaN and inf samples
    data, _ = sf.read(str(bad["nan_inf"]), dtype="float32")
    assert sf.info(str(bad["nan_inf"])).subtype == "FLOAT"
    assert np.isnan(data).any() and np.isposinf(data).any() and np.isneginf(data).any()
    assert np.isfinite(data).mean() > 0.5


def test_odd_good_set(tmp_path):
    good = badfiles.make_odd_good_set(tmp_path)
    info = sf.info(str(good["multichannel_96k"]))
    assert (info.channels, info.samplerate) == (6, 96000)
    assert info.duration == pytest.approx(35.0)
    p = good["unicode_path"]
    assert p == tmp_path / "Café Ünïcode" / "ma chanson — été.flac" and p.is_file()
    info = sf.info(str(p))
    assert info.format == "FLAC" and info.duration == pytest.approx(30.0)
    y, _ = sf.read(str(p), frames=SR)
    assert np.abs(y).max() > 0.05


def test_symlink_loop_and_vanishing(tmp_path):
    link = badfiles.symlink_loop(tmp_path)
    assert link.is_symlink() and link.resolve() == link.parent.resolve()
    assert (link / "loop" / "inside.wav").is_file()  # the loop is real
    seen = set()
    for dirpath, dirnames, _filenames in os.walk(tmp_path, followlinks=True):
        real = os.path.realpath(dirpath)
        if real in seen:  # a scanner must stop here instead of recursing forever
            dirnames[:] = []
        seen.add(real)
    v = badfiles.vanishing_file(tmp_path)
    assert sf.info(str(v)).duration == pytest.approx(5.0)
    badfiles.delete_file(v)
    assert not v.exists()
    badfiles.delete_file(v)  # idempotent
