"""The sample library on disk: audio files in every format, their tags, and a whole GTZAN-like library.

Public API::

    generate_library(root, per_genre=10, ...) -> list[SampleTrack]
    FORMATS                    # extension -> (soundfile format, subtype)
    write_audio(path, audio, sr, fmt=None)
    write_tags(path, fmt, title=..., artist=..., ...)
"""

from __future__ import annotations

import os
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from musicindex.sample.styles import GENRES
from musicindex.sample.synth import synthesize

# ---------------------------------------------------------------------------------
# Files: formats, tags, library
# ---------------------------------------------------------------------------------

#: extension -> (soundfile format, subtype)
FORMATS: dict[str, tuple[str, str]] = {
    "wav": ("WAV", "PCM_16"),
    "flac": ("FLAC", "PCM_16"),
    "ogg": ("OGG", "VORBIS"),
    "mp3": ("MP3", "MPEG_LAYER_III"),
    "aiff": ("AIFF", "PCM_16"),
    "au": ("AU", "PCM_16"),
}
_ALIASES = {"aif": "aiff", "oga": "ogg", "wave": "wav", "snd": "au"}

#: formats that carry tags (vorbis comments for flac/ogg, ID3 for mp3/wav/aiff); AU has none
TAGGABLE_FORMATS = frozenset({"wav", "flac", "ogg", "mp3", "aiff"})

_FINGERPRINT_KEY = "musicindex-synth"


def _fmt_of(path: Path, fmt: str | None) -> str:
    f = (fmt or path.suffix.lstrip(".")).lower()
    f = _ALIASES.get(f, f)
    if f not in FORMATS:
        raise ValueError(f"unsupported format {f!r}; choose one of {sorted(FORMATS)}")
    return f


def write_audio(path: str | os.PathLike, audio: np.ndarray, sr: int, fmt: str | None = None) -> Path:
    """Write ``audio`` (frames, channels) float in [-1, 1] with the right soundfile format."""
    import soundfile as sf

    path = Path(path)
    f = _fmt_of(path, fmt)
    sf_format, subtype = FORMATS[f]
    sf.write(str(path), audio, sr, format=sf_format, subtype=subtype)
    return path


def write_tags(
    path: str | os.PathLike,
    fmt: str | None = None,
    *,
    title: str,
    artist: str,
    album: str,
    year: int | str,
    genre: str,
    track: int | None = None,
    comment: str | None = None,
    albumartist: str | None = None,
    disc: int | None = None,
    picture: bytes | None = None,
) -> bool:
    """Write title/artist/album/date/genre (and track and disc number, album artist, comment, an embedded front
    cover ``picture`` (PNG or JPEG bytes)) with mutagen.

    Vorbis comments for FLAC/Ogg, ID3v2 for MP3, an ``id3`` chunk for WAV/AIFF.
    Returns False (writing nothing) for formats without tag support (AU).
    """
    path = Path(path)
    f = _fmt_of(path, fmt)
    if f not in TAGGABLE_FORMATS:
        return False
    if f in ("flac", "ogg"):
        from mutagen.flac import FLAC
        from mutagen.oggvorbis import OggVorbis

        audio: Any = FLAC(str(path)) if f == "flac" else OggVorbis(str(path))
        if audio.tags is None:
            audio.add_tags()
        audio["title"] = title
        audio["artist"] = artist
        audio["album"] = album
        audio["date"] = str(year)
        audio["genre"] = genre
        if track is not None:
            audio["tracknumber"] = str(track)
        if disc is not None:
            audio["discnumber"] = str(disc)
        if albumartist:
            audio["albumartist"] = albumartist
        if comment:
            audio["comment"] = comment
        if picture:
            import base64

            from mutagen.flac import Picture

            pic = Picture()
            pic.type, pic.mime, pic.data = 3, _image_mime(picture), picture
            if f == "flac":
                audio.add_picture(pic)
            else:
                audio["metadata_block_picture"] = [base64.b64encode(pic.write()).decode("ascii")]
        audio.save()
        return True
    from mutagen import id3
    from mutagen.aiff import AIFF
    from mutagen.mp3 import MP3
    from mutagen.wave import WAVE

    audio = {"mp3": MP3, "wav": WAVE}.get(f, AIFF)(str(path))
    if audio.tags is None:
        audio.add_tags()
    tags: Any = audio.tags
    tags.add(id3.TIT2(encoding=3, text=title))
    tags.add(id3.TPE1(encoding=3, text=artist))
    tags.add(id3.TALB(encoding=3, text=album))
    tags.add(id3.TDRC(encoding=3, text=str(year)))
    tags.add(id3.TCON(encoding=3, text=genre))
    if track is not None:
        tags.add(id3.TRCK(encoding=3, text=str(track)))
    if disc is not None:
        tags.add(id3.TPOS(encoding=3, text=str(disc)))
    if albumartist:
        tags.add(id3.TPE2(encoding=3, text=albumartist))
    if picture:
        tags.add(id3.APIC(encoding=3, mime=_image_mime(picture), type=3, desc="cover", data=picture))
    if comment:
        tags.add(id3.COMM(encoding=3, lang="eng", desc="", text=comment))
    audio.save()
    return True


def _image_mime(data: bytes) -> str:
    return "image/png" if data[:8] == b"\x89PNG\r\n\x1a\n" else "image/jpeg"


def cover_image(text: str, size: int = 300, seed: int = 0) -> bytes:
    """A PNG cover made up for a sample album: a colour field from ``seed`` with ``text`` on it (Pillow)."""
    import io

    from PIL import Image, ImageDraw

    rng = np.random.default_rng(seed)
    top, bottom = rng.integers(30, 220, 3), rng.integers(30, 220, 3)
    ramp = np.linspace(0.0, 1.0, size)[:, None, None]
    pixels = (top[None, None, :] * (1 - ramp) + bottom[None, None, :] * ramp).repeat(size, axis=1)
    img = Image.fromarray(pixels.astype(np.uint8), "RGB")
    ImageDraw.Draw(img).text((12, size - 28), text[:40], fill=(255, 255, 255))
    out = io.BytesIO()
    img.save(out, "PNG")
    return out.getvalue()


@lru_cache(maxsize=256)
def _album_cover(artist: str, album: str) -> bytes:
    return cover_image(f"{artist}: {album}", seed=zlib.crc32(album.encode()))


def _read_comment(path: Path, f: str) -> str | None:
    """The comment tag written by :func:`write_tags`, or None."""
    try:
        import mutagen

        audio = mutagen.File(str(path))
        if audio is None or audio.tags is None:
            return None
        if f in ("flac", "ogg"):
            v = audio.tags.get("comment")
            return v[0] if v else None
        for frame in audio.tags.getall("COMM"):
            return str(frame.text[0]) if frame.text else None
    except Exception:  # noqa: BLE001 - an unreadable comment counts as absent
        return None
    return None


@dataclass
class SampleTrack:
    """One synthesized file of a library (what was written, and its tag values)."""

    path: Path
    genre: str
    format: str
    duration: float
    seed: int
    title: str
    artist: str
    album: str
    year: int = 0
    sr: int = 22050
    channels: int = 1
    tagged: bool = False


_ARTIST_WORDS = {
    "ambient": ["Glass Horizon", "Slow Tide Ensemble", "Nimbus Field", "Aurora Drift"],
    "techno": ["Unit 303", "Concrete Pulse", "Kaltwerk", "Modular Theory"],
    "rock": ["The Loud Arrows", "Rusty Pistons", "Crimson Highway", "Static Kings"],
    "jazz": ["Miles Okafor Trio", "The Blue Quarter", "Nina Valdez Quartet", "Smoke & Brass"],
    "classical": ["Aurelia Chamber Orchestra", "Quartetto Lumen", "E. Hartmann", "Vienna Salon Strings"],
    "hiphop": ["MC Lowkey", "Dusty Crates", "Brooklyn Static", "Lyric Sav"],
    "metal": ["Iron Cathedral", "Abyssal Throne", "Ravenhowl", "Forge of Ruin"],
    "reggae": ["Roots Revival", "Kingston Sun", "The Dub Shepherds", "Irie Lion"],
}
_TITLE_A = [
    "Midnight",
    "Golden",
    "Broken",
    "Silent",
    "Electric",
    "Velvet",
    "Hollow",
    "Burning",
    "Distant",
    "Paper",
    "Crystal",
    "Wild",
    "Lonely",
    "Neon",
    "Frozen",
    "Sweet",
]
_TITLE_B = [
    "River",
    "Signal",
    "Garden",
    "Machine",
    "Heart",
    "Road",
    "Echo",
    "Sky",
    "Island",
    "Letter",
    "Engine",
    "Fire",
    "Shadow",
    "Morning",
    "Window",
    "Dance",
]


def track_seed(seed: int, genre: str, index: int) -> int:
    """The clip seed :func:`generate_library` uses for file ``index`` of ``genre``."""
    return (int(seed) * 1_000_003 + index * 7919 + zlib.crc32(genre.encode())) & 0x7FFFFFFF


def _metadata(genre: str, index: int, seed: int) -> tuple[str, str, str, int]:
    rng = np.random.default_rng([seed & 0xFFFFFFFF, zlib.crc32(genre.encode()), index])
    artists = _ARTIST_WORDS.get(genre) or [f"{genre.title()} Project {c}" for c in "ABC"]
    a = index % len(artists)
    artist = artists[a]
    album_no = (index // len(artists)) % 3
    arng = np.random.default_rng([seed & 0xFFFFFFFF, zlib.crc32(artist.encode()), album_no])
    album = f"{_TITLE_A[arng.integers(len(_TITLE_A))]} {_TITLE_B[arng.integers(len(_TITLE_B))]}"
    year = int(arng.integers(1965, 2024))
    title = f"{_TITLE_A[rng.integers(len(_TITLE_A))]} {_TITLE_B[rng.integers(len(_TITLE_B))]}"
    return title, artist, album, year


def generate_library(
    root: str | os.PathLike,
    per_genre: int = 10,
    genres: Iterable[str] | None = None,
    duration: float = 30.0,
    sr: int = 22050,
    formats: Sequence[str] = ("wav",),
    seed: int = 0,
    channels: int = 1,
    tags: bool = True,
    pictures: bool = False,
) -> list[SampleTrack]:
    """Write a GTZAN-like library ``root/<genre>/<genre>.<nnnnn>.<ext>`` and describe it.

    File ``i`` of each genre uses ``formats[i % len(formats)]`` (wav, flac, ogg, mp3,
    aiff, au) and clip seed :func:`track_seed`. With ``tags=True`` title, artist (a
    few fake artists per genre), album, date/year, genre (the genre key, e.g. "hiphop",
    the same word as the folder) and track number are written with mutagen where the
    format supports tags (all but AU). ``pictures=True`` also embeds a made-up front cover per album
    (:func:`cover_image`) where the format can hold one (FLAC, Ogg, MP3, WAV/AIFF ID3).

    Re-running is cheap and leaves existing files untouched (same bytes on disk, same
    mtime), so a second demo run reuses them:

    * a tagged file whose fingerprint comment (genre, seed, duration, sr, channels) matches
      is skipped without rendering;
    * otherwise the clip is rendered to a temporary file next to the target; if the target
      already exists with the same size it is kept and the temporary file deleted, else the
      temporary file atomically replaces it (readers never see a half-written file).
    """
    root = Path(root)
    genre_list = list(genres) if genres is not None else list(GENRES)
    for g in genre_list:
        if g not in GENRES:
            raise ValueError(f"unknown genre {g!r}; choose one of {sorted(GENRES)}")
    fmts = [_fmt_of(Path("x." + f), f) for f in formats]
    if not fmts:
        raise ValueError("formats must not be empty")
    tracks: list[SampleTrack] = []
    for g in genre_list:
        gdir = root / g
        gdir.mkdir(parents=True, exist_ok=True)
        for i in range(per_genre):
            f = fmts[i % len(fmts)]
            path = gdir / f"{g}.{i:05d}.{f}"
            s = track_seed(seed, g, i)
            title, artist, album, year = _metadata(g, i, seed)
            fingerprint = (
                f"{_FINGERPRINT_KEY} v1 genre={g} seed={s} duration={duration:g} sr={sr} channels={channels}"
                + (" picture" if pictures else "")
            )
            tagged = tags and f in TAGGABLE_FORMATS
            track = SampleTrack(
                path=path,
                genre=g,
                format=f,
                duration=float(duration),
                seed=s,
                title=title,
                artist=artist,
                album=album,
                year=year,
                sr=sr,
                channels=channels,
                tagged=tagged,
            )
            tracks.append(track)
            if tagged and path.is_file() and path.stat().st_size > 0 and _read_comment(path, f) == fingerprint:
                continue
            tmp = gdir / f".{path.stem}.partial-{os.getpid()}.{f}"
            try:
                write_audio(tmp, synthesize(g, duration, sr, s, channels), sr, f)
                if tagged:
                    write_tags(
                        tmp,
                        f,
                        title=title,
                        artist=artist,
                        album=album,
                        year=year,
                        genre=g,
                        track=i + 1,
                        comment=fingerprint,
                        picture=cover_image(f"{artist}: {album}", seed=zlib.crc32(album.encode()))
                        if pictures
                        else None,
                    )
                if path.is_file() and path.stat().st_size == tmp.stat().st_size:
                    tmp.unlink()
                else:
                    os.replace(tmp, path)
            finally:
                if tmp.exists():
                    tmp.unlink()
    return tracks
