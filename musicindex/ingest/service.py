"""``IngestService``: what ``MusicIndex`` offers for ingestion (register, queue, wait, status)."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from musicindex.config import Settings
from musicindex.db.session import Database
from musicindex.dispatch import Dispatcher
from musicindex.errors import InvalidArgumentError
from musicindex.ingest.labels import LabelSource
from musicindex.ingest.progress import Progress, latest_failures, progress, status_counts
from musicindex.ingest.register import RegisterResult, register

log = logging.getLogger("musicindex")


@dataclass
class IngestSummary(RegisterResult):
    """What ``ingest`` registered and queued; ``final`` holds the counts after ``wait=True``."""

    jobs: int = 0
    final: dict[str, int] | None = None  # counts after --wait: indexed / failed / pending
    seconds: float | None = None

    @property
    def queued(self) -> int:
        return len(self.queued_ids)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        del d["queued_ids"]
        d["queued"] = self.queued
        return d


@dataclass
class StatusReport:
    counts: dict[str, int]
    failures: list[tuple[str, str]]
    queues: dict[str, int]
    workers: list[str]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def chunks(ids: Sequence[int], n: int) -> Iterable[list[int]]:
    for i in range(0, len(ids), n):
        yield [int(x) for x in ids[i : i + n]]


class IngestService:
    """Registration in this process, analysis on the workers' ``ingest`` queue."""

    def __init__(self, db: Database, settings: Settings, dispatcher: Dispatcher):
        self.db = db
        self.settings = settings
        self.dispatcher = dispatcher

    def ingest(
        self,
        paths: Sequence[str | os.PathLike[str]] | str | os.PathLike[str],
        *,
        wait: bool = False,
        label_from: str | None = None,
        reanalyse_outdated: bool = True,
        follow_symlinks: bool | None = None,
        on_progress: Callable[[Progress], None] | None = None,
        timeout: float | None = None,
        poll: float = 0.5,
    ) -> IngestSummary:
        """Scan ``paths``, register new or changed files, and queue their analysis on the workers.

        ``label_from``: ``"folder"`` (parent folder name, the GTZAN layout), ``"tag"`` (the
        genre tag) or ``"csv:FILE"`` (rows ``path,label``). With ``wait=True`` it returns when
        every queued file is indexed or failed, calling ``on_progress`` as it goes.
        """
        if isinstance(paths, (str, os.PathLike)):
            paths = [paths]
        if not paths:
            raise InvalidArgumentError("ingest needs at least one file or folder")
        t0 = time.monotonic()
        label_from_tag = LabelSource(label_from).from_tag
        reg = register(
            self.db,
            paths,
            label_from=label_from,
            reanalyse_outdated=reanalyse_outdated,
            follow_symlinks=self.settings.follow_symlinks if follow_symlinks is None else follow_symlinks,
        )
        jobs = 0
        for chunk in chunks(reg.queued_ids, self.settings.ingest_chunk):
            self.dispatcher.ingest(chunk, label_from_tag=label_from_tag)
            jobs += 1
        summary = IngestSummary(**vars(reg), jobs=jobs)
        if wait and reg.queued_ids:
            prog = self.wait_for(reg.queued_ids, on_progress=on_progress, timeout=timeout, poll=poll)
            summary.final = {"indexed": prog.indexed, "failed": prog.failed, "pending": prog.pending}
        summary.seconds = time.monotonic() - t0
        return summary

    def wait_for(
        self,
        track_ids: Sequence[int],
        *,
        on_progress: Callable[[Progress], None] | None = None,
        timeout: float | None = None,
        poll: float = 0.5,
    ) -> Progress:
        """Block until none of ``track_ids`` is pending; raises TimeoutError after ``timeout`` s."""
        start = time.monotonic()
        warned = False
        while True:
            prog = progress(self.db, track_ids)
            if on_progress is not None:
                on_progress(prog)
            if prog.pending == 0:
                return prog
            if timeout is not None and time.monotonic() - start > timeout:
                raise TimeoutError(f"{prog.pending} of {prog.total} files still pending after {timeout:.0f} s")
            if not warned and time.monotonic() - start > 10 and not self.dispatcher.ping_workers(0.5):
                warned = True
                log.warning("no worker answers; jobs wait in the queue. Start one with `musicindex worker`.")
            time.sleep(poll)

    def status(self, failures: int = 10) -> StatusReport:
        """Counts by status, the latest failures with reasons, queue depths and live workers."""
        return StatusReport(
            counts=status_counts(self.db),
            failures=latest_failures(self.db, failures),
            queues=self.dispatcher.queue_depths(),
            workers=self.dispatcher.ping_workers(timeout=1.0),
        )
