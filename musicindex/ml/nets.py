"""The Keras genre networks: a dense ANN on the 43 features and a CNN on log-mel patches.

TensorFlow is imported only inside these functions (``artifacts.keras()``), never at
module import, so ingest workers that import ``musicindex.ml`` stay TensorFlow-free.

Both models carry their input standardisation inside (a ``Normalization`` layer with the
training split's mean and variance), so a stored ``.keras`` artifact takes raw features or
raw dB spectrogram patches. The layer named ``embedding`` is the penultimate layer; its
activation is the ``ann`` / ``cnn`` embedding (tanh, so no embedding is ever all zero and
cosine distance is always defined).

Training: a stratified inner validation split (15 % of the training tracks; for the CNN
split by track, so no patch of a validation track is trained on) drives early stopping
(``restore_best_weights``); the held-out test split is never seen during training.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from musicindex.ml import folds
from musicindex.ml.artifacts import dumps_keras
from musicindex.ml.artifacts import keras as _keras
from musicindex.ml.data import PATCH_FRAMES, patches
from musicindex.ml.metrics import classification_metrics, cv_summary
from musicindex.ml.netconfig import ANNConfig, CNNConfig, config_for
from musicindex.ml.options import TrainOptions
from musicindex.ml.trainset import Trained, TrainingSet, train_on_best_input


# --------------------------------------------------------------------------- models
def _embedding_head(keras, inputs, x, n_classes: int, cfg, reg, name: str):
    """The part both nets share: the tanh ``embedding`` layer, dropout, the softmax ``genre`` output, compiled."""
    L = keras.layers
    emb = L.Dense(cfg.embedding_dim, activation="tanh", kernel_regularizer=reg, name="embedding")(x)
    x = L.Dropout(cfg.dropout, name="dropout_out")(emb)
    out = L.Dense(n_classes, activation="softmax", name="genre")(x)
    model = keras.Model(inputs, out, name=name)
    model.compile(
        optimizer=keras.optimizers.Adam(cfg.learning_rate), loss="sparse_categorical_crossentropy", metrics=["accuracy"]
    )
    return model


def build_ann(n_features: int, n_classes: int, mean: np.ndarray, var: np.ndarray, cfg: ANNConfig):
    keras = _keras()
    L = keras.layers
    reg = keras.regularizers.L1L2(l1=cfg.l1, l2=cfg.l2)
    inputs = keras.Input((n_features,), name="features")
    x = L.Normalization(
        axis=-1, mean=np.asarray(mean, "float32"), variance=np.asarray(var, "float32"), name="standardize"
    )(inputs)
    for i, units in enumerate(cfg.hidden):
        x = L.Dense(units, kernel_regularizer=reg, use_bias=False, name=f"dense{i}")(x)
        x = L.BatchNormalization(momentum=0.9, name=f"bn{i}")(x)
        x = L.Activation("relu", name=f"relu{i}")(x)
        x = L.Dropout(cfg.dropout, name=f"dropout{i}")(x)
    return _embedding_head(keras, inputs, x, n_classes, cfg, reg, "musicindex_ann")


def build_cnn(n_mels: int, n_classes: int, mean: float, var: float, cfg: CNNConfig):
    keras = _keras()
    L = keras.layers
    reg = keras.regularizers.L2(cfg.l2)
    inputs = keras.Input((n_mels, cfg.patch_frames), name="logmel")
    x = L.Reshape((n_mels, cfg.patch_frames, 1), name="channel")(inputs)
    x = L.Normalization(axis=None, mean=float(mean), variance=float(var), name="standardize")(x)
    if cfg.pre_pool and tuple(cfg.pre_pool) != (1, 1):  # 2x2 average: 4.4x less compute, same receptive field
        x = L.AveragePooling2D(tuple(cfg.pre_pool), name="pre_pool")(x)
    for i, f in enumerate(cfg.filters):
        x = L.Conv2D(f, 3, padding="same", use_bias=False, kernel_regularizer=reg, name=f"conv{i}")(x)
        x = L.BatchNormalization(momentum=0.9, name=f"bn{i}")(x)
        x = L.Activation("relu", name=f"relu{i}")(x)
        x = L.MaxPooling2D(2, name=f"pool{i}")(x)
        x = L.Dropout(0.1, name=f"drop{i}")(x)
    x = L.GlobalAveragePooling2D(name="gap")(x)
    x = L.Dropout(cfg.dropout, name="dropout_gap")(x)
    return _embedding_head(keras, inputs, x, n_classes, cfg, reg, "musicindex_cnn")


def two_headed(model):
    """A model giving (embedding, class probabilities) in one forward pass."""
    keras = _keras()
    return keras.Model(model.inputs[0], [model.get_layer("embedding").output, model.outputs[0]])


def _call(model, x: np.ndarray, batch: int = 512) -> list[np.ndarray]:
    outs: list[list[np.ndarray]] = []
    for i in range(0, len(x), batch):
        res = model(x[i : i + batch], training=False)
        outs.append([np.asarray(r) for r in (res if isinstance(res, (list, tuple)) else [res])])
    return [np.concatenate([o[j] for o in outs]) for j in range(len(outs[0]))]


def ann_outputs(head, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(embeddings, probabilities) of feature rows X (n, 43) with a ``two_headed`` ANN."""
    if len(X) == 0:
        raise ValueError("no rows")
    emb, proba = _call(head, np.asarray(X, dtype=np.float32))
    return emb, proba


def cnn_outputs(head, specs: Sequence[np.ndarray], patch_frames: int = PATCH_FRAMES) -> tuple[np.ndarray, np.ndarray]:
    """Per-track (mean embedding, mean probabilities) over non-overlapping patches of each spectrogram."""
    cut = [patches(s, frames=patch_frames) for s in specs]
    counts = np.array([len(c) for c in cut])
    emb, proba = _call(head, np.concatenate(cut).astype(np.float32), batch=256)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    return (
        np.add.reduceat(emb, starts, axis=0) / counts[:, None],
        np.add.reduceat(proba, starts, axis=0) / counts[:, None],
    )


# --------------------------------------------------------------------------- training
def _inner_split(y: np.ndarray, frac: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.model_selection import train_test_split

    idx = np.arange(len(y))
    n_classes = len(np.unique(y))
    n_val = max(n_classes, round(frac * len(y)))
    try:
        return train_test_split(idx, test_size=n_val, stratify=y, random_state=seed)
    except ValueError:  # a class too small to stratify
        return train_test_split(idx, test_size=n_val, random_state=seed)


def _fit(kind: str, data: Any, y: np.ndarray, n_classes: int, cfg, seed: int):
    """Train one network on tracks ``data`` (ANN: (n, 43) array; CNN: list of spectrograms)."""
    keras = _keras()
    keras.utils.set_random_seed(seed)
    tr, va = _inner_split(y, cfg.val_fraction, seed)
    if kind == "ann":
        xtr, xva = data[tr].astype(np.float32), data[va].astype(np.float32)
        ytr, yva = y[tr], y[va]
        model = build_ann(xtr.shape[1], n_classes, xtr.mean(axis=0), xtr.var(axis=0), cfg)
    else:
        ptr = [
            patches(data[i], frames=cfg.patch_frames, hop=cfg.train_hop, max_patches=cfg.max_patches_train) for i in tr
        ]
        pva = [patches(data[i], frames=cfg.patch_frames, max_patches=cfg.max_patches_train) for i in va]
        xtr = np.concatenate(ptr).astype(np.float32)
        xva = np.concatenate(pva).astype(np.float32)
        ytr = np.repeat(y[tr], [len(p) for p in ptr])
        yva = np.repeat(y[va], [len(p) for p in pva])
        model = build_cnn(xtr.shape[1], n_classes, float(xtr.mean()), float(xtr.var()), cfg)
    # BatchNorm statistics settle over the first epochs; do not judge validation loss before that
    stop = keras.callbacks.EarlyStopping(
        monitor="val_loss", patience=cfg.patience, restore_best_weights=True, start_from_epoch=min(5, cfg.epochs // 3)
    )
    hist = model.fit(
        xtr,
        ytr,
        validation_data=(xva, yva),
        epochs=cfg.epochs,
        batch_size=cfg.batch_size,
        callbacks=[stop],
        verbose=0,
        shuffle=True,
    )
    history: dict[str, Any] = {
        k: [float(v) for v in hist.history.get(k, [])] for k in ("loss", "val_loss", "accuracy", "val_accuracy")
    }
    history["best_epoch"] = int(np.argmin(history["val_loss"])) + 1 if history["val_loss"] else 0
    return model, history


def _predict_proba(kind: str, model, data: Any, cfg) -> np.ndarray:
    head = two_headed(model)
    if kind == "ann":
        return ann_outputs(head, data)[1]
    return cnn_outputs(head, data, cfg.patch_frames)[1]


def _take(data: Any, idx: np.ndarray) -> Any:
    if isinstance(data, np.ndarray):
        return data[idx]
    return [data[i] for i in idx]


@dataclass
class NetResult:
    model: Any
    classes: list[str]
    params: dict[str, Any]
    metrics: dict[str, Any]
    seconds: float
    embedding_dim: int
    heldout: np.ndarray  # row indices of the held-out split
    extra: dict[str, Any] = field(default_factory=dict)


def train_net(
    kind: str,
    data: Any,
    labels: Sequence[str] | np.ndarray,
    *,
    test_size: float = 0.2,
    seed: int = 42,
    cv_folds: int = 3,
    quick: bool = False,
    overrides: dict[str, Any] | None = None,
    groups: np.ndarray | None = None,
) -> NetResult:
    """Train the ANN (``data``: (n, d) features or embeddings) or CNN (``data``: list of (96, frames) spectrograms).

    The stored model is trained on the training part of the held-out split and scored on the held-out part;
    ``cv_folds`` more networks with the same budget give the k-fold mean and std. Both are grouped by artist
    (``groups``, ``folds``) when possible, else plain stratified (recorded in ``metrics.selection``).
    """
    t0 = time.perf_counter()
    cfg = config_for(kind, quick, overrides)
    label_arr = np.asarray(labels, dtype=str)
    classes = sorted(set(label_arr.tolist()))
    y = np.searchsorted(np.array(classes), label_arr)
    plan = folds.plan(label_arr, groups, max(cv_folds, 2))
    tr, te, holdout_protocol = folds.holdout(label_arr, plan, test_size, seed)
    model, history = _fit(kind, _take(data, tr), y[tr], len(classes), cfg, seed)
    proba = _predict_proba(kind, model, _take(data, te), cfg)
    cls = np.array(classes)
    metrics = classification_metrics(label_arr[te], cls[proba.argmax(axis=1)], classes)
    metrics["history"] = history
    accs, f1s = [], []
    if cv_folds and cv_folds >= 2:
        for k, (ftr, fte) in enumerate(folds.cv_splits(label_arr, plan, cv_folds, seed)):
            m, _ = _fit(kind, _take(data, ftr), y[ftr], len(classes), cfg, seed + 1 + k)
            p = _predict_proba(kind, m, _take(data, fte), cfg)
            fold = classification_metrics(label_arr[fte], cls[p.argmax(axis=1)], classes)
            accs.append(fold["accuracy"])
            f1s.append(fold["macro_f1"])
        metrics.update(cv_summary(accs, f1s))
    metrics["n_train"], metrics["n_test"] = len(tr), len(te)
    metrics["cv_protocol"] = plan.protocol
    metrics["selection"] = {**plan.describe(cv_folds or None), "holdout": holdout_protocol}
    params = {
        "config": _plain(asdict(cfg)),
        "test_size": test_size,
        "seed": seed,
        "cv_folds": cv_folds,
        "epochs_trained": len(history["loss"]),
        "parameters": int(model.count_params()),
    }
    return NetResult(
        model=model,
        classes=classes,
        params=params,
        metrics=metrics,
        seconds=time.perf_counter() - t0,
        embedding_dim=int(cfg.embedding_dim),
        heldout=te,
    )


def _plain(d: dict[str, Any]) -> dict[str, Any]:
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in d.items()}


# --------------------------------------------------------------------------- the kinds' trainers (training.TRAINERS)
def train_ann_kind(ts: TrainingSet, opts: TrainOptions, kind: str = "ann") -> Trained:
    """The ANN on the labelled tracks, on the better of its inputs (``trainset.train_on_best_input``)."""

    def fit(name: str, X: np.ndarray, y: np.ndarray, groups: np.ndarray | None) -> NetResult:
        return train_net(
            "ann",
            X,
            y,
            groups=groups,
            test_size=opts.test_size,
            seed=opts.seed,
            cv_folds=opts.net_cv_folds,
            quick=opts.quick,
            overrides=dict(opts.net_overrides.get("ann") or {}),
        )

    return train_on_best_input(ts, fit, dumps_keras)


def train_cnn_kind(ts: TrainingSet, opts: TrainOptions, kind: str = "cnn") -> Trained:
    """The CNN on the stored spectrograms of the labelled tracks."""
    keep = [i for i, t in enumerate(ts.ids) if int(t) in ts.specs]
    kept_ids = np.asarray(ts.ids)[keep]
    result = train_net(
        "cnn",
        [ts.specs[int(ts.ids[i])] for i in keep],
        ts.y[keep],
        groups=ts.groups_of(kept_ids),
        test_size=opts.test_size,
        seed=opts.seed,
        cv_folds=opts.net_cv_folds,
        quick=opts.quick,
        overrides=dict(opts.net_overrides.get("cnn") or {}),
    )
    return Trained(
        dumps_keras(result.model),
        {**result.params, "input": "spectrogram"},
        result.metrics,
        result.seconds,
        classes=result.classes,
        embedding_dim=result.embedding_dim,
        heldout_ids=[int(t) for t in kept_ids[result.heldout]],
    )
