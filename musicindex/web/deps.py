"""What every router of the app shares: the index it serves and the app's limits, as FastAPI dependencies.

``create_app`` puts them on ``app.state``; routers are module-level ``APIRouter`` objects (FastAPI's documented
layout) whose routes declare ``index: IndexDep`` (and ``limits: LimitsDep``), so the JSON API, the pages and the
Subsonic API are siblings over one ``MusicIndex``.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import Depends, Request

from musicindex.web.errors import ApiError

if TYPE_CHECKING:
    from musicindex.index import MusicIndex


def get_index(request: Request) -> MusicIndex:
    """The ``MusicIndex`` this app serves."""
    index: MusicIndex = request.app.state.index
    return index


class Limits:
    """One heavy job of each kind at a time (audio analysis of an upload, evaluation), and answers shared by all
    callers: for a moment (``cached``), or kept and refreshed in the background (``background``: what the workers
    say, which takes up to a second to ask)."""

    def __init__(self) -> None:
        self.analysis = threading.BoundedSemaphore(1)
        self.evaluation = threading.BoundedSemaphore(1)
        self._cache: dict[str, tuple[float, Any]] = {}
        self._cache_lock = threading.Lock()
        self._refreshing: dict[str, threading.Event] = {}

    @staticmethod
    @contextlib.contextmanager
    def try_slot(sem: threading.BoundedSemaphore, what: str) -> Iterator[None]:
        """Hold ``sem`` for the block, or ApiError 429 (with Retry-After) at once when it is taken: a request that
        cannot run now never waits holding a worker thread or the event loop."""
        if not sem.acquire(blocking=False):
            raise ApiError(429, "busy", f"another {what} is running; try again in a moment", {"Retry-After": "5"})
        try:
            yield
        finally:
            sem.release()

    def cached(self, key: str, ttl: float, make: Callable[[], Any]) -> Any:
        """``make()``, shared by every caller for ``ttl`` seconds."""
        with self._cache_lock:
            hit = self._cache.get(key)
            if hit is not None and time.monotonic() - hit[0] < ttl:
                return hit[1]
            value = make()
            self._cache[key] = (time.monotonic(), value)
            return value

    def background(self, key: str, ttl: float, make: Callable[[], Any], wait: float = 0.0) -> tuple[Any, float | None]:
        """(the latest value of ``make()``, its age in seconds), never computed in the caller's thread: a value older
        than ``ttl`` (or none yet) starts one refresh in a background thread and the caller gets the old value at
        once. Only when there is no value yet does the caller wait, at most ``wait`` seconds; then (None, None)."""
        with self._cache_lock:
            hit = self._cache.get(key)
            age = time.monotonic() - hit[0] if hit is not None else None
            done = self._refreshing.get(key)
            if (age is None or age >= ttl) and done is None:
                done = self._refreshing[key] = threading.Event()
                threading.Thread(
                    target=self._refresh, args=(key, make, done), name=f"refresh-{key}", daemon=True
                ).start()
        if hit is None and done is not None and wait > 0:
            done.wait(wait)
            with self._cache_lock:
                hit = self._cache.get(key)
                age = time.monotonic() - hit[0] if hit is not None else None
        return (hit[1], age) if hit is not None else (None, None)

    def _refresh(self, key: str, make: Callable[[], Any], done: threading.Event) -> None:
        try:
            value = make()
            with self._cache_lock:
                self._cache[key] = (time.monotonic(), value)
        finally:
            with self._cache_lock:
                self._refreshing.pop(key, None)
            done.set()


def get_limits(request: Request) -> Limits:
    limits: Limits = request.app.state.limits
    return limits


IndexDep = Annotated["MusicIndex", Depends(get_index)]
LimitsDep = Annotated[Limits, Depends(get_limits)]
