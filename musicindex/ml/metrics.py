"""Classifier metrics in the registry's format (the keys other code relies on)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np


def classification_metrics(y_true: Sequence[str], y_pred: Sequence[str], classes: Sequence[str]) -> dict[str, Any]:
    """accuracy, macro precision/recall/F1, per-class report and confusion matrix of a held-out split."""
    from sklearn.metrics import accuracy_score, classification_report, confusion_matrix, precision_recall_fscore_support

    labels = list(classes)
    p, r, f, _ = precision_recall_fscore_support(y_true, y_pred, labels=labels, average="macro", zero_division=0)
    return {
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "macro_precision": float(p),
        "macro_recall": float(r),
        "macro_f1": float(f),
        "per_class": jsonable(classification_report(y_true, y_pred, labels=labels, output_dict=True, zero_division=0)),
        "confusion_matrix": {
            "labels": labels,
            "matrix": confusion_matrix(y_true, y_pred, labels=labels).astype(int).tolist(),
        },
    }


def cv_summary(accuracies: Sequence[float], f1s: Sequence[float]) -> dict[str, Any]:
    acc, f1 = np.asarray(accuracies, float), np.asarray(f1s, float)
    return {
        "cv_accuracy_mean": float(acc.mean()),
        "cv_accuracy_std": float(acc.std()),
        "cv_macro_f1_mean": float(f1.mean()),
        "cv_macro_f1_std": float(f1.std()),
        "cv_folds": int(acc.size),
        "cv_accuracy": [float(a) for a in acc],
        "cv_macro_f1": [float(v) for v in f1],
    }


def jsonable(obj: Any) -> Any:
    """JSON-safe copy: numpy scalars and arrays to Python, NaN/inf to None (JSONB rejects NaN)."""
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return jsonable(obj.tolist())
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, (np.integer, int)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        f = float(obj)
        return f if math.isfinite(f) else None
    return obj
