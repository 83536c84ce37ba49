"""The model registry as the models page reads it."""

from __future__ import annotations

from typing import Any

ZERO_SCORE_METRICS = ("accuracy", "macro_f1")
"""Held-out scores of a classifier: 0 means it learnt nothing (or the test set is broken), which the page flags."""


def model_rows(versions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every version; roll back is offered for a kind only when it has a retired version to go back to, and a
    version whose held-out score is 0 is flagged."""
    retired = {m["kind"] for m in versions if m["state"] == "retired"}
    for m in versions:
        m["can_roll_back"] = m["state"] == "active" and m["kind"] in retired
        m["zero_score"] = [k for k in ZERO_SCORE_METRICS if (m.get("metrics") or {}).get(k) == 0]
    return versions
