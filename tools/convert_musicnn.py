#!/usr/bin/env python
"""Convert the TF1 checkpoints shipped in the ``musicnn`` 0.1.0 wheel into the npz files of musicindex.

    python tools/convert_musicnn.py /tmp/mnn/musicnn-0.1.0-py3-none-any.whl [--out musicindex/pretrained/data]

(fetch the wheel with ``pip download musicnn==0.1.0 --no-deps``). The wheel is read as a zip: nothing of
``musicnn`` is imported or installed. For each model (``MSD_musicnn``, ``MTT_musicnn``):

1. the checkpoint files (``<model>/.index``, ``<model>/.data-00000-of-00001``) are extracted to a temporary
   folder under the prefix ``ckpt`` (the folder's ``checkpoint`` file names a path on the author's machine,
   so it is not used);
2. ``tf.train.load_checkpoint`` reads every variable; the Adam slots (``*/Adam``, ``*/Adam_1``) and the
   optimizer's ``beta1_power`` / ``beta2_power`` are dropped (there is no ``global_step`` in these checkpoints;
   it would be dropped too);
3. the remaining 64 float32 variables are written with ``np.savez_compressed`` under their checkpoint names
   (``conv2d/kernel``, ``batch_normalization_3/moving_mean``, ...), in sorted order, so the file is a pure
   function of the wheel.

It prints each file's sha256, which ``musicindex/pretrained/musicnn.py`` records and checks on load.
Needs TensorFlow (``.venv`` has it); ``tf.train.load_checkpoint`` does not need tf-keras.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import sys
import tempfile
import zipfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np

MODELS: dict[str, str] = {"MSD_musicnn": "msd_musicnn.npz", "MTT_musicnn": "mtt_musicnn.npz"}
"""Checkpoint folder in the wheel -> npz file name in musicindex/pretrained/data."""
DROPPED = re.compile(r"(^|/)(Adam(_\d+)?|beta[12]_power|global_step)$")
"""Optimizer state: not part of the network."""
DEFAULT_OUT = Path(__file__).resolve().parents[1] / "musicindex" / "pretrained" / "data"


def read_checkpoint(wheel: zipfile.ZipFile, model: str, tmp: Path) -> dict[str, np.ndarray]:
    """Every network variable of ``musicnn/<model>/`` in ``wheel`` as float32 arrays, optimizer state dropped."""
    import tensorflow as tf

    folder = tmp / model
    folder.mkdir()
    for suffix in (".index", ".data-00000-of-00001"):
        (folder / f"ckpt{suffix}").write_bytes(wheel.read(f"musicnn/{model}/{suffix}"))
    reader = tf.train.load_checkpoint(str(folder / "ckpt"))
    names = sorted(n for n in reader.get_variable_to_shape_map() if not DROPPED.search(n))
    arrays = {n: np.asarray(reader.get_tensor(n)) for n in names}
    bad = {n: a.dtype for n, a in arrays.items() if a.dtype != np.float32}
    if bad:
        raise SystemExit(f"{model}: unexpected dtypes {bad}")
    return arrays


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("wheel", type=Path, help="musicnn-0.1.0-py3-none-any.whl")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output folder (default: %(default)s)")
    args = parser.parse_args(argv)

    print(f"wheel {args.wheel.name} sha256 {hashlib.sha256(args.wheel.read_bytes()).hexdigest()}")
    args.out.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(args.wheel) as wheel, tempfile.TemporaryDirectory(prefix="musicnn-ckpt-") as tmp:
        for model, filename in MODELS.items():
            arrays = read_checkpoint(wheel, model, Path(tmp))
            target = args.out / filename
            np.savez_compressed(target, allow_pickle=False, **arrays)
            digest = hashlib.sha256(target.read_bytes()).hexdigest()
            n_params = sum(a.size for a in arrays.values())
            print(
                f"{model}: {len(arrays)} variables, {n_params} parameters -> {target} "
                f"({target.stat().st_size} bytes) sha256 {digest}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
