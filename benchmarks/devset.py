#!/usr/bin/env python
"""Assemble a small labelled real-music development set from Debian packages of free music.

    python benchmarks/devset.py [--out DIR] [--cache DIR] [--seed S] [--list]

Quality work needs real recordings held out from training; synthesized audio proves
plumbing only. Debian ships freely licensed game soundtracks as ordinary packages, so a
labelled set can be rebuilt anywhere with ``apt-get`` alone (no other network access):

1. ``apt-get download`` each package of ``SOURCES`` (pinned version when still available)
   into ``--cache`` (default ``~/.cache/musicindex-devset/debs``); present files are reused.
2. Stream the package's data archive with ``dpkg-deb --fsys-tarfile`` and extract only the
   picked music files and the package's copyright file into ``CACHE/extract/<package>``
   (``dpkg-deb -x`` would write the whole package: 0ad-data alone unpacks to 3.2 GB); music
   packed in a zip/pk3 inside the package is read from that archive, byte for byte. A stamp
   skips this step on reruns with the same .deb and picks.
3. Label each file by the first matching pick of its package (label ``None`` = not used),
   drop files shorter than ``--min-duration`` (20 s: jingles, stingers), exact duplicates
   (sha256), cross-package copies (same artist + title tags) and variants of one tune
   (``_fast``, ``_old``, ``_remix``, ... when the plain version is in the set).
4. Group files by tune (normalized stem: ``forest``/``forest2``/``forest3`` form one group)
   and split each label ~70/30 into train / held-out, whole groups at a time, in the order
   of a seeded hash of the group key, so a tune and its siblings never straddle the split.
5. Write into ``--out`` (default ``~/.cache/musicindex-devset/set``): ``audio/<package>/...``
   (hard links to the extracted files, or copies: real files, full tracks as shipped; the
   label is *not* in the path, so ``--label-from folder`` cannot leak held-out labels),
   ``labels.csv`` (``path,label``, train only, absolute paths: the format of
   ``musicindex ingest DIR --label-from csv:labels.csv``), ``heldout.csv`` (same format,
   never for training), ``all.csv`` (``path,label,split,package,licence,duration_s`` then
   audit columns), ``licences/<package>.copyright`` and ``README.md``.

The labels are styles per soundtrack (or per track where the composer's own genre tag says
so), chosen from package descriptions, credits, copyright files, file names and embedded
tags -- not verified by ear. See docs/devset.md for the protocol and the known weaknesses.
"""

from __future__ import annotations

import argparse
import csv
import fnmatch
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import time
import zipfile
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import mutagen
import soundfile as sf

CACHE = Path("~/.cache/musicindex-devset").expanduser()
DEFAULT_SEED = "musicindex-devset-1"
HELDOUT_FRACTION = 0.30
MIN_DURATION = 20.0

# --------------------------------------------------------------------------------------------
# SOURCES: package -> labels, licence, why. Versions as checked in Debian 12 (bookworm) main.
#
# ``picks`` are (glob, label, note) tried in order against each file's path inside the package
# (``container!member`` for music inside a zip/pk3); the first match decides; label None
# excludes. ``licence`` is the package-level licence of the music; a track's own licence is
# taken from the package's machine-readable (DEP-5) copyright file when a stanza matches it,
# else from the pick's ``licence``, else from this one.
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Pick:
    glob: str
    label: str | None
    note: str = ""
    licence: str | None = None


@dataclass(frozen=True)
class Source:
    version: str  # the version checked; newer/older ones are used with a warning
    licence: str
    why: str
    picks: tuple[Pick, ...]
    containers: tuple[str, ...] = ()  # zip/pk3 files inside the package to read music from
    artists: str = ""


SOURCES: dict[str, Source] = {
    "wesnoth-1.16-music": Source(
        version="1:1.16.9-1",
        licence="GPL-2+",
        why="Battle for Wesnoth OST: fantasy orchestral score by ~15 composers; nearly every "
        "file carries the genre tag 'Romantic Classical' (and licence tag 'GPL').",
        artists="Aleksi Aubry-Carlson, Doug Kaufman, Mattias Westlund, Ryan Reilly, Tyler Johnson, "
        "Timothy Pinkham, Jeremy Nicoll, Gianmarco Leone, Stephen Rozanc, Joseph G. Toscano, ...",
        picks=(
            Pick("usr/share/games/wesnoth/1.16/data/core/music/*.ogg", "orchestral", "genre tag 'Romantic Classical'"),
        ),
    ),
    "unknown-horizons": Source(
        version="2019.1-6",
        licence="CC-BY-SA-3.0",
        why="Unknown Horizons (Anno-like city builder) score: orchestral pieces by Tobias Escher, "
        "Matthew Pablo, Sebastian Ahlen, Thomas Davey (credits.xml), plus Grieg's Peer Gynt "
        "'Morning' played by the Czech National Symphony Orchestra (genre tag 'Classical').",
        artists="Tobias Escher (novatlan), Matthew Pablo, Sebastian Ahlen (draikon), Thomas Davey, "
        "Czech National Symphony Orchestra",
        picks=(
            Pick(
                "usr/share/unknown-horizons/content/audio/music/*.ogg",
                "orchestral",
                "orchestral game score; Peer Gynt tagged 'Classical'",
            ),
        ),
    ),
    "flare-game": Source(
        version="1.14-1",
        licence="CC-BY-SA-3.0",
        why="Flare (fantasy action RPG), fantasycore mod: fantasy orchestral themes by Brandon "
        "Morris and remaxim (mods/fantasycore/cutscenes/credits.txt).",
        artists="Brandon Morris, remaxim",
        picks=(
            Pick("*/fantasycore/music/wind_ambient.ogg", None, "wind sound loop, not music"),
            Pick("usr/share/games/flare/mods/fantasycore/music/*.ogg", "orchestral", "fantasy RPG orchestral themes"),
        ),
    ),
    "0ad-data": Source(
        version="0.0.26-1",
        licence="CC-BY-SA-3.0",
        why="0 A.D. (ancient-civilisations RTS) score by Omri Lahav and others: one set of themes "
        "per civilisation (Celtic, Egyptian, Greek, Indian, Persian, Roman, Japanese taiko...) "
        "with ethnic instruments credited in gui/credits/texts/audio.json (celtic harp, "
        "didgeridoo, djembe, dulcimer, cajon, ...). Labelled 'world' (ethnic-orchestral).",
        artists="Omri Lahav, Allan Brown, Sam Gossner, Boris Hansen, Jeff Willet, Mike Skalandunas, "
        "Shlomi Nogay (Wildfire Games)",
        containers=("usr/share/games/0ad/mods/public/public.zip",),
        picks=(
            Pick("*public.zip!audio/music/0_8Bit_Bonus_Track.ogg", None, "8-bit bonus track: chiptune, not world"),
            Pick("*public.zip!audio/music/*.ogg", "world", "civilisation themes, ethnic instruments"),
        ),
    ),
    "marsshooter-data": Source(
        version="0.7.6-7",
        licence="CC-BY-SA-3.0",
        why="M.A.R.S. soundtrack: tracks of the Hungarian band Obsidian Shell (albums 'Elysia', "
        "'Angelic Asylum'), genre tag 'Female Fronted Metal'.",
        artists="Obsidian Shell",
        picks=(
            Pick("usr/share/games/marsshooter/audio/music/*.ogg", "rock-metal", "tag 'Female Fronted Metal'"),
            Pick("usr/share/games/marsshooter/audio/menu.ogg", "rock-metal", "tag 'Female Fronted Metal'"),
            Pick("usr/share/games/marsshooter/audio/tutorial.ogg", "rock-metal", "tag 'Female Fronted Metal'"),
        ),
    ),
    "fretsonfire-songs-muldjord": Source(
        version="2.dfsg-2.1",
        licence="CC-BY-SA-3.0",
        why="Four songs by El Senator of the Danish metal band Muldjord (copyright file), genre tag "
        "'Death Metal'. Frets on Fire ships each song as song.ogg (band without lead guitar) "
        "+ guitar.ogg (lead guitar stem); only song.ogg is used.",
        artists="Muldjord (El Senator)",
        picks=(
            Pick(
                "usr/share/games/fretsonfire/data/songs/muldjord/*/song.ogg",
                "rock-metal",
                "tag 'Death Metal'; backing track without lead guitar",
            ),
        ),
    ),
    "fretsonfire-songs-sectoid": Source(
        version="1.dfsg-3.1",
        licence="Expat",
        why="Frets on Fire guitar-game song pack by Carlos Viola Iborra ('Metal madness', "
        "'War of freedom', ...): guitar-driven rock/metal; song.ogg only (see muldjord).",
        artists="Carlos Viola Iborra (Sectoid)",
        picks=(
            Pick(
                "usr/share/games/fretsonfire/data/songs/sectoid/*/song.ogg",
                "rock-metal",
                "guitar-game song pack; backing track without lead guitar",
            ),
        ),
    ),
    "widelands-data": Source(
        version="2:1.1-3",
        licence="GPL-2+",
        why="Only the three tracks by MiddleFinger, genre tags 'Trash Metal'/'Thrash Metal'; the "
        "rest of the Widelands score is not used (mixed styles, few tags).",
        artists="MiddleFinger",
        picks=(Pick("usr/share/games/widelands/data/music/ingame_1[567].ogg", "rock-metal", "tag 'Thrash Metal'"),),
    ),
    "openclonk-data": Source(
        version="8.1-3",
        licence="CC-BY-3.0",
        why="OpenClonk music by Martin Strohmeier (K-Pone), each track with its own genre tag: "
        "used per track (Rock, House, Ambient, Orchestral); Reggae and untagged ones left out. "
        "Licence: Music.ocg/authors.txt and the copyright file (content CC-BY-3.0).",
        artists="Martin Strohmeier (K-Pone)",
        picks=(
            Pick("*/Music.ocg/Motorway.ogg", "rock-metal", "tag 'Rock'"),
            Pick("*/Music.ocg/TheSkylands.ogg", "rock-metal", "tag 'Rock'"),
            Pick("*/Music.ocg/@CrushedIceCocktail.ogg", "electronic", "tag 'House'"),
            Pick("*/Music.ocg/LucidDream.ogg", "ambient", "tag 'Ambient'"),
            Pick("*/Music.ocg/UrbanBolero.ogg", "orchestral", "tag 'Orchestral'"),
        ),
    ),
    "nexuiz-music": Source(
        version="2.5.2-12",
        licence="GPL-2+",
        why="Nexuiz (arena shooter) soundtrack: electronic/techno/industrial tracks by Gerd "
        "'elysis' Raudenbusch, blkrbt, Parapraxis ('Electronic' tag), Braden Walters.",
        artists="elysis (Gerd Raudenbusch), blkrbt, Parapraxis, Braden Walters",
        containers=("usr/share/games/nexuiz/data/music.pk3",),
        picks=(
            Pick("*music.pk3!sound/cdtracks/thunder.ogg", None, "thunder sound effect (11 kHz)"),
            Pick("*music.pk3!sound/cdtracks/*.ogg", "electronic", "arena-shooter techno/industrial"),
        ),
    ),
    "zaz-data": Source(
        version="1.0.1-1",
        licence="CC-BY-SA-3.0",
        why="Four tracks from 'Neurons: Fire At Will' by paniq (Leonard Ritter), electronic "
        "musician and tracker author.",
        artists="paniq (Leonard Ritter)",
        picks=(Pick("usr/share/games/zaz/mus*.ogg", "electronic", "album 'Neurons: Fire At Will'"),),
    ),
    "naev-data": Source(
        version="0.8.2-1",
        licence="GPL-3 or CC-BY-3.0",
        why="Naev (space trading game) mixes many artists: only tracks with explicit evidence are "
        "used: file names 'ambient*' (Nikola Whallon), two tracks from Zeropage's album "
        "'Ambient Pills', two tracks of Askyel tagged 'Electronic'.",
        artists="Nikola Whallon, Zeropage, Askyel",
        picks=(
            Pick("usr/share/naev/dat/snd/music/ambient[123].ogg", "ambient", "named 'ambient' by its composer"),
            Pick("usr/share/naev/dat/snd/music/ambient2_5.ogg", "ambient", "named 'ambient' by its composer"),
            Pick("usr/share/naev/dat/snd/music/ambiphonic.ogg", "ambient", "album 'Ambient Pills'"),
            Pick("usr/share/naev/dat/snd/music/void_sensor.ogg", "ambient", "album 'Ambient Pills'"),
            Pick("usr/share/naev/dat/snd/music/eureka.ogg", "electronic", "tag 'Electronic'"),
            Pick("usr/share/naev/dat/snd/music/terminal.ogg", "electronic", "tag 'Electronic'"),
        ),
    ),
    "freedroidrpg-data": Source(
        version="1.0-1",
        licence="GPL-2+",
        why="FreedroidRPG: per-track evidence only: 'temple' (tag 'dnb'), 'TheBeginning' by 4T "
        "Thieves on the kahvi netlabel (tag 'ambient'), 'Ambience' (its name).",
        artists="Arvid Picciani, 4T Thieves",
        picks=(
            Pick("usr/share/freedroidrpg/data/sound/music/temple.ogg", "electronic", "tag 'dnb'"),
            Pick("usr/share/freedroidrpg/data/sound/music/TheBeginning.ogg", "ambient", "tag 'ambient'"),
            Pick("usr/share/freedroidrpg/data/sound/music/Ambience.ogg", "ambient", "file name"),
        ),
    ),
    "singularity-music": Source(
        version="007-2",
        licence="CC-BY-SA-3.0",
        why="Endgame: Singularity soundtrack by Maxstack (Max McCracken): slow synth score for a "
        "quiet strategy game. No genre tags: the weakest label of the set (package-level "
        "judgement, not verified by ear).",
        artists="Maxstack (Max McCracken)",
        picks=(
            Pick("usr/share/games/singularity/music/*.ogg", "ambient", "package-level judgement"),
            Pick("usr/share/games/singularity/music/*/*.ogg", "ambient", "package-level judgement"),
        ),
    ),
    "supertuxkart-data": Source(
        version="1.4+dfsg-2",
        licence="CC-BY-SA-3.0",
        why="SuperTuxKart (kart racer) track themes: upbeat melodic game music (0zone0ne, Krobonil, "
        "bollen, Weirwood, ...) -> 'cartoon'; DJ Helium's tracks ('Electronic' tag) and "
        "Speedsound's psytrance ('Psychedelic' tag) -> 'electronic'. Per-file licences from "
        "the DEP-5 copyright file.",
        artists="0zone0ne, Chris Leutwyler (Krobonil), Claude Werner (bollen), Weirwood, Kalsan, "
        "DJ Helium, Speedsound, Max Freeman, Heuchi1, GeekPenguinBR, Keith Baylis, ...",
        picks=(
            Pick("*/data/music/valley.ogg", "electronic", "DJ Helium, tag 'Electronic'"),
            Pick("*/data/music/garden.ogg", "electronic", "DJ Helium (same artist as valley)"),
            Pick("*/data/music/SkyVibe-HighFrequency.ogg", "electronic", "tag 'Psychedelic' (psytrance)"),
            Pick("usr/share/games/supertuxkart/data/music/*.ogg", "cartoon", "kart-racer track theme"),
        ),
    ),
    "supertux-data": Source(
        version="0.6.3-2",
        licence="GPL-2+",
        why="SuperTux (2D platformer) level music by Wansti, Jason Lavallee, Chris Leutwyler and "
        "others: upbeat melodic platformer music -> 'cartoon'.",
        artists="Wansti (Marek Moeckel), Jason Lavallee, Chris Leutwyler, Treskalle, Flan, "
        "Mortimer Twang, Bart Kelsey, zhaymusic, ...",
        picks=(
            Pick(
                "*/music/misc/battle_theme.ogg",
                None,
                "remaxim's 'Battle Theme': also in flare-game (orchestral), same composer and title",
            ),
            Pick("usr/share/games/supertux2/music/*/*.ogg", "cartoon", "platformer level music"),
        ),
    ),
}

# Packages looked at and left out (documented in docs/devset.md):
REJECTED = {
    "warzone2100-music": "30 long tracks (6-14 min) in Opus; no style evidence in the package",
    "ufoai-music": "60 tracks of mixed styles and composers, almost no tags",
    "blobwars-data": "electronic-sounding artists (DJ Sjors) but no genre evidence per track",
    "hyperrogue-music": "short loops, no style evidence",
    "hedgewars-data": "one theme per map in many styles, no tags",
    "drascula-music": "1990s adventure-game music, style undocumented",
    "planetblupi-music-ogg": "10 very long medleys (10-29 min)",
    "openarena-data": "no music in the 0.8.5 data; 0.8.8 patch music is 7 short tracks",
    "starfighter-data": "mixed, and duplicates Maxstack's 'Through Space' from singularity-music",
    "colobot-common-sounds": "two composers, soundtrack tags only",
    "xblast-tnt-musics": "raw PCM without headers",
    "fb-music-high": "tracker module (xm)",
}

VARIANT_TOKENS = {
    "fast",
    "f",
    "old",
    "enhanced",
    "remix",
    "remake",
    "revisited",
    "short",
    "loop",
    "alt",
    "edit",
    "reprise",
    "instrumental",
}
GENERIC_STEMS = {
    "song",
    "guitar",
    "rhythm",
    "music",
    "theme",
    "main_theme",
    "menu",
    "intro",
    "credits",
    "title",
    "track",
    "mus",
    "battle",
    "victory",
    "defeat",
    "end",
}
AUDIO_OK = {"OGG", "FLAC", "WAV", "WAVEX", "MP3", "AIFF", "AU", "W64", "RF64"}


# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------


def log(msg: str) -> None:
    print(msg, flush=True)


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def seeded_rank(seed: str, key: str) -> int:
    return int.from_bytes(hashlib.sha256(f"{seed}\0{key}".encode()).digest()[:8], "big")


def tune_key(relpath: str) -> tuple[str, int]:
    """(group key, number of variant tokens) of a file path: siblings of one tune share a key.

    ``frantic-old`` -> (frantic, 1); ``forest3`` -> (forest, 0); ``ambient2_5`` -> (ambient, 0);
    ``jumping_to_the_stars_remake_fast`` -> (jumping_to_the_stars, 2); generic stems such as
    ``song`` take their folder's name (``chaos_god/song`` -> chaos_god_song).
    """
    p = relpath.rsplit("!", maxsplit=1)[-1]
    parts = p.split("/")
    stem = parts[-1].rsplit(".", 1)[0].lower().lstrip("@")
    tokens = [t for t in re.split(r"[\s_\-.]+", stem) if t]
    variants = 0
    changed = True
    while changed and len(tokens) > 1:
        changed = False
        if tokens[-1] in VARIANT_TOKENS:
            tokens.pop()
            variants += 1
            changed = True
        elif re.fullmatch(r"\d", tokens[-1]):  # airship_2, taiko_1, ambient2_5
            tokens.pop()
            changed = True
    if tokens:
        tokens[-1] = re.sub(r"(?<=[a-z])\d+$", "", tokens[-1]) or tokens[-1]  # forest2, xeon6
    key = "_".join(tokens)
    if key in GENERIC_STEMS and len(parts) > 1:
        key = f"{parts[-2].lower()}_{key}"
    return key, variants


def norm_text(s: str) -> str:
    return re.sub(r"[^a-z0-9]+", "", s.lower())


def read_tags(path: Path) -> dict[str, str]:
    out: dict[str, str] = {}
    try:
        m = mutagen.File(path)
    except Exception:  # noqa: BLE001 - tags are optional
        return out
    if m is None or m.tags is None:
        return out
    for key, names in {
        "genre": ("genre", "TCON"),
        "artist": ("artist", "TPE1"),
        "title": ("title", "TIT2"),
        "album": ("album", "TALB"),
    }.items():
        for n in names:
            try:
                v = m.tags.get(n)
            except Exception:  # noqa: BLE001
                v = None
            if v:
                v = v[0] if isinstance(v, list) else v
                v = str(v).strip()
                if v:
                    out[key] = v
                    break
    return out


# --------------------------------------------------------------------------------------------
# Debian copyright (DEP-5) -> licence of a file
# --------------------------------------------------------------------------------------------


def parse_dep5(text: str) -> list[tuple[list[str], str]] | None:
    """[(file patterns, licence)] of a machine-readable copyright file, or None if free-form."""
    if not text.lstrip().startswith("Format:"):
        return None
    stanzas = []
    for para in re.split(r"\n\s*\n", text):
        fields: dict[str, str] = {}
        current = None
        for line in para.splitlines():
            if line[:1] in (" ", "\t") and current:
                fields[current] += "\n" + line.strip()
            elif ":" in line:
                current, _, value = line.partition(":")
                current = current.strip()
                fields[current] = value.strip()
        if "Files" in fields and "License" in fields:
            pats = [p[2:] if p.startswith("./") else p for p in fields["Files"].split()]
            lic = next((ln.strip() for ln in fields["License"].splitlines() if ln.strip()), "")
            if lic:
                stanzas.append((pats, lic))
    return stanzas


def dep5_licence(stanzas: list[tuple[list[str], str]] | None, relpath: str) -> str | None:
    """Licence of the last stanza whose pattern matches a suffix of ``relpath`` (not ``*`` alone)."""
    if not stanzas:
        return None
    parts = relpath.replace("!", "/").split("/")
    suffixes = ["/".join(parts[i:]) for i in range(len(parts))]
    found = None
    for pats, lic in stanzas:
        for pat in pats:
            if pat == "*":
                continue
            if any(fnmatch.fnmatchcase(s, pat) for s in suffixes):
                found = lic
    return found


# --------------------------------------------------------------------------------------------
# download and extraction
# --------------------------------------------------------------------------------------------


def deb_field(deb: Path, name: str) -> str:
    return subprocess.run(["dpkg-deb", "-f", str(deb), name], check=True, capture_output=True, text=True).stdout.strip()


def fetch_deb(pkg: str, src: Source, debs: Path, refresh: bool) -> Path:
    debs.mkdir(parents=True, exist_ok=True)
    have = sorted(debs.glob(f"{pkg}_*.deb"), key=lambda p: p.stat().st_mtime)
    if have and not refresh:
        return have[-1]
    for spec in (f"{pkg}={src.version}", pkg):
        r = subprocess.run(["apt-get", "download", spec], cwd=debs, capture_output=True, text=True, check=False)
        if r.returncode == 0:
            if spec == pkg:
                log(f"  ! {pkg}: version {src.version} not available, took the candidate version")
            break
    else:
        raise SystemExit(
            f"apt-get download {pkg} failed:\n{r.stderr.strip()}\n"
            "(run `apt-get update` first; the package may be gone from this release)"
        )
    have = sorted(debs.glob(f"{pkg}_*.deb"), key=lambda p: p.stat().st_mtime)
    return have[-1]


def _match_any(relpath: str, picks: tuple[Pick, ...]) -> Pick | None:
    for pick in picks:
        if fnmatch.fnmatchcase(relpath, pick.glob):
            return pick
    return None


def extract(pkg: str, src: Source, deb: Path, dest: Path) -> tuple[list[str], list[tuple[str, Pick]], str]:
    """Extract the picked files (and zip members) of ``deb`` under ``dest``.

    Returns (relative paths of the candidate files, [(path, pick)] of the files a pick
    excludes, copyright text). Zip members are written to ``dest/<container>!/<member>`` and
    reported as ``<container>!<member>``.
    """
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    wanted: list[str] = []
    excluded: list[tuple[str, Pick]] = []
    copyright_text = ""
    proc = subprocess.Popen(["dpkg-deb", "--fsys-tarfile", str(deb)], stdout=subprocess.PIPE)
    assert proc.stdout is not None
    try:
        with tarfile.open(fileobj=proc.stdout, mode="r|") as tar:
            for m in tar:
                rel = m.name[2:] if m.name.startswith("./") else m.name
                if not m.isfile() or ".." in Path(rel).parts:
                    continue
                is_copyright = rel == f"usr/share/doc/{pkg}/copyright"
                is_container = rel in src.containers
                pick = _match_any(rel, src.picks)
                if pick is not None and pick.label is None:
                    excluded.append((rel, pick))
                if not (is_copyright or is_container or (pick and pick.label)):
                    continue
                fh = tar.extractfile(m)
                if fh is None:
                    continue
                if is_copyright:
                    copyright_text = fh.read().decode("utf-8", "replace")
                    continue
                out = dest / rel
                out.parent.mkdir(parents=True, exist_ok=True)
                with open(out, "wb") as w:
                    shutil.copyfileobj(fh, w, 1 << 20)
                os.utime(out, (m.mtime, m.mtime))
                if not is_container:
                    wanted.append(rel)
    finally:
        proc.stdout.close()
        if proc.wait() != 0:
            raise SystemExit(f"dpkg-deb --fsys-tarfile {deb} failed")
    for container in src.containers:
        zpath = dest / container
        if not zpath.is_file():
            log(f"  ! {pkg}: container {container} not found")
            continue
        with zipfile.ZipFile(zpath) as zf:
            for info in zf.infolist():
                rel = f"{container}!{info.filename}"
                pick = _match_any(rel, src.picks)
                if pick is not None and pick.label is None and not info.is_dir():
                    excluded.append((rel, pick))
                if info.is_dir() or not (pick and pick.label) or ".." in Path(info.filename).parts:
                    continue
                out = dest / f"{container}!" / info.filename
                out.parent.mkdir(parents=True, exist_ok=True)
                with zf.open(info) as r, open(out, "wb") as w:
                    shutil.copyfileobj(r, w, 1 << 20)
                wanted.append(rel)
        zpath.unlink()  # the container itself is not kept (0ad's is 3.2 GB)
    return sorted(wanted), excluded, copyright_text


def extract_cached(pkg: str, src: Source, deb: Path, dest: Path) -> tuple[list[str], list[tuple[str, Pick]], str]:
    """``extract`` unless ``dest`` already holds this deb's picked files (a stamp says so)."""
    stamp = hashlib.sha256(repr((deb.name, deb.stat().st_size, src.picks, src.containers)).encode()).hexdigest()
    meta = dest / ".devset.json"
    if meta.is_file():
        try:
            saved = json.loads(meta.read_text(encoding="utf-8"))
            if saved["stamp"] == stamp and all(extracted_path(dest, r).is_file() for r in saved["wanted"]):
                picks = {p.glob: p for p in src.picks}
                return saved["wanted"], [(r, picks[g]) for r, g in saved["excluded"]], saved["copyright"]
        except (KeyError, ValueError):
            pass
    wanted, excluded, copyright_text = extract(pkg, src, deb, dest)
    meta.write_text(
        json.dumps(
            {
                "stamp": stamp,
                "wanted": wanted,
                "excluded": [(r, p.glob) for r, p in excluded],
                "copyright": copyright_text,
            }
        ),
        encoding="utf-8",
    )
    return wanted, excluded, copyright_text


def extracted_path(dest: Path, rel: str) -> Path:
    if "!" in rel:
        container, member = rel.split("!", 1)
        return dest / f"{container}!" / member
    return dest / rel


# --------------------------------------------------------------------------------------------
# building the set
# --------------------------------------------------------------------------------------------


@dataclass
class Track:
    package: str
    rel: str  # path inside the package (container!member for zipped music)
    src_path: Path  # extracted file
    label: str
    note: str
    licence: str
    duration: float = 0.0
    sha256: str = ""
    tags: dict[str, str] = field(default_factory=dict)
    group: str = ""
    variants: int = 0
    split: str = ""
    path: Path | None = None


def out_name_for(rel: str) -> str:
    """The file's own name, prefixed by its folder when the name is generic (``chaos_god__song.ogg``)."""
    p = rel.replace("!", "/").split("/")
    name = p[-1]
    if len(p) > 1 and name.rsplit(".", 1)[0].lower() in GENERIC_STEMS:
        name = f"{p[-2]}__{name}"
    return re.sub(r"[^\w.@+-]+", "_", name)


def split_label(tracks: list[Track], seed: str, fraction: float) -> None:
    """Held-out: whole groups in seeded-hash order until ~``fraction`` of the label's tracks."""
    groups: dict[str, list[Track]] = defaultdict(list)
    for t in tracks:
        groups[t.group].append(t)
    target = round(fraction * len(tracks))
    held = 0
    for key in sorted(groups, key=lambda k: (seeded_rank(seed, k), k)):
        members = groups[key]
        take = held < target and (held + len(members) <= target or held + len(members) - target < target - held)
        for t in members:
            t.split = "heldout" if take else "train"
        if take:
            held += len(members)


def build(args: argparse.Namespace) -> int:
    t0 = time.perf_counter()
    out: Path = args.out.expanduser().resolve()
    cache: Path = args.cache.expanduser().resolve()
    debs, work = cache / "debs", cache / "extract"
    only = set(args.only or SOURCES)
    sources = {k: v for k, v in SOURCES.items() if k in only}

    # 1. download
    log(f"[1/5] packages -> {debs}")
    deb_of: dict[str, Path] = {}
    for pkg, src in sources.items():
        deb_of[pkg] = fetch_deb(pkg, src, debs, args.refresh)
    t_download = time.perf_counter() - t0

    # 2. extract + probe
    log(f"[2/5] extracting picked files -> {work}")
    tracks: list[Track] = []
    pkg_info: dict[str, dict] = {}
    dropped: list[tuple[str, str, str]] = []
    copyrights: dict[str, str] = {}
    for pkg, src in sources.items():
        deb = deb_of[pkg]
        version = deb_field(deb, "Version")
        if version != src.version:
            log(f"  ! {pkg}: using version {version}, SOURCES was checked with {src.version}")
        dest = work / pkg
        rels, excluded, copyright_text = extract_cached(pkg, src, deb, dest)
        copyrights[pkg] = copyright_text
        dropped += [(pkg, rel, f"excluded: {pick.note}") for rel, pick in excluded]
        stanzas = parse_dep5(copyright_text)
        pkg_info[pkg] = {
            "version": version,
            "deb": deb.name,
            "deb_size": deb.stat().st_size,
            "dep5": stanzas is not None,
        }
        for rel in rels:
            pick = _match_any(rel, src.picks)
            assert pick is not None and pick.label
            path = extracted_path(dest, rel)
            try:
                info = sf.info(str(path))
            except Exception as exc:  # noqa: BLE001 - report and go on
                dropped.append((pkg, rel, f"undecodable: {exc}"))
                continue
            if info.format not in AUDIO_OK:
                dropped.append((pkg, rel, f"undecodable: format {info.format}"))
                continue
            lic = dep5_licence(stanzas, rel) or pick.licence or src.licence
            tracks.append(
                Track(pkg, rel, path, pick.label, pick.note, lic, duration=float(info.duration), tags=read_tags(path))
            )
        log(f"  {pkg} {version}: {len(rels)} picked files")
    t_extract = time.perf_counter() - t0 - t_download

    # 3. filters: duration, exact duplicates, cross-package copies, variants
    log("[3/5] filtering")
    kept: list[Track] = []
    for t in tracks:
        if t.duration < args.min_duration:
            dropped.append((t.package, t.rel, f"short: {t.duration:.1f} s < {args.min_duration:g} s"))
        else:
            kept.append(t)
    tracks = kept
    seen_hash: dict[str, Track] = {}
    seen_title: dict[tuple[str, str], Track] = {}
    kept = []
    for t in tracks:
        t.sha256 = sha256_file(t.src_path)
        if t.sha256 in seen_hash:
            o = seen_hash[t.sha256]
            dropped.append((t.package, t.rel, f"duplicate: identical to {o.package}:{o.rel}"))
            continue
        artist, title = norm_text(t.tags.get("artist", "")), norm_text(t.tags.get("title", ""))
        if artist and title and (artist, title) in seen_title and seen_title[(artist, title)].package != t.package:
            o = seen_title[(artist, title)]
            dropped.append((t.package, t.rel, f"duplicate: same artist+title as {o.package}:{o.rel}"))
            continue
        seen_hash[t.sha256] = t
        if artist and title:
            seen_title.setdefault((artist, title), t)
        kept.append(t)
    tracks = kept
    by_group: dict[str, list[Track]] = defaultdict(list)
    for t in tracks:
        t.group, t.variants = tune_key(t.rel)
        by_group[t.group].append(t)
    kept = []
    for key, members in by_group.items():
        fewest = min(m.variants for m in members)
        if fewest == 0:
            keep = [m for m in members if m.variants == 0]
        else:  # only variants of a tune whose plain version is absent: keep the longest one
            keep = [max((m for m in members if m.variants == fewest), key=lambda m: m.duration)]
        for m in members:
            if m in keep:
                kept.append(m)
            else:
                dropped.append((m.package, m.rel, f"variant: of tune '{key}' (kept {keep[0].rel})"))
    tracks = sorted(kept, key=lambda t: (t.label, t.package, t.rel))
    labels_of_group: dict[str, set[str]] = defaultdict(set)
    for t in tracks:
        labels_of_group[t.group].add(t.label)
    for key, labs in labels_of_group.items():
        if len(labs) > 1:
            log(f"  note: group '{key}' spans labels {sorted(labs)} (different tunes sharing a name)")

    # 4. split
    log(f"[4/5] split: ~{args.heldout:.0%} held out per label, seed {args.seed!r}")
    by_label: dict[str, list[Track]] = defaultdict(list)
    for t in tracks:
        by_label[t.label].append(t)
    # groups must not straddle labels' splits: a group is decided once, by its first label
    for label in sorted(by_label):
        split_label(by_label[label], args.seed, args.heldout)
    split_of_group: dict[str, str] = {}
    for t in tracks:
        split_of_group.setdefault(t.group, t.split)
        if split_of_group[t.group] != t.split:  # same name in two labels: follow the first
            t.split = split_of_group[t.group]

    # 5. write
    log(f"[5/5] writing {out}")
    audio = out / "audio"
    audio.mkdir(parents=True, exist_ok=True)
    used_names: set[Path] = set()
    for t in tracks:
        name = out_name_for(t.rel)
        p = audio / t.package / name
        i = 2
        while p in used_names:
            p = audio / t.package / f"{Path(name).stem}-{i}{Path(name).suffix}"
            i += 1
        used_names.add(p)
        p.parent.mkdir(parents=True, exist_ok=True)
        if p.exists() and p.stat().st_size == t.src_path.stat().st_size and sha256_file(p) == t.sha256:
            pass
        else:
            if p.exists():
                p.unlink()
            try:
                os.link(t.src_path, p)
            except OSError:
                shutil.copy2(t.src_path, p)
        t.path = p
    for stale in [f for f in audio.rglob("*") if f.is_file() and f not in used_names]:
        stale.unlink()
    for d in sorted((d for d in audio.rglob("*") if d.is_dir()), reverse=True):
        if not any(d.iterdir()):
            d.rmdir()
    lic_dir = out / "licences"
    lic_dir.mkdir(exist_ok=True)
    for pkg, text in copyrights.items():
        (lic_dir / f"{pkg}.copyright").write_text(text, encoding="utf-8")

    def write_csv(name: str, rows: list[list[str]], header: list[str]) -> None:
        with open(out / name, "w", newline="", encoding="utf-8") as fh:
            w = csv.writer(fh)
            w.writerow(header)
            w.writerows(rows)

    write_csv("labels.csv", [[str(t.path), t.label] for t in tracks if t.split == "train"], ["path", "label"])
    write_csv("heldout.csv", [[str(t.path), t.label] for t in tracks if t.split == "heldout"], ["path", "label"])
    write_csv(
        "all.csv",
        [
            [
                str(t.path),
                t.label,
                t.split,
                t.package,
                t.licence,
                f"{t.duration:.2f}",
                t.group,
                t.tags.get("artist", ""),
                t.tags.get("title", ""),
                t.tags.get("genre", ""),
                t.rel,
                t.note,
                t.sha256,
            ]
            for t in tracks
        ],
        [
            "path",
            "label",
            "split",
            "package",
            "licence",
            "duration_s",
            "group",
            "artist_tag",
            "title_tag",
            "genre_tag",
            "source_path",
            "evidence",
            "sha256",
        ],
    )
    write_csv("dropped.csv", [list(d) for d in dropped], ["package", "source_path", "reason"])

    if args.clean:
        shutil.rmtree(work, ignore_errors=True)
    elapsed = time.perf_counter() - t0
    write_readme(out, tracks, pkg_info, sources, args, elapsed, dropped)
    print_summary(tracks, pkg_info, dropped, elapsed, t_download, t_extract, out)
    return 0


# --------------------------------------------------------------------------------------------
# reports
# --------------------------------------------------------------------------------------------


def label_table(tracks: list[Track]) -> list[tuple[str, int, int, int, float, int]]:
    rows = []
    for label in sorted({t.label for t in tracks}):
        ts = [t for t in tracks if t.label == label]
        rows.append(
            (
                label,
                sum(t.split == "train" for t in ts),
                sum(t.split == "heldout" for t in ts),
                len(ts),
                sum(t.duration for t in ts) / 60,
                len({t.package for t in ts}),
            )
        )
    return rows


def write_readme(
    out: Path,
    tracks: list[Track],
    pkg_info: dict,
    sources: dict[str, Source],
    args: argparse.Namespace,
    elapsed: float,
    dropped: list,
) -> None:
    total_min = sum(t.duration for t in tracks) / 60
    lines = [
        "# musicindex real-music development set",
        "",
        f"Built by `benchmarks/devset.py` from {len(pkg_info)} Debian packages of freely licensed "
        f"game music: {len(tracks)} full tracks, {total_min / 60:.1f} h, "
        f"{len({t.label for t in tracks})} style labels. See `docs/devset.md` in the musicindex "
        "repository for the protocol and the known weaknesses.",
        "",
        "Files:",
        "- `audio/<package>/...`: the tracks, byte-identical to the files shipped in the packages.",
        "- `labels.csv`: `path,label` of the **train** split (`musicindex ingest DIR --label-from csv:labels.csv`).",
        "- `heldout.csv`: `path,label` of the **held-out** split: never train on it.",
        "- `all.csv`: every track with `split`, `package`, `licence`, `duration_s`, its tune group, "
        "tags and the evidence for its label.",
        "- `dropped.csv`: files looked at and left out, with the reason.",
        "- `licences/<package>.copyright`: each package's Debian copyright file.",
        "",
        f"Held-out protocol: per label, whole tune groups in the order of a seeded hash "
        f"(seed `{args.seed}`) until ~{args.heldout:.0%} of the label's tracks; tracks shorter "
        f"than {args.min_duration:g} s, duplicates and variants of one tune dropped.",
        "",
        "## Labels",
        "",
        "| label | train | held-out | total | minutes | packages |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for label, tr, ho, n, minutes, npk in label_table(tracks):
        lines.append(f"| {label} | {tr} | {ho} | {n} | {minutes:.0f} | {npk} |")
    lines += [
        "",
        "## Sources",
        "",
        "| package | version | licence (music) | tracks | labels | why |",
        "| --- | --- | --- | ---: | --- | --- |",
    ]
    for pkg, src in sources.items():
        ts = [t for t in tracks if t.package == pkg]
        labs = ", ".join(f"{k} {v}" for k, v in sorted(Counter(t.label for t in ts).items()))
        lics = ", ".join(sorted({t.licence for t in ts})) or src.licence
        lines.append(f"| {pkg} | {pkg_info[pkg]['version']} | {lics} | {len(ts)} | {labs} | {src.why} |")
    lines += [
        "",
        "## Attribution",
        "",
        "The music is by the artists below, under the licences above (full texts in "
        "`licences/`, or in `/usr/share/common-licenses/` on Debian). CC-BY and CC-BY-SA "
        "works require attribution and a licence notice when redistributed; GPL works "
        "require the licence text. Do not redistribute this folder without them.",
        "",
    ]
    for pkg, src in sources.items():
        lines.append(f"- {pkg}: {src.artists}")
    lines.append("")
    (out / "README.md").write_text("\n".join(lines), encoding="utf-8")


def print_summary(
    tracks: list[Track], pkg_info: dict, dropped: list, elapsed: float, t_download: float, t_extract: float, out: Path
) -> None:
    log("")
    log(f"{'package':28s} {'version':22s} {'deb MB':>7s} {'tracks':>6s}  licence(s) of the tracks")
    for pkg, info in pkg_info.items():
        ts = [t for t in tracks if t.package == pkg]
        lics = ", ".join(
            f"{k} ({v})" if len({t.licence for t in ts}) > 1 else k
            for k, v in sorted(Counter(t.licence for t in ts).items())
        )
        log(f"{pkg:28s} {info['version']:22s} {info['deb_size'] / 1e6:7.1f} {len(ts):6d}  {lics}")
    log("")
    log(f"{'label':12s} {'train':>6s} {'heldout':>8s} {'total':>6s} {'minutes':>8s} {'pkgs':>5s}")
    for label, tr, ho, n, minutes, npk in label_table(tracks):
        log(f"{label:12s} {tr:6d} {ho:8d} {n:6d} {minutes:8.0f} {npk:5d}")
    total = sum(t.duration for t in tracks)
    log(
        f"{'all':12s} {sum(t.split == 'train' for t in tracks):6d} "
        f"{sum(t.split == 'heldout' for t in tracks):8d} {len(tracks):6d} {total / 60:8.0f}"
    )
    reasons = Counter(r.split(":")[0] for _, _, r in dropped)
    log(f"\ndropped {len(dropped)} files: " + ", ".join(f"{k}: {v}" for k, v in reasons.most_common()))
    log(f"time: {elapsed:.0f} s (download {t_download:.0f} s, extract+probe {t_extract:.0f} s)")
    log(f"set: {out}")


def list_sources() -> None:
    for pkg, src in SOURCES.items():
        labels = sorted({p.label for p in src.picks if p.label})
        print(f"{pkg} ({src.version}, {src.licence}): {', '.join(labels)}\n    {src.why}")
    print("\nnot used:")
    for pkg, why in REJECTED.items():
        print(f"  {pkg}: {why}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--out", type=Path, default=CACHE / "set", help="output folder (default %(default)s)")
    ap.add_argument("--cache", type=Path, default=CACHE, help="cache folder: debs/ and extract/ (default %(default)s)")
    ap.add_argument("--seed", default=DEFAULT_SEED, help="seed of the held-out hash (default %(default)s)")
    ap.add_argument("--heldout", type=float, default=HELDOUT_FRACTION, help="held-out fraction per label")
    ap.add_argument("--min-duration", type=float, default=MIN_DURATION, help="drop shorter tracks (s)")
    ap.add_argument("--only", nargs="*", metavar="PKG", help="use only these packages of SOURCES")
    ap.add_argument("--refresh", action="store_true", help="download the packages again")
    ap.add_argument(
        "--clean",
        action="store_true",
        help="remove CACHE/extract after the build (it holds only the picked music, hard-linked "
        "into --out, so keeping it costs no disk on the same file system and makes reruns fast)",
    )
    ap.add_argument("--list", action="store_true", help="print SOURCES and exit")
    args = ap.parse_args(argv)
    if args.list:
        list_sources()
        return 0
    unknown = set(args.only or ()) - set(SOURCES)
    if unknown:
        ap.error(f"not in SOURCES: {', '.join(sorted(unknown))}")
    if not 0 < args.heldout < 1:
        ap.error("--heldout must be in (0, 1)")
    for tool in ("apt-get", "dpkg-deb"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} not found: this script needs a Debian-based system")
    return build(args)


if __name__ == "__main__":
    sys.exit(main())
