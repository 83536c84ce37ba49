"""Why a hit matched: shared musicnn tags and the named features that differ most.

Every similarity answer can say why each hit is there, in words a listener understands:
the top tags (musicnn, probability >= ``vocab.TOP_TAG_MIN``) that the hit shares with the
query, and the two or three named features (tempo, brightness, loudness, ...) whose values
differ most, measured in the library's standard deviations so that tempo and brightness
compare. Reads only, inside the query's snapshot.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from musicindex.errors import ModelNotTrainedError
from musicindex.query.results import TrackHit
from musicindex.query.snapshot import Snapshot
from musicindex.query.spaces import feature_scale, raw_features
from musicindex.query.tags import TagSpace, tag_probabilities, tag_space, top_tags
from musicindex.vocab import FEATURE_NAMES

NAMED_FEATURES: dict[str, tuple[str, str, str, str]] = {
    # feature: (name, unit, higher, lower)
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


def _fmt(value: float, unit: str) -> str:
    if unit in ("BPM", "Hz"):
        return f"{value:.0f} {unit}"
    return f"{value:.3g}"


def differences(query: np.ndarray, hit: np.ndarray, scale: np.ndarray) -> list[dict[str, Any]]:
    """The named features that differ most between ``hit`` and ``query`` (raw 43-vectors), largest first."""
    found: list[tuple[float, dict[str, Any]]] = []
    for feature, i in _INDEX.items():
        sd = float(scale[i])
        if sd <= 0:
            continue
        z = (float(hit[i]) - float(query[i])) / sd
        if abs(z) >= MIN_Z:
            name, unit, up, down = NAMED_FEATURES[feature]
            entry = {"feature": feature, "name": name, "query": float(query[i]), "hit": float(hit[i]), "unit": unit}
            found.append((abs(z), {**entry, "z": round(z, 2), "reads": up if z > 0 else down}))
    found.sort(key=lambda pair: -pair[0])
    return [d for _, d in found[:MAX_DIFFERENCES]]


def summary(shared: Sequence[str], diffs: Sequence[dict[str, Any]], space: str | None) -> str:
    parts = []
    if shared:
        parts.append("both " + ", ".join(shared))
    parts.extend(f"{d['reads']} ({_fmt(d['hit'], d['unit'])} vs {_fmt(d['query'], d['unit'])})" for d in diffs)
    if not diffs and not shared:
        parts.append(f"close in the {space} space; no named feature differs by {MIN_Z} sd or more")
    elif not diffs:
        parts.append(f"no named feature differs by {MIN_Z} sd or more")
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
