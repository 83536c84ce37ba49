"""``SearchOptions``: what a similarity question asks for, validated once, read by the similarity engine.

Every similarity answer (``similar``, ``recommend``, ``playlist``, radio, instant mixes, sonic paths, "for you",
similar artists, query by example) and the tag search take one :class:`SearchOptions`: how many tracks, in which
space, restricted to which genres and tags, leaving out what, spreading artists and albums how, searched how.

There is ONE parser, :meth:`SearchOptions.parse`, for every text source: the CLI's options, the HTTP API's query
parameters, the pages' forms and the Subsonic parameters. Each option has one :class:`Rule`: its parameter names
(``genre`` and ``genres`` are one option), how a text is read (``"10"`` -> 10) and how a value is checked. Python
callers build the options with :meth:`SearchOptions.of` (keyword arguments, the same checks, no text conversion:
``k="10"`` is refused there). A wrong value is an :class:`~musicindex.errors.InvalidArgumentError` that names the
option and says what it accepts; an unknown genre or tag is refused when a snapshot resolves the options
(``query.filters``).

Adding a filter (tempo range, key, mood, version grouping, ...): a field here, its :class:`Rule` in ``RULES`` and a
key in ``SearchArgs``, and its SQL predicate in ``query.filters.PREDICATES`` (docs/query.md, "How to add a
filter").
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, fields, replace
from typing import Any, TypedDict

import numpy as np

from musicindex.errors import InvalidArgumentError
from musicindex.query import descriptor_options as described
from musicindex.query.validation import MAX_K, MAX_LIST, as_list, check_space, check_text

TrackRef = int | str | os.PathLike[str]
"""A track: its id, or the path it was ingested under."""
MAX_TAGS = 10
"""At most this many tags in one tag filter or tag search."""
MAX_NAME = 200
"""Longest genre, artist or tag name an option accepts."""
MAX_TRACK_ID = 2**62


# --------------------------------------------------------------------------- checks (typed values)
def _integer(low: int, high: int) -> Callable[[Any, str], int]:
    def check(value: Any, name: str) -> int:
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            raise InvalidArgumentError(f"{name} must be an integer between {low} and {high}, got {value!r}")
        if not low <= value <= high:
            raise InvalidArgumentError(f"{name} must be between {low} and {high}, got {value}")
        return int(value)

    return check


def _optional(check: Callable[[Any, str], Any]) -> Callable[[Any, str], Any]:
    def optional(value: Any, name: str) -> Any:
        return None if value is None else check(value, name)

    return optional


def _flag(value: Any, name: str) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise InvalidArgumentError(f"{name} must be true or false, got {value!r}")
    return bool(value)


def _probability(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise InvalidArgumentError(f"{name} must be a number in [0, 1), got {value!r}")
    if not 0.0 <= float(value) < 1.0:
        raise InvalidArgumentError(f"{name} must be in [0, 1), got {value}")
    return float(value)


def _space(value: Any, name: str) -> str | None:
    return None if value is None else check_space(value)


def _names(most: int) -> Callable[[Any, str], tuple[str, ...]]:
    """Non-empty names (genres, artists, tags) without NUL, at most ``MAX_NAME`` characters, at most ``most``."""

    def check(value: Any, name: str) -> tuple[str, ...]:
        items = [check_text(x, name, max_length=MAX_NAME) for x in as_list(value, name, most)]
        return tuple(dict.fromkeys(items))

    return check


def _tracks(value: Any, name: str) -> tuple[TrackRef, ...]:
    """Track ids or paths (resolved, and refused when unknown, in the query's snapshot)."""
    out: list[TrackRef] = []
    for t in as_list(value, name, MAX_LIST):
        if isinstance(t, bool) or not isinstance(t, (int, np.integer, str, os.PathLike)):
            raise InvalidArgumentError(f"{name}: a track is given by id (int) or path (str), got {t!r}")
        if isinstance(t, (str, os.PathLike)):
            check_text(os.fspath(t), name, max_length=4096)
        out.append(int(t) if isinstance(t, np.integer) else t)
    return tuple(out)


# --------------------------------------------------------------------------- text (CLI, HTTP, forms, Subsonic)
_INT = re.compile(r"[+-]?\d{1,19}")
_TRUE, _FALSE = ("true", "1", "yes", "on"), ("false", "0", "no", "off")


def _int_text(text: str, name: str) -> int:
    if not _INT.fullmatch(text.strip()):
        raise InvalidArgumentError(f"{name} must be an integer, got {text[:40]!r}")
    return int(text)


def _float_text(text: str, name: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise InvalidArgumentError(f"{name} must be a number, got {text[:40]!r}") from None
    if not math.isfinite(value):
        raise InvalidArgumentError(f"{name} must be a finite number, got {text[:40]!r}")
    return value


def _bool_text(text: str, name: str) -> bool:
    low = text.strip().lower()
    if low in _TRUE:
        return True
    if low in _FALSE:
        return False
    raise InvalidArgumentError(f"{name} must be true or false ({'/'.join(_TRUE)} or {'/'.join(_FALSE)}), got "
                               f"{text[:40]!r}")  # fmt: skip


def _track_id_text(text: str, name: str) -> int:
    """A track named in a text source is named by id (no request names a file to read)."""
    value = _int_text(text, name)
    if not 1 <= value <= MAX_TRACK_ID:
        raise InvalidArgumentError(f"{name} must be a track id between 1 and {MAX_TRACK_ID}, got {value}")
    return value


@dataclass(frozen=True)
class Rule:
    """One option: its field, its parameter names (the first is the documented one; ``genre`` and ``genres`` are
    one option), how a value is checked, how a text is read (None: the text is the value), whether it takes
    several values, and what it means."""

    field: str
    names: tuple[str, ...]
    check: Callable[[Any, str], Any]
    text: Callable[[str, str], Any] | None
    doc: str
    many: bool = False
    schema: Mapping[str, Any] | None = None


# --------------------------------------------------------------------------- the options
@dataclass(frozen=True)
class SearchOptions:
    """What a similarity question asks for (every field checked when the options are made).

    ``k``: how many tracks (1-1000; a playlist's length, an instant mix's size); ``space``: the similarity space
    (None: the best available, ``spaces.default_space``); ``genres``: only tracks of these genres (the label, else
    the genre model's prediction); ``tags`` with ``min_tag_probability``: only tracks whose musicnn probability of
    every tag is at least that; ``exclude_same_artist`` / ``exclude_same_album``: leave out the seeds' artists /
    albums; ``exclude_tracks`` / ``exclude_artists`` / ``exclude_genres``: never these tracks, artists (any case),
    genres; ``artist_spacing``: two tracks of one artist are at least this many apart (0: off) and
    ``album_spacing``: no two consecutive tracks of one album (None for either: the question's own rule:
    ``similar`` none, ``recommend`` and ``playlist`` 3 and on, instant mixes and sonic paths 1 and on);
    ``exact``: brute force instead of the HNSW index; ``ef_search``: the HNSW search width (default max(200, 4k));
    ``explain``: give each hit its ``why``; ``tempo`` (BPM) / ``energy``: a (min, max) range; ``key``: a Camelot
    code (a key name is read as its code) or ``compatible`` (with the seeds' keys); ``moods``: every one of these
    named moods. A track whose descriptor is unknown never passes that filter. ``allow_duplicates``: let other
    files of one recording or versions of one song appear (default False: the seeds' duplicate groups are left out,
    and an answer holds one file per group: ``dupes``, docs/duplicates.md).
    """

    k: int = 10
    space: str | None = None
    genres: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    min_tag_probability: float = 0.3
    exclude_same_artist: bool = False
    exclude_same_album: bool = False
    exclude_tracks: tuple[TrackRef, ...] = ()
    exclude_artists: tuple[str, ...] = ()
    exclude_genres: tuple[str, ...] = ()
    artist_spacing: int | None = None
    album_spacing: bool | None = None
    exact: bool = False
    ef_search: int | None = None
    explain: bool = True
    # descriptors (issue #30; ``query.descriptor_options``)
    tempo: tuple[float, float] | None = None
    key: str | None = None
    moods: tuple[str, ...] = ()
    energy: tuple[float, float] | None = None
    harmonic: bool = False
    # duplicates (issue 31)
    allow_duplicates: bool = False

    def __post_init__(self) -> None:
        for rule in RULES:
            object.__setattr__(self, rule.field, rule.check(getattr(self, rule.field), rule.field))

    # ------------------------------------------------------------------ making options
    @classmethod
    def of(cls, base: SearchOptions | None = None, /, **options: Any) -> SearchOptions:
        """``base`` (default: the defaults) with ``options`` (field names or their parameter names, e.g. ``genre``)
        changed, each checked under the name it was given by (``min_probability must be in [0, 1)``); an unknown
        name is refused with the list of options."""
        changes: dict[str, Any] = {}
        for name, value in options.items():
            rule = BY_NAME.get(name)
            if rule is None:
                raise InvalidArgumentError(
                    f"unknown search option {name!r}; the options are: {', '.join(r.field for r in RULES)}"
                )
            changes[rule.field] = rule.check(value, name)
        return replace(base or DEFAULT, **changes) if changes else (base or DEFAULT)

    @classmethod
    def parse(
        cls, params: Any, *, defaults: Mapping[str, Any] | None = None, names: Iterable[str] | None = None
    ) -> SearchOptions:
        """The options a text source asks for: the one parser of the CLI, the HTTP API, the pages and Subsonic.

        ``params``: a multi-valued mapping (Starlette's query parameters or form, Subsonic's parameters), a
        mapping of names to values or lists of values, or (name, value) pairs. Texts are read by each option's
        rule (``"10"`` -> 10, ``"true"`` -> True, a track by its id); values that are not texts (the CLI's typed
        options) are taken as they are; an empty text or None means "not given". Names that are no option are
        left alone (they belong to the request's other parameters). ``defaults``: options of this surface
        (e.g. ``{"k": 20}``); ``names``: only these parameter names are read (default: all of them).
        """
        wanted = set(names) if names is not None else None
        given: dict[str, tuple[str, list[Any]]] = {}  # field -> (the name it was given by, its values)
        for name, value in _pairs(params):
            rule = BY_NAME.get(name)
            if rule is None or (wanted is not None and name not in wanted):
                continue
            if value is None or (isinstance(value, str) and value == ""):
                continue
            read = rule.text(value, name) if isinstance(value, str) and rule.text is not None else value
            given.setdefault(rule.field, (name, []))[1].append(read)
        found: dict[str, Any] = {}
        for field, (name, values) in given.items():
            if BY_FIELD[field].many:
                found[name] = [v for value in values for v in as_list(value, name, MAX_LIST)]
            else:
                found[name] = values[-1]
        return cls.of(cls.of(**(defaults or {})), **found)

    # ------------------------------------------------------------------ reading options
    def spacing(self, artist: int, album: bool) -> tuple[int, bool]:
        """(artist spacing, album rule) of a question whose own rule is (``artist``, ``album``)."""
        return (
            artist if self.artist_spacing is None else self.artist_spacing,
            album if self.album_spacing is None else self.album_spacing,
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (what an answer's ``params`` record)."""
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, tuple):
                value = [os.fspath(v) if isinstance(v, os.PathLike) else v for v in value]
            out[f.name] = value
        return out


def _pairs(params: Any) -> Iterable[tuple[str, Any]]:
    """(name, value) pairs of the sources ``parse`` reads."""
    if params is None:
        return []
    if hasattr(params, "multi_items"):  # Starlette QueryParams / FormData
        return list(params.multi_items())
    if isinstance(params, Mapping):
        out: list[tuple[str, Any]] = []
        for name, value in params.items():
            if isinstance(value, (list, tuple)):
                out.extend((name, v) for v in value)
            else:
                out.append((name, value))
        return out
    return list(params)


def _mood_names(value: Any, name: str) -> tuple[str, ...]:
    return tuple(dict.fromkeys(described.check_mood(x, name) for x in as_list(value, name, 6)))


def _many(doc: str, check: Callable[[Any, str], Any], text: Callable[[str, str], Any] | None = None) -> dict[str, Any]:
    return {"check": check, "text": text, "doc": doc, "many": True}


RULES: tuple[Rule, ...] = (
    Rule("k", ("k", "n", "count"), _integer(1, MAX_K), _int_text,
         f"how many tracks (1-{MAX_K}; a playlist's length)", schema={"type": "integer", "minimum": 1,
                                                                      "maximum": MAX_K}),
    Rule("space", ("space",), _space, None, "similarity space (features, ann, cnn, lda, musicnn, ...); omitted: the "
         "best available one", schema={"type": "string", "maxLength": 32}),
    Rule("genres", ("genre", "genres"), **_many("only tracks of these genres (repeat)", _names(50))),
    Rule("tags", ("tag", "tags"), **_many(f"only tracks with every one of these musicnn tags (repeat, at most "
                                          f"{MAX_TAGS})", _names(MAX_TAGS))),
    Rule("min_tag_probability", ("min_tag_probability", "min_probability"), _probability, _float_text,
         "least probability of each tag (0-1)", schema={"type": "number", "minimum": 0, "maximum": 1}),
    Rule("exclude_same_artist", ("exclude_same_artist",), _flag, _bool_text, "leave out the seeds' artists",
         schema={"type": "boolean"}),
    Rule("exclude_same_album", ("exclude_same_album",), _flag, _bool_text, "leave out the seeds' albums",
         schema={"type": "boolean"}),
    Rule("exclude_tracks", ("exclude_track", "exclude_tracks"),
         **_many("track ids that must not appear (repeat)", _tracks, _track_id_text)),
    Rule("exclude_artists", ("exclude_artist", "exclude_artists"),
         **_many("artists that must not appear (any case; repeat)", _names(MAX_LIST))),
    Rule("exclude_genres", ("exclude_genre", "exclude_genres"),
         **_many("genres that must not appear (repeat)", _names(MAX_LIST))),
    Rule("artist_spacing", ("artist_spacing",), _optional(_integer(0, 100)), _int_text,
         "tracks between two of one artist (0: off; omitted: the question's own rule)",
         schema={"type": "integer", "minimum": 0, "maximum": 100}),
    Rule("album_spacing", ("album_spacing",), _optional(_flag), _bool_text,
         "no two consecutive tracks of one album (omitted: the question's own rule)", schema={"type": "boolean"}),
    Rule("exact", ("exact",), _flag, _bool_text, "brute force instead of the HNSW index",
         schema={"type": "boolean"}),
    Rule("ef_search", ("ef_search",), _optional(_integer(1, MAX_K)), _int_text,
         "HNSW search width (default max(200, 4k))", schema={"type": "integer", "minimum": 1, "maximum": MAX_K}),
    Rule("explain", ("explain",), _flag, _bool_text, "give each hit its why", schema={"type": "boolean"}),
    # descriptors: a track whose value is unknown (no steady beat, no key, not analysed) never matches
    Rule("tempo", ("tempo",), described.check_tempo, None, "only tracks of this tempo: 'MIN-MAX' BPM ('118-128'), "
         "or one BPM (within 4 %)", schema={"type": "string", "maxLength": 40}),
    Rule("key", ("key",), described.check_key, None, "only tracks in this key ('A minor', 'Am', Camelot '8A'), or "
         "'compatible': the seed's key, its relative and its neighbours on the Camelot wheel",
         schema={"type": "string", "maxLength": 32}),
    Rule("moods", ("mood", "moods"), **_many("only tracks with every one of these moods (calm, energetic, happy, "
                                             "sad, aggressive, danceable; repeat)", _mood_names)),
    Rule("energy", ("energy",), described.check_energy, None, "only tracks of this energy: 'MIN-MAX' in 0-1",
         schema={"type": "string", "maxLength": 40}),
    Rule("harmonic", ("harmonic",), _flag, _bool_text, "a harmonic mix (playlist, radio): each track key-compatible "
         "with the one before and within 8 % of its tempo (or half / double)", schema={"type": "boolean"}),
    # duplicates (issue 31)
    Rule("allow_duplicates", ("allow_duplicates",), _flag, _bool_text, "let copies of one recording and versions of "
         "one song appear (default: one file per group, none of the seeds' groups)", schema={"type": "boolean"}),
)  # fmt: skip
"""Every option's rule, in the order of the fields."""
BY_FIELD: dict[str, Rule] = {r.field: r for r in RULES}
BY_NAME: dict[str, Rule] = {n: r for r in RULES for n in (r.field, *r.names)}
DEFAULT = SearchOptions()


class SearchArgs(TypedDict, total=False):
    """The options as keyword arguments (``index.similar(12, k=5, genre="jazz")``): every field of
    :class:`SearchOptions`, and ``n`` / ``genre`` / ``min_probability``, the parameter names of ``k`` (a
    playlist's length) / ``genres`` / ``min_tag_probability``."""

    k: int
    n: int
    space: str | None
    genre: str | Sequence[str] | None
    genres: Sequence[str] | None
    tags: Sequence[str] | None
    min_tag_probability: float
    min_probability: float
    exclude_same_artist: bool
    exclude_same_album: bool
    exclude_tracks: Sequence[TrackRef] | None
    exclude_artists: Sequence[str] | None
    exclude_genres: Sequence[str] | None
    artist_spacing: int | None
    album_spacing: bool | None
    exact: bool
    ef_search: int | None
    explain: bool
    tempo: str | tuple[float, float] | None
    key: str | None
    mood: str | Sequence[str] | None
    moods: Sequence[str] | None
    energy: str | tuple[float, float] | None
    harmonic: bool
    allow_duplicates: bool


def openapi_parameters(
    defaults: Mapping[str, Any] | None = None, only: Iterable[str] | None = None
) -> list[dict[str, Any]]:
    """The query parameters :meth:`SearchOptions.parse` reads, as OpenAPI parameter objects (a route's
    ``openapi_extra``): the first name of each option (``only``: just these fields), with this surface's
    ``defaults``."""
    chosen = set(only) if only is not None else None
    out = []
    for rule in RULES:
        if chosen is not None and rule.field not in chosen:
            continue
        schema: dict[str, Any] = dict(rule.schema or {"type": "string", "maxLength": MAX_NAME})
        if rule.many:
            schema = {"type": "array", "items": schema}
        default = (defaults or {}).get(rule.field, getattr(DEFAULT, rule.field))
        if default not in (None, ()):
            schema["default"] = list(default) if isinstance(default, tuple) else default
        out.append({"name": rule.names[0], "in": "query", "required": False, "schema": schema,
                    "description": rule.doc})  # fmt: skip
    return out


def as_options(options: SearchOptions | None, args: Mapping[str, Any]) -> SearchOptions:
    """``options`` with keyword ``args`` applied (the facade's convenience: ``index.similar(12, k=5)``)."""
    if options is not None and not isinstance(options, SearchOptions):
        raise InvalidArgumentError(f"options must be SearchOptions, got {type(options).__name__}")
    return SearchOptions.of(options, **args)


__all__ = ["MAX_TAGS", "RULES", "Rule", "SearchArgs", "SearchOptions", "TrackRef", "openapi_parameters"]
