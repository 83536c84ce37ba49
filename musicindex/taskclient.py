"""The one place where the library talks to Celery: enqueue by task name, inspect workers.

The library never imports the ``workers`` package; it sends tasks by name through a
small client app configured with the same broker, and ``workers`` registers tasks
under these names.
"""
from __future__ import annotations

import functools
from typing import Any, Sequence

from musicindex.config import Settings, get_settings
from musicindex.errors import BrokerUnavailableError

QUEUE_INGEST = "ingest"
QUEUE_EMBED = "embed"
QUEUE_TRAIN = "train"
QUEUES = (QUEUE_INGEST, QUEUE_EMBED, QUEUE_TRAIN)

TASK_INGEST = "musicindex.ingest_files"
TASK_EMBED = "musicindex.embed_tracks"
TASK_TRAIN = "musicindex.train"
TASK_RETRAIN_SCHEDULED = "musicindex.scheduled_retrain"

TASK_QUEUES = {
    TASK_INGEST: QUEUE_INGEST,
    TASK_EMBED: QUEUE_EMBED,
    TASK_TRAIN: QUEUE_TRAIN,
    TASK_RETRAIN_SCHEDULED: QUEUE_TRAIN,
}


def broker_urls(settings: Settings | None = None) -> tuple[str, str]:
    """(broker, result backend), starting the embedded Redis when none is configured."""
    from musicindex.services import ensure_broker

    settings = settings or get_settings()
    broker = ensure_broker(settings)
    return broker, settings.result_backend or broker


@functools.lru_cache(maxsize=4)
def _client_app(broker: str, backend: str):
    from celery import Celery

    app = Celery("musicindex-client", broker=broker, backend=backend)
    app.conf.update(
        task_routes={name: {"queue": q} for name, q in TASK_QUEUES.items()},
        broker_connection_retry_on_startup=True,
        broker_connection_timeout=5,
        result_expires=24 * 3600,
    )
    return app


def client_app(settings: Settings | None = None):
    return _client_app(*broker_urls(settings))


def send(task: str, args: Sequence[Any] = (), kwargs: dict[str, Any] | None = None,
         settings: Settings | None = None, **options: Any):
    """Enqueue ``task`` on its queue; raises BrokerUnavailableError with the fix if Redis is down."""
    from kombu.exceptions import OperationalError

    app = client_app(settings)
    try:
        return app.send_task(task, args=list(args), kwargs=kwargs or {}, queue=TASK_QUEUES[task],
                             retry=True, retry_policy={"max_retries": 3, "interval_start": 0.2,
                                                       "interval_step": 0.5, "interval_max": 2}, **options)
    except OperationalError as exc:
        raise BrokerUnavailableError(
            f"cannot reach the Celery broker ({exc}). Check MUSICINDEX_BROKER_URL, or `musicindex services start`."
        ) from None


def ping_workers(settings: Settings | None = None, timeout: float = 1.0) -> list[str]:
    """Names of the workers that answer a ping within ``timeout`` seconds."""
    app = client_app(settings)
    try:
        replies = app.control.ping(timeout=timeout) or []
    except Exception:  # noqa: BLE001 - an unreachable broker means: no worker answers
        return []
    return sorted(name for reply in replies for name in reply)


def queue_depths(settings: Settings | None = None) -> dict[str, int]:
    """Messages waiting in each queue (Redis broker: the length of the queue's list)."""
    import redis

    from musicindex.services import redis_client_url

    broker, _ = broker_urls(settings)
    client = redis.Redis.from_url(redis_client_url(broker), socket_timeout=2)
    try:
        return {q: int(client.llen(q)) for q in QUEUES}
    except redis.RedisError as exc:
        raise BrokerUnavailableError(f"cannot read queue depths from the broker: {exc}") from None
    finally:
        client.close()
