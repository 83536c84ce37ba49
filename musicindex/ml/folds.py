"""Honest model selection: cross-validation grouped by artist, and the documented fallback when it is impossible.

A model that memorises artists must not be rewarded, so every split the training makes (the held-out split, the
folds of each model's parameter search, the k-fold scores that ``auto`` and promotion compare) keeps the tracks of
one *group* on one side. A track's group (:func:`group_key`) is its artist tag; without a readable one its album
tag; without that its folder.

Grouping is impossible for a genre whose tracks all share one group (a genre with one artist): held out, the model
would never have seen the genre; it is pointless for a genre where one group holds more than half of the tracks
(``MAX_GROUP_SHARE``). Such a genre is split track by track (plain stratified), the others stay grouped
(``protocol`` ``partly grouped``); when no genre can be grouped, or there are fewer groups than folds, the splits
are plain stratified folds (``protocol`` ``stratified``). The protocol and the genres left ungrouped are recorded
in each model's metrics (``selection``). Pure functions (numpy and scikit-learn's splitters), no database.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from musicindex.textnorm import fold

GROUPED, PARTLY_GROUPED, STRATIFIED = "artist-grouped", "partly grouped", "stratified"
PROTOCOLS = (GROUPED, PARTLY_GROUPED, STRATIFIED)
MIN_GROUPS_PER_GENRE = 2
"""A genre is grouped only when its tracks come from at least this many groups (one can be held out)."""
MAX_GROUP_SHARE = 0.5
"""... and when no group holds more than this share of its tracks: holding out an artist who made most of a genre
leaves too little of it to learn from, and the folds would measure that artist's absence, not the models."""
PLACEHOLDERS = frozenset(
    {
        "unknown", "unknown artist", "unknown album", "[unknown]", "<unknown>", "(unknown)", "various",
        "various artists", "va", "v/a", "none", "n/a", "na", "null", "nil", "undefined", "artist", "album",
        "untitled", "no artist", "no album", "track", "-", "?",
    }
)  # fmt: skip
"""Tag values that name no artist or album (compared folded)."""
_WORD = re.compile(r"\w", re.UNICODE)


def readable(tag: str | None) -> str | None:
    """The folded tag, or None when it is empty, a placeholder (``Unknown Artist``), holds no letter or digit, or
    carries the replacement character of a tag that was not decoded (mojibake)."""
    if tag is None or "\ufffd" in str(tag):
        return None
    text = fold(str(tag))
    if not text or text in PLACEHOLDERS or not _WORD.search(text):
        return None
    return text


def group_key(artist: str | None, album: str | None, path: str | None) -> str:
    """The group of a track: ``artist:<folded artist tag>``, else ``album:<folded album tag>``, else
    ``folder:<its folder>``."""
    name = readable(artist)
    if name is not None:
        return f"artist:{name}"
    name = readable(album)
    if name is not None:
        return f"album:{name}"
    return f"folder:{os.path.dirname(path or '')}"


@dataclass(frozen=True)
class Grouping:
    """How the labelled tracks are split: ``groups[i]`` is row i's group for the splitters (a genre that cannot
    be grouped has one group per track)."""

    groups: np.ndarray
    protocol: str
    raw: np.ndarray | None = None
    """The rows' own group keys (None: unknown)."""
    ungrouped: dict[str, int] = field(default_factory=dict)
    """Genres split track by track, with their number of groups."""
    n_groups: int = 0
    by: dict[str, int] = field(default_factory=dict)
    """How many groups come from artist tags, album tags and folders."""

    def describe(self, folds: int | None = None) -> dict[str, Any]:
        """What the metrics record (``metrics.selection``)."""
        out: dict[str, Any] = {"protocol": self.protocol, "groups": self.n_groups, "group_sources": self.by}
        if self.ungrouped:
            out["ungrouped_genres"] = self.ungrouped
        if folds is not None:
            out["folds"] = folds
        out["note"] = _note(self)
        return out


def _note(g: Grouping) -> str:
    if g.protocol == GROUPED:
        return "every split keeps one artist's tracks on one side (artist tag, else album, else folder)"
    listed = ", ".join(f"{k!r} ({v} group{'s' if v != 1 else ''})" for k, v in sorted(g.ungrouped.items()))
    if g.protocol == PARTLY_GROUPED:
        return (
            "artist-grouped, except genres from a single artist (or where one artist holds more than half of the "
            f"tracks), split track by track: {listed}"
        )
    why = f"no genre has {MIN_GROUPS_PER_GENRE} artists: {listed}" if g.ungrouped else "too few artists for the folds"
    return f"plain stratified folds (fallback: {why}); scores may reward models that learn artists"


def plan(y: Sequence[str] | np.ndarray, groups: Sequence[str] | np.ndarray | None, folds: int = 2) -> Grouping:
    """The grouping of labelled rows ``y`` with group keys ``groups`` (None: no groups known)."""
    y = np.asarray(y, dtype=str)
    n = len(y)
    if groups is None or n == 0:
        return Grouping(np.array([f"track:{i}" for i in range(n)]), STRATIFIED)
    g = np.asarray(groups, dtype=object).astype(str)
    by = dict(Counter(k.split(":", 1)[0] for k in set(g.tolist())))
    ungrouped: dict[str, int] = {}
    eff = g.copy()
    for genre in sorted(set(y.tolist())):
        rows = y == genre
        sizes = Counter(g[rows].tolist())
        if len(sizes) < MIN_GROUPS_PER_GENRE or max(sizes.values()) > MAX_GROUP_SHARE * int(rows.sum()):
            ungrouped[genre] = len(sizes)
            eff[rows] = [f"track:{i}" for i in np.flatnonzero(rows)]
    n_real = len(set(g[~np.isin(y, list(ungrouped))].tolist()))
    n_eff = len(set(eff.tolist()))
    if len(ungrouped) == len(set(y.tolist())) or n_eff < folds or n_real < 2:
        return Grouping(np.array([f"track:{i}" for i in range(n)]), STRATIFIED, g, ungrouped, n_real, by)
    return Grouping(eff, PARTLY_GROUPED if ungrouped else GROUPED, g, ungrouped, n_real, by)


def cv_splits(
    y: Sequence[str] | np.ndarray, grouping: Grouping, folds: int, seed: int
) -> list[tuple[np.ndarray, np.ndarray]]:
    """``folds`` (train, test) index pairs: StratifiedGroupKFold over the grouping, or StratifiedKFold."""
    from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold

    y = np.asarray(y, dtype=str)
    idx = np.arange(len(y))
    if grouping.protocol == STRATIFIED:
        return list(StratifiedKFold(folds, shuffle=True, random_state=seed).split(idx, y))
    splitter = StratifiedGroupKFold(folds, shuffle=True, random_state=seed)
    return list(splitter.split(idx, y, grouping.groups))


def holdout(
    y: Sequence[str] | np.ndarray, grouping: Grouping, test_size: float, seed: int
) -> tuple[np.ndarray, np.ndarray, str]:
    """(train rows, held-out rows, the protocol of the split): one fold of a grouped k-fold with
    k = round(1 / test_size), the one whose held-out part holds the most genres while every genre keeps two
    training tracks; a plain stratified split when the grouping is ``stratified`` or no fold qualifies."""
    from sklearn.model_selection import train_test_split

    y = np.asarray(y, dtype=str)
    idx = np.arange(len(y))
    if grouping.protocol != STRATIFIED:
        k = max(2, round(1 / test_size))
        best: tuple[tuple[int, float], np.ndarray, np.ndarray] | None = None
        classes = set(y.tolist())
        for tr, te in cv_splits(y, grouping, k, seed):
            kept = Counter(y[tr].tolist())
            if set(kept) != classes or min(kept.values()) < 2:
                continue
            rank = (len(set(y[te].tolist())), -abs(len(te) / len(y) - test_size))
            if best is None or rank > best[0]:
                best = (rank, tr, te)
        if best is not None:
            return np.sort(best[1]), np.sort(best[2]), grouping.protocol
    tr, te = train_test_split(idx, test_size=test_size, stratify=y, random_state=seed)
    return np.sort(tr), np.sort(te), STRATIFIED


def subset(grouping: Grouping, rows: np.ndarray, y: Sequence[str] | np.ndarray, folds: int = 2) -> Grouping:
    """The grouping of a subset of the rows (the training part), planned again: a genre may have lost groups."""
    return plan(y, None if grouping.raw is None else grouping.raw[rows], folds)
