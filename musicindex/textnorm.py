"""Names as people type them: folded (case, accents and width ignored), sort keys without leading articles, and
the trigram hashes that let PostgreSQL find a word inside a name without an extension.

``fold("Wésnoth")`` is ``"wesnoth"``, so a search for ``wésnoth`` (or ``WESNOTH``) finds *Wesnoth*. A track keeps
``tracks.search_text`` (the folded title, artist, album, genre and folder) and ``tracks.search_grams`` (the
hashes of its trigrams, GIN-indexed): a query word of three or more characters matches where every one of its
trigrams is present (the index) and the folded text holds the word (``LIKE``, exact). The embedded PostgreSQL
ships neither ``pg_trgm`` nor ``unaccent``; this needs neither. Pure functions: ingestion writes with them,
queries read with them.
"""

from __future__ import annotations

import re
import unicodedata
import zlib
from collections.abc import Iterable

IGNORED_ARTICLES = ("The", "El", "La", "Los", "Las", "Le", "Les", "A", "An")
"""Leading words a sort key (and an index letter) leaves out, as Subsonic's ``ignoredArticles``."""
_SPACE = re.compile(r"\s+")
_ARTICLE = re.compile(r"^(?:" + "|".join(IGNORED_ARTICLES) + r")\s+(?=\S)", re.IGNORECASE)


def fold(text: str | None) -> str:
    """Lower case, accents and compatibility forms removed, white space collapsed (``""`` for None)."""
    if not text:
        return ""
    decomposed = unicodedata.normalize("NFKD", str(text))
    bare = "".join(c for c in decomposed if not unicodedata.combining(c))
    return _SPACE.sub(" ", bare.casefold().replace("\x00", " ")).strip()


def sort_key(name: str | None) -> str:
    """How a name sorts: folded, without a leading article ("The Beatles" sorts as "beatles")."""
    return fold(_ARTICLE.sub("", (name or "").strip()))


def index_letter(name: str | None) -> str:
    """The letter an artist is listed under (``#`` for names that start with no letter)."""
    key = sort_key(name)
    first = key[:1].upper()
    return first if first.isalpha() else "#"


def words(text: str | None) -> list[str]:
    """The folded words of ``text`` (letters and digits), in order, without repeats."""
    return list(dict.fromkeys(re.findall(r"[^\W_]+", fold(text))))


def _hash(gram: str) -> int:
    h = zlib.crc32(gram.encode("utf-8"))
    return h - (1 << 32) if h >= 1 << 31 else h


def grams(text: str | None) -> list[int]:
    """The distinct trigram hashes (signed 32-bit) of the folded words of ``text``, sorted."""
    out = {_hash(w[i : i + 3]) for w in words(text) for i in range(len(w) - 2)}
    return sorted(out)


def search_text(parts: Iterable[str | None]) -> str:
    """The folded search text of a track: its title, artist, album, genres and folder, one space apart."""
    return " ".join(f for f in (fold(p) for p in parts) if f)
