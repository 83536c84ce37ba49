"""The pretrained musicnn space: its versions, embedding tracks, their tags, and the backfill.

musicnn needs no training and no labels, so the space answers as soon as tracks are
embedded. It is versioned like the trained spaces: one ``model_versions`` row of kind
``musicnn`` per extractor version (``params``: model, extractor version, weights sha256,
window, sample rate; ``classes``: the 50 tag names), its 200-d embeddings in ``embeddings``
under a partial HNSW index (created empty with the version and kept up to date by inserts),
and the tag probabilities in ``track_tags``.

* :func:`current_version` returns the version of this code's extractor, creating it: active
  when the space has no active version yet, else a candidate that is promoted (in one
  transaction) once every indexed track has a row, so queries never see a half-embedded
  new version;
* :func:`embed_tracks` decodes the analysis window of each track at 16 kHz, runs the network
  over the patches of several tracks per call and writes embeddings and tags: what the
  ``embed`` queue does right after a track is indexed;
* :func:`unembedded_track_ids` / :func:`backfill` embed what is not embedded yet (the library
  before the space existed, or everything under a new extractor version).

TensorFlow is imported only when a track is embedded (the ``embed`` workers); ingest workers
never import it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from sqlalchemy import func, select

from musicindex.audio.window import AnalysisWindow
from musicindex.db.orm import Embedding, ModelVersion, Track, TrackTag
from musicindex.db.paths import fs_path
from musicindex.db.session import Database
from musicindex.errors import AudioError, ModelNotTrainedError
from musicindex.ml.backfill import create_hnsw_index, upsert_rows
from musicindex.ml.registry import create_pretrained_version, promote
from musicindex.vocab import ACTIVE, CANDIDATE, INDEXED, MUSICNN, TOP_TAG_MIN

if TYPE_CHECKING:
    from musicindex.pretrained.musicnn import MusicnnModel

log = logging.getLogger(__name__)

_VERSION_LOCK = 0x6D69_6D6E_6E76  # advisory lock serialising the creation of musicnn versions ('mimnnv')


def extractor_params() -> dict[str, Any]:
    """What identifies this code's musicnn extractor (stored as the version's ``params``)."""
    from musicindex.pretrained import musicnn

    weights = musicnn.WEIGHTS[musicnn.MODEL_NAME]
    return {
        "model": musicnn.MODEL_NAME,
        "extractor_version": musicnn.EXTRACTOR_VERSION,
        "weights_sha256": weights.sha256,
        "sample_rate": musicnn.SAMPLE_RATE,
        "patch_seconds": round(musicnn.PATCH_FRAMES * musicnn.HOP / musicnn.SAMPLE_RATE, 3),
        "clip_vector": "mean over non-overlapping patches of the analysis window",
    }


def _matches(v: ModelVersion, params: dict[str, Any]) -> bool:
    p = v.params or {}
    return p.get("model") == params["model"] and p.get("extractor_version") == params["extractor_version"]


def current_version(db: Database) -> int:
    """The id of the musicnn version of this code (created if there is none; see the module docstring)."""
    from musicindex.pretrained import musicnn

    params = extractor_params()
    with db.session() as s:
        s.execute(select(func.pg_advisory_xact_lock(_VERSION_LOCK)))
        versions = (
            s.execute(
                select(ModelVersion)
                .where(ModelVersion.kind == MUSICNN, ModelVersion.state.in_((ACTIVE, CANDIDATE)))
                .order_by(ModelVersion.id.desc())
            )
            .scalars()
            .all()
        )
        for v in versions:
            if _matches(v, params):
                return v.id
        has_active = any(v.state == ACTIVE for v in versions)
        vid = create_pretrained_version(
            s,
            MUSICNN,
            params=params,
            classes=list(musicnn.TAGS),
            embedding_dim=musicnn.EMBEDDING_DIM,
            weights_sha256=params["weights_sha256"],
            active=not has_active,
        )
    create_hnsw_index(db, vid, musicnn.EMBEDDING_DIM)  # empty now; inserts keep it up to date
    log.info("musicnn version %s created (%s)", vid, "candidate" if has_active else "active")
    return vid


def active_version(db: Database) -> ModelVersion | None:
    with db.session() as s:
        return s.execute(
            select(ModelVersion).where(ModelVersion.kind == MUSICNN, ModelVersion.state == ACTIVE)
        ).scalar_one_or_none()


# --------------------------------------------------------------------------- the network, once per process
_model: MusicnnModel | None = None
_model_lock = threading.Lock()


def get_model(threads: int | None = None) -> MusicnnModel:
    """The musicnn network of this process (loaded once; ``threads``: TensorFlow threads, set before the
    first load — the embed workers use one per process)."""
    global _model
    with _model_lock:
        if _model is None:
            from musicindex.pretrained import musicnn

            if threads is not None:
                import tensorflow as tf

                try:
                    tf.config.threading.set_intra_op_parallelism_threads(threads)
                    tf.config.threading.set_inter_op_parallelism_threads(threads)
                except RuntimeError:  # TensorFlow already initialised in this process (e.g. by training)
                    log.debug("TensorFlow threads already fixed in this process")
            _model = musicnn.MusicnnModel.load()
        return _model


def embed_signals(signals: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Mean embeddings ``(n, 200)`` and tag probabilities ``(n, 50)`` of 16 kHz mono signals (this process's
    network)."""
    return get_model().embed(signals)


# --------------------------------------------------------------------------- embedding
@dataclass
class EmbedResult:
    version_id: int
    embedded: int
    failed: dict[int, str]
    promoted: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": self.version_id,
            "embedded": self.embedded,
            "failed": {str(k): v for k, v in self.failed.items()},
            "promoted": self.promoted,
        }


def top_tags(probs: np.ndarray, names: Sequence[str]) -> list[str]:
    """Tags at least ``TOP_TAG_MIN`` probable, most probable first."""
    order = np.argsort(-probs, kind="stable")
    return [str(names[i]) for i in order if probs[i] >= TOP_TAG_MIN]


def load_signal(path: str, window: AnalysisWindow) -> np.ndarray:
    """The analysis window of ``path`` at 16 kHz mono (AudioError for unusable files)."""
    from musicindex.audio.decode import read_window
    from musicindex.pretrained.musicnn import SAMPLE_RATE

    y, _ = read_window(path, window, sample_rate=SAMPLE_RATE)
    return y


def embed_tracks(
    db: Database,
    track_ids: Sequence[int],
    *,
    window: AnalysisWindow | None = None,
    version_id: int | None = None,
    model: MusicnnModel | None = None,
) -> EmbedResult:
    """Embed indexed tracks in the musicnn space and store their tags (already embedded ones again).

    A file that cannot be read now (moved, changed, broken) is reported in ``failed`` and left
    without a row; its track keeps its status (ingestion owns that).
    """
    window = window or AnalysisWindow()
    vid = version_id or current_version(db)
    with db.session() as s:
        rows = s.execute(
            select(Track.id, Track.path, Track.path_bytes).where(
                Track.id.in_([int(t) for t in track_ids]), Track.status == INDEXED
            )
        ).all()
        names = s.execute(select(ModelVersion.classes).where(ModelVersion.id == vid)).scalar_one()
    failed: dict[int, str] = {}
    ids: list[int] = []
    signals: list[np.ndarray] = []
    for tid, path, path_bytes in rows:
        try:
            signals.append(load_signal(fs_path(path, path_bytes), window))
            ids.append(int(tid))
        except AudioError as exc:
            failed[int(tid)] = str(exc)
    if ids:
        emb, probs = (model or get_model()).embed(signals)
        write(db, vid, ids, emb, probs, names or [])
    result = EmbedResult(vid, len(ids), failed)
    result.promoted = promote_when_complete(db, vid)
    return result


def write(
    db: Database, version_id: int, ids: Sequence[int], emb: np.ndarray, probs: np.ndarray, names: Sequence[str]
) -> None:
    """Upsert embeddings and tags of ``ids`` under ``version_id``."""
    emb = np.asarray(emb, dtype=np.float32)
    probs = np.asarray(probs, dtype=np.float32)
    if not (np.isfinite(emb).all() and np.isfinite(probs).all()):
        raise ModelNotTrainedError("the musicnn network returned non-finite values; its weights may be damaged")
    with db.session() as s:
        upsert_rows(
            s,
            Embedding,
            [
                {"model_version_id": version_id, "track_id": int(t), "space": MUSICNN, "embedding": emb[j]}
                for j, t in enumerate(ids)
            ],
            ("space", "embedding"),
        )
        upsert_rows(
            s,
            TrackTag,
            [
                {
                    "model_version_id": version_id,
                    "track_id": int(t),
                    "probs": [float(p) for p in probs[j]],
                    "top_tags": top_tags(probs[j], names),
                }
                for j, t in enumerate(ids)
            ],
            ("probs", "top_tags"),
        )


def embed_job(
    db: Database, track_ids: Sequence[int], *, window: AnalysisWindow | None = None, model: MusicnnModel | None = None
) -> dict[str, Any]:
    """What the ``embed`` queue does for newly indexed tracks: their musicnn embedding and tags, then the outputs
    of every active trained version (classifiers may read that embedding, so it comes first)."""
    from musicindex.ml import backfill

    ids = [int(t) for t in track_ids]
    pre = embed_tracks(db, ids, window=window, model=model)
    trained = backfill.apply_active(db, ids)
    return {"musicnn": pre.to_dict(), **trained}


def unembedded_track_ids(db: Database, version_id: int, limit: int | None = None) -> list[int]:
    """Indexed tracks that have no musicnn embedding under ``version_id``."""
    with db.session() as s:
        has = select(Embedding.track_id).where(Embedding.model_version_id == version_id, Embedding.track_id == Track.id)
        q = select(Track.id).where(Track.status == INDEXED, ~has.exists()).order_by(Track.id)
        if limit is not None:
            q = q.limit(limit)
        return [int(t) for t in s.execute(q).scalars()]


def promote_when_complete(db: Database, version_id: int) -> bool:
    """Promote a candidate musicnn version once every indexed track has its row; returns whether it did."""
    with db.session() as s:
        state = s.execute(select(ModelVersion.state).where(ModelVersion.id == version_id)).scalar_one()
    if state != CANDIDATE or unembedded_track_ids(db, version_id, limit=1):
        return False
    with db.session() as s:
        promote(s, [version_id])
    log.info("musicnn version %s promoted: every indexed track is embedded", version_id)
    return True


@dataclass
class Coverage:
    version_id: int | None
    state: str | None
    embedded: int
    indexed: int

    def to_dict(self) -> dict[str, Any]:
        return {"version": self.version_id, "state": self.state, "embedded": self.embedded, "indexed": self.indexed}


def coverage(db: Database) -> Coverage:
    """How much of the library the newest musicnn version covers (what `musicindex status` shows)."""
    with db.session() as s:
        v = s.execute(
            select(ModelVersion.id, ModelVersion.state)
            .where(ModelVersion.kind == MUSICNN, ModelVersion.state.in_((ACTIVE, CANDIDATE)))
            .order_by(ModelVersion.id.desc())
            .limit(1)
        ).one_or_none()
        indexed = int(s.execute(select(func.count()).where(Track.status == INDEXED)).scalar_one())
        if v is None:
            return Coverage(None, None, 0, indexed)
        embedded = int(
            s.execute(
                select(func.count())
                .select_from(Embedding)
                .join(Track, Track.id == Embedding.track_id)
                .where(Embedding.model_version_id == v.id, Track.status == INDEXED)
            ).scalar_one()
        )
    return Coverage(int(v.id), str(v.state), embedded, indexed)
