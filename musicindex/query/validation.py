"""Argument checks shared by every query: each wrong argument is an InvalidArgumentError that says what to give.

Text arguments refuse NUL characters (PostgreSQL text cannot hold them) with the same error the HTTP API maps
to 422 and the CLI to exit code 2.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from musicindex.errors import InvalidArgumentError
from musicindex.pretrained.registry import space_names

MAX_K = 1000
"""At most this many results of one query (and at most this many tracks named by one argument)."""
MAX_LIST = 1000
"""At most this many entries in any list argument (liked, disliked, exclusions; tags are bounded further)."""


def check_k(k: Any, name: str = "k") -> int:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)):
        raise InvalidArgumentError(f"{name} must be an integer between 1 and {MAX_K}, got {k!r}")
    if k <= 0 or k > MAX_K:
        raise InvalidArgumentError(f"{name} must be between 1 and {MAX_K}, got {k}")
    return int(k)


def check_space(space: Any) -> str:
    spaces = space_names()  # the trained spaces and one per embedding model of the registry
    if space not in spaces:
        raise InvalidArgumentError(f"unknown space {space!r}; choose one of: {', '.join(spaces)}")
    return str(space)


def check_int(value: Any, name: str, low: int, high: int) -> int:
    """An integer in [low, high] (not a bool)."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not low <= value <= high:
        raise InvalidArgumentError(f"{name} must be an integer between {low} and {high}, got {value!r}")
    return int(value)


def check_text(value: Any, name: str, *, max_length: int = 1000, empty: bool = False) -> str:
    """A string without NUL characters, at most ``max_length`` long (non-empty unless ``empty``)."""
    if not isinstance(value, str) or (not empty and not value):
        raise InvalidArgumentError(f"{name} must be a {'' if empty else 'non-empty '}string, got {value!r}")
    if "\x00" in value:
        raise InvalidArgumentError(f"{name} contains a NUL character (\\x00), which no name or tag can hold")
    if len(value) > max_length:
        raise InvalidArgumentError(f"{name} is longer than {max_length} characters")
    return value


def as_list(x: Any, name: str, most: int = MAX_LIST) -> list[Any]:
    """``x`` as a list (one value becomes a list of one; None an empty one), at most ``most`` long."""
    if x is None:
        return []
    if isinstance(x, (str, bytes, int, os.PathLike)):
        return [x]
    try:
        out = list(x)
    except TypeError:
        raise InvalidArgumentError(f"{name} must be a list, got {type(x).__name__}") from None
    if len(out) > most:
        raise InvalidArgumentError(f"{name} holds {len(out)} entries; at most {most}")
    return out
