"""Serving the library's files (``musicindex/media``): the audio route against files swapped, linked or renamed
after indexing, HTTP Range edge cases, names that are not UTF-8, and M3U8 paths written byte-exact.

Tracks are registered by the real ingest registration (``musicindex.ingest.register``: size, mtime and the
ingested folder recorded as for any library) over files made in ``tmp_path``; nothing is analysed (the route does
not decode audio), so the files are patterned bytes with audio suffixes.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from musicindex import ingest
from musicindex.db.scratch import scratch_database
from musicindex.errors import TrackFileChangedError, TrackFileMissingError, TrackFileOutsideError
from musicindex.index import MusicIndex
from musicindex.media import files as media_files
from musicindex.media import open_track_file, parse_range
from musicindex.media.files import RangeNotSatisfiable, content_disposition
from musicindex.playlists import Entry, write_m3u8
from musicindex.web import create_app

DATA = bytes(range(256)) * 40  # 10 240 bytes, every byte value
LATIN1 = b"caf\xe9 latin1.ogg"
SECRET = b"root:$6$secret-hash:19000:0:99999:7:::\n" * 50


@pytest.fixture(scope="module")
def lib(base_settings, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("media")
    with scratch_database(base_settings.database_url, prefix="mi_media") as db:
        index = MusicIndex(db, base_settings.with_(database_url=db.url))
        app = create_app(index)
        with TestClient(app, base_url="http://127.0.0.1") as client:
            yield {"db": db, "index": index, "tmp": tmp, "client": client, "settings": index.settings}
        index.close()


def make_library(lib: dict[str, Any], name: str, files: dict[str, bytes | Path], **register: Any) -> dict[str, int]:
    """A folder ``name`` with ``files`` (relative name -> content, or a Path to link to), registered; name -> id."""
    root = lib["tmp"] / name
    for rel, content in files.items():
        p = os.path.join(os.fsencode(root), os.fsencode(rel))
        os.makedirs(os.path.dirname(p), exist_ok=True)
        if isinstance(content, Path):
            os.symlink(content, p)
        else:
            with open(p, "wb") as fh:
                fh.write(content)
    ingest.register(lib["db"], [root], **register)
    with lib["db"].engine.connect() as conn:
        rows = conn.execute(text("SELECT id, path, path_bytes FROM tracks")).all()
    out = {}
    for tid, path, raw in rows:
        fs = os.fsencode(os.fsdecode(bytes(raw)) if raw is not None else path)
        if fs.startswith(os.fsencode(root) + b"/"):
            out[os.fsdecode(fs[len(os.fsencode(root)) + 1 :])] = int(tid)
    return out


def audio(lib: dict[str, Any], tid: int, **kwargs: Any):
    return lib["client"].get(f"/api/tracks/{tid}/audio", **kwargs)


def secret_file(lib: dict[str, Any]) -> Path:
    p = lib["tmp"] / "outside" / "shadow"
    p.parent.mkdir(exist_ok=True)
    p.write_bytes(SECRET)
    return p


# --------------------------------------------------------------------------- symlinks and swapped files
def test_a_symlink_swapped_in_after_indexing_is_never_followed_out_of_the_library(lib):
    """Before: ``ln -sfn /etc/shadow lib/good/a.ogg`` and ``GET /api/tracks/ID/audio`` served the target."""
    ids = make_library(lib, "swap", {"good/a.ogg": DATA, "good/b.ogg": DATA[:5000]})
    root = lib["tmp"] / "swap"
    assert audio(lib, ids["good/a.ogg"]).content == DATA
    target = root / "good" / "a.ogg"
    target.unlink()
    target.symlink_to(secret_file(lib))  # ln -sfn .../shadow lib/good/a.ogg
    for kwargs in ({}, {"headers": {"Range": "bytes=0-99"}}):
        r = audio(lib, ids["good/a.ogg"], **kwargs)
        assert r.status_code == 404 and r.json()["error"] == "file_refused", r.text[:300]
        assert b"secret-hash" not in r.content and "shadow" not in r.text
    r = lib["client"].head(f"/api/tracks/{ids['good/a.ogg']}/audio")
    assert r.status_code == 404 and not r.content
    # a link to another file of the library is not the file that was indexed either
    target.unlink()
    target.symlink_to(root / "good" / "b.ogg")
    r = audio(lib, ids["good/a.ogg"])
    assert r.status_code == 409 and r.json()["error"] == "file_changed"
    # a folder on the way swapped for a link out of the library, to a copy with the same size and time
    (root / "good" / "a.ogg").unlink()
    (root / "good" / "a.ogg").write_bytes(DATA)
    st = (root / "good" / "a.ogg").stat()
    elsewhere = lib["tmp"] / "outside" / "good"
    shutil.copytree(root / "good", elsewhere, copy_function=shutil.copy2)
    os.utime(elsewhere / "a.ogg", ns=(st.st_atime_ns, st.st_mtime_ns))
    with lib["db"].engine.begin() as conn:  # the index saw exactly this file
        conn.execute(
            text("UPDATE tracks SET size = :s, mtime = :m WHERE id = :i"),
            {"s": st.st_size, "m": st.st_mtime, "i": ids["good/a.ogg"]},
        )
    assert audio(lib, ids["good/a.ogg"]).content == DATA
    shutil.rmtree(root / "good")
    (root / "good").symlink_to(elsewhere, target_is_directory=True)
    r = audio(lib, ids["good/a.ogg"])
    assert r.status_code == 404 and r.json()["error"] == "file_refused"


def test_links_out_of_the_library_are_served_only_when_symlinks_are_followed(lib):
    outside = lib["tmp"] / "outside-music" / "song.mp3"
    outside.parent.mkdir()
    outside.write_bytes(DATA)
    ids = make_library(lib, "links", {"linked.mp3": outside}, follow_symlinks=True)
    tid = ids["linked.mp3"]
    r = audio(lib, tid)
    assert r.status_code == 404 and r.json()["error"] == "file_refused"
    following = MusicIndex(lib["db"], lib["settings"].with_(follow_symlinks=True))
    with TestClient(create_app(following), base_url="http://127.0.0.1") as c:
        r = c.get(f"/api/tracks/{tid}/audio")
        assert r.status_code == 200 and r.content == DATA
        assert r.headers["content-type"] == "audio/mpeg"
        outside.write_bytes(DATA[:100])  # followed, but still only the file that was indexed
        r = c.get(f"/api/tracks/{tid}/audio")
        assert r.status_code == 409 and r.json()["error"] == "file_changed"


def test_a_file_replaced_after_indexing_is_refused(lib):
    ids = make_library(lib, "replaced", {"x.flac": DATA, "y.flac": DATA})
    root = lib["tmp"] / "replaced"
    (root / "x.flac").write_bytes(DATA + b"more")  # other size
    r = audio(lib, ids["x.flac"])
    assert r.status_code == 409 and r.json()["error"] == "file_changed" and "musicindex ingest" in r.json()["message"]
    st = (root / "y.flac").stat()
    os.utime(root / "y.flac", ns=(st.st_atime_ns, st.st_mtime_ns + 5_000_000_000))  # same size, other time
    assert audio(lib, ids["y.flac"]).status_code == 409
    ingest.register(lib["db"], [root])  # registered again: the index knows the new files, they are served
    assert audio(lib, ids["x.flac"]).content == DATA + b"more"
    assert audio(lib, ids["y.flac"]).content == DATA


def test_a_fifo_a_folder_or_a_missing_file_at_the_path_is_refused_at_once(lib):
    ids = make_library(lib, "odd", {"fifo.wav": DATA, "dir.wav": DATA, "gone.wav": DATA})
    root = lib["tmp"] / "odd"
    (root / "fifo.wav").unlink()
    os.mkfifo(root / "fifo.wav")
    (root / "dir.wav").unlink()
    (root / "dir.wav").mkdir()
    (root / "gone.wav").unlink()
    t0 = time.monotonic()
    for name, category in (("fifo.wav", "file_missing"), ("dir.wav", "file_missing"), ("gone.wav", "file_missing")):
        r = audio(lib, ids[name])
        assert r.status_code == 404 and r.json()["error"] == category, (name, r.text)
    assert time.monotonic() - t0 < 5  # nothing blocked on the FIFO
    assert lib["client"].get("/api/tracks/999999999/audio").json()["error"] == "unknown_track"


def test_the_descriptor_is_checked_again_after_it_is_opened(lib, monkeypatch):
    """A folder on the way swapped for a symlink between the path check and the open: the open descriptor names
    a file outside the library, so it is refused (``/proc/self/fd``), never read."""
    ids = make_library(lib, "race", {"in/song.ogg": DATA})
    root = lib["tmp"] / "race"
    elsewhere = lib["tmp"] / "outside" / "race-in"
    elsewhere.mkdir(parents=True)
    (elsewhere / "song.ogg").write_bytes(SECRET)
    real_realpath = os.path.realpath
    swapped = []

    def realpath_then_swap(path, *args, **kwargs):
        resolved = real_realpath(path, *args, **kwargs)
        if not swapped and os.fsdecode(path).endswith("song.ogg"):  # right after the check of the track's path
            swapped.append(path)
            shutil.rmtree(root / "in")
            (root / "in").symlink_to(elsewhere, target_is_directory=True)
        return resolved

    monkeypatch.setattr(media_files.os.path, "realpath", realpath_then_swap)
    with pytest.raises((TrackFileOutsideError, TrackFileChangedError)):
        open_track_file(lib["index"], ids["in/song.ogg"])
    assert swapped


def test_open_track_file_for_other_routes(lib):
    ids = make_library(lib, "api", {"a b/Track 1.opus": DATA})
    before = len(os.listdir("/proc/self/fd"))
    with open_track_file(lib["index"], ids["a b/Track 1.opus"]) as f:
        assert (f.size, f.media_type, f.name, f.name_bytes) == (len(DATA), "audio/ogg", "Track 1.opus", b"Track 1.opus")
        assert f.read(0, 4) == DATA[:4] and f.read(len(DATA) - 2, 10) == DATA[-2:]
        with f.dup_file() as fh:
            assert fh.read() == DATA
        assert f.etag.startswith('"') and "GMT" in f.last_modified
    assert f.closed and len(os.listdir("/proc/self/fd")) == before
    with pytest.raises(TrackFileMissingError):
        (lib["tmp"] / "api" / "a b" / "Track 1.opus").unlink()
        open_track_file(lib["index"], ids["a b/Track 1.opus"])


# --------------------------------------------------------------------------- Range
def test_range_requests_edge_cases(lib):
    ids = make_library(lib, "ranges", {"r.wav": DATA, "empty.wav": b""})
    tid, size = ids["r.wav"], len(DATA)
    cases = [
        ("bytes=0-0", 206, DATA[:1], "bytes 0-0"),
        ("bytes=0-", 206, DATA, f"bytes 0-{size - 1}"),
        ("bytes=10-19", 206, DATA[10:20], "bytes 10-19"),
        (f"bytes={size - 1}-", 206, DATA[-1:], f"bytes {size - 1}-{size - 1}"),
        (f"bytes={size - 5}-{size + 100}", 206, DATA[-5:], f"bytes {size - 5}-{size - 1}"),
        ("bytes=-1", 206, DATA[-1:], f"bytes {size - 1}-{size - 1}"),
        ("bytes=-300", 206, DATA[-300:], f"bytes {size - 300}-{size - 1}"),
        (f"bytes=-{size * 10}", 206, DATA, f"bytes 0-{size - 1}"),
        ("bytes=0-" + "9" * 5000, 206, DATA, f"bytes 0-{size - 1}"),  # a huge number is no 500
        ("BYTES = 2 - 3", 206, DATA[2:4], "bytes 2-3"),
        (f"bytes={size}-", 416, b"", None),
        (f"bytes={size + 10}-{size + 20}", 416, b"", None),
        ("bytes=-0", 416, b"", None),
        ("bytes=" + "9" * 5000 + "-", 416, b"", None),
        ("bytes=5-2", 200, DATA, None),  # invalid: ignored
        ("bytes=0-1,4-5", 200, DATA, None),  # several ranges: the whole file
        ("items=0-1", 200, DATA, None),
        ("bytes=", 200, DATA, None),
        ("bytes=a-b", 200, DATA, None),
        ("garbage\x7f", 200, DATA, None),
    ]
    for header, status, body, content_range in cases:
        r = audio(lib, tid, headers={"Range": header})
        assert r.status_code == status, (header, r.status_code, r.text[:200])
        assert r.content == body, header
        assert r.headers["accept-ranges"] == "bytes"
        if status == 416:
            assert r.headers["content-range"] == f"bytes */{size}" and r.headers["content-length"] == "0"
        elif content_range:
            assert r.headers["content-range"] == f"{content_range}/{size}", header
        if status != 416:
            assert int(r.headers["content-length"]) == len(body), header
    r = audio(lib, tid)
    assert r.status_code == 200 and r.headers["content-type"] == "audio/wav" and "last-modified" in r.headers
    etag = r.headers["etag"]
    # conditional requests and If-Range
    assert audio(lib, tid, headers={"If-None-Match": etag}).status_code == 304
    assert audio(lib, tid, headers={"If-None-Match": '"other"'}).status_code == 200
    assert audio(lib, tid, headers={"If-Modified-Since": r.headers["last-modified"]}).status_code == 304
    assert audio(lib, tid, headers={"If-Modified-Since": "not a date"}).status_code == 200
    assert audio(lib, tid, headers={"Range": "bytes=0-9", "If-Range": etag}).status_code == 206
    r2 = audio(lib, tid, headers={"Range": "bytes=0-9", "If-Range": '"stale"'})
    assert r2.status_code == 200 and r2.content == DATA
    # HEAD: the headers of the GET, no body
    h = lib["client"].head(f"/api/tracks/{tid}/audio")
    assert h.status_code == 200 and h.content == b"" and h.headers["content-length"] == str(size)
    h = lib["client"].head(f"/api/tracks/{tid}/audio", headers={"Range": "bytes=0-0"})
    assert h.status_code == 206 and h.content == b"" and h.headers["content-length"] == "1"
    # an empty file: the whole of it is nothing, no range of it exists
    r = audio(lib, ids["empty.wav"])
    assert r.status_code == 200 and r.content == b"" and r.headers["content-length"] == "0"
    assert audio(lib, ids["empty.wav"], headers={"Range": "bytes=0-0"}).status_code == 416
    assert audio(lib, ids["empty.wav"], headers={"Range": "bytes=-5"}).status_code == 416


def test_parse_range_directly():
    assert parse_range(None, 10) is None and parse_range("bytes=0-0", 10) == (0, 1)
    assert parse_range("bytes=-3", 10) == (7, 10) and parse_range("bytes=3-", 10) == (3, 10)
    assert parse_range("bytes=3-100", 10) == (3, 10) and parse_range("bytes=4-3", 10) is None
    for unsatisfiable in ("bytes=10-", "bytes=-0", "bytes=10-20"):
        with pytest.raises(RangeNotSatisfiable):
            parse_range(unsatisfiable, 10)
    with pytest.raises(RangeNotSatisfiable):
        parse_range("bytes=0-0", 0)


def test_every_answer_closes_its_descriptor(lib):
    ids = make_library(lib, "fds", {"f.ogg": DATA})
    tid = ids["f.ogg"]
    audio(lib, tid)
    before = len(os.listdir("/proc/self/fd"))
    for headers in ({}, {"Range": "bytes=0-0"}, {"Range": "bytes=99999-"}, {"If-None-Match": "*"}):
        for _ in range(5):
            audio(lib, tid, headers=headers)
            lib["client"].head(f"/api/tracks/{tid}/audio", headers=headers)
    assert len(os.listdir("/proc/self/fd")) == before


# --------------------------------------------------------------------------- names that are not UTF-8
def test_a_file_name_that_is_not_utf8_streams(lib):
    """Before: a 500 (UnicodeEncodeError in the response's filename)."""
    ids = make_library(lib, "latin1", {os.fsdecode(b"dir/" + LATIN1): DATA})
    tid = ids[os.fsdecode(b"dir/" + LATIN1)]
    r = audio(lib, tid)
    assert r.status_code == 200 and r.content == DATA, r.text[:300]
    assert r.headers["content-type"] == "audio/ogg"
    disposition = "inline; filename=\"caf_ latin1.ogg\"; filename*=UTF-8''caf%E9%20latin1.ogg"
    assert r.headers["content-disposition"] == disposition
    r = audio(lib, tid, headers={"Range": "bytes=-4"})
    assert r.status_code == 206 and r.content == DATA[-4:]
    assert content_disposition("attachment", 'ü "x".mp3'.encode()) == (
        "attachment; filename=\"__ _x_.mp3\"; filename*=UTF-8''%C3%BC%20%22x%22.mp3"
    )


def test_m3u8_paths_are_written_byte_exact(lib, tmp_path):
    """Before: the playlist held the display form (``caf\\xe9``), a file that does not exist."""
    ids = make_library(lib, "m3u", {os.fsdecode(b"a/" + LATIN1): DATA, "a/plain é.ogg": DATA})
    raw_id, plain_id = ids[os.fsdecode(b"a/" + LATIN1)], ids["a/plain é.ogg"]
    root = os.fsencode(lib["tmp"] / "m3u")
    r = lib["client"].get("/api/m3u", params={"ids": [raw_id, plain_id]})
    assert r.status_code == 200 and r.headers["content-type"].startswith("audio/x-mpegurl")
    lines = [ln for ln in r.content.split(b"\n") if ln and not ln.startswith(b"#")]
    assert lines == [root + b"/a/" + LATIN1, root + "/a/plain é.ogg".encode()]
    assert all(os.path.exists(ln) for ln in lines)
    r = lib["client"].get("/api/m3u", params={"ids": [raw_id], "base": os.fsdecode(root)})
    assert [ln for ln in r.content.split(b"\n") if ln and not ln.startswith(b"#")] == [b"a/" + LATIN1]
    # the CLI's writer (--m3u FILE) too
    files = lib["index"].track_files([raw_id, plain_id])
    out = write_m3u8(tmp_path / "p.m3u8", [Entry(f.path, "t", "a", 1.0) for f in files])
    assert [ln for ln in out.read_bytes().split(b"\n") if ln and not ln.startswith(b"#")] == lines
