"""The pretrained spaces: the versions of each embedding model, embedding tracks, their tags, and the backfill.

An embedding model (``musicindex.pretrained.registry``: musicnn is the built-in one) needs no training and no
labels, so its space answers as soon as tracks are embedded. It is versioned like the trained spaces: one
``model_versions`` row of the model's kind per extractor version (``params``: the model's, with its extractor
version; ``classes``: its tag names), its vectors in ``embeddings`` under a partial HNSW index (created empty with
the version and kept up to date by inserts), and its tag probabilities in ``track_tags``.

* :func:`current_version` returns the version of this code's extractor of a model, creating it: active when the
  space has no active version yet, else a candidate that is promoted (in one transaction) once every indexed track
  has a row, so queries never see a half-embedded new version;
* the ingest pass embeds each track it analyses (``ingest.stages.embedding``: the same decode as the features), with
  the :func:`embedding_passes` the worker makes;
* :func:`embed_tracks` decodes the audio each track's model reads, runs the network over several tracks per call
  and writes vectors and tags: the backfill of the ``embed`` queue (a library indexed before the model was added,
  or everything under a new extractor version: :func:`unembedded_track_ids`).

Every function takes the model (an ``EmbeddingModel`` or its name); None means the preferred one
(``registry.default()``: musicnn unless ``MUSICINDEX_EMBEDDING_MODELS`` says otherwise).
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
from musicindex.pretrained import registry
from musicindex.pretrained.registry import EmbeddingModel
from musicindex.vocab import ACTIVE, CANDIDATE, INDEXED

if TYPE_CHECKING:
    from musicindex.ingest.stages.embedding import EmbeddingPass
    from musicindex.pretrained.runtime import MusicnnRuntime

log = logging.getLogger(__name__)

_VERSION_LOCK = 0x6D69_6D6E_6E76  # advisory lock serialising the creation of pretrained versions ('mimnnv')

ModelRef = EmbeddingModel | str | None
"""An embedding model, its name, or None: the preferred one."""


def model_of(model: ModelRef = None) -> EmbeddingModel:
    """The model ``model`` names (None: the preferred one; ModelNotTrainedError when the index uses none)."""
    if isinstance(model, EmbeddingModel):
        return model
    if model is None:
        found = registry.default()
        if found is None:
            raise ModelNotTrainedError(
                "the index uses no embedding model (MUSICINDEX_EMBEDDING_MODELS is empty); the features space answers"
            )
        return found
    return registry.get(model)


def extractor_params(model: ModelRef = None) -> dict[str, Any]:
    """What identifies this code's extractor of ``model`` (stored as the version's ``params``)."""
    return model_of(model).params()


def _matches(v: ModelVersion, params: dict[str, Any]) -> bool:
    p = v.params or {}
    return p.get("model") == params["model"] and p.get("extractor_version") == params["extractor_version"]


def current_version(db: Database, model: ModelRef = None) -> int:
    """The id of the version of this code's extractor of ``model`` (created if there is none; see the module
    docstring)."""
    m = model_of(model)
    params = m.params()
    with db.session() as s:
        s.execute(select(func.pg_advisory_xact_lock(_VERSION_LOCK)))
        versions = (
            s.execute(
                select(ModelVersion)
                .where(ModelVersion.kind == m.name, ModelVersion.state.in_((ACTIVE, CANDIDATE)))
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
            m.name,
            params=params,
            classes=list(m.tags),
            embedding_dim=int(m.dimension),
            weights_sha256=m.weights_sha256,
            active=not has_active,
        )
    create_hnsw_index(db, vid, int(m.dimension))  # empty now; inserts keep it up to date
    log.info("%s version %s created (%s)", m.name, vid, "candidate" if has_active else "active")
    return vid


def active_version(db: Database, model: ModelRef = None) -> ModelVersion | None:
    with db.session() as s:
        return s.execute(
            select(ModelVersion).where(ModelVersion.kind == model_of(model).name, ModelVersion.state == ACTIVE)
        ).scalar_one_or_none()


# --------------------------------------------------------------------------- the network, once per process
def get_model(threads: int = 1) -> MusicnnRuntime:
    """The musicnn runtime of this process (ONNX Runtime, loaded once; ``threads`` applies to the first call)."""
    from musicindex.pretrained.runtime import get_runtime

    return get_runtime(threads=threads)


def warm(threads: int = 1) -> None:
    """Load every embedding model of the registry in this process (a worker's start); a model that cannot load
    is logged (its tracks are indexed without it and sent to the ``embed`` queue)."""
    for m in registry.models():
        try:
            m.warm(threads)
        except Exception:
            log.exception("embedding model %s could not be loaded; tracks are indexed without it", m.name)


def embed_signals(signals: Sequence[np.ndarray], model: ModelRef = None) -> tuple[np.ndarray, np.ndarray]:
    """Vectors and tag probabilities of mono signals at the model's rate (this process's network)."""
    return _checked(model_of(model), *model_of(model).embed(signals))


def _checked(m: EmbeddingModel, emb: Any, probs: Any) -> tuple[np.ndarray, np.ndarray]:
    emb, probs = np.asarray(emb, dtype=np.float32), np.asarray(probs, dtype=np.float32)
    n = emb.shape[0] if emb.ndim == 2 else -1
    if emb.shape != (n, int(m.dimension)) or probs.shape != (n, len(m.tags)):
        raise ModelNotTrainedError(
            f"embedding model {m.name} returned vectors {emb.shape} and tags {probs.shape}, expected "
            f"(n, {m.dimension}) and (n, {len(m.tags)})"
        )
    if not (np.isfinite(emb).all() and np.isfinite(probs).all()):
        raise ModelNotTrainedError(f"the {m.name} network returned non-finite values; its weights may be damaged")
    return emb, probs


def embedding_pass(db: Database, threads: int = 1, model: ModelRef = None) -> EmbeddingPass:
    """One model's part of an ingest pass: the model (loaded) and the version its rows go under."""
    from musicindex.ingest.stages.embedding import EmbeddingPass

    m = model_of(model)
    vid = current_version(db, m)
    with db.session() as s:
        names = s.execute(select(ModelVersion.classes).where(ModelVersion.id == vid)).scalar_one()
    m.warm(threads)
    return EmbeddingPass(m, vid, [str(n) for n in names or []])


def embedding_passes(db: Database, threads: int = 1) -> tuple[list[EmbeddingPass], list[str]]:
    """The embedding part of an ingest pass: a pass per model of the registry, and the names of the models that
    cannot run here (logged; their tracks go to the ``embed`` queue)."""
    passes: list[EmbeddingPass] = []
    broken: list[str] = []
    for name in registry.names():
        try:
            passes.append(embedding_pass(db, threads, name))
        except Exception as exc:
            if _is_outage(exc):
                raise
            log.exception("embedding model %s cannot run here; this job indexes without it", name)
            broken.append(name)
    return passes, broken


def _is_outage(exc: BaseException) -> bool:
    from sqlalchemy.exc import InterfaceError, OperationalError

    return isinstance(exc, (OperationalError, InterfaceError, ConnectionError))


# --------------------------------------------------------------------------- embedding
@dataclass
class EmbedResult:
    version_id: int
    embedded: int
    failed: dict[int, str]
    promoted: bool = False
    model: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "version": self.version_id,
            "embedded": self.embedded,
            "failed": {str(k): v for k, v in self.failed.items()},
            "promoted": self.promoted,
        }


def load_signal(path: str, window: AnalysisWindow, model: ModelRef = None) -> np.ndarray:
    """The audio ``model`` reads of ``path``: mono at its rate, the analysis window or the whole track
    (AudioError for unusable files)."""
    from musicindex.audio.decode import read_audio

    m = model_of(model)
    need = (m.span, int(m.sample_rate))
    signals, _ = read_audio(path, window, [need])
    return signals[need]


def embed_tracks(
    db: Database,
    track_ids: Sequence[int],
    *,
    window: AnalysisWindow | None = None,
    version_id: int | None = None,
    model: Any = None,
) -> EmbedResult:
    """Embed indexed tracks in a model's space and store their tags (already embedded ones again).

    ``model``: an ``EmbeddingModel`` or its name (None: the preferred one; a musicnn runtime, as earlier callers
    pass, means musicnn). A file that cannot be read now (moved, changed, broken) is reported in ``failed`` and
    left without a row; its track keeps its status (ingestion owns that).
    """
    m = model_of(model if isinstance(model, (EmbeddingModel, str)) or model is None else None)
    window = window or AnalysisWindow()
    vid = version_id or current_version(db, m)
    with db.session() as s:
        rows = s.execute(
            select(Track.id, Track.path, Track.path_bytes).where(
                Track.id.in_([int(t) for t in track_ids]), Track.status == INDEXED
            )
        ).all()
        names = s.execute(select(ModelVersion.classes).where(ModelVersion.id == vid)).scalar_one()
    failed: dict[int, str] = {}
    ids: list[int] = []
    inputs: list[Any] = []
    for tid, path, path_bytes in rows:
        try:
            inputs.append(m.inputs(load_signal(fs_path(path, path_bytes), window, m)))
            ids.append(int(tid))
        except AudioError as exc:
            failed[int(tid)] = str(exc)
    if ids:
        emb, probs = _checked(m, *m.embed_inputs(inputs))
        write(db, vid, ids, emb, probs, names or [], space=m.name)
    result = EmbedResult(vid, len(ids), failed, model=m.name)
    result.promoted = promote_when_complete(db, vid)
    return result


def write(
    db: Database,
    version_id: int,
    ids: Sequence[int],
    emb: np.ndarray,
    probs: np.ndarray,
    names: Sequence[str],
    space: str | None = None,
) -> None:
    """Upsert vectors and tags of ``ids`` under ``version_id`` (``space``: the model's name; None: the version's
    kind)."""
    from musicindex.ingest.stages.embedding import upsert_rows as write_rows

    emb = np.asarray(emb, dtype=np.float32)
    probs = np.asarray(probs, dtype=np.float32)
    if not (np.isfinite(emb).all() and np.isfinite(probs).all()):
        raise ModelNotTrainedError("the network returned non-finite values; its weights may be damaged")
    with db.session() as s:
        if space is None:
            space = s.execute(select(ModelVersion.kind).where(ModelVersion.id == version_id)).scalar_one()
        write_rows(s, version_id, space, ids, emb, probs, names)


def embed_job(
    db: Database,
    track_ids: Sequence[int],
    *,
    window: AnalysisWindow | None = None,
    model: Any = None,
    musicnn: bool = True,
) -> dict[str, Any]:
    """What the ``embed`` queue does: the vectors and tags of ``track_ids`` in every embedding model's space (the
    backfill; ``musicnn`` False after an ingest pass, which embedded them already), then the outputs of every
    active trained version (classifiers may read an embedding, so it comes first). ``model`` is accepted for
    earlier callers (a runtime): each model runs its own process-wide network.

    Returns ``{"pretrained": {model: result}, "musicnn": the preferred model's result (its summary), ...}``."""
    from musicindex.ml import backfill

    ids = [int(t) for t in track_ids]
    results: dict[str, Any] = {}
    if musicnn:
        for m in registry.models():
            results[m.name] = embed_tracks(db, ids, window=window, model=m).to_dict()
    trained = backfill.apply_active(db, ids)
    first = next(iter(results.values()), None)
    return {"pretrained": results, "musicnn": first, **trained}


def unembedded_track_ids(db: Database, version_id: int, limit: int | None = None) -> list[int]:
    """Indexed tracks that have no vector under ``version_id``."""
    with db.session() as s:
        has = select(Embedding.track_id).where(Embedding.model_version_id == version_id, Embedding.track_id == Track.id)
        q = select(Track.id).where(Track.status == INDEXED, ~has.exists()).order_by(Track.id)
        if limit is not None:
            q = q.limit(limit)
        return [int(t) for t in s.execute(q).scalars()]


def unembedded(db: Database) -> tuple[int | None, list[int]]:
    """(the preferred model's current version, the indexed tracks some model of the registry has no vector of
    under its current version, in id order): what ``musicindex embed`` backfills."""
    ids: set[int] = set()
    first: int | None = None
    for m in registry.models():
        vid = current_version(db, m)
        first = vid if first is None else first
        ids.update(unembedded_track_ids(db, vid))
    return first, sorted(ids)


def promote_when_complete(db: Database, version_id: int) -> bool:
    """Promote a candidate pretrained version once every indexed track has its row; returns whether it did."""
    with db.session() as s:
        state = s.execute(select(ModelVersion.state).where(ModelVersion.id == version_id)).scalar_one()
    if state != CANDIDATE or unembedded_track_ids(db, version_id, limit=1):
        return False
    with db.session() as s:
        promote(s, [version_id])
    log.info("pretrained version %s promoted: every indexed track is embedded", version_id)
    return True


@dataclass
class Coverage:
    version_id: int | None
    state: str | None
    embedded: int
    indexed: int
    model: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"version": self.version_id, "state": self.state, "embedded": self.embedded, "indexed": self.indexed}


def coverage(db: Database, model: ModelRef = None) -> Coverage:
    """How much of the library the newest version of ``model`` covers (what `musicindex status` shows)."""
    name = model_of(model).name if (model is not None or registry.names()) else None
    with db.session() as s:
        indexed = int(s.execute(select(func.count()).where(Track.status == INDEXED)).scalar_one())
        if name is None:
            return Coverage(None, None, 0, indexed)
        v = s.execute(
            select(ModelVersion.id, ModelVersion.state)
            .where(ModelVersion.kind == name, ModelVersion.state.in_((ACTIVE, CANDIDATE)))
            .order_by(ModelVersion.id.desc())
            .limit(1)
        ).one_or_none()
        if v is None:
            return Coverage(None, None, 0, indexed, name)
        embedded = int(
            s.execute(
                select(func.count())
                .select_from(Embedding)
                .join(Track, Track.id == Embedding.track_id)
                .where(Embedding.model_version_id == v.id, Track.status == INDEXED)
            ).scalar_one()
        )
    return Coverage(int(v.id), str(v.state), embedded, indexed, name)


def coverages(db: Database) -> dict[str, dict[str, Any]]:
    """:func:`coverage` of every embedding model of the registry, by name."""
    return {m.name: coverage(db, m).to_dict() for m in registry.models()}
