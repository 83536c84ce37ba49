"""Reading the training set from the database: features, labels, spectrogram patches.

Training reads only the database (``tracks`` with status ``indexed``, ``track_features``,
``spectrograms``), never the audio files, so it can run on a machine without the music.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from musicindex.db.orm import Embedding, Spectrogram, Track, TrackFeatures
from musicindex.errors import NotEnoughDataError
from musicindex.ml.folds import group_key
from musicindex.vocab import FEATURE_NAMES, N_FEATURES

PATCH_FRAMES = 128
"""CNN input width: 128 frames of hop 512 at 22 050 Hz = 2.97 s."""

MIN_TRACKS_PER_LABEL = 5
"""Fewest labelled tracks a genre needs (also at least the number of CV folds)."""

MIN_TRACKS_CLUSTERING = 10
"""Fewest indexed tracks clustering needs."""

_FEATURE_COLS = [getattr(TrackFeatures, n) for n in FEATURE_NAMES]


@dataclass
class Dataset:
    """Every indexed track with features; ``labels[i]`` is None for unlabelled tracks."""

    track_ids: np.ndarray  # int64 (n,)
    X: np.ndarray  # float64 (n, 43), FEATURE_NAMES order
    labels: np.ndarray  # object (n,), str or None
    fingerprint: str
    groups: np.ndarray | None = None
    """object (n,): each track's artist group (``folds.group_key``: artist tag, else album, else folder)."""

    @property
    def labelled(self) -> np.ndarray:
        return np.array([lab is not None for lab in self.labels], dtype=bool)

    def class_counts(self) -> dict[str, int]:
        return dict(sorted(Counter(lab for lab in self.labels if lab is not None).items()))


def load_dataset(session: Session) -> Dataset:
    """All indexed tracks that have features (rows with non-finite values are left out)."""
    rows = session.execute(
        select(
            Track.id,
            Track.label,
            Track.content_hash,
            TrackFeatures.version,
            Track.artist,
            Track.album,
            Track.path,
            *_FEATURE_COLS,
        )
        .join(TrackFeatures, TrackFeatures.track_id == Track.id)
        .where(Track.status == "indexed")
        .order_by(Track.id)
    ).all()
    ids = np.array([r[0] for r in rows], dtype=np.int64)
    labels = np.array([(r[1].strip() or None) if r[1] is not None else None for r in rows], dtype=object)
    groups = np.array([group_key(r[4], r[5], r[6]) for r in rows], dtype=object)
    X = np.array([r[7:] for r in rows], dtype=np.float64).reshape(len(rows), N_FEATURES)
    ok = np.isfinite(X).all(axis=1)
    h = hashlib.sha256()
    for r, good in zip(rows, np.asarray(ok).tolist(), strict=True):
        if good:
            h.update(f"{r[0]}|{r[2]}|{r[1]}|{r[3]}\n".encode())
    return Dataset(track_ids=ids[ok], X=X[ok], labels=labels[ok], fingerprint=h.hexdigest(), groups=groups[ok])


def load_features(session: Session, track_ids: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """(ids, X) for those of ``track_ids`` that are indexed and have finite features."""
    ids_out: list[int] = []
    X: list[Sequence[float]] = []
    ids = [int(t) for t in track_ids]
    for i in range(0, len(ids), 5000):
        chunk = ids[i : i + 5000]
        for r in session.execute(
            select(Track.id, *_FEATURE_COLS)
            .join(TrackFeatures, TrackFeatures.track_id == Track.id)
            .where(Track.id.in_(chunk), Track.status == "indexed")
            .order_by(Track.id)
        ):
            ids_out.append(r[0])
            X.append(r[1:])
    arr = np.array(X, dtype=np.float64).reshape(len(X), N_FEATURES)
    ok = np.isfinite(arr).all(axis=1)
    return np.array(ids_out, dtype=np.int64)[ok], arr[ok]


def load_embeddings(
    session: Session, version_id: int, track_ids: Sequence[int] | np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(ids, vectors) of those of ``track_ids`` that have an embedding under ``version_id`` (ids ascending)."""
    ids = [int(t) for t in track_ids]
    out_ids: list[int] = []
    vecs: list[np.ndarray] = []
    for i in range(0, len(ids), 5000):
        for tid, vec in session.execute(
            select(Embedding.track_id, Embedding.embedding)
            .where(Embedding.model_version_id == int(version_id), Embedding.track_id.in_(ids[i : i + 5000]))
            .order_by(Embedding.track_id)
        ):
            out_ids.append(int(tid))
            vecs.append(np.asarray(vec, dtype=np.float64))
    if not vecs:
        return np.zeros(0, dtype=np.int64), np.zeros((0, 0))
    order = np.argsort(out_ids, kind="stable")
    return np.array(out_ids, dtype=np.int64)[order], np.array(vecs, dtype=np.float64)[order]


def load_spectrograms(session: Session, track_ids: Iterable[int]) -> dict[int, np.ndarray]:
    """Decoded log-mel spectrograms (n_mels, n_frames) float32 of the given tracks that have one."""
    from musicindex.audio import decode_spectrogram

    ids = [int(t) for t in track_ids]
    out: dict[int, np.ndarray] = {}
    for i in range(0, len(ids), 500):
        chunk = ids[i : i + 500]
        for tid, data in session.execute(
            select(Spectrogram.track_id, Spectrogram.data).where(Spectrogram.track_id.in_(chunk))
        ):
            out[int(tid)] = decode_spectrogram(data)
    return out


def patches(
    spec: np.ndarray, *, frames: int = PATCH_FRAMES, hop: int | None = None, max_patches: int | None = None
) -> np.ndarray:
    """Cut a (n_mels, n_frames) spectrogram into (p, n_mels, frames) patches.

    Patches start every ``hop`` frames (default: ``frames``, i.e. no overlap); with
    ``max_patches`` they are spread evenly over the window. A spectrogram shorter than
    one patch is padded with its minimum (the silence floor).
    """
    spec = np.asarray(spec, dtype=np.float32)
    n_mels, n = spec.shape
    if n < frames:
        pad = np.full((n_mels, frames - n), spec.min() if spec.size else 0.0, dtype=np.float32)
        spec = np.concatenate([spec, pad], axis=1)
        n = frames
    hop = hop or frames
    count = 1 + (n - frames) // hop
    if max_patches is not None and count > max_patches:
        starts = np.linspace(0, n - frames, max_patches).round().astype(int)
    else:
        starts = np.arange(count) * hop
    return np.stack([spec[:, s : s + frames] for s in starts])


def check_labels(
    labels: Sequence[str], *, min_per_label: int = MIN_TRACKS_PER_LABEL, folds: int = 5, what: str = "genre classifiers"
) -> dict[str, int]:
    """Raise NotEnoughDataError unless there are two labels with enough tracks each."""
    counts = Counter(labels)
    need = max(min_per_label, folds)
    if len(counts) < 2:
        have = f"only the label {next(iter(counts))!r}" if counts else "no labelled indexed track"
        raise NotEnoughDataError(
            f"training {what} needs at least 2 genres with {need} labelled, indexed tracks each; the index has "
            f"{have}. Label tracks (`musicindex ingest PATH --label-from folder|tag|csv:FILE`) and ingest more music."
        )
    short = {lab: c for lab, c in sorted(counts.items()) if c < need}
    if short:
        listed = ", ".join(f"{lab!r}: {c}" for lab, c in short.items())
        raise NotEnoughDataError(
            f"training {what} needs at least {need} labelled, indexed tracks per genre "
            f"(at least {min_per_label}, and at least the {folds} cross-validation folds); too few for {listed}. "
            "Ingest more tracks of those genres, relabel them, or pass drop_rare_labels=True "
            "(`--drop-rare-labels`) to leave those genres out."
        )
    return dict(sorted(counts.items()))
