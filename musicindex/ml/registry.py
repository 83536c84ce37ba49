"""The model registry over ``model_versions``: states, promotion, rollback, checked artifact loads.

States: ``training`` (being trained) -> ``candidate`` (trained, backfilled) -> ``active``
(answers queries; at most one per kind, enforced by a partial unique index) -> ``retired``;
or ``failed``. Promotion swaps active versions in one transaction, so a query never sees a
half-updated index.

This module is the only writer of ``model_versions.state`` (as ``ingest.lifecycle`` is of ``tracks.status``):
:func:`open_versions` (training), :func:`record_trained` (candidate), :func:`fail_versions` (failed),
:func:`create_pretrained_version` (a musicnn extractor version, active or candidate), :func:`promote` and
:func:`rollback` (active / retired). ``tests/unit/test_imports.py`` checks that no other module writes it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select, text, update
from sqlalchemy.orm import Session

from musicindex.db.orm import ModelVersion
from musicindex.errors import ArtifactIntegrityError, InvalidArgumentError, ModelNotTrainedError
from musicindex.ml.artifacts import sha256, sign, signing_key, verify
from musicindex.vocab import (
    ACTIVE,
    CANDIDATE,
    CLASSIFIER_KINDS,
    CLUSTER_KINDS,
    FAILED,
    GENRE_MODEL_METRIC,
    HNSW_INDEX_PATTERN,
    METRIC_KINDS,
    MODEL_KINDS,
    MODEL_STATES,
    RETIRED,
    SPACE_MODEL_METRIC,
    TRAINING,
    GenreCandidate,
    pick_genre_model,
)

_PROMOTE_LOCK = 0x6D69_7072_6F6D  # advisory lock serialising promotions ('mi prom')


def _check_kind(kind: str) -> None:
    from musicindex.pretrained import registry as embedding_models

    known = (*MODEL_KINDS, *embedding_models.names())  # each embedding model is a kind of its own
    if not isinstance(kind, str) or kind not in known:
        raise InvalidArgumentError(f"unknown model kind {kind!r}; choose one of {', '.join(dict.fromkeys(known))}")


def _check_state(state: str) -> None:
    if not isinstance(state, str) or state not in MODEL_STATES:
        raise InvalidArgumentError(f"unknown model state {state!r}; choose one of {', '.join(MODEL_STATES)}")


MAX_LIST_VERSIONS = 100_000


def active_version(session: Session, kind: str) -> ModelVersion | None:
    _check_kind(kind)
    return session.execute(
        select(ModelVersion).where(ModelVersion.kind == kind, ModelVersion.state == ACTIVE)
    ).scalar_one_or_none()


def active_versions(session: Session) -> list[ModelVersion]:
    return list(
        session.execute(select(ModelVersion).where(ModelVersion.state == ACTIVE).order_by(ModelVersion.id)).scalars()
    )


def get_version(session: Session, version_id: int) -> ModelVersion:
    v = session.get(ModelVersion, int(version_id))
    if v is None:
        raise ModelNotTrainedError(f"no model version {version_id}; `musicindex models list` shows them")
    return v


def list_versions(
    session: Session, kind: str | None = None, state: str | None = None, limit: int | None = None
) -> list[ModelVersion]:
    """Versions, newest first, optionally of one kind (``vocab.MODEL_KINDS``) and/or state (``vocab.MODEL_STATES``),
    at most ``limit`` (1 to 100 000; None: all)."""
    q = select(ModelVersion).order_by(ModelVersion.id.desc())
    if kind is not None:
        _check_kind(kind)
        q = q.where(ModelVersion.kind == kind)
    if state is not None:
        _check_state(state)
        q = q.where(ModelVersion.state == state)
    if limit is not None:
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIST_VERSIONS:
            raise InvalidArgumentError(f"limit must be an integer between 1 and {MAX_LIST_VERSIONS}, got {limit!r}")
        q = q.limit(limit)
    return list(session.execute(q).scalars())


# --------------------------------------------------------------------------- writing versions
def open_versions(session: Session, run_id: int, kinds: Sequence[str], snapshot: dict[str, Any]) -> dict[str, int]:
    """One ``training`` version per kind of run ``run_id``; kind -> version id."""
    ids: dict[str, int] = {}
    for kind in kinds:
        _check_kind(kind)
        v = ModelVersion(kind=kind, state=TRAINING, run_id=run_id, snapshot=snapshot)
        session.add(v)
        session.flush()
        ids[kind] = v.id
    return ids


def record_trained(
    session: Session,
    version_id: int,
    *,
    artifact: bytes,
    key: bytes,
    params: dict[str, Any],
    metrics: dict[str, Any],
    snapshot: dict[str, Any],
    classes: list[str] | None,
    embedding_dim: int | None,
    seconds: float,
) -> None:
    """A trained version becomes a ``candidate`` with its artifact, its sha256 and its signature (HMAC under the
    artifact key, bound to the version's id and kind: ``artifacts.signed_bytes``)."""
    kind = session.execute(select(ModelVersion.kind).where(ModelVersion.id == version_id)).scalar_one()
    session.execute(
        update(ModelVersion)
        .where(ModelVersion.id == version_id, ModelVersion.state == TRAINING)
        .values(
            state=CANDIDATE,
            params=params,
            metrics=metrics,
            snapshot=snapshot,
            classes=classes,
            embedding_dim=embedding_dim,
            artifact=artifact,
            artifact_sha256=sha256(artifact),
            artifact_hmac=sign(signed_bytes(version_id, kind, artifact), key),
            training_seconds=float(seconds),
        )
    )


def fail_versions(session: Session, version_ids: Sequence[int], error: str) -> None:
    """Versions that did not finish training (or whose run died) become ``failed`` with ``error``; an active
    version is never touched."""
    if version_ids:
        session.execute(
            update(ModelVersion)
            .where(ModelVersion.id.in_([int(v) for v in version_ids]), ModelVersion.state.in_((TRAINING, CANDIDATE)))
            .values(state=FAILED, error=error[:4000])
        )


def create_pretrained_version(
    session: Session,
    kind: str,
    *,
    params: dict[str, Any],
    classes: list[str],
    embedding_dim: int,
    weights_sha256: str | None,
    active: bool,
) -> int:
    """A version of a pretrained extractor (no training): ``active`` when its space has none yet, else a
    ``candidate`` promoted once it covers the library. Returns its id."""
    _check_kind(kind)
    version = ModelVersion(
        kind=kind,
        state=ACTIVE if active else CANDIDATE,
        params=params,
        classes=classes,
        embedding_dim=embedding_dim,
        artifact_sha256=weights_sha256,
        metrics={},
        snapshot={"note": "pretrained: no training data"},
    )
    if active:
        version.activated_at = func.now()
    session.add(version)
    session.flush()
    return int(version.id)


def signed_bytes(version_id: int, kind: str, artifact: bytes) -> bytes:
    """What an artifact's signature covers: the version's id and kind, then the bytes (a signed artifact copied
    into another row is refused)."""
    return f"musicindex-artifact:{int(version_id)}:{kind}:".encode() + artifact


# --------------------------------------------------------------------------- reading artifacts
def load_artifact(session: Session, version_id: int) -> bytes:
    """The artifact bytes of a version, after checking their HMAC (artifact key) and their sha256.

    Raises ArtifactIntegrityError (and returns nothing) if either does not match: such an
    artifact is never deserialised.
    """
    row = session.execute(
        select(
            ModelVersion.artifact, ModelVersion.artifact_sha256, ModelVersion.kind, ModelVersion.artifact_hmac
        ).where(ModelVersion.id == int(version_id))
    ).one_or_none()
    if row is None:
        raise ModelNotTrainedError(f"no model version {version_id}")
    data, recorded, kind, signature = row
    if data is None or not recorded:
        raise ModelNotTrainedError(f"model version {version_id} ({kind}) has no artifact (it did not finish training)")
    data = bytes(data)
    actual = sha256(data)
    if actual != recorded:
        raise ArtifactIntegrityError(
            f"the artifact of model version {version_id} ({kind}) does not match its recorded sha256 "
            f"(recorded {recorded[:12]}..., stored bytes hash to {actual[:12]}...); it was not loaded. "
            f"Retrain (`musicindex train --models {kind}`) or roll back (`musicindex models rollback {kind}`)."
        )
    if not verify(signed_bytes(int(version_id), kind, data), signature, signing_key()):
        raise ArtifactIntegrityError(
            f"the artifact of model version {version_id} ({kind}) is not signed with this installation's artifact "
            "key (MUSICINDEX_ARTIFACT_KEY, or MUSICINDEX_HOME/artifact.key); it was not loaded. Every machine that "
            f"trains or loads models needs the same key. Retrain (`musicindex train --models {kind}`) to sign "
            "a new version."
        )
    return data


QUALITY_METRIC = {
    **dict.fromkeys(CLASSIFIER_KINDS, GENRE_MODEL_METRIC),
    **dict.fromkeys(CLUSTER_KINDS, "silhouette"),
    **dict.fromkeys(METRIC_KINDS, SPACE_MODEL_METRIC),
}
"""The score a challenger must not lose against the champion, per kind: cross-validated macro-F1 for
classifiers (the genre-model rule's score), silhouette for clusterers, cross-validated other-artist precision@10
for the spaces learned from labels (``ml.metric``)."""


PROTOCOL_KEY = "cv_protocol"
"""How a classifier's k-fold scores were split (``folds.PROTOCOLS``; absent: plain stratified, before grouping)."""


@dataclass(frozen=True)
class Decision:
    promote: bool
    reason: str
    metric: str | None
    candidate_score: float | None
    active_score: float | None


def decide(
    kind: str, candidate_metrics: dict[str, Any] | None, active_metrics: dict[str, Any] | None, tolerance: float
) -> Decision:
    """Champion/challenger for one kind: promote the candidate unless it is worse than the active
    version by more than ``tolerance`` on the kind's ``QUALITY_METRIC``.

    ``active_metrics`` None: no active version (promote). A kind without a quality metric
    (the scaler) follows the data; a score missing on either side promotes.
    """
    metric = QUALITY_METRIC.get(kind)
    new = (candidate_metrics or {}).get(metric) if metric else None
    old = (active_metrics or {}).get(metric) if metric and active_metrics is not None else None
    if active_metrics is None:
        return Decision(True, "no active version", metric, new, old)
    if metric is None:
        return Decision(True, "no quality metric: follows the data", metric, new, old)
    if not isinstance(new, (int, float)) or not isinstance(old, (int, float)):
        return Decision(True, f"{metric} missing on one side", metric, new, old)
    if kind in CLASSIFIER_KINDS or kind in METRIC_KINDS:
        ours, theirs = (candidate_metrics or {}).get(PROTOCOL_KEY), (active_metrics or {}).get(PROTOCOL_KEY)
        if ours != theirs:
            return Decision(
                True,
                f"{metric} measured on other folds (candidate: {ours or 'stratified'}, active: "
                f"{theirs or 'stratified'}): not comparable, the candidate follows the data",
                metric,
                float(new),
                float(old),
            )
    better = float(new) >= float(old) - tolerance
    why = f"{metric} {float(new):.4f} vs active {float(old):.4f} (tolerance {tolerance})" + (
        "" if better else ": challenger is worse, stays a candidate"
    )
    return Decision(better, why, metric, float(new), float(old))


def decide_promotion(session: Session, run_id: int, tolerance: float | None = None) -> tuple[list[int], dict[str, Any]]:
    """Which candidates of run ``run_id`` become active (:func:`decide` per kind), and why.

    ``tolerance`` defaults to ``MUSICINDEX_PROMOTION_TOLERANCE`` (0.01: a retrain on more data
    that scores within noise of the champion replaces it). A candidate that is not promoted
    stays a candidate (``musicindex models promote ID`` can still activate it). Returns the
    ids to promote and the comparison, which the run records.
    """
    if tolerance is None:
        from musicindex.config import get_settings

        tolerance = get_settings().promotion_tolerance
    chosen: list[int] = []
    comparison: dict[str, Any] = {}
    candidates = (
        session.execute(
            select(ModelVersion)
            .where(ModelVersion.run_id == run_id, ModelVersion.state == CANDIDATE)
            .order_by(ModelVersion.id)
        )
        .scalars()
        .all()
    )
    for cand in candidates:
        champion = active_version(session, cand.kind)
        d = decide(cand.kind, cand.metrics, None if champion is None else (champion.metrics or {}), tolerance)
        if d.promote:
            chosen.append(cand.id)
        comparison[cand.kind] = {
            "candidate": cand.id,
            "active": champion.id if champion is not None else None,
            "metric": d.metric,
            "candidate_score": d.candidate_score,
            "active_score": d.active_score,
            "tolerance": tolerance,
            "decision": "promoted" if d.promote else "kept as candidate",
            "reason": d.reason,
        }
    return chosen, comparison


def promote(session: Session, version_ids: Sequence[int]) -> list[int]:
    """Make ``version_ids`` active and retire the active versions of their kinds, in the caller's transaction.

    Returns the ids retired. Versions must be ``candidate`` or ``retired`` (a rollback) and
    at most one per kind.
    """
    ids = [int(v) for v in version_ids]
    if not ids:
        return []
    session.execute(select(func.pg_advisory_xact_lock(_PROMOTE_LOCK)))
    rows = session.execute(
        select(ModelVersion.id, ModelVersion.kind, ModelVersion.state).where(ModelVersion.id.in_(ids)).with_for_update()
    ).all()
    found = {r.id for r in rows}
    missing = [v for v in ids if v not in found]
    if missing:
        raise InvalidArgumentError(f"no model version {missing[0]}")
    kinds: dict[str, int] = {}
    for r in rows:
        if r.state not in (CANDIDATE, RETIRED, ACTIVE):
            raise InvalidArgumentError(
                f"model version {r.id} is {r.state}; only candidate or retired versions can be activated"
            )
        if r.kind in kinds:
            raise InvalidArgumentError(f"versions {kinds[r.kind]} and {r.id} are both {r.kind}; activate one per kind")
        kinds[r.kind] = r.id
    retired = list(
        session.execute(
            update(ModelVersion)
            .where(ModelVersion.kind.in_(list(kinds)), ModelVersion.state == ACTIVE, ModelVersion.id.not_in(ids))
            .values(state=RETIRED)
            .returning(ModelVersion.id)
        ).scalars()
    )
    session.execute(
        update(ModelVersion)
        .where(ModelVersion.id.in_(ids), ModelVersion.state != ACTIVE)
        .values(state=ACTIVE, activated_at=func.now())
    )
    session.flush()
    session.expire_all()
    return retired


def rollback(session: Session, kind: str) -> ModelVersion:
    """Re-activate the most recently retired version of ``kind`` (the active one is retired)."""
    _check_kind(kind)
    prev = session.execute(
        select(ModelVersion)
        .where(ModelVersion.kind == kind, ModelVersion.state == RETIRED)
        .order_by(ModelVersion.activated_at.desc().nulls_last(), ModelVersion.id.desc())
        .limit(1)
    ).scalar_one_or_none()
    if prev is None:
        raise ModelNotTrainedError(f"no retired {kind} version to roll back to")
    load_artifact(session, prev.id)  # never activate an artifact that would be refused
    promote(session, [prev.id])
    return prev


def genre_model_version(session: Session, preference: str = "auto") -> ModelVersion | None:
    """The active classifier answering genre questions (``vocab.pick_genre_model``); None if none."""
    if preference not in ("auto", *CLASSIFIER_KINDS):
        raise InvalidArgumentError(f"genre model {preference!r}: choose auto, {', '.join(CLASSIFIER_KINDS)}")
    versions = {
        v.id: v
        for v in session.execute(
            select(ModelVersion).where(ModelVersion.state == ACTIVE, ModelVersion.kind.in_(CLASSIFIER_KINDS))
        ).scalars()
    }
    pick = pick_genre_model([GenreCandidate(v.id, v.kind, v.metrics or {}) for v in versions.values()], preference)
    return versions[pick.id] if pick is not None else None


def version_summary(v: ModelVersion) -> dict[str, Any]:
    """id, kind, state, created, key metrics and sha256 prefix of a version (for listings)."""
    m = v.metrics or {}
    keys = (
        "accuracy",
        "macro_f1",
        "cv_accuracy_mean",
        "cv_accuracy_std",
        "cv_macro_f1_mean",
        "silhouette",
        "davies_bouldin",
        "n_clusters",
    )
    return {
        "id": v.id,
        "kind": v.kind,
        "input": (v.params or {}).get("input"),
        "state": v.state,
        "run_id": v.run_id,
        "created_at": v.created_at.isoformat() if v.created_at else None,
        "activated_at": v.activated_at.isoformat() if v.activated_at else None,
        "metrics": {k: m[k] for k in keys if k in m},
        "training_seconds": v.training_seconds,
        "embedding_dim": v.embedding_dim,
        "n_classes": len(v.classes) if v.classes else None,
        "sha256": v.artifact_sha256,
        "error": v.error,
    }


def existing_hnsw_indexes(session: Session) -> set[str]:
    return set(
        session.execute(
            text("SELECT indexname FROM pg_indexes WHERE tablename = 'embeddings' AND indexname LIKE :pattern"),
            {"pattern": HNSW_INDEX_PATTERN},
        ).scalars()
    )
