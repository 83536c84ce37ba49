"""``SearchOptions`` (musicindex/query/options.py): one parser for every surface, typed checks for Python callers,
the rules' names, and the SQL predicates of the filters (musicindex/query/filters.py). No server needed."""

from __future__ import annotations

import dataclasses
import typing

import pytest
from starlette.datastructures import FormData, QueryParams

from musicindex.errors import InvalidArgumentError
from musicindex.query import filters as F
from musicindex.query.options import RULES, SearchArgs, SearchOptions, openapi_parameters


def test_one_parser_reads_query_strings_forms_and_cli_values_alike():
    query = QueryParams("k=5&genre=jazz&genre=rock&tag=mellow&exclude_same_artist=true&exclude_track=7&exact=1"
                        "&artist_spacing=2&min_tag_probability=0.5&format=m3u8&liked=3")  # fmt: skip
    form = FormData([("k", "5"), ("genre", "jazz"), ("genre", "rock"), ("tag", "mellow"),
                     ("exclude_same_artist", "on"), ("exclude_track", "7"), ("exact", "yes"), ("artist_spacing", "2"),
                     ("min_probability", "0.5")])  # fmt: skip
    cli = {"k": 5, "genre": ["jazz", "rock"], "tag": ["mellow"], "exclude_same_artist": True, "exclude_track": [7],
           "exact": True, "artist_spacing": 2, "min_tag_probability": 0.5, "space": None}  # fmt: skip
    expected = SearchOptions(k=5, genres=("jazz", "rock"), tags=("mellow",), exclude_same_artist=True,
                             exclude_tracks=(7,), exact=True, artist_spacing=2, min_tag_probability=0.5)  # fmt: skip
    assert SearchOptions.parse(query) == SearchOptions.parse(form) == SearchOptions.parse(cli) == expected
    # names that are no option belong to the request (format, liked); empty texts are "not given"
    assert SearchOptions.parse(QueryParams("space=&genre=&tag=&k=3")) == SearchOptions(k=3)
    assert SearchOptions.parse([("n", "12")], defaults={"k": 20}).k == 12  # a playlist's n is k
    assert SearchOptions.parse({}, defaults={"k": 20}).k == 20
    assert SearchOptions.parse({"count": 50, "k": 3}, names=["count"]).k == 50  # only a surface's own names


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"k": "0"}, "k must be between 1 and 1000, got 0"),
        ({"k": "1e3"}, "k must be an integer, got '1e3'"),
        ({"k": "9" * 5000}, "k must be an integer"),
        ({"n": "abc"}, "n must be an integer, got 'abc'"),
        ({"space": "mfcc"}, "unknown space 'mfcc'; choose one of: features, ann, cnn, lda, musicnn"),
        ({"exclude_same_artist": "maybe"}, "true or false (true/1/yes/on or false/0/no/off)"),
        ({"min_tag_probability": "1"}, "min_tag_probability must be in [0, 1)"),
        ({"min_probability": "NaN"}, "min_probability must be a finite number"),
        ({"exclude_track": "-1"}, "exclude_track must be a track id between 1 and"),
        ({"exclude_track": "/etc/passwd"}, "exclude_track must be an integer"),
        ({"artist_spacing": "101"}, "artist_spacing must be between 0 and 100"),
        ({"exclude_artist": "a" * 201}, "exclude_artist is longer than 200 characters"),
        ({"genre": "a\x00b"}, "NUL character"),
        ({"tag": [str(i) for i in range(11)]}, "tag holds 11 entries; at most 10"),
        ({"min_probability": "1.5"}, "min_probability must be in [0, 1), got 1.5"),
        ({"count": "0"}, "count must be between 1 and 1000, got 0"),
        ({"ef_search": "0"}, "ef_search must be between 1 and 1000"),
    ],
)
def test_a_wrong_text_names_the_option_and_what_it_accepts(params, message):
    with pytest.raises(InvalidArgumentError, match=__import__("re").escape(message)):
        SearchOptions.parse(params)


def test_python_callers_get_the_same_checks_without_text_conversion():
    assert SearchOptions.of(k=5, genre="jazz").genres == ("jazz",)
    assert SearchOptions.of(genres=["jazz", "jazz"]).genres == ("jazz",)
    assert SearchOptions.of(SearchOptions(k=7), space="ann") == SearchOptions(k=7, space="ann")
    for bad, match in (
        ({"k": "10"}, "k must be an integer between 1 and 1000, got '10'"),
        ({"k": True}, "k must be an integer"),
        ({"k": 2.0}, "k must be an integer"),
        ({"space": 5}, "unknown space 5"),
        ({"exact": "yes"}, "exact must be true or false"),
        ({"exclude_tracks": [1.5]}, "a track is given by id (int) or path (str)"),
        ({"exclude_genres": [None]}, "exclude_genres must be a non-empty string"),
        ({"colour": "red"}, "unknown search option 'colour'; the options are: k, space, genres"),
    ):
        with pytest.raises(InvalidArgumentError, match=__import__("re").escape(match)):
            SearchOptions.of(**bad)
    with pytest.raises(InvalidArgumentError):
        SearchOptions(k=0)  # made directly: checked all the same
    with pytest.raises(dataclasses.FrozenInstanceError):
        SearchOptions().k = 3  # type: ignore[misc]


def test_the_rules_cover_every_field_and_the_keyword_arguments_name_them_all():
    fields = [f.name for f in dataclasses.fields(SearchOptions)]
    assert [r.field for r in RULES] == fields
    names = [n for r in RULES for n in (r.field, *r.names)]
    assert len(set(names)) == len({(n, r.field) for r in RULES for n in (r.field, *r.names)})  # no name twice
    assert set(fields) <= set(typing.get_type_hints(SearchArgs)) <= set(names)
    doc = {p["name"]: p for p in openapi_parameters({"k": 20})}
    assert set(doc) == {r.names[0] for r in RULES} and doc["k"]["schema"]["default"] == 20
    assert doc["genre"]["schema"]["type"] == "array" and doc["exact"]["schema"]["type"] == "boolean"
    assert SearchOptions(exclude_tracks=(3, "/a.flac")).to_dict()["exclude_tracks"] == [3, "/a.flac"]


def test_a_question_keeps_its_own_diversity_rule_unless_the_options_set_one():
    assert SearchOptions().spacing(3, True) == (3, True)
    assert SearchOptions(artist_spacing=0).spacing(3, True) == (0, True)
    assert SearchOptions(album_spacing=False, artist_spacing=5).spacing(0, True) == (5, False)


def test_each_filter_is_one_sql_predicate_with_its_values_as_parameters():
    sql = F.Sql("e.track_id", "COALESCE(t.label, p.genre)")
    assert F.where(F.Filters(), sql) == [] and sql.params == {}
    f = F.Filters(SearchOptions(), exclude_ids=(1, 2), genres=("jazz",), exclude_genres=("metal",),
                  exclude_artists=("abba",), exclude_albums=(9,), duplicate_ids=(7,))  # fmt: skip
    conds = F.where(f, sql)
    assert conds == [
        "e.track_id <> ALL(%(xids)s)",
        "COALESCE(t.label, p.genre) = ANY(%(genres)s)",
        "(COALESCE(t.label, p.genre) IS NULL OR COALESCE(t.label, p.genre) <> ALL(%(xgen)s))",
        "(t.artist IS NULL OR lower(t.artist) <> ALL(%(xart)s))",
        "(t.album_id IS NULL OR t.album_id <> ALL(%(xalb)s))",
        "e.track_id <> ALL(%(xdup)s)",
    ]
    assert sql.params == {"xids": [1, 2], "genres": ["jazz"], "xgen": ["metal"], "xart": ["abba"], "xalb": [9],
                          "xdup": [7]}  # fmt: skip
    assert len(F.PREDICATES) == len(conds) + 5  # the tag filter and the 4 descriptor filters, unset here
    assert f.excluding([5, 1]).exclude_ids == (1, 2, 5)
