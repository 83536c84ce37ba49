"""Leases on the jobs a worker holds: a live worker keeps its jobs, a dead one's come back within a minute.

kombu's Redis transport keeps every delivered and not yet acknowledged message in the ``unacked`` hash, with the
time it was delivered in the ``unacked_index`` sorted set; every consumer sweeps that set every
``unacked_restore_interval`` seconds and puts back in its queue each message delivered more than
``visibility_timeout`` seconds ago. On its own that is a bad choice between a long timeout (the jobs of a worker host
that died wait that long: 1800 s here before) and a short one (a job a live worker runs, or holds for the ETA of a
retry, longer than the timeout is delivered a second time).

The lease makes both hold: the main process of every ``musicindex worker`` renews, every sixth of the visibility
timeout, the delivery time of every message it holds (reserved, running, or waiting for its retry's countdown). Only
the messages of a worker that stopped renewing (its host died, its link was cut, its main process was killed) grow
older than the timeout; a surviving worker's sweep puts them back in the queue within ``visibility_timeout +
restore_interval`` seconds (70 s with the defaults), and a survivor runs them. The renewal is a thread of its own, so
it goes on while the worker finishes its jobs after a warm shutdown was asked for.

The clocks of the worker hosts must agree to well within the timeout (NTP): a lease is a wall-clock time written by
one host and compared by another.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable

log = logging.getLogger(__name__)

UNACKED_INDEX = "unacked_index"
"""kombu's sorted set of delivery times of unacknowledged messages (``Channel.unacked_index_key``)."""


def renew_interval(visibility_timeout: float) -> float:
    """Seconds between two renewals: a sixth of the timeout (five renewals may fail before a lease runs out)."""
    return max(1.0, visibility_timeout / 6)


def restore_interval(visibility_timeout: float) -> int:
    """Seconds between two sweeps for messages whose lease ran out (kombu's ``unacked_restore_interval``)."""
    return max(1, min(10, int(visibility_timeout // 3)))


def held_delivery_tags() -> list[str]:
    """The delivery tags of the messages this worker holds: every request it reserved and has not finished
    (waiting for a pool process, running, or waiting for its ETA)."""
    from celery.worker import state

    requests = list(state.requests.values())  # one C-level copy under the GIL: safe beside the consumer thread
    tags = {getattr(getattr(r, "message", None), "delivery_tag", None) for r in requests}
    return sorted(str(t) for t in tags if t)


def renew(client, tags: Iterable[str], now: float | None = None) -> int:
    """Set the delivery time of each of ``tags`` still unacknowledged to ``now``; how many were renewed.

    ``XX``: a message acknowledged meanwhile is not added back."""
    stamp = time.time() if now is None else now
    mapping = dict.fromkeys(tags, stamp)
    if not mapping:
        return 0
    return int(client.zadd(UNACKED_INDEX, mapping, xx=True, ch=True) or 0)


class LeaseKeeper(threading.Thread):
    """The renewing thread of a worker's main process (a daemon: it ends with the process)."""

    def __init__(self, redis_url: str, visibility_timeout: float):
        super().__init__(name="musicindex-lease", daemon=True)
        self.redis_url = redis_url
        self.interval = renew_interval(visibility_timeout)
        self.stopped = threading.Event()
        self.renewed = 0

    def run(self) -> None:
        import redis

        client = None
        failing = False
        while not self.stopped.wait(self.interval):
            try:
                if client is None:
                    client = redis.Redis.from_url(self.redis_url, socket_timeout=5, socket_connect_timeout=5)
                self.renewed += renew(client, held_delivery_tags())
                if failing:
                    log.warning("job leases renewed again")
                failing = False
            except redis.RedisError as exc:
                if not failing:  # once per outage, not every few seconds
                    log.warning("cannot renew the leases of this worker's jobs (%s); retrying", exc)
                failing = True
                client = None


_keeper: LeaseKeeper | None = None


def start(redis_url: str, visibility_timeout: float) -> LeaseKeeper | None:
    """Start the renewing thread once per process; None for a broker that is not Redis."""
    global _keeper
    if _keeper is None or not _keeper.is_alive():
        if not redis_url.startswith(("redis://", "rediss://", "unix://")):
            log.warning("the broker %s is not Redis: job leases are not renewed", redis_url.split("://", 1)[0])
            return None
        _keeper = LeaseKeeper(redis_url, visibility_timeout)
        _keeper.start()
    return _keeper
