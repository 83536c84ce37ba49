"""The Celery app of the musicindex workers.

Reliability settings (Celery's own): late acks with ``reject_on_worker_lost`` (a job whose
worker process is killed goes back to the queue and runs again elsewhere), prefetch of one
message per process, hard and soft time limits per job, and a short Redis visibility timeout
(``MUSICINDEX_VISIBILITY_TIMEOUT``, 60 s) with a lease that every live worker renews on the
jobs it holds (``workers.lease``): the jobs of a worker whose whole host died go back to the
queue within about a minute, and a job a live worker runs for longer is never delivered
twice. Task names and queues come from ``musicindex.dispatch``; creating the app starts
no server (``musicindex worker`` starts the embedded ones first).
"""

from __future__ import annotations

from typing import Any

from celery import Celery
from celery.signals import worker_ready

from musicindex.config import Settings, broker_urls, get_settings, redis_client_url
from musicindex.dispatch import TASK_QUEUES
from musicindex.vocab import QUEUE_INGEST
from workers import lease


def make_app(settings: Settings | None = None) -> Celery:
    settings = settings or get_settings()
    broker, backend = broker_urls(settings)
    app = Celery("musicindex", broker=broker, backend=backend, include=["workers.tasks", "workers.train_tasks"])
    app.conf.update(
        task_acks_late=True,
        task_track_started=True,  # a waiting client learns which worker runs its job (and notices it dying)
        task_reject_on_worker_lost=True,
        task_acks_on_failure_or_timeout=True,
        worker_prefetch_multiplier=1,
        # a new pool process warms up (numba kernels, the musicnn runtime) before it says it is up: on a busy
        # machine that takes longer than Celery's 4 s default, which then kills and respawns it in a loop
        worker_proc_alive_timeout=120,
        task_time_limit=settings.task_time_limit,
        task_soft_time_limit=int(settings.task_time_limit * 0.9),
        task_routes={name: {"queue": q} for name, q in TASK_QUEUES.items()},
        task_default_queue=QUEUE_INGEST,
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        result_expires=24 * 3600,
        broker_connection_retry_on_startup=True,
        # sweep for jobs whose lease ran out (their worker stopped renewing) every 10 s (kombu's default scans
        # every 100 s); the sweep's mutex expires with the timeout, so a worker dying while it holds it delays
        # nothing for long
        broker_transport_options={
            "visibility_timeout": settings.visibility_timeout,
            "unacked_restore_interval": lease.restore_interval(settings.visibility_timeout),
            "unacked_restore_throttle": 1,
            "unacked_mutex_expire": settings.visibility_timeout,
        },
        result_backend_transport_options={"visibility_timeout": settings.visibility_timeout},
        worker_send_task_events=False,
        worker_hijack_root_logger=False,
        timezone="UTC",
    )
    from workers.beat import beat_schedule

    app.conf.beat_schedule = beat_schedule(settings)
    return app


app = make_app()


@worker_ready.connect(weak=False)
def _start_lease(sender: Any = None, **_: Any) -> None:
    """The worker's main process renews the lease of every job it holds (``workers.lease``)."""
    settings = get_settings()
    lease.start(redis_client_url(broker_urls(settings)[0]), settings.visibility_timeout)
