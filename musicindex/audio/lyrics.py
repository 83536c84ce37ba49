"""Lyrics of a song, read safely: an ``.lrc`` file's bytes (synced lines) or the text of a ``USLT`` / ``LYRICS``
tag (unsynced), as :class:`Lyrics`. Pure functions of bytes and text: opening the ``.lrc`` beside a track is the
caller's (the one file-opening rule of ``media/files.py``), this module knows nothing of files or the database.

Hostile input is refused or read safely: more than ``MAX_LYRICS_BYTES`` is refused, binary data (NUL bytes without
a UTF-16 byte-order mark, or mostly control characters) is refused, any other encoding is read as UTF-8 (with or
without BOM), UTF-16 with a BOM, else Windows-1252 (every byte maps to a character: never an exception); at most
``MAX_LINES`` lines of at most ``MAX_LINE_CHARS`` characters are kept.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from musicindex.errors import LyricsError

MAX_LYRICS_BYTES = 256 * 1024
"""The largest ``.lrc`` or lyrics tag read (a long song's synced lyrics are a few KiB)."""
MAX_LINES = 5000
MAX_LINE_CHARS = 1000
MAX_START_MS = 24 * 3600 * 1000
"""Time stamps beyond a day are not a song's: such lines are dropped."""

_STAMP = re.compile(r"\[(\d{1,4}):(\d{1,2})(?:[.:](\d{1,3}))?\]")
_TAG = re.compile(r"^\[([a-zA-Z#]+):([^\]]*)\]\s*$")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


@dataclass(frozen=True)
class Line:
    text: str
    start_ms: int | None = None
    """When the line starts (synced lyrics), None for unsynced ones."""


@dataclass(frozen=True)
class Lyrics:
    lines: tuple[Line, ...]
    synced: bool
    offset_ms: int = 0
    """The ``[offset:]`` of an ``.lrc`` (already applied to ``start_ms``; kept for what an app shows)."""
    lang: str | None = None


def decode(data: bytes) -> str:
    """The text of lyrics' bytes (the module's rule); LyricsError for too large or binary data."""
    if len(data) > MAX_LYRICS_BYTES:
        raise LyricsError(f"lyrics are at most {MAX_LYRICS_BYTES} bytes, got {len(data)}")
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        text = data.decode("utf-16", errors="replace")
    elif b"\x00" in data:
        raise LyricsError("binary data is not lyrics (NUL bytes and no UTF-16 byte-order mark)")
    else:
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError:
            text = data.decode("cp1252", errors="replace")
    if text and len(_CONTROL.findall(text)) > len(text) // 10:
        raise LyricsError("binary data is not lyrics (mostly control characters)")
    return text


def _clean(line: str) -> str:
    return _CONTROL.sub("", line).strip()[:MAX_LINE_CHARS]


def parse_lrc(text: str) -> Lyrics:
    """Lyrics from the text of an ``.lrc`` file: ``[mm:ss.xx]`` stamps (several per line repeat it), ``[offset:
    +/-ms]`` (positive: the lines come earlier), ``[la:xx]`` the language; other ``[tag:]`` lines are left out.
    Without any stamp the text is unsynced lyrics (one line per line). Synced lines are sorted by start."""
    offset, lang = 0, None
    timed: list[Line] = []
    plain: list[str] = []
    for raw in text.splitlines()[: 4 * MAX_LINES]:
        tag = _TAG.match(raw.strip())
        if tag and not _STAMP.match(raw.strip()):
            key, value = tag.group(1).lower(), tag.group(2).strip()
            if key == "offset" and re.fullmatch(r"[+-]?\d{1,7}", value):
                offset = int(value)
            elif key == "la" and value:
                lang = _clean(value)[:16] or None
            continue
        stamps, rest = [], raw
        while (m := _STAMP.match(rest.lstrip())) is not None:
            minutes, seconds, frac = int(m.group(1)), int(m.group(2)), m.group(3) or "0"
            stamps.append((minutes * 60 + seconds) * 1000 + int(frac.ljust(3, "0")[:3]))
            rest = rest.lstrip()[m.end() :]
        if stamps:
            timed += [Line(_clean(rest), max(0, ms - offset)) for ms in stamps if ms - offset <= MAX_START_MS]
        else:
            plain.append(_clean(raw))
    if timed:
        ordered = sorted(timed, key=lambda ln: ln.start_ms or 0)[:MAX_LINES]
        return Lyrics(tuple(ordered), True, offset, lang)
    return unsynced("\n".join(plain), lang)


def unsynced(text: str, lang: str | None = None) -> Lyrics:
    """Unsynced lyrics (a ``USLT`` / ``LYRICS`` tag): one line per line, blank lines at the ends dropped."""
    lines = [_clean(x) for x in text.splitlines()[:MAX_LINES]]
    while lines and not lines[-1]:
        lines.pop()
    while lines and not lines[0]:
        lines.pop(0)
    return Lyrics(tuple(Line(x) for x in lines), False, 0, lang)


def from_lrc_bytes(data: bytes) -> Lyrics:
    """:func:`parse_lrc` of :func:`decode` of an ``.lrc`` file's bytes."""
    return parse_lrc(decode(data))


def read_tag_lyrics(source: str) -> Lyrics | None:
    """The unsynced lyrics a file's tags hold (ID3 ``USLT``, Vorbis ``LYRICS`` / ``UNSYNCEDLYRICS``, MP4 ``©lyr``),
    read with mutagen from ``source`` (a path naming the open descriptor); None when there are none or the tags
    cannot be read (never raises on bad tags). LyricsError when the text is larger than ``MAX_LYRICS_BYTES``."""
    import mutagen

    try:
        tags = getattr(mutagen.File(source), "tags", None)
    except Exception:  # noqa: BLE001 - unreadable tags are no lyrics (the tags stage reports the file's problems)
        return None
    if tags is None:
        return None
    text, lang = None, None
    if hasattr(tags, "getall"):  # ID3
        frames = tags.getall("USLT")
        if frames:
            text, lang = str(frames[0].text), (str(frames[0].lang or "").strip() or None)
    else:
        for key in ("lyrics", "unsyncedlyrics", "\xa9lyr"):
            try:
                value = tags.get(key) if hasattr(tags, "get") else None
            except (KeyError, ValueError):  # a key the container's tags cannot hold (Vorbis: ASCII only)
                continue
            if value:
                text = str(value[0] if isinstance(value, list) else value)
                break
    if not text or not text.strip():
        return None
    if len(text.encode("utf-8", errors="replace")) > MAX_LYRICS_BYTES:
        raise LyricsError(f"lyrics are at most {MAX_LYRICS_BYTES} bytes")
    return unsynced(text, lang if lang and lang != "XXX" else None)
