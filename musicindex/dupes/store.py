"""The fingerprint index in PostgreSQL: store a track's fingerprint, find the tracks that are the same recording as
a new file (an index lookup and a few verifications, never all pairs).

Two tables (migration 0014; ORM in ``db.orm_dupes``):

* ``track_fingerprints``: one row per track: the extractor version, the fingerprint (``Fingerprint.to_bytes``)
  or, for a track that cannot be fingerprinted, NULL and the reason;
* ``fingerprint_keys``: the index: one row per sampled triplet key (``index_keys``: two successive landmarks of
  one anchor, one in eight, chosen by the key), ``(key, track_id, t)``, B-tree on ``(key, track_id, t)`` (the
  lookup reads the index only) and on ``track_id`` (a track's keys are replaced or deleted with it).

``find_recordings(session, fp)``: the sampled triplet keys of ``fp`` (with their one-frame time-step variants) are
looked up in the index, grouped by (track, time shift); a copy piles its votes on one shift, chance hits scatter.
The best-voted tracks are then verified with their whole fingerprints (``recording.decide``). Functions take a
SQLAlchemy session; the caller owns the transaction.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy import bindparam, text
from sqlalchemy.dialects.postgresql import ARRAY, BIGINT, INTEGER
from sqlalchemy.orm import Session

from ..audio.fingerprint import FINGERPRINT_VERSION, Fingerprint, index_keys, query_keys
from .recording import RecordingMatch, Verdict, compare, decide

FINGERPRINTS = "track_fingerprints"
KEYS = "fingerprint_keys"

INDEXES = (
    f"CREATE INDEX ix_{KEYS}_key ON {KEYS} (key, track_id, t)",
    f"CREATE INDEX ix_{KEYS}_track ON {KEYS} (track_id)",
)
"""The index's B-trees as migration 0014 creates them (a bulk load drops and rebuilds them: the benchmark)."""

MIN_VOTES = 4
"""Fewest index hits at one time shift (within a frame) for a track to be verified."""
MAX_VERIFIED = 8
"""Most candidates verified with their whole fingerprint per lookup."""


@dataclass(frozen=True)
class RecordingCandidate:
    """A stored track that the lookup found and verified."""

    track_id: int
    votes: int
    match: RecordingMatch
    verdict: Verdict

    @property
    def same(self) -> bool:
        return self.verdict.same


def store(
    session: Session, track_id: int, fp: Fingerprint | None, error: str | None = None, *, song: str | None = None
) -> int:
    """Store (or replace) the fingerprint of ``track_id`` and its index keys, or the reason it has none
    (``fp=None, error=...``), with its same-song key (``links.song_of``). Returns the number of index keys
    written."""
    if (fp is None) == (error is None):
        raise ValueError("store() needs a fingerprint or an error, not both")
    session.execute(text(f"DELETE FROM {KEYS} WHERE track_id = :t"), {"t": track_id})
    session.execute(
        text(
            f"""INSERT INTO {FINGERPRINTS} (track_id, version, duration, data, error, song)
                VALUES (:t, :v, :d, :data, :error, :song)
                ON CONFLICT (track_id) DO UPDATE SET version = EXCLUDED.version, duration = EXCLUDED.duration,
                    data = EXCLUDED.data, error = EXCLUDED.error, song = EXCLUDED.song, computed_at = now()"""
        ),
        {
            "t": track_id,
            "v": fp.version if fp is not None else FINGERPRINT_VERSION,
            "d": fp.duration if fp is not None else None,
            "data": fp.to_bytes() if fp is not None else None,
            "error": error,
            "song": song,
        },
    )
    if fp is None:
        return 0
    keys, times = index_keys(fp)
    session.execute(
        text(f"INSERT INTO {KEYS} (key, track_id, t) SELECT k, :t, s FROM unnest(:keys, :times) AS u(k, s)").bindparams(
            bindparam("keys", type_=ARRAY(INTEGER)), bindparam("times", type_=ARRAY(INTEGER))
        ),
        {"t": track_id, "keys": keys.tolist(), "times": times.tolist()},
    )
    return int(keys.size)


def remove(session: Session, track_ids: Iterable[int]) -> None:
    """Forget the fingerprints of ``track_ids`` (deleting a track does it too: ON DELETE CASCADE)."""
    ids = [int(i) for i in track_ids]
    for table in (KEYS, FINGERPRINTS):
        session.execute(
            text(f"DELETE FROM {table} WHERE track_id = ANY(:ids)").bindparams(bindparam("ids", type_=ARRAY(BIGINT))),
            {"ids": ids},
        )


def load(session: Session, track_ids: Sequence[int]) -> dict[int, Fingerprint]:
    """The stored fingerprints of ``track_ids`` of the current extractor version (tracks without one are left
    out)."""
    rows = session.execute(
        text(
            f"""SELECT track_id, data FROM {FINGERPRINTS}
                WHERE track_id = ANY(:ids) AND data IS NOT NULL AND version = :v"""
        ).bindparams(bindparam("ids", type_=ARRAY(BIGINT))),
        {"ids": [int(i) for i in track_ids], "v": FINGERPRINT_VERSION},
    )
    return {int(tid): Fingerprint.from_bytes(bytes(data)) for tid, data in rows}


def candidates(
    session: Session, fp: Fingerprint, *, exclude: Iterable[int] = (), limit: int = MAX_VERIFIED
) -> list[tuple[int, int]]:
    """``[(track_id, votes)]``, most votes first: the stored tracks whose index keys agree with ``fp``'s at one time
    shift (give or take a frame) at least ``MIN_VOTES`` times."""
    keys, times = query_keys(fp)
    if keys.size == 0:
        return []
    rows = session.execute(
        text(
            f"""SELECT k.track_id, k.t - q.t AS shift, count(*) AS n
                FROM unnest(:keys, :times) AS q(key, t)
                JOIN {KEYS} k ON k.key = q.key
                WHERE NOT (k.track_id = ANY(:exclude))
                GROUP BY 1, 2"""
        ).bindparams(
            bindparam("keys", type_=ARRAY(INTEGER)),
            bindparam("times", type_=ARRAY(INTEGER)),
            bindparam("exclude", type_=ARRAY(BIGINT)),
        ),
        {"keys": keys.tolist(), "times": times.tolist(), "exclude": [int(i) for i in exclude]},
    ).all()
    by_track: dict[int, dict[int, int]] = defaultdict(dict)
    for tid, shift, n in rows:
        by_track[int(tid)][int(shift)] = int(n)
    votes = []
    for tid, shifts in by_track.items():
        best = max(sum(shifts.get(s + d, 0) for d in (-1, 0, 1)) for s in shifts)
        if best >= MIN_VOTES:
            votes.append((tid, best))
    votes.sort(key=lambda v: (-v[1], v[0]))
    return votes[:limit]


def find_recordings(session: Session, fp: Fingerprint, *, exclude: Iterable[int] = ()) -> list[RecordingCandidate]:
    """The stored tracks the index proposes for ``fp``, each verified (``.same``: the same recording), best first."""
    found = candidates(session, fp, exclude=exclude)
    stored = load(session, [tid for tid, _ in found])
    out = []
    for tid, votes in found:
        other = stored.get(tid)
        if other is None:
            continue
        m = compare(fp, other)
        out.append(RecordingCandidate(tid, votes, m, decide(fp, other, m)))
    out.sort(key=lambda c: (not c.same, -c.match.matches, c.track_id))
    return out


def key_stats(session: Session) -> dict[str, float]:
    """Rows and sizes of the two tables (what the benchmark reports)."""
    row = session.execute(
        text(
            f"""SELECT (SELECT count(*) FROM {FINGERPRINTS}), (SELECT count(*) FROM {KEYS}),
                pg_total_relation_size('{FINGERPRINTS}'), pg_total_relation_size('{KEYS}')"""
        )
    ).one()
    return {"fingerprints": row[0], "keys": row[1], "fingerprint_bytes": row[2], "key_bytes": row[3]}


__all__ = [
    "FINGERPRINTS",
    "INDEXES",
    "KEYS",
    "MAX_VERIFIED",
    "MIN_VOTES",
    "RecordingCandidate",
    "candidates",
    "find_recordings",
    "key_stats",
    "load",
    "remove",
    "store",
]
