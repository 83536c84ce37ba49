"""Response helpers every router shares: JSON that never holds NaN, M3U8 playlists of track lists (and the words
that describe their parameters)."""

from __future__ import annotations

import json
import math
import re
from typing import TYPE_CHECKING, Any

from fastapi.responses import JSONResponse, Response

from musicindex import playlists

if TYPE_CHECKING:
    from musicindex.index import MusicIndex


SPACE_DOC = "similarity space (features, ann, cnn, musicnn, ...); omitted: the library's default space"
BASE_DOC = "M3U8 only: write paths relative to this absolute folder (the playlist's folder); omitted: absolute paths"


class Json(JSONResponse):
    """JSON with non-finite floats (NaN metrics) as null, never invalid JSON."""

    def render(self, content: Any) -> bytes:
        try:
            return json.dumps(content, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode()
        except (ValueError, TypeError):  # NaN / inf, or a value JSON does not know (a date): the slow path
            return json.dumps(_finite(content), ensure_ascii=False, separators=(",", ":"), default=str).encode()


def _finite(x: Any) -> Any:
    if isinstance(x, float):
        return x if math.isfinite(x) else None
    if isinstance(x, dict):
        return {str(k): _finite(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_finite(v) for v in x]
    return x


def m3u_response(index: MusicIndex, items: list[Any], base: str | None, name: str, title: str) -> Response:
    """An M3U8 attachment of ``items`` (durations from the index; paths byte-exact: a name that is not UTF-8 is
    written with its raw bytes, so the line names the file that exists)."""
    ids = [int(h["id"]) if isinstance(h, dict) else int(h.id) for h in items]
    summaries = {t.id: t for t in index.track_summaries(ids)} if ids else {}
    paths = {f.id: f.path for f in index.track_files(ids)} if ids else {}
    body = playlists.render_m3u8_bytes(playlists.entries([summaries[i] for i in ids], paths), base=base, title=title)
    safe = re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-") or "playlist"
    return Response(
        body,
        media_type=f"{playlists.M3U8_MEDIA_TYPE}; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{safe}.m3u8"'},
    )
