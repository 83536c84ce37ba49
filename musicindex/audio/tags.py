"""Tags through mutagen (title, artist, album artist, album, year, genres, track and disc numbers, MusicBrainz id,
whether a picture is embedded, the bit rate), and a file's embedded picture; never raises on bad or absent tags."""

from __future__ import annotations

import logging
import os
import re
from typing import BinaryIO

MAX_TAG_CHARS = 1000
TAG_KEYS = (
    "title", "artist", "albumartist", "album", "year", "genre", "genres", "track", "disc", "musicbrainz_id",
    "has_picture", "bit_rate",
)  # fmt: skip
"""What :func:`read_tags` returns (None when absent; ``genres`` is a list, ``has_picture`` a bool)."""

_log = logging.getLogger(__name__)
_YEAR = re.compile(r"(?<!\d)(\d{4})(?!\d)")
# ID3 frames for containers whose tags mutagen cannot expose in easy mode (e.g. ID3 inside WAV/AIFF)
_ID3 = {
    "title": "TIT2", "artist": "TPE1", "albumartist": "TPE2", "album": "TALB", "date": "TDRC", "genre": "TCON",
    "tracknumber": "TRCK", "discnumber": "TPOS",
}  # fmt: skip
_ALIASES = {
    "date": ("date", "year", "originaldate", "tdrc", "tyer", "©day"),
    "title": ("title", "©nam"),
    "artist": ("artist", "©art", "albumartist", "aART"),
    "albumartist": ("albumartist", "album artist", "aART"),
    "album": ("album", "©alb"),
    "genre": ("genre", "©gen"),
    "tracknumber": ("tracknumber", "trkn"),
    "discnumber": ("discnumber", "disk"),
    "musicbrainz_trackid": ("musicbrainz_trackid", "----:com.apple.iTunes:MusicBrainz Track Id"),
}
_NUMBER = re.compile(r"^\s*(\d{1,6})")


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


MAX_TAG_BYTES = 16 * 1024 * 1024
"""Metadata larger than this (mostly embedded pictures) is not read: mutagen would load it whole into memory."""


def _syncsafe(b: bytes) -> int:
    return (b[0] & 0x7F) << 21 | (b[1] & 0x7F) << 14 | (b[2] & 0x7F) << 7 | (b[3] & 0x7F)


def _ogg_comment_bytes(fh: BinaryIO) -> int:
    """Bytes of an Ogg stream's second packet (the comments, where pictures live), from the page headers only."""
    packets, size, pos = 0, 0, 0
    while packets < 2:
        fh.seek(pos)
        head = fh.read(27)
        if len(head) < 27 or head[:4] != b"OggS":
            return 0
        lacing = fh.read(head[26])
        pos += 27 + head[26] + sum(lacing)
        for value in lacing:
            if packets == 1:
                size += value
            if value < 255:
                packets += 1
                if packets == 2:
                    break
        if pos > 1 << 40:
            break
    return size


def metadata_bytes(path: str | os.PathLike[str]) -> int:
    """How many bytes of metadata (tags, pictures) the file's headers announce, read without loading them:
    ID3v2 at the start, FLAC metadata blocks, RIFF/AIFF ``id3`` chunks, the MP4 ``moov`` box, Ogg comments."""
    total = 0
    with open(os.fspath(path), "rb") as fh:
        head = fh.read(12)
        if head[:3] == b"ID3" and len(head) >= 10:
            return 10 + _syncsafe(head[6:10])
        if head[:4] == b"fLaC":
            pos = 4
            while True:
                fh.seek(pos)
                block = fh.read(4)
                if len(block) < 4:
                    break
                length = int.from_bytes(block[1:4], "big")
                total += length
                pos += 4 + length
                if block[0] & 0x80:  # last metadata block
                    break
            return total
        if head[:4] in (b"RIFF", b"FORM"):
            little = head[:4] == b"RIFF"
            pos = 12
            while True:
                fh.seek(pos)
                chunk = fh.read(8)
                if len(chunk) < 8:
                    break
                length = int.from_bytes(chunk[4:8], "little" if little else "big")
                if chunk[:4].lower() == b"id3 ":
                    total += length
                pos += 8 + length + (length & 1)
            return total
        if head[4:8] == b"ftyp":
            pos = 0
            while True:
                fh.seek(pos)
                box = fh.read(16)
                if len(box) < 8:
                    break
                length = int.from_bytes(box[:4], "big")
                if length == 1 and len(box) == 16:
                    length = int.from_bytes(box[8:16], "big")
                if length < 8:
                    break
                if box[4:8] == b"moov":
                    return length
                pos += length
            return 0
        if head[:4] == b"OggS":
            return _ogg_comment_bytes(fh)
    return total


def _number(value) -> int | None:
    """A track or disc number from "3", "3/12" or an MP4 (number, total) pair; None when absent or absurd."""
    if isinstance(value, (list, tuple)) and value:
        value = value[0]
    if isinstance(value, tuple):
        value = value[0] if value else None
    if isinstance(value, int):
        n = value
    else:
        m = _NUMBER.match(_clean(value) or "")
        if m is None:
            return None
        n = int(m.group(1))
    return n if 0 < n < 100_000 else None


def _genres(value) -> list[str]:
    """The genre tag's values: several values, or one value with ``;`` between genres, split; repeats dropped."""
    raw = value if isinstance(value, (list, tuple)) else [value]
    out: list[str] = []
    for v in raw:
        text = _clean(v)
        if text:
            out.extend(p.strip() for p in text.split(";") if p.strip())
    return list(dict.fromkeys(g[:200] for g in out))[:20]


def _has_picture(audio) -> bool:
    """Whether the file embeds a picture (ID3 APIC, FLAC picture blocks, Ogg METADATA_BLOCK_PICTURE, MP4 covr)."""
    if getattr(audio, "pictures", None):
        return True
    tags = getattr(audio, "tags", None)
    if tags is None:
        return False
    try:
        if hasattr(tags, "getall"):  # ID3
            return bool(tags.getall("APIC"))
        keys = {str(k).lower() for k in tags.keys()}  # noqa: SIM118 - mutagen tag objects are not all mappings
    except Exception:  # noqa: BLE001 - malformed tags: no picture we could show
        return False
    return "metadata_block_picture" in keys or "covr" in keys


def read_tags(path, *, source=None) -> dict:
    """Return the :data:`TAG_KEYS` of ``path``: missing or unreadable values are None (``genres``: ``[]``,
    ``has_picture``: False), ``year``, ``track``, ``disc`` and ``bit_rate`` (kbit/s) are ints.

    A file whose metadata exceeds ``MAX_TAG_BYTES`` (a huge embedded picture) keeps its tags unread:
    its analysis goes on without them, and a worker's memory stays bounded. ``source``: what to read instead of
    ``path`` (an open descriptor's ``/proc/self/fd/N``).
    """
    out: dict = dict.fromkeys(TAG_KEYS)
    out["genres"], out["has_picture"] = [], False
    src = path if source is None else source
    try:
        size = metadata_bytes(src)
        if size > MAX_TAG_BYTES:
            _log.info("tags of %s not read: %d MB of metadata (limit %d MB)", path, size >> 20, MAX_TAG_BYTES >> 20)
            return out
        import mutagen

        audio = mutagen.File(str(src), easy=True)
        if audio is None:
            return out
        bitrate = getattr(getattr(audio, "info", None), "bitrate", None)
        if isinstance(bitrate, (int, float)) and bitrate > 0:
            out["bit_rate"] = round(bitrate / 1000)
        out["has_picture"] = _has_picture(mutagen.File(str(src)) if type(audio).__name__.startswith("Easy") else audio)
        tags = getattr(audio, "tags", None)
        if not tags:
            return out
        out["title"] = _clean(_get(tags, "title"))
        out["artist"] = _clean(_get(tags, "artist"))
        out["albumartist"] = _clean(_get(tags, "albumartist"))
        out["album"] = _clean(_get(tags, "album"))
        out["genres"] = _genres(_get(tags, "genre"))
        out["genre"] = "; ".join(out["genres"]) or None
        out["year"] = _year(_clean(_get(tags, "date")))
        out["track"] = _number(_get(tags, "tracknumber"))
        out["disc"] = _number(_get(tags, "discnumber"))
        mbid = _clean(_get(tags, "musicbrainz_trackid"))
        out["musicbrainz_id"] = mbid[:64] if mbid else None
    except Exception as e:  # noqa: BLE001 - bad tags never fail an analysis
        _log.debug("cannot read tags of %s: %s", path, e)
    return out


def read_picture(path) -> bytes | None:
    """The embedded picture of ``path`` (the front cover when several are marked), or None; never raises.

    Refused (None) above ``MAX_TAG_BYTES`` of metadata, like the tags.
    """
    try:
        if metadata_bytes(path) > MAX_TAG_BYTES:
            return None
        import base64

        import mutagen
        from mutagen.flac import Picture

        audio = mutagen.File(str(path))
        if audio is None:
            return None
        pictures = list(getattr(audio, "pictures", None) or [])
        tags = getattr(audio, "tags", None)
        if tags is not None and hasattr(tags, "getall"):
            pictures += tags.getall("APIC")
        elif tags is not None:
            for raw in tags.get("metadata_block_picture", []) or []:
                try:
                    pictures.append(Picture(base64.b64decode(raw)))
                except Exception:  # noqa: BLE001 - a damaged block: the next one
                    continue
            for cover in tags.get("covr", []) or []:
                return bytes(cover) or None
        if not pictures:
            return None
        front = [p for p in pictures if getattr(p, "type", None) == 3]
        data = bytes((front or pictures)[0].data)
        return data or None
    except Exception as e:  # noqa: BLE001 - bad tags: no picture
        _log.debug("cannot read the picture of %s: %s", path, e)
        return None


__all__ = ["MAX_TAG_BYTES", "MAX_TAG_CHARS", "TAG_KEYS", "metadata_bytes", "read_picture", "read_tags"]
