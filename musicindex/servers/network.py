"""TCP listening of the embedded servers, for workers on other hosts: ``musicindex services start --listen ADDR
--password-file FILE``.

By default the embedded PostgreSQL and Redis listen only on unix sockets in private folders. With ``--listen``
they also listen on the given addresses (PostgreSQL on port 5432, Redis on 6379), and every TCP connection needs
the password: PostgreSQL's ``postgres`` role gets it (stored as a SCRAM-SHA-256 verifier; ``pg_hba.conf`` asks
for it on every TCP connection), and Redis requires it of every connection (``requirepass``; the local processes'
URL then carries it). The setting is kept in ``HOME/network.json`` (0600), so a server started again later (by any
local process) listens the same way; ``--listen none`` goes back to sockets only.

The password comes from a file (never from the command line, which other users can read in ``ps``): its first
line, 16 to 200 characters among letters, digits and ``-._~`` (so it goes into a URL and a config file as it is;
``openssl rand -hex 32`` makes one). The file must be private (not readable by group or others).
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import re
import stat
from pathlib import Path

from musicindex.config import Listen, ServicePaths
from musicindex.errors import InvalidArgumentError
from musicindex.servers.files import ensure_home, open_file

PASSWORD_RE = re.compile(r"[A-Za-z0-9._~-]{16,200}")
NONE_WORDS = ("none", "local", "")


def parse_addresses(text: str) -> tuple[str, ...]:
    """``ADDR[,ADDR...]`` as IP addresses; ``()`` for ``none`` (sockets only). InvalidArgumentError otherwise."""
    if text.strip().lower() in NONE_WORDS:
        return ()
    out = []
    for raw in text.split(","):
        part = raw.strip().strip("[]")
        try:
            out.append(str(ipaddress.ip_address(part)))
        except ValueError:
            raise InvalidArgumentError(
                f"--listen {text!r}: {part!r} is not an IP address. Give the addresses of this host that the other "
                "hosts reach it at, comma-separated (e.g. --listen 10.0.0.5), or 'none' for unix sockets only"
            ) from None
    return tuple(dict.fromkeys(out))


def read_password_file(path: Path) -> str:
    """The password on the first line of a private file; InvalidArgumentError saying what is wrong."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError as exc:
        raise InvalidArgumentError(f"--password-file {path}: {exc.strerror}") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise InvalidArgumentError(f"--password-file {path} is not a regular file")
        if stat.S_IMODE(st.st_mode) & 0o077:
            raise InvalidArgumentError(
                f"--password-file {path} can be read by other users (mode {stat.S_IMODE(st.st_mode):04o}): "
                f"chmod 600 {path}"
            )
        raw = os.read(fd, 4096)
    finally:
        os.close(fd)
    password = raw.decode("utf-8", "replace").split("\n", 1)[0].strip()
    if not PASSWORD_RE.fullmatch(password):
        raise InvalidArgumentError(
            f"--password-file {path}: the password (its first line) must be 16 to 200 characters among letters, "
            "digits and -._~ (e.g. `openssl rand -hex 32 > FILE`)"
        )
    return password


def save(paths: ServicePaths, listen: Listen | None) -> bool:
    """Keep ``listen`` (None: sockets only) in ``HOME/network.json``; whether it differs from what was kept."""
    before = paths.listen()
    if before == listen:
        return False
    if listen is None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(paths.network_file)
        return True
    ensure_home(paths.home)
    tmp = paths.network_file.with_name(f".network.{os.getpid()}.tmp")
    fd = open_file(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    with os.fdopen(fd, "w") as fh:
        json.dump({"addresses": list(listen.addresses), "password": listen.password}, fh)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, paths.network_file)
    return True


def pg_hba() -> str:
    """The client authentication of the embedded PostgreSQL, written before every start: the unix socket (in a
    0700 folder of the data folder's owner) is trusted, every TCP connection needs the password."""
    return (
        "# written by musicindex before every start of the server (changes here are replaced)\n"
        "# the unix socket: its folder is private (0700), only this user reaches it\n"
        "local all all trust\n"
        "# TCP (musicindex services start --listen): always the password (SCRAM-SHA-256)\n"
        "host all all all scram-sha-256\n"
    )
