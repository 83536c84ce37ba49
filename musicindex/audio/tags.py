"""Tags (title, artist, album, year, genre) through mutagen; never raises on bad or absent tags."""

from __future__ import annotations

import logging
import re

MAX_TAG_CHARS = 1000
TAG_KEYS = ("title", "artist", "album", "year", "genre")

_log = logging.getLogger(__name__)
_YEAR = re.compile(r"(?<!\d)(\d{4})(?!\d)")
# ID3 frames for containers whose tags mutagen cannot expose in easy mode (e.g. ID3 inside WAV/AIFF)
_ID3 = {"title": "TIT2", "artist": "TPE1", "album": "TALB", "date": "TDRC", "genre": "TCON"}
_ALIASES = {
    "date": ("date", "year", "originaldate", "tdrc", "tyer", "©day"),
    "title": ("title", "©nam"),
    "artist": ("artist", "©art", "albumartist"),
    "album": ("album", "©alb"),
    "genre": ("genre", "©gen"),
}


def _clean(value) -> str | None:
    if value is None:
        return None
    if isinstance(value, (list, tuple)):
        parts = [p for p in (_clean(v) for v in value) if p]
        value = "; ".join(dict.fromkeys(parts)) if parts else None
        if value is None:
            return None
    elif isinstance(value, bytes):
        value = value.decode("utf-8", errors="replace")
    else:
        value = str(value)
    value = value.replace("\x00", " ").strip()
    if not value:
        return None
    return value[:MAX_TAG_CHARS]


def _year(value: str | None) -> int | None:
    if not value:
        return None
    m = _YEAR.search(value)
    if not m:
        return None
    y = int(m.group(1))
    return y if 1000 <= y <= 2999 else None


def _get(tags, key: str):
    for alias in _ALIASES.get(key, (key,)):
        try:
            if alias in tags:
                return tags[alias]
        except Exception:  # noqa: BLE001 - a malformed frame: try the next alias
            continue
    frame = _ID3.get(key)
    if frame is not None:
        try:
            f = tags.get(frame)
            if f is not None:
                return [str(t) for t in getattr(f, "text", [f])]
        except Exception:  # noqa: BLE001 - a malformed frame counts as absent
            pass
    return None


def read_tags(path) -> dict:
    """Return ``{"title", "artist", "album", "year": int | None, "genre"}``; missing or unreadable -> None."""
    out: dict = dict.fromkeys(TAG_KEYS)
    try:
        import mutagen

        audio = mutagen.File(str(path), easy=True)
        tags = getattr(audio, "tags", None) if audio is not None else None
        if not tags:
            return out
        out["title"] = _clean(_get(tags, "title"))
        out["artist"] = _clean(_get(tags, "artist"))
        out["album"] = _clean(_get(tags, "album"))
        out["genre"] = _clean(_get(tags, "genre"))
        out["year"] = _year(_clean(_get(tags, "date")))
    except Exception as e:  # noqa: BLE001 - bad tags never fail an analysis
        _log.debug("cannot read tags of %s: %s", path, e)
    return out


__all__ = ["MAX_TAG_CHARS", "TAG_KEYS", "read_tags"]
