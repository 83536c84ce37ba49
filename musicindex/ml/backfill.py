"""Backfill: predictions, cluster assignments and embeddings of every indexed track.

After training, the train job writes, for each new version, one row per indexed track
(``predictions`` for classifiers, ``cluster_assignments`` for clusterers, ``embeddings``
for ann / cnn / scaler), in batches of ``BATCH`` tracks (multi-row INSERTs of up to 1000
rows), then builds the version's partial HNSW index ``ix_emb_hnsw_v{id}``. Tracks ingested
later get their rows from the active versions through :func:`apply_active` (in the ingest pass, and
the ``embed`` queue's backfill).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
from sqlalchemy import delete, select, text
from sqlalchemy.orm import Session

from musicindex.db.orm import ClusterAssignment, Embedding, ModelVersion, Prediction, Track, TrackFeatures
from musicindex.db.session import Database
from musicindex.db.upsert import upsert
from musicindex.ml.data import load_embeddings, load_features, load_spectrograms
from musicindex.ml.inference import apply_batch, load_model, needs_spectrogram, prediction_of
from musicindex.ml.registry import active_versions, get_version
from musicindex.vocab import CLASSIFIER_KINDS, CLUSTER_KINDS, KIND_SPACE, MUSICNN, TRAINED_KINDS, hnsw_index_name

log = logging.getLogger(__name__)

BATCH = 1000
"""Tracks per backfill transaction (and rows per INSERT)."""
HNSW_M = 16
HNSW_EF_CONSTRUCTION = 64


def _chunks(ids: Sequence[int], n: int) -> Iterable[list[int]]:
    for i in range(0, len(ids), n):
        yield [int(x) for x in ids[i : i + n]]


def indexed_track_ids(db: Database) -> list[int]:
    with db.session() as s:
        return list(
            s.execute(
                select(Track.id)
                .join(TrackFeatures, TrackFeatures.track_id == Track.id)
                .where(Track.status == "indexed")
                .order_by(Track.id)
            ).scalars()
        )


def upsert_rows(session: Session, model: Any, rows: list[dict[str, Any]], update_cols: Sequence[str]) -> None:
    """Rows keyed by (model_version_id, track_id), replacing ``update_cols`` of existing ones (``db.upsert``)."""
    upsert(session, model, rows, keys=("model_version_id", "track_id"), update=update_cols, batch=BATCH)


def backfill(
    db: Database, version_ids: Sequence[int], *, track_ids: Sequence[int] | None = None, batch_size: int = BATCH
) -> dict[int, int]:
    """Write the outputs of ``version_ids`` for ``track_ids`` (default: every indexed track).

    Existing rows of the same (version, track) are replaced (a re-analysed track gets fresh
    values). Returns rows written per version.
    """
    with db.session() as s:
        versions = [v for v in (get_version(s, v) for v in version_ids) if v.kind in TRAINED_KINDS]
        loaded = [load_model(s, v) for v in versions]
    written = {v.id: 0 for v in versions}
    if not versions:
        return written
    ids = indexed_track_ids(db) if track_ids is None else sorted({int(t) for t in track_ids})
    spec_needed = any(needs_spectrogram(v.kind) for v in versions)
    for chunk in _chunks(ids, batch_size):
        with db.session() as s:
            cid, X = load_features(s, chunk)
            if len(cid) == 0:
                continue
            specs = load_spectrograms(s, cid) if spec_needed else {}
            for v, lm in zip(versions, loaded, strict=True):
                if needs_spectrogram(v.kind):
                    rows_ids = [int(t) for t in cid if int(t) in specs]
                    if not rows_ids:
                        continue
                    out = apply_batch(lm, None, [specs[t] for t in rows_ids])
                elif lm.input == MUSICNN:  # trained on the musicnn embedding: tracks that have one
                    eid, E = load_embeddings(s, int(lm.input_version or 0), cid)
                    if len(eid) == 0:
                        continue
                    rows_ids = [int(t) for t in eid]
                    out = apply_batch(lm, E)
                else:
                    rows_ids = [int(t) for t in cid]
                    out = apply_batch(lm, X)
                written[v.id] += _write(s, v, rows_ids, out)
    return written


def _write(session, v: ModelVersion, ids: list[int], out: dict[str, Any]) -> int:
    n = 0
    if "proba" in out:
        rows = [
            {"model_version_id": v.id, "track_id": t, **prediction_of(p, out["classes"])}
            for t, p in zip(ids, out["proba"], strict=True)
        ]
        upsert_rows(session, Prediction, rows, ("genre", "confidence", "probabilities"))
        n = len(rows)
    if "cluster" in out:
        rows = [
            {"model_version_id": v.id, "track_id": t, "cluster": int(c)}
            for t, c in zip(ids, out["cluster"], strict=True)
        ]
        upsert_rows(session, ClusterAssignment, rows, ("cluster",))
        n = len(rows)
    if "embedding" in out:
        space = KIND_SPACE[v.kind]
        emb = np.asarray(out["embedding"], dtype=np.float32)
        rows = [
            {"model_version_id": v.id, "track_id": t, "space": space, "embedding": e}
            for t, e in zip(ids, emb, strict=True)
        ]
        upsert_rows(session, Embedding, rows, ("space", "embedding"))
        n = len(rows)
    return n


def create_hnsw_index(db: Database, version_id: int, dim: int) -> str:
    """The partial HNSW expression index of one embedding version (idempotent); returns its name.

    Built with ``CREATE INDEX CONCURRENTLY``: embedding writes and queries go on during the build.
    An invalid index left by an interrupted concurrent build is dropped and built again.
    """
    name = hnsw_index_name(version_id)
    vid, dim = int(version_id), int(dim)
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        invalid = conn.execute(
            text(
                "SELECT NOT i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid WHERE c.relname = :n"
            ),
            {"n": name},
        ).scalar()
        if invalid:
            conn.execute(text(f"DROP INDEX CONCURRENTLY IF EXISTS {name}"))
        conn.execute(text("SET maintenance_work_mem = '256MB'"))
        conn.execute(
            text(
                f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {name} ON embeddings "
                f"USING hnsw ((embedding::vector({dim})) vector_cosine_ops) "
                f"WITH (m = {HNSW_M}, ef_construction = {HNSW_EF_CONSTRUCTION}) WHERE model_version_id = {vid}"
            )
        )
    return name


def drop_hnsw_indexes(db: Database, version_ids: Sequence[int]) -> None:
    """Drop the versions' HNSW indexes without blocking queries (``DROP INDEX CONCURRENTLY``)."""
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        for v in version_ids:
            conn.execute(text(f"DROP INDEX CONCURRENTLY IF EXISTS {hnsw_index_name(int(v))}"))


def analyze(db: Database) -> None:
    """Fresh planner statistics after a backfill (so the partial indexes are used)."""
    with db.engine.begin() as conn:
        conn.execute(text("ANALYZE embeddings, predictions, cluster_assignments"))


def drop_version_rows(db: Database, version_ids: Sequence[int]) -> None:
    """Remove what a (failed) version wrote: its rows and its HNSW index."""
    ids = [int(v) for v in version_ids]
    if not ids:
        return
    drop_hnsw_indexes(db, ids)
    with db.session() as s:
        for model in (Prediction, ClusterAssignment, Embedding):
            s.execute(delete(model).where(model.model_version_id.in_(ids)))


def _table_for(kind: str):
    if kind in CLASSIFIER_KINDS:
        return Prediction
    if kind in CLUSTER_KINDS:
        return ClusterAssignment
    return Embedding


def tracks_without_rows(db: Database, version_id: int) -> list[int]:
    """Indexed tracks with features that have no row of ``version_id`` yet."""
    with db.session() as s:
        v = get_version(s, version_id)
        table = _table_for(v.kind)
        if v.kind in ("ann", "cnn"):  # both tables; the embedding is the one queries need
            table = Embedding
        sub = select(table.track_id).where(table.model_version_id == v.id, table.track_id == Track.id)
        return list(
            s.execute(
                select(Track.id)
                .join(TrackFeatures, TrackFeatures.track_id == Track.id)
                .where(Track.status == "indexed", ~sub.exists())
                .order_by(Track.id)
            ).scalars()
        )


def embed_missing(db: Database, version_ids: Sequence[int]) -> dict[int, int]:
    """Backfill only the tracks each version is missing (catch-up after a promotion or rollback)."""
    written: dict[int, int] = {}
    with db.session() as s:
        trained = [v for v in version_ids if get_version(s, v).kind in TRAINED_KINDS]
    for v in trained:
        ids = tracks_without_rows(db, v)
        if ids:
            written.update(backfill(db, [v], track_ids=ids))
    return written


def apply_active(db: Database, track_ids: Sequence[int]) -> dict[str, Any]:
    """Give tracks their predictions, clusters and embeddings from every active version.

    Called for newly ingested (or re-analysed) tracks; a no-op when nothing is trained.
    Returns {"tracks": n, "versions": {version id: rows}}.
    """
    with db.session() as s:
        active = [v.id for v in active_versions(s) if v.kind in TRAINED_KINDS]
    if not active or not track_ids:
        return {"tracks": len(track_ids), "versions": {}}
    written = backfill(db, active, track_ids=track_ids)
    return {"tracks": len(track_ids), "versions": {str(k): v for k, v in written.items()}}
