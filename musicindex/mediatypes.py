"""Content types of the library's files by suffix: audio (what the players are told they get) and cover images.

Plain data and one function, so every layer (the query layer describing songs, ``media`` serving files) names a
file's type the same way.
"""

from __future__ import annotations

import mimetypes
import os
from collections.abc import Mapping

MEDIA_TYPES: Mapping[str, str] = {
    ".wav": "audio/wav",
    ".flac": "audio/flac",
    ".ogg": "audio/ogg",
    ".oga": "audio/ogg",
    ".opus": "audio/ogg",
    ".mp3": "audio/mpeg",
    ".aiff": "audio/aiff",
    ".aif": "audio/aiff",
    ".au": "audio/basic",
    ".m4a": "audio/mp4",
    ".mp4": "audio/mp4",
    ".aac": "audio/aac",
    ".wma": "audio/x-ms-wma",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".png": "image/png",
    ".gif": "image/gif",
    ".webp": "image/webp",
}
"""``Content-Type`` by suffix (lower case); others: the system's table, else ``application/octet-stream``."""


def media_type_of(name: str | bytes) -> str:
    """The ``Content-Type`` of a file name (its suffix)."""
    text = os.fsdecode(name) if isinstance(name, bytes) else name
    suffix = os.path.splitext(text)[1].lower()
    if suffix in MEDIA_TYPES:
        return MEDIA_TYPES[suffix]
    try:
        guessed = mimetypes.guess_type("x" + suffix.encode("ascii").decode())[0]
    except UnicodeError:
        guessed = None
    return guessed or "application/octet-stream"
