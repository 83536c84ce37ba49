"""The Subsonic wire format: the ``subsonic-response`` envelope in XML (the default), JSON or JSONP, error codes, and
the request's parameters (query string and form bodies, repeated names, bounded).

An answer is built as a plain dict in the JSON shape (``{"album": {"id": ..., "song": [...]}}``); :func:`render`
writes it as JSON, or as XML where scalars become attributes, dicts and lists of dicts child elements, lists of
scalars repeated text elements (``<moods>sad</moods>``), :class:`Text` values text elements (``<biography>``) and a
:class:`Content` value the element's own text (``<genre songCount="3">Rock</genre>``). Insertion order is the
order of the XSD's sequences.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from typing import Any
from xml.sax.saxutils import escape, quoteattr

from starlette.responses import Response

API_VERSION = "1.16.1"
"""The Subsonic API version this server implements."""
SERVER_TYPE = "musicindex"
XMLNS = "http://subsonic.org/restapi"

# error codes (http://www.subsonic.org/pages/api.jsp, OpenSubsonic 41-44)
GENERIC, MISSING, CLIENT_OLD, SERVER_OLD, WRONG_CREDENTIALS = 0, 10, 20, 30, 40
TOKEN_UNSUPPORTED, MECHANISM_UNSUPPORTED, CONFLICTING_AUTH, INVALID_API_KEY = 41, 42, 43, 44
NOT_AUTHORIZED, NOT_FOUND = 50, 70

MAX_VALUES = 2000
"""Most parameter values in one request (repeated names count each time)."""
MAX_VALUE_CHARS = 10_000
MAX_BODY_BYTES = 64 * 1024
"""The request guard's cap on every body (``web/security.py``), checked again on the declared length."""
_CALLBACK = re.compile(r"^[A-Za-z_$][A-Za-z0-9_$]{0,63}(?:\.[A-Za-z_$][A-Za-z0-9_$]{0,63}){0,3}$")
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


class SubsonicError(Exception):
    """An answer with ``status="failed"`` and ``<error code=... message=...>`` (HTTP 200, as the API wants)."""

    def __init__(self, code: int, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


class Text(str):
    """A string written as a child element with text in XML (``<notes>...</notes>``); a plain string in JSON."""


class Clean(dict[str, Any]):
    """A dict that holds no None at any depth (the views build songs and albums so): rendering skips its walk."""

    @classmethod
    def of(cls, values: dict[str, Any]) -> Clean:
        return cls((k, v) for k, v in values.items() if v is not None)


class Content(str):
    """The text content of its element in XML (and the attribute of its key); in JSON the value of its key
    (``"value"``): ``<genre songCount="3" albumCount="1" value="Rock">Rock</genre>``."""


class Body(Content):
    """Only the text content of its element in XML (``<lyrics artist="A">words</lyrics>``, ``<line start="0">``);
    in JSON the value of its key, as :class:`Content`."""


# --------------------------------------------------------------------------- parameters
class Params:
    """The parameters of one call: the query string's, then the form body's (repeated names kept in order)."""

    def __init__(self, items: Iterable[tuple[str, str]]):
        self._values: dict[str, list[str]] = {}
        for n, (key, value) in enumerate(items, 1):
            if n > MAX_VALUES:
                raise SubsonicError(GENERIC, f"at most {MAX_VALUES} parameter values in one request")
            if len(value) > MAX_VALUE_CHARS or len(key) > 100:
                raise SubsonicError(GENERIC, f"parameter {key[:100]!r} is longer than {MAX_VALUE_CHARS} characters")
            self._values.setdefault(key, []).append(value)

    def _checked(self, name: str, value: str) -> str:
        if "\x00" in value:
            raise SubsonicError(GENERIC, f"parameter {name!r} contains a NUL character")
        return value

    def get(self, name: str, default: str | None = None) -> str | None:
        values = self._values.get(name)
        return self._checked(name, values[0]) if values else default

    def required(self, name: str) -> str:
        value = self.get(name)
        if value is None or value == "":
            raise SubsonicError(MISSING, f"required parameter {name!r} is missing")
        return value

    def all(self, name: str) -> list[str]:
        return [self._checked(name, v) for v in self._values.get(name, [])]

    def has(self, name: str) -> bool:
        return name in self._values

    def integer(
        self, name: str, default: int | None = None, *, low: int = -(2**31), high: int = 2**31 - 1
    ) -> int | None:
        """An integer parameter in [low, high] (error 0 otherwise), ``default`` when absent."""
        value = self.get(name)
        if value is None or value == "":
            return default
        return parse_int(name, value, low, high)

    def required_integer(self, name: str, *, low: int = -(2**31), high: int = 2**31 - 1) -> int:
        return parse_int(name, self.required(name), low, high)

    def boolean(self, name: str, default: bool | None = None) -> bool | None:
        value = self.get(name)
        if value is None or value == "":
            return default
        low = value.strip().lower()
        if low in ("true", "1", "yes"):
            return True
        if low in ("false", "0", "no"):
            return False
        raise SubsonicError(GENERIC, f"parameter {name!r} must be true or false, got {value[:40]!r}")


def parse_int(name: str, value: str, low: int, high: int) -> int:
    text = value.strip()
    if not re.fullmatch(r"[+-]?\d{1,19}", text):
        raise SubsonicError(GENERIC, f"parameter {name!r} must be an integer, got {value[:40]!r}")
    n = int(text)
    if not low <= n <= high:
        raise SubsonicError(GENERIC, f"parameter {name!r} must be between {low} and {high}, got {n}")
    return n


# --------------------------------------------------------------------------- rendering
class Format:
    """The answer format a call asked for (``f``): xml (also for an unknown ``f``), json, or jsonp with a
    ``callback`` name that is a plain JavaScript name (else ``problem`` says why, and the answer is JSON)."""

    def __init__(self, f: str | None = None, callback: str | None = None):
        kind = (f or "xml").lower()
        self.kind = kind if kind in ("xml", "json", "jsonp") else "xml"
        self.callback: str | None = None
        self.problem: str | None = None
        if self.kind == "jsonp":
            if callback is not None and _CALLBACK.fullmatch(callback):
                self.callback = callback
            else:
                self.kind = "json"
                self.problem = "jsonp needs a callback name made of letters, digits, '_', '$' and '.'"

    @classmethod
    def of(cls, params: Params) -> Format:
        try:
            return cls(params.get("f"), params.get("callback"))
        except SubsonicError:
            return cls("json")


def envelope(status: str, server_version: str) -> dict[str, Any]:
    return {
        "status": status,
        "version": API_VERSION,
        "type": SERVER_TYPE,
        "serverVersion": server_version,
        "openSubsonic": True,
    }


def render(payload: Mapping[str, Any], fmt: Format, server_version: str, status: str = "ok") -> Response:
    """The HTTP answer (always 200) of ``payload`` under the envelope, in ``fmt``."""
    body = {**envelope(status, server_version), **payload}
    if fmt.kind == "xml":
        text = '<?xml version="1.0" encoding="UTF-8"?>\n' + _element("subsonic-response", body, xmlns=XMLNS)
        return Response(text.encode("utf-8"), media_type="text/xml; charset=utf-8")
    data = json.dumps({"subsonic-response": _jsonable(body)}, ensure_ascii=False, separators=(",", ":"))
    if fmt.kind == "jsonp" and fmt.callback:
        return Response(f"{fmt.callback}({data});".encode(), media_type="application/javascript; charset=utf-8")
    return Response(data.encode("utf-8"), media_type="application/json")


def error_response(code: int, message: str, fmt: Format, server_version: str) -> Response:
    return render({"error": {"code": int(code), "message": message}}, fmt, server_version, status="failed")


def _jsonable(value: Any) -> Any:
    if type(value) is Clean:
        return value
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    return value


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return _NOT_XML.sub("\ufffd", str(value))


def _element(name: str, obj: Mapping[str, Any], xmlns: str | None = None) -> str:
    attrs = [f" xmlns={quoteattr(xmlns)}"] if xmlns else []
    children: list[str] = []
    content = ""
    for key, value in obj.items():
        if value is None:
            continue
        if isinstance(value, Content):  # the element's text, and the attribute the 1.16.1 XSD also asks for
            content = escape(_scalar(value))
            if not isinstance(value, Body):
                attrs.append(f" {key}={quoteattr(_scalar(value))}")
        elif isinstance(value, Text):
            children.append(f"<{key}>{escape(_scalar(value))}</{key}>")
        elif isinstance(value, Mapping):
            children.append(_element(key, value))
        elif isinstance(value, (list, tuple)):
            for item in value:
                if isinstance(item, Mapping):
                    children.append(_element(key, item))
                elif item is not None:
                    children.append(f"<{key}>{escape(_scalar(item))}</{key}>")
        else:
            attrs.append(f" {key}={quoteattr(_scalar(value))}")
    inner = content + "".join(children)
    head = f"<{name}{''.join(attrs)}"
    return f"{head}>{inner}</{name}>" if inner else f"{head}/>"
