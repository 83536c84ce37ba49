"""Analysis as stages: the ordered list a track's analysis runs through, and which of them a track needs.

Before the list, the ingest pass (``ingest.process``) opens the file once and hashes it: that answer decides what
runs (a new or changed content runs every stage; the same content only its outdated stages; a twin of a missing
track is a move). Then each stage of :data:`STAGES` (``base.Stage``: name, version, needs, what it writes) whose
record in ``tracks.stage_versions`` is missing or older runs, in this order, with the stages it reads; the audio they
need is decoded once for all of them. A stage's version is recorded when its output is written, so
``ingest --reanalyse-outdated`` (on by default) re-runs only the stages whose version went up.

To add a stage: one module with a ``Stage`` (see docs/ingestion.md, "How to add a stage") and one line below
(plus a migration if it writes a table of its own).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from musicindex.ingest.stages import decode, descriptors, embedding, features, spectrogram, tags
from musicindex.ingest.stages import fingerprint as fingerprint_stage
from musicindex.ingest.stages.base import Audio, AudioSource, Needs, Stage, StageFamily, TrackWork

STAGES: tuple[Stage | StageFamily, ...] = (
    tags.STAGE,
    decode.STAGE,
    features.STAGE,
    spectrogram.STAGE,
    embedding.MODELS,  # one stage per embedding model of the registry (musicnn by default)
    descriptors.STAGE,  # after the embedding stages: its moods read the tags they write (issue #30)
    fingerprint_stage.STAGE,  # duplicates (issue 31): last, so its write reads the track's musicnn embedding
)
"""The stages in the order they run."""

__all__ = ["STAGES", "Audio", "AudioSource", "Needs", "Stage", "StageFamily", "TrackWork", "declared", "pipeline",
           "plan", "recorded_outdated_sql"]  # fmt: skip


def _expand(bound: Sequence[Any] | None) -> list[Stage]:
    out: list[Stage] = []
    for entry in STAGES:
        out.extend(entry.expand(bound) if isinstance(entry, StageFamily) else [entry])
    names = [s.name for s in out]
    if len(set(names)) != len(names):
        raise ValueError(f"two analysis stages share a name: {names}")
    return out


def declared() -> list[Stage]:
    """Every stage this code knows (an embedding stage per registered model, unbound): names and versions."""
    return _expand(None)


def pipeline(passes: Sequence[Any] = ()) -> list[Stage]:
    """The stages a worker runs: the list, with the embedding stages of the models bound in ``passes``
    (``embedding.EmbeddingPass``; a model without a pass here is left out)."""
    return _expand(list(passes))


def plan(stages: Sequence[Stage], recorded: Mapping[str, int] | None) -> list[Stage]:
    """The stages to run for a track whose record is ``recorded`` (None: new or changed content: all of them),
    with the stages they read, in list order."""
    if recorded is None:
        return list(stages)
    by_name = {s.name: s for s in stages}
    todo = {s.name for s in stages if s.stale(recorded.get(s.name)) or s.name not in recorded}
    grow = list(todo)
    while grow:
        for dep in by_name[grow.pop()].needs.stages:
            if dep not in todo and dep in by_name:
                todo.add(dep)
                grow.append(dep)
    return [s for s in stages if s.name in todo]


def outdated(stages: Iterable[Stage], recorded: Mapping[str, int]) -> bool:
    """Whether an indexed track with this record is analysed again (the rule ``register`` queues by)."""
    return any(s.outdated(recorded.get(s.name)) for s in stages)


def recorded_outdated_sql(alias: str = "t") -> tuple[str, dict[str, Any]]:
    """SQL: the track ``alias`` (a ``tracks`` row) has a stage whose record is outdated (:func:`outdated` over
    :func:`declared`), and its parameters."""
    conds: list[str] = []
    params: dict[str, Any] = {}
    for i, s in enumerate(declared()):
        rec = f"({alias}.stage_versions ->> :stage_{i})::int"
        params.update({f"stage_{i}": s.name, f"version_{i}": int(s.version)})
        conds.append(f"coalesce({rec}, :missing_{i}) < :version_{i}")
        params[f"missing_{i}"] = -1 if s.required else 2**31 - 1
    return ("(" + " OR ".join(conds) + ")" if conds else "false"), params
