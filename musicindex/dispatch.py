"""The one place where musicindex talks to Celery: enqueue by task name, inspect workers and queues.

The library never imports the ``workers`` package: a :class:`Dispatcher` sends tasks by
name (``send_task``) through a small client app configured with the same broker, and
``workers`` registers its tasks under these names and routes them to these queues.
Nothing here starts a server: with no ``MUSICINDEX_BROKER_URL`` the embedded Redis's
socket is used, and the entry points (CLI, worker, tests) start it beforehand.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Final

from musicindex import services
from musicindex.config import Settings, get_settings
from musicindex.errors import BrokerUnavailableError
from musicindex.vocab import QUEUE_EMBED, QUEUE_INGEST, QUEUE_TRAIN, QUEUES

if TYPE_CHECKING:
    from celery import Celery
    from celery.result import AsyncResult

TASK_INGEST: Final = "musicindex.ingest_files"
TASK_EMBED: Final = "musicindex.embed_tracks"
TASK_TRAIN: Final = "musicindex.train"
TASK_RETRAIN_SCHEDULED: Final = "musicindex.scheduled_retrain"

TASK_QUEUES: Final = {
    TASK_INGEST: QUEUE_INGEST,
    TASK_EMBED: QUEUE_EMBED,
    TASK_TRAIN: QUEUE_TRAIN,
    TASK_RETRAIN_SCHEDULED: QUEUE_TRAIN,
}
"""Every task name and the queue it runs on (the workers route by this table too)."""

_SEND_RETRY = {"max_retries": 3, "interval_start": 0.2, "interval_step": 0.5, "interval_max": 2}


def broker_urls(settings: Settings | None = None) -> tuple[str, str]:
    """(broker, result backend): the configured ones, or the embedded redis-server's socket.

    Starts nothing (entry points call ``services.start``).
    """
    settings = settings or get_settings()
    broker = settings.broker_url or services.EmbeddedRedis(services.paths_for(settings)).url
    return broker, settings.result_backend or broker


@functools.lru_cache(maxsize=4)
def _client_app(broker: str, backend: str) -> Celery:
    from celery import Celery

    app = Celery("musicindex-client", broker=broker, backend=backend)
    app.conf.update(
        task_routes={name: {"queue": q} for name, q in TASK_QUEUES.items()},
        broker_connection_retry_on_startup=True,
        broker_connection_timeout=5,
        result_expires=24 * 3600,
    )
    return app


class Dispatcher:
    """Sends musicindex's tasks to their queues and looks at workers and queue depths."""

    def __init__(self, settings: Settings | None = None):
        self.settings = settings or get_settings()

    @property
    def app(self) -> Celery:
        return _client_app(*broker_urls(self.settings))

    # ------------------------------------------------------------------ sending
    def send(
        self, task: str, args: Sequence[Any] = (), kwargs: dict[str, Any] | None = None, **options: Any
    ) -> AsyncResult:
        """Enqueue ``task`` on its queue; BrokerUnavailableError (with the fix) if Redis does not answer."""
        from kombu.exceptions import OperationalError

        try:
            return self.app.send_task(
                task,
                args=list(args),
                kwargs=kwargs or {},
                queue=TASK_QUEUES[task],
                retry=True,
                retry_policy=_SEND_RETRY,
                **options,
            )
        except OperationalError as exc:
            raise BrokerUnavailableError(
                f"cannot reach the Celery broker ({exc}). Check MUSICINDEX_BROKER_URL, or `musicindex services start`."
            ) from None

    def ingest(
        self, track_ids: Sequence[int], *, label_from_tag: bool = False, roots: Sequence[str] | None = None
    ) -> AsyncResult:
        """Analyse registered tracks on the ``ingest`` queue."""
        kwargs: dict[str, Any] = {"label_from_tag": label_from_tag}
        if roots is not None:
            kwargs["roots"] = list(roots)
        return self.send(TASK_INGEST, args=[[int(t) for t in track_ids]], kwargs=kwargs)

    def embed(self, track_ids: Sequence[int]) -> AsyncResult:
        """Predictions, clusters and embeddings of tracks on the ``embed`` queue."""
        return self.send(TASK_EMBED, args=[[int(t) for t in track_ids]])

    def train(self, models: Sequence[str], options: dict[str, Any], trigger: str = "manual") -> AsyncResult:
        """A training run on the ``train`` queue."""
        return self.send(TASK_TRAIN, kwargs={"models": list(models), "options": options, "trigger": trigger})

    # ------------------------------------------------------------------ looking
    def ping_workers(self, timeout: float = 1.0) -> list[str]:
        """Names of the workers that answer a ping within ``timeout`` seconds."""
        try:
            replies = self.app.control.ping(timeout=timeout) or []
        except Exception:  # noqa: BLE001 - an unreachable broker means: no worker answers
            return []
        return sorted(name for reply in replies for name in reply)

    def _redis(self) -> Any:
        import redis

        broker, _ = broker_urls(self.settings)
        return redis.Redis.from_url(services.redis_client_url(broker), socket_timeout=2)

    def queue_depths(self) -> dict[str, int]:
        """Messages waiting in each queue (Redis broker: the length of the queue's list)."""
        import redis

        client = self._redis()
        try:
            return {q: int(client.llen(q)) for q in QUEUES}
        except redis.RedisError as exc:
            raise BrokerUnavailableError(f"cannot read queue depths from the broker: {exc}") from None
        finally:
            client.close()

    def redis_version(self) -> str | None:
        """The broker's Redis version, or None when it does not answer."""
        import redis

        client = self._redis()
        try:
            return str(client.info("server").get("redis_version"))
        except redis.RedisError:
            return None
        finally:
            client.close()
