"""``python -m workers ARGS...``: Celery's worker (``worker ARGS...``) in a process that imports only what the
workers need: the Celery app, the task modules and the library parts they load at import.

``musicindex worker`` checks the set-up first (servers, schema, the artifact key) and then replaces itself with this
(``os.execv``), so the worker's main process, whose memory every pool process inherits when it is forked, does not
carry the CLI, Alembic, the query layer and the rest of what the command loaded for its checks (about 70 MB of
each pool process's RSS, measured by ``benchmarks/ingest.py``).
"""

from __future__ import annotations

import logging
import sys

from musicindex.config import get_settings


def main(argv: list[str] | None = None) -> None:
    settings = get_settings()
    level = getattr(logging, settings.log_level.upper(), logging.WARNING)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")  # as the `musicindex` command
    from workers.celery_app import app

    app.worker_main(["worker", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    main()
