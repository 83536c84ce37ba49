"""CLI commands for queries: similar, recommend, genre, playlist, evaluate (registered on the main app)."""
from __future__ import annotations

from musicindex.cli import app  # noqa: F401  (commands are added with @app.command below)
