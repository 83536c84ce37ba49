"""System endpoints: ping, getLicense, getOpenSubsonicExtensions (without authentication), getScanStatus, startScan
(admins), getUser, tokenInfo, getMusicFolders."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from musicindex.web.subsonic.endpoints import Call, endpoint
from musicindex.web.subsonic.protocol import NOT_AUTHORIZED, SubsonicError

router = APIRouter()

NO_ROLES = ("settingsRole", "uploadRole", "coverArtRole", "commentRole", "podcastRole", "jukeboxRole", "shareRole",
            "videoConversionRole")  # fmt: skip

EXTENSIONS = (
    ("formPost", [1]),
    ("apiKeyAuthentication", [1]),
    ("sonicSimilarity", [1]),
    ("transcodeOffset", [1]),
    ("playbackReport", [1]),
    ("indexBasedQueue", [1]),
    ("songLyrics", [1]),
)
"""What this server supports beyond Subsonic 1.16.1 (docs/subsonic.md): ``transcodeOffset`` is ``stream``'s
``timeOffset`` on a transcode; not the newer ``transcoding`` extension (getTranscodeDecision, getTranscodeStream)."""


@endpoint(router, "ping")
def ping(call: Call) -> dict[str, Any]:
    return {}


@endpoint(router, "getLicense")
def get_license(call: Call) -> dict[str, Any]:
    return {"license": {"valid": True}}


@endpoint(router, "getOpenSubsonicExtensions", auth_required=False)
def get_extensions(call: Call) -> dict[str, Any]:
    return {"openSubsonicExtensions": [{"name": n, "versions": v} for n, v in EXTENSIONS]}


def _scan_status(call: Call, scanning: bool | None = None) -> dict[str, Any]:
    running = call.state.scanner.running if scanning is None else scanning
    pending = call.index.ingestion.ingest_progress().get("counts", {}).get("pending", 0)
    return {"scanStatus": {"scanning": bool(running or pending), "count": call.index.catalog.song_count()}}


@endpoint(router, "getScanStatus")
def get_scan_status(call: Call) -> dict[str, Any]:
    return _scan_status(call)


@endpoint(router, "startScan", changes=True)
def start_scan(call: Call) -> dict[str, Any]:
    """Re-ingest every folder ingested before (``index.ingest(index.known_roots())``), without waiting."""
    call.require_admin()
    call.state.scanner.start(call.index)
    return _scan_status(call, scanning=True)


@endpoint(router, "getUser")
def get_user(call: Call) -> dict[str, Any]:
    name = call.params.required("username")
    assert call.user is not None
    if name.casefold() != call.user.name.casefold() and not call.user.is_admin:
        raise SubsonicError(NOT_AUTHORIZED, "only admins may look at other users")
    user = call.index.users.user(name)
    roles = dict.fromkeys(NO_ROLES, False)
    roles.update(downloadRole=True, playlistRole=True, streamRole=True)
    folders = [f.id for f in call.index.catalog.music_folders()]
    limits = [k for k in (call.index.users.max_bit_rate(user.id), call.index.settings.transcode_max_bitrate) if k]
    return {
        "user": {
            "folder": folders,
            "username": user.name,
            "scrobblingEnabled": True,
            "maxBitRate": min(limits) if limits else None,
            "adminRole": user.is_admin,
            **roles,
        }
    }


@endpoint(router, "tokenInfo")
def token_info(call: Call) -> dict[str, Any]:
    assert call.user is not None
    return {"tokenInfo": {"username": call.user.name}}


@endpoint(router, "getMusicFolders")
def get_music_folders(call: Call) -> dict[str, Any]:
    return {"musicFolders": {"musicFolder": [{"id": f.id, "name": f.name} for f in call.index.catalog.music_folders()]}}
