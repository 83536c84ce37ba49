"""The configurations of the genre networks (layers, budgets, early stopping) and the quick ones for tests.

``config_for(kind, quick, overrides)`` is what a training run uses; ``TrainOptions.net_overrides`` names fields of
these dataclasses. Kept apart from ``nets`` (which needs TensorFlow to run) so options can be checked cheaply.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from musicindex.ml.data import PATCH_FRAMES


@dataclass(frozen=True)
class ANNConfig:
    hidden: tuple[int, ...] = (256, 128)
    embedding_dim: int = 64
    dropout: float = 0.3
    l1: float = 1e-5
    l2: float = 1e-4
    learning_rate: float = 1e-3
    epochs: int = 200
    batch_size: int = 32
    patience: int = 20
    val_fraction: float = 0.15


@dataclass(frozen=True)
class CNNConfig:
    pre_pool: tuple[int, int] = (2, 2)
    filters: tuple[int, ...] = (16, 32, 64, 64)
    embedding_dim: int = 64
    dropout: float = 0.3
    l2: float = 1e-4
    learning_rate: float = 1e-3
    epochs: int = 30
    batch_size: int = 32
    patience: int = 8
    val_fraction: float = 0.15
    patch_frames: int = PATCH_FRAMES
    train_hop: int = PATCH_FRAMES // 2
    max_patches_train: int = 6


ANN_QUICK = ANNConfig(hidden=(64,), embedding_dim=32, epochs=40, patience=10, batch_size=16, learning_rate=3e-3)
CNN_QUICK = CNNConfig(
    filters=(8, 16, 32),
    embedding_dim=32,
    epochs=12,
    patience=4,
    batch_size=16,
    train_hop=48,
    max_patches_train=6,
    learning_rate=3e-3,
)


def config_for(kind: str, quick: bool, overrides: dict[str, Any] | None = None) -> Any:
    base: Any = (ANN_QUICK if quick else ANNConfig()) if kind == "ann" else (CNN_QUICK if quick else CNNConfig())
    if overrides:
        base = replace(base, **{k: (tuple(v) if isinstance(v, list) else v) for k, v in overrides.items()})
    return base
