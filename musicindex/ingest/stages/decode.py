"""Stage ``decode``: the audio stream as the decoder found it (duration, sample rate, channels, format, bit rate)
and the decode's own checks (too short, silent, non-finite samples: the track fails with the reason). The decode
itself is shared: every stage's audio comes from one decode per track (``base.AudioSource``)."""

from __future__ import annotations

from typing import Any

from musicindex.audio.window import SAMPLE_RATE
from musicindex.ingest.stages.base import Audio, Needs, Stage, TrackWork


class DecodeStage(Stage):
    name = "decode"
    version = 1
    needs = Needs(audio=(Audio(SAMPLE_RATE),), stages=("tags",))  # the tags' bit rate, when they give one
    writes = "tracks: duration, sample_rate, channels, format, bit_rate"

    def analyse(self, work: TrackWork) -> dict[str, Any]:
        work.audio.get(Audio(SAMPLE_RATE))  # the window decodes and passes its checks
        info = work.audio.info
        values: dict[str, Any] = {
            "duration": float(info.duration),
            "sample_rate": int(info.sample_rate),
            "channels": int(info.channels),
            "format": info.format,
        }
        if work.outputs["tags"].get("bit_rate") is None and info.duration > 0:  # else the tags' bit rate stands
            values["bit_rate"] = round(work.stat.st_size * 8 / info.duration / 1000)
        return values

    def columns(self, output: dict[str, Any]) -> dict[str, Any]:
        return output


STAGE = DecodeStage()
