"""Content hash of audio files (streamed; never loads a large file whole)."""

from __future__ import annotations

import hashlib
import os


def file_sha256(path, chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of the file's bytes, read ``chunk`` bytes at a time."""
    h = hashlib.sha256()
    buf = bytearray(max(1, int(chunk)))
    view = memoryview(buf)
    with open(os.fspath(path), "rb", buffering=0) as f:
        while True:
            n = f.readinto(buf)
            if not n:
                break
            h.update(view[:n])
    return h.hexdigest()


__all__ = ["file_sha256"]
