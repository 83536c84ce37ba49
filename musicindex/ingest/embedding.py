"""The musicnn embedding in the ingest pass: the same decode as the features, the embedding and tags written in the
same transaction.

An :class:`EmbeddingPass` carries the CPU runtime (ONNX Runtime, no TensorFlow:
:mod:`musicindex.pretrained.runtime`) and the musicnn version its rows belong to (made by the caller, the worker
task, through ``musicindex.ml.pretrained.current_version``). The processor asks it for a clip's patches while the
16 kHz window is in hand (:meth:`EmbeddingPass.patches`), runs the network once over the patches of every track
waiting to be written (:meth:`EmbeddingPass.embed`), and writes the rows with the features
(:func:`upsert_rows`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sqlalchemy.orm import Session

from musicindex.db.orm import Embedding, TrackTag
from musicindex.db.upsert import upsert
from musicindex.errors import ModelNotTrainedError
from musicindex.pretrained.musicnn import SAMPLE_RATE
from musicindex.vocab import MUSICNN, TOP_TAG_MIN

__all__ = ["SAMPLE_RATE", "EmbeddingPass", "upsert_rows"]


@dataclass
class EmbeddingPass:
    """The musicnn part of one pass: a runtime (``MusicnnRuntime``) and the version the rows go under."""

    version_id: int
    runtime: Any
    tag_names: list[str] = field(default_factory=list)
    seconds: float = 0.0
    """CPU time spent in the network so far (what the benchmarks break down)."""

    def __post_init__(self) -> None:
        if not self.tag_names:
            self.tag_names = list(self.runtime.tags)

    def patches(self, y16k: np.ndarray) -> np.ndarray:
        """The patches of one 16 kHz clip that the network looks at."""
        return self.runtime.clip_patches(y16k)

    def embed(self, clips: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """Mean embeddings and tag probabilities of several clips' patches, in one batched network run."""
        import time

        t0 = time.process_time()
        emb, probs = self.runtime.embed_patches(list(clips))
        self.seconds += time.process_time() - t0
        emb, probs = np.asarray(emb, dtype=np.float32), np.asarray(probs, dtype=np.float32)
        if not (np.isfinite(emb).all() and np.isfinite(probs).all()):
            raise ModelNotTrainedError("the musicnn network returned non-finite values; its weights may be damaged")
        return emb, probs


def top_tags(probs: np.ndarray, names: Sequence[str]) -> list[str]:
    """Tags at least ``TOP_TAG_MIN`` probable, most probable first."""
    order = np.argsort(-probs, kind="stable")
    return [str(names[i]) for i in order if probs[i] >= TOP_TAG_MIN]


def upsert_rows(
    session: Session,
    version_id: int,
    ids: Sequence[int],
    emb: np.ndarray,
    probs: np.ndarray,
    names: Sequence[str],
) -> None:
    """Write the embeddings and tags of ``ids`` under musicnn ``version_id`` (replacing existing rows)."""
    keys = ("model_version_id", "track_id")
    vectors = [
        {"model_version_id": version_id, "track_id": int(t), "space": MUSICNN, "embedding": emb[j]}
        for j, t in enumerate(ids)
    ]
    upsert(session, Embedding, vectors, keys=keys, update=("space", "embedding"))
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
