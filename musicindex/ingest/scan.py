"""Scanning: walk the ingest roots and list the audio files with their size and mtime.

Symlinks are followed only while their target stays under one of the roots (or
everywhere with ``follow_symlinks``); a directory reached twice (a symlink loop) is walked
once; folders are walked iteratively (no recursion limit for deeply nested trees).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from musicindex.audio.decode import AUDIO_EXTENSIONS
from musicindex.errors import InvalidArgumentError


@dataclass(frozen=True)
class ScannedFile:
    path: str
    size: int
    mtime: float


@dataclass
class ScanReport:
    files: list[ScannedFile] = field(default_factory=list)
    ignored: int = 0
    skipped_links: list[str] = field(default_factory=list)
    loops: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def within(path: str, roots: Sequence[str]) -> bool:
    """Whether ``path`` is one of ``roots`` or lies under one of them (string prefix, no I/O)."""
    return any(path == r or path.startswith(r.rstrip(os.sep) + os.sep) for r in roots)


def absolute_roots(roots: Sequence[str | os.PathLike[str]]) -> list[str]:
    """The roots as absolute paths (not resolved: a moved root shows up as moved files)."""
    return [str(Path(r).expanduser().absolute()) for r in roots]


def scan(roots: Sequence[str | os.PathLike[str]], *, follow_symlinks: bool = False) -> ScanReport:
    """Walk ``roots`` recursively and collect audio files (by file name ending)."""
    report = ScanReport()
    for r in roots:
        if not Path(r).expanduser().exists():
            raise InvalidArgumentError(f"no such file or folder: {r}")
    abs_roots = absolute_roots(roots)
    real_roots = [os.path.realpath(r) for r in abs_roots]
    seen_dirs: set[tuple[int, int]] = set()
    seen_files: set[str] = set()

    def add_file(path: str, st: os.stat_result) -> None:
        if os.path.splitext(path)[1].lower() not in AUDIO_EXTENSIONS:
            report.ignored += 1
            return
        if path in seen_files:
            return
        seen_files.add(path)
        report.files.append(ScannedFile(path, st.st_size, st.st_mtime))

    def allowed_link(path: str) -> bool:
        if follow_symlinks or within(os.path.realpath(path), real_roots):
            return True
        report.skipped_links.append(path)
        return False

    def walk(top: str) -> None:
        """Depth-first, iterative, sorted."""
        stack = [top]
        while stack:
            directory = stack.pop()
            try:
                st = os.stat(directory)
            except OSError as exc:
                report.errors.append(f"{directory}: {exc.strerror}")
                continue
            key = (st.st_dev, st.st_ino)
            if key in seen_dirs:
                report.loops.append(directory)
                continue
            seen_dirs.add(key)
            try:
                entries = sorted(os.scandir(directory), key=lambda e: e.name)
            except OSError as exc:
                report.errors.append(f"{directory}: {exc.strerror}")
                continue
            subdirs = []
            for entry in entries:
                try:
                    if entry.is_symlink() and not allowed_link(entry.path):
                        continue
                    if entry.is_dir(follow_symlinks=True):
                        subdirs.append(entry.path)
                    elif entry.is_file(follow_symlinks=True):
                        add_file(entry.path, entry.stat(follow_symlinks=True))
                except OSError as exc:  # broken link, permission, loop (ELOOP), name too long
                    report.errors.append(f"{entry.path}: {exc.strerror or exc}")
            stack.extend(reversed(subdirs))

    for root in abs_roots:
        if os.path.isdir(root):
            walk(root)
        else:
            add_file(root, os.stat(root))
    return report
