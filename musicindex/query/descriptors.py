"""Descriptors as the queries read them: a track's tempo, key, loudness, energy, danceability and moods (plain
columns of ``track_descriptors``), and the ReplayGain album gain computed at query time from the loudness of the
album's indexed tracks (so a track added to an album changes its gain without re-analysing the others)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from musicindex.query.snapshot import Snapshot

COLUMNS = ("tempo", "tempo_confidence", "key", "mode", "key_confidence", "camelot", "loudness", "loudness_range",
           "true_peak", "replay_gain", "energy", "danceability", "moods")  # fmt: skip
"""What ``track_details`` and the Subsonic songs read (``track_descriptors`` columns)."""

REFERENCE_LUFS = -18.0  # ReplayGain 2.0 (audio.descriptors.loudness.REFERENCE_LUFS; query/ does not import audio/)

ALBUM_GAIN_SQL = """
SELECT t.album_id,
       round((%(ref)s - (10 * log(sum(t.duration * power(10, (d.loudness + 0.691) / 10)) / sum(t.duration))
                        - 0.691))::numeric, 2)::float8 AS album_gain
FROM tracks t JOIN track_descriptors d ON d.track_id = t.id
WHERE t.album_id = ANY(%(albums)s) AND t.status = 'indexed' AND d.loudness IS NOT NULL AND t.duration > 0
GROUP BY t.album_id
"""
"""ReplayGain album gain per album: -18 LUFS minus the album's loudness, the power mean of its tracks' integrated
loudness weighted by their duration (``audio.descriptors.album_loudness``'s documented approximation for stored
summaries: the exact gating over all the album's blocks would need every block stored; on real albums the two
agree within a few tenths of a dB when the tracks' levels are close)."""


def descriptors_of(snap: Snapshot, ids: Sequence[int]) -> dict[int, dict[str, Any]]:
    """The descriptors of ``ids`` (a track without a row is absent) with ``album_gain`` (None when unknown)."""
    if not ids:
        return {}
    rows = snap.all(
        f"SELECT d.track_id, t.album_id, {', '.join('d.' + c for c in COLUMNS)} "
        "FROM track_descriptors d JOIN tracks t ON t.id = d.track_id WHERE d.track_id = ANY(%(ids)s)",
        {"ids": list(ids)},
    )
    albums = sorted({int(r.album_id) for r in rows if r.album_id is not None})
    gains = {}
    if albums:
        gains = {int(a): g for a, g in snap.all(ALBUM_GAIN_SQL, {"albums": albums, "ref": REFERENCE_LUFS})}
    out = {}
    for r in rows:
        values = {c: getattr(r, c) for c in COLUMNS}
        values["moods"] = list(values["moods"] or [])
        values["album_gain"] = gains.get(int(r.album_id)) if r.album_id is not None else None
        out[int(r.track_id)] = values
    return out


__all__ = ["ALBUM_GAIN_SQL", "COLUMNS", "descriptors_of"]
