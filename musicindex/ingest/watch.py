"""Watching folders: queue new, changed, moved and deleted files as they happen.

The kernel reports file events (inotify through ``watchdog``); :class:`ChangeCollector`
keeps, for every path an event touched, the time of its latest event. A path is handed
to registration only once it has **settled**: no event on it (or, for a folder, on
anything under it) for ``settle`` seconds, and then its size and mtime unchanged over a
further half of that. So a file that is still being copied is not analysed half-written
(and the worker's own check, "the file changed while it was being analysed", is the
last line of defence). Settled paths are registered as *scopes* of the watched roots: only
they are scanned, and only tracks under them can turn missing (a deleted file, the old
path of a moved one; the worker recognises the move by content and keeps the track's id).

Reads (a worker opening a file to analyse it) are not changes and are ignored. Network
file systems deliver no events for changes made elsewhere: the beat-scheduled rescan
(``MUSICINDEX_RESCAN_INTERVAL``) is the fallback there.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy.exc import DBAPIError

from musicindex.errors import MusicIndexError
from musicindex.ingest.register import IngestSummary
from musicindex.ingest.scan import absolute_roots, check_root, is_audio_name, outermost, within

log = logging.getLogger(__name__)

IGNORED_EVENTS = frozenset({"opened", "closed_no_write"})
"""Event types that are reads, not changes."""


def _stat_key(path: str) -> tuple[int, int] | None:
    try:
        st = os.lstat(path)
    except OSError:
        return None
    return (st.st_size, st.st_mtime_ns)


class ChangeCollector:
    """Collects the paths file events touch and hands them out once they have settled (thread-safe)."""

    def __init__(self, roots: Sequence[str], settle: float = 2.0, clock: Callable[[], float] = time.monotonic):
        self.roots = outermost(absolute_roots(roots))
        self.settle = float(settle)
        self.clock = clock
        self._lock = threading.Lock()
        self._last: dict[str, float] = {}  # path -> time of its latest event
        self._dirs: set[str] = set()  # of those, the folders (scanned whole)
        self._confirm: dict[str, tuple[tuple[int, int] | None, float]] = {}

    # ------------------------------------------------------------------ events (observer thread)
    def dispatch(self, event: Any) -> None:
        """watchdog's handler entry point."""
        if event.event_type in IGNORED_EVENTS:
            return
        if event.is_directory and event.event_type == "modified":
            return  # a folder's mtime changes with its entries: their own events say what changed
        paths = [event.src_path]
        if getattr(event, "dest_path", None):
            paths.append(event.dest_path)
        for raw in paths:
            self.touch(os.fsdecode(raw), is_dir=bool(event.is_directory))

    def touch(self, path: str, *, is_dir: bool = False) -> None:
        """Record an event on ``path`` (a file, or with ``is_dir`` a folder)."""
        if not within(path, self.roots) or (not is_dir and not is_audio_name(path)):
            return
        now = self.clock()
        with self._lock:
            self._last[path] = now
            self._confirm.pop(path, None)
            if is_dir:
                self._dirs.add(path)
            # a folder waiting to be scanned settles only when nothing under it moves
            parent = os.path.dirname(path)
            while parent and within(parent, self.roots):
                if parent in self._dirs:
                    self._last[parent] = now
                    self._confirm.pop(parent, None)
                up = os.path.dirname(parent)
                if up == parent:
                    break
                parent = up

    # ------------------------------------------------------------------ settled paths (watch loop)
    def pending(self) -> int:
        with self._lock:
            return len(self._last)

    def take_settled(self) -> list[str]:
        """Paths quiet for ``settle`` s whose size and mtime then held still for ``settle / 2`` s."""
        now = self.clock()
        confirm_for = max(0.1, self.settle / 2)
        ready: list[str] = []
        with self._lock:
            quiet = [p for p, t in self._last.items() if now - t >= self.settle]
        for path in quiet:
            key = None if path in self._dirs else _stat_key(path)
            with self._lock:
                if path not in self._last or now - self._last[path] < self.settle:
                    continue  # a new event meanwhile
                seen = self._confirm.get(path)
                if path in self._dirs or (seen is not None and seen[0] == key and now - seen[1] >= confirm_for):
                    ready.append(path)
                    del self._last[path]
                    self._confirm.pop(path, None)
                    self._dirs.discard(path)
                elif seen is None or seen[0] != key:
                    self._confirm[path] = (key, now)
        if ready:
            with self._lock:  # what lies under a folder handed out is scanned with it
                folders = [p for p in ready if os.path.isdir(p)]
                for p in [p for p in self._last if within(p, folders)]:
                    del self._last[p]
                    self._confirm.pop(p, None)
                    self._dirs.discard(p)
        return ready


def watch_folders(
    ingest: Callable[..., IngestSummary],
    paths: Sequence[str | os.PathLike[str]],
    *,
    label_from: str | None = None,
    settle: float = 2.0,
    initial_scan: bool = True,
    follow_symlinks: bool | None = None,
    stop: threading.Event | None = None,
    on_batch: Callable[[IngestSummary], None] | None = None,
    tick: float = 0.25,
) -> None:
    """Watch ``paths`` until ``stop`` is set (or KeyboardInterrupt), registering changes with ``ingest`` (the
    signature of ``IngestService.ingest``) as they settle.

    With ``initial_scan`` the folders are ingested once first (what changed while nobody
    watched). ``on_batch(summary)`` is called after every registration.
    """
    from watchdog.observers import Observer

    for p in paths:
        check_root(p)
    roots = outermost(absolute_roots(paths))
    stop = stop or threading.Event()
    collector = ChangeCollector(roots, settle=settle)
    observer = Observer()
    for r in roots:
        if os.path.isdir(r):
            observer.schedule(collector, r, recursive=True)  # type: ignore[arg-type]
        else:
            observer.schedule(collector, os.path.dirname(r) or ".", recursive=False)  # type: ignore[arg-type]
    observer.start()  # before the first scan: nothing that happens meanwhile is missed
    try:
        if initial_scan:
            summary = ingest(roots, label_from=label_from, follow_symlinks=follow_symlinks)
            if on_batch is not None:
                on_batch(summary)
        while not stop.wait(tick):
            ready = collector.take_settled()
            if not ready:
                continue
            try:
                summary = ingest(roots, label_from=label_from, follow_symlinks=follow_symlinks, scopes=ready)
            except (MusicIndexError, DBAPIError) as exc:  # a root unmounted, the database restarting: again later
                log.warning("could not register %d changed paths (%s); trying again", len(ready), exc)
                for p in ready:
                    collector.touch(p, is_dir=os.path.isdir(p))
                continue
            if on_batch is not None:
                on_batch(summary)
    finally:
        observer.stop()
        observer.join(timeout=10)
