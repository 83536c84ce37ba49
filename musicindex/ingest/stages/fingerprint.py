"""Stage ``fingerprint``: the track's audio fingerprint (``audio.fingerprint``: landmarks of the analysis window the
pass decoded, plus a 15-s tail decoded here; a track up to 75 s whole), stored with its index keys, and the track
linked to the copies of its recording and the versions of its song already indexed (``dupes.links.index_track``:
one index lookup, never a pass over the library). A track that cannot be fingerprinted (too short, near-silent,
a tail that does not decode) is indexed all the same: its reason is stored and it stays ungrouped."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy.orm import Session

from musicindex.audio.fingerprint import FINGERPRINT_VERSION, fingerprint, read_regions
from musicindex.dupes import links
from musicindex.errors import AudioError
from musicindex.ingest.stages.base import Needs, Stage, TrackWork
from musicindex.ingest.stages.features import WINDOW_22K


class FingerprintStage(Stage):
    name = "fingerprint"
    version = FINGERPRINT_VERSION
    needs = Needs(audio=(WINDOW_22K,), stages=("tags", "decode"))  # the title and artist; the duration
    writes = "track_fingerprints (fingerprint or reason, song key), fingerprint_keys, duplicate_links"

    def analyse(self, work: TrackWork) -> links.TrackPrint:
        duration = float(work.outputs["decode"]["duration"])
        tags = work.outputs.get("tags") or {}
        start, length = work.window.bounds(duration)
        try:
            segments, _ = read_regions(
                work.fs,
                work.window,
                source=work.source,
                duration=duration,
                decoded=(start, length, work.audio.get(WINDOW_22K)),
            )
            fp, error = fingerprint(segments, duration), None
        except AudioError as e:  # NotFingerprintableError, or a tail that does not decode: a reason, not a failure
            fp, error = None, str(e)
        return links.TrackPrint(fp, error, tags.get("title"), tags.get("artist"), duration)

    def write(self, s: Session, rows: Sequence[tuple[int, Any]]) -> None:
        links.lock(s)
        for track_id, tp in rows:
            links.index_track(s, track_id, tp)


STAGE = FingerprintStage()
