"""No credential in a log line: :class:`ScrubFilter` masks them in every record a handler writes.

Masked: the Subsonic parameters ``p`` (a password, clear or ``enc:`` hex), ``t`` and ``s`` (token and salt),
``apiKey``, and any ``password``/``token``/``key``/``csrf`` parameter of a URL or a form; ``enc:`` hex anywhere; the
value of an ``Authorization`` header (bearer token, Basic credentials); cookies (``Cookie:`` headers and the session
cookie ``mi_session=...``). ``musicindex serve`` puts the filter on every handler of the root logger and of
uvicorn's loggers (the access log writes each request's path with its query string), the CLI on its own handler.
"""

from __future__ import annotations

import logging
import re
from typing import Any

MASK = "***"

_PATTERNS = (
    # query strings and forms: ?p=..., &t=..., ;s=..., apiKey=..., password=...
    re.compile(
        r"(?i)(?<![A-Za-z0-9_])((?:p|t|s|apikey|api_key|password|passwd|pass|token|access_token|key|csrf)=)"
        r"[^&;\s\"'<>]*"
    ),
    re.compile(r"(?i)(enc:)[0-9a-f]+"),
    re.compile(r"(?i)(authorization[\"']?\s*[:=,]\s*[\"']?)(?:bearer|basic|token)?\s*[^\s\"',;]+"),
    re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]+"),
    re.compile(r"(?i)(cookie[\"']?\s*[:=,]\s*[\"']?)[^\"'\n]+"),
    re.compile(r"(mi_session=)[^;\s\"']+"),
    re.compile(r"(?i)(\bpassword[\"']?\s*[:=]\s*[\"']?)[^\s\"',;&]+"),
)


def scrub(text: str) -> str:
    """``text`` with every credential masked."""
    for pattern in _PATTERNS:
        text = pattern.sub(lambda m: m.group(1) + MASK, text)
    return text


def _clean(value: Any) -> Any:
    if isinstance(value, str):
        return scrub(value)
    if isinstance(value, bytes):
        return scrub(value.decode("latin-1")).encode("latin-1")
    return value


class ScrubFilter(logging.Filter):
    """A handler filter that masks credentials in a record's message and arguments (it never drops a record).

    The arguments are cleaned one by one and stay arguments: uvicorn's access formatter reads them as a tuple."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = scrub(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(_clean(a) for a in record.args)
        elif isinstance(record.args, dict):
            record.args = {k: _clean(v) for k, v in record.args.items()}
        if record.exc_info and record.exc_info[1] is not None and not record.exc_text:
            record.exc_text = scrub(logging.Formatter().formatException(record.exc_info))
        return True


def install(*loggers: logging.Logger) -> None:
    """Put one :class:`ScrubFilter` on every handler of ``loggers`` (default: the root logger)."""
    for logger in loggers or (logging.getLogger(),):
        for handler in logger.handlers:
            if not any(isinstance(f, ScrubFilter) for f in handler.filters):
                handler.addFilter(ScrubFilter())
