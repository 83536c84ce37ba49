"""Applying stored model versions: checked loads (cached in-process) and batch / single transforms.

``transform_one`` is what the query layer uses for query-by-example; ``apply_batch`` is what
backfill and ``backfill.apply_active`` use. Both return, for a version, exactly what backfill stores.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlalchemy.orm import Session

from musicindex.db.orm import ModelVersion
from musicindex.errors import InvalidArgumentError
from musicindex.ml import artifacts
from musicindex.ml.registry import get_version, load_artifact
from musicindex.vocab import CLASSIFIER_KINDS, CLUSTER_KINDS, METRIC_KINDS, MUSICNN, N_FEATURES, NET_KINDS, SCALER


@dataclass
class LoadedModel:
    version_id: int
    kind: str
    sha256: str
    classes: list[str] | None
    model: Any  # sklearn estimator, or a two-headed Keras model (embedding, probabilities)
    embedding_dim: int | None
    input: str = "features"
    """What the model reads: the 43 ``features``, the ``musicnn`` embedding, or (cnn) the spectrogram."""
    input_version: int | None = None
    """For ``musicnn`` input: the musicnn version whose embeddings it was trained on."""


_cache: dict[tuple[int, str], LoadedModel] = {}
_lock = threading.Lock()


def clear_cache() -> None:
    with _lock:
        _cache.clear()


def load_model(session: Session, version: ModelVersion | int) -> LoadedModel:
    """The deserialised model of a version; the artifact's sha256 is checked before every load
    (ArtifactIntegrityError if it does not match). Cached per (version id, sha256)."""
    if not isinstance(version, ModelVersion):
        version = get_version(session, version)
    key = (version.id, version.artifact_sha256 or "")
    with _lock:
        hit = _cache.get(key)
    if hit is not None:
        return hit
    data = load_artifact(session, version.id)
    if version.kind in NET_KINDS:
        from musicindex.ml.nets import two_headed

        model = two_headed(artifacts.loads_keras(data))
    else:
        model = artifacts.loads_sklearn(data)
    loaded = LoadedModel(
        version.id,
        version.kind,
        key[1],
        list(version.classes) if version.classes else None,
        model,
        version.embedding_dim,
        input=str((version.params or {}).get("input", "features")),
        input_version=(version.params or {}).get("input_version"),
    )
    with _lock:
        _cache[key] = loaded
    return loaded


def needs_spectrogram(kind: str) -> bool:
    return kind == "cnn"


def input_width(loaded: LoadedModel) -> int:
    """Columns of the input matrix a features- or embedding-reading model expects."""
    if loaded.input == MUSICNN:
        from musicindex.pretrained.musicnn import EMBEDDING_DIM

        return EMBEDDING_DIM
    return N_FEATURES


def apply_batch(loaded: LoadedModel, X: np.ndarray | None, specs: Sequence[np.ndarray] | None = None) -> dict[str, Any]:
    """Outputs for n tracks: ``embedding`` (n, d), ``proba`` (n, c) with ``classes``, ``cluster`` (n,)."""
    kind = loaded.kind
    if kind == "cnn":
        from musicindex.ml.nets import cnn_outputs

        if specs is None:
            raise InvalidArgumentError("the cnn model needs a log-mel spectrogram")
        emb, proba = cnn_outputs(loaded.model, specs)
        return {"embedding": emb.astype(np.float32), "proba": proba, "classes": loaded.classes}
    if X is None:
        what = "musicnn embedding" if loaded.input == MUSICNN else "43 features"
        raise InvalidArgumentError(f"the {kind} model (version {loaded.version_id}) needs the {what}")
    X = np.asarray(X, dtype=np.float64).reshape(-1, input_width(loaded))
    if kind == "ann":
        from musicindex.ml.nets import ann_outputs

        emb, proba = ann_outputs(loaded.model, X)
        return {"embedding": emb.astype(np.float32), "proba": proba, "classes": loaded.classes}
    if kind == SCALER or kind in METRIC_KINDS:  # a projection: the standardisation, the lda
        return {"embedding": loaded.model.transform(X).astype(np.float32)}
    if kind in CLASSIFIER_KINDS:
        return {"proba": loaded.model.predict_proba(X), "classes": [str(c) for c in loaded.model.classes_]}
    if kind in CLUSTER_KINDS:
        return {"cluster": np.asarray(loaded.model.predict(X), dtype=np.int64)}
    raise InvalidArgumentError(f"unknown model kind {kind!r}")


def prediction_of(proba_row: np.ndarray, classes: Sequence[str]) -> dict[str, Any]:
    i = int(np.argmax(proba_row))
    return {
        "genre": str(classes[i]),
        "confidence": float(proba_row[i]),
        "probabilities": {str(c): round(float(p), 6) for c, p in zip(classes, proba_row, strict=True)},
    }


def transform_one(
    session: Session,
    version: ModelVersion | int,
    *,
    features: np.ndarray | None = None,
    logmel: np.ndarray | None = None,
    musicnn: np.ndarray | None = None,
) -> dict[str, Any]:
    """What backfill would store for one track under ``version``.

    ``features``: the 43 features (FEATURE_NAMES order); ``logmel``: the (96, n_frames) dB
    spectrogram (``audio.analyse_file(path).logmel``); ``musicnn``: the 200-d musicnn embedding
    (for models trained on it). Returns ``{"embedding": ndarray}`` for ann / cnn / scaler / lda,
    ``{"genre", "confidence", "probabilities"}`` for classifiers (ann and cnn give both),
    ``{"cluster": int}`` for clusterers.
    """
    loaded = load_model(session, version)
    X = musicnn if loaded.input == MUSICNN else features
    if X is not None:
        X = np.asarray(X, dtype=np.float64).reshape(1, input_width(loaded))
        if not np.isfinite(X).all():
            raise InvalidArgumentError("the model's input contains non-finite values")
    specs = [np.asarray(logmel, dtype=np.float32)] if logmel is not None else None
    out = apply_batch(loaded, X, specs)
    result: dict[str, Any] = {}
    if "embedding" in out:
        result["embedding"] = out["embedding"][0]
    if "proba" in out:
        result.update(prediction_of(out["proba"][0], out["classes"]))
    if "cluster" in out:
        result["cluster"] = int(out["cluster"][0])
    return result
