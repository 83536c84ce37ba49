"""How the pages are rendered: the Jinja2 templates and their filters, one page with its session, the HTML error
page, the parts of a page that may be unavailable, and the search options a page's form asks for.

Pages work without script for reading; ``static/app.js`` (no build step, no outside resource) adds the player,
live pickers, the map, the status refresh, M3U export with a base folder, query by an uploaded file and the
token-protected model actions. The routes of each resource (``web.routes``) render through here.
"""

from __future__ import annotations

import functools
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse, Response
from fastapi.templating import Jinja2Templates
from markupsafe import Markup
from sqlalchemy.exc import SQLAlchemyError

from musicindex.errors import MusicIndexError
from musicindex.query.options import SearchOptions
from musicindex.web import sessions
from musicindex.web.errors import category_of

HERE = Path(__file__).resolve().parent
templates = Jinja2Templates(directory=str(HERE / "templates"))


def _basename(path: str | None) -> str:
    return os.path.basename(path or "")


def _fmt_duration(seconds: float | None) -> str:
    if seconds is None:
        return ""
    s = round(float(seconds))
    return f"{s // 60}:{s % 60:02d}"


def _fmt_num(x: Any, digits: int = 3) -> str:
    if isinstance(x, bool) or x is None:
        return "" if x is None else str(x)
    if isinstance(x, float):
        return f"{x:.{digits}f}"
    return str(x)


@functools.cache
def _markdown_parser() -> Any:
    from markdown_it import MarkdownIt

    return MarkdownIt("commonmark", {"html": False})  # raw HTML in the text is escaped, never passed through


def _markdown(text: str | None) -> Markup:
    """Markdown (the API's descriptions) as HTML: escaped text, links only to safe schemes (markdown-it's rule)."""
    return Markup(_markdown_parser().render(text or ""))


def _fmt_feature(x: float | None) -> str:
    """A feature's value with 4 significant digits, never in scientific notation (0.00002244, not 2.244e-05)."""
    if x is None or not math.isfinite(x):
        return ""
    if x == 0:
        return "0"
    decimals = min(12, max(0, 3 - math.floor(math.log10(abs(x)))))
    return f"{x:,.{decimals}f}".replace(",", "\u2009")


templates.env.filters["basename"] = _basename
templates.env.filters["feature"] = _fmt_feature
templates.env.filters["markdown"] = _markdown
templates.env.filters["duration"] = _fmt_duration
templates.env.filters["num"] = _fmt_num


def render_error(request: Request, status: int, category: str, message: str) -> Response:
    ctx: dict[str, Any] = {"page": "error", "status": status, "category": category, "message": message}
    try:  # the page's session (its CSRF token: the player bar saves the queue from this page too)
        ctx["viewer"] = sessions.viewer(request)
    except (MusicIndexError, SQLAlchemyError, OSError, AttributeError, KeyError):  # no database, no app: none
        ctx["viewer"] = None
    response = templates.TemplateResponse(request, "error.html", ctx, status_code=status)
    if ctx["viewer"] is not None:
        sessions.attach(request, response)
    return response


def page(request: Request, name: str, status_code: int = 200, **ctx: Any) -> Response:
    ctx.setdefault("page", name.removesuffix(".html"))
    ctx.setdefault("q", "")
    ctx.setdefault("viewer", sessions.viewer(request))
    response = templates.TemplateResponse(request, name, ctx, status_code=status_code)
    sessions.attach(request, response)
    return response


def try_(fn: Any, *args: Any, **kwargs: Any) -> tuple[Any, str | None]:
    """(answer, None) or (None, the error's message) for the parts of a page that may be unavailable."""
    try:
        return fn(*args, **kwargs), None
    except MusicIndexError as exc:
        if category_of(exc).status >= 500:
            raise
        return None, str(exc)


def page_options(request: Request, defaults: Mapping[str, Any]) -> tuple[SearchOptions | None, str | None]:
    """(the search options the page's form asks for, None) or (None, why they cannot be read): a page shows what it
    can and says why its list cannot answer, where the JSON API answers 422."""
    return try_(SearchOptions.parse, request.query_params, defaults=defaults)


PAGE: dict[str, Any] = {"response_class": HTMLResponse, "include_in_schema": False}
"""How a route declares a page (``@router.get("/albums", **PAGE)``): HTML, not in the API's description."""
