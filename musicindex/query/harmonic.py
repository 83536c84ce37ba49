"""A harmonic mix: consecutive tracks key-compatible (same key, relative, +-1 on the Camelot wheel) and within a
tempo step (+-8 %, or half / double tempo), each transition with the reason it was allowed.

``SearchOptions(harmonic=True)`` asks for it on ``playlist`` (each waypoint takes the nearest track that is a
harmonic step from the one before) and ``recommend`` with a history (a radio: the chain continues from the last
track played). A track whose key or tempo is unknown cannot be shown to fit, so it is never picked; a seed whose
key or tempo is unknown is an ``InvalidArgumentError`` that says so.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from musicindex.errors import InvalidArgumentError
from musicindex.query.snapshot import Snapshot

TEMPO_STEP = 0.08
"""Largest relative tempo change between neighbours (after halving or doubling)."""
_CAMELOT = re.compile(r"(1[0-2]|[1-9])([AB])")


@dataclass(frozen=True)
class Beat:
    """What a transition reads of a track."""

    tempo: float | None
    camelot: str | None
    key: str | None = None


def beats(snap: Snapshot, ids: Sequence[int]) -> dict[int, Beat]:
    """The tempo and key of ``ids`` (tracks without descriptors are absent)."""
    if not ids:
        return {}
    rows = snap.all(
        "SELECT track_id, tempo, camelot, key FROM track_descriptors WHERE track_id = ANY(%(ids)s)",
        {"ids": [int(i) for i in ids]},
    )
    return {int(r.track_id): Beat(r.tempo, r.camelot, r.key) for r in rows}


def key_step(a: str, b: str) -> str | None:
    """Why key ``b`` may follow key ``a`` (Camelot codes), or None."""
    ma, mb = _CAMELOT.fullmatch(a), _CAMELOT.fullmatch(b)
    if ma is None or mb is None:
        return None
    na, la, nb, lb = int(ma.group(1)), ma.group(2), int(mb.group(1)), mb.group(2)
    if (na, la) == (nb, lb):
        return "same key"
    if na == nb:
        return "relative key"
    if la == lb and (nb - na) % 12 in (1, 11):
        return f"{'+1' if (nb - na) % 12 == 1 else '-1'} on the Camelot wheel"
    return None


def tempo_step(a: float, b: float) -> str | None:
    """Why tempo ``b`` may follow tempo ``a`` (BPM), or None."""
    for factor, name in ((1.0, ""), (2.0, " (double time)"), (0.5, " (half time)")):
        change = b / (a * factor) - 1.0
        if abs(change) <= TEMPO_STEP:
            return f"{a:.0f} -> {b:.0f} BPM ({change:+.1%}{name})"
    return None


def transition(a: Beat, b: Beat) -> str | None:
    """The reason ``b`` may follow ``a`` in a harmonic mix, or None when it may not (or either is unknown)."""
    if a.camelot is None or b.camelot is None or a.tempo is None or b.tempo is None:
        return None
    key, tempo = key_step(a.camelot, b.camelot), tempo_step(a.tempo, b.tempo)
    if key is None or tempo is None:
        return None
    return f"{a.camelot} -> {b.camelot} ({key}); {tempo}"


def known(beat: Beat | None, what: str) -> Beat:
    """``beat`` of a seed, checked: a harmonic mix starts from a known key and tempo."""
    if beat is None or beat.camelot is None or beat.tempo is None:
        raise InvalidArgumentError(
            f"a harmonic mix needs the key and tempo of {what}, and they are unknown (no clear key or no steady "
            "beat, or not analysed yet: `musicindex ingest` fills them); start from another track or leave "
            "harmonic off"
        )
    return beat


__all__ = ["TEMPO_STEP", "Beat", "beats", "key_step", "known", "tempo_step", "transition"]
