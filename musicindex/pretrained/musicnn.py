"""musicnn (Pons & Serra, MTG-UPF, ISC licence) ported to Keras 3, with the weights of the ``musicnn`` 0.1.0 wheel.

The architecture is written here from the paper (Pons & Serra, "musicnn: pre-trained convolutional neural
networks for music audio tagging", ISMIR 2019 LBD) and ``musicnn/models.py`` of the wheel; no code of the
``musicnn`` package is imported. The weights are the wheel's TF1 checkpoints converted to npz by
``tools/convert_musicnn.py`` and shipped in ``musicindex/pretrained/data`` (see ``PROVENANCE.md`` and
``LICENSE-musicnn.md`` there); each file's sha256 is recorded below and checked on every load.

Input representation (:func:`logmel`), as the original ``musicnn.extractor.batch_data``:
16 kHz mono, librosa mel power spectrogram (n_fft 512, hop 256, 96 bands, Slaney mel, centred frames), the power
rounded to float16 (the original does ``astype(np.float16)``; its training data was stored as float16 too), then
``log10(10000 x + 1)`` in float32. Two deliberate differences from running the original code today:

* the original's ``10000 * float16_array`` was promoted to float32 by numpy < 1.17 (the versions the wheel pins);
  numpy 2 keeps it float16, which overflows to inf and turns into NaN in the first batch normalisation. Here the
  rounded power is cast to float32 before the multiplication, as old numpy did (and clipped to the float16
  maximum before rounding, so no input can become inf);
* ``pad_mode="reflect"`` for the centred STFT frames: librosa's default until 0.10, with which the model was
  trained and released (librosa >= 0.10 defaults to zeros). Only the first and last frame of a clip depend on it.

Patches (:func:`patches`): 187 frames (3 s), cut without overlap from frame 0, as the original extractor with its
default ``input_overlap=False``; frames after the last whole patch are dropped (as the original does). A clip shorter
than one patch is repeat-padded to 187 frames (the original extractor crashes on it; ``"pad_short": "repeat-pad"`` is
what the model's training configuration used). A clip's vector is the mean over its patches.

Network (per 187 x 96 patch; the checkpoint's variable names in brackets):

* input batch normalisation (one scalar mean/variance) [batch_normalization];
* front end, five branches on the normalised input, each conv -> ReLU -> batch norm -> max over frequency:
  timbral 204 x (7 x 38) [conv2d, batch_normalization_1] and 204 x (7 x 67) [conv2d_1, batch_normalization_2],
  time zero-padded by 3 frames and "valid" in frequency; temporal 51 x (128 x 1), 51 x (64 x 1), 51 x (32 x 1)
  with TF "same" padding [conv2d_2..4, batch_normalization_3..5]; concatenated to 561 channels in that order;
* mid end, three 64 x 7 convolutions over time across all channels (zero-padded by 3 frames), each
  conv -> ReLU -> batch norm [conv2d_5..7, batch_normalization_6..8], the 2nd and 3rd with a residual connection;
  dense connection: front end (561) + the three outputs (64 each) = 753 channels;
* back end: max and mean over time, **interleaved per channel** (``[max_0, mean_0, max_1, mean_1, ...]``: the
  original concatenates (753, 1) tensors on the last axis and flattens), batch norm [batch_normalization_9],
  dense 200 + ReLU [dense], batch norm [batch_normalization_10] = the **penultimate** 200-d embedding, dense to the
  tags [dense_1], sigmoid. Batch norms use epsilon 1e-3 with the moving statistics (inference); dropout is off.

The front-end branches take the max over frequency first and apply the bias, ReLU and batch norm to the maxima (or
to the minima, for channels whose batch-norm scale is negative): the same values, at a fraction of the memory
traffic (see ``FrequencyMaxBlock`` in :func:`build_network`). The convolutions themselves are about 28 GFLOP per
30 s clip and run near the CPU's peak.

TensorFlow is imported lazily, by :meth:`MusicnnModel.load`; importing this module imports numpy only.
``TF_ENABLE_ONEDNN_OPTS=1`` (2.6 times as fast as ``=0`` on one core of this project's AVX-512 CPUs, outputs
equal within 1e-5; TensorFlow 2.21 already turns oneDNN on there when the variable is unset) and
``TF_CPP_MIN_LOG_LEVEL=2`` (and ``KERAS_BACKEND=tensorflow``) are set with ``os.environ.setdefault`` just before
the import; they only take effect if TensorFlow has not been imported yet in the process. Thread pools are the
caller's to size (``tf.config.threading``) before the first load.
"""

from __future__ import annotations

import hashlib
import io
import os
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from musicindex.errors import InvalidArgumentError, InvalidAudioError, PretrainedModelError

if TYPE_CHECKING:
    import keras

SAMPLE_RATE = 16000
"""Input sample rate (Hz); signals must be mono at this rate."""
N_FFT = 512
"""STFT frame length (samples)."""
HOP = 256
"""STFT hop (samples)."""
N_MELS = 96
"""Mel bands."""
PATCH_FRAMES = 187
"""Frames per patch: 3 s (``librosa.time_to_frames(3, sr=16000, n_fft=512, hop_length=256) + 1``)."""
EMBEDDING_DIM = 200
"""Size of the penultimate embedding."""
EXTRACTOR_VERSION = 1
"""Version of the stored values (embedding and tag probabilities); bump whenever they would change."""
MODEL_NAME = "MSD_musicnn"
"""The default model: musicnn trained on the Million Song Dataset (50 Last.fm tags)."""

TAGS: tuple[str, ...] = (
    "rock",
    "pop",
    "alternative",
    "indie",
    "electronic",
    "female vocalists",
    "dance",
    "00s",
    "alternative rock",
    "jazz",
    "beautiful",
    "metal",
    "chillout",
    "male vocalists",
    "classic rock",
    "soul",
    "indie rock",
    "Mellow",
    "electronica",
    "80s",
    "folk",
    "90s",
    "chill",
    "instrumental",
    "punk",
    "oldies",
    "blues",
    "hard rock",
    "ambient",
    "acoustic",
    "experimental",
    "female vocalist",
    "guitar",
    "Hip-Hop",
    "70s",
    "party",
    "country",
    "easy listening",
    "sexy",
    "catchy",
    "funk",
    "electro",
    "heavy metal",
    "Progressive rock",
    "60s",
    "rnb",
    "indie pop",
    "sad",
    "House",
    "happy",
)
"""The 50 MSD tags in output order (``MSD_LABELS`` of the wheel's configuration.py, spelling kept)."""
MTT_TAGS: tuple[str, ...] = (
    "guitar",
    "classical",
    "slow",
    "techno",
    "strings",
    "drums",
    "electronic",
    "rock",
    "fast",
    "piano",
    "ambient",
    "beat",
    "violin",
    "vocal",
    "synth",
    "female",
    "indian",
    "opera",
    "male",
    "singing",
    "vocals",
    "no vocals",
    "harpsichord",
    "loud",
    "quiet",
    "flute",
    "woman",
    "male vocal",
    "no vocal",
    "pop",
    "soft",
    "sitar",
    "solo",
    "man",
    "classic",
    "choir",
    "voice",
    "new age",
    "dance",
    "male voice",
    "female vocal",
    "beats",
    "harp",
    "cello",
    "no voice",
    "weird",
    "country",
    "metal",
    "female voice",
    "choral",
)
"""The 50 MagnaTagATune tags of ``MTT_musicnn`` in output order (``MTT_LABELS`` of the wheel)."""

DATA_DIR = Path(__file__).resolve().parent / "data"
"""Where the converted weights are shipped."""
DEFAULT_BATCH_PATCHES = 8
"""Patches per network call. Activations take about 35 MB a patch; past 8 the cost per patch no longer drops
(measured on one core, 8 to 32 patches per call cost the same), while the peak RSS of a process grows."""

_FLOAT16_MAX = float(np.finfo(np.float16).max)


@dataclass(frozen=True)
class WeightsFile:
    """A shipped weight file: its name in ``DATA_DIR``, its recorded sha256 and the model's tags."""

    filename: str
    sha256: str
    tags: tuple[str, ...]

    @property
    def path(self) -> Path:
        """Where the file is installed."""
        return DATA_DIR / self.filename


WEIGHTS: dict[str, WeightsFile] = {
    "MSD_musicnn": WeightsFile(
        "msd_musicnn.npz", "cfd806777e3fd9fe7ab41c80ab2622ef2ad77b28d982b3af4fb60dead4dc0c35", TAGS
    ),
    "MTT_musicnn": WeightsFile(
        "mtt_musicnn.npz", "35748b6e3e49996486f23969f2bc88f38b71e7e23afcb8aa5ceb4584e0f78efa", MTT_TAGS
    ),
}
"""The models this port can load (written by ``tools/convert_musicnn.py``)."""


# --- input representation ----------------------------------------------------------------------------------
def logmel(y: np.ndarray) -> np.ndarray:
    """The network's input representation of a 16 kHz mono signal: ``(n_frames, 96)`` float32.

    ``n_frames = 1 + len(y) // 256`` (centred frames). See the module docstring for the exact recipe.
    Raises :class:`~musicindex.errors.InvalidAudioError` for an empty or non-finite signal and
    :class:`~musicindex.errors.InvalidArgumentError` for a signal that is not one-dimensional.
    """
    import librosa

    y = np.asarray(y, dtype=np.float32)
    if y.ndim != 1:
        raise InvalidArgumentError(f"musicnn needs a mono signal (1-D array), got shape {y.shape}")
    if y.size == 0:
        raise InvalidAudioError("empty signal: musicnn needs at least one sample")
    if not np.isfinite(y).all():
        raise InvalidAudioError("non-finite samples (NaN or infinity) in the signal given to musicnn")
    power = librosa.feature.melspectrogram(
        y=y, sr=SAMPLE_RATE, n_fft=N_FFT, hop_length=HOP, n_mels=N_MELS, pad_mode="reflect"
    ).T
    power = np.minimum(power, _FLOAT16_MAX).astype(np.float16).astype(np.float32)
    return np.log10(np.float32(10000) * power + np.float32(1))


def patches(mel: np.ndarray) -> np.ndarray:
    """Cut a ``(n_frames, 96)`` representation into ``(p, 187, 96)`` float32 patches.

    Non-overlapping 3 s patches from frame 0 (the original's default); the frames after the last whole patch are
    dropped. A representation shorter than one patch is repeat-padded (tiled) to one patch.
    """
    mel = np.asarray(mel, dtype=np.float32)
    if mel.ndim != 2 or mel.shape[1] != N_MELS or mel.shape[0] == 0:
        raise InvalidArgumentError(f"expected a (n_frames >= 1, {N_MELS}) log-mel representation, got {mel.shape}")
    if mel.shape[0] < PATCH_FRAMES:
        mel = np.tile(mel, (-(-PATCH_FRAMES // mel.shape[0]), 1))
    n = mel.shape[0] // PATCH_FRAMES
    return np.ascontiguousarray(mel[: n * PATCH_FRAMES].reshape(n, PATCH_FRAMES, N_MELS))


# --- weights -----------------------------------------------------------------------------------------------
def read_checked(path: str | os.PathLike[str], sha256: str | None, what: str, how_to_fix: str) -> bytes:
    """The bytes of a shipped model file, after checking it can be read and matches ``sha256`` (unless None).

    Raises :class:`PretrainedModelError` naming ``what`` the file is and ``how_to_fix`` it.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as err:
        raise PretrainedModelError(f"{what} {path} cannot be read ({err.strerror or err}); {how_to_fix}") from err
    digest = hashlib.sha256(data).hexdigest()
    if sha256 is not None and digest != sha256:
        raise PretrainedModelError(f"{what} {path} is corrupted: sha256 {digest}, expected {sha256}; {how_to_fix}")
    return data


def read_weights(path: str | os.PathLike[str], sha256: str | None) -> dict[str, np.ndarray]:
    """The arrays of a weight file, after checking it exists, matches ``sha256`` (unless None) and is readable.

    Raises :class:`PretrainedModelError` with what to do.
    """
    how_to_fix = (
        "reinstall musicindex (the weights ship inside the package), or regenerate them with "
        "tools/convert_musicnn.py from the musicnn 0.1.0 wheel"
    )
    data = read_checked(path, sha256, "musicnn weight file", how_to_fix)
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as archive:
            return {name: archive[name] for name in archive.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as err:
        raise PretrainedModelError(f"musicnn weight file {path} is unreadable ({err}); {how_to_fix}") from err


def _checkpoint_variables(model: keras.Model) -> dict[str, tuple[Any, tuple[int, ...]]]:
    """Each checkpoint variable name -> (the Keras variable it fills, the shape it has in the checkpoint).

    Layers are named after their TF1 checkpoint scopes. The mid-end convolutions are Conv1D here and
    ``(7, C, 1, 64)`` Conv2D kernels in the checkpoint.
    """
    import keras

    out: dict[str, tuple[Any, tuple[int, ...]]] = {}
    for layer in model.layers:
        for part in getattr(layer, "parts", (layer,)):
            attrs: tuple[str, ...]
            if isinstance(part, keras.layers.BatchNormalization):
                attrs = ("gamma", "beta", "moving_mean", "moving_variance")
            elif isinstance(part, (keras.layers.Conv1D, keras.layers.Conv2D, keras.layers.Dense)):
                attrs = ("kernel", "bias")
            else:
                continue
            for attr in attrs:
                var = getattr(part, attr)
                shape = tuple(var.shape)
                if isinstance(part, keras.layers.Conv1D) and attr == "kernel":
                    shape = (shape[0], shape[1], 1, shape[2])
                out[f"{part.name}/{attr}"] = (var, shape)
    return out


def _assign_weights(model: keras.Model, arrays: dict[str, np.ndarray], source: Path) -> None:
    """Fill every variable of ``model`` from ``arrays``; any missing, extra or misshapen variable is an error."""
    targets = _checkpoint_variables(model)
    missing = sorted(set(targets) - set(arrays))
    extra = sorted(set(arrays) - set(targets))
    wrong = sorted(
        f"{name} {arrays[name].shape} (expected {targets[name][1]})"
        for name in set(targets) & set(arrays)
        if tuple(arrays[name].shape) != targets[name][1]
    )
    if missing or extra or wrong:
        raise PretrainedModelError(
            f"musicnn weight file {source} does not fit the network: "
            + "; ".join(
                f"{what}: {', '.join(names)}"
                for what, names in (("missing", missing), ("unexpected", extra), ("wrong shape", wrong))
                if names
            )
        )
    for name, (var, _) in targets.items():
        value = arrays[name]
        if value.dtype != np.float32 or not np.isfinite(value).all():
            raise PretrainedModelError(f"musicnn weight file {source}: {name} is not finite float32")
        var.assign(value.reshape(tuple(var.shape)))


# --- network -----------------------------------------------------------------------------------------------
def _tensorflow() -> Any:
    """Import TensorFlow with this project's environment defaults (see the module docstring)."""
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    import tensorflow as tf

    return tf


def build_network(n_tags: int) -> keras.Model:
    """The musicnn network, untrained: ``(batch, 187, 96)`` -> [penultimate (batch, 200), tags (batch, n_tags)].

    Layer names are the TF1 checkpoint's variable scopes, in the order the original creates them.
    """
    _tensorflow()
    import keras
    from keras import layers, ops

    if keras.backend.backend() != "tensorflow":
        raise PretrainedModelError(
            f"the musicnn port needs the Keras tensorflow backend, not "
            f"{keras.backend.backend()!r} (unset KERAS_BACKEND)"
        )

    class FrequencyMaxBlock(layers.Layer):
        """A front-end branch: conv -> ReLU -> batch norm -> max over frequency, with the max taken first.

        ``max_f BN(relu(c_f + b))`` equals ``BN(relu(max_f c_f + b))`` where the batch norm's scale is
        positive and ``BN(relu(min_f c_f + b))`` where it is negative (the min is taken as ``-max_f`` of the
        convolution with the negated kernel). Float rounding is monotone and negation exact, so given the same
        convolution outputs both orders give the same bits; the bias, ReLU and batch norm run on
        ``(batch, time, channels)`` instead of the 30-96 times larger ``(batch, time, frequency, channels)``.
        """

        def __init__(self, conv: layers.Conv2D, norm: layers.BatchNormalization, **kwargs: Any) -> None:
            super().__init__(name=f"{conv.name}_block", **kwargs)
            self.conv = conv
            self.norm = norm

        @property
        def parts(self) -> tuple[layers.Layer, layers.Layer]:
            """The layers that hold the weights (named after the checkpoint's scopes)."""
            return self.conv, self.norm

        def build(self, input_shape: tuple[int | None, ...]) -> None:
            self.conv.build(input_shape)
            self.norm.build((None, None, self.conv.filters))

        def call(self, x: Any) -> Any:
            norm = self.norm
            sign = ops.where(norm.gamma * ops.rsqrt(norm.moving_variance + norm.epsilon) < 0, -1.0, 1.0)
            c = ops.conv(x, self.conv.kernel * sign, padding=self.conv.padding)
            return norm(ops.relu(ops.max(c, axis=2) * sign + self.conv.bias), training=False)

    def norm(name: str) -> layers.BatchNormalization:
        return layers.BatchNormalization(epsilon=1e-3, name=name)  # the TF1 default epsilon

    def bn(x: Any, name: str) -> Any:
        return norm(name)(x)

    def branch(x: Any, index: int, filters: int, kernel: tuple[int, int], padding: str) -> Any:
        conv = layers.Conv2D(filters, kernel, padding=padding, name=f"conv2d_{index}" if index else "conv2d")
        return FrequencyMaxBlock(conv, norm(f"batch_normalization_{index + 1}"))(x)

    x = keras.Input((PATCH_FRAMES, N_MELS), name="logmel")
    normalized = bn(ops.expand_dims(x, -1), "batch_normalization")
    padded = layers.ZeroPadding2D(((3, 3), (0, 0)))(normalized)
    front = [branch(padded, i, 204, (7, int(share * N_MELS)), "valid") for i, share in enumerate((0.4, 0.7))]
    front += [branch(normalized, 2 + i, 51, (length, 1), "same") for i, length in enumerate((128, 64, 32))]
    frontend = layers.Concatenate(axis=-1)(front)

    mid = [frontend]
    h = frontend
    for i in range(3):
        conv = layers.Conv1D(64, 7, padding="valid", activation="relu", name=f"conv2d_{5 + i}")
        out = bn(conv(layers.ZeroPadding1D(3)(h)), f"batch_normalization_{6 + i}")
        h = out if i == 0 else layers.Add()([out, h])
        mid.append(h)
    midend = layers.Concatenate(axis=-1)(mid)

    pooled = ops.reshape(
        ops.stack([ops.max(midend, axis=1), ops.mean(midend, axis=1)], axis=-1), (-1, 2 * midend.shape[-1])
    )
    hidden = layers.Dense(EMBEDDING_DIM, activation="relu", name="dense")(bn(pooled, "batch_normalization_9"))
    penultimate = bn(hidden, "batch_normalization_10")
    probabilities = layers.Dense(n_tags, activation="sigmoid", name="dense_1")(penultimate)
    return keras.Model(x, [penultimate, probabilities], name="musicnn")


class MusicnnModel:
    """A loaded musicnn network: per-patch outputs and per-clip mean embeddings and tag probabilities."""

    def __init__(self, name: str, tags: tuple[str, ...], network: keras.Model) -> None:
        tf = _tensorflow()
        self.name = name
        self.tags = tags
        self.network = network
        self._predict = tf.function(
            lambda batch: network(batch, training=False),
            input_signature=[tf.TensorSpec((None, PATCH_FRAMES, N_MELS), tf.float32)],
        )

    @classmethod
    def load(
        cls, name: str = MODEL_NAME, path: str | os.PathLike[str] | None = None, *, check_sha256: bool = True
    ) -> MusicnnModel:
        """Build the network of ``name`` and load its weights, verifying them.

        ``path`` overrides the shipped weight file (its recorded sha256 still applies unless ``check_sha256`` is
        False, which is for freshly converted files only). Raises :class:`PretrainedModelError` if the file is
        missing, corrupted (sha256 mismatch, unreadable) or has a missing, extra or misshapen variable, and
        :class:`~musicindex.errors.InvalidArgumentError` for an unknown model name.
        """
        if name not in WEIGHTS:
            raise InvalidArgumentError(f"unknown musicnn model {name!r}; known: {', '.join(WEIGHTS)}")
        spec = WEIGHTS[name]
        source = Path(path) if path is not None else spec.path
        arrays = read_weights(source, spec.sha256 if check_sha256 else None)
        network = build_network(len(spec.tags))
        _assign_weights(network, arrays, source)
        return cls(name, spec.tags, network)

    def patch_outputs(
        self,
        batch: np.ndarray,
        batch_patches: int = DEFAULT_BATCH_PATCHES,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Per-patch outputs of ``(p, 187, 96)`` patches: penultimate ``(p, 200)`` and tag probabilities ``(p, T)``.

        At most ``batch_patches`` patches go through the network per call; the results depend on it only through
        float rounding (oneDNN picks kernels by batch shape: differences of a few 1e-6).
        """
        batch = np.asarray(batch, dtype=np.float32)
        if batch.ndim != 3 or batch.shape[1:] != (PATCH_FRAMES, N_MELS):
            raise InvalidArgumentError(f"expected (p, {PATCH_FRAMES}, {N_MELS}) patches, got {batch.shape}")
        if batch_patches < 1:
            raise InvalidArgumentError(f"batch_patches must be >= 1, got {batch_patches}")
        embeddings = np.empty((batch.shape[0], EMBEDDING_DIM), np.float32)
        probabilities = np.empty((batch.shape[0], len(self.tags)), np.float32)
        for start in range(0, batch.shape[0], batch_patches):
            stop = min(batch.shape[0], start + batch_patches)
            pen, prob = self._predict(batch[start:stop])
            embeddings[start:stop] = pen.numpy()
            probabilities[start:stop] = prob.numpy()
        return embeddings, probabilities

    def embed(
        self,
        signals: Sequence[np.ndarray],
        batch_patches: int = DEFAULT_BATCH_PATCHES,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Mean penultimate embeddings ``(n, 200)`` and mean tag probabilities ``(n, T)`` of ``n`` 16 kHz mono signals.

        Each clip's values are the means over its patches (:func:`patches`); the patches of all clips are batched
        together, ``batch_patches`` per network call.
        """
        cut = [patches(logmel(y)) for y in signals]
        if not cut:
            return np.empty((0, EMBEDDING_DIM), np.float32), np.empty((0, len(self.tags)), np.float32)
        embeddings, probabilities = self.patch_outputs(np.concatenate(cut), batch_patches)
        clip_ends = np.cumsum([c.shape[0] for c in cut])[:-1]
        return (
            np.stack([clip.mean(axis=0) for clip in np.split(embeddings, clip_ends)]),
            np.stack([clip.mean(axis=0) for clip in np.split(probabilities, clip_ends)]),
        )
