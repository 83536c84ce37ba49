#!/usr/bin/env python
"""Record reference outputs of the ORIGINAL musicnn network, for tests/test_musicnn.py.

Run once, in a throwaway venv that has the original code (not the project's venv):

    python3.11 -m venv /tmp/mnn-ref
    /tmp/mnn-ref/bin/pip install tensorflow-cpu==2.21.0 tf-keras==2.21.0 numpy librosa
    /tmp/mnn-ref/bin/pip install --no-deps musicnn-0.1.0-py3-none-any.whl
    TF_ENABLE_ONEDNN_OPTS=0 /tmp/mnn-ref/bin/python tools/record_musicnn_reference.py

The recorded set (``tests/data/musicnn_reference.npz``) was made with tensorflow-cpu 2.21.0, tf-keras
2.21.0, numpy 2.4, librosa 0.11.0 and the musicnn 0.1.0 wheel (sha256 f38a4890...8cfcd36746002d896989f7b88beb65cfa).

The audio is :func:`reference_signal`, 12 s at 16 kHz synthesized with numpy from a fixed seed (chords, noise
bursts and a beat); the test imports this function from this file (only numpy is imported at module level).

The network is the package's own ``musicnn.models.define_model`` in TF1 graph mode, exactly as
``musicnn.extractor.extractor`` builds it (``tf.name_scope('model')``, a ``[None, 187, 96]`` placeholder,
``is_training=False``, ``sigmoid`` on the logits), restored with ``tf.compat.v1.train.Saver`` from the checkpoint
prefix inside the installed wheel. Unlike the extractor, a failed restore is an error (no bare ``except:``), and the
outputs are evaluated for each patch on its own (batch of 1, the extractor's ``BATCH_SIZE``) and kept per patch:
the extractor's ``features['penultimate']`` repeats patch 0 for every later batch.

The input is ``musicnn.extractor.batch_data`` re-done on the array (it only takes a file path), with two
documented deviations:

1. the float16 overflow: ``batch_data`` rounds the mel power to float16 and then computes
   ``np.log10(10000 * audio_rep + 1)``. With numpy < 1.17 (which the wheel pins) ``10000 * float16_array``
   was promoted to float32 (value-based casting); with numpy >= 2 it stays float16 and overflows to inf above
   6.55. Here the float16-rounded power is cast to float32 before ``x 10000``, which is what old numpy did.
2. ``pad_mode="reflect"`` is passed to the mel spectrogram: it was librosa's default until 0.10 (the models
   were trained and released with librosa 0.6/0.7); librosa >= 0.10 defaults to ``"constant"``. It changes only
   the first and last frame of a clip.

Patches are cut as ``batch_data`` does with the extractor's defaults (``input_length=3``,
``input_overlap=False``): 187 frames, hop 187 frames, the tail that does not fill a patch dropped.
"""

from __future__ import annotations

import hashlib
import os
import sys
from importlib import metadata
from pathlib import Path

import numpy as np

SR = 16000
DURATION = 12.0
SEED = 1212
MODELS = ("MSD_musicnn", "MTT_musicnn")
OUT = Path(__file__).resolve().parents[1] / "tests" / "data" / "musicnn_reference.npz"


def reference_signal(seed: int = SEED, duration: float = DURATION, sr: int = SR) -> np.ndarray:
    """A deterministic, non-trivial 16 kHz mono float32 test signal, different in each 3 s patch.

    0-3 s: decaying chords (piano-like); 3-6 s: the chords over a 120 bpm kick and hi-hat; 6-9 s: a fast
    beat, a buzzy bass and noise bursts; 9-12 s: sustained bright chords and a vibrato "voice".
    """
    rng = np.random.default_rng(seed)
    n = int(duration * sr)
    t = np.arange(n) / sr
    section = np.minimum((t // 3.0).astype(int), 3)
    y = np.zeros(n)
    for start in range(0, n, int(1.5 * sr)):  # a chord every 1.5 s
        seg = slice(start, min(n, start + int(1.5 * sr)))
        tt = t[seg] - t[start]
        bright = section[start] == 3
        root = 110.0 * 2 ** (rng.integers(0, 12) / 12)
        for interval in (0, 4 if rng.random() < 0.5 else 3, 7):
            for h in range(1, 13 if bright else 7):
                decay = 0.3 if bright else 0.6 + 0.4 * h
                y[seg] += 0.08 / h * np.sin(2 * np.pi * root * 2 ** (interval / 12) * h * tt) * np.exp(-tt * decay)
    kick_t = np.arange(int(0.25 * sr)) / sr
    kick = np.sin(2 * np.pi * (50 + 90 * np.exp(-kick_t * 30)) * kick_t) * np.exp(-kick_t * 18)
    hat_n = int(0.05 * sr)
    for step, start in enumerate(range(3 * sr, 9 * sr, sr // 8)):  # 16th notes at 120 bpm, 3-9 s
        fast = start >= 6 * sr
        if step % (2 if fast else 4) == 0:
            y[start : start + kick.size] += 0.6 * kick[: n - start]
        if fast or step % 2 == 0:
            hat = rng.standard_normal(hat_n) * np.exp(-np.arange(hat_n) / (0.01 * sr))
            y[start : start + hat_n] += 0.15 * np.diff(hat, prepend=0.0)
    bass = (t >= 6) & (t < 9)
    y[bass] += 0.25 * np.sign(np.sin(2 * np.pi * 55 * t[bass])) * (0.5 + 0.5 * np.sin(2 * np.pi * 4 * t[bass]))
    for _ in range(5):
        start = int(rng.integers(6 * sr, 9 * sr - sr // 2))
        length = int(rng.integers(sr // 10, sr // 2))
        burst = np.convolve(rng.standard_normal(length), np.ones(8) / 8, mode="same")
        y[start : start + length] += 0.3 * burst * np.hanning(length)
    voice = section == 3
    phase = 2 * np.pi * np.cumsum(440 * (1 + 0.01 * np.sin(2 * np.pi * 5.5 * t[voice]))) / sr
    y[voice] += sum(0.12 / k * np.sin(k * phase) for k in (1, 2, 3, 5))
    y *= 0.8 / np.max(np.abs(y))
    return y.astype(np.float32)


def original_logmel(y: np.ndarray) -> np.ndarray:
    """``batch_data``'s representation of ``y`` (float16-rounded mel power, log-compressed in float32)."""
    import librosa

    audio_rep = librosa.feature.melspectrogram(y=y, sr=SR, hop_length=256, n_fft=512, n_mels=96, pad_mode="reflect").T
    audio_rep = audio_rep.astype(np.float16)
    return np.log10(10000 * audio_rep.astype(np.float32) + 1)


def original_patches(audio_rep: np.ndarray, n_frames: int) -> np.ndarray:
    """``batch_data``'s loop with ``overlap = n_frames`` (the extractor's default ``input_overlap=False``)."""
    last_frame = audio_rep.shape[0] - n_frames + 1
    return np.stack([audio_rep[t : t + n_frames] for t in range(0, last_frame, n_frames)])


def run_original(model: str, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-patch (penultimate, sigmoid taggram) of the original TF1 graph of ``model``."""
    import musicnn
    import tensorflow as tf
    from musicnn import configuration as config
    from musicnn import models

    labels = config.MSD_LABELS if model.startswith("MSD") else config.MTT_LABELS
    tf.compat.v1.reset_default_graph()
    with tf.name_scope("model"):
        x = tf.compat.v1.placeholder(tf.float32, [None, batch.shape[1], config.N_MELS])
        is_training = tf.compat.v1.placeholder(tf.bool)
        outs = models.define_model(x, is_training, model, len(labels))
        logits, penultimate = outs[0], outs[-1]
        normalized_y = tf.nn.sigmoid(logits)
    with tf.compat.v1.Session() as sess:
        saver = tf.compat.v1.train.Saver()
        saver.restore(sess, os.path.join(os.path.dirname(musicnn.__file__), model) + "/")
        pen, tags = [], []
        for patch in batch:
            p, t = sess.run([penultimate, normalized_y], feed_dict={x: patch[None], is_training: False})
            pen.append(p[0])
            tags.append(t[0])
    return np.stack(pen).astype(np.float32), np.stack(tags).astype(np.float32)


def main() -> int:
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")  # tf.compat.v1.layers needs tf-keras under TF >= 2.16
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import librosa
    import tensorflow as tf

    tf.compat.v1.disable_eager_execution()
    y = reference_signal()
    mel = original_logmel(y)
    n_frames = librosa.time_to_frames(3, sr=SR, n_fft=512, hop_length=256) + 1
    batch = original_patches(mel, n_frames)
    record: dict[str, np.ndarray] = {
        "audio_sha256": np.array(hashlib.sha256(y.tobytes()).hexdigest()),
        "logmel": mel,
        "versions": np.array(
            f"tensorflow {tf.version.VERSION}, numpy {np.__version__}, "
            f"librosa {metadata.version('librosa')}, "
            f"TF_ENABLE_ONEDNN_OPTS={os.environ.get('TF_ENABLE_ONEDNN_OPTS', 'unset')}"
        ),
    }
    for model in MODELS:
        pen, tags = run_original(model, batch)
        if not (np.isfinite(pen).all() and np.isfinite(tags).all()):
            raise SystemExit(f"{model}: non-finite outputs")
        record[f"{model}/penultimate"] = pen
        record[f"{model}/taggram"] = tags
        print(
            f"{model}: {batch.shape[0]} patches, penultimate std {pen.std():.3f}, "
            f"taggram range [{tags.min():.3f}, {tags.max():.3f}], patch-to-patch std {tags.std(axis=0).mean():.3f}"
        )
    OUT.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(OUT, allow_pickle=False, **record)
    print(f"wrote {OUT} ({OUT.stat().st_size} bytes), logmel {mel.shape}, audio sha256 {record['audio_sha256']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
