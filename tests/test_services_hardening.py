"""Embedded servers: stale pid files, private folders and files, no side effects on the host as root.

Each test starts (or refuses to start) servers of its own, in a data folder of its own.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path

import psycopg2
import pytest
import redis as redis_lib

from musicindex import config, servers
from musicindex.config import Settings
from musicindex.errors import ServiceError

IS_ROOT = os.geteuid() == 0
needs_root = pytest.mark.skipif(not IS_ROOT, reason="checks what happens when musicindex runs as root")


# --------------------------------------------------------------------------- helpers
@pytest.fixture
def homes() -> Iterator[callable]:
    """``homes(path)``: settings for a data folder at path; its servers are stopped, its /tmp folders removed after."""
    made: list[Settings] = []

    def make(home: Path) -> Settings:
        settings = Settings.from_env({}, home=home)
        made.append(settings)
        return settings

    yield make
    for settings in made:
        with contextlib.suppress(ServiceError):  # a refused folder refuses the stop as well
            servers.stop(settings)
        paths = servers.paths_for(settings)
        for sock in (paths.pg_socket_dir, paths.redis_socket_dir):
            if sock.parent != paths.home:
                if sock.parent.is_symlink():
                    sock.parent.unlink()
                else:
                    shutil.rmtree(sock.parent, ignore_errors=True)


@pytest.fixture
def unrelated() -> Iterator[subprocess.Popen]:
    """A live process that has nothing to do with musicindex."""
    proc = subprocess.Popen(["sleep", "120"])
    yield proc
    proc.kill()
    proc.wait()


def _pg_answers(settings: Settings) -> bool:
    paths = servers.paths_for(settings)
    conn = psycopg2.connect(
        dbname=config.DB_NAME,
        user=config.PG_USER,
        host=str(paths.pg_socket_dir),
        port=config.PG_PORT,
        connect_timeout=5,
    )
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT 1")
            return cur.fetchone() == (1,)
    finally:
        conn.close()


def _redis_answers(settings: Settings) -> bool:
    r = redis_lib.Redis.from_url(
        servers.redis_client_url(servers.EmbeddedRedis(servers.paths_for(settings)).url), socket_timeout=5
    )
    try:
        return r.ping()
    finally:
        r.close()


def _long_home(tmp_path: Path) -> Path:
    """A data folder whose path is too long for a unix socket: the sockets go to /tmp."""
    home = tmp_path / ("h" * 90)
    home.mkdir()
    paths = servers.ServicePaths(home)
    assert home not in (paths.redis_socket_dir.parent, paths.pg_socket_dir.parent)
    return home


def _mode(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


# --------------------------------------------------------------------------- 7. stale pid files
def test_pid_files_holding_an_unrelated_live_process_are_stale(tmp_path, homes, unrelated):
    """After a reboot the pid in a pid file may belong to anything: never report it, signal it or wait for it."""
    home = tmp_path / "h"
    home.mkdir()
    settings = homes(home)
    paths = servers.paths_for(settings)
    servers.ensure_database(settings)
    servers.ensure_broker(settings)
    assert sorted(servers.stop(settings)) == ["postgresql", "redis"]
    # as if the machine had rebooted and the pids were reused by an unrelated process
    pg_pidfile = paths.pgdata / "postmaster.pid"
    pg_pidfile.write_text(
        f"{unrelated.pid}\n{paths.pgdata}\n1700000000\n5432\n{paths.pg_socket_dir}\n\n  5432001  0\nready   \n"
    )
    paths.redis_pidfile.write_text(f"{unrelated.pid}\n")

    for st in servers.status(settings):
        assert not st.running and st.pid is None, st
    assert servers.stop(settings) == []
    assert unrelated.poll() is None, "stop() signalled a process that is not our server"

    servers.ensure_database(settings)  # neither refuses nor waits for the unrelated process
    servers.ensure_broker(settings)
    assert _pg_answers(settings) and _redis_answers(settings)
    pids = {st.name: st.pid for st in servers.status(settings)}
    assert all(pid not in (None, unrelated.pid) for pid in pids.values()), pids
    assert sorted(servers.stop(settings)) == ["postgresql", "redis"]
    assert unrelated.poll() is None


def test_servers_of_another_data_folder_are_not_ours(tmp_path, homes):
    """A pid file holding the pid of the same kind of server, but of another data folder."""
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    a, b = homes(tmp_path / "a"), homes(tmp_path / "b")
    for s in (a, b):
        servers.ensure_database(s)
        servers.ensure_broker(s)
    b_pids = {st.name: st.pid for st in servers.status(b)}
    assert sorted(servers.stop(a)) == ["postgresql", "redis"]
    pa = servers.paths_for(a)
    pa_pg = pa.pgdata / "postmaster.pid"
    pa_pg.write_text((servers.paths_for(b).pgdata / "postmaster.pid").read_text())
    pa.redis_pidfile.write_text(f"{b_pids['redis']}\n")

    assert not any(st.running or st.pid for st in servers.status(a))
    assert servers.stop(a) == []
    assert {st.name: st.pid for st in servers.status(b)} == b_pids and all(st.running for st in servers.status(b))

    servers.ensure_database(a)
    servers.ensure_broker(a)
    a_pids = {st.name: st.pid for st in servers.status(a)}
    assert not set(a_pids.values()) & set(b_pids.values())
    assert _pg_answers(a) and _redis_answers(a) and _pg_answers(b) and _redis_answers(b)


def test_a_server_its_pid_file_does_not_name_is_never_started_twice(tmp_path, homes, unrelated):
    """Our server still runs but its pid file names another process: refuse, rather than run two on one data folder."""
    home = tmp_path / "h"
    home.mkdir()
    settings = homes(home)
    paths = servers.paths_for(settings)
    servers.ensure_database(settings)
    servers.ensure_broker(settings)
    pg_pidfile = paths.pgdata / "postmaster.pid"
    saved = {pg_pidfile: pg_pidfile.read_text(), paths.redis_pidfile: paths.redis_pidfile.read_text()}
    real = {st.name: st.pid for st in servers.status(settings)}
    try:
        for pidfile, text in saved.items():
            pidfile.write_text(f"{unrelated.pid}\n" + text.split("\n", 1)[1])
        with pytest.raises(ServiceError, match=r"postmaster.pid does not name") as err:
            servers.ensure_database(settings)
        assert str(real["postgresql"]) in str(err.value)
        with pytest.raises(ServiceError, match=r"redis.pid does not name") as err:
            servers.ensure_broker(settings)
        assert str(real["redis"]) in str(err.value)
        assert unrelated.poll() is None
    finally:
        for pidfile, text in saved.items():
            pidfile.write_text(text)
    assert {st.name: st.pid for st in servers.status(settings)} == real


# --------------------------------------------------------------------------- 8. private folders and files
@needs_root
@pytest.mark.parametrize("server", ["redis", "postgresql"])
def test_socket_folder_in_tmp_owned_by_another_user_is_refused(tmp_path, homes, server):
    settings = homes(_long_home(tmp_path))
    paths = servers.paths_for(settings)
    shared = paths.redis_socket_dir.parent  # /tmp/musicindex-{uid}-{hash}
    nobody = pwd.getpwnam("nobody")
    os.mkdir(shared, 0o700)
    os.chown(shared, nobody.pw_uid, nobody.pw_gid)
    ensure = servers.ensure_broker if server == "redis" else servers.ensure_database
    with pytest.raises(ServiceError) as err:
        ensure(settings)
    message = str(err.value)
    assert str(shared) in message and "nobody" in message and "Remove it" in message
    assert os.lstat(shared).st_uid == nobody.pw_uid and not os.listdir(shared)


@pytest.mark.parametrize("how", ["mode 0755", "symlink", "socket folder mode 0750"])
def test_socket_folder_in_tmp_that_is_not_private_is_refused(tmp_path, homes, how):
    settings = homes(_long_home(tmp_path))
    paths = servers.paths_for(settings)
    shared = paths.redis_socket_dir.parent
    if how == "mode 0755":
        os.mkdir(shared)
        os.chmod(shared, 0o755)
    elif how == "symlink":
        elsewhere = tmp_path / "elsewhere"
        elsewhere.mkdir(mode=0o700)
        shared.symlink_to(elsewhere)
    else:
        os.mkdir(shared, 0o700)
        os.mkdir(paths.redis_socket_dir)
        os.chmod(paths.redis_socket_dir, 0o750)
    with pytest.raises(ServiceError, match="Remove it"):
        servers.ensure_broker(settings)
    if how == "symlink":
        assert not os.listdir(tmp_path / "elsewhere")


def test_new_private_folders_are_0700_whatever_the_umask(tmp_path, homes):
    settings = homes(_long_home(tmp_path) / "new")
    paths = servers.paths_for(settings)
    old = os.umask(0o000)
    try:
        servers.ensure_broker(settings)
        servers.ensure_database(settings)
    finally:
        os.umask(old)
    assert _redis_answers(settings) and _pg_answers(settings)  # sockets in /tmp work, as root too
    for folder in (
        paths.home,
        paths.redis_socket_dir.parent,
        paths.redis_socket_dir,
        paths.redis_dir,
        paths.pg_socket_dir,
        paths.pgdata.parent,
        paths.pgdata,
    ):
        assert _mode(folder) == 0o700, folder
        assert os.lstat(folder).st_uid == os.geteuid()
    for f in (paths.redis_conf, paths.lock, paths.redis_dir / "redis.log", paths.pglog):
        assert _mode(f) & 0o077 == 0, f


@pytest.mark.parametrize("planted", ["redis/redis.conf", "redis/redis.log", "postgres/server.log"])
def test_symlink_planted_at_a_file_we_write_is_refused(tmp_path, homes, planted):
    home = tmp_path / "h"
    home.mkdir()
    settings = homes(home)
    victim = tmp_path / "victim"
    victim.write_text("keep me\n")
    (home / planted).parent.mkdir(mode=0o700)
    (home / planted).symlink_to(victim)
    ensure = servers.ensure_database if planted.startswith("postgres") else servers.ensure_broker
    with pytest.raises(ServiceError, match="symbolic link"):
        ensure(settings)
    assert victim.read_text() == "keep me\n"


def test_symlink_planted_at_the_lock_file_is_refused(tmp_path, homes):
    home = tmp_path / "h"
    home.mkdir()
    settings = homes(home)
    target = tmp_path / "elsewhere" / "created-through-the-link"
    target.parent.mkdir()
    (home / "services.lock").symlink_to(target)
    with pytest.raises(ServiceError, match="symbolic link"):
        servers.ensure_broker(settings)
    assert not target.exists()
    assert not (home / "redis").exists()


@needs_root
def test_data_folder_owned_by_another_user_is_refused(tmp_path, homes):
    home = tmp_path / "h"
    home.mkdir(mode=0o700)
    nobody = pwd.getpwnam("nobody")
    os.chown(home, nobody.pw_uid, nobody.pw_gid)
    settings = homes(home)
    with pytest.raises(ServiceError, match="MUSICINDEX_HOME"):
        servers.ensure_broker(settings)
    assert os.listdir(home) == []


# --------------------------------------------------------------------------- 9. no side effects on the host as root
@needs_root
def test_root_changes_no_permission_outside_the_data_folder(tmp_path, homes):
    parent = tmp_path / "parent"
    parent.mkdir(mode=0o700)
    os.chmod(parent, 0o700)
    home = parent / "home"
    settings = homes(home)
    before = {
        p: _mode(p)
        for p in (tmp_path, parent, servers.postgres.pg_bin(settings), servers.postgres.pg_bin(settings).parent)
    }
    servers.ensure_database(settings)
    servers.ensure_broker(settings)
    assert _pg_answers(settings) and _redis_answers(settings)
    assert {p: _mode(p) for p in before} == before
    assert _mode(parent) == 0o700
    # PostgreSQL, which refuses to run as root, runs without any capability; its files stay root's
    paths = servers.paths_for(settings)
    pid = servers.EmbeddedPostgres(paths, settings).pid()
    proc_status = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines())
    assert int(proc_status["CapEff"].strip(), 16) == 0 and int(proc_status["CapPrm"].strip(), 16) == 0
    assert proc_status["NoNewPrivs"].strip() == "1"
    assert os.stat(paths.pgdata).st_uid == 0 and os.stat(paths.pgdata / "PG_VERSION").st_uid == 0
    # stop and start keep working the same way
    assert sorted(servers.stop(settings)) == ["postgresql", "redis"]
    servers.ensure_database(settings)
    assert _pg_answers(settings)
    assert _mode(parent) == 0o700


@needs_root
def test_root_without_user_namespaces_gets_a_clear_error(tmp_path, homes, monkeypatch):
    parent = tmp_path / "parent"
    parent.mkdir(mode=0o700)
    settings = homes(parent / "home")
    monkeypatch.setattr(servers.postgres, "userns_problem", lambda: "unshare(CLONE_NEWUSER): Operation not permitted")
    with pytest.raises(ServiceError) as err:
        servers.ensure_database(settings)
    message = str(err.value)
    assert "Operation not permitted" in message
    for advice in ("MUSICINDEX_DATABASE_URL", "user.max_user_namespaces", "not root"):
        assert advice in message, advice
    assert _mode(parent) == 0o700
    assert not servers.paths_for(settings).pgdata.exists()


@needs_root
def test_root_data_folder_of_the_old_system_user_is_taken_over(tmp_path, homes):
    """Data folders made by earlier versions as root belong to the 'musicindex' system user."""
    try:
        legacy = pwd.getpwnam(servers.postgres.SYSTEM_USER_WHEN_ROOT)
    except KeyError:
        pytest.skip("no 'musicindex' system user on this machine")
    home = tmp_path / "h"
    home.mkdir()
    settings = homes(home)
    url = servers.ensure_database(settings)
    from sqlalchemy import text

    from musicindex.db.session import Database

    db = Database(url)
    with db.engine.begin() as conn:
        conn.execute(text("CREATE TABLE keepme (v text)"))
        conn.execute(text("INSERT INTO keepme VALUES ('still here')"))
    db.dispose()
    servers.stop(settings)
    paths = servers.paths_for(settings)
    for top in (paths.pgdata.parent, paths.pg_socket_dir):
        for dirpath, dirnames, filenames in os.walk(top):
            for name in dirnames + filenames:
                os.lchown(os.path.join(dirpath, name), legacy.pw_uid, legacy.pw_gid)
        os.lchown(top, legacy.pw_uid, legacy.pw_gid)

    db = Database(servers.ensure_database(settings))
    with db.engine.connect() as conn:
        assert conn.execute(text("SELECT v FROM keepme")).scalar() == "still here"
    db.dispose()
    assert os.stat(paths.pgdata).st_uid == 0 and os.stat(paths.pgdata / "PG_VERSION").st_uid == 0
