"""The audio fingerprint of a recording: spectral-peak pairs (landmarks, after Wang 2003), invariant to codec,
bitrate, sample rate, channel count, gain and a trimmed start or end.

Chromaprint would be the obvious choice, but no well-kept binding installs from PyPI wheels alone: ``pyacoustid``
and ``pychromaprint`` need the system's libchromaprint (or ``fpcalc``), and the FFmpeg inside PyAV's wheels is built
without its chromaprint muxer. So this is our own, on the signal the one pass already decodes.

How it is computed (``fingerprint``), on mono audio at the analysis rate (22 050 Hz):

1. a magnitude spectrogram of 2048-sample frames every 1024 samples (46.4 ms; the time and frequency grid of a
   1024-point STFT at 11 025 Hz, without resampling), Hann window, the bins from 86 Hz to 4 kHz only (what every
   lossy codec keeps);
2. peaks: the bins that are the largest of their neighbourhood (about 1 s by 270 Hz) and within 40 dB of the
   loudest bin of the region (gain changes nothing: both are relative);
3. landmarks: each peak pairs with the next ``FAN_OUT`` peaks at most 1.9 s later and 680 Hz away; a landmark's
   hash is (anchor frequency, frequency step, time step) in 22 bits, and its time is the anchor's frame counted
   from the start of the track. A copy of the recording has the same hashes at times shifted by one constant (the
   seconds trimmed at the start); another recording shares only chance hashes at scattered shifts.

What of the track it needs (``regions``): the analysis window the pass decodes anyway (30 s from 30 s by
default) and a tail of ``TAIL_SECONDS`` ending ``TAIL_GAP`` s before the end (one extra decode of 15 s), so two
tracks that share a long intro but end differently are told apart. Tracks up to ``WHOLE_SECONDS`` are
fingerprinted whole (an extra decode of at most 75 s of a short track).

Not fingerprinted (``NotFingerprintableError``, the reason is shown, the track stays ungrouped): shorter than
``MIN_SECONDS`` (jingles, intros, stingers), near-silent audio, too few landmarks, or landmarks too repetitive to
tell copies from look-alikes (a steady tone, a drone).
"""

from __future__ import annotations

import math
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import InvalidAudioError, NotFingerprintableError
from .window import SAMPLE_RATE, AnalysisWindow

FINGERPRINT_VERSION = 1
"""Extractor version: bumped whenever a fingerprint of the same audio would change (then every track is
fingerprinted again and re-indexed)."""
FRAME_LENGTH = 2048
"""STFT frame length (samples at SAMPLE_RATE)."""
FRAME_HOP = 1024
"""STFT hop (samples at SAMPLE_RATE): landmark times count these frames."""
FRAME_SECONDS = FRAME_HOP / SAMPLE_RATE
BAND = (8, 372)
"""STFT bins kept: 86 Hz to 4.0 kHz (10.77 Hz a bin)."""
PEAK_FRAMES = 21
"""Peak neighbourhood in time (frames, about 1 s): a peak is the largest bin of its neighbourhood."""
PEAK_BINS = 25
"""Peak neighbourhood in frequency (bins, about 270 Hz)."""
PEAK_FLOOR_DB = 40.0
"""Peaks weaker than the region's loudest bin by more than this are ignored."""
FAN_OUT = 4
"""Landmarks per anchor peak: the next peaks in its target zone."""
MAX_DT = 40
"""Largest time step of a landmark (frames, 1.86 s)."""
MAX_DF = 63
"""Largest frequency step of a landmark (bins, 680 Hz)."""
KEY_SAMPLE = 8
"""One triplet key in ``KEY_SAMPLE`` (chosen by the key, so copies choose the same ones) goes into the index."""
TAIL_SECONDS = 15.0
"""Length of the tail region (s)."""
TAIL_GAP = 5.0
"""The tail region ends this many seconds before the end (a trimmed end or fade still overlaps it)."""
MIN_TAIL = 5.0
"""A tail region shorter than this (it would overlap the window) is left out."""
WHOLE_SECONDS = 75.0
"""Tracks up to this long are fingerprinted whole (the central window of a short track moves with its length, so
a trimmed copy's window would not line up)."""
MIN_SECONDS = 15.0
"""Shortest track fingerprinted (s): jingles, intros and stingers are not."""
SILENCE_DBFS = -60.0
"""Fingerprinted audio quieter than this (RMS, dBFS) counts as near-silent."""
MIN_LANDMARKS = 100
"""Fewest landmarks a fingerprint needs."""
MIN_DISTINCT = 0.3
"""Smallest share of distinct hashes among the landmarks (lower: a steady tone or drone, not fingerprinted)."""

_HEADER = struct.Struct("<HHIf")  # version, regions, landmarks, duration


@dataclass(frozen=True, eq=False)
class Fingerprint:
    """Landmarks of one track: ``hashes[i]`` at frame ``times[i]`` from the track start (``FRAME_SECONDS`` each);
    ``regions``: the [start, end) frames it covers; ``duration``: of the whole track (s)."""

    hashes: np.ndarray  # int32
    times: np.ndarray  # int32, sorted
    regions: tuple[tuple[int, int], ...]
    duration: float
    version: int = FINGERPRINT_VERSION

    def __len__(self) -> int:
        return int(self.hashes.size)

    @property
    def seconds(self) -> float:
        """Seconds of audio the fingerprint covers."""
        return sum(b - a for a, b in self.regions) * FRAME_SECONDS

    def to_bytes(self) -> bytes:
        """Compact little-endian form (what the database stores): header, regions, hashes, times."""
        head = _HEADER.pack(self.version, len(self.regions), len(self), self.duration)
        regions = np.asarray(self.regions, dtype="<i4").reshape(-1)
        return b"".join(
            (head, regions.tobytes(), self.hashes.astype("<i4").tobytes(), self.times.astype("<i4").tobytes())
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> Fingerprint:
        """The inverse of ``to_bytes`` (raises ValueError on a truncated or foreign blob)."""
        if len(data) < _HEADER.size:
            raise ValueError("not a fingerprint: too short")
        version, n_regions, n, duration = _HEADER.unpack_from(data)
        need = _HEADER.size + 4 * (2 * n_regions + 2 * n)
        if len(data) != need:
            raise ValueError(f"not a fingerprint: {len(data)} bytes, {need} expected")
        off = _HEADER.size
        regions = np.frombuffer(data, "<i4", 2 * n_regions, off).reshape(-1, 2)
        off += 8 * n_regions
        hashes = np.frombuffer(data, "<i4", n, off).astype(np.int32)
        times = np.frombuffer(data, "<i4", n, off + 4 * n).astype(np.int32)
        return cls(hashes, times, tuple((int(a), int(b)) for a, b in regions), float(duration), int(version))


def regions(duration: float, window: AnalysisWindow | None = None, *, tail: bool = True) -> list[tuple[float, float]]:
    """``[(start_s, length_s), ...]`` of a track of ``duration`` s that the fingerprint covers: the whole track up
    to ``WHOLE_SECONDS``; longer ones the analysis window, then the tail (unless ``tail=False``, or the tail would
    be shorter than ``MIN_TAIL`` beside the window)."""
    if duration <= WHOLE_SECONDS:
        return [(0.0, float(duration))]
    start, length = (window or AnalysisWindow()).bounds(duration)
    out = [(start, length)]
    if tail:
        end = duration - TAIL_GAP
        begin = max(start + length, end - TAIL_SECONDS)
        if end - begin >= MIN_TAIL:
            out.append((begin, end - begin))
    return out


def _running_max(a: np.ndarray, width: int, axis: int) -> np.ndarray:
    """Centred running maximum of odd ``width`` along ``axis`` of an array of values >= 0 (zeros beyond the
    edges), by doubling: log2(width) + 1 elementwise maxima of shifted slices."""
    a = np.moveaxis(a, axis, 0)
    n, r = a.shape[0], width // 2
    cur = np.zeros((n + 2 * r, *a.shape[1:]), dtype=a.dtype)
    cur[r : r + n] = a
    size = 1
    while size * 2 <= width:  # cur[i] = max of the padded input over [i, i + size)
        cur = np.maximum(cur[:-size], cur[size:])
        size *= 2
    out = np.maximum(cur[:n], cur[width - size : width - size + n]) if size < width else cur[:n]
    return np.moveaxis(out, 0, axis)


_HANN = (0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(FRAME_LENGTH) / FRAME_LENGTH)).astype(np.float32)


def _half_rate(y: np.ndarray) -> np.ndarray:
    """``y`` at half its rate: a binomial low-pass (1, 3, 3, 1) / 8 then every other sample. Down 4.5 dB at
    4 kHz (the top of the band), aliases from above 7 kHz down 16 dB and more: plenty for peaks below 4 kHz, at
    a fifth of the cost of a resampler."""
    n = (y.size - 3) // 2
    return (y[0 : 2 * n : 2] + y[3 : 3 + 2 * n : 2] + 3.0 * (y[1 : 1 + 2 * n : 2] + y[2 : 2 + 2 * n : 2])) * 0.125


def _spectrum(y: np.ndarray) -> np.ndarray:
    """Power (frames, band bins) of ``y`` (at SAMPLE_RATE): Hann-windowed frames of FRAME_LENGTH / 2 samples
    every FRAME_HOP / 2 at half the rate (the same grid as FRAME_LENGTH every FRAME_HOP at the full rate)."""
    import scipy.fft

    z = _half_rate(y)
    size, hop = FRAME_LENGTH // 2, FRAME_HOP // 2
    n = 1 + (z.size - size) // hop
    frames = np.lib.stride_tricks.as_strided(z, shape=(n, size), strides=(z.strides[0] * hop, z.strides[0]))
    x = scipy.fft.rfft(frames * _HANN[::2], axis=1)[:, BAND[0] : BAND[1]]
    return x.real**2 + x.imag**2


def landmarks(y: np.ndarray, start: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """``(hashes, times)`` of mono ``y`` at SAMPLE_RATE that starts ``start`` s into the track (times: frames
    from the track start, sorted)."""
    y = np.ascontiguousarray(y, dtype=np.float32)
    if y.size < FRAME_LENGTH + 4:
        return np.zeros(0, np.int32), np.zeros(0, np.int32)
    power = _spectrum(y)
    top = float(power.max())
    if top <= 0.0:
        return np.zeros(0, np.int32), np.zeros(0, np.int32)
    local = _running_max(_running_max(power, PEAK_FRAMES, 0), PEAK_BINS, 1)
    t, f = np.nonzero((power == local) & (power > top * 10.0 ** (-PEAK_FLOOR_DB / 10.0)))  # time order
    n = t.size
    if n < 2:
        return np.zeros(0, np.int32), np.zeros(0, np.int32)
    k = min(4 * FAN_OUT * 3, n - 1)  # the next peaks looked at for each anchor
    i = np.arange(n)[:, None]
    j = i + np.arange(1, k + 1)[None, :]
    jc = np.minimum(j, n - 1)
    dt, df = t[jc] - t[i], f[jc] - f[i]
    ok = (j < n) & (dt >= 1) & (dt <= MAX_DT) & (np.abs(df) <= MAX_DF)
    ok &= np.cumsum(ok, axis=1) <= FAN_OUT
    ai, ak = np.nonzero(ok)
    bj = jc[ai, ak]
    hashes = (f[ai] << 13) | ((f[bj] - f[ai] + 64) << 6) | (t[bj] - t[ai])
    times = t[ai] + round(start / FRAME_SECONDS)
    return hashes.astype(np.int32), times.astype(np.int32)


def fingerprint(segments: Sequence[tuple[float, np.ndarray]], duration: float) -> Fingerprint:
    """The fingerprint of a track of ``duration`` s from its decoded ``segments``: ``(start_s, mono float32 at
    SAMPLE_RATE)`` each (``regions`` says which). Raises NotFingerprintableError with the reason."""
    if duration < MIN_SECONDS:
        raise NotFingerprintableError(f"too short to fingerprint: {duration:.1f} s (at least {MIN_SECONDS:.0f} s)")
    energy = sum(float(np.dot(y, y)) for _, y in segments)
    samples = sum(y.size for _, y in segments)
    rms_db = 10.0 * math.log10(max(energy / max(samples, 1), 1e-20))
    if rms_db < SILENCE_DBFS:
        raise NotFingerprintableError(
            f"near-silent: {rms_db:.0f} dBFS RMS where fingerprinted (at least {SILENCE_DBFS:.0f} dBFS)"
        )
    parts = [landmarks(y, start) for start, y in segments]
    hashes = np.concatenate([h for h, _ in parts]) if parts else np.zeros(0, np.int32)
    times = np.concatenate([t for _, t in parts]) if parts else np.zeros(0, np.int32)
    if hashes.size < MIN_LANDMARKS:
        raise NotFingerprintableError(
            f"too little structure to fingerprint: {hashes.size} landmarks (at least {MIN_LANDMARKS})"
        )
    distinct = np.unique(hashes).size / hashes.size
    if distinct < MIN_DISTINCT:
        raise NotFingerprintableError(
            f"too repetitive to fingerprint: {distinct:.0%} of its landmarks are distinct "
            f"(at least {MIN_DISTINCT:.0%}; a steady tone or drone)"
        )
    spans = tuple(
        (round(start / FRAME_SECONDS), round(start / FRAME_SECONDS) + max(0, 1 + (y.size - FRAME_LENGTH) // FRAME_HOP))
        for start, y in segments
    )
    order = np.argsort(times, kind="stable")
    return Fingerprint(hashes[order], times[order], spans, float(duration))


def read_regions(
    path,
    window: AnalysisWindow | None = None,
    *,
    tail: bool = True,
    source=None,
    duration: float | None = None,
    decoded: tuple[float, float, np.ndarray] | None = None,
) -> tuple[list[tuple[float, np.ndarray]], float]:
    """Decode the ``regions`` of ``path``: ``([(start_s, mono at SAMPLE_RATE)], duration)``. A tail that is digital
    silence is left out (its copies leave it out too); any other decoding failure raises AudioError. ``duration``:
    the track's, when known (else probed); ``decoded``: ``(start_s, length_s, signal)`` of a region the caller has
    decoded already (the analysis window of the one pass), used instead of decoding it again."""
    from .decode import probe, read_window

    if duration is None:
        duration = probe(Path(path), source=source).duration
    segments = []
    for k, (start, length) in enumerate(regions(duration, window, tail=tail)):
        if decoded is not None and math.isclose(decoded[0], start) and math.isclose(decoded[1], length):
            segments.append((start, decoded[2]))
            continue
        try:
            y, _ = read_window(path, AnalysisWindow(offset=start, duration=length), source=source)
        except InvalidAudioError as e:
            if k == 0 or not str(e).startswith("silent"):
                raise
            continue
        segments.append((start, y))
    return segments, duration


def fingerprint_file(path, window: AnalysisWindow | None = None, *, tail: bool = True, source=None) -> Fingerprint:
    """Decode the regions of ``path`` (``read_regions``) and fingerprint them; raises AudioError (the file) or
    NotFingerprintableError (the audio). The one pass decodes the window already: a stage passes that signal to
    ``fingerprint`` and decodes only the tail."""
    return fingerprint(*read_regions(path, window, tail=tail, source=source))


def _triplets(fp: Fingerprint, variants: bool) -> tuple[np.ndarray, np.ndarray]:
    """Index keys of ``fp``: every two successive landmarks of one anchor make a triplet (anchor frequency, two
    frequency steps, two time steps: 35 bits mixed into 32), far more specific than a landmark's 22 bits, so a key's
    rows stay few at 100 000 tracks. ``variants``: each time step also one frame shorter and longer (9 keys)."""
    h, t = fp.hashes.astype(np.int64), fp.times
    anchor = h >> 13
    pair = np.nonzero((t[1:] == t[:-1]) & (anchor[1:] == anchor[:-1]))[0]
    f1, df_a, dt_a = anchor[pair], (h[pair] >> 6) & 127, h[pair] & 63
    df_b, dt_b = (h[pair + 1] >> 6) & 127, h[pair + 1] & 63
    times = t[pair]
    if variants:
        steps = [(a, b) for a in (0, -1, 1) for b in (0, -1, 1)]
        f1, df_a, df_b, times = (np.tile(x, len(steps)) for x in (f1, df_a, df_b, times))
        dt_a = np.concatenate([np.clip(dt_a + a, 0, 63) for a, _ in steps])
        dt_b = np.concatenate([np.clip(dt_b + b, 0, 63) for _, b in steps])
    x = (f1 << 26) | (df_a << 19) | (dt_a << 13) | (df_b << 6) | dt_b
    mixed = (x.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15)) >> np.uint64(32)
    return mixed.astype(np.uint32).view(np.int32), times.astype(np.int32)


def sampled(keys: np.ndarray) -> np.ndarray:
    """Mask of the index keys that belong to the index sample (one in ``KEY_SAMPLE``: the keys are mixed hashes,
    so their top bits choose; a copy samples the same ones)."""
    return keys.view(np.uint32) < np.uint32((1 << 32) // KEY_SAMPLE)


def _unique(keys: np.ndarray, times: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    keep = sampled(keys)
    pairs = np.unique(np.stack([keys[keep].astype(np.int64), times[keep].astype(np.int64)], axis=1), axis=0)
    return pairs[:, 0].astype(np.int32), pairs[:, 1].astype(np.int32)


def index_keys(fp: Fingerprint) -> tuple[np.ndarray, np.ndarray]:
    """What goes into the index: ``(keys, times)``, the sampled triplet keys (``_triplets``), repeats removed."""
    return _unique(*_triplets(fp, variants=False))


def query_keys(fp: Fingerprint) -> tuple[np.ndarray, np.ndarray]:
    """What a lookup sends to the index: the triplet keys with their time-step variants that belong to the sample,
    with their times, repeats removed."""
    return _unique(*_triplets(fp, variants=True))


def query_variants(hashes: np.ndarray) -> np.ndarray:
    """Each landmark hash with its time step one frame shorter and longer too: a peak that lands in the next frame
    of a copy (a trim by a fraction of a frame, an encoder's delay) still finds its landmark."""
    dt = hashes & 63
    base = hashes & ~np.int32(63)
    return np.concatenate([hashes, base | np.maximum(dt - 1, 0), base | np.minimum(dt + 1, 63)]).astype(np.int32)


__all__ = [
    "FINGERPRINT_VERSION",
    "FRAME_SECONDS",
    "KEY_SAMPLE",
    "MIN_SECONDS",
    "Fingerprint",
    "NotFingerprintableError",
    "fingerprint",
    "fingerprint_file",
    "index_keys",
    "landmarks",
    "query_keys",
    "query_variants",
    "read_regions",
    "regions",
    "sampled",
]
