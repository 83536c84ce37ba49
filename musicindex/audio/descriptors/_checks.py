"""Argument checks shared by the descriptor estimators: a wrong argument is an ``InvalidArgumentError`` that says
what is accepted."""

from __future__ import annotations

import math

import numpy as np

from ...errors import InvalidArgumentError


def as_array(x: object, name: str, *, ndim: int | tuple[int, ...], dtype: type = np.float64) -> np.ndarray:
    """``x`` as a finite float array of the given rank (copy-free when it already is one)."""
    if isinstance(x, (str, bytes)) or x is None:
        raise InvalidArgumentError(f"{name} must be a numeric array, got {type(x).__name__}")
    try:
        a: np.ndarray = np.asarray(x, dtype=dtype)
    except (TypeError, ValueError) as e:
        raise InvalidArgumentError(f"{name} must be a numeric array ({e})") from None
    dims = (ndim,) if isinstance(ndim, int) else ndim
    if a.ndim not in dims:
        want = " or ".join(f"{d}-d" for d in dims)
        raise InvalidArgumentError(f"{name} must be a {want} array, got shape {a.shape}")
    if a.size and not np.isfinite(np.sum(a, dtype=np.float64)):  # one pass; NaN/inf propagate into the sum
        raise InvalidArgumentError(f"{name} has non-finite values (NaN or infinity)")
    return a


def positive(x: object, name: str, *, lo: float = 0.0, hi: float = math.inf) -> float:
    """``x`` as a float in (lo, hi]."""
    if isinstance(x, bool) or not isinstance(x, (int, float, np.integer, np.floating)):
        raise InvalidArgumentError(f"{name} must be a number, got {type(x).__name__}")
    v = float(x)
    if not (lo < v <= hi):
        raise InvalidArgumentError(f"{name} must be in ({lo:g}, {hi:g}], got {v!r}")
    return v
