"""Vector helpers of the query layer: pgvector's text form, unit vectors, spherical interpolation, exact k-NN."""

from __future__ import annotations

import numpy as np
from pgvector import Vector

from musicindex.errors import InvalidArgumentError


def vec_literal(v: np.ndarray) -> str:
    """pgvector's text form of a finite 1-d array (sent as a parameter, never formatted into SQL)."""
    arr = np.asarray(v, dtype=np.float64).ravel()
    if not np.all(np.isfinite(arr)):
        raise InvalidArgumentError("query vector has non-finite values")
    return str(Vector(arr).to_text())


def parse_vec(text: str) -> np.ndarray:
    """A vector read as text (``embedding::text``), by pgvector's own parser."""
    return np.asarray(Vector.from_text(text).to_numpy(), dtype=np.float64)


def unit(v: np.ndarray) -> np.ndarray:
    n = float(np.linalg.norm(v))
    return v / n if n > 0 else v


def slerp(a: np.ndarray, b: np.ndarray, t: float) -> np.ndarray:
    """Spherical interpolation between unit vectors (linear when they are (anti)parallel)."""
    dot = float(np.clip(np.dot(a, b), -1.0, 1.0))
    omega = np.arccos(dot)
    if omega < 1e-6 or abs(np.pi - omega) < 1e-6:
        return unit((1 - t) * a + t * b)
    so = np.sin(omega)
    return unit(np.sin((1 - t) * omega) / so * a + np.sin(t * omega) / so * b)


def knn_exact(mat: np.ndarray, k: int, chunk: int = 2048) -> np.ndarray:
    """Indices of the k nearest rows (cosine, self excluded) of each row of a unit matrix."""
    n = mat.shape[0]
    k = min(k, n - 1)
    out = np.zeros((n, max(k, 0)), dtype=np.int64)
    if k <= 0:
        return out
    for s in range(0, n, chunk):
        sims = mat[s : s + chunk] @ mat.T
        rows = np.arange(sims.shape[0])
        sims[rows, rows + s] = -np.inf
        part = np.argpartition(-sims, k - 1, axis=1)[:, :k]
        order = np.argsort(-np.take_along_axis(sims, part, axis=1), axis=1, kind="stable")
        out[s : s + chunk] = np.take_along_axis(part, order, axis=1)
    return out
