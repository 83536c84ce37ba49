"""Model artifacts as bytes: scikit-learn objects as pickle, Keras models as ``.keras`` files; their signature.

Artifacts live in ``model_versions.artifact`` with their sha256 (``artifact_sha256``, provenance) and an
HMAC-SHA256 under the artifact key (``artifact_hmac``). The key is kept outside the database: the setting
``MUSICINDEX_ARTIFACT_KEY``, or a random key in ``MUSICINDEX_HOME/artifact.key`` (created 0600, refused
when others can read it). ``registry.load_artifact`` checks the HMAC before anything here deserialises an
artifact, so someone who can write ``model_versions`` but does not hold the key cannot make a process
unpickle their bytes.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import pickle
import secrets
import stat
import tempfile
from pathlib import Path
from typing import Any

from musicindex.config import Settings, get_settings
from musicindex.errors import ArtifactIntegrityError

KEY_FILE = "artifact.key"


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def signing_key(settings: Settings | None = None) -> bytes:
    """The artifact key: the setting, else ``home/artifact.key`` (created with a random key when absent)."""
    settings = settings or get_settings()
    if settings.artifact_key:
        return settings.artifact_key.encode()
    path = Path(settings.home).expanduser() / KEY_FILE
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    except FileExistsError:
        pass
    else:
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_hex(32) + "\n")
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError as exc:
        raise ArtifactIntegrityError(f"cannot read the artifact key {path}: {exc.strerror or exc}") from None
    with os.fdopen(fd) as fh:
        st = os.fstat(fh.fileno())
        if st.st_uid != os.geteuid() or stat.S_IMODE(st.st_mode) & 0o077:
            raise ArtifactIntegrityError(
                f"the artifact key {path} must belong to you and be private (chmod 600 {path}); refusing it"
            )
        key = fh.read().strip()
    if len(key) < 16:
        raise ArtifactIntegrityError(f"the artifact key {path} is too short; delete it to have a new one made")
    return key.encode()


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
