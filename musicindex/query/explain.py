"""Why a hit matched: shared musicnn tags and the named features that differ most.

Every similarity answer can say why each hit is there, in words a listener understands:
the top tags (musicnn, probability >= ``vocab.TOP_TAG_MIN``) that the hit shares with the
query, and the two or three named features (tempo, brightness, loudness, ...) whose values
differ most, measured in the library's standard deviations so that tempo and brightness
compare. Reads only, inside the query's snapshot.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from musicindex.audio.window import SAMPLE_RATE  # a zero-crossing rate per sample, times this, is per second
from musicindex.errors import ModelNotTrainedError
from musicindex.query.results import TrackHit
from musicindex.query.snapshot import Snapshot
from musicindex.query.spaces import feature_scale, raw_features
from musicindex.query.tags import TagSpace, tag_probabilities, tag_space, top_tags
from musicindex.vocab import FEATURE_NAMES

NAMED_FEATURES: dict[str, tuple[str, str, str, str]] = {
    # feature: (name, unit of the stored value, higher, lower)
    "tempo": ("tempo", "BPM", "faster", "slower"),
    "spectral_centroid_mean": ("brightness", "Hz", "brighter", "darker"),
    "rms_mean": ("loudness", "RMS", "louder", "quieter"),
    "zero_crossing_rate_mean": ("noisiness", "ZCR", "noisier", "cleaner"),
    "spectral_bandwidth_mean": ("spectral spread", "Hz", "wider", "narrower"),
    "rolloff_mean": ("high-frequency energy", "Hz", "more treble", "less treble"),
    "perceptr_var": ("percussiveness", "", "more percussive", "less percussive"),
    "harmony_var": ("harmonic energy", "", "more harmonic", "less harmonic"),
    "chroma_stft_mean": ("tonal focus", "", "more tonal", "less tonal"),
}
"""The features an explanation may name, with how a difference reads."""
MIN_Z = 0.5
"""A difference smaller than this many standard deviations is not worth naming."""
MAX_DIFFERENCES = 3
MAX_SHARED_TAGS = 4

_INDEX = {name: FEATURE_NAMES.index(name) for name in NAMED_FEATURES}


def _pair(a: float, b: float, decimals: int = 0) -> tuple[str, str]:
    """``a`` and ``b`` written with ``decimals`` decimals or more, until the two read differently (at most 6 more):
    a rounding never hides the difference, and no number is in scientific notation."""
    for d in range(decimals, decimals + 7):
        sa, sb = f"{a:,.{d}f}".replace(",", " "), f"{b:,.{d}f}".replace(",", " ")
        if sa != sb:
            break
    return sa.replace("-", "\u2212"), sb.replace("-", "\u2212")


def _db(x: float, power: bool = False) -> float:
    """``x`` (an amplitude, or a power with ``power``) in decibels; silence is -120 dB."""
    return (10.0 if power else 20.0) * math.log10(max(float(x), 1e-12))


def wording(feature: str, query: float, hit: float) -> str:
    """How a person says that ``hit`` differs from ``query`` in ``feature`` (one of ``NAMED_FEATURES``): the word,
    then both values in a unit a listener knows (``faster (128 vs 96 BPM)``, ``louder (-14 vs -20 dB)``)."""
    _, unit, up, down = NAMED_FEATURES[feature]
    reads = up if hit > query else down
    if unit == "BPM":
        h, q = _pair(hit, query)
        return f"{reads} ({h} vs {q} BPM)"
    if unit == "Hz":
        h, q = _pair(hit / 1000, query / 1000, 1)
        return f"{reads} ({h} vs {q} kHz)"
    if unit == "RMS":  # mean frame RMS of a signal in [-1, 1]: decibels below full scale
        h, q = _pair(_db(hit), _db(query))
        return f"{reads} ({h} vs {q} dB)"
    if unit == "ZCR":
        h, q = _pair(hit * SAMPLE_RATE, query * SAMPLE_RATE)
        return f"{reads} ({h} vs {q} zero crossings a second)"
    if feature == "chroma_stft_mean":  # mean chroma energy, 0..1
        h, q = _pair(100 * hit, 100 * query)
        return f"{reads} ({h} % vs {q} % of the energy on the notes)"
    # the variance of the percussive or harmonic part: its energy, as a level difference
    gap = _db(hit, power=True) - _db(query, power=True)
    size = _pair(abs(gap), 0.0)[0]
    part = "percussive" if feature == "perceptr_var" else "harmonic"
    return f"{reads} (the {part} part {size} dB {'louder' if gap > 0 else 'quieter'})"


def differences(query: np.ndarray, hit: np.ndarray, scale: np.ndarray) -> list[dict[str, Any]]:
    """The named features that differ most between ``hit`` and ``query`` (raw 43-vectors), largest first; each with
    ``text``: the difference in words (:func:`wording`)."""
    found: list[tuple[float, dict[str, Any]]] = []
    for feature, i in _INDEX.items():
        sd = float(scale[i])
        if sd <= 0:
            continue
        q, h = float(query[i]), float(hit[i])
        z = (h - q) / sd
        if abs(z) >= MIN_Z:
            name, unit, up, down = NAMED_FEATURES[feature]
            entry = {"feature": feature, "name": name, "query": q, "hit": h, "unit": unit, "z": round(z, 2)}
            found.append((abs(z), {**entry, "reads": up if z > 0 else down, "text": wording(feature, q, h)}))
    found.sort(key=lambda pair: -pair[0])
    return [d for _, d in found[:MAX_DIFFERENCES]]


def _and(words: Sequence[str]) -> str:
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]


def summary(shared: Sequence[str], diffs: Sequence[dict[str, Any]], space: str | None) -> str:
    """One sentence: the tags both share, then how the hit differs (``both mellow and acoustic; faster (128 vs 96
    BPM)``), or that tempo, brightness and loudness are about the same."""
    parts = []
    if shared:
        parts.append("both " + _and(list(shared)))
    elif not diffs:
        parts.append(f"close in the {space} space")
    if diffs:
        parts.append(_and([d["text"] for d in diffs]))
    else:
        parts.append("tempo, brightness and loudness about the same")
    return "; ".join(parts)


def explain(
    snap: Snapshot,
    hits: Sequence[TrackHit],
    *,
    query_ids: Sequence[int] = (),
    query_features: np.ndarray | None = None,
    query_tags: np.ndarray | None = None,
) -> list[TrackHit]:
    """``hits`` with their ``why`` filled in. The query is the mean of ``query_ids``' features and tag
    probabilities (several liked tracks), or the given raw features / tag probabilities (an outside file)."""
    if not hits:
        return list(hits)
    scale = feature_scale(snap)
    ids = [h.id for h in hits]
    feats = raw_features(snap, [*ids, *query_ids])
    q_feat = query_features
    if q_feat is None and query_ids:
        known = [feats[t] for t in query_ids if t in feats]
        q_feat = np.mean(known, axis=0) if known else None
    try:
        ts: TagSpace | None = tag_space(snap)
    except ModelNotTrainedError:  # no musicnn version yet: explanations without tags
        ts = None
    probs = tag_probabilities(snap, ts, [*ids, *query_ids]) if ts is not None else {}
    q_tags = query_tags
    if q_tags is None and query_ids:
        known_t = [probs[t] for t in query_ids if t in probs]
        q_tags = np.mean(known_t, axis=0) if known_t else None
    q_top = {t for t, _ in top_tags(q_tags, ts.names)} if (ts is not None and q_tags is not None) else set()
    out = []
    for h in hits:
        shared: list[str] = []
        if ts is not None and h.id in probs and q_top:
            shared = [t for t, _ in top_tags(probs[h.id], ts.names) if t in q_top][:MAX_SHARED_TAGS]
        diffs = (
            differences(q_feat, feats[h.id], scale)
            if (q_feat is not None and scale is not None and h.id in feats)
            else []
        )
        why = {"summary": summary(shared, diffs, h.space), "shared_tags": shared, "feature_differences": diffs}
        out.append(replace(h, why=why))
    return out
