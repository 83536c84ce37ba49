"""The HTTP API and web page of ``musicindex serve`` (FastAPI on uvicorn); see docs/web.md."""

from __future__ import annotations

from musicindex.web.server import DEFAULT_HOST, DEFAULT_PORT, create_app, serve

__all__ = ["DEFAULT_HOST", "DEFAULT_PORT", "create_app", "serve"]
