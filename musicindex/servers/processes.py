"""Processes of the embedded servers: running PostgreSQL's programs unprivileged (as root), pid files that are
verified before anything is signalled, and stopping a server through a pidfd. See ``musicindex.servers``."""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import os
import pwd
import select
import shutil
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from musicindex.errors import ServiceError


def package_dir(name: str, missing: str) -> Path:
    """Folder of an installed package, found without importing it (importing has side effects)."""
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise ServiceError(missing)
    return Path(next(iter(spec.submodule_search_locations)))


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


def is_root() -> bool:
    return os.geteuid() == 0


@functools.lru_cache(maxsize=1)
def namespace_ids() -> tuple[int, int]:
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


def in_userns(cmd: list[str]) -> list[str]:
    uid, gid = namespace_ids()
    return [sys.executable, "-I", "-S", "-c", _USERNS_HELPER, str(uid), str(gid), *cmd]


@functools.lru_cache(maxsize=1)
def userns_problem() -> str | None:
    """None when root can run a program unprivileged in a user namespace on this machine; else the reason."""
    true = shutil.which("true") or "/bin/true"
    try:
        res = subprocess.run(in_userns([true]), capture_output=True, text=True, timeout=60, cwd="/", check=False)
    except (OSError, subprocess.SubprocessError) as exc:
        return str(exc)
    if res.returncode == 0:
        return None
    return res.stderr.strip() or f"exit code {res.returncode}"


def no_userns_error(problem: str) -> ServiceError:
    return ServiceError(
        "PostgreSQL refuses to run as root. As root, musicindex runs the embedded PostgreSQL in a user namespace "
        "as an unprivileged uid (no new user, no permission change on this machine), but this machine does not "
        f"allow it: {problem}. Either run musicindex as a user that is not root; or allow user namespaces "
        "(sysctl user.max_user_namespaces=10000; in a container, a seccomp profile that allows "
        "unshare(CLONE_NEWUSER)); or set MUSICINDEX_DATABASE_URL to a PostgreSQL server with pgvector."
    )


def run(cmd: list[str], *, unprivileged: bool = False, timeout: float = 120) -> subprocess.CompletedProcess:
    """Run a command; unprivileged=True: as root, in the user namespace (PostgreSQL's programs)."""
    if unprivileged and is_root():
        cmd = in_userns(cmd)
    return subprocess.run(
        cmd,
        capture_output=True,
        text=True,
        timeout=timeout,
        start_new_session=True,  # the daemon must not die with our process group
        cwd="/",
        check=False,
    )


# ----------------------------------------------------------------------------
# pid files: is that pid really our server?
def pid_alive(pid: int) -> bool:
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


def read_pid(path: Path) -> int | None:
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


def our_process(pid: int, program: str, folder: Path) -> bool:
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
    return name == program and (cwd.st_dev, cwd.st_ino) == (want.st_dev, want.st_ino) and pid_alive(pid)


def processes_in(program: str, folder: Path) -> list[int]:
    """Every live ``program`` working in ``folder`` (see our_process), whatever the pid files say."""
    if Path("/proc/self").is_dir():
        pids = [int(name) for name in os.listdir("/proc") if name.isdigit()]
    else:
        import psutil

        pids = psutil.pids()
    return [pid for pid in pids if pid != os.getpid() and our_process(pid, program, folder)]


def signal_and_wait(pid: int, sig: int, still_ours: Callable[[], bool], timeout: float, what: str) -> bool:
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
            elif not pid_alive(pid):
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
    listen: list[str] = field(default_factory=list)
    """The TCP URLs other hosts reach an embedded server at (password hidden); empty: unix socket only."""
