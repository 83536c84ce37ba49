"""Open the file of an indexed track safely and answer it over HTTP from the open descriptor.

:func:`open_track_file` (what routes call):

1. the stored path of the track (``index.track_files``: a name that is not valid UTF-8 keeps its bytes) and the
   size and mtime the index recorded for it;
2. ``realpath``: the resolved path must lie inside the resolved ingested folders (``index.known_roots()``);
   with ``MUSICINDEX_FOLLOW_SYMLINKS=true`` links out of the folders are allowed, as at ingest;
3. ``open(resolved, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK)``: a symlink swapped in at the last step
   fails (``ELOOP``), a FIFO cannot block the open (``O_NONBLOCK`` is cleared afterwards);
4. on the descriptor: the path it really names (``/proc/self/fd``) is inside the folders again (a folder on the
   way swapped for a symlink after step 2 is caught here), ``fstat`` says a regular file, and its size and mtime
   equal the recorded ones (a file swapped in after indexing is refused).

Everything is then read from that descriptor (``pread``), never by name again. :class:`TrackFileResponse` serves
it with a single HTTP ``Range`` (200 / 206 / 416), ``Accept-Ranges``, ``Content-Length``, the type from the
suffix, ``Last-Modified`` / ``ETag`` (304 for ``If-None-Match`` / ``If-Modified-Since``), ``HEAD``, and a
``Content-Disposition`` whose ``filename*`` carries the name's raw bytes (RFC 5987/6266, an ASCII fallback in
``filename``); it closes the descriptor when the answer is done.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import logging
import os
import re
import stat
import threading
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from email.utils import formatdate, parsedate_to_datetime
from functools import partial
from typing import IO, TYPE_CHECKING
from urllib.parse import quote

import anyio
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from musicindex.db.paths import display
from musicindex.errors import TrackFileChangedError, TrackFileMissingError, TrackFileOutsideError
from musicindex.mediatypes import media_type_of

if TYPE_CHECKING:
    from musicindex.index import MusicIndex

log = logging.getLogger(__name__)

CHUNK_BYTES = 256 * 1024
"""Bytes read (``pread``) and sent per message while streaming."""


# --------------------------------------------------------------------------- the open file
@dataclass(eq=False)
class OpenedTrackFile:
    """A track's file, open and checked: read it with :meth:`read` (or :meth:`dup_file`), answer it with
    :func:`file_response`, and :meth:`close` it (the response does; so does ``with``)."""

    fd: int
    size: int
    mtime: float
    mtime_ns: int
    media_type: str
    name: str
    """The file's name as text (undecodable bytes as ``\\xNN``): for messages and ASCII fallbacks."""
    name_bytes: bytes
    """The file's name exactly as the file system holds it: ``filename*`` of ``Content-Disposition``."""
    display_path: str
    track_id: int | None = None
    _closed: bool = field(default=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def etag(self) -> str:
        return f'"{self.size:x}-{self.mtime_ns:x}"'

    @property
    def last_modified(self) -> str:
        return formatdate(self.mtime, usegmt=True)

    def read(self, offset: int, n: int) -> bytes:
        """Up to ``n`` bytes at ``offset`` (``pread``: no shared position, safe from several threads)."""
        if self._closed:
            raise ValueError("read from a closed track file")
        return os.pread(self.fd, n, offset)

    def dup_file(self) -> IO[bytes]:
        """A file object of its own descriptor (the same open file; reads through it move only its position),
        for readers that want one (a tag reader, a transcoder's input). Close it when done."""
        if self._closed:
            raise ValueError("dup of a closed track file")
        f = os.fdopen(os.dup(self.fd), "rb")
        f.seek(0)
        return f

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
        os.close(self.fd)

    def __enter__(self) -> OpenedTrackFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:  # a response built but never sent must not leak the descriptor
        with contextlib.suppress(Exception):
            self.close()


def open_track_file(index: MusicIndex, track_id: int) -> OpenedTrackFile:
    """Open the file of track ``track_id`` after the checks of the module's docstring.

    Raises ``TrackNotFoundError`` (no such track), ``TrackFileMissingError`` (gone, unreadable, not a regular
    file), ``TrackFileOutsideError`` (it leads outside the ingested folders), ``TrackFileChangedError`` (its size
    or mtime differ from what the index recorded, or it was swapped while being opened).
    """
    rec = index.track_files([track_id])[0]
    roots = None if index.settings.follow_symlinks else index.known_roots()
    opened = open_in_library(rec.path, roots, track_id=rec.id, display_path=rec.display_path)
    if rec.size is None or rec.mtime is None or (opened.size, opened.mtime) != (rec.size, rec.mtime):
        opened.close()
        why = (
            "has no recorded size and time yet"
            if rec.size is None or rec.mtime is None
            else "changed since it was indexed (size or modification time differ)"
        )
        raise TrackFileChangedError(
            f"the file of track {rec.id} ({rec.display_path}) {why}; it is not served until "
            "`musicindex ingest` of its folder records it again"
        )
    return opened


def open_in_library(
    path: str | bytes,
    roots: Sequence[str] | None,
    *,
    expected_size: int | None = None,
    expected_mtime: float | None = None,
    track_id: int | None = None,
    display_path: str | None = None,
) -> OpenedTrackFile:
    """Open ``path`` if it resolves inside one of ``roots`` (None: anywhere) and, when given, has the expected size
    and mtime: the building block of :func:`open_track_file` (a cover image next to a track, say)."""
    fs = os.fsdecode(path) if isinstance(path, bytes) else path
    shown = display_path or display(fs)
    label = f"the file of track {track_id}" if track_id is not None else f"the file {shown}"
    try:
        real = os.path.realpath(fs, strict=True)
    except FileNotFoundError:
        raise TrackFileMissingError(
            f"{label} is gone ({shown}); `musicindex ingest` its folder to bring the index up to date"
        ) from None
    except OSError as exc:
        raise TrackFileMissingError(f"{label} is not readable ({shown}): {exc.strerror or exc}") from None
    real_roots = None if roots is None else [os.path.realpath(r) for r in roots]
    outside = TrackFileOutsideError(
        f"{label} ({shown}) leads outside the ingested folders (a symlink?); it is not served "
        "(MUSICINDEX_FOLLOW_SYMLINKS=true allows links out of the folders)"
    )
    if real_roots is not None and not _inside_any(real, real_roots):
        raise outside
    try:
        fd = os.open(real, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK | os.O_NOCTTY)
    except FileNotFoundError:
        raise TrackFileMissingError(f"{label} is gone ({shown})") from None
    except OSError as exc:
        if exc.errno == errno.ELOOP:  # a symlink appeared after realpath
            raise TrackFileChangedError(f"{label} ({shown}) was replaced while it was opened; not served") from None
        raise TrackFileMissingError(f"{label} is not readable ({shown}): {exc.strerror or exc}") from None
    try:
        fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) & ~os.O_NONBLOCK)
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise TrackFileMissingError(f"{label} ({shown}) is not a regular file; not served")
        if real_roots is not None:
            really = _fd_path(fd)
            if really is not None and not _inside_any(really, real_roots):
                raise outside
        if (expected_size is not None and st.st_size != expected_size) or (
            expected_mtime is not None and st.st_mtime != expected_mtime
        ):
            raise TrackFileChangedError(
                f"{label} ({shown}) changed since it was indexed (size or modification time differ); it is not "
                "served until `musicindex ingest` of its folder records it again"
            )
    except BaseException:
        os.close(fd)
        raise
    base = os.path.basename(fs)
    return OpenedTrackFile(
        fd=fd,
        size=st.st_size,
        mtime=st.st_mtime,
        mtime_ns=st.st_mtime_ns,
        media_type=media_type_of(base),
        name=display(base),
        name_bytes=os.fsencode(base),
        display_path=shown,
        track_id=track_id,
    )


def _inside_any(path: str, roots: Sequence[str]) -> bool:
    return any(path == root or path.startswith(root.rstrip("/") + "/") for root in roots)


def _fd_path(fd: int) -> str | None:
    """The path an open descriptor names (Linux ``/proc``); None where there is no ``/proc``."""
    try:
        target = os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        return None
    return target.removesuffix(" (deleted)")


# --------------------------------------------------------------------------- HTTP
class RangeNotSatisfiable(Exception):
    """A ``Range`` that lies outside the file: 416 with ``Content-Range: bytes */SIZE``."""


_RANGE = re.compile(r"^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$", re.IGNORECASE)
_BIG = 10**30


def _num(digits: str) -> int:
    return int(digits) if len(digits) <= 30 else _BIG  # no 100 000-digit int() from a header


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """The byte range ``[start, end)`` a ``Range`` header asks of a file of ``size`` bytes; None to send the whole
    file (no header, a syntax this server ignores as RFC 9110 allows: several ranges, another unit, ``5-2``).
    Raises :class:`RangeNotSatisfiable` for a range outside the file (``bytes=SIZE-``, ``bytes=-0``, any range of
    an empty file)."""
    if header is None:
        return None
    m = _RANGE.match(header)
    if m is None:
        return None
    first, last = m.group(1), m.group(2)
    if not first and not last:
        return None
    if not first:  # suffix: the last N bytes
        n = _num(last)
        if n == 0 or size == 0:
            raise RangeNotSatisfiable()
        return max(0, size - n), size
    start = _num(first)
    end = _num(last) if last else None
    if end is not None and end < start:
        return None  # invalid: ignored
    if start >= size:
        raise RangeNotSatisfiable()
    return start, size if end is None else min(end, size - 1) + 1


def content_disposition(disposition: str, name_bytes: bytes) -> str:
    """``inline; filename="ascii"; filename*=UTF-8''<the raw bytes percent-encoded>`` (RFC 6266 / 5987): the
    fallback replaces what is not printable ASCII (and quotes, backslashes) with ``_``."""
    if disposition not in ("inline", "attachment"):
        raise ValueError(f"disposition must be 'inline' or 'attachment', got {disposition!r}")
    fallback = "".join(chr(b) if 0x20 <= b < 0x7F and b not in b'"\\%;' else "_" for b in name_bytes) or "file"
    return f"{disposition}; filename=\"{fallback}\"; filename*=UTF-8''{quote(name_bytes, safe='')}"


def _not_modified(opened: OpenedTrackFile, headers: Mapping[str, str]) -> bool:
    inm = headers.get("if-none-match")
    if inm is not None:
        tags = [t.strip().removeprefix("W/") for t in inm.split(",")]
        return "*" in tags or opened.etag in tags
    ims = headers.get("if-modified-since")
    if ims is not None:
        try:
            since = parsedate_to_datetime(ims).timestamp()
        except (TypeError, ValueError, IndexError, OverflowError):
            return False
        return int(opened.mtime) <= since
    return False


class TrackFileResponse(Response):
    """An answer streamed from an :class:`OpenedTrackFile` (which it closes when done, sent or not)."""

    def __init__(
        self,
        opened: OpenedTrackFile,
        headers: Mapping[str, str],
        method: str = "GET",
        *,
        disposition: str = "inline",
        media_type: str | None = None,
        extra_headers: Mapping[str, str] | None = None,
    ):
        self.opened = opened
        self.background = None
        self.send_body = method.upper() != "HEAD"
        size = opened.size
        out: dict[str, str] = {
            "accept-ranges": "bytes",
            "last-modified": opened.last_modified,
            "etag": opened.etag,
            "content-disposition": content_disposition(disposition, opened.name_bytes),
        }
        self.start, self.end = 0, size
        if _not_modified(opened, headers):
            self.status_code = 304
            self.send_body = False
        else:
            out["content-type"] = media_type or opened.media_type
            wanted = headers.get("range")
            if_range = headers.get("if-range")
            if if_range is not None and if_range.strip() not in (opened.etag, opened.last_modified):
                wanted = None  # the file changed since the client's copy: send all of it
            try:
                rng = parse_range(wanted, size)
            except RangeNotSatisfiable:
                self.status_code = 416
                self.send_body = False
                out["content-range"] = f"bytes */{size}"
                out["content-length"] = "0"
                out.pop("content-type")
            else:
                if rng is None:
                    self.status_code = 200
                else:
                    self.status_code = 206
                    self.start, self.end = rng
                    out["content-range"] = f"bytes {self.start}-{self.end - 1}/{size}"
                out["content-length"] = str(self.end - self.start)
        out.update(extra_headers or {})
        self.raw_headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in out.items()]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            spec = tuple(int(x) for x in scope.get("asgi", {}).get("spec_version", "2.0").split("."))
            if spec >= (2, 4):
                try:
                    await self._send(send)
                except OSError:
                    raise ClientDisconnect() from None
            else:
                await until_disconnect(partial(self._send, send), receive)
        finally:
            self.opened.close()

    async def _send(self, send: Send) -> None:
        await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
        if not self.send_body:
            await send({"type": "http.response.body", "body": b"", "more_body": False})
            return
        pos = self.start
        while pos < self.end:
            chunk = await anyio.to_thread.run_sync(self.opened.read, pos, min(CHUNK_BYTES, self.end - pos))
            if not chunk:  # the file shrank under us: the promised length cannot be kept
                log.warning("%s shrank while it was sent; the answer is cut short", self.opened.display_path)
                return
            pos += len(chunk)
            await send({"type": "http.response.body", "body": chunk, "more_body": pos < self.end})


async def until_disconnect(work: Callable[[], Awaitable[None]], receive: Receive) -> None:
    """Run ``work`` until it ends or the client goes away (ASGI servers before spec 2.4)."""
    async with anyio.create_task_group() as tg:

        async def run() -> None:
            await work()
            tg.cancel_scope.cancel()

        async def listen() -> None:
            while (await receive())["type"] != "http.disconnect":
                pass
            tg.cancel_scope.cancel()

        tg.start_soon(run)
        tg.start_soon(listen)


def file_response(
    opened: OpenedTrackFile,
    request: Request,
    *,
    disposition: str = "inline",
    media_type: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> TrackFileResponse:
    """The HTTP answer to ``request`` (GET or HEAD, with or without ``Range``) from ``opened``; it closes
    ``opened`` once sent. ``disposition``: ``inline`` (a player) or ``attachment`` (a download)."""
    return TrackFileResponse(
        opened, request.headers, request.method, disposition=disposition, media_type=media_type, extra_headers=headers
    )
