"""File paths as the database keeps them: Linux paths are bytes, PostgreSQL text is UTF-8.

Python hands out a name that is not valid UTF-8 as a ``str`` with surrogate escapes
(``os.fsdecode``); psycopg2 cannot send such a string. So a track keeps two columns:

* ``tracks.path``: text. The path itself when it is valid UTF-8; otherwise a display form
  with each undecodable byte written ``\\xNN`` (what ``status`` and queries show);
* ``tracks.path_bytes``: the raw bytes when the name is not valid UTF-8 (NULL otherwise);
  the worker opens the file by them. ``(path, path_bytes)`` is unique.
"""

from __future__ import annotations

import os


def is_text(path: str) -> bool:
    """Whether ``path`` is valid Unicode that UTF-8 can encode (no surrogate escapes)."""
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def display(text: str) -> str:
    """``text`` made safe for a UTF-8 text column: undecodable bytes (surrogate escapes) as ``\\xNN``."""
    if is_text(text):
        return text
    try:
        return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    except UnicodeEncodeError:  # a lone surrogate that is not an escaped byte
        return text.encode("utf-8", "backslashreplace").decode("utf-8")


def raw_bytes(path: str) -> bytes | None:
    """The bytes of ``path`` when it is not valid UTF-8 (to store in ``path_bytes``), else None."""
    return None if is_text(path) else os.fsencode(path)


def fs_path(path: str, path_bytes: bytes | None) -> str:
    """The path to open for a track (``path_bytes`` decoded with surrogate escapes when present)."""
    return os.fsdecode(bytes(path_bytes)) if path_bytes is not None else path


__all__ = ["display", "fs_path", "is_text", "raw_bytes"]
