"""Private folders and files of the embedded servers, and the lock every local process takes on the data folder.

Folders we create are made with ``mkdir(path, 0o700)`` and checked through an ``O_NOFOLLOW`` descriptor; files we
write (lock, ``redis.conf``, logs) are opened with ``O_NOFOLLOW`` (created 0600). See ``musicindex.servers``.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import pwd
import stat
from collections.abc import Iterator
from pathlib import Path

from musicindex.config import ServicePaths
from musicindex.errors import ServiceError


def user_name(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return f"uid {uid}"


def ensure_home(home: Path) -> None:
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
            f"MUSICINDEX_HOME={home} belongs to {user_name(st.st_uid)}, not to {user_name(me)}: the embedded "
            "servers keep their data, sockets and lock file there, so it must be yours. Set MUSICINDEX_HOME to a "
            "folder of yours (or chown this one)."
        )
    if st.st_mode & stat.S_IWOTH and not st.st_mode & stat.S_ISVTX:
        raise ServiceError(
            f"MUSICINDEX_HOME={home} is writable by everyone: chmod o-w it, or set MUSICINDEX_HOME to a private folder"
        )


def private_dir(path: Path, *, repair: bool = False) -> Path:
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
            problems.append(f"belongs to {user_name(st.st_uid)}, not to {user_name(me)}")
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


def socket_folder(path: Path, home: Path) -> Path:
    """The private folder of a socket; when it lives in /tmp, its parent is checked the same way."""
    if path.parent != home:
        private_dir(path.parent)
    return private_dir(path)


def open_file(path: Path, flags: int) -> int:
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
        raise ServiceError(f"{path} is not a regular file of {user_name(os.geteuid())}: remove it and start again")
    if stat.S_IMODE(st.st_mode) & 0o077:
        os.fchmod(fd, 0o600)
    return fd


def touch(path: Path) -> None:
    """Create (or check) a log file that a server appends to, before the server follows any link there."""
    os.close(open_file(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND))


# ----------------------------------------------------------------------------
@contextlib.contextmanager
def locked(paths: ServicePaths) -> Iterator[None]:
    ensure_home(paths.home)
    fd = open_file(paths.lock, os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock
