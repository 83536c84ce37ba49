"""Model artifacts as bytes: scikit-learn objects as pickle, Keras models as ``.keras`` files; their signature.

Artifacts live in ``model_versions.artifact`` with their sha256 (``artifact_sha256``, provenance) and an
HMAC-SHA256 under the artifact key (``artifact_hmac``). The key is kept outside the database: the setting
``MUSICINDEX_ARTIFACT_KEY``, or a random key in ``MUSICINDEX_HOME/artifact.key`` (``musicindex.keys``: created
atomically, 0600, refused when others can read it). ``registry.load_artifact`` checks the HMAC before anything
here deserialises an artifact, so someone who can write ``model_versions`` but does not hold the key cannot make
a process unpickle their bytes.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import pickle
import tempfile
from typing import Any

from musicindex import keys
from musicindex.config import Settings, get_settings

KEY_FILE = "artifact.key"


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def signing_key(settings: Settings | None = None) -> bytes:
    """The artifact key: the setting ``MUSICINDEX_ARTIFACT_KEY``, else the key in ``home/artifact.key`` (made once,
    atomically, by :func:`musicindex.keys.secret`). The file's key is used as its hex text, so copying that text
    into ``MUSICINDEX_ARTIFACT_KEY`` on another machine gives the same signatures."""
    settings = settings or get_settings()
    if settings.artifact_key:
        return settings.artifact_key.encode()
    return keys.secret(settings, KEY_FILE, nbytes=32).hex().encode()


def sign(data: bytes, key: bytes) -> str:
    """HMAC-SHA256 of ``data`` under ``key`` (hex)."""
    return hmac.new(key, data, hashlib.sha256).hexdigest()


def verify(data: bytes, signature: str | None, key: bytes) -> bool:
    return signature is not None and hmac.compare_digest(sign(data, key), signature)


def dumps_sklearn(obj: Any) -> bytes:
    return pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)


def loads_sklearn(data: bytes) -> Any:
    """Unpickle bytes whose HMAC ``registry.load_artifact`` has verified with the artifact key."""
    return pickle.loads(data)  # noqa: S301 - only called on bytes signed with our key (registry.load_artifact)


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
