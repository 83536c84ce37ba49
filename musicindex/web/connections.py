"""Connections of ``musicindex serve``: a deadline for a request's headers and a cap on connections per address.

uvicorn has neither (its keep-alive timer starts only after a first answer, and ``limit_concurrency`` counts
connections that never sent a byte: 256 silent connections made every other client's request a 503). So ``serve``
runs uvicorn's own HTTP protocol class (h11, or httptools when installed) subclassed by :func:`guarded_protocol`:

* **header deadline** (``MUSICINDEX_HEADER_TIMEOUT``): from the connection, or from the first byte after an answer,
  a client has that long to complete the request's headers; then it gets ``408 Request Timeout`` and the
  connection is closed;
* **no slot for silence**: a connection counts towards uvicorn's ``limit_concurrency`` only from its first complete
  request on (uvicorn refuses requests with 503 once that many connections are open), so connections that never
  finish their headers cannot make other clients' requests fail; they also do not hold up a shutdown;
* **per-address cap** (``MUSICINDEX_MAX_CONNECTIONS_PER_ADDRESS``): a connection beyond the cap from one peer
  address (an IPv6 /64 counts as one) is answered ``503`` and closed at once, before anything is read. Trusted
  proxies (``MUSICINDEX_TRUSTED_PROXIES``) are not capped: their connections carry many clients.

Both act on the event loop with timers and counters only (no thread, no database).
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
from typing import Any

from musicindex.config import Settings
from musicindex.users.limiter import address_key

log = logging.getLogger(__name__)


def _raw_answer(status: str, text: str) -> bytes:
    body = text.encode()
    return (
        f"HTTP/1.1 {status}\r\ncontent-type: text/plain; charset=utf-8\r\nconnection: close\r\n"
        f"content-length: {len(body)}\r\n\r\n"
    ).encode() + body


TIMEOUT_ANSWER = _raw_answer("408 Request Timeout", "the request's headers did not arrive in time")
BUSY_ANSWER = _raw_answer("503 Service Unavailable", "too many connections from your address; close some and retry")


def _trusted(address: str, networks: list[Any]) -> bool:
    try:
        ip = ipaddress.ip_address(address.split("%", maxsplit=1)[0])
    except ValueError:
        return False
    return any(ip in n for n in networks)


def guarded_protocol(settings: Settings, base: type[asyncio.Protocol] | None = None) -> type[asyncio.Protocol]:
    """uvicorn's HTTP protocol class (``base``: the one ``http="auto"`` picks) with the header deadline and the
    per-address cap of ``settings``; pass it as ``uvicorn.run(..., http=...)``. Each call has its own counters."""
    if base is None:
        from uvicorn.protocols.http.auto import AutoHTTPProtocol

        base = AutoHTTPProtocol
    timeout = float(settings.header_timeout)
    cap = int(settings.max_connections_per_address)
    trusted = settings.trusted_proxy_networks
    open_per_address: dict[str, int] = {}

    class GuardedProtocol(base):  # type: ignore[valid-type,misc]
        _mi_address: str | None = None
        _mi_deadline: asyncio.TimerHandle | None = None
        _mi_waiting: Any = None

        def connection_made(self, transport: asyncio.Transport) -> None:
            super().connection_made(transport)
            self.connections.discard(self)  # counted from its first request on (data_received)
            peer = self.client[0] if self.client else None
            if peer is not None and not _trusted(peer, trusted):
                self._mi_address = address_key(peer)
                count = open_per_address.get(self._mi_address, 0) + 1
                open_per_address[self._mi_address] = count
                if count > cap:
                    if count == cap + 1:
                        log.warning("%s has %d connections open (the cap); refusing more", self._mi_address, cap)
                    transport.write(BUSY_ANSWER)
                    transport.close()
                    return
            self._mi_arm()

        def connection_lost(self, exc: Exception | None) -> None:
            self._mi_cancel()
            if self._mi_address is not None:
                left = open_per_address.get(self._mi_address, 1) - 1
                if left > 0:
                    open_per_address[self._mi_address] = left
                else:
                    open_per_address.pop(self._mi_address, None)
                self._mi_address = None
            super().connection_lost(exc)

        def data_received(self, data: bytes) -> None:
            super().data_received(data)
            if self.cycle is not self._mi_waiting:  # a new request's headers are complete
                self._mi_cancel()
                if not self.transport.is_closing():
                    self.connections.add(self)
            if self._mi_deadline is None and (self.cycle is None or self.cycle.response_complete):
                self._mi_arm()  # bytes of the next request: its headers have the deadline too

        def _mi_arm(self) -> None:
            if self._mi_deadline is None and not self.transport.is_closing():
                self._mi_waiting = self.cycle
                self._mi_deadline = self.loop.call_later(timeout, self._mi_expired)

        def _mi_cancel(self) -> None:
            if self._mi_deadline is not None:
                self._mi_deadline.cancel()
                self._mi_deadline = None

        def _mi_expired(self) -> None:
            self._mi_deadline = None
            if self.cycle is self._mi_waiting and not self.transport.is_closing():
                self.transport.write(TIMEOUT_ANSWER)
                self.transport.close()

    GuardedProtocol.open_per_address = open_per_address
    return GuardedProtocol
