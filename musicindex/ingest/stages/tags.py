"""Stage ``tags``: the file's tags (mutagen, through the open descriptor) as ``tracks`` columns: title, artist, album,
year, genre tag (and the training label with ``--label-from tag``), and the library's (album artist, numbers,
genres, the search text: ``ingest.library.track_values``). No audio: a newer tag reader re-reads tags only."""

from __future__ import annotations

from typing import Any

from musicindex.ingest import library, trackfile
from musicindex.ingest.stages.base import Stage, TrackWork


class TagsStage(Stage):
    name = "tags"
    version = library.TAGS_VERSION
    writes = "tracks: title, artist, album, year, genre_tag, label (tag), album_artist, track/disc numbers, " \
             "genres, search text; the artist and album rows"  # fmt: skip

    def analyse(self, work: TrackWork) -> dict[str, Any]:
        return trackfile.tag_values(work.fs, work.source, work.path, label_from_tag=work.label_from_tag)

    def columns(self, output: dict[str, Any]) -> dict[str, Any]:
        return output


STAGE = TagsStage()
