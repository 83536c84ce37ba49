"""Pure parts of the scale work (issue 33): the scan's suffix check, the staging rows in COPY's format, the COPY
output parser, the TCP listening settings of the embedded servers, the lease's intervals."""

from __future__ import annotations

import os

import pytest

from musicindex.audio.formats import AUDIO_EXTENSIONS
from musicindex.config import Listen, read_listen
from musicindex.db.copy import _Ints
from musicindex.errors import InvalidArgumentError
from musicindex.ingest.labels import LabelSource
from musicindex.ingest.register import _stage_lines
from musicindex.ingest.scan import ScannedFile, is_audio_name
from musicindex.servers import network
from workers import lease


@pytest.mark.parametrize(
    "name",
    ["a.mp3", ".mp3", "..mp3", "a..mp3", ".a.mp3", "...mp3", "x.MP3", "mp3", "a.mp3.txt", "a.", "a.b.flac",
     "..a.mp3", ". .mp3", "._x.wav", "song.Flac", "noext"],
)  # fmt: skip
def test_audio_names_as_splitext_says(name):
    assert is_audio_name(name) == (os.path.splitext(name)[1].lower() in AUDIO_EXTENSIONS)


def test_stage_lines_escape_and_keep_undecodable_bytes():
    odd = os.fsdecode(b"/m/caf\xe9.mp3")
    files = [ScannedFile("/m/a b/1.mp3", 10, 1.5), ScannedFile("/m/tab\there.mp3", 0, 2.0), ScannedFile(odd, 3, 3.25)]
    lines = list(_stage_lines(iter(files), LabelSource(None)))
    assert lines[0] == "/m/a b/1.mp3\t\\N\t10\t1.5\t\\N\t\\N\n"
    assert lines[1] == "/m/tab\\there.mp3\t\\N\t0\t2.0\t\\N\t\\N\n"
    assert lines[2] == "/m/caf\\\\xe9.mp3\t\\\\x2f6d2f636166e92e6d7033\t3\t3.25\t\\N\t\\N\n"
    folder = list(_stage_lines(iter(files[:1]), LabelSource("folder")))
    assert folder == ["/m/a b/1.mp3\t\\N\t10\t1.5\ta b\tfolder\n"]


def test_copy_output_parsed_into_arrays_across_writes():
    sink = _Ints(2)
    sink.BLOCK = 5  # parse every few bytes: rows cut between writes wait for their end
    data = "1\t0\n22\t1\n333\t0\n4444\t1\n"
    for i in range(0, len(data), 3):
        sink.write(data[i : i + 3])
    sink.flush()
    assert [a.tolist() for a in sink.arrays] == [[1, 22, 333, 4444], [0, 1, 0, 1]]


def test_listen_addresses_and_password_file(tmp_path):
    assert network.parse_addresses("10.0.0.5, ::1,10.0.0.5") == ("10.0.0.5", "::1")
    assert network.parse_addresses("none") == ()
    for bad in ("db.example.org", "10.0.0.1;rm -rf /", "10.0.0.256", "a\x01b"):
        with pytest.raises(InvalidArgumentError, match="is not an IP address"):
            network.parse_addresses(bad)
    pw = tmp_path / "pw"
    pw.write_text("0123456789abcdef-._~XYZ\nsecond line ignored\n")
    pw.chmod(0o644)
    with pytest.raises(InvalidArgumentError, match="can be read by other users"):
        network.read_password_file(pw)
    pw.chmod(0o600)
    assert network.read_password_file(pw) == "0123456789abcdef-._~XYZ"
    pw.write_text("short\n")
    with pytest.raises(InvalidArgumentError, match="16 to 200 characters"):
        network.read_password_file(pw)
    with pytest.raises(InvalidArgumentError, match="No such file"):
        network.read_password_file(tmp_path / "missing")


def test_listen_setting_urls_and_file(tmp_path):
    listen = Listen(("10.0.0.5", "fd00::5"), "p" * 20)
    assert listen.postgres_url("10.0.0.5") == f"postgresql+psycopg2://postgres:{'p' * 20}@10.0.0.5:5432/musicindex"
    assert listen.redis_url("fd00::5") == f"redis://:{'p' * 20}@[fd00::5]:6379/0"
    assert "p" * 20 not in repr(listen)  # never in a log line
    file = tmp_path / "network.json"
    file.write_text('{"addresses": ["10.0.0.5"], "password": "' + "p" * 20 + '"}')
    file.chmod(0o644)
    assert read_listen(file) is None  # readable by others: ignored
    file.chmod(0o600)
    assert read_listen(file) == Listen(("10.0.0.5",), "p" * 20)
    os.symlink(file, tmp_path / "link.json")
    assert read_listen(tmp_path / "link.json") is None  # a link: ignored


def test_lease_intervals_leave_room_for_missed_renewals():
    assert lease.renew_interval(60) == 10 and lease.restore_interval(60) == 10
    assert lease.renew_interval(10) * 5 < 10  # five renewals may be missed before a lease runs out
    assert lease.restore_interval(10) == 3 and lease.restore_interval(3600) == 10
