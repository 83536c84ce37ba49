"""The report's figures, drawn with matplotlib's Agg backend into PNG files (``report.write_report``).

Every function takes what it draws (stored metrics, cached map coordinates) and a path; none reads the database.
Text from the database goes through :func:`mpl` (no mathtext from a ``$`` in a label).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from musicindex.db.orm import ModelVersion


def mpl(value: Any) -> str:
    """Text for matplotlib: no mathtext from '$' in a label."""
    return str(value).replace("$", r"\$")


def plt_():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


# --------------------------------------------------------------------------- figures
def confusion_png(v: ModelVersion, path: Path) -> None:
    plt = plt_()
    cm = v.metrics.get("confusion_matrix") or {}
    labels, mat = cm.get("labels") or [], np.asarray(cm.get("matrix") or [[0]], dtype=float)
    n = max(len(labels), 1)
    fig, ax = plt.subplots(figsize=(1.2 + 0.55 * n, 1.0 + 0.5 * n), dpi=100)
    ax.imshow(mat, cmap="Blues")
    ax.set_xticks(range(len(labels)), [mpl(x) for x in labels], rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(len(labels)), [mpl(x) for x in labels], fontsize=8)
    top = mat.max() if mat.size else 0
    for i in range(mat.shape[0]):
        for j in range(mat.shape[1]):
            ax.text(
                j,
                i,
                int(mat[i, j]),
                ha="center",
                va="center",
                fontsize=7,
                color="white" if mat[i, j] > top / 2 else "black",
            )
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(f"{v.kind} v{v.id} (held-out)")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def history_png(v: ModelVersion, path: Path) -> None:
    plt = plt_()
    h = v.metrics.get("history") or {}
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.2), dpi=100)
    for ax, key in zip(axes, ("loss", "accuracy"), strict=True):
        for k, style in ((key, "-"), (f"val_{key}", "--")):
            ys = h.get(k) or []
            if ys:
                ax.plot(range(1, len(ys) + 1), ys, style, label="train" if k == key else "validation")
        ax.set_xlabel("epoch")
        ax.set_ylabel(key)
        ax.legend()
        ax.grid(alpha=0.3)
    fig.suptitle(f"{v.kind} v{v.id} learning curves")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def silhouette_png(versions: Sequence[ModelVersion], path: Path) -> None:
    plt = plt_()
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.2), dpi=100)
    for v in versions:
        sweep = v.metrics.get("sweep") or []
        ks = [r["k"] for r in sweep]
        axes[0].plot(ks, [r["silhouette"] for r in sweep], "o-", label=f"{v.kind} v{v.id}")
        axes[1].plot(ks, [r["davies_bouldin"] for r in sweep], "o-", label=f"{v.kind} v{v.id}")
    axes[0].set_ylabel("silhouette (higher is better)")
    axes[1].set_ylabel("Davies-Bouldin (lower is better)")
    for ax in axes:
        ax.set_xlabel("k")
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def dendrogram_png(v: ModelVersion, path: Path) -> None:
    """The top of an agglomerative version's tree (its stored ``dendrogram``: the last merges)."""
    plt = plt_()
    d = (v.metrics or {}).get("dendrogram") or {}
    fig, ax = plt.subplots(figsize=(9, 3.6), dpi=100)
    for xs, ys in zip(d.get("icoord") or [], d.get("dcoord") or [], strict=False):
        ax.plot(xs, ys, color="#345", linewidth=1)
    ivl = d.get("ivl") or []
    ax.set_xticks([5 + 10 * i for i in range(len(ivl))], [mpl(x) for x in ivl], rotation=90, fontsize=7)
    ax.set_ylabel(f"merge distance ({d.get('linkage', '?')} linkage)")
    ax.set_title(
        f"{v.kind} v{v.id}: the last {len(ivl)} clusters of a tree over {d.get('tracks', '?')} tracks "
        "(leaf: (tracks) or a track's index)"
    )
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def maps_png(space: str, maps: Sequence[Any], labels: dict[int, str], path: Path) -> None:
    """One row of panels (one per method) of a space's cached maps (``maps.SpaceMapResult``), coloured by genre."""
    plt = plt_()
    fig, axes = plt.subplots(1, len(maps), figsize=(5.2 * len(maps), 4.6), dpi=100, squeeze=False)
    names = sorted({labels.get(int(t), "(unlabelled)") for m in maps for t in m.track_ids})
    cmap = plt.get_cmap("tab20")
    colour = {n: ("lightgrey" if n == "(unlabelled)" else cmap(i % 20)) for i, n in enumerate(names)}
    for ax, m in zip(axes[0], maps, strict=True):
        lab = np.array([labels.get(int(t), "(unlabelled)") for t in m.track_ids], dtype=object)
        for n in names:
            sel = lab == n
            if sel.any():
                ax.scatter(m.xy[sel, 0], m.xy[sel, 1], s=9, alpha=0.8, color=colour[n], label=mpl(n))
        ax.set_title(f"{space} space, {m.method.upper()} ({len(m.track_ids)} tracks, v{m.model_version_id})")
        ax.set_xticks([])
        ax.set_yticks([])
    axes[0][0].legend(fontsize=7, markerscale=1.5, loc="best", ncol=2)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
