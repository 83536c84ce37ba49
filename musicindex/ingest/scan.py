"""Scanning: walk the ingest roots and list the audio files with their size and mtime.

Symlinks are followed only while their target stays under one of the roots (or
everywhere with ``follow_symlinks``); a directory reached twice (a symlink loop) is walked
once; folders are walked iteratively (no recursion limit for deeply nested trees).

:func:`iter_scan` streams: it yields one :class:`ScannedFile` at a time and keeps only
the folders it has seen, so a library of millions of files is scanned in bounded memory
(registration copies the stream straight into the database). What could not be read
(a folder without permission, an I/O error) is recorded in :attr:`ScanReport.unreadable`:
registration never marks the tracks under such a path ``missing``.
"""

from __future__ import annotations

import errno
import os
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from operator import attrgetter
from pathlib import Path
from typing import NamedTuple

from musicindex.audio.formats import AUDIO_EXTENSIONS
from musicindex.db.paths import display
from musicindex.errors import InvalidArgumentError

MAX_ERRORS_KEPT = 1000
"""Error messages kept in a report (the count goes on)."""


class ScannedFile(NamedTuple):
    """One audio file found (a tuple: a million of them are made in a few hundred milliseconds)."""

    path: str  # as the OS names it (a name that is not valid UTF-8 carries surrogate escapes)
    size: int
    mtime: float


@dataclass
class ScanReport:
    files: list[ScannedFile] = field(default_factory=list)  # filled by scan(), not by iter_scan()
    ignored: int = 0
    skipped_links: list[str] = field(default_factory=list)
    loops: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    unreadable: list[str] = field(default_factory=list)
    """Paths that could not be read (not: did not exist): nothing under them turns ``missing``."""
    n_errors: int = 0
    n_files: int = 0
    n_dirs: int = 0
    empty_roots: list[str] = field(default_factory=list)
    """Roots that are folders holding no file at all (an unmounted mount point looks like this)."""
    done: bool = False
    """The walk is over (set before the last progress call)."""

    def error(self, path: str, message: str, *, unreadable: bool) -> None:
        self.n_errors += 1
        if len(self.errors) < MAX_ERRORS_KEPT:
            self.errors.append(f"{path}: {message}")
        if unreadable:
            self.unreadable.append(path)


_name = attrgetter("name")


def within(path: str, roots: Sequence[str]) -> bool:
    """Whether ``path`` is one of ``roots`` or lies under one of them (string prefix, no I/O)."""
    return any(path == r or path.startswith(r.rstrip(os.sep) + os.sep) for r in roots)


def absolute_roots(roots: Sequence[str | os.PathLike[str]]) -> list[str]:
    """The roots as real absolute paths (symlinks resolved): a folder reached through a link is the folder
    itself, so one file is one track however it was named. A moved root still shows up as moved files.
    A path holding a NUL character is an InvalidArgumentError (no file can have such a name)."""
    return [os.path.realpath(Path(_without_nul(r)).expanduser()) for r in roots]


def _without_nul(root: str | os.PathLike[str]) -> str:
    """``root`` as text; InvalidArgumentError when it holds a NUL character."""
    text = os.fsdecode(os.fspath(root))
    if "\x00" in text:
        raise InvalidArgumentError(f"the path {display(text).replace(chr(0), '?')!r} contains a NUL character (\\x00)")
    return text


def outermost(paths: Sequence[str]) -> list[str]:
    """``paths`` without duplicates and without those lying under another one (order kept)."""
    out: list[str] = []
    for p in sorted(set(paths), key=lambda p: (len(p), p)):
        if not within(p, out):
            out.append(p)
    return sorted(out, key=paths.index)


def is_audio_name(name: str) -> bool:
    """Whether the name ends like an audio file (``os.path.splitext``'s suffix: leading dots are not one)."""
    dot = name.rfind(".")
    return dot > 0 and name[:dot].strip(".") != "" and name[dot:].lower() in AUDIO_EXTENSIONS


def _gone(exc: OSError) -> bool:
    """An error that means "not there" (deleted meanwhile, a dangling link), not "cannot read"."""
    return exc.errno in (errno.ENOENT, errno.ENOTDIR)


def check_root(root: str | os.PathLike[str]) -> None:
    """InvalidArgumentError unless ``root`` names something that exists (a NUL character: no file can hold one)."""
    text = _without_nul(root)
    if not Path(text).expanduser().exists():
        raise InvalidArgumentError(f"no such file or folder: {display(text)}")


def iter_scan(
    roots: Sequence[str | os.PathLike[str]],
    *,
    follow_symlinks: bool = False,
    report: ScanReport | None = None,
    scopes: Sequence[str] | None = None,
    on_progress: Callable[[ScanReport], None] | None = None,
    progress_every: float = 0.25,
) -> Iterator[ScannedFile]:
    """Walk ``roots`` (or only ``scopes``, paths under them) and yield the audio files, one at a time.

    Counters, errors, loops and skipped links go to ``report``. A root that does not exist is
    an error (InvalidArgumentError, before anything is yielded); a scope that does not exist
    yields nothing (it was deleted). ``on_progress(report)`` is called every ``progress_every``
    seconds while the walk goes on.
    """
    report = report if report is not None else ScanReport()
    for r in roots:
        check_root(r)
    abs_roots = outermost(absolute_roots(roots))
    real_roots = [os.path.realpath(r) for r in abs_roots]
    starts = outermost(absolute_roots(scopes)) if scopes is not None else abs_roots
    seen_dirs: set[tuple[int, int]] = set()
    next_report = time.monotonic() + progress_every

    def progress() -> None:
        nonlocal next_report
        if on_progress is not None and time.monotonic() >= next_report:
            next_report = time.monotonic() + progress_every
            on_progress(report)

    def allowed_link(path: str) -> bool:
        if follow_symlinks or within(os.path.realpath(path), real_roots):
            return True
        report.skipped_links.append(path)
        return False

    def walk(top: str) -> Iterator[ScannedFile]:
        """Depth-first, iterative, sorted."""
        stack = [top]
        while stack:
            directory = stack.pop()
            try:
                st = os.stat(directory)
            except OSError as exc:
                report.error(directory, exc.strerror or str(exc), unreadable=not _gone(exc))
                continue
            key = (st.st_dev, st.st_ino)
            if key in seen_dirs:
                report.loops.append(directory)
                continue
            seen_dirs.add(key)
            report.n_dirs += 1
            try:
                with os.scandir(directory) as it:
                    entries = sorted(it, key=_name)
            except OSError as exc:
                report.error(directory, exc.strerror or str(exc), unreadable=not _gone(exc))
                continue
            subdirs = []
            for entry in entries:
                try:
                    if entry.is_symlink() and not allowed_link(entry.path):
                        continue
                    if entry.is_dir(follow_symlinks=True):
                        subdirs.append(entry.path)
                    elif not is_audio_name(entry.name):
                        report.ignored += 1
                    elif entry.is_file(follow_symlinks=True):
                        est = entry.stat(follow_symlinks=True)
                        report.n_files += 1
                        yield ScannedFile(entry.path, est.st_size, est.st_mtime)
                except OSError as exc:  # broken link, permission, loop (ELOOP), name too long
                    report.error(entry.path, exc.strerror or str(exc), unreadable=not _gone(exc))
            stack.extend(reversed(subdirs))
            progress()

    for start in starts:
        if scopes is not None and not within(start, abs_roots):
            continue  # a scope outside the roots: never scanned
        try:
            if scopes is not None and os.path.islink(start) and not allowed_link(start):
                continue
            is_dir = os.path.isdir(start)
            if not is_dir and not os.path.lexists(start):
                continue  # a scope that is gone: what was there turns missing
            before = report.n_files
            if is_dir:
                yield from walk(start)
                if scopes is None and report.n_files == before:
                    report.empty_roots.append(start)
            elif is_audio_name(start):
                st = os.stat(start)
                report.n_files += 1
                yield ScannedFile(start, st.st_size, st.st_mtime)
            else:
                report.ignored += 1
        except OSError as exc:
            report.error(start, exc.strerror or str(exc), unreadable=not _gone(exc))
    report.done = True
    if on_progress is not None:
        on_progress(report)


def scan(roots: Sequence[str | os.PathLike[str]], *, follow_symlinks: bool = False) -> ScanReport:
    """Walk ``roots`` recursively and collect audio files (by file name ending) in ``report.files``."""
    report = ScanReport()
    report.files = list(iter_scan(roots, follow_symlinks=follow_symlinks, report=report))
    return report
