"""musicnn on ONNX Runtime: the CPU runtime the ingest workers use (no TensorFlow, no Keras).

The graphs are built from the shipped npz weights by ``tools/export_musicnn_onnx.py``, layer by layer after the
Keras 3 port in :mod:`musicindex.pretrained.musicnn` (whose docstring documents the input representation, the
patches and the network); ``PROVENANCE.md`` in ``data/`` records how each file was made. Every file's sha256 is
recorded in :data:`ONNX_FILES` and checked on every load.

Input representation and patches are the port's own :func:`~musicindex.pretrained.musicnn.logmel` and
:func:`~musicindex.pretrained.musicnn.patches`; a *variant* says which graph runs and which of a clip's patches
it looks at (:data:`VARIANTS`):

* ``fp32-10p``: the fp32 graph on every non-overlapping patch (10 in the 30 s analysis window): the port's
  contract, equal to :meth:`MusicnnModel.embed <musicindex.pretrained.musicnn.MusicnnModel.embed>` within its
  tolerances (see ``tests/test_musicnn_onnx.py``). The shipped fp32 graph leaves out the 497 of the 561
  front-end filters that are dead in this checkpoint (their outputs are constants, folded into the layers that
  read them; outputs move by < 5e-6): 0.29 instead of 2.80 GFLOP a patch;
* ``fp32-<k>p``: ``k`` of those patches, evenly spaced (``round(linspace(0, n - 1, k))``; all of them when a
  clip has ``n <= k``); ``fp32-<k>s``: ``k`` patches whose starts are evenly spread over all the clip's frames
  (so they may straddle the non-overlapping grid, and reach its last frames);
* ``int8-...`` and ``full-...``: the same placements on graphs that are not shipped, for measurements
  (``benchmarks/musicnn_variants.py`` builds them; load them with ``path=`` and ``check_sha256=False``): ``int8``
  is the pruned graph with static QDQ int8 timbral convolutions, ``full`` the unpruned fp32 graph.

:data:`DEFAULT_VARIANT` is the cheapest variant whose quality on the real-music dev set stays within 0.01 of
``fp32-10p`` (``benchmarks/musicnn_variants.py``): ``fp32-10p`` itself. Measured on one core of the project
machine (AMD EPYC, AVX2): 78 ms CPU per 30 s window (the unpruned fp32 graph: 468 ms; TensorFlow: ~1.5 s), plus
about 20 ms for the log-mel. Fewer patches (3 to 6 of the 10) cost proportionally less but lose 2 to 10 of the 82
held-out tracks in KNN accuracy; int8 convolutions (static QDQ) are no faster than the pruned fp32 graph and
change the vectors by up to 0.1. Session options: ``threads`` intra-op threads (default 1:
the workers run one process per core), one inter-op thread, sequential execution, no spinning, all graph
optimisations (ONNX Runtime's NCHWc layout for the convolutions).
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from musicindex.errors import InvalidArgumentError, PretrainedModelError
from musicindex.pretrained import musicnn
from musicindex.pretrained.musicnn import EMBEDDING_DIM, N_MELS, PATCH_FRAMES

DATA_DIR = musicnn.DATA_DIR


@dataclass(frozen=True)
class OnnxFile:
    """A shipped ONNX graph: its file name in ``DATA_DIR``, recorded sha256 and how it was made."""

    filename: str
    sha256: str
    provenance: str

    @property
    def path(self) -> Path:
        """Where the file is installed."""
        return DATA_DIR / self.filename


ONNX_FILES: dict[str, OnnxFile] = {
    "fp32": OnnxFile(
        "msd_musicnn.onnx",
        "5835f424a96cbf13b15fdc7f4bb9754f9cf6c99b5c5818078fa72fe2a36bec92",
        "built node by node by tools/export_musicnn_onnx.py (dead front-end filters pruned) from msd_musicnn.npz "
        "(sha256 cfd806777e3fd9fe7ab41c80ab2622ef2ad77b28d982b3af4fb60dead4dc0c35); onnx 1.23.2, numpy 2.4.6, "
        "onnxruntime 1.32.0, opset 17, IR 8",
    ),
}
"""The graphs of ``MSD_musicnn`` by precision (see ``data/PROVENANCE.md``)."""

_PLACEMENT = re.compile(r"^(?P<graph>fp32|full|int8)-(?P<k>[1-9][0-9]?)(?P<how>[ps])$")
VARIANTS: tuple[str, ...] = ("fp32-10p", "fp32-6p", "fp32-5p", "fp32-5s", "fp32-4s", "fp32-3s")
"""The variants measured by ``benchmarks/musicnn_variants.py`` (any ``<graph>-<k><p|s>`` name loads)."""
REFERENCE_VARIANT = "fp32-10p"
"""The variant equal to the Keras port (every non-overlapping patch, fp32)."""
DEFAULT_VARIANT = "fp32-10p"
"""The variant of :func:`get_runtime` (see the module docstring)."""
EXTRACTOR_VERSION = 1
"""Version of the values the default variant stores: 1 if they equal the Keras port's (``musicnn.EXTRACTOR_VERSION``
1), 2 if the default variant computes different vectors (fewer patches, int8)."""
MAX_BATCH_PATCHES = 10
"""Patches per ONNX Runtime call at most. Measured (one thread, CPU ms a patch): 8.5 at 1 patch a call, 8.2 at 2,
7.9 at 5, 7.7 at 10, 7.9 at 40; the activations (about 3 MB a patch) stay allocated in the session's arena at
the largest batch seen, so larger calls only cost memory."""

_WINDOW_PATCHES = 10  # non-overlapping patches in the 30 s analysis window (1876 frames)


FULL_FILTERS = (204, 204, 51, 51, 51)
"""Filters of the five front-end branches: timbral 7 x 38 and 7 x 67, temporal 128, 64 and 32 frames."""
LIVE_FILTERS = (23, 14, 3, 7, 17)
"""The filters that are not dead in MSD_musicnn: 64 of 561. The others' outputs cannot move by more than 5e-5
(most have weights of ~1e-30), so the pruned graphs fold their constant outputs into the layers that read them
(``tools/export_musicnn_onnx.py``, ``dead_filters``)."""
GRAPH_FILTERS = {"fp32": LIVE_FILTERS, "int8": LIVE_FILTERS, "full": FULL_FILTERS}
"""The front-end filters each graph computes: ``fp32`` (shipped) and ``int8`` are pruned, ``full`` (the unpruned
fp32 graph, for measurements only, never shipped) computes all of them."""


def network_gflop(filters: Sequence[int] = FULL_FILTERS) -> float:
    """Multiply-adds x 2 of one patch through the network computing ``filters`` front-end filters (convolutions
    and dense layers; the elementwise ops, pools and batch norms add about 0.1 %)."""
    t, f = PATCH_FRAMES, N_MELS
    flop = 0
    for n, kf in zip(filters[:2], (38, 67), strict=True):  # timbral n x (7 x kf), "valid" in frequency
        flop += 2 * n * 7 * kf * t * (f - kf + 1)
    for n, kt in zip(filters[2:], (128, 64, 32), strict=True):  # temporal n x (kt x 1), "same"
        flop += 2 * n * kt * t * f
    flop += 2 * 64 * sum(filters) * 7 * t + 2 * 2 * 64 * 64 * 7 * t  # mid end
    flop += 2 * 1506 * EMBEDDING_DIM + 2 * EMBEDDING_DIM * len(musicnn.TAGS)  # back end
    return flop / 1e9


@dataclass(frozen=True)
class Placement:
    """Which patches of a clip a variant looks at: ``count`` of them (None: all), on the grid or spread."""

    count: int | None
    spread: bool

    def cut(self, mel: np.ndarray) -> np.ndarray:
        """``(p, 187, 96)`` patches of a ``(n_frames, 96)`` log-mel representation."""
        grid = musicnn.patches(mel)
        n = grid.shape[0]
        if self.count is None or (n <= self.count and not self.spread):
            return grid
        k = min(self.count, n)
        if not self.spread:
            return np.ascontiguousarray(grid[np.round(np.linspace(0, n - 1, k)).astype(int)])
        starts = np.round(np.linspace(0, mel.shape[0] - PATCH_FRAMES, k)).astype(int)
        return np.ascontiguousarray(np.stack([mel[s : s + PATCH_FRAMES] for s in starts]))


def parse_variant(variant: str) -> tuple[str, Placement]:
    """(graph precision, patch placement) of a variant name such as ``fp32-10p`` or ``int8-5s``."""
    match = _PLACEMENT.match(variant) if isinstance(variant, str) else None
    if match is None:
        raise InvalidArgumentError(
            f"unknown musicnn variant {variant!r}; known: {', '.join(VARIANTS)} (or <fp32|full|int8>-<k><p|s>)"
        )
    k = int(match["k"])
    spread = match["how"] == "s"
    count = None if (k == _WINDOW_PATCHES and not spread) else k
    return match["graph"], Placement(count, spread)


def _session_errors() -> tuple[type[BaseException], ...]:
    from onnxruntime.capi import onnxruntime_pybind11_state as state

    return tuple(
        getattr(state, name)
        for name in ("Fail", "InvalidArgument", "InvalidGraph", "InvalidProtobuf", "NoSuchFile", "RuntimeException")
        if hasattr(state, name)
    )


def read_graph(path: str | os.PathLike[str], sha256: str | None) -> bytes:
    """The bytes of an ONNX file, after checking it can be read and matches ``sha256`` (unless None).

    Raises :class:`PretrainedModelError` with what to do.
    """
    how_to_fix = (
        "reinstall musicindex (the graphs ship inside the package), or regenerate them with "
        "tools/export_musicnn_onnx.py from the shipped msd_musicnn.npz"
    )
    return musicnn.read_checked(path, sha256, "musicnn ONNX file", how_to_fix)


class MusicnnRuntime:
    """A musicnn graph in an ONNX Runtime session: per-patch outputs and per-clip mean embeddings and tags."""

    name: str
    tags: tuple[str, ...]
    variant: str
    gflop_per_patch: float

    def __init__(self, name: str, variant: str, session: Any) -> None:
        self.name = name
        self.tags = musicnn.WEIGHTS[name].tags
        self.variant = variant
        self.graph, self.placement = parse_variant(variant)
        self.gflop_per_patch = network_gflop(GRAPH_FILTERS[self.graph])
        self._session = session

    @classmethod
    def load(
        cls,
        name: str = musicnn.MODEL_NAME,
        *,
        variant: str | None = None,
        threads: int = 1,
        path: str | os.PathLike[str] | None = None,
        check_sha256: bool = True,
    ) -> MusicnnRuntime:
        """Open the graph of ``variant`` (default :data:`DEFAULT_VARIANT`) in a session of ``threads`` threads.

        ``path`` overrides the shipped file of the variant's graph (its recorded sha256 still applies unless
        ``check_sha256`` is False, which is for freshly exported files only). Raises :class:`PretrainedModelError`
        for a missing, corrupted or unloadable file and :class:`~musicindex.errors.InvalidArgumentError` for an
        unknown model or variant or a thread count below 1.
        """
        import onnxruntime as ort

        if name != musicnn.MODEL_NAME:
            raise InvalidArgumentError(f"no ONNX graph of musicnn model {name!r}; only {musicnn.MODEL_NAME!r} has one")
        variant = variant or DEFAULT_VARIANT
        graph, _ = parse_variant(variant)
        if threads < 1:
            raise InvalidArgumentError(f"threads must be >= 1, got {threads}")
        spec = ONNX_FILES.get(graph)
        if spec is not None:
            source = Path(path) if path is not None else spec.path
            data = read_graph(source, spec.sha256 if check_sha256 else None)
        elif path is not None and not check_sha256:
            source = Path(path)
            data = read_graph(source, None)
        else:
            raise PretrainedModelError(
                f"no {graph} graph of {name} is shipped (variant {variant!r}); shipped: {', '.join(ONNX_FILES)}. "
                "Make one with tools/export_musicnn_onnx.py and pass path= and check_sha256=False to try it"
            )
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.add_session_config_entry("session.inter_op.allow_spinning", "0")
        options.log_severity_level = 3
        try:
            session = ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])
        except _session_errors() as err:
            raise PretrainedModelError(
                f"musicnn ONNX file {source} is unreadable ({err}); reinstall musicindex or re-export it with "
                "tools/export_musicnn_onnx.py"
            ) from err
        return cls(name, variant, session)

    def clip_patches(self, y16k: np.ndarray) -> np.ndarray:
        """The ``(p, 187, 96)`` patches of one 16 kHz mono clip that this variant looks at.

        Raises :class:`~musicindex.errors.InvalidAudioError` for an empty or non-finite signal and
        :class:`~musicindex.errors.InvalidArgumentError` for one that is not one-dimensional.
        """
        return self.placement.cut(musicnn.logmel(y16k))

    def _run(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        embedding, probabilities = self._session.run(None, {"logmel": batch})
        return embedding, probabilities

    def patch_outputs(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per-patch penultimate embeddings ``(p, 200)`` and tag probabilities ``(p, T)`` of ``(p, 187, 96)`` patches.

        At most :data:`MAX_BATCH_PATCHES` patches go through the graph per call.
        """
        batch = np.ascontiguousarray(batch, dtype=np.float32)
        if batch.ndim != 3 or batch.shape[1:] != (PATCH_FRAMES, N_MELS):
            raise InvalidArgumentError(f"expected (p, {PATCH_FRAMES}, {N_MELS}) patches, got {batch.shape}")
        if not np.isfinite(batch).all():
            raise InvalidArgumentError("non-finite values (NaN or infinity) in the patches given to musicnn")
        embeddings = np.empty((batch.shape[0], EMBEDDING_DIM), np.float32)
        probabilities = np.empty((batch.shape[0], len(self.tags)), np.float32)
        for start in range(0, batch.shape[0], MAX_BATCH_PATCHES):
            stop = min(batch.shape[0], start + MAX_BATCH_PATCHES)
            embeddings[start:stop], probabilities[start:stop] = self._run(batch[start:stop])
        return embeddings, probabilities

    def embed_patches(self, clips: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """Mean embeddings ``(n, 200)`` and mean tag probabilities ``(n, T)`` of ``n`` clips' patch arrays.

        Each element is a ``(p >= 1, 187, 96)`` array (:meth:`clip_patches`); the patches of all clips are batched
        together across clip boundaries.
        """
        if not clips:
            return np.empty((0, EMBEDDING_DIM), np.float32), np.empty((0, len(self.tags)), np.float32)
        for i, clip in enumerate(clips):
            if clip.ndim != 3 or clip.shape[0] == 0 or clip.shape[1:] != (PATCH_FRAMES, N_MELS):
                raise InvalidArgumentError(
                    f"clip {i}: expected (p >= 1, {PATCH_FRAMES}, {N_MELS}) patches, got {clip.shape}"
                )
        embeddings, probabilities = self.patch_outputs(np.concatenate(clips))
        ends = np.cumsum([c.shape[0] for c in clips])[:-1]
        return (
            np.stack([part.mean(axis=0) for part in np.split(embeddings, ends)]),
            np.stack([part.mean(axis=0) for part in np.split(probabilities, ends)]),
        )

    def embed(self, signals: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """Mean penultimate embeddings ``(n, 200)`` and mean tag probabilities ``(n, T)`` of 16 kHz mono signals.

        The contract of :meth:`MusicnnModel.embed <musicindex.pretrained.musicnn.MusicnnModel.embed>`, with this
        variant's patches.
        """
        return self.embed_patches([self.clip_patches(y) for y in signals])


_runtime: MusicnnRuntime | None = None
_lock = threading.Lock()


def get_runtime(threads: int = 1) -> MusicnnRuntime:
    """The process-wide runtime of :data:`DEFAULT_VARIANT` (created on first use; thread-safe).

    ``threads`` applies to the first call only: later calls return the same runtime.
    """
    global _runtime
    if _runtime is None:
        with _lock:
            if _runtime is None:
                _runtime = MusicnnRuntime.load(threads=threads)
    return _runtime
