"""The one limit on proving a password or a key (docs/reliability.md, "Authentication").

Every way to prove who one is (the web login, the account page's current password, Subsonic ``p``, ``t``+``s`` and
``apiKey``, the Python API) goes through ``UserService.authenticate_*``, which asks this limiter first. Failures are
counted twice:

* per (address, account): ``PAIR_LIMIT`` failures within ``PAIR_WINDOW`` seconds refuse that pair for a cool-down
  that doubles at each new block (``PAIR_COOLDOWN`` .. ``MAX_COOLDOWN``), so a client with a stale password fails
  less and less often and never blocks anyone else;
* per address: a slower budget (``ADDRESS_LIMIT`` failures within ``ADDRESS_WINDOW``) against one client trying many
  names; exhausted, the address is refused for ``ADDRESS_COOLDOWN`` seconds.

A refused attempt is not checked at all and is not counted again (so a retrying client does not spend the address's
budget). The refusal is :class:`~musicindex.errors.TooManyAttemptsError` ("too many attempts, retry in N s"):
HTTP 429 with ``Retry-After`` on the web, the protocol's error with the same text on ``/rest``. The account is its
normalised name (``accounts.name_key``: NFKC, case-folded), the same key the account lookup uses, whether it exists
or not (the answer never tells). IPv6 addresses count per /64 (one host holds a whole /64).

The tables live in the memory of the process (bounded: ``MAX_TRACKED`` keys each); several ``serve`` processes each
keep their own (docs/reliability.md says so).
"""

from __future__ import annotations

import contextvars
import ipaddress
import logging
import math
import threading
import time
from collections import OrderedDict, deque
from dataclasses import dataclass, field

from musicindex.errors import TooManyAttemptsError

log = logging.getLogger(__name__)

PAIR_LIMIT = 10
PAIR_WINDOW = 60.0
PAIR_COOLDOWN = 60.0
MAX_COOLDOWN = 3600.0
ADDRESS_LIMIT = 100
ADDRESS_WINDOW = 900.0
ADDRESS_COOLDOWN = 900.0
MAX_TRACKED = 20_000
LOCAL = "local"
"""The address of a caller of the Python API or the CLI (no network peer)."""

client_address: contextvars.ContextVar[str] = contextvars.ContextVar("musicindex_client_address", default=LOCAL)
"""The network address of the caller in this context (set by the web server's request guard for each request: the
peer, or the client a trusted proxy names); ``authenticate_*`` count failures under it."""


def address_key(address: str | None) -> str:
    """What an address counts as: the address itself, an IPv6 one by its /64."""
    raw = (address or LOCAL).strip()
    try:
        ip = ipaddress.ip_address(raw.split("%")[0])
    except ValueError:
        return raw[:100]
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        if not ip.is_loopback:
            return str(ipaddress.IPv6Network((int(ip), 64), strict=False))
    return str(ip)


@dataclass
class _Entry:
    failures: deque[float] = field(default_factory=deque)
    blocked_until: float = 0.0
    blocks: int = 0
    """Blocks in a row (the next cool-down doubles); forgotten after a success or a quiet ``MAX_COOLDOWN``."""
    last: float = 0.0


class AttemptLimiter:
    """Failures per (address, account) and per address; see the module docstring."""

    def __init__(
        self,
        pair_limit: int = PAIR_LIMIT,
        pair_window: float = PAIR_WINDOW,
        pair_cooldown: float = PAIR_COOLDOWN,
        address_limit: int = ADDRESS_LIMIT,
        address_window: float = ADDRESS_WINDOW,
        address_cooldown: float = ADDRESS_COOLDOWN,
        clock: object = time.monotonic,
    ):
        self.pair_limit, self.pair_window, self.pair_cooldown = pair_limit, pair_window, pair_cooldown
        self.address_limit, self.address_window, self.address_cooldown = (
            address_limit, address_window, address_cooldown,
        )  # fmt: skip
        self._clock = clock
        self._pairs: OrderedDict[tuple[str, str], _Entry] = OrderedDict()
        self._addresses: OrderedDict[str, _Entry] = OrderedDict()
        self._lock = threading.Lock()

    def _now(self) -> float:
        return float(self._clock())  # type: ignore[operator]

    def check(self, address: str | None, account: str) -> None:
        """TooManyAttemptsError when the pair or the address is cooling down; nothing otherwise."""
        addr = address_key(address)
        now = self._now()
        with self._lock:
            until = max(
                getattr(self._pairs.get((addr, account)), "blocked_until", 0.0),
                getattr(self._addresses.get(addr), "blocked_until", 0.0),
            )
        if until > now:
            raise TooManyAttemptsError(math.ceil(until - now))

    def fail(self, address: str | None, account: str) -> None:
        """Count a failed attempt of ``account`` from ``address`` (may start a cool-down)."""
        addr = address_key(address)
        now = self._now()
        with self._lock:
            pair = self._entry(self._pairs, (addr, account), now)
            if self._count(pair, now, self.pair_limit, self.pair_window):
                if now - pair.last > MAX_COOLDOWN:
                    pair.blocks = 0
                cooldown = min(MAX_COOLDOWN, self.pair_cooldown * 2**pair.blocks)
                pair.blocks += 1
                pair.blocked_until = now + cooldown
                log.warning(
                    "%d failed attempts for one account from %s within %.0f s: refused for %.0f s",
                    self.pair_limit, addr, self.pair_window, cooldown,
                )  # fmt: skip
            pair.last = now
            whole = self._entry(self._addresses, addr, now)
            if self._count(whole, now, self.address_limit, self.address_window):
                whole.blocked_until = now + self.address_cooldown
                log.warning(
                    "%d failed attempts from %s within %.0f s: the address is refused for %.0f s",
                    self.address_limit, addr, self.address_window, self.address_cooldown,
                )  # fmt: skip

    def succeed(self, address: str | None, account: str) -> None:
        """A proof that held: the pair's failures and blocks are forgotten (the address's budget is not)."""
        with self._lock:
            self._pairs.pop((address_key(address), account), None)

    @staticmethod
    def _count(entry: _Entry, now: float, limit: int, window: float) -> bool:
        """Add a failure at ``now``; whether it reaches ``limit`` within ``window`` (then the count restarts)."""
        entry.failures.append(now)
        while entry.failures and entry.failures[0] <= now - window:
            entry.failures.popleft()
        if len(entry.failures) >= limit:
            entry.failures.clear()
            return True
        return False

    @staticmethod
    def _entry(table: OrderedDict, key: object, now: float) -> _Entry:
        entry = table.get(key)
        if entry is None:
            entry = table[key] = _Entry()
            while len(table) > MAX_TRACKED:  # forget the least recently failing key that is not cooling down
                oldest, old = next(iter(table.items()))
                table.pop(oldest)
                if old.blocked_until > now:  # still cooling down: keep it (at the end)
                    table[oldest] = old
                    break
        else:
            table.move_to_end(key)
        return entry
