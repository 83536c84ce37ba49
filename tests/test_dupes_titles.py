"""Same song, another version: the title and artist rules and the grouping (pure functions, no database)."""

from __future__ import annotations

import numpy as np
import pytest

from musicindex.dupes import groups as G
from musicindex.dupes.titles import artist_names, song_key, song_title, version_kind


@pytest.mark.parametrize(
    ("title", "base", "versions"),
    [
        ("Hey Jude - Remastered 2015", "hey jude", {"remaster"}),
        ("Hey Jude (2015 Remaster)", "hey jude", {"remaster"}),
        ("HEY JUDE [Remastered]", "hey jude", {"remaster"}),
        ("Satisfaction - Live at Wembley 1986", "satisfaction", {"live"}),
        ("Halo (feat. Beyoncé) [Radio Edit]", "halo", {"radio edit"}),
        ("Crazy in Love - Single Version", "crazy in love", {"single"}),
        ('Blue Monday (12" Mix)', "blue monday", {"extended"}),
        ("Blue Monday (Extended Mix)", "blue monday", {"extended"}),
        ("Blue Monday (Someone's Remix)", "blue monday", {"remix"}),
        ("Wonderwall (Acoustic Version)", "wonderwall", {"acoustic"}),
        ("Wonderwall (Demo) [Mono]", "wonderwall", {"demo", "mono"}),
        ("Wonderwall (Take 2)", "wonderwall", {"demo"}),
        ("Wonderwall [Explicit]", "wonderwall", {"explicit"}),
        ("Wonderwall (Instrumental)", "wonderwall", {"instrumental"}),
        ("Wonderwall – Remastered 2009", "wonderwall", {"remaster"}),
        ("Wonderwall (Bonus Track)", "wonderwall", {"bonus"}),
        ("Déjà Vu", "deja vu", set()),
        ("(I Can't Get No) Satisfaction", "i can t get no satisfaction", set()),  # not a version: kept
        ('Theme (From "Movie")', "theme from movie", set()),
        ("Love & Hate", "love and hate", set()),
        ("Live Forever", "live forever", set()),  # version words inside the name are the name
        ("Edit the World", "edit the world", set()),
        ("01 - Wonderwall", "wonderwall", set()),
        ("99 Problems", "99 problems", set()),
    ],
)
def test_song_title_takes_off_the_version_words(title, base, versions):
    got = song_title(title)
    assert (got.base, set(got.versions)) == (base, versions)


def test_featuring_credits_are_not_part_of_the_song():
    assert song_title("Halo (feat. Beyoncé & Jay-Z)").featured == ("beyonce", "jay-z")
    assert song_title("Halo ft. X").base == "halo"
    assert song_title("Halo - feat. X").base == "halo"
    assert song_title("Halo (with X)").base == "halo"


def test_the_movements_of_one_work_stay_apart_and_bare_tempo_markings_are_generic():
    one = song_title("Symphony No. 5 in C Minor, Op. 67: I. Allegro con brio")
    two = song_title("Symphony No. 5 in C Minor, Op. 67: II. Andante con moto")
    assert one.base != two.base and not one.generic and not two.generic
    for generic in ("I. Allegro", "II. Adagio molto e cantabile", "Track 3", "Intro", "Untitled", "", None, "12"):
        assert song_title(generic).generic, generic
    allegro = song_key("I. Allegro", "Berliner Philharmoniker")
    assert not allegro.same_song(allegro)


def test_version_kind_names_whole_parts_only():
    assert version_kind("Remastered 2011") == "remaster"
    assert version_kind("Live") == "live"
    assert version_kind("Radio Edit") == "radio edit"
    assert version_kind("Love") is None
    assert version_kind("From the Motion Picture") is None


def test_artist_names_are_the_main_credits():
    assert artist_names("Queen & David Bowie") == {"queen", "david bowie", "queen & david bowie"}
    assert artist_names("The Beatles") == {"beatles"}
    assert artist_names("Beyoncé feat. Jay-Z") == {"beyonce"}
    for unknown in ("", None, "Unknown Artist", "Various Artists", "[unknown]"):
        assert artist_names(unknown) == frozenset(), unknown
    assert song_key("Under Pressure", "Queen").same_song(song_key("Under Pressure (Remastered)", "Queen & David Bowie"))
    assert not song_key("Under Pressure", "Queen").same_song(song_key("Under Pressure", "Vanilla Ice"))
    assert not song_key("Song A", "").same_song(song_key("Song A", ""))  # who sings it is unknown: no text match


def _facts(tid, title, artist="Band", duration=200.0, emb=None):
    return G.SongFacts(tid, title, artist, duration, None if emb is None else np.asarray(emb, dtype=np.float32))


def test_same_song_needs_the_title_and_agreeing_audio():
    studio = _facts(1, "Wonderwall", emb=[1.0, 0.2, 0.0])
    live = _facts(2, "Wonderwall - Live", duration=260.0, emb=[0.9, 0.3, 0.1])
    link = G.song_evidence(studio, live)
    assert link is not None and link.kind == G.SAME_SONG and G.SONG_MIN_CONFIDENCE <= link.confidence <= G.SONG_MAX
    assert "versions: live" in link.why
    stronger = G.song_evidence(studio, live, shared_audio=True)
    assert stronger is not None and stronger.confidence > link.confidence
    assert G.song_evidence(studio, _facts(3, "Champagne Supernova", emb=[1.0, 0.2, 0.0])) is None
    assert G.song_evidence(studio, _facts(4, "Wonderwall", emb=[-1.0, 0.0, 1.0])) is None  # sounds like another song
    assert G.song_evidence(studio, _facts(5, "Wonderwall", duration=30.0)) is None  # a 30 s snippet
    assert G.song_evidence(_facts(6, "Intro"), _facts(7, "Intro")) is None  # generic title
    assert G.song_evidence(studio, _facts(8, "Wonderwall", artist="Someone Else")) is None  # a cover: not this rule


def test_groups_are_components_with_their_weakest_link_and_kinds_never_merge():
    rec = [G.Link(1, 2, G.SAME_RECORDING, 0.9), G.Link(2, 3, G.SAME_RECORDING, 0.7)]
    rec.append(G.Link(5, 6, G.SAME_RECORDING, 1.0))
    song = [G.Link(3, 4, G.SAME_SONG, 0.8), G.Link(6, 7, G.SAME_SONG, 0.65), G.Link(1, 3, G.SAME_SONG, 0.9)]
    out = G.group(rec, song)
    recordings = [g for g in out if g.kind == G.SAME_RECORDING]
    songs = [g for g in out if g.kind == G.SAME_SONG]
    assert [(g.track_ids, g.confidence) for g in recordings] == [((1, 2, 3), 0.7), ((5, 6), 1.0)]
    # a song group holds every copy of its recordings; a song link never joins a recording group
    assert [(g.track_ids, g.confidence) for g in songs] == [((1, 2, 3, 4), 0.8), ((5, 6, 7), 0.65)]
    assert all(4 not in g.track_ids and 7 not in g.track_ids for g in recordings)


def test_a_song_link_inside_one_recording_group_makes_no_song_group():
    out = G.group([G.Link(1, 2, G.SAME_RECORDING, 0.9)], [G.Link(1, 2, G.SAME_SONG, 0.8)])
    assert [g.kind for g in out] == [G.SAME_RECORDING]


def test_recording_link_from_a_verdict():
    from musicindex.dupes.recording import Verdict

    assert G.recording_link(1, 2, Verdict(False, 0.0, "no")) is None
    link = G.recording_link(1, 2, Verdict(True, 0.8, "same recording: 300 landmarks agree at +0.00 s"))
    assert link is not None and link.kind == G.SAME_RECORDING and link.confidence == 0.8
