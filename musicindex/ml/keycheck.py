"""One artifact key for every host: checked when a worker starts, against what the database already holds.

Model artifacts live in PostgreSQL (``model_versions.artifact``), so every host reads them; each is signed with the
artifact key of the host that trained it (``ml/artifacts.py``), and a host loads only what its own key verifies.
With several hosts, the key must be the same everywhere (``MUSICINDEX_ARTIFACT_KEY``; a host without it makes a
random key of its own in ``MUSICINDEX_HOME/artifact.key``). :func:`check_artifact_key` verifies this host's key
on the stored version that a worker is the likeliest to load (an active one, the newest), so a worker with another
key stops at start with what to do, instead of failing every job that loads a model.
"""

from __future__ import annotations

from sqlalchemy import case, select
from sqlalchemy.orm import Session

from musicindex.config import Settings
from musicindex.db.orm import ModelVersion
from musicindex.errors import ArtifactIntegrityError
from musicindex.ml.artifacts import signing_key, verify
from musicindex.ml.registry import signed_bytes
from musicindex.vocab import ACTIVE


def check_artifact_key(session: Session, settings: Settings | None = None) -> int | None:
    """Verify this host's artifact key on one signed model version; its id (None: nothing is signed yet).

    Raises ArtifactIntegrityError, saying what to do, when the key did not sign it."""
    row = session.execute(
        select(ModelVersion.id, ModelVersion.kind, ModelVersion.artifact, ModelVersion.artifact_hmac)
        .where(ModelVersion.artifact.is_not(None), ModelVersion.artifact_hmac.is_not(None))
        .order_by(case((ModelVersion.state == ACTIVE, 0), else_=1), ModelVersion.id.desc())
        .limit(1)
    ).first()
    if row is None:
        return None
    version_id, kind, artifact, signature = row
    assert artifact is not None  # the query asks for a stored artifact
    if not verify(signed_bytes(int(version_id), kind, bytes(artifact)), signature, signing_key(settings)):
        raise ArtifactIntegrityError(
            f"this host's artifact key is not the one that signed model version {version_id} ({kind}): it could "
            "load no model. Every host that trains or loads models needs the same key: set MUSICINDEX_ARTIFACT_KEY "
            "here to the other hosts' (or to the hex text of their MUSICINDEX_HOME/artifact.key)."
        )
    return int(version_id)
