"""The descriptor estimators on synthesized ground truth (plumbing: a click at 120 BPM, a cadence in C major, a
copy 6 dB quieter), their honest answers on hard input, and their argument errors."""

from __future__ import annotations

import numpy as np
import pytest

from musicindex.audio.descriptors import (
    KeyEstimate,
    TempoEstimate,
    album_gain,
    album_loudness,
    camelot,
    estimate_key,
    estimate_tempo,
    measure_loudness,
    mirex_score,
    mood_scores,
    parse_key,
    parse_mood,
    pass_inputs,
)
from musicindex.audio.descriptors.key import peak_chroma
from musicindex.audio.descriptors.mood import USED_TAGS
from musicindex.errors import InvalidArgumentError
from musicindex.sample import ground_truth as G
from musicindex.vocab import FEATURE_NAMES

SR = 22050


@pytest.fixture(scope="module")
def hard_inputs():
    return {name: pass_inputs(gen()) for name, gen in G.HARD_INPUTS.items() if name != "2-second file"}


# ------------------------------------------------------------------------------------------------ tempo
@pytest.mark.parametrize("bpm", [90.0, 120.0, 140.0])
def test_a_click_track_has_its_tempo(bpm):
    est = estimate_tempo(pass_inputs(G.click_track(bpm)).onset_envelope)
    assert est.bpm == pytest.approx(bpm, abs=2.0)
    assert est.confidence > 0.5


def test_a_swung_drum_pattern_with_rests_has_its_tempo():
    est = estimate_tempo(pass_inputs(G.drum_pattern(100.0, swing=0.33, rest=0.2, seed=3)).onset_envelope)
    assert est.bpm == pytest.approx(100.0, abs=2.0)


def test_no_beat_means_no_tempo(hard_inputs):
    for name in ("silence", "white noise", "speech-like", "ambient drone", "rubato piano"):
        est = estimate_tempo(hard_inputs[name].onset_envelope)
        assert est.bpm is None, (name, est)
        assert est.confidence < 0.12


def test_a_two_second_file_has_no_tempo_and_no_key():
    pi = pass_inputs(G.HARD_INPUTS["2-second file"]())
    assert estimate_tempo(pi.onset_envelope) == TempoEstimate(None, 0.0)
    assert estimate_key(pi.chroma) == KeyEstimate(None, 0.0)


def test_tempo_argument_errors():
    with pytest.raises(InvalidArgumentError, match="1-d"):
        estimate_tempo(np.zeros((10, 10)))
    with pytest.raises(InvalidArgumentError, match="non-finite"):
        estimate_tempo(np.full(2000, np.nan))
    with pytest.raises(InvalidArgumentError, match="frame_rate"):
        estimate_tempo(np.zeros(2000), frame_rate=0)
    with pytest.raises(InvalidArgumentError, match="numeric"):
        estimate_tempo("120")  # type: ignore[arg-type]


# ------------------------------------------------------------------------------------------------ key
@pytest.mark.parametrize(("tonic", "mode", "timbre"), [(0, "major", "piano"), (9, "minor", "piano"),
                                                       (7, "major", "organ"), (2, "minor", "saw")])  # fmt: skip
def test_a_cadence_has_its_key(tonic, mode, timbre):
    est = estimate_key(pass_inputs(G.chord_progression(tonic, mode, 20.0, timbre=timbre)).chroma)
    expected = f"{('C', 'C#', 'D', 'Eb', 'E', 'F', 'F#', 'G', 'Ab', 'A', 'Bb', 'B')[tonic]} {mode}"
    assert est.key == expected
    assert est.camelot == camelot(expected)
    assert est.confidence >= 0.15


def test_no_key_in_silence_noise_speech_atonal_or_modulating_music(hard_inputs):
    for name in ("silence", "white noise", "speech-like", "ambient drone", "atonal (12-tone rows)",
                 "modulating (12 keys)"):  # fmt: skip
        est = estimate_key(hard_inputs[name].chroma)
        assert est.key is None, (name, est)
        assert est.camelot is None


def test_camelot_codes_and_key_spellings():
    assert camelot("C major") == "8B"
    assert camelot("A minor") == "8A"
    assert camelot("F# major") == "2B"
    assert camelot("Ebm") == "2A"
    assert camelot("Bb") == "6B"
    assert parse_key("am") == (9, "minor")
    assert parse_key("Db major") == (1, "major")


def test_mirex_scores():
    assert mirex_score("A minor", "A minor") == 1.0
    assert mirex_score("E minor", "A minor") == 0.5  # a fifth above
    assert mirex_score("D minor", "A minor") == 0.5  # a fifth below
    assert mirex_score("C major", "A minor") == 0.3  # relative
    assert mirex_score("A major", "A minor") == 0.2  # parallel
    assert mirex_score("F# major", "A minor") == 0.0
    assert mirex_score(None, "A minor") == 0.0


def test_key_argument_errors():
    with pytest.raises(InvalidArgumentError, match=r"H#.*C, C#, D"):
        parse_key("H#")
    for bad in ("", "A lydian", "\x00", "C" * 40):
        with pytest.raises(InvalidArgumentError):
            parse_key(bad)
    with pytest.raises(InvalidArgumentError, match="12 pitch classes"):
        estimate_key(np.ones((300, 11)))
    with pytest.raises(InvalidArgumentError, match="non-negative"):
        estimate_key(-np.ones((300, 12)))
    with pytest.raises(InvalidArgumentError, match="accepted: temperley, krumhansl, template"):
        estimate_key(np.ones((300, 12)), profile="edm")
    with pytest.raises(InvalidArgumentError, match="bins"):
        peak_chroma(np.ones((10, 100)))


# ------------------------------------------------------------------------------------------------ loudness
def _music(seconds: float = 8.0, sr: int = 44100) -> np.ndarray:
    left = G.chord_progression(0, "major", seconds, sr=sr) + 0.5 * G.drum_pattern(120, seconds, sr=sr)
    right = G.chord_progression(9, "minor", seconds, sr=sr) + 0.5 * G.drum_pattern(120, seconds, sr=sr, seed=1)
    return np.stack([left, right], axis=1)


def test_loudness_equals_pyloudnorm_and_a_6_db_quieter_copy_measures_6_db_quieter():
    import pyloudnorm

    x = _music()
    loud = measure_loudness(x, 44100)
    ref = pyloudnorm.Meter(44100).integrated_loudness(x.astype(np.float64))
    assert loud.integrated == pytest.approx(ref, abs=0.01)
    quiet = measure_loudness(x * 10 ** (-6 / 20), 44100)
    assert loud.integrated - quiet.integrated == pytest.approx(6.0, abs=0.1)
    assert loud.true_peak - quiet.true_peak == pytest.approx(6.0, abs=0.1)
    assert quiet.replay_gain == pytest.approx(loud.replay_gain + 6.0, abs=0.1)
    assert loud.replay_gain == pytest.approx(-18.0 - loud.integrated, abs=0.01)
    assert loud.loudness_range is not None and loud.loudness_range >= 0


@pytest.mark.parametrize("rate", [11025, 22050, 48000])
@pytest.mark.parametrize("seconds", [0.45, 1.234, 3.3])
def test_integrated_loudness_equals_pyloudnorm_at_any_rate_and_length(rate, seconds):
    import pyloudnorm

    rng = np.random.default_rng(int(rate * seconds))
    n = int(rate * seconds)
    x = 0.2 * rng.standard_normal((n, 2)) * np.linspace(0.1, 1.0, n)[:, None]
    ref = pyloudnorm.Meter(rate).integrated_loudness(x)
    assert measure_loudness(x, rate).integrated == pytest.approx(ref, abs=0.002)


def test_true_peak_sees_the_peak_between_samples():
    n = np.arange(44100)
    x = 0.5 * np.sin(2 * np.pi * n / 4 + np.pi / 4)  # samples at +-0.354, the wave peaks at 0.5
    loud = measure_loudness(x, 44100)
    assert loud.sample_peak == pytest.approx(20 * np.log10(0.5 * np.sqrt(0.5)), abs=0.01)
    assert loud.true_peak == pytest.approx(20 * np.log10(0.5), abs=0.1)


def test_a_mono_downmix_counted_on_two_channels_equals_the_dual_mono_stereo_file():
    y = G.chord_progression(0, "major", 10.0)
    stereo = measure_loudness(np.stack([y, y], axis=1), SR)
    assert measure_loudness(y, SR, playback_channels=2).integrated == pytest.approx(stereo.integrated, abs=0.01)


def test_silence_has_no_loudness():
    loud = measure_loudness(np.zeros(5 * SR), SR)
    assert (loud.integrated, loud.loudness_range, loud.true_peak, loud.replay_gain) == (None, None, None, None)


def test_album_gain_gates_the_blocks_of_all_tracks_together():
    y = G.chord_progression(0, "major", 10.0) + 0.5 * G.drum_pattern(110, 10.0)
    a = measure_loudness(y, SR)
    assert album_gain([a, a]) == pytest.approx(a.replay_gain, abs=0.01)
    b = measure_loudness(y * 10 ** (-10 / 20), SR)
    both = album_loudness([a, b])
    assert b.integrated < both < a.integrated
    from dataclasses import replace

    approx = album_loudness([replace(t, block_energies=np.zeros(0, np.float32)) for t in (a, b)])
    assert approx == pytest.approx(both, abs=0.5)


def test_loudness_argument_errors():
    with pytest.raises(InvalidArgumentError, match="1-5 channels"):
        measure_loudness(np.zeros((SR, 6)), SR)
    with pytest.raises(InvalidArgumentError, match="rate"):
        measure_loudness(np.zeros(SR), 0)
    with pytest.raises(InvalidArgumentError, match="playback_channels"):
        measure_loudness(np.zeros((SR, 2)), SR, playback_channels=2)
    with pytest.raises(InvalidArgumentError, match="non-finite"):
        measure_loudness(np.array([0.0, np.inf] * SR), SR)
    with pytest.raises(InvalidArgumentError, match="at least one"):
        album_gain([])
    with pytest.raises(InvalidArgumentError, match="Loudness"):
        album_gain([1.0])  # type: ignore[list-item]


# ------------------------------------------------------------------------------------------------ mood
def _features(**values: float) -> dict[str, float]:
    base = dict.fromkeys(FEATURE_NAMES, 0.0)
    base.update(values)
    return base


def _tags(**probs: float) -> dict[str, float]:
    tags = dict.fromkeys(USED_TAGS, 0.02)
    tags.update({k.replace("_", " "): v for k, v in probs.items()})
    return tags


def test_mood_scores_follow_their_cues():
    loud = _features(rms_mean=0.3, spectral_centroid_mean=3500.0, harmony_var=0.01, perceptr_var=0.02)
    soft = _features(rms_mean=0.01, spectral_centroid_mean=900.0, harmony_var=0.01, perceptr_var=0.0005)
    metal = mood_scores(loud, _tags(metal=0.7, hard_rock=0.5), tempo=TempoEstimate(160.0, 0.6))
    mellow = mood_scores(soft, _tags(Mellow=0.6, chillout=0.5, ambient=0.4), tempo=TempoEstimate(None, 0.05))
    assert {"energetic", "aggressive"} <= set(metal.moods)
    assert "calm" in mellow.moods and "energetic" not in mellow.moods
    assert metal.energy > 0.7
    assert mellow.energy < 0.3
    for m in (metal, mellow):
        assert all(0.0 <= v <= 1.0 for v in m.scores.values())
    dance = mood_scores(loud, _tags(dance=0.6, House=0.5), tempo=TempoEstimate(124.0, 0.7))
    assert dance.danceability > mellow.danceability
    assert "danceable" in dance.moods
    without_tags = mood_scores(np.asarray([loud[n] for n in FEATURE_NAMES]))
    assert 0.0 <= without_tags.energy <= 1.0


def test_mood_argument_errors():
    assert parse_mood(" Calm ") == "calm"
    with pytest.raises(InvalidArgumentError, match="accepted: calm, energetic, happy, sad, aggressive, danceable"):
        parse_mood("grumpy")
    with pytest.raises(InvalidArgumentError, match="43 values"):
        mood_scores(np.zeros(10))
    with pytest.raises(InvalidArgumentError, match="lack"):
        mood_scores(_features(), {"rock": 0.5})
    with pytest.raises(InvalidArgumentError, match=r"\[0, 1\]"):
        mood_scores(_features(), _tags(metal=1.5))
    with pytest.raises(InvalidArgumentError, match="finite"):
        mood_scores(_features(rms_mean=float("nan")))
