"""The one place where musicindex talks to Celery: enqueue by task name, inspect workers and queues.

The library never imports the ``workers`` package: a :class:`Dispatcher` sends tasks by
name (``send_task``) through a small client app configured with the same broker, and
``workers`` registers its tasks under these names and routes them to these queues.
Nothing here starts a server: with no ``MUSICINDEX_BROKER_URL`` the embedded Redis's
socket is used, and the entry points (CLI, worker, tests) start it beforehand.
"""

from __future__ import annotations

import base64
import functools
import json
from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, Final

from musicindex.config import Settings, broker_urls, get_settings, redis_client_url
from musicindex.errors import BrokerUnavailableError
from musicindex.vocab import QUEUE_EMBED, QUEUE_INGEST, QUEUE_TRAIN, QUEUES

if TYPE_CHECKING:
    from celery import Celery
    from celery.result import AsyncResult

TASK_INGEST: Final = "musicindex.ingest_files"
TASK_EMBED: Final = "musicindex.embed_tracks"
TASK_TRAIN: Final = "musicindex.train"
TASK_RETRAIN_SCHEDULED: Final = "musicindex.scheduled_retrain"
TASK_RESCAN: Final = "musicindex.rescan"

TASK_QUEUES: Final = {
    TASK_INGEST: QUEUE_INGEST,
    TASK_EMBED: QUEUE_EMBED,
    TASK_TRAIN: QUEUE_TRAIN,
    TASK_RETRAIN_SCHEDULED: QUEUE_TRAIN,
    TASK_RESCAN: QUEUE_INGEST,
}
"""Every task name and the queue it runs on (the workers route by this table too)."""

_SEND_RETRY = {"max_retries": 3, "interval_start": 0.2, "interval_step": 0.5, "interval_max": 2}


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


@functools.lru_cache(maxsize=4)
def _sending_app(broker: str) -> Celery:
    """A client app with no result backend, for sending many jobs nobody waits on by result (the workers still store
    their results): the Redis backend would subscribe to each job's result channel, a round trip and a
    subscription per job (a million files: 31 000 of them)."""
    from celery import Celery

    app = Celery("musicindex-send", broker=broker)
    app.conf.update(broker_connection_retry_on_startup=True, broker_connection_timeout=5)
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

    def ingest_many(
        self, chunks: Iterable[Sequence[int]], *, label_from_tag: bool = False, roots: Sequence[str] | None = None
    ) -> int:
        """One ingest job per chunk of track ids, all sent over one broker connection in pipelines; how many."""
        from kombu.exceptions import OperationalError

        kwargs: dict[str, Any] = {"label_from_tag": label_from_tag}
        if roots is not None:
            kwargs["roots"] = list(roots)
        sent = 0
        app = _sending_app(broker_urls(self.settings)[0])
        kwargsrepr = repr(kwargs)
        try:
            # kombu's publish batch: the jobs go to Redis in pipelines of 500, not one round trip each
            with app.producer_or_acquire() as producer, producer.batch(max_size=500):
                for chunk in chunks:
                    ids = [int(t) for t in chunk]
                    app.send_task(
                        TASK_INGEST,
                        args=[ids],
                        kwargs=kwargs,
                        queue=TASK_QUEUES[TASK_INGEST],
                        producer=producer,
                        retry=False,  # the batch only buffers: a broker error surfaces when it is sent, below
                        argsrepr=f"[{len(ids)} track ids from {ids[0] if ids else '-'}]",  # no saferepr of each job
                        kwargsrepr=kwargsrepr,
                    )
                    sent += 1
        except OperationalError as exc:
            raise BrokerUnavailableError(
                f"cannot reach the Celery broker ({exc}) after queueing {sent} jobs. "
                "Check MUSICINDEX_BROKER_URL, or `musicindex services start`; "
                "`musicindex ingest` again queues the rest."
            ) from None
        return sent

    def embed(self, track_ids: Sequence[int], *, musicnn: bool = True) -> AsyncResult:
        """The musicnn embedding and tags of tracks (``musicnn`` False: already embedded by the ingest pass), then
        the predictions, clusters and embeddings of the active trained models, on the ``embed`` queue."""
        kwargs = {} if musicnn else {"musicnn": False}
        return self.send(TASK_EMBED, args=[[int(t) for t in track_ids]], kwargs=kwargs)

    def train(self, options: dict[str, Any]) -> AsyncResult:
        """A training run on the ``train`` queue; ``options``: ``TrainOptions.to_dict()`` (models included)."""
        return self.send(TASK_TRAIN, kwargs={"options": options})

    # ------------------------------------------------------------------ looking
    def ping_workers(self, timeout: float = 1.0, destination: list[str] | None = None) -> list[str]:
        """Names of the workers (or of those in ``destination``) that answer a ping within ``timeout`` seconds."""
        try:
            replies = self.app.control.ping(timeout=timeout, destination=destination) or []
        except Exception:  # noqa: BLE001 - an unreachable broker means: no worker answers
            return []
        return sorted(name for reply in replies for name in reply)

    def _redis(self) -> Any:
        import redis

        broker, _ = broker_urls(self.settings)
        return redis.Redis.from_url(redis_client_url(broker), socket_timeout=2)

    def queued_ingest_ids(self) -> Iterator[int]:
        """Track ids of the ingest jobs that wait in the broker or that a worker has reserved (Redis).

        With the tracks workers have locked, what "a job holds this track" means
        (``ingest.lifecycle.held_track_ids``) to ``ingest`` (no duplicate jobs) and ``--wait`` (work no job
        holds any more is queued again). Reads kombu's Redis layout: the queue's lists
        (one per priority step) and the ``unacked`` hash of reserved messages.
        """
        import redis

        queue = TASK_QUEUES[TASK_INGEST]
        client = self._redis()
        try:
            for key in (queue, *(f"{queue}\x06\x16{p}" for p in (3, 6, 9))):
                n = int(client.llen(key))
                for start in range(0, n, 2000):
                    for raw in client.lrange(key, start, start + 1999):
                        yield from _ingest_ids(raw)
            cursor = 0
            while True:
                cursor, entries = client.hscan("unacked", cursor, count=2000)
                for raw in entries.values():
                    try:
                        payload = json.loads(raw)[0]
                    except (ValueError, TypeError, IndexError, KeyError):
                        continue
                    yield from _ingest_ids(payload)
                if not cursor:
                    break
        except redis.RedisError as exc:
            raise BrokerUnavailableError(f"cannot read the ingest queue from the broker: {exc}") from None
        finally:
            client.close()

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


def _ingest_ids(message: Any) -> Iterator[int]:
    """The track ids of one kombu message of the ingest task (raw JSON, or already decoded)."""
    try:
        envelope = json.loads(message) if isinstance(message, (bytes, str)) else message
        if envelope.get("headers", {}).get("task") != TASK_INGEST:
            return
        body = envelope["body"]
        if envelope.get("properties", {}).get("body_encoding") == "base64":
            body = base64.b64decode(body)
        args = json.loads(body)[0]
        ids = args[0] if args else []
    except (ValueError, TypeError, KeyError, IndexError, AttributeError):
        return
    for t in ids:
        if isinstance(t, int):
            yield t
