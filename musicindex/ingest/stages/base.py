"""What an analysis stage is: its name and version, what it needs, what it produces and writes.

A :class:`Stage` is run by the ingest pass (``ingest.process``) for each track whose record says it is outdated
(``tracks.stage_versions``: stage name -> version of the values stored; see ``ingest.stages``):

1. :meth:`Stage.analyse` per track, in list order, with a :class:`TrackWork`: the open file (``fd``, ``stat``,
   ``source``: a path naming the descriptor), the decoded audio it declared in :attr:`Stage.needs`
   (``work.audio.get(need)``: decoded once per track for every stage), the outputs of the stages before it
   (``work.outputs``) and a scratch dict for intermediates worth sharing (the features' STFT). It returns its
   output (kept until the batch is written) or raises :class:`~musicindex.errors.AudioError`, which fails the
   track with that reason;
2. :meth:`Stage.complete` once per batch of tracks about to be written (a network run over several tracks); a
   failure there leaves those tracks without this stage's output (logged; they stay indexed);
3. :meth:`Stage.columns` (``tracks`` columns from its output) and :meth:`Stage.write` (its own table, in the
   batch's one transaction, after the tracks are marked indexed).
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session

from musicindex.audio.window import AnalysisWindow
from musicindex.vocab import SPAN_TRACK, SPAN_WINDOW

if TYPE_CHECKING:
    import numpy as np

    from musicindex.audio.decode import AudioInfo


@dataclass(frozen=True)
class Audio:
    """Decoded audio a stage reads: mono at ``rate`` Hz, of the analysis window or the track (``seconds``: at most
    the first that many seconds of it; None: all)."""

    rate: int
    span: str = SPAN_WINDOW
    seconds: float | None = None


@dataclass(frozen=True)
class Needs:
    """What a stage reads besides the open file (always at hand): decoded ``audio`` and the ``stages`` whose
    outputs it reads (they run before it, and with it when it is outdated)."""

    audio: tuple[Audio, ...] = ()
    stages: tuple[str, ...] = ()


class Stage:
    """One step of a track's analysis (see the module docstring). Subclasses set the class attributes and
    implement :meth:`analyse`; the other methods are optional."""

    name: str
    """Its key in ``tracks.stage_versions`` and in the outputs; unique in the list."""
    version: int
    """Version of the values it stores: bump it and ``ingest --reanalyse-outdated`` re-runs this stage only."""
    needs: Needs = Needs()
    writes: str = ""
    """Where its output goes, for people: ``tracks.<columns>`` and/or a table."""
    required: bool = True
    """An indexed track without this stage's record is outdated. False (the embedding models): only a record of an
    older version is; a missing one is the backfill's to fill (``musicindex embed``)."""

    def analyse(self, work: TrackWork) -> Any:
        raise NotImplementedError

    def complete(self, results: Sequence[Any]) -> None:
        """Finish a batch: ``results`` carry ``.id`` and ``.outputs`` (this stage's output under its name)."""

    def columns(self, output: Any) -> dict[str, Any]:
        """The ``tracks`` columns its output sets (written with the track's status)."""
        return {}

    def write(self, s: Session, rows: Sequence[tuple[int, Any]]) -> None:
        """Write ``(track id, output)`` rows in ``s``'s transaction (the tracks are marked indexed already)."""

    # ------------------------------------------------------------------ versions
    def stale(self, recorded: int | None) -> bool:
        """Whether a track's record of this stage is of an older version."""
        return recorded is not None and recorded < self.version

    def outdated(self, recorded: int | None) -> bool:
        """Whether an indexed track with this record is queued again (``register`` and the worker agree)."""
        return self.stale(recorded) or (recorded is None and self.required)

    def __repr__(self) -> str:
        return f"<stage {self.name} v{self.version}>"


class AudioSource:
    """A track's decoded audio: every :class:`Audio` the planned stages need, decoded on first use in ONE call
    (``audio.read_audio``: one decode, each rate resampled once). ``seconds`` measures the decode."""

    def __init__(self, fs: str, source: str, window: AnalysisWindow, needs: Sequence[Audio]):
        self.fs, self.source, self.window = fs, source, window
        self.needs = list(dict.fromkeys(needs))
        self.seconds = 0.0
        self._signals: dict[tuple[str, int], np.ndarray] | None = None
        self._info: AudioInfo | None = None

    def _decode(self) -> None:
        from musicindex import audio

        if self._signals is not None:
            return
        track = [n for n in self.needs if n.span == SPAN_TRACK]
        seconds = None if any(n.seconds is None for n in track) else max((n.seconds or 0.0 for n in track), default=0)
        t0 = time.process_time()
        try:
            self._signals, self._info = audio.read_audio(
                self.fs,
                self.window,
                [(n.span, int(n.rate)) for n in self.needs],
                track_seconds=seconds,
                source=self.source,
            )
        finally:
            self.seconds += time.process_time() - t0

    @property
    def decoded(self) -> bool:
        return self._signals is not None

    @property
    def info(self) -> AudioInfo:
        """What the header says (duration, rate, channels, format); decodes if not done yet."""
        self._decode()
        assert self._info is not None
        return self._info

    def get(self, need: Audio) -> np.ndarray:
        """The signal of ``need`` (one the stage declared)."""
        if need not in self.needs:
            raise KeyError(f"{need} was not declared in the needs of the stages that run")
        self._decode()
        assert self._signals is not None
        y = self._signals[(need.span, int(need.rate))]
        if need.span == SPAN_TRACK and need.seconds is not None:
            y = y[: int(need.seconds * need.rate)]
        return y


@dataclass
class TrackWork:
    """One track while its stages run: the file opened once, its audio, what earlier stages produced."""

    id: int
    path: str
    """As stored (display form)."""
    fs: str
    """Where the file is (the file system's bytes)."""
    source: str
    """A path naming the open descriptor: read through it, never by name again."""
    fd: int
    stat: os.stat_result
    window: AnalysisWindow
    audio: AudioSource
    label_from_tag: bool = False
    outputs: dict[str, Any] = field(default_factory=dict)
    scratch: dict[str, Any] = field(default_factory=dict)


class StageFamily:
    """An entry of the list that stands for several stages decided at run time (one per embedding model)."""

    def expand(self, bound: Sequence[Any] | None) -> list[Stage]:
        """The stages: ``bound`` None for the declared ones (every registered model: versions only), else those a
        worker could bind (a model that cannot run there is left out)."""
        raise NotImplementedError
