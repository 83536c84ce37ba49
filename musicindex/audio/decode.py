"""Decoding: probe a file, read only the analysis window, mix to mono, resample.

Decoders, in order:

1. libsndfile through ``soundfile`` (WAV, FLAC, OGG/Vorbis/Opus, MP3, AIFF, AU, ...).
   The window is reached with ``SoundFile.seek`` and only the window is
   decoded.  **MP3 gets a lead-in**: libsndfile 1.2.2's MP3 decoder
   re-primes after a seek (and after a read call that ends inside an MPEG
   frame), and the first ~1 700 samples it returns are wrong (measured errors
   up to 0.2 full scale on a 44.1 kHz file; ``librosa.load(offset=...)``
   returns such a window).  So for MP3 we seek ``MP3_LEAD_IN`` = 16 MPEG frames
   (18 432 samples) before the window, decode lead-in + window in one single
   read call, and drop the lead-in; measured bit-identical to a full decode
   with any lead-in >= 4 frames.
2. ``audioread`` when libsndfile cannot open the file and an audioread backend
   exists (ffmpeg / gstreamer / core audio / the stdlib raw reader); only the
   blocks up to the window end are decoded.

Mixdown is the channel mean (as ``librosa.to_mono``).  Resampling uses **soxr
directly at quality "HQ"** -- the same resampler and quality that
``librosa.load`` uses by default (``res_type="soxr_hq"``), so the window we
analyse is bit-identical to what ``librosa.load(path, sr=22050, offset=...,
duration=...)`` returns for seekable formats; it costs ~3 ms per 30 s window.

Every failure is an :class:`~musicindex.errors.AudioError` subclass with a
human-readable message (stored as the track's failure reason):

* missing file: :class:`AudioFileVanishedError` -- an ``AudioError`` *and* a
  ``FileNotFoundError`` ("file vanished before analysis: <path>"), so a batch
  handler that catches ``AudioError`` records it, while ingest can recognise it
  (``isinstance(e, FileNotFoundError)``) and mark the track ``missing`` rather
  than ``failed``;
* empty file, truncated header, garbage in a file whose extension claims audio:
  ``CorruptAudioError``;
* nothing recognises the file and the extension is not a known audio one:
  ``UnsupportedFormatError("unsupported format: ...")``;
* decodes but unusable (too short, silent, NaN/inf samples, absurd header):
  ``InvalidAudioError``.
"""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from ..errors import AudioError, CorruptAudioError, InvalidAudioError, UnsupportedFormatError
from ..vocab import SPAN_TRACK as TRACK
from ..vocab import SPAN_WINDOW as WINDOW
from .formats import AUDIO_EXTENSIONS
from .window import MIN_DURATION, SAMPLE_RATE, AnalysisWindow

MIN_SAMPLE_RATE = 8000
MAX_SAMPLE_RATE = 192000
MAX_CHANNELS = 64
SILENCE_PEAK = 2.0**-20  # ~ -120 dBFS: below this the window counts as digital silence
RESAMPLE_QUALITY = "HQ"  # soxr quality; identical to librosa.load's default "soxr_hq"

_SEEK_UNRELIABLE = {"MP3"}  # formats that need a decoded lead-in after a seek (see module doc)
MP3_LEAD_IN = 16 * 1152  # samples decoded and dropped before an MP3 window


class AudioFileVanishedError(AudioError, FileNotFoundError):
    """The file was listed for analysis but no longer exists (moved or deleted meanwhile)."""


@dataclass(frozen=True)
class AudioInfo:
    """What the container header says (before any decoding)."""

    duration: float  # seconds
    sample_rate: int  # Hz
    channels: int
    format: str  # e.g. "WAV", "FLAC", "OGG", "MP3", "AIFF", "AU" (libsndfile major format) or "audioread"
    frames: int  # samples per channel


# ------------------------------------------------------------------------------------------
def _native(path: Path) -> bytes:
    """The path as the OS's bytes: a name that is not valid UTF-8 (surrogate escapes) opens too."""
    return os.fsencode(path)


def _check_file(path: Path, source: Path | None = None) -> None:
    try:
        st = (source or path).stat()
    except FileNotFoundError:
        raise AudioFileVanishedError(f"file vanished before analysis: {path}") from None
    except OSError as e:
        raise CorruptAudioError(f"cannot read {path}: {e.strerror or e}") from None
    if not (source or path).is_file():
        raise UnsupportedFormatError(f"unsupported format: {path} is not a regular file")
    if st.st_size == 0:
        raise CorruptAudioError("empty file (0 bytes)")


def _check_header(sample_rate: int, channels: int, frames: int) -> None:
    if channels <= 0:
        raise InvalidAudioError(f"absurd header: {channels} channels")
    if channels > MAX_CHANNELS:
        raise InvalidAudioError(f"absurd header: {channels} channels (at most {MAX_CHANNELS} supported)")
    if not (MIN_SAMPLE_RATE <= sample_rate <= MAX_SAMPLE_RATE):
        raise InvalidAudioError(
            f"absurd header: sample rate {sample_rate} Hz (supported {MIN_SAMPLE_RATE}..{MAX_SAMPLE_RATE} Hz)"
        )
    if frames < 0:
        raise CorruptAudioError("corrupt header: negative length")


def _check_duration(seconds: float) -> None:
    if seconds < MIN_DURATION:
        raise InvalidAudioError(f"too short: {seconds:.2f} s (minimum {MIN_DURATION:.1f} s)")


def _sndfile_failure(path: Path, err: Exception) -> AudioError:
    """Turn a libsndfile open error into a readable AudioError."""
    msg = str(getattr(err, "error_string", "") or err)
    low = msg.lower()
    ext = path.suffix.lower()
    if "channel" in low:
        return InvalidAudioError(f"absurd header: {msg.rstrip('.')}")
    if "sample rate" in low or "samplerate" in low:
        return InvalidAudioError(f"absurd header: {msg.rstrip('.')}")
    if ext == ".mp3" and "not a regular file" in low:
        # libsndfile reports an mpg123 sync failure with this misleading message
        msg = "no valid MPEG audio frames found"
        low = msg.lower()
    if ext in AUDIO_EXTENSIONS:
        known = "format not recognised" in low or "no valid mpeg" in low
        what = f"not a valid {ext[1:].upper()} file" if known else "damaged or truncated file"
        return CorruptAudioError(f"cannot decode {path.name}: {what} ({msg.rstrip('.')})")
    return UnsupportedFormatError(f"unsupported format: {path.name} is not a recognised audio file ({msg.rstrip('.')})")


def _audioread_open(path: Path):  # ``path``: what to open (a name, or an open descriptor's /proc path)
    import warnings

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # audioread.rawread imports aifc/audioop/sunau
            import audioread
            import audioread.rawread
    except ImportError:  # pragma: no cover
        return None
    try:
        backends = audioread.available_backends()
    except Exception:  # noqa: BLE001 - a broken backend probe means: no audioread fallback  # pragma: no cover
        return None
    if not backends:
        return None
    try:
        return audioread.audio_open(str(path), backends=backends)
    except Exception:  # noqa: BLE001 - no backend reads it: the caller reports the file as unsupported
        return None


def probe(path, *, source=None) -> AudioInfo:
    """Read the header of an audio file (no decoding) and validate it. ``source``: what to read instead of
    ``path`` (e.g. ``/proc/self/fd/N`` of the file opened once); messages name ``path``."""
    path = Path(path)
    src = Path(source) if source is not None else path
    _check_file(path, src)
    try:
        info = sf.info(_native(src))
    except FileNotFoundError:
        raise AudioFileVanishedError(f"file vanished before analysis: {path}") from None
    except (sf.LibsndfileError, RuntimeError, TypeError) as e:
        if not src.exists():
            raise AudioFileVanishedError(f"file vanished before analysis: {path}") from None
        failure = _sndfile_failure(path, e)
        if isinstance(failure, InvalidAudioError):
            raise failure from None
        reader = _audioread_open(src)
        if reader is None:
            raise failure from None
        with reader:
            sr, ch, dur = int(reader.samplerate), int(reader.channels), float(reader.duration)
        _check_header(sr, ch, 0)
        return AudioInfo(duration=dur, sample_rate=sr, channels=ch, format="audioread", frames=round(dur * sr))
    sr, ch, frames = int(info.samplerate), int(info.channels), int(info.frames)
    _check_header(sr, ch, frames)
    return AudioInfo(duration=frames / sr, sample_rate=sr, channels=ch, format=str(info.format), frames=frames)


# ------------------------------------------------------------------------------------------
def _window_frames(info: AudioInfo, window: AnalysisWindow) -> tuple[int, int]:
    start_s, length_s = window.bounds(info.duration)
    # the same rounding as librosa.load(offset=start_s, duration=length_s)
    return int(start_s * info.sample_rate), int(length_s * info.sample_rate)


@contextlib.contextmanager
def _sndfile(path: Path, src: Path) -> Iterator[sf.SoundFile]:
    """``src`` opened by libsndfile; its errors as AudioErrors naming ``path``."""
    try:
        with sf.SoundFile(_native(src)) as f:
            yield f
    except FileNotFoundError:
        raise AudioFileVanishedError(f"file vanished before analysis: {path}") from None
    except (sf.LibsndfileError, RuntimeError) as e:
        if not src.exists():
            raise AudioFileVanishedError(f"file vanished before analysis: {path}") from None
        raise CorruptAudioError(f"cannot decode {path.name}: {e}") from None


def _read_frames(f: sf.SoundFile, info: AudioInfo, start: int, n: int, at: int = 0) -> np.ndarray:
    """``n`` frames from ``start`` of an open file now at frame ``at``: one read call, after a decoded lead-in for
    the formats whose seek is unreliable (see the module docstring)."""
    lead = min(start, MP3_LEAD_IN) if info.format in _SEEK_UNRELIABLE else 0
    if start - lead != at:
        f.seek(start - lead)
    return f.read(lead + n, dtype="float32", always_2d=True)[lead:]


def _read_sndfile(path: Path, info: AudioInfo, start: int, n: int, src: Path) -> np.ndarray:
    with _sndfile(path, src) as f:
        return _read_frames(f, info, start, n)


def _read_audioread(path: Path, info: AudioInfo, start: int, n: int, src: Path) -> np.ndarray:
    reader = _audioread_open(src)
    if reader is None:
        raise UnsupportedFormatError(f"unsupported format: no decoder can read {path.name}")
    ch = info.channels
    end = start + n
    blocks = []
    pos = 0
    try:
        with reader:
            for buf in reader:
                a = np.frombuffer(buf, dtype="<i2")
                frames = len(a) // ch
                a = a[: frames * ch].reshape(frames, ch)
                lo, hi = max(start - pos, 0), min(end - pos, frames)
                if hi > lo:
                    blocks.append(a[lo:hi].astype(np.float32) / 32768.0)
                pos += frames
                if pos >= end:
                    break  # decode only up to the window end
    except Exception as e:  # noqa: BLE001 - whatever a decoder backend raises, the file is corrupt
        raise CorruptAudioError(f"cannot decode {path.name}: {e}") from None
    if not blocks:
        return np.zeros((0, ch), dtype=np.float32)
    return np.concatenate(blocks)


def _mixdown(data: np.ndarray) -> np.ndarray:
    """Channel mean in float32, summing channels in order (bit-identical to librosa.to_mono)."""
    ch = data.shape[1]
    if ch == 1:
        return np.ascontiguousarray(data[:, 0])
    acc = data[:, 0] + data[:, 1]
    for c in range(2, ch):
        acc += data[:, c]
    acc /= np.float32(ch)
    return acc


def _resample(y: np.ndarray, sr: int, target: int = SAMPLE_RATE) -> np.ndarray:
    if sr == target:
        return np.ascontiguousarray(y, dtype=np.float32)
    import soxr

    out = soxr.resample(y, sr, target, quality=RESAMPLE_QUALITY)
    n = math.ceil(len(y) * target / sr)  # librosa.resample(fix=True) length
    if len(out) > n:
        out = out[:n]
    elif len(out) < n:
        out = np.pad(out, (0, n - len(out)))
    return np.ascontiguousarray(out, dtype=np.float32)


def read_window(
    path, window: AnalysisWindow | None = None, sample_rate: int = SAMPLE_RATE, *, source=None
) -> tuple[np.ndarray, AudioInfo]:
    """Decode only the analysis window of ``path``; return (mono float32 at ``sample_rate``, header info).

    The features use SAMPLE_RATE (22 050 Hz); the pretrained musicnn model reads 16 kHz.
    Raises AudioError subclasses (see the module docstring) for unusable files.
    """
    signals, info = read_window_rates(path, window, (sample_rate,), source=source)
    return signals[sample_rate], info


def read_window_rates(
    path, window: AnalysisWindow | None = None, rates: tuple[int, ...] = (SAMPLE_RATE,), *, source=None
) -> tuple[dict[int, np.ndarray], AudioInfo]:
    """Decode the analysis window of ``path`` ONCE and resample it to each of ``rates``: ({rate: mono float32},
    header info). What one pass over a track uses (the features at 22 050 Hz, musicnn at 16 kHz). ``source``:
    what to read instead of ``path`` (``/proc/self/fd/N`` of the file opened once); messages name ``path``."""
    signals, info = read_audio(path, window, [(WINDOW, int(r)) for r in rates], source=source)
    return {rate: signals[(WINDOW, int(rate))] for rate in dict.fromkeys(rates)}, info


BLOCK_FRAMES = 200 * 1152
"""Frames per read call when the whole track is decoded (~5 s at 44.1 kHz). MP3 re-primes after a read call that
ends inside an MPEG frame (see the module docstring), so each MP3 block is read like the window: seek
:data:`MP3_LEAD_IN` before it and drop that lead-in (8 % more decoding; sample for sample a one-call decode)."""


def read_audio(
    path,
    window: AnalysisWindow | None = None,
    needs: Iterable[tuple[str, int]] = ((WINDOW, SAMPLE_RATE),),
    *,
    track_seconds: float | None = None,
    source=None,
) -> tuple[dict[tuple[str, int], np.ndarray], AudioInfo]:
    """Decode ``path`` ONCE for every ``(span, rate)`` of ``needs``: ({(span, rate): mono float32}, header info).

    ``span`` :data:`WINDOW` is the analysis window, :data:`TRACK` the track from its start (whole, or its first
    ``track_seconds``). Only the window is decoded unless a TRACK span is asked for; then the file is decoded once
    from its start in blocks (the window is cut from the same decode, sample for sample what the window alone would
    give), each TRACK rate resampled as it streams (soxr, same quality) so memory holds the outputs, never the whole
    decode. The window's checks (too short, non-finite, silent) fail the file either way. ``source``: what to read
    instead of ``path`` (``/proc/self/fd/N`` of the file opened once); messages name ``path``.
    """
    path = Path(path)
    src = Path(source) if source is not None else path
    window = window or AnalysisWindow()
    wanted = list(dict.fromkeys((str(span), int(rate)) for span, rate in needs))
    if any(span not in (WINDOW, TRACK) for span, _ in wanted):
        raise ValueError(f"spans are {WINDOW!r} or {TRACK!r}, got {wanted}")
    info = probe(path, source=src)
    _check_duration(info.duration)
    start, n = _window_frames(info, window)
    track_rates = [rate for span, rate in wanted if span == TRACK]
    tracks: dict[int, np.ndarray] = {}
    if track_rates:
        y, tracks = _decode_from_start(path, info, start, n, src, track_rates, track_seconds)
    else:
        read = _read_audioread if info.format == "audioread" else _read_sndfile
        data = read(path, info, start, n, src)
        _check_window(data, info, start, n)
        y = _mixdown(data)
    _check_silence(y, info, start)
    out = {(span, rate): tracks[rate] if span == TRACK else _resample(y, info.sample_rate, rate)
           for span, rate in wanted}  # fmt: skip
    return out, info


def _check_window(data: np.ndarray, info: AudioInfo, start: int, n: int) -> None:
    got = data.shape[0] / info.sample_rate
    if data.shape[0] < n and got < MIN_DURATION:
        # the header promised more than the stream holds
        raise InvalidAudioError(f"too short: {got:.2f} s decoded (minimum {MIN_DURATION:.1f} s)")
    if not np.isfinite(data).all():
        bad = int(data.size - np.count_nonzero(np.isfinite(data)))
        raise InvalidAudioError(f"non-finite samples (NaN or infinity): {bad} in the analysed window")


def _check_silence(y: np.ndarray, info: AudioInfo, start: int) -> None:
    peak = float(np.max(np.abs(y))) if y.size else 0.0
    if peak <= SILENCE_PEAK:
        got, start_s = y.shape[0] / info.sample_rate, start / info.sample_rate
        raise InvalidAudioError(
            f"silent: the analysed window ({got:.1f} s from {start_s:.1f} s) is digital silence "
            f"(peak {20 * math.log10(max(peak, 1e-12)):.0f} dBFS)"
        )


def _blocks(path: Path, info: AudioInfo, src: Path, stop: int) -> Iterator[np.ndarray]:
    """The file's frames from its start up to ``stop``, in blocks of about :data:`BLOCK_FRAMES` (sequential reads;
    each MP3 block with its lead-in, as the window)."""
    if info.format == "audioread":
        yield _read_audioread(path, info, 0, stop, src)  # the backends stream; it stops at ``stop``
        return
    with _sndfile(path, src) as f:
        pos = 0
        while pos < stop:
            block = _read_frames(f, info, pos, min(BLOCK_FRAMES, stop - pos), at=pos)
            if block.shape[0] == 0:
                return
            pos += block.shape[0]
            yield block


def _decode_from_start(
    path: Path, info: AudioInfo, start: int, n: int, src: Path, rates: list[int], seconds: float | None
) -> tuple[np.ndarray, dict[int, np.ndarray]]:
    """(the window, mono at the file's rate; {rate: the track from its start, mono}) from one decode."""
    import soxr

    sr = info.sample_rate
    track_end = info.frames if seconds is None else min(info.frames, int(seconds * sr))
    streams = {r: soxr.ResampleStream(sr, r, 1, dtype="float32", quality=RESAMPLE_QUALITY) for r in rates if r != sr}
    parts: dict[int, list[np.ndarray]] = {r: [] for r in rates}
    window: list[np.ndarray] = []
    pos = 0
    for block in _blocks(path, info, src, max(track_end, start + n)):
        lo, hi = pos, pos + block.shape[0]
        pos = hi
        if not np.isfinite(block).all():
            bad = int(block.size - np.count_nonzero(np.isfinite(block)))
            where = "analysed window" if lo < start + n and hi > start else "track"
            raise InvalidAudioError(f"non-finite samples (NaN or infinity): {bad} in the {where}")
        if hi > start and lo < start + n:
            window.append(block[max(start - lo, 0) : min(start + n - lo, block.shape[0])])
        if lo < track_end:
            mono = _mixdown(block[: track_end - lo])
            for r in rates:
                parts[r].append(streams[r].resample_chunk(mono) if r in streams else mono.copy())
    data = np.concatenate(window) if window else np.zeros((0, info.channels), np.float32)
    _check_window(data, info, start, n)
    for r, stream in streams.items():
        parts[r].append(stream.resample_chunk(np.zeros(0, np.float32), last=True))
    tracks = {r: np.ascontiguousarray(np.concatenate(p) if p else np.zeros(0, np.float32)) for r, p in parts.items()}
    return _mixdown(data), tracks


__all__ = [
    "MAX_CHANNELS",
    "MAX_SAMPLE_RATE",
    "MIN_SAMPLE_RATE",
    "RESAMPLE_QUALITY",
    "AudioFileVanishedError",
    "AudioInfo",
    "probe",
    "read_audio",
    "read_window",
    "read_window_rates",
]
