"""A song's lyrics, read when asked: synced from an ``.lrc`` file beside the track's file (``song.flac`` ->
``song.lrc``, opened by the one rule of ``media/files.py``: inside the ingested folders, no symlink out, a regular
file, at most ``MAX_LYRICS_BYTES`` read), and unsynced from the track's own tags (through the checked descriptor of
its file). Parsing is ``musicindex.audio.lyrics``'s; nothing is stored (an edited ``.lrc`` shows at once).

A sidecar that is refused (outside the folders, binary, too large) is logged and left out: the song's other lyrics
are still answered.
"""

from __future__ import annotations

import logging
import os
from typing import TYPE_CHECKING

from musicindex.audio import lyrics as parse
from musicindex.audio.lyrics import Lyrics
from musicindex.errors import LyricsError, TrackFileChangedError, TrackFileMissingError, TrackFileOutsideError
from musicindex.media.files import open_in_library, open_track_file

if TYPE_CHECKING:
    from musicindex.index import MusicIndex

log = logging.getLogger(__name__)

SIDECAR_SUFFIXES = (".lrc", ".LRC")


def track_lyrics(index: MusicIndex, track_id: int) -> list[Lyrics]:
    """The lyrics of track ``track_id``: the ``.lrc`` beside its file (synced, or unsynced when it has no time
    stamps), then its tags' unsynced lyrics; [] when it has none. TrackNotFoundError for an unknown track; a file
    that cannot be served raises as ``open_track_file`` does."""
    found: list[Lyrics] = []
    rec = index.track_files([track_id])[0]
    sidecar = _sidecar(index, os.fsdecode(rec.path))
    if sidecar is not None:
        found.append(sidecar)
    with open_track_file(index, track_id) as opened:
        try:
            tagged = parse.read_tag_lyrics(f"/proc/self/fd/{opened.fd}")
        except LyricsError as exc:
            log.warning("lyrics of track %s refused: %s", track_id, exc)
            tagged = None
    if tagged is not None and tagged.lines:
        found.append(tagged)
    return found


def _sidecar(index: MusicIndex, path: str) -> Lyrics | None:
    roots = None if index.settings.follow_symlinks else index.known_roots()
    stem = os.path.splitext(path)[0]
    for suffix in SIDECAR_SUFFIXES:
        try:
            opened = open_in_library(stem + suffix, roots)
        except TrackFileMissingError:
            continue
        except (TrackFileOutsideError, TrackFileChangedError) as exc:
            log.warning("lyrics file refused: %s", exc)
            return None
        with opened:
            try:
                if opened.size > parse.MAX_LYRICS_BYTES:
                    raise LyricsError(f"lyrics are at most {parse.MAX_LYRICS_BYTES} bytes, got {opened.size}")
                found = parse.from_lrc_bytes(opened.read(0, parse.MAX_LYRICS_BYTES + 1))
            except LyricsError as exc:
                log.warning("lyrics file %s refused: %s", opened.display_path, exc)
                return None
        return found if found.lines else None
    return None
