"""Cover art: the bytes of an album's (artist's, song's, playlist's) cover, resized, cached under the data folder.

Where a cover comes from is recorded by ingestion (``albums.cover_kind``) and read through the catalog
(``CatalogService.cover_source``): an image file beside the tracks, or a track's embedded picture. Nothing is read
outside the ingested folders: an image file is opened like a track (``files.open_in_library``: resolved inside the
folders, ``O_NOFOLLOW``, a regular file checked on the descriptor), an embedded picture is read from the descriptor
of ``files.open_track_file`` (the track's recorded size and mtime checked too).

Resizing (Pillow) keeps the aspect ratio; a requested size snaps up to one of :data:`SIZE_STEPS` (32 .. 1024
pixels, the longest side) and an image is never enlarged: every step at or above the source's own size is one
answer, the source re-encoded (cached once as ``fit``). So whatever sizes clients ask for, a cover has at most
``len(SIZE_STEPS) + 1`` cached files, and a sweep over many sizes cannot flush the cache. No size: the original
bytes. Answers are cached in ``home/covers/`` keyed by the source's identity (path, mtime, size) and the step,
written atomically (temporary file, ``os.replace``); the folder is kept under ``MUSICINDEX_COVER_CACHE_MB`` (the
oldest files go first). Any failure is ``CoverNotFoundError`` (the Subsonic API answers "not found").
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import logging
import os
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from musicindex.errors import ItemNotFoundError, MusicIndexError
from musicindex.media.files import OpenedTrackFile, open_in_library, open_track_file
from musicindex.query.items import CoverSource

if TYPE_CHECKING:
    from musicindex.index import MusicIndex

log = logging.getLogger(__name__)

SIZE_STEPS = (32, 64, 128, 256, 512, 1024)
"""The sizes a cover is made at (longest side, pixels): a requested size snaps up to the next step (at most the
last)."""
MIN_SIZE, MAX_SIZE = SIZE_STEPS[0], SIZE_STEPS[-1]
MAX_SOURCE_BYTES = 32 * 1024 * 1024
"""A cover image file larger than this is refused."""
MAX_PIXELS = 40_000_000
"""An image claiming more pixels than this is refused before it is decoded (a decompression bomb)."""
CACHE_FOLDER = "covers"
_FORMATS = {"JPEG": "image/jpeg", "PNG": "image/png", "GIF": "image/gif", "WEBP": "image/webp"}
_prune_lock = threading.Lock()


class CoverNotFoundError(ItemNotFoundError):
    """No cover can be made for the item (none recorded, the file gone or refused, not an image)."""


@dataclass(frozen=True)
class Cover:
    data: bytes
    media_type: str
    etag: str


def check_size(size: int | None) -> int | None:
    """A requested size snapped up to the next of :data:`SIZE_STEPS` (the last one at most; None: the original)."""
    if size is None:
        return None
    return next((step for step in SIZE_STEPS if step >= int(size)), MAX_SIZE)


def cover(index: MusicIndex, kind: str, item_id: int, size: int | None = None) -> Cover:
    """The cover of an item (``album``, ``artist``, ``track``, ``playlist``) at ``size`` pixels (longest side)."""
    size = check_size(size)
    try:
        source = index.catalog.cover_source(kind, item_id)
        opened = _open_source(index, source)
    except ItemNotFoundError as exc:
        raise CoverNotFoundError(str(exc)) from None
    except MusicIndexError as exc:
        raise CoverNotFoundError(f"the cover of {kind} {item_id} cannot be read: {exc}") from None
    with opened:
        base = f"{source.kind}\0{opened.display_path}\0{opened.mtime_ns}\0{opened.size}\0"
        key, fit_key = _key(base + str(size or 0)), _key(base + "fit")
        cache = CoverCache(Path(index.settings.home) / CACHE_FOLDER, index.settings.cover_cache_mb * 1024 * 1024)
        hit = cache.get(key) or (cache.get(fit_key) if size is not None else None)
        if hit is not None:
            return hit
        made, longest = _make(_source_bytes(source, opened), size, key)
    if size is not None and longest <= size:  # not enlarged: the same answer as every step above the source
        made = Cover(made.data, made.media_type, f'"{fit_key[:32]}"')
        cache.put(fit_key, made)
    else:
        cache.put(key, made)
    return made


def _key(identity: str) -> str:
    return hashlib.sha256(identity.encode("utf-8", "surrogateescape")).hexdigest()


def _open_source(index: MusicIndex, source: CoverSource) -> OpenedTrackFile:
    if source.kind == "file" and source.path is not None:
        roots = None if index.settings.follow_symlinks else index.known_roots()
        return open_in_library(source.path, roots, display_path=source.display_path)
    if source.kind == "embedded" and source.track_id is not None:
        return open_track_file(index, source.track_id)
    raise CoverNotFoundError(f"album {source.album_id} has no cover")


def _source_bytes(source: CoverSource, opened: OpenedTrackFile) -> bytes:
    """The image bytes: the whole image file, or the picture embedded in the track (read through the open
    descriptor: ``/proc/self/fd`` names the very file that was checked)."""
    if source.kind == "file":
        if opened.size > MAX_SOURCE_BYTES:
            raise CoverNotFoundError(f"the cover file {opened.display_path} is larger than {MAX_SOURCE_BYTES} bytes")
        return opened.read(0, opened.size)
    from musicindex.audio import read_picture

    picture = read_picture(f"/proc/self/fd/{opened.fd}") if os.path.exists(f"/proc/self/fd/{opened.fd}") else None
    if not picture:
        raise CoverNotFoundError(f"track {opened.track_id} holds no readable picture")
    return picture


def _make(data: bytes, size: int | None, key: str) -> tuple[Cover, int]:
    """(the image (checked by Pillow) at ``size`` re-encoded as JPEG (PNG when it has transparency), the longest
    side of the source in pixels)."""
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as img:
            width, height = img.size
            if width * height > MAX_PIXELS or width <= 0 or height <= 0:
                raise CoverNotFoundError(f"a cover of {width}x{height} pixels is refused")
            fmt = img.format or ""
            if size is None and fmt in _FORMATS:
                img.verify()
                return Cover(data, _FORMATS[fmt], f'"{key[:32]}"'), max(width, height)
            img.load()
            img.thumbnail((size or MAX_SIZE, size or MAX_SIZE), Image.Resampling.LANCZOS)
            out = io.BytesIO()
            if img.mode in ("RGBA", "LA") or "transparency" in img.info:
                img.convert("RGBA").save(out, "PNG", optimize=True)
                media = "image/png"
            else:
                img.convert("RGB").save(out, "JPEG", quality=85, optimize=True)
                media = "image/jpeg"
    except CoverNotFoundError:
        raise
    except Exception as exc:  # noqa: BLE001 - Pillow raises many kinds (SyntaxError, EOFError, struct.error, ...)
        raise CoverNotFoundError(f"the cover is not an image Pillow can read: {type(exc).__name__}") from None
    return Cover(out.getvalue(), media, f'"{key[:32]}"'), max(width, height)


class CoverCache:
    """Files named ``<key>.<ext>`` in one folder, at most ``cap_bytes`` in all (oldest out first)."""

    SUFFIX: ClassVar[dict[str, str]] = {
        "image/jpeg": ".jpg",
        "image/png": ".png",
        "image/gif": ".gif",
        "image/webp": ".webp",
    }

    def __init__(self, folder: Path, cap_bytes: int):
        self.folder = folder
        self.cap = cap_bytes

    def get(self, key: str) -> Cover | None:
        for media, suffix in self.SUFFIX.items():
            path = self.folder / f"{key}{suffix}"
            try:
                fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
            except OSError:
                continue
            with os.fdopen(fd, "rb") as fh:
                return Cover(fh.read(MAX_SOURCE_BYTES), media, f'"{key[:32]}"')
        return None

    def put(self, key: str, made: Cover) -> None:
        if self.cap <= 0 or len(made.data) > self.cap:
            return
        try:
            self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
            fd, tmp = tempfile.mkstemp(dir=self.folder, prefix=".part-")
            try:
                with os.fdopen(fd, "wb") as fh:
                    fh.write(made.data)
                os.replace(tmp, self.folder / f"{key}{self.SUFFIX.get(made.media_type, '.img')}")
            finally:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(tmp)
            self.prune()
        except OSError as exc:  # a full or read-only disk: answer without caching
            log.warning("cannot cache a cover in %s: %s", self.folder, exc.strerror or exc)

    def prune(self) -> None:
        """Delete the oldest files until the folder holds at most the cap."""
        with _prune_lock:
            entries = []
            with os.scandir(self.folder) as it:
                for e in it:
                    if e.is_file(follow_symlinks=False) and not e.name.startswith("."):
                        st = e.stat(follow_symlinks=False)
                        entries.append((st.st_mtime, st.st_size, e.path))
            total = sum(size for _, size, _ in entries)
            for _, size, path in sorted(entries):
                if total <= self.cap:
                    break
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(path)
                total -= size
