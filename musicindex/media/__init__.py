"""Serving the library's files: the one way a route opens the file of a track (``files.py``).

Every route that sends a track's file (``GET /api/tracks/{id}/audio`` now; the Subsonic ``stream``, ``download``
and cover art later) calls :func:`open_track_file` and answers :func:`file_response`::

    opened = open_track_file(index, track_id)          # TrackNotFoundError / TrackFileError subclasses
    return file_response(opened, request, disposition="attachment")   # Range, HEAD, ETag; closes the fd

The checks (resolved path inside the ingested folders, no symlink at the last step, a regular file of the size and
mtime the index recorded) are made on the open descriptor, and the answer is read from that descriptor, so a
file swapped in between the check and the read cannot be served.
"""

from musicindex.media.files import (
    CHUNK_BYTES,
    OpenedTrackFile,
    RangeNotSatisfiable,
    TrackFileResponse,
    content_disposition,
    file_response,
    open_in_library,
    open_track_file,
    parse_range,
)
from musicindex.mediatypes import MEDIA_TYPES, media_type_of

__all__ = [
    "CHUNK_BYTES",
    "MEDIA_TYPES",
    "OpenedTrackFile",
    "RangeNotSatisfiable",
    "TrackFileResponse",
    "content_disposition",
    "file_response",
    "media_type_of",
    "open_in_library",
    "open_track_file",
    "parse_range",
]
