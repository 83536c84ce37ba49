"""The audio fingerprint and the same-recording rule on synthesized music: copies (gain, another sample rate, a
trimmed start or end, an MP3 round trip, noise) are one recording; other songs, and every hard case (silence,
near-silence, very short files, a steady tone, a shared long intro, a shared sample, the movements of one work, a
live and a studio take) never are. Synthesized audio proves the plumbing; benchmarks/duplicates.py measures
recall and false merges on real music."""

from __future__ import annotations

import io
import itertools
import math

import numpy as np
import pytest

from musicindex.audio import fingerprint as F
from musicindex.audio.window import SAMPLE_RATE, AnalysisWindow
from musicindex.dupes import recording as R
from musicindex.errors import InvalidAudioError

SR = SAMPLE_RATE
SCALE = 2.0 ** (np.array([0, 2, 3, 5, 7, 8, 10, 12, 14, 15, 17, 19]) / 12.0)


def notes(seed: int, seconds: float, root: float = 196.0) -> list[tuple[float, float, float]]:
    """A melody: ``(start s, length s, frequency Hz)``, random steps of a minor scale."""
    rng = np.random.default_rng(seed)
    out, t = [], 0.0
    while t < seconds:
        length = float(rng.choice([0.125, 0.25, 0.25, 0.375, 0.5]))
        out.append((t, length, root * float(rng.choice(SCALE)) * float(rng.choice([1.0, 2.0]))))
        t += length
    return out


def render(
    melody, seconds: float, *, sr: int = SR, timbre=(1.0, 0.5, 0.25), tempo: float = 1.0, jitter: float = 0.0, seed=0
) -> np.ndarray:
    """The melody played (harmonic tones with a decay) with a bass note per bar and a noise hi-hat."""
    rng = np.random.default_rng(seed + 7919)
    n = int(seconds * sr)
    y = np.zeros(n, dtype=np.float64)
    for onset, length, freq in melody:
        start = onset * tempo + (rng.normal(0.0, jitter) if jitter else 0.0)
        k0 = int(max(0.0, start) * sr)
        k1 = min(n, k0 + int(length * tempo * sr))
        if k0 >= n:
            break
        tt = np.arange(k1 - k0) / sr
        tone = sum(w * np.sin(2 * np.pi * freq * (h + 1) * tt) for h, w in enumerate(timbre))
        y[k0:k1] += 0.25 * np.exp(-4.0 * tt) * tone
    beat = 0.5 * tempo
    hat = np.random.default_rng(seed).standard_normal(int(0.03 * sr)) * np.exp(-np.arange(int(0.03 * sr)) / 200.0)
    for k in range(int(seconds / beat)):
        k0 = int(k * beat * sr)
        y[k0 : k0 + hat.size] += 0.05 * hat[: max(0, min(hat.size, n - k0))]
    return y.astype(np.float32)


def song(seed: int, seconds: float = 100.0, sr: int = SR) -> np.ndarray:
    return render(notes(seed, seconds, root=150.0 + 10.0 * (seed % 9)), seconds, sr=sr, seed=seed)


def fp_of(y: np.ndarray, sr: int = SR, *, duration: float | None = None) -> F.Fingerprint:
    """Fingerprint a whole decoded signal the way the pass would: the regions, each at SAMPLE_RATE."""
    from musicindex.audio.decode import _resample

    duration = y.size / sr if duration is None else duration
    segments = [
        (start, _resample(y[int(start * sr) : int(start * sr) + int(length * sr)], sr, SR))
        for start, length in F.regions(duration)
    ]
    return F.fingerprint(segments, duration)


def same(a: F.Fingerprint, b: F.Fingerprint) -> bool:
    return R.decide(a, b).same and R.decide(b, a).same


@pytest.fixture(scope="module")
def songs() -> dict[int, np.ndarray]:
    return {seed: song(seed) for seed in range(6)}


@pytest.fixture(scope="module")
def prints(songs) -> dict[int, F.Fingerprint]:
    return {seed: fp_of(y) for seed, y in songs.items()}


# --- the extractor ---------------------------------------------------------------------------------------------
def test_regions_cover_short_tracks_whole_and_long_ones_by_window_and_tail():
    assert F.regions(40.0) == [(0.0, 40.0)]
    assert F.regions(F.WHOLE_SECONDS) == [(0.0, F.WHOLE_SECONDS)]
    assert F.regions(240.0) == [(30.0, 30.0), (220.0, 15.0)]
    assert F.regions(240.0, tail=False) == [(30.0, 30.0)]
    assert F.regions(90.0) == [(30.0, 30.0), (70.0, 15.0)]
    assert F.regions(80.0) == [(30.0, 30.0), (60.0, 15.0)]  # the tail starts where the window ends
    assert F.regions(200.0, AnalysisWindow(offset=60.0, duration=20.0)) == [(60.0, 20.0), (180.0, 15.0)]


def test_running_max_is_the_neighbourhood_maximum():
    from scipy.ndimage import maximum_filter

    a = np.random.default_rng(3).random((57, 40)).astype(np.float32)
    got = F._running_max(F._running_max(a, F.PEAK_FRAMES, 0), F.PEAK_BINS, 1)
    assert np.array_equal(got, maximum_filter(a, size=(F.PEAK_FRAMES, F.PEAK_BINS), mode="constant", cval=0.0))


def test_a_fingerprint_has_sorted_times_inside_its_regions_and_round_trips_as_bytes(prints):
    fp = prints[0]
    assert len(fp) > 500 and fp.hashes.dtype == np.int32
    assert np.all(np.diff(fp.times) >= 0)
    assert all(any(lo <= t < hi for lo, hi in fp.regions) for t in fp.times[:: max(1, len(fp) // 50)])
    assert math.isclose(fp.seconds, 45.0, abs_tol=0.2)
    back = F.Fingerprint.from_bytes(fp.to_bytes())
    assert np.array_equal(back.hashes, fp.hashes) and np.array_equal(back.times, fp.times)
    assert back.regions == fp.regions and back.duration == pytest.approx(fp.duration) and back.version == fp.version
    with pytest.raises(ValueError, match="not a fingerprint"):
        F.Fingerprint.from_bytes(fp.to_bytes()[:-3])
    with pytest.raises(ValueError, match="not a fingerprint"):
        F.Fingerprint.from_bytes(b"xx")


def test_the_index_keys_are_a_sample_of_triplets_chosen_by_key_alone(prints):
    fp = prints[1]
    keys, times = F.index_keys(fp)
    assert 0.03 < keys.size / len(fp) < 0.15 and F.sampled(keys).all()
    assert np.unique(keys).size > 0.95 * keys.size  # specific: a key is (almost) never repeated in a track
    assert set(times.tolist()) <= set(fp.times.tolist())  # a key's time is its anchor's
    q, _ = F.query_keys(fp)
    assert set(keys.tolist()) <= set(q.tolist())  # a lookup of the same fingerprint finds every stored key


# --- copies are one recording -------------------------------------------------------------------------------
def _resampled(y: np.ndarray, sr_from: int, sr_to: int) -> np.ndarray:
    import soxr

    return soxr.resample(y, sr_from, sr_to).astype(np.float32)


@pytest.mark.parametrize(
    "alteration",
    ["gain -6 dB", "48 kHz", "start cut 7.3 s", "end cut 3 s", "both ends cut", "noise -30 dB", "low-pass 5 kHz"],
)
def test_an_altered_copy_is_the_same_recording(songs, prints, alteration):
    y = songs[2]
    rng = np.random.default_rng(11)
    if alteration == "gain -6 dB":
        c, sr = y * 10 ** (-6 / 20), SR
    elif alteration == "48 kHz":
        c, sr = _resampled(y, SR, 48000), 48000
    elif alteration == "start cut 7.3 s":
        c, sr = y[int(7.3 * SR) :], SR
    elif alteration == "end cut 3 s":
        c, sr = y[: -3 * SR], SR
    elif alteration == "both ends cut":
        c, sr = y[int(2.2 * SR) : -2 * SR], SR
    elif alteration == "noise -30 dB":
        c, sr = y + rng.standard_normal(y.size).astype(np.float32) * 0.03 * float(np.std(y)), SR
    else:
        from scipy.signal import butter, sosfilt

        c, sr = sosfilt(butter(8, 5000, fs=SR, output="sos"), y).astype(np.float32), SR
    copy = fp_of(c, sr)
    verdict = R.decide(copy, prints[2])
    assert verdict.same, verdict.reason
    assert 0.0 < verdict.confidence <= 1.0
    cut = {"start cut 7.3 s": 7.3, "both ends cut": 2.2}.get(alteration, 0.0)
    assert R.compare(copy, prints[2]).offset == pytest.approx(cut, abs=0.1)


def test_an_mp3_round_trip_is_the_same_recording(songs, prints):
    av = pytest.importorskip("av")
    import soundfile as sf

    y = songs[3]
    buf = io.BytesIO()
    with av.open(buf, "w", format="mp3") as out:
        stream = out.add_stream("libmp3lame", rate=SR, layout="mono")
        stream.bit_rate = 96000
        frame = av.AudioFrame.from_ndarray(y[None, :], format="fltp", layout="mono")
        frame.sample_rate = SR
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            out.mux(packet)
    buf.seek(0)
    decoded, sr = sf.read(buf, dtype="float32")
    assert sr == SR and abs(decoded.size - y.size) < SR
    assert same(fp_of(decoded, sr), prints[3])


def test_other_songs_are_never_one_recording(prints):
    for a, b in itertools.combinations(sorted(prints), 2):
        m = R.compare(prints[a], prints[b])
        assert not R.decide(prints[a], prints[b], m).same
        assert m.matches < R.MIN_MATCHES


# --- hard cases ----------------------------------------------------------------------------------------------
def test_silence_and_near_silence_are_not_fingerprinted(songs):
    with pytest.raises(F.NotFingerprintableError, match="near-silent"):
        fp_of(np.zeros(60 * SR, dtype=np.float32))
    hum = 10 ** (-75 / 20) * np.random.default_rng(0).standard_normal(60 * SR).astype(np.float32)
    with pytest.raises(F.NotFingerprintableError, match="near-silent"):
        fp_of(hum)
    quiet = songs[0] * 10 ** (-40 / 20)  # quiet but real music is fingerprinted
    assert len(fp_of(quiet)) > F.MIN_LANDMARKS


def test_very_short_files_are_not_fingerprinted(songs):
    with pytest.raises(F.NotFingerprintableError, match=r"too short to fingerprint: 9\.0 s"):
        fp_of(songs[0][: 9 * SR])
    with pytest.raises(F.NotFingerprintableError, match="too short"):
        fp_of(songs[0][: int(14.9 * SR)])


def test_a_steady_tone_is_too_repetitive_to_fingerprint():
    t = np.arange(60 * SR) / SR
    tone = (0.3 * np.sin(2 * np.pi * 440.0 * t) + 0.1 * np.sin(2 * np.pi * 880.0 * t)).astype(np.float32)
    with pytest.raises(F.NotFingerprintableError, match=r"too repetitive|too little structure"):
        fp_of(tone)


def test_tracks_that_share_a_long_intro_are_not_one_recording(songs):
    intro = songs[4][: 80 * SR]
    a = np.concatenate([intro, songs[0][: 60 * SR]])
    b = np.concatenate([intro, songs[1][: 60 * SR]])
    fa, fb = fp_of(a), fp_of(b)
    m = R.compare(fa, fb)
    assert m.matches > 200  # the window (30-60 s) is the shared intro: it agrees there...
    verdict = R.decide(fa, fb, m)
    assert not verdict.same and "agree" in verdict.reason  # ...and the tails tell them apart
    assert same(fp_of(a[int(1.5 * SR) :]), fa)  # while a trimmed copy of one is still the same recording


def test_tracks_that_share_a_sample_are_not_one_recording(songs):
    a = songs[5].copy()
    b = songs[1].copy()
    b[40 * SR : 48 * SR] = a[40 * SR : 48 * SR]  # eight seconds of a inside b
    verdict = R.decide(fp_of(a), fp_of(b))
    assert not verdict.same


def test_the_movements_of_one_work_are_not_one_recording():
    """One composer's movements: the same instrument, key and tempo, other themes, played one after the other."""
    movements = [render(notes(100 + k, 90.0, root=196.0), 90.0, timbre=(1.0, 0.6, 0.3, 0.1), seed=5) for k in range(3)]
    prints = [fp_of(y) for y in movements]
    for a, b in itertools.combinations(prints, 2):
        assert not R.decide(a, b).same


def test_a_live_and_a_studio_take_are_not_one_recording():
    """The same melody played again: a little slower, loose timing, another timbre, a noisy room."""
    melody = notes(42, 100.0)
    studio = render(melody, 100.0, seed=1)
    live = render(melody, 100.0, tempo=1.03, jitter=0.015, timbre=(1.0, 0.3, 0.4), seed=2)
    live = live + 0.02 * np.random.default_rng(9).standard_normal(live.size).astype(np.float32)
    fs, fl = fp_of(studio), fp_of(live)
    assert not R.decide(fs, fl).same and not R.decide(fl, fs).same
    assert same(fp_of(studio * 0.5), fs)  # the rule is not simply blind: the studio take's copy is found


def test_durations_far_apart_are_never_one_recording(prints):
    fp = prints[0]
    longer = F.Fingerprint(fp.hashes, fp.times, fp.regions, fp.duration + 40.0)
    verdict = R.decide(fp, longer)
    assert not verdict.same and "durations differ" in verdict.reason


def test_fingerprint_file_reads_the_regions_of_a_real_file(tmp_path, songs, prints):
    import soundfile as sf

    path = tmp_path / "song.flac"
    sf.write(path, songs[0], SR)
    fp = F.fingerprint_file(path)
    assert fp.regions == prints[0].regions and same(fp, prints[0])
    short = tmp_path / "jingle.wav"
    sf.write(short, songs[0][: 6 * SR], SR)
    with pytest.raises(F.NotFingerprintableError, match=r"too short to fingerprint: 6\.0 s"):
        F.fingerprint_file(short)


def test_a_digitally_silent_tail_is_left_out_and_the_window_still_fingerprints(tmp_path, songs, prints):
    import soundfile as sf

    y = songs[0].copy()
    y[75 * SR :] = 0.0  # a silent end (a hidden-track gap): no tail region, the window alone
    sf.write(tmp_path / "silent-end.flac", y, SR)
    fp = F.fingerprint_file(tmp_path / "silent-end.flac")
    assert fp.regions == prints[0].regions[:1]
    silent = np.zeros(100 * SR, dtype=np.float32)
    sf.write(tmp_path / "silent.flac", silent, SR)
    with pytest.raises(InvalidAudioError, match="silent"):  # a silent window is the file's problem (the pass's)
        F.fingerprint_file(tmp_path / "silent.flac")
