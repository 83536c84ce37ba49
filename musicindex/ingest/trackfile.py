"""A track's file in the ingest job: opened once, hashed and read through that descriptor, checked unchanged.

The processor (``ingest.process``) opens each file once with :func:`open_track` (its real path inside the ingest
roots, a regular file on the descriptor: a FIFO or a device swapped in is refused without blocking), reads its
content hash with :func:`fd_sha256`, decodes the audio and reads the tags through a path naming the descriptor
(``source=``), and calls :func:`check_unchanged` before it trusts what it read.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import stat
from collections.abc import Iterator, Sequence
from typing import Any

from musicindex.db.paths import display
from musicindex.errors import AudioError
from musicindex.ingest import library
from musicindex.ingest.scan import within


@contextlib.contextmanager
def open_track(fs: str, real_roots: Sequence[str] | None) -> Iterator[tuple[int, os.stat_result, str]]:
    """The file at ``fs``, opened once: its real path inside ``real_roots`` (None: anywhere), a regular file on
    the descriptor. Yields (fd, fstat, a path naming the fd); FileNotFoundError when it vanished."""
    real = os.path.realpath(fs)
    if real_roots is not None and not within(real, real_roots):
        raise AudioError(
            f"not read: {display(fs)} now leads outside the ingested folders (to {display(real)}); "
            "use --follow-symlinks to allow that"
        )
    fd = os.open(real, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise AudioError(f"not a regular file: {display(fs)} (a FIFO, a device or a folder is there now)")
        os.set_blocking(fd, True)
        by_fd = f"/proc/self/fd/{fd}" if os.path.isdir("/proc/self/fd") else real
        yield fd, st, by_fd
    finally:
        os.close(fd)


def fd_sha256(fd: int, chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of the open file's bytes, read from the descriptor (never by name again)."""
    h = hashlib.sha256()
    offset = 0
    while True:
        data = os.pread(fd, chunk, offset)
        if not data:
            return h.hexdigest()
        h.update(data)
        offset += len(data)


def check_unchanged(fd: int, st: os.stat_result, path: str) -> None:
    """The file analysed is still the one at its path, unchanged (else AudioError saying what happened)."""
    after = os.fstat(fd)
    if (after.st_size, after.st_mtime_ns) != (st.st_size, st.st_mtime_ns):
        raise AudioError("the file changed while it was being analysed; ingest it again once it is complete")
    try:
        now = os.stat(path)
    except FileNotFoundError:
        return  # removed after it was read: what was read is complete; the next scan marks it missing
    if (now.st_dev, now.st_ino) != (st.st_dev, st.st_ino):
        raise AudioError(
            "another file replaced this one while it was being analysed (its path now names a different file); "
            "ingest it again"
        )


def tag_values(fs: str, source: str, path: str, *, label_from_tag: bool = False) -> dict[str, Any]:
    """The ``tracks`` columns a file's tags give: title, artist, album, year, genre tag (and the label from it
    with ``label_from_tag``) and the library's (``ingest.library.track_values``). ``source``: where to read."""
    from musicindex import audio

    tags = audio.read_tags(fs, source=source)
    values: dict[str, Any] = {
        "title": tags.get("title"),
        "artist": tags.get("artist"),
        "album": tags.get("album"),
        "year": tags.get("year"),
        "genre_tag": tags.get("genre"),
    }
    for key in ("title", "artist", "album", "genre_tag"):
        if values[key] is not None:
            values[key] = display(values[key]).replace("\x00", " ")
    if label_from_tag and values["genre_tag"]:
        values.update(label=values["genre_tag"], label_source="tag")
    values.update(library.track_values(tags, path))
    return values
