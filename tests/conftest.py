"""Shared fixtures: real servers, fresh databases, real Celery workers.

With no MUSICINDEX_DATABASE_URL / MUSICINDEX_BROKER_URL in the environment, the test
session starts the embedded PostgreSQL and Redis under a temporary MUSICINDEX_HOME and
stops them at the end. Each test that needs data gets its own freshly migrated database
on that server (``fresh_db``), so tests never see each other's rows.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine
from sqlalchemy.engine import make_url

from musicindex import servers
from musicindex.config import Settings, set_settings
from musicindex.db.scratch import scratch_database
from musicindex.db.session import Database
from musicindex.localworker import LocalWorker

# `make test` runs the suite in two pytest-xdist processes. numba (librosa's jitted kernels) writes its
# on-disk cache next to librosa's sources; two processes compiling into one cache at once crashed a worker
# (a segfault in librosa.util.peak_pick). Each xdist process gets a cache folder of its own, reused by reruns
# on this machine; the Celery workers a test starts inherit it. Set before numba is first imported.
if (_xdist := os.environ.get("PYTEST_XDIST_WORKER")) and "NUMBA_CACHE_DIR" not in os.environ:
    os.environ["NUMBA_CACHE_DIR"] = os.path.join(tempfile.gettempdir(), f"musicindex-test-numba-{_xdist}")

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
    database = servers.ensure_database(settings)
    broker = servers.ensure_broker(settings)
    settings = settings.with_(database_url=database, broker_url=broker)
    yield settings
    set_settings(None)
    if not os.environ.get("MUSICINDEX_TEST_HOME"):
        servers.stop(Settings.from_env(home=home))


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
    from musicindex.index import MusicIndex

    idx = MusicIndex(fresh_db, settings_for(fresh_db))
    yield idx


def run_cli(*args: str, env: dict | None = None, timeout: float = 120, input: str | None = None):
    """Run the real `musicindex` command in a subprocess."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "musicindex", *args],
        check=False,
        capture_output=True,
        text=True,
        env=full_env,
        timeout=timeout,
        cwd=REPO,
        input=input,
    )


class WorkerProcess(LocalWorker):
    """A real `musicindex worker` in a subprocess (tests stop it after 30 s of warm shutdown)."""

    def __init__(self, settings: Settings, queues: str, concurrency: int, name: str, log: Path):
        super().__init__(settings, queues, concurrency, name, log_path=log, stop_timeout=30)

    def wait_ready(self, timeout: float = 90) -> LocalWorker:
        return super().wait_ready(timeout)


@pytest.fixture
def workers(base_settings, tmp_path) -> Iterator[Callable[..., WorkerProcess]]:
    """Start real workers against a database: ``workers(settings, queues='ingest', concurrency=2)``.

    The broker's queues are purged first, so no job of an earlier test reaches them.
    """
    import redis as redis_lib

    client = redis_lib.Redis.from_url(servers.redis_client_url(base_settings.broker_url))
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


@pytest.fixture(scope="session")
def subsonic_library(base_settings, tmp_path_factory):
    """A tiny generated library served over /rest with users alice (admin) and bob (``tests/subsonic_support.py``):
    shared by the Subsonic test modules, which leave it as they found it."""
    from tests.subsonic_support import serve_library

    with serve_library(base_settings, tmp_path_factory.mktemp("sonic")) as served:
        yield served
