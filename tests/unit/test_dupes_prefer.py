"""The preferred file of a duplicate group (pure): the listener's latest choice, else lossless over lossy, then bit
rate, sample rate, channels, length, id; and the kinds a caller may name."""

from __future__ import annotations

import datetime as dt

import pytest

from musicindex.dupes.prefer import FileQuality, preferred, why_preferred
from musicindex.errors import InvalidArgumentError
from musicindex.query.duplicates import check_kind
from musicindex.vocab import SAME_RECORDING, SAME_SONG


def test_the_highest_quality_wins_unless_the_listener_chose():
    mp3 = FileQuality(1, "MP3", 320, 44100, 2, 200.0)
    flac = FileQuality(2, "FLAC", 900, 44100, 2, 200.0)
    flac_hi = FileQuality(3, "FLAC", 1400, 96000, 2, 200.0)
    ogg_trimmed = FileQuality(4, "OGG", 320, 44100, 2, 194.0)
    ogg = FileQuality(5, "OGG", 320, 44100, 2, 200.0)
    assert preferred([mp3, flac]).track_id == 2  # lossless beats a higher-looking lossy bit rate
    assert preferred([flac, flac_hi, mp3]).track_id == 3
    assert preferred([ogg_trimmed, ogg]).track_id == 5  # the untrimmed copy
    assert preferred([mp3, FileQuality(0, "MP3", 320, 44100, 2, 200.0)]).track_id == 0  # then the lower id
    assert preferred([FileQuality(7), mp3]).track_id == 1  # unknown facts rank below known ones
    t0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    chosen = FileQuality(1, "MP3", 128, 22050, 1, 100.0, chosen_at=t0)
    later = FileQuality(5, "OGG", 96, 22050, 1, 100.0, chosen_at=t0 + dt.timedelta(seconds=1))
    assert preferred([flac_hi, chosen]).track_id == 1 and why_preferred(chosen) == "chosen"
    assert preferred([chosen, later, flac_hi]).track_id == 5  # the latest choice
    assert why_preferred(flac_hi) == "highest quality: lossless, 1400 kbit/s, 96000 Hz"


def test_kinds_are_named_by_their_words_or_short_forms_and_anything_else_is_refused():
    assert [check_kind(k) for k in (None, "same recording", "recording", "Same-Recording", "song", "same_song")] == [
        None, SAME_RECORDING, SAME_RECORDING, SAME_RECORDING, SAME_SONG, SAME_SONG]  # fmt: skip
    for bad in ("", "copies", "a\x00b", 3):
        with pytest.raises(InvalidArgumentError, match="same recording"):
            check_kind(bad)
