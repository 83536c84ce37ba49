"""``TrainOptions``: the options of one training run, validated once and carried through every hop.

CLI / HTTP -> ``TrainingService.train`` -> ``Dispatcher.train`` (``to_dict()``: the task message) -> the
``musicindex.train`` task (``from_dict``) -> ``training.train``. A wrong value is an InvalidArgumentError that
names the option, raised where the options are made, before anything is queued or written.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

import numpy as np

from musicindex.errors import InvalidArgumentError
from musicindex.ml.data import MIN_TRACKS_PER_LABEL
from musicindex.ml.netconfig import config_for
from musicindex.vocab import CLASSIFIER_INPUTS, NET_KINDS, TRAINABLE_KINDS

INPUTS = ("auto", *CLASSIFIER_INPUTS)
TRIGGERS = ("manual", "scheduled", "api")


def parse_models(models: str | Iterable[str] | None) -> tuple[str, ...]:
    """``None``/"all" -> every model; "knn,ann" or a list -> those, in canonical order."""
    if models is None:
        return TRAINABLE_KINDS
    if isinstance(models, str):
        models = [m for m in models.replace(" ", ",").split(",") if m]
    wanted = [str(m).strip().lower() for m in models]
    if not wanted or wanted == ["all"]:
        return TRAINABLE_KINDS
    bad = [m for m in wanted if m not in TRAINABLE_KINDS]
    if bad:
        raise InvalidArgumentError(f"unknown model {bad[0]!r}; choose from {', '.join(TRAINABLE_KINDS)} (or all)")
    return tuple(m for m in TRAINABLE_KINDS if m in wanted)


@dataclass(frozen=True)
class TrainOptions:
    """What one training run trains and how.

    ``models``: the kinds (default all); ``test_size``: held-out fraction of the stratified split (0.4 for the
    study's 60:40); ``cv_folds`` / ``net_cv_folds``: stratified k-fold of the classical models / the nets (0:
    no k-fold for the nets); ``quick``: small grids and tiny network budgets (tests, smoke runs);
    ``n_clusters``: fixed k of the clusterers (default: a silhouette sweep up to ``max_k``); ``pca``: PCA before
    clustering (a fraction of the variance in (0, 1), or a number of components); ``min_per_label``: fewest
    tracks a genre needs; ``drop_rare_labels``: leave out genres with fewer instead of refusing; ``inputs``:
    what knn, logreg and the ann read (``features``, ``musicnn``, or ``auto``: both, the better
    cross-validated macro-F1 wins); ``force``: train even when the labelled data has not changed since the
    active models were trained; ``promotion_tolerance``: None = ``MUSICINDEX_PROMOTION_TOLERANCE``;
    ``net_overrides``: per net kind, fields of its config (``nets.ANNConfig`` / ``CNNConfig``);
    ``trigger``: who asked (manual, scheduled, api).
    """

    models: tuple[str, ...] = TRAINABLE_KINDS
    test_size: float = 0.2
    seed: int = 42
    cv_folds: int = 5
    net_cv_folds: int = 3
    quick: bool = False
    n_clusters: int | None = None
    max_k: int = 12
    pca: float | None = None
    min_per_label: int = MIN_TRACKS_PER_LABEL
    drop_rare_labels: bool = False
    inputs: str = "auto"
    force: bool = False
    promotion_tolerance: float | None = None
    net_overrides: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    trigger: str = "manual"

    def __post_init__(self) -> None:
        object.__setattr__(self, "models", parse_models(self.models))
        _number(self, "test_size", 0.05, 0.5, "a held-out fraction between 0.05 and 0.5")
        _integer(self, "seed", 0, 2**31 - 1)
        _integer(self, "cv_folds", 2, 50)
        _integer(self, "net_cv_folds", 0, 50)
        if self.net_cv_folds == 1:
            raise InvalidArgumentError("net_cv_folds must be 0 (skip) or >= 2")
        if self.n_clusters is not None:
            _integer(self, "n_clusters", 2, 1000)
        _integer(self, "max_k", 2, 1000)
        if self.pca is not None:
            _number(self, "pca", 0.0, 10_000.0, "a fraction of the variance in (0, 1) or a number of components")
            if self.pca <= 0 or (self.pca >= 1 and not float(self.pca).is_integer()):
                raise InvalidArgumentError(
                    f"pca {self.pca!r}: a fraction of the variance in (0, 1) or a whole number of components"
                )
        _integer(self, "min_per_label", 2, 10_000)
        for flag in ("quick", "drop_rare_labels", "force"):
            if not isinstance(getattr(self, flag), (bool, np.bool_)):
                raise InvalidArgumentError(f"{flag} must be true or false, got {getattr(self, flag)!r}")
        if self.inputs not in INPUTS:
            raise InvalidArgumentError(f"inputs {self.inputs!r}: choose {', '.join(INPUTS)}")
        if self.promotion_tolerance is not None:
            _number(self, "promotion_tolerance", 0.0, 1.0, "a number in [0, 1]")
        if self.trigger not in TRIGGERS:
            raise InvalidArgumentError(f"trigger {self.trigger!r}: choose {', '.join(TRIGGERS)}")
        overrides = dict(self.net_overrides or {})
        for kind, values in overrides.items():
            if kind not in NET_KINDS or not isinstance(values, Mapping):
                raise InvalidArgumentError(
                    f"net_overrides: {kind!r} is not a network kind with a config ({', '.join(NET_KINDS)})"
                )
            try:
                config_for(kind, self.quick, dict(values))
            except TypeError as exc:
                raise InvalidArgumentError(f"net_overrides[{kind!r}]: {exc}") from None
        object.__setattr__(self, "net_overrides", {k: dict(v) for k, v in overrides.items()})

    @classmethod
    def of(cls, models: str | Iterable[str] | None = None, **options: Any) -> TrainOptions:
        """Options from keyword arguments (``models`` as for ``parse_models``); an unknown name is refused."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(options) - known)
        if unknown:
            raise InvalidArgumentError(
                f"unknown training option {unknown[0]!r}; the options are: {', '.join(sorted(known - {'models'}))}"
            )
        return cls(models=parse_models(models), **{k: v for k, v in options.items() if v is not None})

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TrainOptions:
        """The options of ``to_dict()`` (a task message), checked again."""
        data = dict(data)
        return cls.of(data.pop("models", None), **data)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (the task message)."""
        d = asdict(self)
        d["models"] = list(self.models)
        return d

    def with_(self, **changes: Any) -> TrainOptions:
        return replace(self, **changes)

    @property
    def nets(self) -> bool:
        """Whether a network kind is trained (its k-fold counts for the labels' minimum)."""
        return bool(set(NET_KINDS) & set(self.models))

    @property
    def folds_needed(self) -> int:
        """The most folds any requested kind splits the labelled tracks into."""
        return max(self.cv_folds, self.net_cv_folds if self.nets else 0)


def _integer(opts: TrainOptions, name: str, low: int, high: int) -> None:
    value = getattr(opts, name)
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not low <= value <= high:
        raise InvalidArgumentError(f"{name} must be an integer between {low} and {high}, got {value!r}")


def _number(opts: TrainOptions, name: str, low: float, high: float, what: str) -> None:
    value = getattr(opts, name)
    ok = isinstance(value, (int, float, np.number)) and not isinstance(value, bool) and math.isfinite(float(value))
    if not ok or not low <= float(value) <= high:
        raise InvalidArgumentError(f"{name} {value!r}: choose {what}")
