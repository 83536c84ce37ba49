"""M3U8 playlists of query answers, for media servers (Navidrome, Jellyfin, ...) and players.

One writer for the CLI (``--m3u FILE``) and the HTTP API (``format=m3u8``, ``/api/m3u``). Paths are
absolute (as indexed), or relative to a base folder the user chooses (the folder the playlist file
will live in, typically the music folder a media server scans). Nothing here reads a file.

A playlist is bytes: UTF-8 text, except that a path whose name is not valid UTF-8 is written with its
raw bytes (an entry's path may carry them as surrogate escapes, ``os.fsdecode``: what
``MusicIndex.track_files`` gives), so every line names the file that exists. :func:`entries` puts those
paths under the titles of a query's answer.
"""

from __future__ import annotations

import os
import posixpath
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from musicindex.errors import InvalidArgumentError

M3U8_MEDIA_TYPE = "audio/x-mpegurl"
"""``Content-Type`` of an M3U8 answer (with ``charset=utf-8``)."""


@dataclass(frozen=True)
class Entry:
    """One playlist line: the file, and what ``#EXTINF`` shows."""

    path: str
    title: str | None = None
    artist: str | None = None
    duration: float | None = None

    @classmethod
    def of(cls, item: Any) -> Entry:
        """An entry from a TrackHit, a TrackSummary or a dict with ``path`` (and title, artist, duration)."""
        get = item.get if isinstance(item, dict) else (lambda k, d=None: getattr(item, k, d))
        path = get("path")
        if not isinstance(path, str) or not path:
            raise InvalidArgumentError(f"a playlist entry needs a path, got {item!r}")
        duration = get("duration", None)
        return cls(path, get("title", None), get("artist", None), float(duration) if duration is not None else None)


def _clean(s: str | None) -> str:
    """One line of text: no line breaks (a tag with a newline must not start a new playlist line), no other
    control characters (NUL included)."""
    return " ".join("".join(c if c.isprintable() or c.isspace() else " " for c in (s or "")).split())


def check_base(base: str | os.PathLike[str] | None) -> str | None:
    """A base folder for relative paths: absolute, normalised, no NUL or line break. Not read."""
    if base is None:
        return None
    b = os.fspath(base)
    if not b:
        return None
    if "\x00" in b or "\n" in b or "\r" in b or len(b) > 4096:
        raise InvalidArgumentError("the base folder must be one line of at most 4096 characters")
    if not (b.startswith("/") or (len(b) > 2 and b[1] == ":" and b[2] in "\\/")):
        raise InvalidArgumentError(f"the base folder must be an absolute path, got {b!r}")
    return b


def relative_path(path: str, base: str | None) -> str:
    """``path`` as written into the playlist: absolute, or relative to ``base`` (``../`` when outside)."""
    if base is None:
        return path
    if path.startswith("/") and base.startswith("/"):
        return posixpath.relpath(posixpath.normpath(path), posixpath.normpath(base))
    try:
        return os.path.relpath(path, base)
    except ValueError:  # another drive (Windows): only an absolute path can reach it
        return path


def render_m3u8(items: Iterable[Any], *, base: str | os.PathLike[str] | None = None, title: str | None = None) -> str:
    """The text of an extended M3U playlist (``#EXTM3U``, ``#EXTINF`` per entry). A path that is not valid UTF-8
    stays in it as surrogate escapes: :func:`render_m3u8_bytes` writes its raw bytes."""
    b = check_base(base)
    lines = ["#EXTM3U"]
    if title:
        lines.append(f"#PLAYLIST:{_clean(title)}")
    for item in items:
        e = item if isinstance(item, Entry) else Entry.of(item)
        if "\n" in e.path or "\r" in e.path or "\x00" in e.path:
            raise InvalidArgumentError(
                f"a path with a line break or NUL cannot be written to an M3U playlist: {e.path!r}"
            )
        seconds = round(e.duration) if e.duration is not None and e.duration >= 0 else -1
        label = " - ".join(x for x in (_clean(e.artist), _clean(e.title)) if x) or _clean(_text(Path(e.path).stem))
        lines.append(f"#EXTINF:{seconds},{label}")
        lines.append(relative_path(e.path, b))
    return "\n".join(lines) + "\n"


def render_m3u8_bytes(
    items: Iterable[Any], *, base: str | os.PathLike[str] | None = None, title: str | None = None
) -> bytes:
    """The playlist as the bytes to store or send: UTF-8, paths byte-exact (names that are not UTF-8 included)."""
    return render_m3u8(items, base=base, title=title).encode("utf-8", "surrogateescape")


def entries(items: Iterable[Any], paths: Mapping[int, str]) -> list[Entry]:
    """Playlist entries of a query's ``items`` (hits, summaries, dicts with ``id``) with each file's real path
    from ``paths`` (track id -> the name to open, e.g. ``{f.id: f.path for f in index.track_files(ids)}``)."""
    out = []
    for item in items:
        e = Entry.of(item)
        tid = item.get("id") if isinstance(item, dict) else getattr(item, "id", None)
        out.append(Entry(paths.get(int(tid), e.path), e.title, e.artist, e.duration) if tid is not None else e)
    return out


def inside_roots(path: str, roots: Iterable[str]) -> str:
    """``path`` relative to the deepest of ``roots`` that holds it (``Artist/Album/01.flac``), else its file name:
    a playlist for someone who may not see where the library lives on disk."""
    best = ""
    for root in roots:
        r = root.rstrip("/")
        if path.startswith(r + "/") and len(r) > len(best):
            best = r
    return path[len(best) + 1 :] if best else os.path.basename(path)


def _text(s: str) -> str:
    """``s`` with undecodable bytes (surrogate escapes) as U+FFFD: for the labels of a playlist."""
    return s.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def write_m3u8(
    out: str | os.PathLike[str],
    items: Iterable[Any],
    *,
    base: str | os.PathLike[str] | None = None,
    title: str | None = None,
) -> Path:
    """Write the playlist to ``out`` (UTF-8, paths byte-exact, atomically); returns its path."""
    data = render_m3u8_bytes(items, base=base, title=title)
    out = Path(out)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, out)
    return out
