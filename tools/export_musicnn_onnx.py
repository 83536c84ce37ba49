#!/usr/bin/env python
"""Write the ONNX graphs of musicnn (``musicindex/pretrained/data/msd_musicnn*.onnx``) from the shipped npz weights.

    .venv/bin/python tools/export_musicnn_onnx.py            # the fp32 graph (--int8: also the int8 one, below)
    .venv/bin/python tools/export_musicnn_onnx.py --check    # also compare with the Keras port (imports TensorFlow)
    .venv/bin/python tools/export_musicnn_onnx.py --model NAME  # another musicnn model of the registry

``--model`` names an embedding model of the registry (``musicindex.pretrained.registry``; default: the built-in
``musicnn``) whose weights are a musicnn checkpoint: its npz and its graph's name come from there.

The graph is built directly with ``onnx.helper`` from the arrays of ``msd_musicnn.npz``, reproducing the Keras 3
port (``musicindex/pretrained/musicnn.py``) layer by layer; neither TensorFlow nor tf2onnx is needed (tf2onnx
1.17 installs next to TF 2.21, but a converted Keras 3 graph would carry the port's TF-specific ops and could not
fold anything; building the graph here keeps every folding explicit and reviewable):

* input: ``logmel`` ``(batch, 187, 96)`` float32; outputs ``embedding`` ``(batch, 200)`` (the penultimate layer,
  after its batch norm) and ``probabilities`` ``(batch, 50)`` (sigmoid of the tag logits);
* input batch norm (one scalar): ``x * inv + (beta - mean * inv)`` as ``tf.nn.batch_normalization`` computes it;
* front end, five branches ``Conv -> MaxPool over all frequencies -> x sign -> ReLU -> batch norm`` with the
  FrequencyMaxBlock sign trick: for channels whose batch-norm scale is negative the kernel and the bias are
  negated, so the max over frequency of the negated convolution is minus the min; multiplying back by the sign
  gives ``min_f(c + b)``. Float rounding is monotone, so this equals ``BN(ReLU(·))`` then max over frequency
  exactly, given the same convolution sums. Timbral 204 x (7 x 38) and 204 x (7 x 67) with 3 frames of zero
  padding in time (the port's ZeroPadding2D after the input batch norm, i.e. zeros in the normalised domain:
  Conv's own ``pads``), temporal 51 x (128|64|32 x 1) with TF "same" padding (``k - 1`` frames, the smaller
  half before);
* mid end: three Conv1D 64 x 7 (pads 3) -> ReLU -> batch norm, residuals on the 2nd and 3rd, dense concat to
  753 channels. The batch norms follow a ReLU, so they cannot be folded into the convolution before them (a
  negative scale does not commute with ReLU), nor into the next one (its zero padding is in the normalised
  domain); they stay as ``Mul``/``Add`` on ``(batch, C, 187)`` tensors (a few thousand FLOP per frame);
* back end: ``ReduceMax`` and ``ReduceMean`` over time, concatenated as ``[max_0..max_752, mean_0..mean_752]``
  instead of the original's interleaving: the rows of batch norm 9 and of the dense kernel are permuted to
  match (exact). Batch norm 9 is folded into the dense layer (in float64, then rounded: differences of a few
  1e-7), ReLU, batch norm 10 (= ``embedding``), dense_1 + sigmoid (= ``probabilities``).

The int8 graph (``msd_musicnn_int8.onnx``, written only with ``--int8``; it needs the dev set for calibration) is
the pruned graph with static QDQ int8 timbral convolutions (``export_int8``). It is NOT shipped: on this
project's AVX2 CPUs it is no faster than the pruned fp32 graph (77 vs 78 ms per 30 s window) and its vectors
differ by up to 0.1 (``benchmarks/musicnn_variants.py``, which builds it on the fly).

The output is a pure function of the npz file and the onnx / onnxruntime versions: no timestamp is stored. The
sha256 values printed at the end go to ``musicindex/pretrained/runtime.py`` (``ONNX_FILES``) and ``PROVENANCE.md``.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
DATA = REPO / "musicindex" / "pretrained" / "data"


def model_files(name: str) -> tuple[Path, Path]:
    """(the npz of the registry's musicnn model ``name``, the ONNX file written beside it)."""
    sys.path.insert(0, str(REPO))
    from musicindex.pretrained import musicnn, registry

    weights = getattr(registry.get(name), "weights", None)
    if weights not in musicnn.WEIGHTS:
        raise SystemExit(f"embedding model {name!r} is not a musicnn checkpoint (its weights: {weights!r})")
    npz = musicnn.WEIGHTS[weights].path
    return npz, npz.with_suffix(".onnx")


OPSET = 17
EPSILON = 1e-3  # the TF1 batch-norm default, as in the port
PATCH_FRAMES = 187
N_MELS = 96
LOGMEL_CEIL = float(np.log10(np.float64(10000) * 65504 + 1))
"""The largest log-mel value (the power is clipped to the float16 maximum before ``log10(10000 x + 1)``)."""
DEAD_BOUND = 1e-4
"""A front-end filter whose output can never move by more than this is dead. In MSD_musicnn the bounds of the 561
filters fall in two groups with four orders of magnitude between them: 497 at most 5e-5 (most have weights of
~1e-30: weight decay drove them to zero in training), the 64 others at least 0.2."""
CHANNEL_BLOCK = 8
"""The front-end convolutions get zero filters up to a multiple of this (ONNX Runtime's NCHWc block on AVX2;
16 on AVX-512, where 8 still works but leaves the pool in NCHW) so that the MaxPool stays in the blocked layout;
the extra channels are sliced off after the pool."""


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _bn(arrays: dict[str, np.ndarray], scope: str) -> tuple[np.ndarray, np.ndarray]:
    """(scale, shift) of an inference batch norm, float32 as ``tf.nn.batch_normalization`` computes them."""
    gamma = arrays[f"{scope}/gamma"]
    beta = arrays[f"{scope}/beta"]
    mean = arrays[f"{scope}/moving_mean"]
    var = arrays[f"{scope}/moving_variance"]
    inv = (np.float32(1) / np.sqrt(var + np.float32(EPSILON))).astype(np.float32) * gamma
    return inv.astype(np.float32), (beta - mean * inv).astype(np.float32)


class _Graph:
    """A small helper that collects nodes and initializers under readable names."""

    def __init__(self) -> None:
        self.nodes: list[Any] = []
        self.initializers: list[Any] = []
        self._count = 0

    def const(self, name: str, value: np.ndarray) -> str:
        from onnx import numpy_helper

        self.initializers.append(numpy_helper.from_array(np.ascontiguousarray(value), name))
        return name

    def op(self, op_type: str, inputs: list[str], name: str, output: str | None = None, **attrs: Any) -> str:
        from onnx import helper

        out = output or name
        self.nodes.append(helper.make_node(op_type, inputs, [out], name=name, **attrs))
        return out


def dead_filters(arrays: dict[str, np.ndarray], conv: str) -> np.ndarray:
    """Which filters of a front-end convolution are dead: whose output can never move by more than DEAD_BOUND.

    A filter's contribution is at most ``sum |w| x`` the largest normalised input (the log-mel lies in
    ``[0, log10(10000 x 65504 + 1)]``, the float16 ceiling); a dead filter's output is its bias, to float32 precision.
    """
    s0, t0 = _bn(arrays, "batch_normalization")
    x_max = max(abs(float(t0[0])), abs(float(s0[0]) * LOGMEL_CEIL + float(t0[0])))
    kernel = arrays[f"{conv}/kernel"].astype(np.float64)
    return np.abs(kernel).reshape(-1, kernel.shape[-1]).sum(axis=0) * x_max <= DEAD_BOUND


def build_model(
    arrays: dict[str, np.ndarray],
    npz_sha256: str,
    ranges: dict[str, np.ndarray] | None = None,
    *,
    prune: bool = True,
) -> Any:
    """The fp32 ONNX model of the network whose checkpoint arrays are ``arrays`` (see the module docstring).

    ``prune``: leave out the front end's dead filters (:func:`dead_filters`: 497 of the 561, among them 181 and
    190 of the 204 + 204 timbral ones), whose outputs are constants: their batch-normalised value
    ``BN(ReLU(bias))`` is folded into what reads them, the dense layer's bias (through the time pools: the max
    and mean of a constant) and a per-frame bias of the first mid-end convolution (a constant input channel adds
    ``value x`` the sum of the kernel taps that fall inside the zero-padded frame range). The outputs move by
    at most 5e-6 (measured on dev-set patches); the arithmetic per patch drops from 2.80 to 0.29 GFLOP.

    ``ranges`` (for the int8 graph only): per timbral branch, the largest value ``M_c > 0`` of each channel's
    ``ReLU(max over frequency)`` to keep. The branch's convolution is then scaled per channel so that the values
    its max can take and that survive the ReLU map onto [0, 1] (positive channels: ``y / M``; negated channels,
    whose useful maxima are <= 0: ``y / M + 1``), and the pool's output is mapped back (``x sign x M``,
    ``+ M`` for negated channels) before the ReLU. In fp32 that is the same function (up to rounding); for int8
    it lets the convolution's output use one fixed u8 range [0, 1] in which every channel has 256 levels over the
    part of its range that matters, while smaller values (never the max, or cut by the ReLU) saturate harmlessly.
    """
    import onnx
    from onnx import TensorProto, helper

    g = _Graph()
    n_tags = arrays["dense_1/bias"].shape[0]
    emb_dim = arrays["dense/bias"].shape[0]

    def channel_bn(x: str, scope: str, name: str) -> str:
        scale, shift = _bn(arrays, scope)
        x = g.op("Mul", [x, g.const(f"{name}/scale", scale[:, None])], f"{name}/mul")
        return g.op("Add", [x, g.const(f"{name}/shift", shift[:, None])], f"{name}/add")

    x = g.op("Unsqueeze", ["logmel", g.const("axes_1", np.array([1], np.int64))], "input/unsqueeze")
    s0, t0 = _bn(arrays, "batch_normalization")
    x = g.op("Mul", [x, g.const("input_bn/scale", s0.reshape(()))], "input_bn/mul")
    x = g.op("Add", [x, g.const("input_bn/shift", t0.reshape(()))], "input_bn/add")

    branches = []
    alive_index: list[np.ndarray] = []  # per branch: the front-end channels (0..560) it computes
    dead_value = np.zeros(0, np.float32)  # the constant BN(ReLU(bias)) of each dead front-end channel
    dead_index = np.zeros(0, np.int64)
    offset = 0
    specs = [("conv2d", "batch_normalization_1", (3, 3))]
    specs.append(("conv2d_1", "batch_normalization_2", (3, 3)))
    for i, k in zip((2, 3, 4), (128, 64, 32), strict=True):
        before = (k - 1) // 2  # TF "same": the smaller half before
        specs.append((f"conv2d_{i}", f"batch_normalization_{i + 1}", (before, k - 1 - before)))
    for conv, norm, (pad_before, pad_after) in specs:
        dead = dead_filters(arrays, conv) if prune else np.zeros(arrays[f"{conv}/bias"].shape, bool)
        scale, shift = _bn(arrays, norm)
        bias = arrays[f"{conv}/bias"]
        const = np.maximum(bias, np.float32(0)) * scale + shift  # what the port computes for a dead filter
        dead_value = np.concatenate([dead_value, const[dead].astype(np.float32)])
        dead_index = np.concatenate([dead_index, offset + np.flatnonzero(dead)])
        alive_index.append(offset + np.flatnonzero(~dead))
        offset += dead.size
        kernel = arrays[f"{conv}/kernel"][..., ~dead]  # (kt, kf, 1, C alive)
        bias, scale, shift = bias[~dead], scale[~dead], shift[~dead]
        sign = np.where(scale < 0, np.float32(-1), np.float32(1)).astype(np.float32)
        w = np.transpose(kernel, (3, 2, 0, 1)) * sign[:, None, None, None]  # (C, 1, kt, kf)
        n_out = w.shape[0]
        padded_out = -(-n_out // CHANNEL_BLOCK) * CHANNEL_BLOCK
        w = np.concatenate([w, np.zeros((padded_out - n_out, *w.shape[1:]), np.float32)])
        b = np.concatenate([bias * sign, np.zeros(padded_out - n_out, np.float32)])
        after = (sign, np.zeros(n_out, np.float32))  # pool -> x after[0] + after[1] -> ReLU
        if ranges is not None and conv in ranges:
            top = np.concatenate([ranges[conv], np.ones(padded_out - n_out)]).astype(np.float64)
            lift = np.concatenate([(sign < 0).astype(np.float64), np.zeros(padded_out - n_out)])
            w = (w / top[:, None, None, None]).astype(np.float32)
            b = (b / top + lift).astype(np.float32)
            after = ((sign * top[:n_out]).astype(np.float32), (-sign * lift[:n_out] * top[:n_out]).astype(np.float32))
        c = g.op(
            "Conv",
            [x, g.const(f"{conv}/kernel", w.astype(np.float32)), g.const(f"{conv}/bias", b.astype(np.float32))],
            f"{conv}/conv",
            pads=[pad_before, 0, pad_after, 0],
        )
        # MaxPool over the whole frequency axis rather than ReduceMax: ONNX Runtime's NCHWc layout transformer
        # keeps a MaxPool in the blocked layout of the convolution, so only the 30-96 times smaller maxima are
        # reordered back to NCHW (ReduceMax made it reorder the whole convolution output: ~10 ms a patch)
        n_freq = N_MELS - kernel.shape[1] + 1
        m = g.op("MaxPool", [c], f"{conv}/max_over_frequency", kernel_shape=[1, n_freq])  # (B, C, T, 1)
        m = g.op("Squeeze", [m, g.const(f"{conv}/axes_3", np.array([3], np.int64))], f"{conv}/squeeze")
        if padded_out != n_out:
            bounds = [g.const(f"{conv}/{k}", np.array([v], np.int64)) for k, v in (("start", 0), ("stop", n_out))]
            m = g.op("Slice", [m, *bounds, "axes_1"], f"{conv}/drop_padding_channels")
        m = g.op("Mul", [m, g.const(f"{conv}/sign", after[0][:, None])], f"{conv}/unsign")
        if after[1].any():
            m = g.op("Add", [m, g.const(f"{conv}/offset", after[1][:, None])], f"{conv}/unshift")
        m = g.op("Relu", [m], f"{conv}/relu")
        m = g.op("Mul", [m, g.const(f"{norm}/scale", scale[:, None])], f"{norm}/mul")
        branches.append(g.op("Add", [m, g.const(f"{norm}/shift", shift[:, None])], f"{norm}/add"))
    front = g.op("Concat", branches, "frontend", axis=1)  # (B, alive front-end channels, T)
    front_index = np.concatenate(alive_index)

    mid = [front]
    h = front
    for i in range(3):
        conv, norm = f"conv2d_{5 + i}", f"batch_normalization_{6 + i}"
        w = np.transpose(arrays[f"{conv}/kernel"][:, :, 0, :], (2, 1, 0))  # (7, C, 64) -> (64, C, 7)
        if i == 0:
            # the dead front-end channels: constant inputs, zero-padded at both ends -> a per-frame bias
            wd = w[:, dead_index, :].astype(np.float64) * dead_value.astype(np.float64)[None, :, None]  # (64, D, 7)
            inside = np.array([[0 <= t + k - 3 < PATCH_FRAMES for k in range(7)] for t in range(PATCH_FRAMES)])
            frame_bias = arrays[f"{conv}/bias"].astype(np.float64)[:, None] + wd.sum(axis=1) @ inside.T  # (64, T)
            out = g.op(
                "Conv",
                [h, g.const(f"{conv}/kernel", w[:, front_index, :].astype(np.float32))],
                f"{conv}/conv",
                pads=[3, 3],
            )
            out = g.op("Add", [out, g.const(f"{conv}/frame_bias", frame_bias.astype(np.float32))], f"{conv}/bias")
        else:
            out = g.op(
                "Conv",
                [h, g.const(f"{conv}/kernel", w.astype(np.float32)), g.const(f"{conv}/bias", arrays[f"{conv}/bias"])],
                f"{conv}/conv",
                pads=[3, 3],
            )
        out = channel_bn(g.op("Relu", [out], f"{conv}/relu"), norm, norm)
        h = out if i == 0 else g.op("Add", [out, h], f"midend/residual_{i}")
        mid.append(h)
    midend = g.op("Concat", mid, "midend", axis=1)  # (B, 753, T)

    pooled = g.op(
        "Concat",
        [
            g.op("ReduceMax", [midend], "backend/max_over_time", axes=[2], keepdims=0),
            g.op("ReduceMean", [midend], "backend/mean_over_time", axes=[2], keepdims=0),
        ],
        "backend/pooled",
        axis=1,
    )  # [max, mean] of each computed midend channel: the front end's alive ones, then the 3 x 64 mid-end ones
    n_front = offset
    mid_index = np.concatenate([front_index, n_front + np.arange(3 * 64)])
    perm = np.concatenate([2 * mid_index, 2 * mid_index + 1])  # rows of the original interleaved pooling
    s9, t9 = _bn(arrays, "batch_normalization_9")
    dense_w = arrays["dense/kernel"].astype(np.float64)
    scaled = s9.astype(np.float64)[:, None] * dense_w
    folded_w = scaled[perm].astype(np.float32)
    folded_b = arrays["dense/bias"].astype(np.float64) + t9.astype(np.float64) @ dense_w
    value = dead_value.astype(np.float64)[:, None]
    folded_b += (value * scaled[2 * dead_index]).sum(axis=0) + (value * scaled[2 * dead_index + 1]).sum(axis=0)
    folded_b = folded_b.astype(np.float32)
    hidden = g.op("MatMul", [pooled, g.const("dense/kernel_bn9", folded_w)], "dense/matmul")
    hidden = g.op("Add", [hidden, g.const("dense/bias_bn9", folded_b)], "dense/add")
    hidden = g.op("Relu", [hidden], "dense/relu")
    s10, t10 = _bn(arrays, "batch_normalization_10")
    hidden = g.op("Mul", [hidden, g.const("batch_normalization_10/scale", s10)], "batch_normalization_10/mul")
    g.op("Add", [hidden, g.const("batch_normalization_10/shift", t10)], "batch_normalization_10/add", "embedding")
    logits = g.op("MatMul", ["embedding", g.const("dense_1/kernel", arrays["dense_1/kernel"])], "dense_1/matmul")
    logits = g.op("Add", [logits, g.const("dense_1/bias", arrays["dense_1/bias"])], "dense_1/add")
    g.op("Sigmoid", [logits], "dense_1/sigmoid", "probabilities")

    graph = helper.make_graph(
        g.nodes,
        "musicnn_MSD",
        [helper.make_tensor_value_info("logmel", TensorProto.FLOAT, ["batch", PATCH_FRAMES, N_MELS])],
        [
            helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["batch", emb_dim]),
            helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["batch", n_tags]),
        ],
        g.initializers,
    )
    model = helper.make_model(
        graph,
        producer_name="musicindex tools/export_musicnn_onnx.py",
        producer_version="1",
        opset_imports=[helper.make_opsetid("", OPSET)],
        doc_string="musicnn MSD_musicnn (Pons & Serra, ISC licence), built from msd_musicnn.npz",
    )
    model.ir_version = 8  # readable by onnxruntime >= 1.14
    helper.set_model_props(
        model, {"source_npz": "msd_musicnn.npz", "source_npz_sha256": npz_sha256, "onnx": onnx.__version__}
    )
    onnx.checker.check_model(model, full_check=True)
    return model


# --- int8 ------------------------------------------------------------------------------------------------------
def calibration_patches(devset_csv: Path, n_tracks: int, per_track: int) -> np.ndarray:
    """Log-mel patches of the dev set's TRAIN split (never the held-out tracks), for static quantization."""
    import csv

    sys.path.insert(0, str(REPO))
    from musicindex.audio.decode import read_window
    from musicindex.audio.window import AnalysisWindow
    from musicindex.pretrained import musicnn

    with devset_csv.open(newline="") as fh:
        rows = [r for r in csv.DictReader(fh) if r["split"] == "train"]
    rows.sort(key=lambda r: hashlib.sha256(r["path"].encode()).hexdigest())  # a fixed, label-mixed order
    out = []
    for row in rows[:n_tracks]:
        y, _ = read_window(row["path"], AnalysisWindow(), sample_rate=16000)
        cut = musicnn.patches(musicnn.logmel(y))
        out.append(cut[np.linspace(0, cut.shape[0] - 1, min(per_track, cut.shape[0])).round().astype(int)])
    return np.concatenate(out)


TIMBRAL = ("conv2d", "conv2d_1")
"""The two timbral front-end branches: 2.27 of the 2.80 GFLOP of a patch."""


def quantize_int8(
    fp32_path: Path,
    out_path: Path,
    calibration: np.ndarray,
    *,
    reduce_range: bool = False,
    method: str = "MinMax",
    weights: str = "s8",
    overrides: dict[str, Any] | None = None,
) -> None:
    """Static QDQ int8 of the two timbral convolutions and their max over frequency; the rest stays fp32.

    Activations u8 (asymmetric, one scale a tensor), weights s8 symmetric per output channel, ``reduce_range``
    for 7-bit weights (no saturation of AVX2's u8 x s8 pair sums; see the ONNX Runtime quantization docs).
    Calibration: ``method`` (MinMax, Percentile, Entropy) over ``calibration`` patches. The MaxPool over
    frequency is quantized too, so ONNX Runtime pools the u8 convolution outputs (NHWC) and dequantizes only
    the maxima. The temporal branches (whose QLinearConv kernels are slower than the fp32 ones here) keep
    reading the fp32 normalised input: the quantizer's DequantizeLinear of that tensor is bypassed for them.
    """
    import onnx
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self._it: Iterator[np.ndarray] = iter(np.array_split(calibration, max(1, len(calibration) // 16)))

        def get_next(self) -> dict[str, np.ndarray] | None:
            batch = next(self._it, None)
            return None if batch is None else {"logmel": np.ascontiguousarray(batch, np.float32)}

    nodes = [f"{b}/conv" for b in TIMBRAL] + [f"{b}/max_over_frequency" for b in TIMBRAL]
    quantize_static(
        str(fp32_path),
        str(out_path),
        Reader(),
        quant_format=QuantFormat.QDQ,
        activation_type=QuantType.QUInt8,
        weight_type=QuantType.QInt8 if weights == "s8" else QuantType.QUInt8,
        per_channel=True,
        reduce_range=reduce_range,
        nodes_to_quantize=nodes,
        op_types_to_quantize=["Conv", "MaxPool"],
        calibrate_method=getattr(CalibrationMethod, method),
        extra_options={
            "WeightSymmetric": weights == "s8",
            "ActivationSymmetric": False,
            **({"TensorQuantOverrides": overrides} if overrides else {}),
        },
    )
    model = onnx.load(str(out_path))
    producer = {o: n for n in model.graph.node for o in n.output}
    for node in model.graph.node:
        if node.op_type != "Conv" or node.name.split("/")[0] in TIMBRAL:
            continue
        for i, name in enumerate(node.input):
            dq = producer.get(name)
            if dq is not None and dq.op_type == "DequantizeLinear":
                q = producer.get(dq.input[0])
                if q is not None and q.op_type == "QuantizeLinear":
                    node.input[i] = q.input[0]  # the fp32 tensor the quantizer rounded
    while True:  # drop the DequantizeLinear nodes nothing reads any more
        used = {i for n in model.graph.node for i in n.input} | {o.name for o in model.graph.output}
        dead = [n for n in model.graph.node if not any(o in used for o in n.output)]
        if not dead:
            break
        for n in dead:
            model.graph.node.remove(n)
    onnx.checker.check_model(model)
    onnx.save(model, str(out_path))


def frontend_ranges(model: Any, calibration: np.ndarray, margin: float) -> dict[str, np.ndarray]:
    """Per timbral branch, ``margin`` x the largest ReLU(max over frequency) of each channel over ``calibration``."""
    import onnx
    import onnxruntime as ort

    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    names = [f"{b}/relu" for b in TIMBRAL]
    probe.graph.output.extend(onnx.ValueInfoProto(name=n) for n in names)
    sess = ort.InferenceSession(probe.SerializeToString(), providers=["CPUExecutionProvider"])
    top = {b: np.zeros(0) for b in TIMBRAL}
    for batch in np.array_split(calibration, max(1, len(calibration) // 16)):
        outs = sess.run(names, {"logmel": batch})
        for b, out in zip(TIMBRAL, outs, strict=True):
            m = out.max(axis=(0, 2))
            top[b] = m if top[b].size == 0 else np.maximum(top[b], m)
    # a channel that never fires keeps a range of 1 (its values are 0 after the ReLU anyway)
    return {b: np.where(t > 0, t * margin, 1.0).astype(np.float32) for b, t in top.items()}


INPUT_LEVELS = 128
"""The normalised input is quantized to 7 bits (0..127): AVX2 has no VNNI, and ONNX Runtime's u8 x s8 kernels
(``vpmaddubsw``) add pairs of products in saturating int16, which 8-bit activations x 8-bit weights overflow
(2 x 255 x 127 > 32767); 7-bit activations cannot (2 x 127 x 127), and keep the weights at full 8 bits."""
LOGMEL_MAX = 7.0
"""Top of the int8 input range, in log-mel units (``log10(10000 x + 1)``; the dev set's train split peaks at
6.6, silence is 0). Louder values are not clipped (up to 255 levels) but may saturate a pair sum."""


def export_int8(
    arrays: dict[str, np.ndarray], npz_sha256: str, calibration: np.ndarray, out_path: Path, margin: float = 1.05
) -> None:
    """Write the int8 graph: the range-equalised fp32 graph (``build_model(ranges=...)``) quantized statically."""
    import tempfile

    import onnx

    plain = build_model(arrays, npz_sha256)
    ranges = frontend_ranges(plain, calibration, margin)
    model = build_model(arrays, npz_sha256, ranges)
    s0, t0 = _bn(arrays, "batch_normalization")
    lo, hi = float(t0[0]), float(s0[0] * LOGMEL_MAX + t0[0])  # the log-mel is >= 0
    scale = (hi - lo) / (INPUT_LEVELS - 1)
    overrides: dict[str, Any] = {
        "input_bn/add": [{"scale": np.array(scale, np.float32), "zero_point": np.array(round(-lo / scale), np.uint8)}],
    }
    for b in TIMBRAL:  # the equalised convolution outputs: one fixed range [0, 1]
        overrides[f"{b}/conv"] = [{"scale": np.array(1 / 255, np.float32), "zero_point": np.array(0, np.uint8)}]
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "equalised.onnx"
        onnx.save(model, str(source))
        quantize_int8(source, out_path, calibration, overrides=overrides)
    quantized = onnx.load(str(out_path))
    onnx.helper.set_model_props(
        quantized,
        {
            "source_npz": "msd_musicnn.npz",
            "source_npz_sha256": npz_sha256,
            "onnx": onnx.__version__,
            "quantization": f"static QDQ u8 (input 7-bit) x s8 per channel, timbral branches, margin {margin}",
            "calibration_patches": str(len(calibration)),
        },
    )
    onnx.save(quantized, str(out_path))


def check_against_keras(path: Path) -> None:
    """Print the max abs differences of the ONNX graph to the Keras port on the reference signal's patches."""
    import importlib.util

    import onnxruntime as ort

    sys.path.insert(0, str(REPO))
    from musicindex.pretrained import musicnn

    spec = importlib.util.spec_from_file_location("rec", REPO / "tools" / "record_musicnn_reference.py")
    assert spec is not None and spec.loader is not None
    rec = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(rec)
    batch = musicnn.patches(musicnn.logmel(rec.reference_signal()))
    keras_emb, keras_tags = musicnn.MusicnnModel.load().patch_outputs(batch)
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    emb, tags = sess.run(None, {"logmel": batch})
    print(
        f"{path.name} vs Keras port: max |d embedding| {np.abs(emb - keras_emb).max():.2e}, "
        f"max |d probabilities| {np.abs(tags - keras_tags).max():.2e}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="musicnn", help="an embedding model of the registry (a musicnn one)")
    parser.add_argument("--npz", type=Path, default=None, help="default: the model's weights")
    parser.add_argument("--out", type=Path, default=None, help="default: beside them, .onnx")
    parser.add_argument("--int8", action="store_true", help="also write the static-QDQ int8 graph (needs the dev set)")
    parser.add_argument("--devset", type=Path, default=Path.home() / ".cache/musicindex-devset/set/all.csv")
    parser.add_argument("--calibration-tracks", type=int, default=64)
    parser.add_argument("--calibration-patches", type=int, default=4, help="per track")
    parser.add_argument("--check", action="store_true", help="compare with the Keras port (imports TensorFlow)")
    args = parser.parse_args()
    npz, out = model_files(args.model)
    args.npz, args.out = args.npz or npz, args.out or out

    import onnx

    with np.load(args.npz, allow_pickle=False) as archive:
        arrays = {name: archive[name] for name in archive.files}
    npz_sha = sha256_of(args.npz)
    model = build_model(arrays, npz_sha)
    args.out.write_bytes(model.SerializeToString())
    written = [args.out]
    if args.int8:
        calib = calibration_patches(args.devset, args.calibration_tracks, args.calibration_patches)
        out8 = args.out.with_name(args.out.stem + "_int8.onnx")
        export_int8(arrays, npz_sha, calib, out8)
        written.append(out8)
        print(f"int8 calibration: {calib.shape[0]} patches of {args.calibration_tracks} train-split tracks")
    versions = f"onnx {onnx.__version__}, onnxruntime {metadata.version('onnxruntime')}, numpy {np.__version__}"
    print(f"source {args.npz.name} sha256 {npz_sha}; {versions}")
    for path in written:
        print(f"wrote {path} ({path.stat().st_size} bytes) sha256 {sha256_of(path)}")
        if args.check:
            check_against_keras(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
