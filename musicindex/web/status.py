"""What the status page and ``GET /api/status`` say, fast.

The database's part (counts by status, the latest failures, the latest ingest's progress) is read for each answer;
the broker's part (queue depths, the live workers) is kept by ``Limits.background`` and refreshed behind the
answers, because asking the workers takes up to a second (a ping waits for their replies).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from musicindex.index import MusicIndex
    from musicindex.web.deps import Limits

SERVICES_TTL = 2.0
"""Seconds what the broker said is shared before it is asked again (in the background)."""
NO_WORKER_HINT = "no worker is running: start one with `musicindex worker` (queued files wait until one runs)"


def services(index: MusicIndex) -> dict[str, Any]:
    """Queue depths and live workers, or why the broker cannot say (``broker``: "ok" or the reason)."""
    from musicindex.errors import ServiceError

    try:
        queues = index.dispatcher.queue_depths()
    except ServiceError as exc:
        return {"queues": {}, "workers": [], "broker": str(exc)}
    return {"queues": queues, "workers": index.dispatcher.ping_workers(timeout=1.0), "broker": "ok"}


def status(index: MusicIndex, limits: Limits, failures: int, wait: float) -> dict[str, Any]:
    """Counts, latest failures and ingest progress (live), with the broker's part as last seen (``checked``:
    whether it was seen at all; the caller waits at most ``wait`` seconds for the first look)."""
    from musicindex.ingest.progress import latest_failures, status_counts

    seen, age = limits.background("services", SERVICES_TTL, lambda: services(index), wait=wait)
    svc = seen or {"queues": {}, "workers": [], "broker": "ok"}
    hint = NO_WORKER_HINT if seen is not None and svc["broker"] == "ok" and not svc["workers"] else None
    return {
        "counts": status_counts(index.db),
        "failures": [{"path": p, "error": e} for p, e in latest_failures(index.db, failures)],
        **svc,
        "checked": seen is not None,
        "checked_seconds_ago": round(age, 1) if age is not None else None,
        "hint": hint,
        "progress": index.ingestion.ingest_progress(),
    }
