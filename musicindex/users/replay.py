"""Replayed Subsonic tokens: a ``t``/``s`` pair proves the password for whoever holds it (a log line, a proxy's
history), so each pair is bound, for ``TTL`` seconds, to the address that used it first; the same pair from another
address within that time is refused as wrong credentials (and counted by the limiter).

The same address may reuse its pair: the Subsonic documentation asks for a new salt per call, but common players
(Feishin, Sonixd and others) compute one token at login and send it with every call, and refusing them would lock
those players out. A pair stolen from a log or a proxy is useless elsewhere while it is remembered, and every pair
dies with the password (``set_password`` forgets the user's pairs).

Kept in the memory of the process, at most ``PER_USER`` pairs per account (the oldest forgotten first) and
``MAX_USERS`` accounts: with several ``serve`` processes behind one proxy, each remembers its own pairs, so a replay
to another process within the time is not seen (docs/reliability.md; route one client to one process).
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict

TTL = 600.0
PER_USER = 4096
MAX_USERS = 10_000


class SaltCache:
    """(salt -> first address, when) per account, bounded."""

    def __init__(self, ttl: float = TTL, per_user: int = PER_USER, clock: object = time.monotonic):
        self.ttl, self.per_user = ttl, per_user
        self._clock = clock
        self._users: OrderedDict[int, OrderedDict[str, tuple[str, float]]] = OrderedDict()
        self._lock = threading.Lock()

    def first_use(self, user_id: int, salt: str, address: str) -> bool:
        """Whether ``salt`` of ``user_id`` may be used from ``address``: never seen within ``ttl``, or seen from this
        same address. The use is remembered."""
        now = float(self._clock())  # type: ignore[operator]
        key = salt[:200]
        with self._lock:
            salts = self._users.get(user_id)
            if salts is None:
                salts = self._users[user_id] = OrderedDict()
                while len(self._users) > MAX_USERS:
                    self._users.popitem(last=False)
            self._users.move_to_end(user_id)
            while salts:
                oldest_key, (_, first) = next(iter(salts.items()))
                if now - first < self.ttl:
                    break
                del salts[oldest_key]
            seen = salts.get(key)
            if seen is not None and now - seen[1] < self.ttl:
                return seen[0] == address
            salts[key] = (address, now)
            while len(salts) > self.per_user:
                salts.popitem(last=False)
            return True

    def forget(self, user_id: int) -> None:
        with self._lock:
            self._users.pop(user_id, None)
