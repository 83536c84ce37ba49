"""Scoring recommendations (pure numpy): exact neighbours, genre precision@k with and without the query's artist,
and the genre a track's neighbours vote for.

*Other-artist* figures leave out every candidate of the query's own group (``folds.group_key``: artist tag, else
album, else folder): a space that finds the same artist's other tracks scores well on plain precision@k without
knowing anything about genres; with the artist effect removed it must find the genre among other artists.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

PAD = -1
"""A neighbour slot with no candidate left (fewer than k tracks by other artists)."""


def unit_rows(mat: np.ndarray) -> np.ndarray:
    mat = np.asarray(mat, dtype=np.float64)
    norms = np.linalg.norm(mat, axis=1, keepdims=True)
    return mat / np.where(norms > 0, norms, 1.0)


def neighbours(
    mat: np.ndarray,
    queries: np.ndarray,
    k: int,
    groups: np.ndarray | None = None,
    *,
    recordings: np.ndarray | None = None,
    chunk: int = 512,
) -> np.ndarray:
    """(len(queries), k) row indices of the k nearest rows (cosine; rows must be unit vectors) of each query row,
    nearest first, the query itself excluded; with ``groups``, rows of the query's own group excluded too; with
    ``recordings`` (a key per row: equal for files of one recording), the query's other copies excluded too (a
    duplicate is no answer). Slots without a candidate are ``PAD``."""
    mat = np.asarray(mat, dtype=np.float64)
    queries = np.asarray(queries, dtype=np.int64)
    n = len(mat)
    out = np.full((len(queries), k), PAD, dtype=np.int64)
    g = None if groups is None else np.asarray(groups, dtype=object)
    r = None if recordings is None else np.asarray(recordings)
    for start in range(0, len(queries), chunk):
        q = queries[start : start + chunk]
        sims = mat[q] @ mat.T
        sims[np.arange(len(q)), q] = -np.inf
        if g is not None:
            sims[g[q][:, None] == g[None, :]] = -np.inf
        if r is not None:
            sims[r[q][:, None] == r[None, :]] = -np.inf
        kk = min(k, n)
        top = np.argpartition(-sims, kk - 1, axis=1)[:, :kk] if kk < n else np.tile(np.arange(n), (len(q), 1))
        order = np.take_along_axis(sims, top, axis=1)
        idx = np.take_along_axis(top, np.argsort(-order, axis=1, kind="stable"), axis=1)[:, :k]
        valid = np.isfinite(np.take_along_axis(sims, idx, axis=1))
        block = np.where(valid, idx, PAD)
        out[start : start + len(q), : block.shape[1]] = block
    return out


def precision_at_k(labels: np.ndarray, queries: np.ndarray, nn: np.ndarray) -> float:
    """Mean share of each query's neighbours that share its label (PAD slots ignored; a query without any
    neighbour is left out); NaN when no query has one."""
    labels = np.asarray(labels, dtype=object)
    scores = []
    for qi, slots in zip(queries, nn, strict=True):
        row = slots[slots != PAD]
        if len(row):
            scores.append(float(np.mean(labels[row] == labels[qi])))
    return float(np.mean(scores)) if scores else float("nan")


def vote(labels: np.ndarray, nn: np.ndarray) -> list[str | None]:
    """The label most of each row's neighbours carry (a tie goes to the label of the nearest among the tied);
    None for a row without neighbours."""
    labels = np.asarray(labels, dtype=object)
    out: list[str | None] = []
    for slots in nn:
        row = slots[slots != PAD]
        if not len(row):
            out.append(None)
            continue
        seq = [str(labels[i]) for i in row]
        counts = Counter(seq)
        top = max(counts.values())
        out.append(next(lab for lab in seq if counts[lab] == top))
    return out


@dataclass(frozen=True)
class Recommendations:
    """How well one space's (or one model's) neighbours answer held-out queries."""

    queries: int
    precision_at_10: float
    other_artist_precision_at_10: float | None
    vote_accuracy: float | None
    vote_macro_f1: float | None


def score_space(
    mat: np.ndarray,
    labels: np.ndarray,
    queries: np.ndarray,
    groups: np.ndarray | None,
    k: int = 10,
    recordings: np.ndarray | None = None,
) -> Recommendations:
    """Plain and other-artist precision@k of ``queries`` (row indices) among every row, and the accuracy and
    macro-F1 of the genre their k nearest other-artist neighbours vote for (plain neighbours without groups);
    ``recordings``: a key per row, a query's other copies of its recording never count (``neighbours``)."""
    from musicindex.ml.metrics import classification_metrics

    mat = unit_rows(mat)
    queries = np.asarray(queries, dtype=np.int64)
    plain = neighbours(mat, queries, k, recordings=recordings)
    other = neighbours(mat, queries, k, groups, recordings=recordings) if groups is not None else None
    voted = vote(labels, other if other is not None else plain)
    pairs = [(str(labels[q]), v) for q, v in zip(queries, voted, strict=True) if v is not None]
    acc = f1 = None
    if pairs:
        truth, pred = zip(*pairs, strict=True)
        m = classification_metrics(list(truth), list(pred), sorted(set(truth) | set(pred)))
        acc, f1 = m["accuracy"], m["macro_f1"]
    return Recommendations(
        queries=len(queries),
        precision_at_10=precision_at_k(labels, queries, plain),
        other_artist_precision_at_10=None if other is None else precision_at_k(labels, queries, other),
        vote_accuracy=acc,
        vote_macro_f1=f1,
    )


def unseen(groups: Sequence[str], queries: np.ndarray, known: np.ndarray) -> np.ndarray:
    """The queries whose group has no row among ``known`` (row indices): artist-disjoint queries."""
    g = np.asarray(groups, dtype=object)
    seen = set(g[np.asarray(known, dtype=np.int64)].tolist())
    return np.array([q for q in np.asarray(queries, dtype=np.int64) if g[q] not in seen], dtype=np.int64)
