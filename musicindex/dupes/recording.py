"""Same recording or not: two fingerprints compared, and the rule that decides (pure functions).

``compare(a, b)`` finds the one time shift at which the landmarks of ``a`` and ``b`` agree best (a copy trimmed by
``s`` seconds agrees at a shift of ``s``, everywhere) and measures, at that shift:

* ``matches``: landmarks of ``a`` found in ``b`` (hash equal, time within one frame);
* ``ratio``: matches over the landmarks either fingerprint has where both cover the audio (the fewer of the two);
* ``coverage``: the share of the common stretch, in ``SEGMENT_SECONDS`` pieces that hold landmarks of both,
  where the two agree. A copy agrees everywhere; two tracks that share an intro, a loop or a sample agree only
  there;
* ``overlap``: the share of the shorter-covered fingerprint that the common stretch is.

``decide(a, b, m)`` says "same recording" when all of these hold (``RULE`` documents the numbers): enough
matches, ratio, coverage, per-region overlap and agreement, a shift of at most ``MAX_SHIFT_S``, and durations
within ``max(DURATION_SLACK_S, DURATION_SLACK * longer)``.
The confidence is the weakest of ratio and coverage against their bars, in [0, 1].
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..audio.fingerprint import FRAME_SECONDS, Fingerprint, query_variants

MIN_MATCHES = 25
"""Fewest matching landmarks for "same recording"."""
MIN_RATIO = 0.08
"""Smallest share of the landmarks in the common stretch that match (copies measured 0.2 and up)."""
MIN_COVERAGE = 0.8
"""Smallest share of the common stretch's segments where the two agree (a shared intro or sample is a part)."""
MAX_SHIFT_S = 12.0
"""Largest time shift of a copy (s): the most a copy's start may be trimmed (or padded); two tracks that share a
long stretch at another place (an edit with a new intro) are not one recording."""
MIN_OVERLAP = 0.6
"""Smallest share of each region (window, tail) of either fingerprint that lies in the common stretch."""
MIN_AGREEMENT = 0.5
"""Smallest share of each region's common pieces (with landmarks on either side) where the two agree: a shared
intro agrees in the window only, and a tail that is silent in one of them does not agree."""
MIN_REGION_SECONDS = 5.0
"""Regions shorter than this are not held to the two per-region bars."""
DURATION_SLACK_S = 12.0
DURATION_SLACK = 0.1
"""Durations of one recording's copies differ by at most ``max(DURATION_SLACK_S, DURATION_SLACK * longer)``."""
SEGMENT_SECONDS = 2.0
TOLERANCE = 1
"""Frames a matching landmark's time may be off the best shift."""

RULE = (
    f"same recording when >= {MIN_MATCHES} landmarks match at one time shift, >= {MIN_RATIO:.0%} of the landmarks "
    f"where both are fingerprinted match, the two agree on >= {MIN_COVERAGE:.0%} of that common stretch "
    f"({SEGMENT_SECONDS:.0f} s pieces), the stretch is >= {MIN_OVERLAP:.0%} of the shorter-covered fingerprint, and "
    f"the durations differ by at most max({DURATION_SLACK_S:.0f} s, {DURATION_SLACK:.0%}), the shift is at most "
    f"{MAX_SHIFT_S:.0f} s and every region lines up >= {MIN_OVERLAP:.0%} and agrees >= {MIN_AGREEMENT:.0%}"
)


@dataclass(frozen=True)
class RecordingMatch:
    """How ``b`` agrees with ``a`` at its best time shift (``offset`` s: b's time minus a's)."""

    matches: int
    offset: float
    ratio: float
    coverage: float
    overlap: float
    agreement: float = 0.0

    def to_dict(self) -> dict:
        return {
            "matches": self.matches,
            "offset": round(self.offset, 3),
            "ratio": round(self.ratio, 4),
            "coverage": round(self.coverage, 4),
            "overlap": round(self.overlap, 4),
            "agreement": round(self.agreement, 4),
        }


NO_MATCH = RecordingMatch(0, 0.0, 0.0, 0.0, 0.0, 0.0)


@dataclass(frozen=True)
class Verdict:
    same: bool
    confidence: float
    reason: str


def pairs(a: Fingerprint, b: Fingerprint) -> tuple[np.ndarray, np.ndarray]:
    """Every (landmark of a, landmark of b) with equal hashes (a's with its time-step variants): (index in a,
    time shift in frames)."""
    ha = query_variants(a.hashes)
    ia_all = np.tile(np.arange(len(a)), 3)
    order = np.argsort(b.hashes, kind="stable")
    hb, tb = b.hashes[order], b.times[order]
    lo = np.searchsorted(hb, ha, "left")
    count = np.searchsorted(hb, ha, "right") - lo
    total = int(count.sum())
    if total == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    ia = np.repeat(ia_all, count)
    ib = np.repeat(lo, count) + (np.arange(total) - np.repeat(np.cumsum(count) - count, count))
    return ia, tb[ib].astype(np.int64) - a.times[ia].astype(np.int64)


def best_shift(shifts: np.ndarray, tolerance: int = TOLERANCE) -> int:
    """The time shift (frames) with the most pairs within ``tolerance`` of it."""
    low = int(shifts.min())
    counts = np.bincount(shifts - low)
    window = np.convolve(counts, np.ones(2 * tolerance + 1, dtype=np.int64), mode="same")
    return int(np.argmax(window)) + low


def _clip(times: np.ndarray, spans: tuple[tuple[int, int], ...]) -> np.ndarray:
    """Mask of ``times`` inside any of ``spans``."""
    inside = np.zeros(times.size, dtype=bool)
    for lo, hi in spans:
        inside |= (times >= lo) & (times < hi)
    return inside


def _intersect(x: tuple[tuple[int, int], ...], y: tuple[tuple[int, int], ...]) -> tuple[tuple[int, int], ...]:
    return tuple((max(a0, b0), min(a1, b1)) for a0, a1 in x for b0, b1 in y if min(a1, b1) > max(a0, b0))


def compare(a: Fingerprint, b: Fingerprint) -> RecordingMatch:
    """How well ``b`` agrees with ``a`` (see the module doc); times in a's frames, b shifted onto them."""
    ia, shifts = pairs(a, b)
    if ia.size == 0:
        return NO_MATCH
    shift = best_shift(shifts)
    matched = np.unique(ia[np.abs(shifts - shift) <= TOLERANCE])
    b_regions = tuple((lo - shift, hi - shift) for lo, hi in b.regions)
    common = _intersect(a.regions, b_regions)
    if not common:
        return NO_MATCH
    b_times = b.times - shift
    in_a, in_b = _clip(a.times, common), _clip(b_times, common)
    m = int(np.count_nonzero(in_a[matched]))
    ratio = m / max(1, min(int(in_a.sum()), int(in_b.sum())))
    seg = max(1, round(SEGMENT_SECONDS / FRAME_SECONDS))
    pieces_a, pieces_b = np.unique(a.times[in_a] // seg), np.unique(b_times[in_b] // seg)
    both = np.intersect1d(pieces_a, pieces_b)  # pieces where both have landmarks
    either = np.union1d(pieces_a, pieces_b)  # a piece silent on one side only disagrees
    agree = np.intersect1d(a.times[matched] // seg, both)
    coverage = agree.size / both.size if both.size else 0.0
    # every region of either (the window, the tail) must line up with the other's and agree there
    overlap = agreement = 1.0
    for region in a.regions + b_regions:
        length = region[1] - region[0]
        if length * FRAME_SECONDS < MIN_REGION_SECONDS:
            continue
        shared = _intersect((region,), common)
        overlap = min(overlap, sum(hi - lo for lo, hi in shared) / length)
        pieces = either[_clip(either * seg + seg // 2, shared)]
        if pieces.size >= 2:
            agreement = min(agreement, np.intersect1d(agree, pieces).size / pieces.size)
    return RecordingMatch(m, shift * FRAME_SECONDS, ratio, coverage, overlap, agreement)


def durations_agree(a: float, b: float) -> bool:
    longer = max(a, b)
    return abs(a - b) <= max(DURATION_SLACK_S, DURATION_SLACK * longer)


def decide(a: Fingerprint, b: Fingerprint, m: RecordingMatch | None = None) -> Verdict:
    """Same recording or not, with a confidence in [0, 1] and the reason (``RULE``)."""
    m = compare(a, b) if m is None else m
    if not durations_agree(a.duration, b.duration):
        return Verdict(False, 0.0, f"durations differ: {a.duration:.1f} s and {b.duration:.1f} s")
    if abs(m.offset) > MAX_SHIFT_S:
        return Verdict(
            False, 0.0, f"they agree {abs(m.offset):.1f} s apart (a copy is trimmed by at most {MAX_SHIFT_S:.0f} s)"
        )
    checks = (
        (m.matches >= MIN_MATCHES, f"{m.matches} matching landmarks (at least {MIN_MATCHES})"),
        (m.ratio >= MIN_RATIO, f"{m.ratio:.0%} of the landmarks match (at least {MIN_RATIO:.0%})"),
        (
            m.coverage >= MIN_COVERAGE,
            f"they agree on {m.coverage:.0%} of the common stretch (at least {MIN_COVERAGE:.0%})",
        ),
        (
            m.overlap >= MIN_OVERLAP,
            f"a region lines up with the other over {m.overlap:.0%} (at least {MIN_OVERLAP:.0%})",
        ),
        (m.agreement >= MIN_AGREEMENT, f"a region agrees on {m.agreement:.0%} (at least {MIN_AGREEMENT:.0%})"),
    )
    for ok, why in checks:
        if not ok:
            return Verdict(False, 0.0, why)
    confidence = min(1.0, m.ratio / (2 * MIN_RATIO), (m.coverage - MIN_COVERAGE) / (1 - MIN_COVERAGE) * 0.5 + 0.5)
    return Verdict(True, round(confidence, 3), f"same recording: {m.matches} landmarks agree at {m.offset:+.2f} s")


__all__ = [
    "NO_MATCH",
    "RULE",
    "RecordingMatch",
    "Verdict",
    "best_shift",
    "compare",
    "decide",
    "durations_agree",
    "pairs",
]
