"""The descriptor filters of ``SearchOptions`` (tempo, key, mood, energy): one parser for every surface, errors that
name the option and list what it accepts, the Camelot neighbours of ``key=compatible``, and one SQL predicate each
with its values as parameters. No server needed."""

from __future__ import annotations

import pytest
from starlette.datastructures import QueryParams

from musicindex.errors import InvalidArgumentError
from musicindex.query import filters as F
from musicindex.query.descriptor_options import compatible
from musicindex.query.options import SearchOptions


def test_the_descriptor_filters_read_alike_from_every_surface():
    query = QueryParams("tempo=118-128&key=A%20minor&mood=calm&mood=Happy&energy=0.2-0.6")
    cli = {"tempo": "118-128", "key": "A minor", "mood": ["calm", "Happy"], "energy": "0.2-0.6"}
    expected = SearchOptions(tempo=(118.0, 128.0), key="8A", moods=("calm", "happy"), energy=(0.2, 0.6))
    assert SearchOptions.parse(query) == SearchOptions.parse(cli) == expected
    assert SearchOptions.of(tempo=(118, 128), key="8a", mood="calm").key == "8A"
    assert SearchOptions.of(tempo="120").tempo == (115.2, 124.8)  # one BPM: within 4 %
    assert SearchOptions.of(key="Am").key == SearchOptions.of(key="8A").key == "8A"
    assert SearchOptions.of(key="c major").key == "8B" and SearchOptions.of(key="F# major").key == "2B"
    assert SearchOptions.of(key=" Compatible ").key == "compatible"
    assert SearchOptions.parse(QueryParams("tempo=&key=&mood=")) == SearchOptions()


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"tempo": "300-100"}, "tempo: the minimum 300 is above the maximum 100"),
        ({"tempo": "fast"}, "tempo must be a range 'MIN-MAX' of BPM between 20 and 400 such as '118-128'"),
        ({"tempo": "10-500"}, "tempo must lie between 20 and 400 BPM, got 10-500"),
        ({"tempo": "1" * 5000}, "tempo must be a range"),
        ({"tempo": "120\x00"}, "tempo must be a range"),
        ({"key": "H#"}, "key: unknown key 'H#': a tonic (C, C#, D"),
        ({"key": "13A"}, "key: unknown key '13A'"),
        ({"key": "A\x00minor"}, "key must be a key such as 'A minor'"),
        ({"key": "x" * 100}, "key must be a key such as 'A minor'"),
        ({"mood": "melancholic"}, "mood: unknown mood 'melancholic'; accepted: calm, energetic, happy, sad"),
        ({"mood": ["calm"] * 7}, "mood"),
        ({"energy": "0.5"}, "energy must be a range 'MIN-MAX' of energy between 0 and 1"),
        ({"energy": "0.2-3"}, "energy must lie between 0 and 1"),
    ],
)
def test_a_wrong_descriptor_filter_says_what_is_accepted(params, message):
    with pytest.raises(InvalidArgumentError, match=None) as err:
        SearchOptions.parse(params)
    assert message in str(err.value)


def test_python_callers_get_typed_checks():
    for bad in [(1, 2, 3), ("a", "b"), (True, 120), 120, (float("nan"), 130)]:
        with pytest.raises(InvalidArgumentError, match="tempo"):
            SearchOptions.of(tempo=bad)
    with pytest.raises(InvalidArgumentError, match="key"):
        SearchOptions.of(key=8)


def test_compatible_keys_are_the_same_the_relative_and_the_neighbours_on_the_wheel():
    assert compatible("8A") == ["8A", "8B", "9A", "7A"]
    assert compatible("12B") == ["12B", "12A", "1B", "11B"]
    assert compatible("1A") == ["1A", "1B", "2A", "12A"]


def test_each_descriptor_filter_is_one_predicate_with_parameters():
    sql = F.Sql("e.track_id", "g")
    f = F.Filters(SearchOptions(tempo=(118, 128), moods=("calm",), energy=(0.1, 0.5)), keys=("8A", "8B"))
    conds = F.where(f, sql)
    assert len(conds) == 4 and all(c.startswith("EXISTS (SELECT 1 FROM track_descriptors dsc") for c in conds)
    assert sql.params == {"tempo_lo": 118.0, "tempo_hi": 128.0, "camelot": ["8A", "8B"], "moods": ["calm"],
                          "energy_lo": 0.1, "energy_hi": 0.5}  # fmt: skip
    assert not any("118" in c or "calm" in c for c in conds)  # values are parameters, never SQL text


def test_compatible_needs_a_seed():
    with pytest.raises(InvalidArgumentError, match="needs a seed track"):
        F.seed_keys(None, ())  # type: ignore[arg-type]  # a tag search: no seed, no snapshot read


def test_harmonic_steps_and_their_reasons():
    from musicindex.query.harmonic import Beat, key_step, tempo_step, transition

    assert key_step("8A", "8A") == "same key" and key_step("8A", "8B") == "relative key"
    assert key_step("12B", "1B") == "+1 on the Camelot wheel" and key_step("1A", "12A") == "-1 on the Camelot wheel"
    assert key_step("8A", "9B") is None and key_step("8A", "10A") is None and key_step("8A", "x") is None
    assert tempo_step(120, 129) == "120 -> 129 BPM (+7.5%)" and tempo_step(120, 131) is None
    assert tempo_step(120, 62) == "120 -> 62 BPM (+3.3% (half time))" and tempo_step(70, 139) is not None
    assert (
        transition(Beat(120.0, "8A"), Beat(124.0, "9A")) == "8A -> 9A (+1 on the Camelot wheel); 120 -> 124 BPM (+3.3%)"
    )
    assert (
        transition(Beat(120.0, "8A"), Beat(None, "8A")) is None
        and transition(Beat(120.0, None), Beat(120, "1A")) is None
    )
    assert SearchOptions.parse({"harmonic": "true"}).harmonic and not SearchOptions().harmonic
