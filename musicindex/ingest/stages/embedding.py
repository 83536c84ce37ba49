"""Stages ``embedding.<model>``: one per embedding model of the registry (``pretrained.registry``; musicnn is the
built-in one), in the same pass as the features: the model's inputs (e.g. log-mel patches) from the audio it
reads, taken from the track's one decode while it is in hand; its network once over the inputs of every track of
the batch about to be written (one batched call); the vectors and tags written with the features, in the same
transaction, under the model's current version.

An :class:`EmbeddingPass` is a model bound to that version (made by the worker task through
``musicindex.ml.pretrained.embedding_passes``: ingestion never imports the models' layer); a model that cannot run
in a worker is left out of its pass (its tracks go to the ``embed`` queue).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sqlalchemy.orm import Session

from musicindex.db.orm import Embedding, TrackTag
from musicindex.db.upsert import upsert
from musicindex.errors import ModelNotTrainedError
from musicindex.ingest.stages.base import Audio, Needs, Stage, StageFamily, TrackWork
from musicindex.pretrained import registry
from musicindex.pretrained.registry import EmbeddingModel
from musicindex.vocab import EMBEDDING_STAGE_PREFIX, TOP_TAG_MIN

log = logging.getLogger(__name__)

__all__ = ["MODELS", "EmbeddingPass", "EmbeddingStage", "upsert_rows"]


@dataclass
class EmbeddingPass:
    """One embedding model in an ingest pass: the model (loaded) and the version its rows go under."""

    model: EmbeddingModel
    version_id: int
    tag_names: list[str] = field(default_factory=list)
    seconds: float = 0.0
    """CPU time spent in the network so far (what the benchmarks break down)."""

    def __post_init__(self) -> None:
        if not self.tag_names:
            self.tag_names = list(self.model.tags)

    @property
    def name(self) -> str:
        return self.model.name

    def inputs(self, y: np.ndarray) -> Any:
        """What the network reads of one track's signal (e.g. its log-mel patches)."""
        return self.model.inputs(y)

    def embed(self, batch: Sequence[Any]) -> tuple[np.ndarray, np.ndarray]:
        """Vectors and tag probabilities of several tracks' inputs, in one batched network run."""
        t0 = time.process_time()
        emb, probs = self.model.embed_inputs(list(batch))
        self.seconds += time.process_time() - t0
        emb, probs = np.asarray(emb, dtype=np.float32), np.asarray(probs, dtype=np.float32)
        n = len(batch)
        if emb.shape != (n, int(self.model.dimension)) or probs.shape != (n, len(self.tag_names)):
            raise ModelNotTrainedError(
                f"embedding model {self.name} returned vectors {emb.shape} and tags {probs.shape} for {n} tracks"
            )
        if not (np.isfinite(emb).all() and np.isfinite(probs).all()):
            raise ModelNotTrainedError(f"the {self.name} network returned non-finite values: damaged weights?")
        return emb, probs


class EmbeddingStage(Stage):
    """The stage of one embedding model (``bound``: its pass; None: declared only, for its name and version)."""

    required = False  # a track without it is the backfill's (`musicindex embed`), not a re-analysis

    def __init__(self, model: EmbeddingModel, bound: EmbeddingPass | None = None):
        self.model = model
        self.bound = bound
        self.name = f"{EMBEDDING_STAGE_PREFIX}{model.name}"
        self.version = int(model.extractor_version)
        self.audio = Audio(int(model.sample_rate), model.span)
        self.needs = Needs(audio=(self.audio,))
        self.writes = f"embeddings (space {model.name}) and track_tags, under the model's current version"

    def analyse(self, work: TrackWork) -> Any:
        assert self.bound is not None, "an unbound embedding stage does not run"
        return self.bound.inputs(work.audio.get(self.audio))

    def complete(self, results: Sequence[Any]) -> None:
        """The network once over the inputs of every track of the batch; its vectors and tags replace them."""
        todo = [r for r in results if self.name in r.outputs]
        if not todo or self.bound is None:
            return
        emb, probs = self.bound.embed([r.outputs[self.name] for r in todo])
        for j, r in enumerate(todo):
            r.outputs[self.name] = (emb[j], probs[j])

    def write(self, s: Session, rows: Sequence[tuple[int, Any]]) -> None:
        assert self.bound is not None
        ids = [tid for tid, _ in rows]
        emb = np.stack([out[0] for _, out in rows])
        probs = np.stack([out[1] for _, out in rows])
        upsert_rows(s, self.bound.version_id, self.model.name, ids, emb, probs, self.bound.tag_names)


class EmbeddingModels(StageFamily):
    """One :class:`EmbeddingStage` per model of the registry, in its order."""

    def expand(self, bound: Sequence[Any] | None) -> list[Stage]:
        if bound is None:
            return [EmbeddingStage(m) for m in registry.models()]
        return [EmbeddingStage(p.model, p) for p in bound]


MODELS = EmbeddingModels()


def top_tags(probs: np.ndarray, names: Sequence[str]) -> list[str]:
    """Tags at least ``TOP_TAG_MIN`` probable, most probable first."""
    order = np.argsort(-probs, kind="stable")
    return [str(names[i]) for i in order if probs[i] >= TOP_TAG_MIN]


def upsert_rows(
    session: Session,
    version_id: int,
    space: str,
    ids: Sequence[int],
    emb: np.ndarray,
    probs: np.ndarray,
    names: Sequence[str],
) -> None:
    """Write the vectors (in ``space``) and tags of ``ids`` under ``version_id`` (replacing existing rows); a model
    without tags writes no ``track_tags`` rows."""
    keys = ("model_version_id", "track_id")
    vectors = [
        {"model_version_id": version_id, "track_id": int(t), "space": space, "embedding": emb[j]}
        for j, t in enumerate(ids)
    ]
    upsert(session, Embedding, vectors, keys=keys, update=("space", "embedding"))
    if not len(names):
        return
    tags = [
        {
            "model_version_id": version_id,
            "track_id": int(t),
            "probs": [float(p) for p in probs[j]],
            "top_tags": top_tags(probs[j], names),
        }
        for j, t in enumerate(ids)
    ]
    upsert(session, TrackTag, tags, keys=keys, update=("probs", "top_tags"))
