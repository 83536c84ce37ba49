"""The file name endings that look like audio, in a module of their own: the scan of a folder (the ingest command)
uses them without loading the decoders (numpy, soundfile)."""

from __future__ import annotations

AUDIO_EXTENSIONS = frozenset(
    [
        ".wav",
        ".wave",
        ".flac",
        ".ogg",
        ".oga",
        ".opus",
        ".mp3",
        ".mp2",
        ".aiff",
        ".aif",
        ".aifc",
        ".au",
        ".snd",
        ".caf",
        ".w64",
        ".rf64",
        ".m4a",
        ".mp4",
        ".aac",
        ".wma",
        ".wv",
        ".ape",
    ]
)
"""File name endings that look like audio: ingestion scans these (other files are ignored, not
failed), and a file with one of them that no decoder reads is corrupt rather than unsupported."""

__all__ = ["AUDIO_EXTENSIONS"]
