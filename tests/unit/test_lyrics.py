"""Lyrics read from bytes and text (``musicindex.audio.lyrics``): synced ``.lrc`` lines, offsets, unsynced text,
and hostile data (huge, binary, other encodings) refused or read safely."""

from __future__ import annotations

import pytest

from musicindex.audio import lyrics
from musicindex.errors import LyricsError

LRC = """[ti:Field Score]
[la:en]
[offset:+500]
[00:12.50]First line
[00:05.00][01:05.2]Chorus twice
no stamp here
[00:20.123]Last  line  \x07
"""


def test_an_lrc_file_gives_synced_lines_in_time_order_with_its_offset_applied():
    found = lyrics.from_lrc_bytes(LRC.encode())
    assert found.synced and found.offset_ms == 500 and found.lang == "en"
    assert [(ln.start_ms, ln.text) for ln in found.lines] == [
        (4500, "Chorus twice"), (12000, "First line"), (19623, "Last  line"), (64700, "Chorus twice")
    ]  # fmt: skip


def test_text_without_stamps_is_unsynced_and_tags_are_unsynced():
    found = lyrics.from_lrc_bytes(b"\n\nOne\n\nTwo\n\n")
    assert not found.synced and [ln.text for ln in found.lines] == ["One", "", "Two"]
    assert all(ln.start_ms is None for ln in found.lines)
    assert [ln.text for ln in lyrics.unsynced("a\r\nb").lines] == ["a", "b"]


@pytest.mark.parametrize(
    ("data", "text"),
    [("Ünïcödé".encode(), "Ünïcödé"), ("\ufeffBOM".encode(), "BOM"), ("Grüße".encode("cp1252"), "Grüße"),
     ("[00:01.00]Лирика".encode("utf-16"), "Лирика")],
)  # fmt: skip
def test_every_encoding_is_read_without_an_exception(data, text):
    assert lyrics.from_lrc_bytes(data).lines[0].text == text


@pytest.mark.parametrize(
    ("data", "reason"),
    [(b"x" * (lyrics.MAX_LYRICS_BYTES + 1), "at most"), (b"\x00\x01PK\x03\x04" * 10, "binary"),
     (bytes(range(1, 32)) * 20, "binary")],
)  # fmt: skip
def test_huge_or_binary_data_is_refused_with_the_reason(data, reason):
    with pytest.raises(LyricsError, match=reason):
        lyrics.from_lrc_bytes(data)


def test_absurd_stamps_and_long_lines_are_bounded():
    found = lyrics.parse_lrc("[9999:59.99]too late\n[00:01]" + "x" * 5000 + "\n[00:02]ok")
    assert [ln.start_ms for ln in found.lines] == [1000, 2000]
    assert len(found.lines[0].text) == lyrics.MAX_LINE_CHARS
    many = lyrics.parse_lrc("\n".join(f"[00:{i % 60:02d}]l{i}" for i in range(3 * lyrics.MAX_LINES)))
    assert len(many.lines) == lyrics.MAX_LINES
