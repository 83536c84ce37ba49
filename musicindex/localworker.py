"""A real `musicindex worker` as a subprocess of this one (the demo, tests and benchmarks use it).

    with LocalWorker(settings, queues="ingest,embed", log_path=home / "worker.log") as worker:
        ...  # the worker answers pings; jobs sent now are processed

The worker gets ``settings`` through its environment (``MUSICINDEX_*``), runs in its own
session (so it and its pool can be stopped together) and is stopped with SIGTERM (a warm
shutdown that finishes current jobs), then SIGKILL after ``stop_timeout``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from types import TracebackType

from musicindex.config import Settings
from musicindex.dispatch import Dispatcher

_ENV_SETTINGS = (
    "home",
    "database_url",
    "broker_url",
    "result_backend",
    "artifact_key",
    "window_offset",
    "window_duration",
    "task_time_limit",
    "visibility_timeout",
    "ingest_chunk",
    "worker_concurrency",
    "task_max_retries",
)


def settings_env(settings: Settings) -> dict[str, str]:
    """The ``MUSICINDEX_*`` variables that give another process these settings."""
    env = {}
    for key in _ENV_SETTINGS:
        value = getattr(settings, key)
        if value is not None:
            env[f"MUSICINDEX_{key.upper()}"] = str(value)
    return env


class LocalWorker:
    """One `musicindex worker` subprocess; ``name`` is its Celery node name prefix."""

    def __init__(
        self,
        settings: Settings,
        queues: str = "ingest,embed,train",
        concurrency: int | None = None,
        name: str | None = None,
        log_path: Path | None = None,
        stop_timeout: float = 60,
    ):
        self.settings = settings
        self.name = name or f"w-{uuid.uuid4().hex[:8]}"
        self.log_path = log_path
        self.stop_timeout = stop_timeout
        env = {**os.environ, **settings_env(settings), "PYTHONUNBUFFERED": "1"}
        cmd = [
            sys.executable,
            "-m",
            "musicindex",
            "worker",
            "-Q",
            queues,
            "-n",
            f"{self.name}@%h",
            "--loglevel",
            "INFO",
        ]
        if concurrency:
            cmd += ["-c", str(concurrency)]
        self._log = open(log_path, "w") if log_path else None  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            cmd, stdout=self._log or subprocess.DEVNULL, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )

    def log_tail(self, chars: int = 3000) -> str:
        if self.log_path is None or not self.log_path.exists():
            return "(no log)"
        return self.log_path.read_text(errors="replace")[-chars:]

    def wait_ready(self, timeout: float = 120) -> LocalWorker:
        """Block until the worker answers a ping; RuntimeError (with its log) if it exits or times out."""
        dispatcher = Dispatcher(self.settings)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"worker {self.name} exited with {self.proc.returncode}:\n{self.log_tail()}")
            if any(n.startswith(self.name + "@") for n in dispatcher.ping_workers(timeout=0.5)):
                return self
            time.sleep(0.3)
        raise RuntimeError(f"worker {self.name} did not answer within {timeout:.0f} s:\n{self.log_tail()}")

    def children(self) -> list[int]:
        """Pids of the worker's pool processes."""
        import psutil

        try:
            return [c.pid for c in psutil.Process(self.proc.pid).children(recursive=True)]
        except psutil.NoSuchProcess:
            return []

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(self.stop_timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        if self._log is not None:
            self._log.close()

    def __enter__(self) -> LocalWorker:
        try:
            return self.wait_ready()
        except BaseException:
            self.stop()
            raise

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
