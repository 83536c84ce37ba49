"""The descriptor filters of :class:`~musicindex.query.options.SearchOptions`: a tempo range, a key (or the keys
compatible with the seed's), named moods and an energy range; their checks and how a text reads (one parser for
the CLI, the HTTP API, the pages and Subsonic). Their SQL predicates are in ``query.filters``.

The key names and moods are those of ``audio.descriptors`` (imported when a key or mood filter is first checked:
those modules load numba's kernels).
"""

from __future__ import annotations

import math
import re
from typing import Any

import numpy as np

from musicindex.errors import InvalidArgumentError

TEMPO_RANGE = (20.0, 400.0)
"""BPM a tempo filter may name (the stored tempi are 40-240)."""
TEMPO_TOLERANCE = 0.04
"""One BPM given alone means within 4 % of it (the tolerance of tempo accuracy, Acc1)."""
COMPATIBLE = "compatible"
"""``key=compatible``: the seed's key, its relative and the keys one step either way on the Camelot wheel."""
_CAMELOT = re.compile(r"(1[0-2]|[1-9])([ABab])")
_RANGE = re.compile(r"\s*([0-9]+(?:\.[0-9]+)?)\s*(?:(?:-|\.\.|to)\s*([0-9]+(?:\.[0-9]+)?)\s*)?")


def _number(v: Any) -> bool:
    return not isinstance(v, bool) and isinstance(v, (int, float, np.integer, np.floating)) and math.isfinite(v)


def _range(low: float, high: float, unit: str, example: str, tolerance: float) -> Any:
    accepted = (f"a range 'MIN-MAX' of {unit} between {low:g} and {high:g} such as {example!r}"
                + (f" (or one value: within {tolerance:.0%} of it)" if tolerance else ""))  # fmt: skip

    def check(value: Any, name: str) -> tuple[float, float] | None:
        if value is None:
            return None
        if isinstance(value, str):
            m = _RANGE.fullmatch(value) if len(value) <= 40 and "\x00" not in value else None
            if m is None:
                raise InvalidArgumentError(f"{name} must be {accepted}, got {value[:40]!r}")
            lo = float(m.group(1))
            hi = float(m.group(2)) if m.group(2) is not None else None
            if hi is None:
                if not tolerance:
                    raise InvalidArgumentError(f"{name} must be {accepted}, got {value[:40]!r}")
                lo, hi = lo * (1 - tolerance), lo * (1 + tolerance)
            value = (lo, hi)
        if not isinstance(value, (tuple, list)) or len(value) != 2 or not all(_number(v) for v in value):
            raise InvalidArgumentError(f"{name} must be {accepted} or a (min, max) pair, got {value!r}")
        lo, hi = float(value[0]), float(value[1])
        if lo > hi:
            raise InvalidArgumentError(f"{name}: the minimum {lo:g} is above the maximum {hi:g}; {name} is {accepted}")
        if lo < low or hi > high:
            raise InvalidArgumentError(f"{name} must lie between {low:g} and {high:g} {unit}, got {lo:g}-{hi:g}")
        return (round(lo, 3), round(hi, 3))

    return check


check_tempo = _range(*TEMPO_RANGE, "BPM", "118-128", TEMPO_TOLERANCE)
check_energy = _range(0.0, 1.0, "energy", "0.6-1", 0.0)


def check_key(value: Any, name: str) -> str | None:
    """A key filter as stored: a Camelot code ("8A") for a key name or a code, or ``compatible``."""
    if value is None:
        return None
    accepted = (f"a key such as 'A minor', 'F# major' or 'Am', a Camelot code such as '8A', or {COMPATIBLE!r} "
                "(the seed's key, its relative and the neighbours on the Camelot wheel)")  # fmt: skip
    if not isinstance(value, str) or len(value) > 32 or "\x00" in value or not value.strip():
        raise InvalidArgumentError(f"{name} must be {accepted}, got {value!r}")
    s = value.strip()
    if s.lower() == COMPATIBLE:
        return COMPATIBLE
    m = _CAMELOT.fullmatch(s)
    if m:
        return f"{m.group(1)}{m.group(2).upper()}"
    from musicindex.audio.descriptors.key import camelot

    try:
        return camelot(s)
    except InvalidArgumentError as exc:
        raise InvalidArgumentError(f"{name}: {exc}; {name} is {accepted}") from None


def check_mood(value: Any, name: str) -> str:
    from musicindex.audio.descriptors.mood import parse_mood

    try:
        return parse_mood(value)
    except InvalidArgumentError as exc:
        raise InvalidArgumentError(f"{name}: {exc}") from None


def compatible(code: str) -> list[str]:
    """The Camelot codes a harmonic mix may go to from ``code``: itself, its relative (same number, other
    letter) and one step either way on the wheel (same letter)."""
    m = _CAMELOT.fullmatch(code)
    if m is None:
        raise InvalidArgumentError(f"not a Camelot code: {code!r}")
    n, letter = int(m.group(1)), m.group(2).upper()
    other = "A" if letter == "B" else "B"
    return [f"{n}{letter}", f"{n}{other}", f"{(n % 12) + 1}{letter}", f"{(n - 2) % 12 + 1}{letter}"]


__all__ = ["COMPATIBLE", "TEMPO_RANGE", "check_energy", "check_key", "check_mood", "check_tempo", "compatible"]
