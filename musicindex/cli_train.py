"""CLI commands for training, the model registry and the report (registered on the main app)."""
from __future__ import annotations

from musicindex.cli import app  # noqa: F401  (commands are added with @app.command below)
