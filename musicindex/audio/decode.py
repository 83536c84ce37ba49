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

import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from ..errors import AudioError, CorruptAudioError, InvalidAudioError, UnsupportedFormatError
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


def _read_sndfile(path: Path, info: AudioInfo, start: int, n: int, src: Path) -> np.ndarray:
    try:
        with sf.SoundFile(_native(src)) as f:
            if info.format in _SEEK_UNRELIABLE:
                # lead-in, then one single read call (see module doc)
                lead = min(start, MP3_LEAD_IN)
                if start - lead > 0:
                    f.seek(start - lead)
                return f.read(lead + n, dtype="float32", always_2d=True)[lead:]
            if start > 0:
                f.seek(start)
            return f.read(n, dtype="float32", always_2d=True)
    except FileNotFoundError:
        raise AudioFileVanishedError(f"file vanished before analysis: {path}") from None
    except (sf.LibsndfileError, RuntimeError) as e:
        if not src.exists():
            raise AudioFileVanishedError(f"file vanished before analysis: {path}") from None
        raise CorruptAudioError(f"cannot decode {path.name}: {e}") from None


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
    path = Path(path)
    src = Path(source) if source is not None else path
    window = window or AnalysisWindow()
    info = probe(path, source=src)
    _check_duration(info.duration)
    start, n = _window_frames(info, window)
    read = _read_audioread if info.format == "audioread" else _read_sndfile
    data = read(path, info, start, n, src)
    got = data.shape[0] / info.sample_rate
    if data.shape[0] < n and got < MIN_DURATION:
        # the header promised more than the stream holds
        raise InvalidAudioError(f"too short: {got:.2f} s decoded (minimum {MIN_DURATION:.1f} s)")
    if not np.isfinite(data).all():
        bad = int(data.size - np.count_nonzero(np.isfinite(data)))
        raise InvalidAudioError(f"non-finite samples (NaN or infinity): {bad} in the analysed window")
    y = _mixdown(data)
    peak = float(np.max(np.abs(y))) if y.size else 0.0
    if peak <= SILENCE_PEAK:
        start_s = start / info.sample_rate
        raise InvalidAudioError(
            f"silent: the analysed window ({got:.1f} s from {start_s:.1f} s) is digital silence "
            f"(peak {20 * math.log10(max(peak, 1e-12)):.0f} dBFS)"
        )
    return {rate: _resample(y, info.sample_rate, rate) for rate in dict.fromkeys(rates)}, info


__all__ = [
    "MAX_CHANNELS",
    "MAX_SAMPLE_RATE",
    "MIN_SAMPLE_RATE",
    "RESAMPLE_QUALITY",
    "AudioFileVanishedError",
    "AudioInfo",
    "probe",
    "read_window",
    "read_window_rates",
]
