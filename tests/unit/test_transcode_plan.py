"""What ``stream`` sends (``media.transcode.plan``), ``timeOffset`` parsing, and the short messages players get."""

from __future__ import annotations

import pytest

from musicindex.config import Settings
from musicindex.errors import ConfigError, InvalidArgumentError
from musicindex.media.transcode import CODECS, parse_offset, plan
from musicindex.web.subsonic.endpoints import player_message

S = Settings(home="/nonexistent")


def _plan(settings: Settings = S, **kw):
    args = {"fmt": None, "max_kbps": None, "offset": 0.0, "user_max_kbps": None, "source_kbps": 900,
            "source_suffix": "flac", "duration": 200.0}  # fmt: skip
    return plan(settings, **{**args, **kw})


def test_the_original_unless_something_asks_for_less():
    assert _plan().codec is None
    assert _plan(fmt="raw", max_kbps=64).codec is None  # raw wins over the call's own maxBitRate
    assert _plan(max_kbps=0).codec is None  # 0: no limit
    assert _plan(max_kbps=1000).codec is None  # above the file's bitrate
    low = _plan(max_kbps=64)
    assert low.codec is CODECS["mp3"] and low.kbps == 64
    assert _plan(settings=S.with_(transcode_format="opus"), max_kbps=64).codec is CODECS["opus"]


def test_format_bitrate_and_their_bounds():
    assert _plan(fmt="opus").kbps == 192 and _plan(fmt="OPUS").codec is CODECS["opus"]
    assert _plan(fmt="mp3", max_kbps=99_999_999).kbps == 320
    assert _plan(fmt="mp3", max_kbps=8).kbps == 32
    assert _plan(fmt="opus", max_kbps=300).kbps == 256
    assert _plan(fmt="mp3", source_suffix="mp3", source_kbps=128, max_kbps=320).codec is None  # already so
    assert _plan(fmt="mp3", source_suffix="mp3", source_kbps=320, max_kbps=128).kbps == 128


def test_the_listeners_and_the_servers_maximum_apply_to_raw_too():
    assert _plan(fmt="raw", user_max_kbps=96).kbps == 96
    assert _plan(settings=S.with_(transcode_max_bitrate=128), max_kbps=256).kbps == 128
    assert _plan(user_max_kbps=96, max_kbps=64).kbps == 64  # the lowest wins
    assert _plan(user_max_kbps=96, source_kbps=80).codec is None  # the file is below it


def test_offsets():
    assert _plan(offset=30.5).codec is CODECS["mp3"] and _plan(offset=30.5).offset == 30.5
    assert _plan(fmt="aac", offset=10).estimated_bytes() == 190 * 192_000 // 8
    with pytest.raises(InvalidArgumentError, match="past the end"):
        _plan(offset=200)
    for raw in ("-1", "nan", "inf", "-inf", "1e999", "ten", "0x10"):
        with pytest.raises(InvalidArgumentError, match="timeOffset"):
            parse_offset(raw)
    assert parse_offset(None) == parse_offset("") == 0.0 and parse_offset(" 12.5 ") == 12.5


def test_bad_arguments():
    with pytest.raises(InvalidArgumentError, match="accepted: raw, mp3, opus, aac, m4a"):
        _plan(fmt="flv")
    with pytest.raises(InvalidArgumentError, match="maxBitRate"):
        _plan(max_kbps=-1)
    for bad in ({"transcode_format": "wav"}, {"transcode_bitrate": 16}, {"transcode_max_bitrate": 999},
                {"transcode_max_streams": -1}, {"transcode_cache_mb": -5}):  # fmt: skip
        with pytest.raises(ConfigError, match="MUSICINDEX_TRANSCODE_"):
            S.with_(**bad).validate()


def test_player_messages_stop_before_advice_for_the_admin():
    sql = "no track 5 in the index; `musicindex status` shows what is indexed, `SELECT id, path FROM x` lists ids"
    assert player_message(sql) == "no track 5 in the index"
    assert player_message("no playlist with id 5") == "no playlist with id 5"
    assert player_message("run it again (set MUSICINDEX_QUERY_TIMEOUT higher)") == "run it again"
    assert len(player_message("x" * 1000)) == 300
