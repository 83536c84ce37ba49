"""Secret keys under the data folder (``musicindex/keys.py``): created atomically, private, shared by every process.

No server is needed: these tests only make key files in temporary folders.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import os
import stat
from pathlib import Path

import pytest

from musicindex import keys
from musicindex.config import Settings
from musicindex.errors import ArtifactIntegrityError, InvalidArgumentError, MusicIndexError
from musicindex.ml.artifacts import KEY_FILE, signing_key

PROCESSES = 4
TRIALS = 50


def _race_worker(home: str, what: str, barrier, out) -> None:
    settings = Settings(home=Path(home))
    barrier.wait()
    try:
        key = signing_key(settings) if what == "artifact" else keys.secret(settings, "user.key")
        out.put(("ok", key.hex()))
    except (MusicIndexError, OSError) as exc:  # reported to the parent, which fails the test with it
        out.put(("error", f"{type(exc).__name__}: {exc}"))


def _race(tmp_path: Path, what: str) -> list[str]:
    """TRIALS times: PROCESSES processes released at once on a fresh data folder; the errors they met."""
    # forked from a clean single-threaded server process: forking the test process itself, whose other threads
    # (test clients, database pools) may hold a lock at that moment, can leave a child hanging on it
    ctx = mp.get_context("forkserver")
    ctx.set_forkserver_preload(["tests.test_keys"])
    problems: list[str] = []
    for trial in range(TRIALS):
        home = tmp_path / f"home{trial}"
        barrier = ctx.Barrier(PROCESSES)
        out = ctx.Queue()
        procs = [ctx.Process(target=_race_worker, args=(str(home), what, barrier, out)) for _ in range(PROCESSES)]
        for p in procs:
            p.start()
        results = [out.get(timeout=30) for _ in procs]
        for p in procs:
            p.join(10)
        errors = [r[1] for r in results if r[0] == "error"]
        problems += errors
        keys_seen = {r[1] for r in results if r[0] == "ok"}
        if len(keys_seen) > 1:
            problems.append(f"trial {trial}: {len(keys_seen)} different keys")
        leftovers = [p.name for p in home.iterdir() if p.name not in (KEY_FILE, "user.key")]
        if leftovers:
            problems.append(f"trial {trial}: temporary files left: {leftovers}")
    return problems


def test_artifact_key_creation_race_every_process_gets_the_same_key(tmp_path):
    """Before: the key file was created empty and written afterwards; a process reading it in between got
    "artifact key is too short; delete it" (52 of 200 trials on 4 processes)."""
    assert _race(tmp_path, "artifact") == []


def test_secret_creation_race_every_process_gets_the_same_key(tmp_path):
    assert _race(tmp_path, "user") == []


def test_secret_is_private_random_and_stable(tmp_path, caplog):
    settings = Settings(home=tmp_path / "home")
    with caplog.at_level(logging.DEBUG):
        a = keys.secret(settings, "user.key")
        b = keys.secret(settings, "user.key", nbytes=32)
    assert a == b and len(a) == 32 and a != keys.secret(settings, "other.key")
    assert len(keys.secret(settings, "long.key", nbytes=64)) == 64
    path = tmp_path / "home" / "user.key"
    st = path.stat()
    assert stat.S_IMODE(st.st_mode) == 0o600 and st.st_uid == os.geteuid()
    assert stat.S_IMODE((tmp_path / "home").stat().st_mode) == 0o700
    assert path.read_text().strip() == a.hex()  # hex text: copyable to another machine
    assert a.hex() not in caplog.text  # never logged
    # the artifact key keeps its meaning: the file's text, the same as MUSICINDEX_ARTIFACT_KEY=<that text>
    art = signing_key(settings)
    assert art == (tmp_path / "home" / KEY_FILE).read_text().strip().encode()
    assert signing_key(settings.with_(artifact_key=art.decode())) == art


def test_secret_refuses_a_key_file_others_can_read_or_that_is_a_symlink_or_damaged(tmp_path):
    settings = Settings(home=tmp_path / "home")
    key = keys.secret(settings, "user.key")
    path = tmp_path / "home" / "user.key"
    path.chmod(0o644)
    with pytest.raises(ArtifactIntegrityError, match="private") as info:
        keys.secret(settings, "user.key")
    assert key.hex() not in str(info.value)
    path.chmod(0o600)
    target = tmp_path / "elsewhere.key"
    target.write_text(key.hex())
    target.chmod(0o600)
    path.unlink()
    path.symlink_to(target)
    with pytest.raises(ArtifactIntegrityError, match="cannot read"):
        keys.secret(settings, "user.key")
    path.unlink()
    path.write_text("short\n")
    path.chmod(0o600)
    with pytest.raises(ArtifactIntegrityError, match="delete it"):
        keys.secret(settings, "user.key")
    with pytest.raises(ArtifactIntegrityError, match="delete it"):
        keys.secret(settings, "user.key", nbytes=64)  # a key of another length is refused too


@pytest.mark.parametrize(
    ("filename", "nbytes"),
    [("", 32), ("../x.key", 32), ("a/b.key", 32), (".", 32), ("..", 32), ("a\x00.key", 32), ("k", 8), ("k", 10**6),
     ("k", True), (b"k", 32)],
)  # fmt: skip
def test_secret_refuses_bad_arguments(tmp_path, filename, nbytes):
    with pytest.raises(InvalidArgumentError):
        keys.secret(Settings(home=tmp_path), filename, nbytes=nbytes)
