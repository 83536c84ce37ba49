"""musicnn as an embedding model of the registry: the ONNX Runtime graph of :mod:`musicindex.pretrained.runtime` over
the analysis window at 16 kHz (log-mel patches of 3 s, their penultimate embeddings and tag probabilities averaged).

:data:`MSD_MUSICNN` (``musicnn``, trained on the Million Song Dataset: 200-d, 50 Last.fm tags) is the built-in model;
its ``params`` are exactly those its versions were stored with before the registry existed, so an index keeps its
versions. Importing this module imports numpy only: the runtime loads on first use (or :meth:`warm`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from musicindex.pretrained import musicnn, runtime
from musicindex.pretrained.registry import EmbeddingModel
from musicindex.vocab import MUSICNN, SPAN_WINDOW


class MusicnnEmbedder(EmbeddingModel):
    """A musicnn network (``weights``: a checkpoint of :data:`musicnn.WEIGHTS <musicindex.pretrained.musicnn.WEIGHTS>`)
    run by ONNX Runtime in this process (:func:`runtime.get_runtime <musicindex.pretrained.runtime.get_runtime>`)."""

    span = SPAN_WINDOW

    def __init__(self, name: str, weights: str = musicnn.MODEL_NAME):
        self.name = name
        self.weights = weights
        self.sample_rate = musicnn.SAMPLE_RATE
        self.dimension = musicnn.EMBEDDING_DIM
        self.tags = musicnn.WEIGHTS[weights].tags

    @property
    def extractor_version(self) -> int:  # type: ignore[override]
        """The runtime's (read at call time: a new default variant bumps it)."""
        return runtime.EXTRACTOR_VERSION

    @property
    def weights_sha256(self) -> str:
        return musicnn.WEIGHTS[self.weights].sha256

    def params(self) -> dict[str, Any]:
        graph, _ = runtime.parse_variant(runtime.DEFAULT_VARIANT)
        return {
            "model": self.weights,
            "extractor_version": self.extractor_version,
            "variant": runtime.DEFAULT_VARIANT,
            "runtime": "onnxruntime",
            "graph_sha256": runtime.ONNX_FILES[graph].sha256,
            "weights_sha256": self.weights_sha256,
            "sample_rate": self.sample_rate,
            "patch_seconds": round(musicnn.PATCH_FRAMES * musicnn.HOP / musicnn.SAMPLE_RATE, 3),
            "clip_vector": "mean over non-overlapping patches of the analysis window",
        }

    def runtime(self, threads: int = 1) -> runtime.MusicnnRuntime:
        """The process's runtime (loaded once; ``threads`` applies to the first call)."""
        if self.weights != musicnn.MODEL_NAME:
            return runtime.MusicnnRuntime.load(self.weights, threads=threads)  # raises: no graph of it ships yet
        return runtime.get_runtime(threads=threads)

    def warm(self, threads: int = 1) -> None:
        self.runtime(threads)

    def inputs(self, y: np.ndarray) -> np.ndarray:
        """The ``(p, 187, 96)`` log-mel patches of a 16 kHz clip that the runtime's variant looks at."""
        return self.runtime().clip_patches(y)

    def embed_inputs(self, batch: Sequence[Any]) -> tuple[np.ndarray, np.ndarray]:
        """Mean embeddings and tag probabilities of several clips' patches, in one batched network run."""
        return self.runtime().embed_patches(list(batch))


MSD_MUSICNN = MusicnnEmbedder(MUSICNN, musicnn.MODEL_NAME)
"""The built-in ``musicnn`` model (:data:`registry.BUILTIN <musicindex.pretrained.registry.BUILTIN>`)."""
