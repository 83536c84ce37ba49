"""The listener's play queue (``/api/library/queue``): the one Subsonic ``savePlayQueue`` writes and
``getPlayQueue`` reads, so the queue comes back after a reload and on the listener's phone."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body
from pydantic import BaseModel, Field

from musicindex.web.deps import WEB_CLIENT, ChangerDep, IndexDep, ListenerDep
from musicindex.web.presenters.songs import song_dicts
from musicindex.web.responses import Json
from musicindex.web.security import policy

router = APIRouter(default_response_class=Json, tags=["library"])


class Queue(BaseModel):
    track_ids: list[Annotated[int, Field(ge=1, le=2**62)]] = Field(..., max_length=1000)
    current: int | None = Field(None, ge=1, le=2**62)
    position_ms: int = Field(0, ge=0, le=2**53 - 1)


@router.get("/api/library/queue", summary="The listener's play queue (the one Subsonic savePlayQueue writes)")
def get_queue(index: IndexDep, user: ListenerDep) -> Any:
    q = index.listener.play_queue(user.id)
    if q is None:
        return {"songs": [], "current": None, "position_ms": 0, "changed": None, "changed_by": None}
    return {
        "songs": song_dicts(q.songs),
        "current": q.current,
        "position_ms": q.position_ms,
        "changed": q.changed,
        "changed_by": q.changed_by,
    }


@router.put("/api/library/queue", summary="Replace the listener's play queue (empty: delete it)")
@policy(body="json")
def put_queue(index: IndexDep, user: ChangerDep, body: Queue = Body(...)) -> Any:
    index.users.save_play_queue(user.id, body.track_ids, body.current, body.position_ms, WEB_CLIENT)
    return {"saved": len(body.track_ids)}
