"""musicnn on ONNX Runtime (musicindex.pretrained.runtime): equality of the fp32 graph, the clip contract, integrity.

The fp32 graph (pruned of the front end's dead filters, see tools/export_musicnn_onnx.py) is checked against the
outputs of the ORIGINAL TF1 network recorded in tests/data/musicnn_reference.npz (see tests/test_musicnn.py,
tools/record_musicnn_reference.py) and against the Keras 3 port on the same patches. Measured (ONNX Runtime 1.32,
AVX2, max abs difference over the 4 reference patches): vs the original 3.2e-6 embedding / 4.5e-7 probabilities;
vs the Keras port (oneDNN on) 3.8e-6 / 3.6e-7.
Embedding values reach 3.6 in magnitude. No database, broker or network is needed.
"""

from __future__ import annotations

import hashlib
import importlib.util
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from musicindex.errors import InvalidArgumentError, InvalidAudioError, PretrainedModelError
from musicindex.pretrained import musicnn, runtime
from musicindex.pretrained.runtime import MusicnnRuntime

REPO = Path(__file__).resolve().parents[1]
REFERENCE = REPO / "tests" / "data" / "musicnn_reference.npz"

# the tolerances of tests/test_musicnn.py (the Keras port against the original), for the fp32 graph
RTOL = 1e-5
ATOL = 2e-5
# fp32 graph against the Keras port, max abs difference (measured 3.8e-6 / 3.6e-7)
KERAS_MAX_DIFF_EMBEDDING = 2e-5
KERAS_MAX_DIFF_PROBABILITIES = 2e-6


def _recorder() -> ModuleType:
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
def fp32() -> MusicnnRuntime:
    return MusicnnRuntime.load(variant=runtime.REFERENCE_VARIANT)


@pytest.fixture(scope="module")
def batch(signal: np.ndarray) -> np.ndarray:
    return musicnn.patches(musicnn.logmel(signal))


# --- equality of the fp32 graph --------------------------------------------------------------------------------
def test_fp32_graph_equals_the_original_per_patch(
    fp32: MusicnnRuntime, batch: np.ndarray, reference: dict[str, np.ndarray]
) -> None:
    assert batch.shape == (4, musicnn.PATCH_FRAMES, musicnn.N_MELS)
    embedding, probabilities = fp32.patch_outputs(batch)
    assert embedding.dtype == probabilities.dtype == np.float32
    assert embedding.shape == (4, musicnn.EMBEDDING_DIM) and probabilities.shape == (4, len(musicnn.TAGS))
    np.testing.assert_allclose(embedding, reference["MSD_musicnn/penultimate"], rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(probabilities, reference["MSD_musicnn/taggram"], rtol=RTOL, atol=ATOL)
    # one patch at a time gives the same values (no batch-dependent kernel picks beyond float rounding)
    single = np.concatenate([fp32.patch_outputs(batch[i : i + 1])[0] for i in range(4)])
    np.testing.assert_allclose(single, embedding, rtol=RTOL, atol=ATOL)
    assert np.ptp(reference["MSD_musicnn/taggram"], axis=0).max() > 0.1  # the patches differ


def test_fp32_graph_equals_the_keras_port(fp32: MusicnnRuntime, batch: np.ndarray) -> None:
    pytest.importorskip("tensorflow")
    keras_embedding, keras_probabilities = musicnn.MusicnnModel.load().patch_outputs(batch)
    embedding, probabilities = fp32.patch_outputs(batch)
    d_emb = float(np.abs(embedding - keras_embedding).max())
    d_prob = float(np.abs(probabilities - keras_probabilities).max())
    assert d_emb <= KERAS_MAX_DIFF_EMBEDDING, d_emb
    assert d_prob <= KERAS_MAX_DIFF_PROBABILITIES, d_prob
    assert np.abs(keras_embedding).max() > 1.0  # a real comparison, not of two near-zero arrays


def test_reference_variant_is_the_ports_contract(fp32: MusicnnRuntime, signal: np.ndarray) -> None:
    sr = musicnn.SAMPLE_RATE
    clips = [signal, signal[3 * sr : 8 * sr], signal[:sr]]  # 4 patches, 1 (tail dropped), 1 (repeat-padded)
    embeddings, probabilities = fp32.embed(clips)
    assert embeddings.shape == (3, musicnn.EMBEDDING_DIM) and probabilities.shape == (3, len(musicnn.TAGS))
    for i, clip in enumerate(clips):
        cut = fp32.clip_patches(clip)
        np.testing.assert_array_equal(cut, musicnn.patches(musicnn.logmel(clip)))
        penultimate, tags = fp32.patch_outputs(cut)
        np.testing.assert_allclose(embeddings[i], penultimate.mean(axis=0), rtol=RTOL, atol=ATOL)
        np.testing.assert_allclose(probabilities[i], tags.mean(axis=0), rtol=RTOL, atol=ATOL)
    empty = fp32.embed([])
    assert empty[0].shape == (0, musicnn.EMBEDDING_DIM) and empty[1].shape == (0, len(musicnn.TAGS))


# --- the default variant ------------------------------------------------------------------------------------
def test_default_variant_embeds_a_synthesized_signal(signal: np.ndarray) -> None:
    rt = runtime.get_runtime()
    assert rt is runtime.get_runtime()  # the process-wide singleton
    assert rt.variant == runtime.DEFAULT_VARIANT and rt.name == "MSD_musicnn" and rt.tags == musicnn.TAGS
    long = np.tile(signal, 3)[: 30 * musicnn.SAMPLE_RATE]  # a 30 s analysis window
    embeddings, probabilities = rt.embed([long, signal[: musicnn.SAMPLE_RATE]])
    assert embeddings.shape == (2, musicnn.EMBEDDING_DIM) and probabilities.shape == (2, len(musicnn.TAGS))
    assert embeddings.dtype == probabilities.dtype == np.float32
    assert np.isfinite(embeddings).all() and np.isfinite(probabilities).all()
    assert ((probabilities > 0) & (probabilities < 1)).all()
    assert np.abs(embeddings[0] - embeddings[1]).max() > 0.1  # different clips, different vectors
    # embed_patches batches across clips and gives the per-clip means
    cuts = [rt.clip_patches(long), rt.clip_patches(signal)]
    assert all(c.ndim == 3 and c.shape[1:] == (musicnn.PATCH_FRAMES, musicnn.N_MELS) for c in cuts)
    together, _ = rt.embed_patches(cuts)
    np.testing.assert_allclose(together[0], embeddings[0], rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(together[1], rt.patch_outputs(cuts[1])[0].mean(axis=0), rtol=RTOL, atol=ATOL)
    expected = 1 if runtime.DEFAULT_VARIANT == runtime.REFERENCE_VARIANT else 2
    assert expected == runtime.EXTRACTOR_VERSION
    assert rt.gflop_per_patch == pytest.approx(runtime.network_gflop(runtime.GRAPH_FILTERS[rt.graph]))
    assert runtime.network_gflop() == pytest.approx(2.80, abs=0.005)  # the whole network
    assert runtime.network_gflop(runtime.LIVE_FILTERS) == pytest.approx(0.291, abs=0.001)  # its live filters


def test_patch_placements() -> None:
    mel = np.arange(1876 * musicnn.N_MELS, dtype=np.float32).reshape(1876, musicnn.N_MELS) / 1e5  # 30 s of frames
    grid = musicnn.patches(mel)
    assert grid.shape[0] == 10
    _, five = runtime.parse_variant("fp32-5p")
    np.testing.assert_array_equal(five.cut(mel), grid[[0, 2, 4, 7, 9]])
    _, spread = runtime.parse_variant("fp32-4s")
    cut = spread.cut(mel)
    starts = [0, 563, 1126, 1689]  # evenly over frames 0..1876-187, the last patch ends at the last frame
    np.testing.assert_array_equal(cut, np.stack([mel[s : s + musicnn.PATCH_FRAMES] for s in starts]))
    _, ten = runtime.parse_variant("fp32-10p")
    np.testing.assert_array_equal(ten.cut(mel), grid)
    assert five.cut(mel[:400]).shape[0] == 2 and spread.cut(mel[:100]).shape[0] == 1  # short clips: what fits
    for bad in ("fp32", "fp16-5p", "int8-0p", "fp32-5x", 5):
        with pytest.raises(InvalidArgumentError, match="unknown musicnn variant"):
            runtime.parse_variant(bad)  # type: ignore[arg-type]


def test_bad_inputs_are_clear_errors(fp32: MusicnnRuntime) -> None:
    with pytest.raises(InvalidAudioError, match="empty"):
        fp32.embed([np.zeros(0, np.float32)])
    with pytest.raises(InvalidAudioError, match="non-finite"):
        fp32.clip_patches(np.array([0.0, np.inf], np.float32))
    with pytest.raises(InvalidArgumentError, match="mono"):
        fp32.embed([np.zeros((2, 16000), np.float32)])
    with pytest.raises(InvalidArgumentError, match="patches"):
        fp32.patch_outputs(np.zeros((2, 100, musicnn.N_MELS), np.float32))
    with pytest.raises(InvalidArgumentError, match="non-finite"):
        fp32.patch_outputs(np.full((1, musicnn.PATCH_FRAMES, musicnn.N_MELS), np.nan, np.float32))
    with pytest.raises(InvalidArgumentError, match="clip 1"):
        fp32.embed_patches([np.zeros((1, 187, 96), np.float32), np.zeros((0, 187, 96), np.float32)])
    with pytest.raises(InvalidArgumentError, match="threads"):
        MusicnnRuntime.load(threads=0)
    with pytest.raises(InvalidArgumentError, match="MTT_musicnn"):
        MusicnnRuntime.load("MTT_musicnn")


# --- file integrity -----------------------------------------------------------------------------------------
def test_damaged_graph_file_is_refused(tmp_path: Path) -> None:
    shipped = runtime.ONNX_FILES["fp32"].path
    data = bytearray(shipped.read_bytes())
    data[len(data) // 2] ^= 0x01  # one bit
    damaged = tmp_path / shipped.name
    damaged.write_bytes(bytes(data))
    with pytest.raises(PretrainedModelError, match=r"corrupted: sha256 .* expected .*tools/export_musicnn_onnx\.py"):
        MusicnnRuntime.load(variant="fp32-10p", path=damaged)
    with pytest.raises(PretrainedModelError, match=r"nope\.onnx cannot be read.*reinstall musicindex"):
        MusicnnRuntime.load(path=tmp_path / "nope.onnx")
    damaged.write_bytes(b"not an onnx file")
    with pytest.raises(PretrainedModelError, match="unreadable"):
        MusicnnRuntime.load(variant="fp32-10p", path=damaged, check_sha256=False)
    # the undamaged copy loads
    copy = tmp_path / "copy.onnx"
    copy.write_bytes(shipped.read_bytes())
    assert MusicnnRuntime.load(variant="fp32-10p", path=copy).variant == "fp32-10p"


def test_shipped_graphs_match_their_recorded_sha256_and_provenance() -> None:
    provenance = (musicnn.DATA_DIR / "PROVENANCE.md").read_text()
    for spec in runtime.ONNX_FILES.values():
        assert hashlib.sha256(spec.path.read_bytes()).hexdigest() == spec.sha256, spec.filename
        assert spec.sha256 in provenance and spec.filename in provenance
        assert musicnn.WEIGHTS["MSD_musicnn"].sha256 in spec.provenance
    assert {v.split("-")[0] for v in runtime.VARIANTS} <= set(runtime.ONNX_FILES)
    # the pruned graphs compute exactly the filters whose output can move by more than 1e-4 (sum |w| x the largest
    # normalised input); the others stay below 5e-5, the live ones above 0.1: a wide gap
    with np.load(musicnn.WEIGHTS["MSD_musicnn"].path, allow_pickle=False) as archive:
        inv = archive["batch_normalization/gamma"] / np.sqrt(archive["batch_normalization/moving_variance"] + 1e-3)
        shift = archive["batch_normalization/beta"] - archive["batch_normalization/moving_mean"] * inv
        x_max = float(max(abs(shift[0]), abs(inv[0] * np.log10(10000 * 65504 + 1) + shift[0])))
        live = []
        for conv in ("conv2d", "conv2d_1", "conv2d_2", "conv2d_3", "conv2d_4"):
            kernel = archive[f"{conv}/kernel"].astype(np.float64)
            bound = np.abs(kernel).reshape(-1, kernel.shape[-1]).sum(axis=0) * x_max
            assert not ((bound > 5e-5) & (bound < 0.1)).any(), conv
            live.append(int((bound > 1e-4).sum()))
    assert tuple(live) == runtime.LIVE_FILTERS
    pyproject = (REPO / "pyproject.toml").read_text()
    assert re.search(r'"musicindex\.pretrained" = \[[^\]]*"data/\*\.onnx"', pyproject)
    assert re.search(r'"onnxruntime>=1\.18"', pyproject)


# --- no TensorFlow in the workers -------------------------------------------------------------------------------
def test_runtime_does_not_import_tensorflow() -> None:
    code = (
        "import sys, numpy as np\n"
        "from musicindex.pretrained import runtime\n"
        "rt = runtime.get_runtime()\n"
        "t = np.arange(3 * 16000) / 16000\n"
        "emb, tags = rt.embed([(0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)])\n"
        "assert emb.shape == (1, 200) and np.isfinite(emb).all()\n"
        "loaded = sorted(m for m in ('tensorflow', 'keras', 'tf_keras') if m in sys.modules)\n"
        "print(loaded); sys.exit(1 if loaded else 0)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, f"the runtime imported {result.stdout.strip()} {result.stderr[-2000:]}"
    assert result.stdout.strip() == "[]"
