"""Generators of hostile (and oddly shaped but good) inputs for the ingestion tests.

Each generator takes a directory, creates one thing in it and returns its Path. All are
deterministic and cheap (the ten minutes of silence is a sparse file).

Expected to FAIL ingestion (see :func:`make_bad_set`):
    zero_byte, random_mp3, random_wav, truncated_header_wav, too_short_wav,
    silent_wav, nan_inf_wav
Expected to be INDEXED (see :func:`make_odd_good_set`):
    multichannel_hires_wav (6 ch, 96 kHz, 35 s), unicode_path_flac
Structural cases:
    symlink_loop (dir/loop -> dir), vanishing_file + delete_file (deleted between scan
    and analysis).
"""

from __future__ import annotations

import io
import os
import struct
from pathlib import Path

import numpy as np
import soundfile as sf

from musicindex.sample.library import write_audio
from musicindex.sample.synth import synthesize

SILENCE_SECONDS = 600
SILENCE_SR = 22050


def _dir(directory: str | os.PathLike) -> Path:
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    return d


def _random_bytes(n: int, seed: int) -> bytes:
    """Random bytes that contain no 0xFF (so no MPEG frame sync can be found) and no magic."""
    rng = np.random.default_rng(seed)
    return rng.integers(0, 255, n, dtype=np.uint8).tobytes()  # 0..254


def _wav_bytes(audio: np.ndarray, sr: int, subtype: str = "PCM_16") -> bytes:
    buf = io.BytesIO()
    sf.write(buf, audio, sr, format="WAV", subtype=subtype)
    return buf.getvalue()


# --- expected to fail -------------------------------------------------------------


def zero_byte(directory: str | os.PathLike, name: str = "empty.wav") -> Path:
    """An empty file with an audio extension."""
    p = _dir(directory) / name
    p.write_bytes(b"")
    return p


def random_mp3(directory: str | os.PathLike, name: str = "random.mp3", size: int = 64 * 1024) -> Path:
    """Random bytes named .mp3 (no 0xFF byte, so no decoder finds an MPEG frame)."""
    p = _dir(directory) / name
    p.write_bytes(_random_bytes(size, 1))
    return p


def random_wav(directory: str | os.PathLike, name: str = "random.wav", size: int = 64 * 1024) -> Path:
    """Random bytes named .wav (no RIFF header)."""
    p = _dir(directory) / name
    p.write_bytes(_random_bytes(size, 2))
    return p


def truncated_header_wav(directory: str | os.PathLike, name: str = "truncated_header.wav", keep: int = 30) -> Path:
    """A valid 16-bit wav cut after ``keep`` bytes, i.e. inside its 44-byte header."""
    data = _wav_bytes(synthesize("rock", 2.0, 22050, seed=3), 22050)
    assert keep < 44
    p = _dir(directory) / name
    p.write_bytes(data[:keep])
    return p


def too_short_wav(directory: str | os.PathLike, name: str = "short.wav", seconds: float = 0.2) -> Path:
    """A perfectly valid wav that is only 0.2 s long (below the minimum duration)."""
    p = _dir(directory) / name
    write_audio(p, synthesize("techno", seconds, 22050, seed=4), 22050, "wav")
    return p


def silent_wav(
    directory: str | os.PathLike, name: str = "silence.wav", seconds: int = SILENCE_SECONDS, sr: int = SILENCE_SR
) -> Path:
    """Ten minutes of digital silence, mono 16-bit 22 050 Hz.

    Written as a canonical 44-byte header followed by a sparse run of zero bytes
    (``truncate``), so it costs almost no time or disk.
    """
    frames = int(seconds * sr)
    data_len = frames * 2
    header = b"RIFF" + struct.pack("<I", 36 + data_len) + b"WAVE"
    header += b"fmt " + struct.pack("<IHHIIHH", 16, 1, 1, sr, sr * 2, 2, 16)
    header += b"data" + struct.pack("<I", data_len)
    p = _dir(directory) / name
    with open(p, "wb") as f:
        f.write(header)
        f.truncate(44 + data_len)
    return p


def nan_inf_wav(directory: str | os.PathLike, name: str = "nan_inf.wav", seconds: float = 5.0) -> Path:
    """A float32 wav of music whose samples include runs of NaN, +inf and -inf."""
    sr = 22050
    audio = synthesize("jazz", seconds, sr, seed=5).copy()
    n = audio.shape[0]
    audio[n // 5 : n // 5 + 2000] = np.nan
    audio[n // 2 : n // 2 + 500] = np.inf
    audio[(3 * n) // 4 : (3 * n) // 4 + 500] = -np.inf
    audio[::997] = np.nan
    p = _dir(directory) / name
    sf.write(str(p), audio, sr, format="WAV", subtype="FLOAT")
    return p


# --- expected to be indexed ---------------------------------------------------------


def multichannel_hires_wav(directory: str | os.PathLike, name: str = "surround_96k.wav", seconds: float = 35.0) -> Path:
    """A GOOD file: 6 channels, 96 kHz, 16-bit, 35 s (about 40 MB)."""
    p = _dir(directory) / name
    write_audio(p, synthesize("rock", seconds, 96000, seed=6, channels=6), 96000, "wav")
    return p


UNICODE_RELPATH = Path("Café Ünïcode") / "ma chanson — été.flac"


def unicode_path_flac(directory: str | os.PathLike, seconds: float = 30.0) -> Path:
    """A GOOD flac at ``Café Ünïcode/ma chanson — été.flac`` (unicode and spaces)."""
    p = _dir(Path(directory) / UNICODE_RELPATH.parent) / UNICODE_RELPATH.name
    write_audio(p, synthesize("reggae", seconds, 22050, seed=7), 22050, "flac")
    return p


# --- structural cases ---------------------------------------------------------------


def symlink_loop(directory: str | os.PathLike, name: str = "loopdir") -> Path:
    """A folder ``name`` holding one valid wav and ``loop -> .`` (itself). Returns the link.

    A scanner that follows directory symlinks without remembering visited real paths
    recurses forever (``loopdir/loop/loop/loop/...``).
    """
    d = _dir(Path(directory) / name)
    write_audio(d / "inside.wav", synthesize("ambient", 5.0, 22050, seed=8), 22050, "wav")
    link = d / "loop"
    if link.is_symlink() or link.exists():
        link.unlink()
    os.symlink(".", link, target_is_directory=True)
    return link


def vanishing_file(directory: str | os.PathLike, name: str = "vanishing.wav") -> Path:
    """A valid wav meant to be removed (:func:`delete_file`) between scan and analysis."""
    p = _dir(directory) / name
    write_audio(p, synthesize("hiphop", 5.0, 22050, seed=9), 22050, "wav")
    return p


def delete_file(path: str | os.PathLike) -> None:
    """Delete ``path`` (no error if it is already gone)."""
    Path(path).unlink(missing_ok=True)


# --- sets ---------------------------------------------------------------------------


def make_bad_set(directory: str | os.PathLike) -> dict[str, Path]:
    """Every file that ingestion must mark ``failed`` (never stopping the batch)."""
    d = _dir(directory)
    return {
        "zero_byte": zero_byte(d),
        "random_mp3": random_mp3(d),
        "random_wav": random_wav(d),
        "truncated_header": truncated_header_wav(d),
        "too_short": too_short_wav(d),
        "silence": silent_wav(d),
        "nan_inf": nan_inf_wav(d),
    }


def make_odd_good_set(directory: str | os.PathLike) -> dict[str, Path]:
    """Unusual but valid files that ingestion must index."""
    d = _dir(directory)
    return {
        "multichannel_96k": multichannel_hires_wav(d),
        "unicode_path": unicode_path_flac(d),
    }
