"""Descriptors as the queries read them: a track's tempo, key, loudness, energy, danceability and moods (plain
columns of ``track_descriptors``), and the ReplayGain album gain computed at query time from the loudness of the
album's indexed tracks (so a track added to an album changes its gain without re-analysing the others)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from musicindex.query.snapshot import Snapshot
from musicindex.vocab import DESCRIPTOR_COLUMNS

COLUMNS = DESCRIPTOR_COLUMNS

REFERENCE_LUFS = -18.0  # ReplayGain 2.0 (audio.descriptors.loudness.REFERENCE_LUFS; query/ does not import audio/)


def album_gain_sql(album: str) -> str:
    """A subquery of (``album_gain`` dB, ``album_peak`` linear) of the album ``album`` (an SQL expression: an album
    id column): ReplayGain 2.0 album gain = -18 LUFS minus the album's loudness, the power mean of its indexed
    tracks' integrated loudness weighted by their duration (``audio.descriptors.album_loudness``'s documented
    approximation for stored summaries: the exact gating over all the album's blocks would need every block
    stored; the two agree within a few tenths of a dB when the tracks' levels are close); the album peak is the
    largest true peak of its tracks. NULLs for an album without measured loudness."""
    return (
        f"SELECT round(({REFERENCE_LUFS} - (10 * log(sum(x.duration * power(10, (xd.loudness + 0.691) / 10)) "
        "/ sum(x.duration)) - 0.691))::numeric, 2)::float8 AS album_gain, "
        "round(max(power(10, xd.true_peak / 20))::numeric, 6)::float8 AS album_peak "
        "FROM tracks x JOIN track_descriptors xd ON xd.track_id = x.id "
        f"WHERE x.album_id = {album} AND x.status = 'indexed' AND xd.loudness IS NOT NULL AND x.duration > 0"
    )


SONG_SQL = (
    "LEFT JOIN LATERAL (SELECT round(d.tempo)::int AS bpm, d.replay_gain AS track_gain, "
    "round(power(10, d.true_peak / 20)::numeric, 6)::float8 AS track_peak "
    "FROM track_descriptors d WHERE d.track_id = t.id) dsc ON true "
    f"LEFT JOIN LATERAL ({album_gain_sql('t.album_id')}) dag ON true "
)
"""The joins a song row reads its ``bpm`` and ReplayGain values from (``dsc.bpm``, ``dsc.track_gain``,
``dsc.track_peak``, ``dag.album_gain``, ``dag.album_peak``; the track's row is ``t``)."""


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
        sql = f"SELECT a.id, g.album_gain FROM unnest(%(albums)s::bigint[]) a(id), LATERAL ({album_gain_sql('a.id')}) g"
        gains = {int(a): g for a, g in snap.all(sql, {"albums": albums})}
    out = {}
    for r in rows:
        values = {c: getattr(r, c) for c in COLUMNS}
        values["moods"] = list(values["moods"] or [])
        values["album_gain"] = gains.get(int(r.album_id)) if r.album_id is not None else None
        out[int(r.track_id)] = values
    return out


__all__ = ["COLUMNS", "SONG_SQL", "album_gain_sql", "descriptors_of"]
