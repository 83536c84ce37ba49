"""Titles and artists as one song: the version words and featuring credits taken off, what is left folded
(pure functions over ``musicindex.textnorm``).

``song_title("Hey Jude - Remastered 2015")`` is ``SongTitle(base="hey jude", versions={"remaster"})``;
``song_title("Halo (feat. X) [Radio Edit]")`` is ``("halo", {"radio edit"}, featured=("x",))``. A bracketed
part or a `` - `` suffix is removed only when it names a version (remaster, live, radio edit, single/album
version, edit, extended, remix/mix, acoustic, instrumental, demo/alternate take, mono/stereo, explicit/clean,
bonus track, "... version"); other brackets stay part of the title ("(I Can't Get No) Satisfaction"). Movements
of a classical work keep their movement ("Symphony No. 5: I. Allegro con brio" and "...: II. Andante con moto"
differ). Titles that say nothing about which song it is (empty, "Untitled", "Track 3", "Intro", a tempo marking
alone such as "I. Allegro") are *generic*: they never make two tracks one song.

``artist_names("Queen & David Bowie feat. X")`` is the main credits, folded, without a leading article:
``{"queen", "david bowie", "queen & david bowie"}``; unknown artists ("", "Unknown Artist", "Various Artists")
give the empty set.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from ..textnorm import fold, sort_key

VERSION_WORDS: dict[str, str] = {
    "remaster": r"re-?master(?:ed)?|digital(?:ly)? re-?master(?:ed)?",
    "live": r"live\b.*|in concert|concert version",
    "radio edit": r"radio (?:edit|version|mix|cut)",
    "single": r"single (?:version|edit|mix)|7\"? (?:version|mix|edit)|45 version",
    "album": r"album version|lp version|album edit",
    "extended": r"extended(?: version| mix| edit)?|12\"? (?:version|mix)|club mix",
    "edit": r"edit(?:ed)?(?: version)?",
    "remix": r".*\bre-?mix(?:ed)?\b.*|.*\bmix\b.*|.*\bdub\b.*|.*\brework\b.*",
    "acoustic": r"acoustic(?: version)?|unplugged",
    "instrumental": r"instrumental(?: version)?|karaoke(?: version)?|backing track|a ?cappella|acapella",
    "demo": r"demo(?: version)?|outtake|rehearsal|alternate(?: take| version| mix)?|alt(?:\.|ernative)? take"
    r"|early (?:version|take)|take \d+|session(?: version)?",
    "mono": r"mono(?: version| mix)?",
    "stereo": r"stereo(?: version| mix)?",
    "explicit": r"explicit(?: version)?|clean(?: version)?|censored|dirty(?: version)?",
    "bonus": r"bonus(?: track)?",
    "version": r".*\bversion\b.*",
}
"""Version kinds and what names them (regular expressions over folded text, matched against a whole bracketed
part or `` - `` suffix, after years and the word "version" around them are allowed)."""

_YEAR = r"(?:(?:19|20)\d\d\s*)?"
_MARKERS = [
    (kind, re.compile(rf"^{_YEAR}(?:{words}){_YEAR}(?:\s*(?:version|mix))?\s*{_YEAR}$"))
    for kind, words in VERSION_WORDS.items()
]
_FEAT = r"(?:feat\.?|ft\.?|featuring)"
_BRACKETS = re.compile(r"\(([^()]*)\)|\[([^\[\]]*)\]|\{([^{}]*)\}")
_FEAT_BRACKET = re.compile(rf"^(?:{_FEAT}|with)\s+(.+)$")
_FEAT_TAIL = re.compile(rf"\s+{_FEAT}\s+(.+)$")
_TRACK_NUMBER = re.compile(r"^\d{1,3}\s*[-.]\s+(?=\S)")
_DASHES = re.compile(r"\s+[-\u2013\u2014\u2012]\s+")
_NON_WORD = re.compile(r"[^\w]+")
_SPLIT = re.compile(r"\s*(?:,|;|/|&|\+|\s+x\s+|\s+and\s+|\s+vs\.?\s+|\s+with\s+)\s*")

_GENERIC = """untitled unknown track intro introduction outro interlude skit hidden bonus theme
    allegro allegretto adagio adagietto andante andantino largo larghetto lento presto prestissimo vivace vivo
    moderato grave scherzo scherzando menuet menuetto minuet trio rondo rondeau finale prelude preludio praeludium
    fugue fuga aria recitative recitativo variation variations coda cadenza overture sinfonia toccata
    con brio ma non troppo molto assai poco piu meno sostenuto cantabile espressivo grazioso maestoso spiritoso
    agitato tranquillo quasi mosso moto alla marcia tempo primo di e ed il la un una da capo sempre energico
    i ii iii iv v vi vii viii ix x xi xii no nr op movement mvt part pt the a an of"""
GENERIC_WORDS = frozenset(_GENERIC.split())
"""Words that alone (with numbers) do not name a song: "Track 3", "Intro", "I. Allegro con brio"."""

UNKNOWN_ARTISTS = frozenset(["", "unknown", "unknown artist", "[unknown]", "various", "various artists", "va", "n/a"])


@dataclass(frozen=True)
class SongTitle:
    base: str  # folded words of the title without version words and featuring credits
    versions: frozenset[str] = field(default_factory=frozenset)  # VERSION_WORDS kinds named in it
    featured: tuple[str, ...] = ()  # featured artists, folded

    @property
    def generic(self) -> bool:
        """True when the title does not name a song (empty, "Track 3", "Intro", a tempo marking)."""
        words = self.base.split()
        return not words or all(w in GENERIC_WORDS or w.isdigit() for w in words)


def version_kind(part: str) -> str | None:
    """The VERSION_WORDS kind a bracketed part or suffix names, or None."""
    text = " ".join(re.sub(r"[^\w\"]+", " ", fold(part)).split())
    return next((kind for kind, pattern in _MARKERS if pattern.match(text)), None)


def song_title(title: str | None) -> SongTitle:
    """Split a title into the song's name and what version it is (see the module doc)."""
    text = fold(title)
    text = _TRACK_NUMBER.sub("", text)
    versions: set[str] = set()
    featured: list[str] = []

    def bracket(m: re.Match[str]) -> str:
        inner = next(g for g in m.groups() if g is not None).strip()
        feat = _FEAT_BRACKET.match(inner)
        if feat:
            featured.extend(_names(feat.group(1)))
            return " "
        kind = version_kind(inner)
        if kind:
            versions.add(kind)
            return " "
        return m.group(0)

    text = _BRACKETS.sub(bracket, text)
    parts = _DASHES.split(text)
    while len(parts) > 1:
        kind = version_kind(parts[-1])
        feat = re.match(rf"^{_FEAT}\s+(.+)$", parts[-1].strip())
        if kind:
            versions.add(kind)
        elif feat:
            featured.extend(_names(feat.group(1)))
        else:
            break
        parts.pop()
    text = " - ".join(parts)
    tail = _FEAT_TAIL.search(text)
    if tail:
        featured.extend(_names(tail.group(1)))
        text = text[: tail.start()]
    base = " ".join(_NON_WORD.sub(" ", text.replace("&", " and ")).split())
    return SongTitle(base, frozenset(versions), tuple(featured))


def _names(credit: str) -> list[str]:
    return [n for n in (sort_key(p) for p in _SPLIT.split(credit)) if n]


def artist_names(artist: str | None) -> frozenset[str]:
    """The main credited artists, folded, without a leading article, plus the whole credit (see module doc)."""
    text = fold(artist)
    text = re.split(rf"\s*[(\[]?\s*{_FEAT}\s+", text, maxsplit=1)[0].strip(" ([")
    if text.strip(" ()[]") in UNKNOWN_ARTISTS:
        return frozenset()
    names = set(_names(text))
    whole = sort_key(text)
    if whole:
        names.add(whole)
    return frozenset(names - UNKNOWN_ARTISTS)


@dataclass(frozen=True)
class SongKey:
    """What two tracks must share to be versions of one song: the title's base and an artist."""

    title: SongTitle
    artists: frozenset[str]

    def same_song(self, other: SongKey) -> bool:
        return (
            not self.title.generic
            and self.title.base == other.title.base
            and bool(self.artists)
            and bool(self.artists & other.artists)
        )


def song_key(title: str | None, artist: str | None) -> SongKey:
    return SongKey(song_title(title), artist_names(artist))


__all__ = [
    "GENERIC_WORDS",
    "UNKNOWN_ARTISTS",
    "VERSION_WORDS",
    "SongKey",
    "SongTitle",
    "artist_names",
    "song_key",
    "song_title",
    "version_kind",
]
