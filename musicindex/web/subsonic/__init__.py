"""The OpenSubsonic API under ``/rest`` (docs/subsonic.md): what music apps (Symfonium, Feishin, DSub, Substreamer,
Supersonic, Tempo, play:Sub, ...) talk to, on the same process and port as the web page.

``router`` holds every endpoint (one module-level router per group, included here); ``create_app`` mounts it and
puts a :class:`~musicindex.web.subsonic.endpoints.SubsonicState` on ``app.state.subsonic``. The answers come from
``index.catalog`` (reads), ``index.users`` (a listener's writes) and ``musicindex.media`` (files, covers).
"""

from __future__ import annotations

from fastapi import APIRouter

from musicindex.web.subsonic import browsing, listener, media, sonic, system
from musicindex.web.subsonic.endpoints import SubsonicState
from musicindex.web.subsonic.protocol import API_VERSION

router = APIRouter()
for _part in (system, browsing, listener, media, sonic):
    router.include_router(_part.router)
del _part

__all__ = ["API_VERSION", "SubsonicState", "router"]
