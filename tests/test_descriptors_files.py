"""The descriptors on a real file read the way the pass reads it: a stereo 44.1 kHz FLAC, decoded by
``decode.read_window`` (the 30-s window, mono, 22 050 Hz), gives its tempo and key, and the window's loudness
(counted on two channels) matches the whole file's at its own rate for a steady, panned mix (decorrelated
channels read up to 3 dB low from a mono downmix: docs/features.md, "Descriptors")."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from musicindex.audio.decode import read_window
from musicindex.audio.descriptors import estimate_key, estimate_tempo, measure_loudness, pass_inputs
from musicindex.sample import ground_truth as G

RATE = 44100


@pytest.fixture(scope="module")
def stereo_file(tmp_path_factory):
    seconds = 70.0
    music = G.chord_progression(9, "minor", seconds, sr=RATE, timbre="organ") + 0.6 * G.drum_pattern(
        128.0, seconds, sr=RATE
    )
    drums = 0.6 * G.drum_pattern(128.0, seconds, sr=RATE, seed=5)
    left, right = music + 0.3 * drums, 0.8 * music + 0.5 * drums  # panned by level, not dual mono
    path = tmp_path_factory.mktemp("desc") / "song.flac"
    sf.write(path, np.stack([left, right], axis=1), RATE)
    return path


def test_the_window_of_a_file_has_its_tempo_key_and_loudness(stereo_file):
    y, info = read_window(stereo_file)
    assert info.channels == 2
    pi = pass_inputs(y)
    tempo = estimate_tempo(pi.onset_envelope)
    assert tempo.bpm == pytest.approx(128.0, abs=2.0)
    key = estimate_key(pi.chroma)
    assert key.key == "A minor"
    assert key.camelot == "8A"
    window = measure_loudness(y, 22050, playback_channels=2)
    x, rate = sf.read(stereo_file, dtype="float32")
    full = measure_loudness(x, rate)
    # within 1 dB: the 22 050-Hz window has nothing above 11 kHz, where this mix's hi-hat noise (K-weighted +4 dB)
    # adds 0.9 dB at the file's own rate
    assert window.integrated == pytest.approx(full.integrated, abs=1.0)
    assert window.true_peak <= full.true_peak + 0.5
