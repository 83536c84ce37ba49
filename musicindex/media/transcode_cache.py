"""The cache of finished transcodes (``MUSICINDEX_TRANSCODE_CACHE_MB``): whole songs as ``<key>.<suffix>`` in
``home/transcodes``, keyed by the source file's identity and the codec and bitrate, written to a private temporary
file while the transcode runs and renamed into place once it is complete, served like a track's file (checked,
with HTTP Range), the oldest going first above the cap."""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import tempfile
from pathlib import Path
from typing import IO

from musicindex.media.covers import CoverCache
from musicindex.media.files import OpenedTrackFile, open_in_library

log = logging.getLogger(__name__)

CACHE_FOLDER = "transcodes"


class CacheFile:
    """A finished transcode being written: a private temporary file, renamed into place once complete."""

    def __init__(self, cache: TranscodeCache, key: str, suffix: str):
        self.cache, self.key, self.suffix = cache, key, suffix
        self._fh: IO[bytes] | None = None
        self._tmp: str | None = None
        self._size = 0
        try:
            cache.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
            fd, self._tmp = tempfile.mkstemp(dir=cache.folder, prefix=".part-")
            self._fh = os.fdopen(fd, "wb")
        except OSError as exc:
            log.warning("cannot cache a transcode in %s: %s", cache.folder, exc.strerror or exc)

    def write(self, data: bytes) -> None:
        if self._fh is None:
            return
        self._size += len(data)
        if self._size > self.cache.cap:
            self.discard()
            return
        try:
            self._fh.write(data)
        except OSError:
            self.discard()

    def commit(self) -> None:
        if self._fh is None or self._tmp is None:
            return
        try:
            self._fh.close()
            os.replace(self._tmp, self.cache.path(self.key, self.suffix))
            self._tmp = None
            self.cache.prune()
        except OSError as exc:
            log.warning("cannot cache a transcode in %s: %s", self.cache.folder, exc.strerror or exc)
        finally:
            self._fh = None

    def discard(self) -> None:
        if self._fh is not None:
            with contextlib.suppress(OSError):
                self._fh.close()
            self._fh = None
        if self._tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(self._tmp)
            self._tmp = None


class TranscodeCache:
    """Finished transcodes as ``<key>.<suffix>`` in one folder, at most ``cap`` bytes in all (oldest out first)."""

    def __init__(self, folder: Path, cap_bytes: int):
        self.folder, self.cap = folder, cap_bytes

    @staticmethod
    def key(opened: OpenedTrackFile, codec_name: str, kbps: int) -> str:
        identity = f"{opened.display_path}\0{opened.mtime_ns}\0{opened.size}\0{codec_name}\0{kbps}"
        return hashlib.sha256(identity.encode("utf-8", "surrogateescape")).hexdigest()

    def path(self, key: str, suffix: str) -> Path:
        return self.folder / f"{key}.{suffix}"

    def open(self, key: str, suffix: str) -> OpenedTrackFile | None:
        """The cached transcode, opened and checked like a track's file (inside the cache folder), or None."""
        if self.cap <= 0:
            return None
        try:
            opened = open_in_library(str(self.path(key, suffix)), [str(self.folder)])
        except Exception:  # noqa: BLE001 - no such file (the usual case), or one that is not ours: no hit
            return None
        with contextlib.suppress(OSError):
            os.utime(opened.fd)  # recently used: pruned last
        return opened

    def writer(self, key: str, suffix: str) -> CacheFile | None:
        return CacheFile(self, key, suffix) if self.cap > 0 else None

    def prune(self) -> None:
        """Delete the oldest files until the folder holds at most the cap (the cover cache's sweep)."""
        CoverCache(self.folder, self.cap).prune()
