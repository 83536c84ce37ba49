"""Ingestion: scan folders, register files, analyse them, store the results.

Joins ``audio`` (which knows nothing of the database) and ``db`` (which knows nothing of
audio). Every step is a plain function; the Celery tasks in ``workers/`` only call them.

* ``scan``      -- walk the roots (streamed), list audio files with size and mtime
* ``paths``     -- paths as the database keeps them (a name that is not UTF-8: display text + bytes)
* ``labels``    -- ``--label-from folder | tag | csv:FILE``
* ``register``  -- one transaction (COPY into a staging table, set-based SQL): new / changed /
  missing files, what needs audio work, what a job already holds
* ``process``   -- analyse a chunk of tracks in a worker: the runner of the analysis stages
* ``stages``    -- the ordered analysis stages (tags, decode, features, spectrogram, one per embedding model),
  each with its version, needs and writes; ``moves`` -- a new file that is a missing track, moved
* ``lifecycle`` -- the track status flow (the only writer of ``tracks.status``)
* ``progress``  -- counts, a batch's progress, the latest failures
* ``watch``     -- watch folders and queue changes once they settle
* ``service``   -- ``IngestService``, what ``MusicIndex`` offers

Without Celery: ``register(db, paths)`` then ``process_tracks(db, result.queued_ids)``.
"""

from musicindex.ingest.labels import LabelSource
from musicindex.ingest.process import (
    MAX_ATTEMPTS,
    ChunkProcessor,
    ProcessOutcome,
    process_track,
    process_tracks,
    record_failure,
)
from musicindex.ingest.progress import Progress, latest_failures, progress, status_counts
from musicindex.ingest.register import RegisterResult, register
from musicindex.ingest.scan import ScannedFile, ScanReport, iter_scan, scan

__all__ = [
    "MAX_ATTEMPTS",
    "ChunkProcessor",
    "LabelSource",
    "ProcessOutcome",
    "Progress",
    "RegisterResult",
    "ScanReport",
    "ScannedFile",
    "iter_scan",
    "latest_failures",
    "process_track",
    "process_tracks",
    "progress",
    "record_failure",
    "register",
    "scan",
    "status_counts",
]
