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
* the ingest pass embeds each track it analyses (``ingest.embedding``: the same decode as the features);
* :func:`embed_tracks` decodes the analysis window of each given track at 16 kHz, runs the network
  over the patches of several tracks per call and writes embeddings and tags: the backfill of the ``embed``
  queue (a library indexed before the space existed, or everything under a new extractor version:
  :func:`unembedded_track_ids`).

The network runs on ONNX Runtime (``musicindex.pretrained.runtime``; one thread per process), never on
TensorFlow: the workers import TensorFlow only to train. An extractor version names the runtime's variant and
its graph's sha256.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from sqlalchemy import func, select

from musicindex.audio.window import AnalysisWindow
from musicindex.db.orm import Embedding, ModelVersion, Track
from musicindex.db.paths import fs_path
from musicindex.db.session import Database
from musicindex.errors import AudioError, ModelNotTrainedError
from musicindex.ml.backfill import create_hnsw_index
from musicindex.ml.registry import create_pretrained_version, promote
from musicindex.vocab import ACTIVE, CANDIDATE, INDEXED, MUSICNN

if TYPE_CHECKING:
    from musicindex.ingest.embedding import EmbeddingPass
    from musicindex.pretrained.runtime import MusicnnRuntime

log = logging.getLogger(__name__)

_VERSION_LOCK = 0x6D69_6D6E_6E76  # advisory lock serialising the creation of musicnn versions ('mimnnv')


def extractor_params() -> dict[str, Any]:
    """What identifies this code's musicnn extractor (stored as the version's ``params``)."""
    from musicindex.pretrained import musicnn, runtime

    weights = musicnn.WEIGHTS[musicnn.MODEL_NAME]
    graph, _ = runtime.parse_variant(runtime.DEFAULT_VARIANT)
    return {
        "model": musicnn.MODEL_NAME,
        "extractor_version": runtime.EXTRACTOR_VERSION,
        "variant": runtime.DEFAULT_VARIANT,
        "runtime": "onnxruntime",
        "graph_sha256": runtime.ONNX_FILES[graph].sha256,
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
def get_model(threads: int = 1) -> MusicnnRuntime:
    """The musicnn runtime of this process (ONNX Runtime, loaded once; ``threads`` applies to the first call)."""
    from musicindex.pretrained.runtime import get_runtime

    return get_runtime(threads=threads)


def embed_signals(signals: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Mean embeddings ``(n, 200)`` and tag probabilities ``(n, 50)`` of 16 kHz mono signals (this process's
    network)."""
    return get_model().embed(signals)


def embedding_pass(db: Database, threads: int = 1) -> EmbeddingPass:
    """The musicnn part of an ingest pass: this process's runtime and the version its rows go under."""
    from musicindex.ingest.embedding import EmbeddingPass

    vid = current_version(db)
    with db.session() as s:
        names = s.execute(select(ModelVersion.classes).where(ModelVersion.id == vid)).scalar_one()
    return EmbeddingPass(vid, get_model(threads), list(names or []))


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
    model: MusicnnRuntime | None = None,
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
    from musicindex.ingest.embedding import upsert_rows as write_rows

    emb = np.asarray(emb, dtype=np.float32)
    probs = np.asarray(probs, dtype=np.float32)
    if not (np.isfinite(emb).all() and np.isfinite(probs).all()):
        raise ModelNotTrainedError("the musicnn network returned non-finite values; its weights may be damaged")
    with db.session() as s:
        write_rows(s, version_id, ids, emb, probs, names)


def embed_job(
    db: Database,
    track_ids: Sequence[int],
    *,
    window: AnalysisWindow | None = None,
    model: MusicnnRuntime | None = None,
    musicnn: bool = True,
) -> dict[str, Any]:
    """What the ``embed`` queue does: the musicnn embedding and tags of ``track_ids`` (the backfill; ``musicnn``
    False after an ingest pass, which embedded them already), then the outputs of every active trained version
    (classifiers may read that embedding, so it comes first)."""
    from musicindex.ml import backfill

    ids = [int(t) for t in track_ids]
    pre = embed_tracks(db, ids, window=window, model=model).to_dict() if musicnn else None
    trained = backfill.apply_active(db, ids)
    return {"musicnn": pre, **trained}


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
