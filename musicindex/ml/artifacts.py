"""Model artifacts as bytes: scikit-learn objects as pickle, Keras models as ``.keras`` files.

Artifacts live in ``model_versions.artifact`` with their sha256 in ``artifact_sha256``;
``registry.load_artifact`` checks the hash before anything here deserialises them
(pickle bytes are only ever unpickled after that check).
"""

from __future__ import annotations

import hashlib
import os
import pickle
import tempfile
from typing import Any


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def dumps_sklearn(obj: Any) -> bytes:
    return pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)


def loads_sklearn(data: bytes) -> Any:
    """Unpickle bytes that ``registry.load_artifact`` has checked against their recorded sha256."""
    return pickle.loads(data)  # noqa: S301 - only called on hash-checked bytes from the registry


def keras():
    """Import Keras (TensorFlow backend) quietly; only the training/inference paths call this."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    import keras as _keras

    return _keras


def dumps_keras(model: Any) -> bytes:
    with tempfile.TemporaryDirectory(prefix="mi-keras-") as tmp:
        path = os.path.join(tmp, "model.keras")
        model.save(path)
        with open(path, "rb") as fh:
            return fh.read()


def loads_keras(data: bytes) -> Any:
    k = keras()
    with tempfile.TemporaryDirectory(prefix="mi-keras-") as tmp:
        path = os.path.join(tmp, "model.keras")
        with open(path, "wb") as fh:
            fh.write(data)
        return k.saving.load_model(path, compile=False)
