"""PostgreSQL ``COPY`` for large sets: stream rows in from an iterator (bounded memory), read a query's rows out.

What registration (millions of scanned files into a staging table), the ingest waiter (the ids it waits for)
and any other bulk step use instead of many-row INSERTs.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from sqlalchemy.orm import Session


def copy_text(value: Any) -> str:
    """One value in PostgreSQL's COPY text format."""
    if value is None:
        return "\\N"
    if isinstance(value, bytes):
        return "\\\\x" + value.hex()
    if isinstance(value, float):
        return repr(value)
    s = str(value)
    if "\\" in s or "\n" in s or "\r" in s or "\t" in s:
        s = s.replace("\\", "\\\\").replace("\n", "\\n").replace("\r", "\\r").replace("\t", "\\t")
    return s


class CopyStream(io.TextIOBase):
    """A read-only text stream of COPY rows made lazily from an iterator of tuples (bounded memory).

    An exception raised by the iterator is kept in ``error`` (psycopg2 reports it only as "COPY failed").
    """

    def __init__(self, rows: Iterator[tuple[Any, ...]]):
        self._rows = rows
        self._buf = ""
        self.error: Exception | None = None

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> str:
        want = 1 << 16 if size is None or size < 0 else size
        parts = [self._buf]
        have = len(self._buf)
        try:
            for row in self._rows:
                line = "\t".join(copy_text(v) for v in row) + "\n"
                parts.append(line)
                have += len(line)
                if have >= want:
                    break
        except Exception as exc:  # psycopg2 turns it into "COPY failed": keep it to raise it as it was
            self.error = exc
            raise
        data = "".join(parts)
        self._buf = data[want:]
        return data[:want]


def dbapi(session: Session) -> Any:
    """The psycopg2 connection under ``session`` (in its transaction): for COPY and server-side cursors."""
    raw = session.connection().connection.dbapi_connection
    assert raw is not None
    return raw


def copy_in(cursor: Any, table: str, columns: Sequence[str], rows: Iterable[tuple[Any, ...]]) -> None:
    """``COPY table (columns) FROM STDIN`` of ``rows`` on a psycopg2 cursor, streamed."""
    stream = CopyStream(iter(rows))
    try:
        cursor.copy_expert(f"COPY {table} ({', '.join(columns)}) FROM STDIN", stream)
    except Exception:
        if stream.error is not None:
            raise stream.error from None
        raise


def copy_rows(session: Session, table: str, columns: Sequence[str], rows: Iterable[tuple[Any, ...]]) -> None:
    """``COPY table (columns) FROM STDIN`` of ``rows`` in the session's transaction, streamed."""
    with dbapi(session).cursor() as cur:
        copy_in(cur, table, columns, rows)


def copy_out(session: Session, query: str) -> list[list[str]]:
    """The rows of ``query`` (trusted SQL, no parameters) through ``COPY ... TO STDOUT``: fields as text."""
    buf = io.StringIO()
    with dbapi(session).cursor() as cur:
        cur.copy_expert(f"COPY ({query}) TO STDOUT", buf)
    return [line.split("\t") for line in buf.getvalue().splitlines()]
