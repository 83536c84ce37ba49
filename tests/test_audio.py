"""Tests of musicindex.audio (no database): window, features, decoding, spectrogram, tags, hashing."""

from __future__ import annotations

import dataclasses
import hashlib
import os
import struct

import numpy as np
import pytest
import soundfile as sf

from musicindex.audio import (
    FEATURE_NAMES,
    N_FEATURES,
    SAMPLE_RATE,
    AnalysisWindow,
    analyse,
    analyse_file,
    decode_spectrogram,
    encode_spectrogram,
    extract_features,
    file_sha256,
    probe,
    read_tags,
    read_window,
    warm_up,
)
from musicindex.audio.decode import AudioFileVanishedError
from musicindex.audio.reference import reference_features_from_signal
from musicindex.audio.spectrogram import N_MELS, QUANT_STEP_DB, compute_logmel
from musicindex.errors import AudioError, CorruptAudioError, InvalidAudioError, UnsupportedFormatError


@pytest.fixture(scope="module", autouse=True)
def _warm():
    warm_up()


def music(seconds: float, sr: int = SAMPLE_RATE, seed: int = 0, channels: int = 1) -> np.ndarray:
    """A short synthetic 'song': chords with harmonics, clicks/drums, noise, DC offset."""
    rng = np.random.default_rng(seed)
    n = int(seconds * sr)
    t = np.arange(n) / sr
    f0 = 110 * 2 ** (rng.integers(0, 12) / 12)
    y = np.zeros(n)
    for k, iv in enumerate((0, 4, 7)):
        f = f0 * 2 ** (iv / 12)
        for h in range(1, int(rng.integers(2, 8))):
            y += 0.2 / h * np.sin(2 * np.pi * f * h * t + k)
    bpm = rng.uniform(80, 160)
    beat = int(60 / bpm * sr)
    burst = rng.standard_normal(int(0.05 * sr)) * np.exp(-np.arange(int(0.05 * sr)) / (0.01 * sr))
    for s0 in range(0, n - burst.size, beat):
        y[s0 : s0 + burst.size] += rng.uniform(0.3, 0.8) * burst
    y += 10 ** rng.uniform(-3, -1.5) * rng.standard_normal(n) + rng.uniform(-0.01, 0.01)
    y *= 0.5 / np.abs(y).max()
    if channels == 1:
        return y.astype(np.float32)
    mix = np.stack([y * (1 - 0.1 * c) + 0.01 * rng.standard_normal(n) for c in range(channels)], axis=1)
    return (0.9 * mix / np.abs(mix).max()).astype(np.float32)


def write(path, y, sr=SAMPLE_RATE, **kw):
    sf.write(str(path), y, sr, **kw)
    return path


def wav_header(path, sr, channels, nframes=1000, bits=16):
    data = b"\0" * (nframes * max(channels, 1) * bits // 8)
    fmt = struct.pack(
        "<IHHIIHH", 16, 1, channels, sr, sr * max(channels, 1) * bits // 8, max(channels, 1) * bits // 8, bits
    )
    path.write_bytes(
        b"RIFF"
        + struct.pack("<I", 36 + len(data))
        + b"WAVE"
        + b"fmt "
        + fmt
        + b"data"
        + struct.pack("<I", len(data))
        + data
    )
    return path


# ---------------------------------------------------------------------------------------- window
def test_window_bounds_rules():
    w = AnalysisWindow()
    assert (w.offset, w.duration) == (30.0, 30.0)
    assert w.bounds(240.0) == (30.0, 30.0)
    assert w.bounds(60.0) == (30.0, 30.0)
    assert w.bounds(40.0) == (5.0, 30.0)  # central 30 s
    assert w.bounds(30.0) == (0.0, 30.0)
    assert w.bounds(12.5) == (0.0, 12.5)  # whole
    assert AnalysisWindow(10.0, 5.0).bounds(100.0) == (10.0, 5.0)
    assert AnalysisWindow(10.0, 5.0).bounds(9.0) == (2.0, 5.0)
    with pytest.raises(ValueError):
        AnalysisWindow(0.0, 0.0)
    with pytest.raises(dataclasses.FrozenInstanceError):
        w.offset = 3.0  # type: ignore[misc]  # frozen


# ---------------------------------------------------------------------------------------- features
def test_feature_names_and_order():
    assert N_FEATURES == 43 == len(FEATURE_NAMES) == len(set(FEATURE_NAMES))
    assert FEATURE_NAMES[:17] == (
        "chroma_stft_mean",
        "chroma_stft_var",
        "rms_mean",
        "rms_var",
        "spectral_centroid_mean",
        "spectral_centroid_var",
        "spectral_bandwidth_mean",
        "spectral_bandwidth_var",
        "rolloff_mean",
        "rolloff_var",
        "zero_crossing_rate_mean",
        "zero_crossing_rate_var",
        "harmony_mean",
        "harmony_var",
        "perceptr_mean",
        "perceptr_var",
        "tempo",
    )
    assert FEATURE_NAMES[17:21] == ("mfcc1_mean", "mfcc1_var", "mfcc2_mean", "mfcc2_var")
    assert FEATURE_NAMES[-2:] == ("mfcc13_mean", "mfcc13_var")


def test_features_finite_shape():
    f = extract_features(music(4.0))
    assert f.shape == (43,) and f.dtype == np.float64
    assert np.isfinite(f).all()
    assert 0 < f[FEATURE_NAMES.index("tempo")] < 400
    assert f[FEATURE_NAMES.index("rms_mean")] > 0


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_features_agree_with_reference(seed):
    """Documented tolerance (docs/features.md): 1e-3 relative; near-zero means relative to their std."""
    y = music(6.0, seed=seed)
    ours = extract_features(y)
    ref = reference_features_from_signal(y)
    scale = np.abs(ref).copy()
    for name in ("harmony_mean", "perceptr_mean"):
        j = FEATURE_NAMES.index(name)
        scale[j] = np.sqrt(ref[j + 1])
    rel = np.abs(ours - ref) / scale
    worst = int(np.argmax(rel))
    assert rel.max() < 1e-3, f"{FEATURE_NAMES[worst]}: ours {ours[worst]} ref {ref[worst]}"


@pytest.mark.parametrize("shape", [(300, 257), (1025, 40), (20, 7)])
def test_median_filter_is_exact(shape):
    """The HPSS median filter equals scipy.ndimage.median_filter(mode="reflect"), ties and zeros included."""
    import scipy.ndimage

    from musicindex.audio.features import median_filter_axis0

    rng = np.random.default_rng(shape[0])
    x = np.abs(rng.standard_normal(shape)).astype(np.float32)
    x[:, ::5] = np.round(x[:, ::5])  # ties
    x[: shape[0] // 3, 1] = 0.0
    np.testing.assert_array_equal(median_filter_axis0(x), scipy.ndimage.median_filter(x, size=(31, 1), mode="reflect"))


def test_analyse_shares_stft_with_features():
    y = music(5.0, seed=4)
    feats, logmel = analyse(y)
    np.testing.assert_array_equal(feats, extract_features(y))
    np.testing.assert_array_equal(logmel, compute_logmel(y))
    assert logmel.shape == (N_MELS, 1 + len(y) // 512) and logmel.dtype == np.float32


# ---------------------------------------------------------------------------------------- decoding
@pytest.mark.parametrize(
    "ext,kw",
    [
        ("wav", {}),
        ("flac", {}),
        ("ogg", {"format": "OGG"}),
        ("mp3", {"format": "MP3"}),
        ("aiff", {}),
        ("au", {}),
    ],
)
def test_formats_accepted(tmp_path, ext, kw):
    p = write(tmp_path / f"x.{ext}", music(3.0, sr=44100, channels=2), 44100, **kw)
    y, info = read_window(p)
    assert info.channels == 2 and info.sample_rate == 44100
    assert y.dtype == np.float32 and y.ndim == 1
    assert abs(len(y) - 3.0 * SAMPLE_RATE) < 0.1 * SAMPLE_RATE
    assert np.isfinite(y).all() and np.abs(y).max() > 0.01


def test_multichannel_96k_and_8k_accepted(tmp_path):
    p = write(tmp_path / "six.wav", music(2.0, sr=96000, channels=6), 96000, subtype="PCM_24")
    res = analyse_file(p)
    assert res.info.channels == 6 and res.info.sample_rate == 96000
    assert res.features.shape == (43,) and np.isfinite(res.features).all()
    p8 = write(tmp_path / "low.wav", music(2.0, sr=8000), 8000)
    y, info = read_window(p8)
    assert info.sample_rate == 8000 and len(y) == 2 * SAMPLE_RATE


def test_window_read_only_part(tmp_path):
    """A 40 s track: the central 30 s (5..35 s) is analysed; the marker at 2 s is outside it."""
    sr = 22050
    y = np.full(40 * sr, 0.01, dtype=np.float32)
    y[2 * sr : 3 * sr] = 0.9  # outside the window
    y[5 * sr : 5 * sr + 100] = 0.5  # first samples of the window
    p = write(tmp_path / "forty.flac", y, sr)
    w, info = read_window(p)
    assert info.duration == pytest.approx(40.0)
    assert len(w) == 30 * sr
    assert w[:100] == pytest.approx(0.5, abs=1e-3) and w.max() < 0.6


def test_empty_file(tmp_path):
    p = tmp_path / "empty.wav"
    p.write_bytes(b"")
    with pytest.raises(CorruptAudioError, match=r"empty file \(0 bytes\)"):
        read_window(p)


@pytest.mark.parametrize("name", ["noise.mp3", "noise.wav"])
def test_random_bytes_with_audio_extension(tmp_path, name):
    p = tmp_path / name
    p.write_bytes(np.random.default_rng(0).integers(0, 256, 50_000, dtype=np.uint8).tobytes())
    with pytest.raises(CorruptAudioError, match=r"cannot decode noise\.(mp3|wav): not a valid (MP3|WAV) file"):
        read_window(p)


def test_random_bytes_unknown_extension(tmp_path):
    p = tmp_path / "blob.xyz"
    p.write_bytes(os.urandom(10_000))
    with pytest.raises(UnsupportedFormatError, match=r"^unsupported format: "):
        read_window(p)


def test_truncated_wav_header(tmp_path):
    full = write(tmp_path / "full.wav", music(2.0), SAMPLE_RATE)
    p = tmp_path / "trunc.wav"
    p.write_bytes(full.read_bytes()[:30])
    with pytest.raises(CorruptAudioError, match=r"cannot decode trunc\.wav"):
        read_window(p)


def test_too_short(tmp_path):
    p = write(tmp_path / "short.wav", music(0.2), SAMPLE_RATE)
    with pytest.raises(InvalidAudioError, match=r"^too short: 0\.20 s \(minimum 1\.0 s\)$"):
        read_window(p)


def test_silent(tmp_path):
    p = write(tmp_path / "silence.flac", np.zeros(3 * SAMPLE_RATE, dtype=np.float32), SAMPLE_RATE)
    with pytest.raises(InvalidAudioError, match=r"^silent: "):
        read_window(p)


def test_non_finite(tmp_path):
    y = music(2.0)
    y[1000] = np.nan
    y[2000] = np.inf
    p = write(tmp_path / "nan.wav", y, SAMPLE_RATE, subtype="FLOAT")
    with pytest.raises(InvalidAudioError, match=r"^non-finite samples"):
        read_window(p)


@pytest.mark.parametrize(
    "sr,ch,pattern",
    [
        (1, 1, r"absurd header: sample rate 1 Hz"),
        (500_000, 1, r"absurd header: sample rate 500000 Hz"),
        (44100, 0, r"absurd header: .*[Cc]hannel"),
        (44100, 100, r"absurd header: 100 channels"),
    ],
)
def test_absurd_headers(tmp_path, sr, ch, pattern):
    p = wav_header(tmp_path / "h.wav", sr, ch)
    with pytest.raises(InvalidAudioError, match=pattern):
        probe(p)


def test_vanished_file(tmp_path):
    p = tmp_path / "gone.ogg"
    with pytest.raises(AudioFileVanishedError, match=r"file vanished before analysis: .*gone\.ogg") as e:
        read_window(p)
    assert isinstance(e.value, AudioError) and isinstance(e.value, FileNotFoundError)


def test_all_failures_are_audio_errors(tmp_path):
    p = tmp_path / "e.flac"
    p.write_bytes(b"")
    with pytest.raises(AudioError):
        analyse_file(p)


# ---------------------------------------------------------------------------------------- spectrogram
def test_spectrogram_round_trip_and_size():
    y = music(30.0, seed=5)
    spec = compute_logmel(y)
    assert spec.shape == (N_MELS, 1292)
    blob = encode_spectrogram(spec)
    assert len(blob) < 100_000
    back = decode_spectrogram(blob)
    assert back.shape == spec.shape and back.dtype == np.float32
    assert np.abs(back - spec).max() <= QUANT_STEP_DB / 2 + 1e-4
    with pytest.raises(ValueError):
        decode_spectrogram(b"nonsense" * 10)


# ---------------------------------------------------------------------------------------- tags, hashing
def test_tags_present_and_absent(tmp_path):
    import mutagen

    p = write(tmp_path / "tagged.flac", music(1.5), SAMPLE_RATE)
    f = mutagen.File(str(p), easy=True)
    f["title"] = "Song\x00 Title"
    f["artist"] = "Artist"
    f["album"] = "A" * 5000
    f["date"] = "2004-05-01"
    f["genre"] = "Jazz"
    f.save()
    f["tracknumber"] = "3/12"
    f["discnumber"] = "2"
    f["albumartist"] = "Various"
    f["genre"] = ["Jazz", "Bebop; Cool"]
    f.save()
    tags = read_tags(p)
    assert {k: tags[k] for k in ("title", "artist", "album", "year", "genre")} == {
        "title": "Song  Title", "artist": "Artist", "album": "A" * 1000, "year": 2004, "genre": "Jazz; Bebop; Cool"
    }  # fmt: skip
    assert (tags["genres"], tags["track"], tags["disc"], tags["albumartist"]) == (["Jazz", "Bebop", "Cool"], 3, 2,
                                                                                  "Various")  # fmt: skip
    assert tags["has_picture"] is False and tags["bit_rate"] > 0

    bare = write(tmp_path / "bare.wav", music(1.5), SAMPLE_RATE)
    absent = read_tags(bare)
    assert {k: absent[k] for k in ("title", "artist", "album", "year", "genre", "track")} == dict.fromkeys(
        ("title", "artist", "album", "year", "genre", "track")
    )
    assert absent["genres"] == [] and absent["has_picture"] is False
    junk = tmp_path / "junk.mp3"
    junk.write_bytes(os.urandom(3000))
    assert read_tags(junk)["title"] is None
    assert read_tags(tmp_path / "missing.ogg")["year"] is None


def test_mp3_id3_tags(tmp_path):
    from mutagen.easyid3 import EasyID3

    p = write(tmp_path / "t.mp3", music(2.0, sr=44100), 44100, format="MP3")
    tags = EasyID3()
    tags["title"] = "T"
    tags["artist"] = "Ar"
    tags["date"] = "1999"
    tags.save(str(p))
    got = read_tags(p)
    assert {k: got[k] for k in ("title", "artist", "album", "year", "genre")} == {
        "title": "T", "artist": "Ar", "album": None, "year": 1999, "genre": None
    }  # fmt: skip


def test_file_sha256(tmp_path):
    p = tmp_path / "blob.bin"
    data = os.urandom(3 * 1024 * 1024 + 17)
    p.write_bytes(data)
    assert file_sha256(p) == hashlib.sha256(data).hexdigest()
    assert file_sha256(p, chunk=4096) == hashlib.sha256(data).hexdigest()
    e = tmp_path / "e"
    e.write_bytes(b"")
    assert file_sha256(e) == hashlib.sha256(b"").hexdigest()


def test_mp3_window_is_sample_accurate(tmp_path):
    """libsndfile's MP3 seek glitches the first ~1700 samples; read_window must equal a full decode."""
    from musicindex.audio.decode import _mixdown, _resample

    sr = 44100
    t = np.arange(40 * sr) / sr
    y = np.stack([0.3 * np.sin(2 * np.pi * 440 * t) * (1 + np.sin(t)), 0.2 * np.sin(2 * np.pi * 660 * t)], axis=1)
    p = tmp_path / "sines.mp3"
    with sf.SoundFile(str(p), "w", sr, 2, format="MP3") as f:  # blocks: LAME crashes on huge writes
        for i in range(0, len(y), 1 << 16):
            f.write(y[i : i + (1 << 16)].astype(np.float32))
    w, info = read_window(p)
    full, _ = sf.read(str(p), dtype="float32", always_2d=True)
    start, length = AnalysisWindow().bounds(info.duration)
    s0, n = int(start * sr), int(length * sr)
    np.testing.assert_array_equal(w, _resample(_mixdown(full[s0 : s0 + n]), sr))


def _sparse_with_picture(tmp_path, fmt: str, picture_bytes: int):
    """A real audio file carrying an embedded picture of ``picture_bytes`` (a sparse hole: no disk used)."""
    import subprocess
    import sys

    from musicindex.sample.library import write_audio
    from musicindex.sample.synth import synthesize

    src = tmp_path / f"src.{fmt}"
    write_audio(src, synthesize("rock", 3.0, 22050, seed=1), 22050, fmt)
    audio = src.read_bytes()
    out = tmp_path / f"huge-picture.{fmt}"
    if fmt == "mp3":
        title = b"\x03Huge"
        frames = b"TIT2" + struct.pack(">I", len(title)) + b"\x00\x00" + title
        apic = b"APIC" + struct.pack(">I", picture_bytes) + b"\x00\x00"
        size = len(frames) + len(apic) + picture_bytes
        syncsafe = bytes([(size >> 21) & 0x7F, (size >> 14) & 0x7F, (size >> 7) & 0x7F, size & 0x7F])
        head, tail = b"ID3\x03\x00\x00" + syncsafe + frames + apic, audio
    else:  # flac: PICTURE blocks (at most 16 MB each) right after STREAMINFO
        assert audio[:4] == b"fLaC"
        info_len = int.from_bytes(audio[5:8], "big")
        last = audio[4] & 0x80
        head = b"fLaC" + bytes([audio[4] & 0x7F]) + audio[5 : 8 + info_len]
        tail = audio[8 + info_len :]
        blocks, left = [], picture_bytes
        while left:
            blocks.append(min(left, (1 << 24) - 1))
            left -= blocks[-1]
        with open(out, "wb") as fh:
            fh.write(head)
            for i, n in enumerate(blocks):
                fh.write(bytes([6 | (0x80 if last and i == len(blocks) - 1 else 0)]) + n.to_bytes(3, "big"))
                picture = struct.pack(">II9sIIIIII", 3, 9, b"image/png", 0, 1, 1, 24, 0, n - 41)  # 41-byte header
                fh.write(picture)
                fh.seek(n - len(picture), os.SEEK_CUR)
            fh.write(tail)
        head = tail = b""
    if head:
        with open(out, "wb") as fh:
            fh.write(head)
            fh.seek(picture_bytes, os.SEEK_CUR)
            fh.write(tail)
    code = (
        "import resource, sys; from musicindex.audio.tags import read_tags; "
        "before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss; tags = read_tags(sys.argv[1]); "
        "print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) // 1024, tags['title'])"
    )
    res = subprocess.run([sys.executable, "-c", code, str(out)], check=True, capture_output=True, text=True)
    grown_mb, title = res.stdout.split()
    return out, int(grown_mb), title


@pytest.mark.parametrize("fmt", ["mp3", "flac"])
def test_a_huge_embedded_picture_is_never_read_into_memory(tmp_path, fmt):
    from musicindex.audio.tags import MAX_TAG_BYTES, metadata_bytes

    path, grown_mb, title = _sparse_with_picture(tmp_path, fmt, 300 * 1024 * 1024)
    assert metadata_bytes(path) > MAX_TAG_BYTES
    assert grown_mb < 50, f"reading the tags grew the process by {grown_mb} MB"
    assert title == "None"  # the tags are skipped, not half-read
    if fmt == "mp3":  # a small picture: the tags are read as before
        (tmp_path / "small").mkdir()
        _, _, small_title = _sparse_with_picture(tmp_path / "small", fmt, 64 * 1024)
        assert small_title == "Huge"
