"""Packaging: a built wheel, installed into a fresh virtual environment, can migrate a database.

The migrations ship inside the package, so a plain (non-editable) install works. The fresh
venv gets the wheel itself (``--no-deps``) and borrows the already installed third-party
packages through a ``.pth`` file (nothing is downloaded); the editable install of the
repository is not visible there, and the commands run outside the repository.
"""

from __future__ import annotations

import os
import shutil
import site
import subprocess
import sys
import venv
from pathlib import Path

import pytest

from tests.conftest import REPO, url_str

pytestmark = pytest.mark.slow


def _run(cmd: list[str], **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=600, **kwargs)


def test_wheel_installs_and_migrates_a_scratch_database(tmp_path, empty_db):
    # build from a copy of the source tree, so the build leaves nothing behind in the repository
    src = tmp_path / "src"
    shutil.copytree(REPO, src, ignore=shutil.ignore_patterns(".venv", ".git", "build", "*.egg-info", "__pycache__"))
    dist = tmp_path / "dist"
    built = _run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(dist), str(src)]
    )
    assert built.returncode == 0, built.stderr
    wheel = next(dist.glob("musicindex-*.whl"))
    names = _run([sys.executable, "-m", "zipfile", "-l", str(wheel)]).stdout
    assert "musicindex/db/migrations/versions/0001_schema_v1.py" in names
    assert "musicindex/db/migrations/env.py" in names

    fresh = tmp_path / "fresh"
    venv.EnvBuilder(with_pip=True).create(fresh)
    py = fresh / "bin" / "python"
    fresh_site = Path(_run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]).stdout.strip())
    (fresh_site / "borrowed.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    installed = _run([str(py), "-m", "pip", "install", "--no-deps", "--no-index", "-q", str(wheel)])
    assert installed.returncode == 0, installed.stderr

    where = _run(
        [
            str(py),
            "-c",
            "import musicindex, musicindex.db.migrate as m; print(musicindex.__file__); print(m.MIGRATIONS_DIR)",
        ],
        cwd=tmp_path,
    )
    assert where.returncode == 0, where.stderr
    module_file, migrations_dir = where.stdout.split()
    assert module_file.startswith(str(fresh)) and migrations_dir.startswith(str(fresh))

    env = {**os.environ, "MUSICINDEX_DATABASE_URL": url_str(empty_db.url), "MUSICINDEX_HOME": str(tmp_path / "home")}
    upgraded = _run([str(fresh / "bin" / "musicindex"), "db", "upgrade"], cwd=tmp_path, env=env)
    assert upgraded.returncode == 0, upgraded.stdout + upgraded.stderr
    assert empty_db.schema_info().at_head
