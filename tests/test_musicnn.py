"""The Keras 3 port of musicnn: equality with the original network, the clip contract, weight integrity.

The reference values (tests/data/musicnn_reference.npz) were recorded once from the ORIGINAL TF1 graph of the
``musicnn`` 0.1.0 wheel by tools/record_musicnn_reference.py, on audio that its ``reference_signal()`` synthesizes
from a fixed seed; this test regenerates the same audio. No database, broker or network is needed.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import zipfile
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from musicindex.errors import InvalidAudioError, PretrainedModelError
from musicindex.pretrained import musicnn
from musicindex.pretrained.musicnn import MusicnnModel

REPO = Path(__file__).resolve().parents[1]
REFERENCE = REPO / "tests" / "data" / "musicnn_reference.npz"

# The port against the original graph, per patch. Measured on the reference audio (max |port - original|):
# oneDNN on (the default): MSD 3.3e-6 penultimate / 2.4e-7 tags, MTT 8.0e-6 / 2.5e-6;
# oneDNN off: MSD 2.0e-6 / 2.4e-7, MTT 9.7e-7 / 1.2e-7. Penultimate values reach 3.6 in magnitude.
RTOL = 1e-5
ATOL = 2e-5


def _recorder() -> ModuleType:
    """tools/record_musicnn_reference.py as a module (it imports only numpy at module level)."""
    path = REPO / "tools" / "record_musicnn_reference.py"
    spec = importlib.util.spec_from_file_location("record_musicnn_reference", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def reference() -> dict[str, np.ndarray]:
    with np.load(REFERENCE, allow_pickle=False) as archive:
        return {name: archive[name] for name in archive.files}


@pytest.fixture(scope="module")
def signal() -> np.ndarray:
    return _recorder().reference_signal()


@pytest.fixture(scope="module")
def msd() -> MusicnnModel:
    return MusicnnModel.load()


# --- equality with the original network ------------------------------------------------------------------
def test_logmel_equals_the_original_representation(signal: np.ndarray, reference: dict[str, np.ndarray]) -> None:
    mel = musicnn.logmel(signal)
    assert mel.dtype == np.float32
    assert mel.shape == reference["logmel"].shape == (1 + signal.size // musicnn.HOP, musicnn.N_MELS)
    np.testing.assert_allclose(mel, reference["logmel"], rtol=0, atol=1e-6)


@pytest.mark.parametrize("name", ["MSD_musicnn", "MTT_musicnn"])
def test_port_equals_the_original_per_patch(
    name: str, signal: np.ndarray, reference: dict[str, np.ndarray], msd: MusicnnModel
) -> None:
    model = msd if name == "MSD_musicnn" else MusicnnModel.load(name)
    batch = musicnn.patches(musicnn.logmel(signal))
    assert batch.shape == (4, musicnn.PATCH_FRAMES, musicnn.N_MELS)
    for batch_patches in (1, 3):
        penultimate, probabilities = model.patch_outputs(batch, batch_patches=batch_patches)
        assert penultimate.dtype == probabilities.dtype == np.float32
        np.testing.assert_allclose(penultimate, reference[f"{name}/penultimate"], rtol=RTOL, atol=ATOL)
        np.testing.assert_allclose(probabilities, reference[f"{name}/taggram"], rtol=RTOL, atol=ATOL)
    # the audio is not trivial: the patches differ, and so do the tags
    assert np.ptp(reference[f"{name}/taggram"], axis=0).max() > 0.1


# --- the clip contract -------------------------------------------------------------------------------------
def test_embed_is_the_mean_over_each_clips_patches(signal: np.ndarray, msd: MusicnnModel) -> None:
    sr = musicnn.SAMPLE_RATE
    clips = [signal, signal[3 * sr : 8 * sr], signal[:sr]]  # 4 patches, 1 (tail dropped), 1 (repeat-padded)
    embeddings, probabilities = msd.embed(clips, batch_patches=4)  # batches straddle clips
    assert embeddings.shape == (3, musicnn.EMBEDDING_DIM) and embeddings.dtype == np.float32
    assert probabilities.shape == (3, len(musicnn.TAGS)) and probabilities.dtype == np.float32
    # oneDNN's float sums depend a little on how patches are batched (~3e-6), hence the port's tolerance
    for i, clip in enumerate(clips):
        penultimate, tags = msd.patch_outputs(musicnn.patches(musicnn.logmel(clip)))
        np.testing.assert_allclose(embeddings[i], penultimate.mean(axis=0), rtol=RTOL, atol=ATOL)
        np.testing.assert_allclose(probabilities[i], tags.mean(axis=0), rtol=RTOL, atol=ATOL)
    alone, _ = msd.embed([clips[1]], batch_patches=1)
    np.testing.assert_allclose(alone[0], embeddings[1], rtol=RTOL, atol=ATOL)
    empty = msd.embed([])
    assert empty[0].shape == (0, musicnn.EMBEDDING_DIM) and empty[1].shape == (0, len(musicnn.TAGS))


def test_patches_are_non_overlapping_and_short_clips_repeat_padded() -> None:
    mel = np.arange(500 * musicnn.N_MELS, dtype=np.float32).reshape(500, musicnn.N_MELS)
    cut = musicnn.patches(mel)
    assert cut.shape == (2, musicnn.PATCH_FRAMES, musicnn.N_MELS)  # frames 374..499 are dropped
    np.testing.assert_array_equal(cut[1], mel[musicnn.PATCH_FRAMES : 2 * musicnn.PATCH_FRAMES])
    short = musicnn.patches(mel[:50])
    assert short.shape == (1, musicnn.PATCH_FRAMES, musicnn.N_MELS)
    np.testing.assert_array_equal(short[0], mel[np.arange(musicnn.PATCH_FRAMES) % 50])


def test_bad_signals_are_clear_errors() -> None:
    with pytest.raises(InvalidAudioError, match="empty"):
        musicnn.logmel(np.zeros(0, np.float32))
    with pytest.raises(InvalidAudioError, match="non-finite"):
        musicnn.logmel(np.array([0.0, np.nan], np.float32))
    with pytest.raises(ValueError, match="mono"):
        musicnn.logmel(np.zeros((2, 16000), np.float32))


def test_tags_and_constants() -> None:
    assert len(musicnn.TAGS) == len(set(musicnn.TAGS)) == 50
    assert musicnn.TAGS[:6] == ("rock", "pop", "alternative", "indie", "electronic", "female vocalists")
    assert musicnn.WEIGHTS[musicnn.MODEL_NAME].tags == musicnn.TAGS
    assert (musicnn.SAMPLE_RATE, musicnn.N_MELS, musicnn.PATCH_FRAMES, musicnn.EMBEDDING_DIM) == (16000, 96, 187, 200)


# --- weight integrity ----------------------------------------------------------------------------------------
def test_missing_weight_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(PretrainedModelError, match=r"nope\.npz cannot be read.*reinstall musicindex"):
        MusicnnModel.load(path=tmp_path / "nope.npz")


def test_corrupted_weight_file_is_a_clear_error(tmp_path: Path) -> None:
    data = bytearray(musicnn.WEIGHTS[musicnn.MODEL_NAME].path.read_bytes())
    for i in range(len(data) // 2, len(data) // 2 + 16):
        data[i] ^= 0xFF
    corrupted = tmp_path / "msd_musicnn.npz"
    corrupted.write_bytes(bytes(data))
    with pytest.raises(PretrainedModelError, match="corrupted: sha256"):
        MusicnnModel.load(path=corrupted)
    corrupted.write_bytes(b"not a zip file")
    with pytest.raises(PretrainedModelError, match="unreadable"):
        MusicnnModel.load(path=corrupted, check_sha256=False)


def test_missing_extra_or_misshapen_variables_are_clear_errors(tmp_path: Path) -> None:
    with np.load(musicnn.WEIGHTS[musicnn.MODEL_NAME].path, allow_pickle=False) as archive:
        arrays = {name: archive[name] for name in archive.files}
    variants = {
        "missing: dense/bias": {k: v for k, v in arrays.items() if k != "dense/bias"},
        "unexpected: dense/bias/Adam": {**arrays, "dense/bias/Adam": arrays["dense/bias"]},
        r"wrong shape: dense_1/bias \(49,\)": {**arrays, "dense_1/bias": arrays["dense_1/bias"][:49]},
    }
    for message, variant in variants.items():
        path = tmp_path / "variant.npz"
        np.savez(path, allow_pickle=False, **variant)
        with pytest.raises(PretrainedModelError, match=message):
            MusicnnModel.load(path=path, check_sha256=False)
        with zipfile.ZipFile(path) as archive:  # a real npz, only its content is wrong
            assert archive.testzip() is None


def test_shipped_weights_are_small_float32_without_optimizer_state() -> None:
    for spec in musicnn.WEIGHTS.values():
        assert spec.path.stat().st_size < 4_000_000
        with np.load(spec.path, allow_pickle=False) as archive:
            assert len(archive.files) == 64
            assert all(archive[name].dtype == np.float32 for name in archive.files)
            assert not any("Adam" in name or "power" in name for name in archive.files)


# --- TensorFlow stays out of workers that do not embed --------------------------------------------------------
def test_importing_the_package_does_not_import_tensorflow() -> None:
    code = (
        "import sys, musicindex.pretrained, musicindex.pretrained.musicnn; "
        "loaded = sorted(m for m in ('tensorflow', 'keras', 'tf_keras') if m in sys.modules); "
        "print(loaded); sys.exit(1 if loaded else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, f"importing musicindex.pretrained imported {result.stdout.strip()} {result.stderr}"
