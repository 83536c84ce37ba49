"""PostgreSQL ``COPY`` for large sets: stream rows in from an iterator (bounded memory), read a query's rows out.

What registration (millions of scanned files into a staging table), the ingest waiter (the ids it waits for)
and any other bulk step use instead of many-row INSERTs.
"""

from __future__ import annotations

import io
from array import array
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
    """A read-only text stream of COPY rows made lazily from an iterator of tuples (bounded memory); with
    ``lines=True``, of lines already in COPY's text format (each ending with a newline).

    An exception raised by the iterator is kept in ``error`` (psycopg2 reports it only as "COPY failed").
    """

    def __init__(self, rows: Iterator[Any], *, lines: bool = False):
        self._rows = rows if lines else ("\t".join(copy_text(v) for v in row) + "\n" for row in rows)
        self._buf = ""
        self.error: Exception | None = None

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> str:
        want = 1 << 16 if size is None or size < 0 else size
        parts = [self._buf]
        have = len(self._buf)
        try:
            for line in self._rows:
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


def copy_in(cursor: Any, table: str, columns: Sequence[str], rows: Iterable[Any], *, lines: bool = False) -> None:
    """``COPY table (columns) FROM STDIN`` of ``rows`` (tuples; ``lines=True``: lines in COPY's text format) on a
    psycopg2 cursor, streamed."""
    stream = CopyStream(iter(rows), lines=lines)
    try:
        cursor.copy_expert(f"COPY {table} ({', '.join(columns)}) FROM STDIN", stream)
    except Exception:
        if stream.error is not None:
            raise stream.error from None
        raise


def copy_rows(
    session: Session, table: str, columns: Sequence[str], rows: Iterable[Any], *, lines: bool = False
) -> None:
    """``COPY table (columns) FROM STDIN`` of ``rows`` in the session's transaction, streamed (``lines``: see
    :func:`copy_in`)."""
    with dbapi(session).cursor() as cur:
        copy_in(cur, table, columns, rows, lines=lines)


class _Ints(io.TextIOBase):
    """A write-only text stream that parses COPY's output of integer columns into arrays (psycopg2 writes a row at a
    time: rows are gathered into blocks of about a megabyte, each parsed at once)."""

    BLOCK = 1 << 20

    def __init__(self, columns: int):
        self.arrays = [array("q") for _ in range(columns)]
        self._parts: list[str] = []
        self._size = 0

    def writable(self) -> bool:
        return True

    def write(self, data: str) -> int:
        self._parts.append(data)
        self._size += len(data)
        if self._size >= self.BLOCK:
            self.flush()
        return len(data)

    def flush(self) -> None:
        text = "".join(self._parts)
        cut = text.rfind("\n") + 1  # whole rows only; a row cut between two writes waits for its end
        self._parts, self._size = ([text[cut:]], len(text) - cut) if cut < len(text) else ([], 0)
        fields = text[:cut].split()  # tabs and newlines alike
        n = len(self.arrays)
        for i, arr in enumerate(self.arrays):
            arr.extend(map(int, fields[i::n]))


def copy_out_ints(session: Session, query: str, columns: int = 1) -> list[array[int]]:
    """The integer columns of ``query`` (trusted SQL, no NULLs) as arrays of int64, through ``COPY ... TO STDOUT``
    and parsed as they arrive: 8 bytes a value (a million ids in 8 MB, not the 100+ MB of Python lists of text)."""
    sink = _Ints(columns)
    with dbapi(session).cursor() as cur:
        cur.copy_expert(f"COPY ({query}) TO STDOUT", sink)
    sink.flush()
    return sink.arrays


def copy_out(session: Session, query: str) -> list[list[str]]:
    """The rows of ``query`` (trusted SQL, no parameters) through ``COPY ... TO STDOUT``: fields as text."""
    buf = io.StringIO()
    with dbapi(session).cursor() as cur:
        cur.copy_expert(f"COPY ({query}) TO STDOUT", buf)
    return [line.split("\t") for line in buf.getvalue().splitlines()]
