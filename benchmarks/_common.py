"""What every benchmark needs: servers (a private embedded pair unless configured) and a scratch database."""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from musicindex import servers
from musicindex.config import Settings, set_settings
from musicindex.db.scratch import scratch_database
from musicindex.db.session import Database


@contextlib.contextmanager
def bench_environment(prefix: str, keep: bool = False) -> Iterator[tuple[Settings, Database, Path]]:
    """(settings pointing at a fresh migrated database, that database, a temporary folder).

    Without MUSICINDEX_HOME / URLs in the environment, the embedded servers run under the
    temporary folder and are stopped at the end; the folder is deleted unless ``keep``.
    """
    tmp = Path(tempfile.mkdtemp(prefix=f"{prefix}-"))
    own_home = not os.environ.get("MUSICINDEX_HOME")
    home = Path(os.environ.get("MUSICINDEX_HOME") or tmp / "home")
    base = Settings.from_env(home=home)
    set_settings(base)
    try:
        settings = base.with_(database_url=servers.ensure_database(base), broker_url=servers.ensure_broker(base))
        with scratch_database(settings.database_url, prefix=prefix.replace("-", "_")) as db:
            yield settings.with_(database_url=db.url), db, tmp
    finally:
        set_settings(None)
        if own_home and base.embedded_database:
            servers.stop(base)
        if not keep:
            shutil.rmtree(tmp, ignore_errors=True)
