"""Shared fixtures: real servers, fresh databases, real Celery workers.

With no MUSICINDEX_DATABASE_URL / MUSICINDEX_BROKER_URL in the environment, the test
session starts the embedded PostgreSQL and Redis under a temporary MUSICINDEX_HOME and
stops them at the end. Each test that needs data gets its own freshly migrated database
on that server (``fresh_db``), so tests never see each other's rows.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Callable, Iterator

import pytest
from sqlalchemy import create_engine
from sqlalchemy.engine import make_url

from musicindex import services
from musicindex.config import Settings, set_settings
from musicindex.db.scratch import scratch_database
from musicindex.db.session import Database

REPO = Path(__file__).resolve().parents[1]


def url_str(url) -> str:
    return make_url(url).render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def base_settings(tmp_path_factory) -> Iterator[Settings]:
    """Settings of the test session: a temporary home, embedded servers unless URLs are set."""
    home = Path(os.environ.get("MUSICINDEX_TEST_HOME") or tmp_path_factory.mktemp("mihome"))
    settings = Settings.from_env(home=home)
    os.environ["MUSICINDEX_HOME"] = str(home)
    set_settings(settings)
    database = services.ensure_database(settings)
    broker = services.ensure_broker(settings)
    settings = settings.with_(database_url=database, broker_url=broker)
    yield settings
    set_settings(None)
    if not os.environ.get("MUSICINDEX_TEST_HOME"):
        services.stop(Settings.from_env(home=home))


@pytest.fixture(scope="session")
def admin_engine(base_settings):
    url = make_url(base_settings.database_url).set(database="postgres")
    engine = create_engine(url, isolation_level="AUTOCOMMIT", pool_size=1)
    yield engine
    engine.dispose()


@pytest.fixture
def empty_db(base_settings) -> Iterator[Database]:
    """A new, empty database on the test server (no migrations applied)."""
    with scratch_database(base_settings.database_url, prefix="mi_test", migrate=False) as db:
        yield db


@pytest.fixture
def fresh_db(empty_db) -> Database:
    """A new database migrated to head."""
    empty_db.upgrade()
    return empty_db


@pytest.fixture
def settings_for(base_settings) -> Callable[[Database], Settings]:
    def make(db: Database, **changes) -> Settings:
        return base_settings.with_(database_url=db.url, **changes)
    return make


@pytest.fixture
def index(fresh_db, settings_for):
    from musicindex.api import MusicIndex

    idx = MusicIndex(fresh_db, settings_for(fresh_db))
    yield idx


def run_cli(*args: str, env: dict | None = None, timeout: float = 120, input: str | None = None):
    """Run the real `musicindex` command in a subprocess."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run([sys.executable, "-m", "musicindex.cli", *args], capture_output=True, text=True,
                          env=full_env, timeout=timeout, cwd=REPO, input=input)


def settings_env(settings: Settings) -> dict[str, str]:
    env = {"MUSICINDEX_HOME": str(settings.home), "MUSICINDEX_DATABASE_URL": settings.database_url,
           "MUSICINDEX_BROKER_URL": settings.broker_url}
    for key in ("window_offset", "window_duration", "task_time_limit", "visibility_timeout", "ingest_chunk"):
        env[f"MUSICINDEX_{key.upper()}"] = str(getattr(settings, key))
    return env


class WorkerProcess:
    """A real `musicindex worker` in a subprocess."""

    def __init__(self, settings: Settings, queues: str, concurrency: int, name: str, log: Path):
        self.settings = settings
        self.name = name
        self.log_path = log
        self.log = open(log, "w")
        env = {**os.environ, **settings_env(settings), "PYTHONUNBUFFERED": "1"}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "musicindex.cli", "worker", "-Q", queues, "-c", str(concurrency),
             "-n", f"{name}@%h", "--loglevel", "INFO"],
            stdout=self.log, stderr=subprocess.STDOUT, env=env, cwd=REPO, start_new_session=True)

    def wait_ready(self, timeout: float = 90) -> None:
        from musicindex import taskclient

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"worker exited with {self.proc.returncode}:\n{self.log_path.read_text()[-3000:]}")
            if any(n.startswith(self.name + "@") for n in taskclient.ping_workers(self.settings, timeout=0.5)):
                return
            time.sleep(0.3)
        raise RuntimeError(f"worker did not answer within {timeout} s:\n{self.log_path.read_text()[-3000:]}")

    def children(self) -> list[int]:
        import psutil

        try:
            return [c.pid for c in psutil.Process(self.proc.pid).children(recursive=True)]
        except psutil.NoSuchProcess:
            return []

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        self.log.close()


@pytest.fixture
def workers(base_settings, tmp_path) -> Iterator[Callable[..., WorkerProcess]]:
    """Start real workers against a database: ``workers(settings, queues='ingest', concurrency=2)``.

    The broker's queues are purged first, so no job of an earlier test reaches them.
    """
    import redis as redis_lib

    client = redis_lib.Redis.from_url(services.redis_client_url(base_settings.broker_url))
    client.flushdb()
    client.close()
    started: list[WorkerProcess] = []

    def start(settings: Settings, queues: str = "ingest", concurrency: int = 2, wait: bool = True) -> WorkerProcess:
        name = f"w{len(started)}-{uuid.uuid4().hex[:6]}"
        w = WorkerProcess(settings, queues, concurrency, name, tmp_path / f"{name}.log")
        started.append(w)
        if wait:
            w.wait_ready()
        return w

    yield start
    for w in started:
        w.stop()
