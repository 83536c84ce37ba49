"""The ASGI app of ``musicindex serve``: the JSON API (``/api/``), the web page, the Subsonic API (``/rest``), the
static files.

``create_app(index)`` builds it over one ``MusicIndex`` (the same services the CLI and Python programs use) from
the routers of ``web.routes`` (one per resource) and ``web.subsonic``; ``serve()`` runs it on uvicorn after the
security checks (``security.py``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.middleware.cors import CORSMiddleware
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from musicindex.web import errors, render, security, status, subsonic
from musicindex.web.deps import Limits, LoginRequired, login_redirect
from musicindex.web.routes import ROUTERS

if TYPE_CHECKING:
    from musicindex.config import Settings
    from musicindex.index import MusicIndex

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8765

DESCRIPTION = """\
The HTTP API of musicindex: the same queries as the Python API and the CLI.

* Tracks are named by id (`GET /api/tracks?q=...` finds them).
* Similar tracks carry `distance` (cosine, 0..2) and `similarity` (0..1, 1 = the same track:
  the OpenSubsonic `sonicSimilarity` convention), and `why` where the space supports it.
* List answers (`similar`, `recommend`, `genres/{genre}/tracks`, `playlist`) are also M3U8 playlists
  with `format=m3u8` (`base=FOLDER` for relative paths); `GET /api/m3u?ids=...` for any list.
* Errors: `{"error": category, "message": ..., "exit_code": ...}`: 404 unknown track, 422 bad argument,
  409 model not trained / not enough data, 503 server unreachable, 401/403 token.
* Changes (ingest, train, promote, rollback) need `Authorization: Bearer <MUSICINDEX_API_TOKEN>`.
* Changes and costly reads from another site's page are refused (403) unless its origin is in
  `MUSICINDEX_CORS_ORIGINS`; bodies are capped (64 KiB, uploads `MUSICINDEX_UPLOAD_MAX_BYTES`: 413).
"""


def create_app(index: MusicIndex, *, host: str = DEFAULT_HOST) -> FastAPI:
    """The app over ``index``; ``host`` is the address it will be bound to (it decides the Host check)."""
    from musicindex import __version__

    settings = index.settings
    app = FastAPI(
        title="musicindex",
        version=__version__,
        description=DESCRIPTION,
        docs_url=None,  # the stock pages load their scripts from a CDN: /api/docs is rendered here instead
        redoc_url=None,
        openapi_url="/api/openapi.json",
    )
    app.state.index = index
    app.state.limits = Limits()
    errors.install(app, html=render.render_error)
    app.add_exception_handler(LoginRequired, login_redirect)
    app.state.subsonic = subsonic.SubsonicState()
    for router in ROUTERS:
        app.include_router(router)
    app.include_router(subsonic.router)
    app.mount("/static", StaticFiles(directory=str(render.HERE / "static")), name="static")

    @app.get("/api/docs", include_in_schema=False, response_class=HTMLResponse)
    def docs(request: Request) -> Response:
        return render.page(request, "docs.html", spec=app.openapi(), ops=_operations(app.openapi()))

    @app.get("/favicon.ico", include_in_schema=False)
    def favicon() -> Response:
        return Response(status_code=204)

    # outermost last: the headers go on every answer (errors too), then the request guard (Host check, origin rule,
    # token, body caps, NUL, last-resort errors: before any route reads a body), then CORS
    if settings.cors_origin_list:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origin_list,
            allow_methods=["GET", "POST"],
            allow_headers=["Authorization", "Content-Type"],
            allow_credentials=False,
            max_age=600,
        )
    app.add_middleware(
        security.RequestGuard,
        settings=settings,
        routes=[route for router in ROUTERS for route in router.routes],
        html=render.render_error,
        allowed_hosts=security.allowed_hosts(host, settings),
    )
    app.add_middleware(security.SecurityHeaders)
    if settings.trusted_proxy_networks:  # outermost: the client and scheme a trusted proxy names (access.py)
        app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=[str(n) for n in settings.trusted_proxy_networks])
    return app


def _operations(spec: dict[str, Any]) -> list[dict[str, Any]]:
    """The OpenAPI operations, flattened for the docs page."""
    out = []
    for path, methods in spec.get("paths", {}).items():
        for method, op in methods.items():
            params = []
            for p in op.get("parameters", []):
                schema = p.get("schema", {})
                if "anyOf" in schema:
                    schema = next((s for s in schema["anyOf"] if s.get("type") != "null"), schema)
                bounds = ", ".join(
                    f"{k} {schema[k]}"
                    for k in ("minimum", "maximum", "minLength", "maxLength", "minItems", "maxItems")
                    if k in schema
                )
                kind = schema.get("type", "")
                if kind == "array":
                    kind = f"list of {schema.get('items', {}).get('type', '')}"
                if "enum" in schema:
                    kind = " | ".join(str(x) for x in schema["enum"])
                params.append(
                    {
                        "name": p.get("name"),
                        "in": p.get("in"),
                        "required": p.get("required", False),
                        "type": kind,
                        "default": p.get("schema", {}).get("default"),
                        "bounds": bounds,
                        "description": p.get("description", ""),
                    }
                )
            body = op.get("requestBody", {}).get("content", {})
            out.append(
                {
                    "method": method.upper(),
                    "path": path,
                    "summary": op.get("summary", ""),
                    "description": op.get("description", ""),
                    "tag": (op.get("tags") or [""])[0],
                    "params": params,
                    "body": ", ".join(body),
                }
            )
    return out


def warm_up(app: FastAPI) -> None:
    """Before the first request: look at the broker once (the Celery client, the first ping), so that no early
    answer shares the process with that work (the status page then answers from what was seen, at once)."""
    limits: Limits = app.state.limits
    limits.background("services", status.SERVICES_TTL, lambda: status.services(app.state.index), wait=5.0)


def serve(index: MusicIndex, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT, log_level: str = "warning") -> None:
    """Run the app on uvicorn (blocks). Refuses a non-loopback ``host`` without an API token and an allowed-hosts
    list; every log line is scrubbed of credentials; request headers have a deadline and each address a cap on its
    connections (``connections.py``)."""
    import uvicorn

    from musicindex import logscrub

    security.check_bind(host, index.settings)
    app = create_app(index, host=host)
    warm_up(app)
    logscrub.install()
    uvicorn.Server(server_config(app, index.settings, host, port, log_level)).run()


def server_config(app: Any, settings: Settings, host: str, port: int, log_level: str = "warning") -> Any:
    """The ``uvicorn.Config`` of ``serve``: forwarded headers only through ``create_app`` (trusted proxies), the
    guarded HTTP protocol (header deadline, per-address cap), credentials scrubbed from uvicorn's log lines."""
    import uvicorn

    from musicindex.web.connections import guarded_protocol

    return uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level=log_level,
        log_config=log_config(),
        access_log=log_level in ("info", "debug", "trace"),
        server_header=False,
        proxy_headers=False,  # create_app trusts only MUSICINDEX_TRUSTED_PROXIES
        http=guarded_protocol(settings),
        limit_concurrency=256,
        timeout_keep_alive=5,
    )


def log_config() -> dict[str, Any]:
    """uvicorn's logging configuration with :class:`~musicindex.logscrub.ScrubFilter` on each of its handlers."""
    import copy

    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    config.setdefault("filters", {})["scrub"] = {"()": "musicindex.logscrub.ScrubFilter"}
    for handler in config.get("handlers", {}).values():
        handler["filters"] = [*handler.get("filters", []), "scrub"]
    return config
