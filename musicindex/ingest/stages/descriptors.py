"""Stage ``descriptors``: tempo (+ confidence), key, mode and Camelot code (+ confidence), EBU R128 loudness,
loudness range, true peak and ReplayGain track gain, energy, danceability and named moods, into
``track_descriptors`` (plain columns; ``audio.descriptors.track`` computes them).

It reads the features' STFT (the window's ``Spectra``: the onset envelope and the chroma come from it, no second
STFT) and the 43 features; energy, danceability and the moods also read the track's musicnn tag probabilities.
Those come out of the embedding stage's batch step, so they are read where they meet: in :meth:`write`, in the
batch's transaction, after the embedding stage wrote this batch's tags (it runs before this stage in the list),
from ``track_tags`` (this batch's or, for a re-analysis of this stage only, the stored ones). A track without tags
(musicnn could not run in that worker) gets its mood from the features, tempo and key alone. A descriptor that
fails is stored NULL (logged); it never fails the track.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import func, text
from sqlalchemy.orm import Session

from musicindex.audio import descriptors
from musicindex.audio.descriptors import track as described
from musicindex.audio.features import Spectra
from musicindex.db.orm import TrackDescriptors
from musicindex.db.upsert import upsert
from musicindex.ingest.stages.base import Needs, Stage, TrackWork
from musicindex.ingest.stages.features import SHARED, SPECTRA, WINDOW_22K
from musicindex.vocab import DESCRIPTOR_COLUMNS, MUSICNN

TAGS_SQL = text(
    """
    SELECT DISTINCT ON (tt.track_id) tt.track_id, tt.probs, mv.classes
    FROM track_tags tt JOIN model_versions mv ON mv.id = tt.model_version_id
    WHERE tt.track_id = ANY(:ids) AND mv.kind = :model AND mv.classes IS NOT NULL
    ORDER BY tt.track_id, (mv.state = 'active') DESC, mv.id DESC
    """
)
COLUMNS = DESCRIPTOR_COLUMNS


class DescriptorsStage(Stage):
    name = "descriptors"
    version = descriptors.DESCRIPTORS_VERSION
    needs = Needs(audio=(WINDOW_22K,), stages=("features",))
    writes = f"track_descriptors: version, {', '.join(COLUMNS)}"

    def analyse(self, work: TrackWork) -> tuple[described.TrackDescriptors, Any]:
        sp = work.scratch.get(SPECTRA)
        window: Spectra | Any = sp if sp is not None else work.audio.get(WINDOW_22K)
        shared = work.scratch.get(SHARED) or {}  # the features' tuning and onset envelope: not computed twice
        d = described.describe(window, channels=int(work.audio.info.channels), **shared)
        return d, work.outputs["features"]

    def write(self, s: Session, rows: Sequence[tuple[int, Any]]) -> None:
        tags = stored_tags(s, [tid for tid, _ in rows])
        values = []
        for tid, (d, features) in rows:
            mood = described.moods_of(d, features, tags.get(tid))
            values.append({"track_id": tid, "version": self.version, **described.columns(d, mood)})
        upsert(s, TrackDescriptors, values, keys=("track_id",), update=("version", *COLUMNS),
               also_set={"computed_at": func.now()})  # fmt: skip


def stored_tags(s: Session, ids: Sequence[int]) -> dict[int, Mapping[str, float]]:
    """Each track's musicnn tag probabilities (name -> p) of the active version (else the newest) it has."""
    out: dict[int, Mapping[str, float]] = {}
    for tid, probs, classes in s.execute(TAGS_SQL, {"ids": list(ids), "model": MUSICNN}):
        if probs is not None and classes is not None and len(probs) == len(classes):
            out[int(tid)] = {str(c): float(p) for c, p in zip(classes, probs, strict=True)}
    return out


STAGE = DescriptorsStage()
