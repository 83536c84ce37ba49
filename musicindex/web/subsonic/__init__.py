"""The OpenSubsonic API under ``/rest`` (docs/subsonic.md): what music apps (Symfonium, Feishin, DSub, Substreamer,
Supersonic, Tempo, play:Sub, ...) talk to, on the same process and port as the web page.

``router`` holds every endpoint (one module-level router per group, included here); ``create_app`` mounts it and
puts a :class:`~musicindex.web.subsonic.endpoints.SubsonicState` on ``app.state.subsonic``. The answers come from
``index.catalog`` (reads), ``index.users`` (a listener's writes) and ``musicindex.media`` (files, covers).
"""

from __future__ import annotations

from fastapi import APIRouter

from musicindex.web.subsonic import browsing, listener, lyrics, media, playback, sonic, system
from musicindex.web.subsonic.endpoints import SubsonicState, not_offered
from musicindex.web.subsonic.protocol import API_VERSION

router = APIRouter()
for _part in (system, browsing, listener, lyrics, media, playback, sonic):
    router.include_router(_part.router)
del _part
# last: every other name under /rest is the protocol's error 0, in the requested format (never the web's 404 page)
router.add_api_route("/rest/{name:path}", not_offered, methods=["GET", "POST", "HEAD"], include_in_schema=False,
                     name="subsonic.not_offered")  # fmt: skip

__all__ = ["API_VERSION", "SubsonicState", "router"]
