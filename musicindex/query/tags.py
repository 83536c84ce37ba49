"""Tags: the tag vocabulary of the first embedding model of the registry that has one and an active version
(musicnn's 50 by default), validated tag filters, per-track probabilities."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from musicindex.errors import InvalidArgumentError, ModelNotTrainedError
from musicindex.pretrained import registry
from musicindex.query.snapshot import Snapshot
from musicindex.vocab import TOP_TAG_MIN

MAX_TAGS = 10
"""At most this many tags in one tag search or filter."""


@dataclass(frozen=True)
class TagSpace:
    """The tag names of an embedding model's active version (``classes``, in the order of ``track_tags.probs``)."""

    version_id: int
    names: list[str]
    model: str = ""
    """The embedding model (its space) whose tags these are."""

    def index(self, tag: str) -> int:
        """1-based position of ``tag`` in ``track_tags.probs``; InvalidArgumentError naming close tags if unknown."""
        if tag in self.names:
            return self.names.index(tag) + 1
        import difflib

        close = difflib.get_close_matches(tag, self.names, n=3, cutoff=0.5)
        hint = f"did you mean {', '.join(repr(c) for c in close)}? " if close else ""
        raise InvalidArgumentError(f"unknown tag {tag!r}; {hint}the tags are: {', '.join(self.names)}")


@dataclass(frozen=True)
class TagFilter:
    space: TagSpace
    tags: tuple[str, ...]
    min_probability: float


def tag_space(snap: Snapshot) -> TagSpace:
    """The tags of the first embedding model (registry order) whose active version has some; ModelNotTrainedError
    when nothing is embedded yet."""
    for name in registry.names():
        v = snap.versions.get(name)
        if v is not None and v.classes:
            return TagSpace(v.id, [str(c) for c in v.classes], name)
    which = next(iter(registry.names()), "embedding model")
    raise ModelNotTrainedError(
        f"no track has {which} tags yet: run `musicindex embed` (a worker serving the embed queue tags new "
        "tracks as they are indexed)"
    )


def tag_version(snap: Snapshot) -> int | None:
    """The version id whose tags answer (:func:`tag_space`), or None when nothing is tagged yet."""
    try:
        return tag_space(snap).version_id
    except ModelNotTrainedError:
        return None


def check_tag_filter(snap: Snapshot, tags: Sequence[Any], min_probability: Any) -> TagFilter:
    """Validated tags and threshold for a tag search or a tag filter."""
    names = list(tags)
    if not names or len(names) > MAX_TAGS or not all(isinstance(t, str) and t for t in names):
        raise InvalidArgumentError(f"give 1 to {MAX_TAGS} tags as non-empty strings, got {list(tags)!r}")
    if isinstance(min_probability, bool) or not isinstance(min_probability, (int, float)):
        raise InvalidArgumentError(f"min_probability must be a number in [0, 1), got {min_probability!r}")
    if not 0.0 <= float(min_probability) < 1.0:
        raise InvalidArgumentError(f"min_probability must be in [0, 1), got {min_probability}")
    ts = tag_space(snap)
    for t in names:
        ts.index(t)
    return TagFilter(ts, tuple(dict.fromkeys(names)), float(min_probability))


def tag_condition(f: TagFilter, track_col: str, params: dict[str, Any]) -> str:
    """SQL: the track in ``track_col`` has every tag of ``f`` at least ``f.min_probability`` probable."""
    params["tmin"] = f.min_probability
    checks = " AND ".join(f"tt.probs[{f.space.index(t)}] >= %(tmin)s" for t in f.tags)
    gin = ""
    if f.min_probability >= TOP_TAG_MIN:  # every such tag is among the top tags: the GIN index narrows it
        params["ttags"] = list(f.tags)
        gin = " AND tt.top_tags @> %(ttags)s::text[]"
    return (
        f"EXISTS (SELECT 1 FROM track_tags tt WHERE tt.model_version_id = {int(f.space.version_id)} "
        f"AND tt.track_id = {track_col}{gin} AND {checks})"
    )


def tag_probabilities(snap: Snapshot, ts: TagSpace, track_ids: Sequence[int]) -> dict[int, np.ndarray]:
    """The tag probabilities (in ``ts.names`` order) of those of ``track_ids`` that have them."""
    ids = [int(t) for t in track_ids]
    if not ids:
        return {}
    rows = snap.all(
        f"SELECT track_id, probs FROM track_tags WHERE model_version_id = {int(ts.version_id)} "
        "AND track_id = ANY(%(ids)s)",
        {"ids": ids},
    )
    return {int(r[0]): np.asarray(r[1], dtype=np.float64) for r in rows}


def top_tags(
    probs: np.ndarray, names: Sequence[str], n: int = 5, floor: float = TOP_TAG_MIN
) -> list[tuple[str, float]]:
    """The ``n`` most probable tags at least ``floor`` probable, best first."""
    order = np.argsort(-probs, kind="stable")[:n]
    return [(str(names[i]), float(probs[i])) for i in order if probs[i] >= floor]
