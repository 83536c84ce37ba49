"""Secret keys kept in files under the data folder (``MUSICINDEX_HOME``): one random key per file name.

``secret(settings, "artifact.key")`` signs model artifacts (``ml/artifacts.py``); other secrets (e.g. the key that
encrypts stored passwords, ``"user.key"``) are other file names. A key file

* is created atomically: a random key is written to a temporary file in the same folder (mode 0600), synced, and
  linked into place with ``os.link``, which fails when the name exists. So every process that starts at the same
  time on a fresh data folder ends up with the one key that won, never with a half-written file;
* holds the key as hex text on one line (so it can be copied to another machine);
* is refused unless it is a regular file that belongs to the current user and that nobody else can read or write;
  it is opened with ``O_NOFOLLOW``, so a symlink planted at its name is refused too;
* is never logged: no message of this module holds a key.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import stat
from pathlib import Path

from musicindex.config import Settings
from musicindex.errors import ArtifactIntegrityError, InvalidArgumentError

MIN_BYTES = 16
MAX_BYTES = 1024


def secret(settings: Settings, filename: str, *, nbytes: int = 32) -> bytes:
    """The ``nbytes``-byte key kept in ``settings.home / filename``, created with a random key when absent.

    Raises ``ArtifactIntegrityError`` when the file cannot be read, is not private to the current user, or does not
    hold a key of ``nbytes`` bytes (delete it to have a new one made); ``InvalidArgumentError`` for a file name that
    is not a plain name in the data folder or a size outside [16, 1024] bytes.
    """
    name = _check_name(filename)
    if isinstance(nbytes, bool) or not isinstance(nbytes, int) or not MIN_BYTES <= nbytes <= MAX_BYTES:
        raise InvalidArgumentError(f"nbytes must be an integer between {MIN_BYTES} and {MAX_BYTES}, got {nbytes!r}")
    folder = Path(settings.home).expanduser()
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = folder / name
    if not os.path.lexists(path):
        _create(folder, path, nbytes)
    return _read(path, nbytes)


def _check_name(filename: object) -> str:
    if (
        not isinstance(filename, str)
        or not filename
        or filename in (".", "..")
        or "/" in filename
        or "\x00" in filename
        or len(filename) > 200
    ):
        raise InvalidArgumentError(
            f"a key file name must be a plain file name in the data folder (like 'user.key'), got {filename!r}"
        )
    return filename


def _create(folder: Path, path: Path, nbytes: int) -> None:
    """Write a new random key to a temporary file and link it to ``path`` unless another process was first."""
    tmp = folder / f".{path.name}.{os.getpid()}.{secrets.token_hex(8)}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        try:
            os.fchmod(fd, 0o600)  # whatever the umask
            os.write(fd, (secrets.token_bytes(nbytes).hex() + "\n").encode("ascii"))
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            os.link(tmp, path, follow_symlinks=False)
        except FileExistsError:
            return  # another process made it first: everyone uses that one
        _sync_folder(folder)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def _sync_folder(folder: Path) -> None:
    try:
        dfd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        return
    try:
        with contextlib.suppress(OSError):
            os.fsync(dfd)
    finally:
        os.close(dfd)


def _read(path: Path, nbytes: int) -> bytes:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
    except OSError as exc:
        why = "it is a symlink" if exc.errno == errno.ELOOP else (exc.strerror or str(exc))
        raise ArtifactIntegrityError(
            f"cannot read the key file {path}: {why}; delete it to have a new one made"
        ) from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise ArtifactIntegrityError(f"the key file {path} is not a regular file; delete it to have a new one made")
        if st.st_uid != os.geteuid() or stat.S_IMODE(st.st_mode) & 0o077:
            raise ArtifactIntegrityError(
                f"the key file {path} must belong to you and be private (chmod 600 {path}); refusing it"
            )
        raw = os.read(fd, 4 * MAX_BYTES)
    finally:
        os.close(fd)
    text = raw.decode("ascii", "replace").strip()
    try:
        key = bytes.fromhex(text)
    except ValueError:
        key = b""
    if len(key) != nbytes:
        raise ArtifactIntegrityError(
            f"the key file {path} does not hold a key of {nbytes} bytes (hex text); delete it to have a new one made"
        )
    return key


__all__ = ["secret"]
