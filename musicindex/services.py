"""Deprecated name of :mod:`musicindex.servers` (the embedded PostgreSQL and Redis), kept for one release."""

from __future__ import annotations

import warnings

from musicindex.servers import (
    EmbeddedPostgres,
    EmbeddedRedis,
    ServicePaths,
    ServiceStatus,
    database_url,
    ensure_broker,
    ensure_database,
    paths_for,
    redact_url,
    redis_client_url,
    start,
    status,
    stop,
)

__all__ = [
    "EmbeddedPostgres",
    "EmbeddedRedis",
    "ServicePaths",
    "ServiceStatus",
    "database_url",
    "ensure_broker",
    "ensure_database",
    "paths_for",
    "redact_url",
    "redis_client_url",
    "start",
    "status",
    "stop",
]

warnings.warn(
    "musicindex.services is deprecated and will be removed: use musicindex.servers", DeprecationWarning, stacklevel=2
)
