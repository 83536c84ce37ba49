"""The model report: one HTML page (plus PNGs drawn with matplotlib's Agg backend).

``write_report(db, out_dir)`` (``MusicIndex.report``, ``musicindex report --out DIR``) shows,
for the active model versions: the metrics table (held-out accuracy, macro precision /
recall / F1, stratified k-fold mean ± std, training seconds), confusion matrices, the
ANN / CNN learning curves (train vs validation, from the Keras history stored in the
metrics), silhouette against k (the sweep stored in the clusterers' metrics), a 2-D PCA map
of the tracks coloured by genre, and the least confident genre predictions.
Every text that comes from the database (titles, artists, labels) is HTML-escaped.
"""

from __future__ import annotations

import datetime as dt
import html
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import func, select

from musicindex.db.orm import ModelVersion, Prediction, Track, TrainingRun
from musicindex.db.session import Database
from musicindex.ml.registry import active_versions, genre_model_version
from musicindex.vocab import CLASSIFIER_KINDS, CLUSTER_KINDS

MAP_SAMPLE = 5000
LEAST_CONFIDENT = 25


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _mpl(value: Any) -> str:
    """Text for matplotlib: no mathtext from '$' in a label."""
    return str(value).replace("$", r"\$")


def _fmt(v: Any, digits: int = 3) -> str:
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return f"{v:.{digits}f}"
    return "–"


def _pm(m: dict[str, Any], key: str) -> str:
    mean, std = m.get(f"{key}_mean"), m.get(f"{key}_std")
    if mean is None:
        return "–"
    return f"{mean:.3f} ± {std:.3f}" + (f" ({m.get('cv_folds')}-fold)" if m.get("cv_folds") else "")


def _plt():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


# --------------------------------------------------------------------------- figures
def _confusion_png(v: ModelVersion, path: Path) -> None:
    plt = _plt()
    cm = v.metrics.get("confusion_matrix") or {}
    labels, mat = cm.get("labels") or [], np.asarray(cm.get("matrix") or [[0]], dtype=float)
    n = max(len(labels), 1)
    fig, ax = plt.subplots(figsize=(1.2 + 0.55 * n, 1.0 + 0.5 * n), dpi=100)
    ax.imshow(mat, cmap="Blues")
    ax.set_xticks(range(len(labels)), [_mpl(x) for x in labels], rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(len(labels)), [_mpl(x) for x in labels], fontsize=8)
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


def _history_png(v: ModelVersion, path: Path) -> None:
    plt = _plt()
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


def _silhouette_png(versions: Sequence[ModelVersion], path: Path) -> None:
    plt = _plt()
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


def _map_png(db: Database, path: Path) -> int:
    from sklearn.decomposition import PCA
    from sklearn.preprocessing import StandardScaler

    from musicindex.ml.data import load_dataset

    plt = _plt()
    with db.session() as s:
        ds = load_dataset(s)
    n = len(ds.track_ids)
    if n < 3:
        return 0
    rng = np.random.default_rng(0)
    idx = np.sort(rng.choice(n, MAP_SAMPLE, replace=False)) if n > MAP_SAMPLE else np.arange(n)
    Z = PCA(n_components=2, random_state=0).fit_transform(StandardScaler().fit_transform(ds.X))[idx]
    labels = np.array(["(unlabelled)" if lab is None else str(lab) for lab in ds.labels[idx]])
    fig, ax = plt.subplots(figsize=(7, 5.5), dpi=100)
    cmap = plt.get_cmap("tab20")
    for i, lab in enumerate(sorted(set(labels.tolist()))):
        m = labels == lab
        color = "lightgrey" if lab == "(unlabelled)" else cmap(i % 20)
        ax.scatter(Z[m, 0], Z[m, 1], s=12, alpha=0.8, color=color, label=_mpl(lab))
    ax.set_xlabel("PC 1")
    ax.set_ylabel("PC 2")
    ax.set_title(f"{len(idx)} tracks on the first two principal components\nof the standardised features")
    ax.legend(fontsize=7, markerscale=1.5, loc="best", ncol=2)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return len(idx)


# --------------------------------------------------------------------------- page
_CSS = """body{font-family:system-ui,sans-serif;margin:2em;max-width:1200px;color:#222}
table{border-collapse:collapse;margin:1em 0}th,td{border:1px solid #ccc;padding:4px 8px;text-align:right}
th{background:#f3f3f3}td.l,th.l{text-align:left}img{max-width:100%;margin:0.5em 0}
.fig{display:inline-block;vertical-align:top;margin-right:1em}code{background:#f6f6f6}"""


def write_report(db: Database, out_dir: str | os.PathLike) -> Path:
    """Write ``out_dir/index.html`` and its PNGs; returns the HTML path."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    with db.session() as s:
        versions = active_versions(s)
        genre_v = genre_model_version(s)
        genre_id = genre_v.id if genre_v else None
        counts = dict(s.execute(select(Track.status, func.count()).group_by(Track.status)).all())
        per_label = s.execute(
            select(Track.label, func.count())
            .where(Track.status == "indexed")
            .group_by(Track.label)
            .order_by(Track.label)
        ).all()
        last_run = s.execute(select(TrainingRun).order_by(TrainingRun.id.desc()).limit(1)).scalar_one_or_none()
        least: Sequence[Any] = []
        if genre_id is not None:
            least = s.execute(
                select(Track.title, Track.artist, Track.path, Track.label, Prediction.genre, Prediction.confidence)
                .join(Prediction, Prediction.track_id == Track.id)
                .where(Prediction.model_version_id == genre_id, Track.status == "indexed")
                .order_by(Prediction.confidence, Track.id)
                .limit(LEAST_CONFIDENT)
            ).all()
    classifiers = [v for v in versions if v.kind in CLASSIFIER_KINDS]
    clusterers = [v for v in versions if v.kind in CLUSTER_KINDS]
    parts: list[str] = [
        f"<!doctype html><html><head><meta charset='utf-8'><title>musicindex model report</title>"
        f"<style>{_CSS}</style></head><body>",
        "<h1>musicindex model report</h1>",
        f"<p>generated {_e(dt.datetime.now(dt.UTC).strftime('%Y-%m-%d %H:%M UTC'))}; "
        f"tracks: {_e(', '.join(f'{k} {v}' for k, v in sorted(counts.items())) or 'none')}</p>",
    ]
    if last_run is not None:
        parts.append(
            f"<p>latest training run {last_run.id} ({_e(last_run.trigger)}): {_e(last_run.status)}"
            f"{' — ' + _e(last_run.error) if last_run.error else ''}, started "
            f"{_e(last_run.started_at.strftime('%Y-%m-%d %H:%M') if last_run.started_at else '')}</p>"
        )
    if not versions:
        parts.append("<p><b>No active model.</b> Train with <code>musicindex train</code>.</p>")

    # --- metrics tables
    if classifiers:
        parts.append(
            "<h2>Genre classifiers (active versions)</h2><table><tr><th class='l'>model</th><th>version</th>"
            "<th>accuracy</th><th>macro precision</th><th>macro recall</th><th>macro F1</th>"
            "<th>CV accuracy</th><th>CV macro F1</th><th>train / test</th><th>training s</th></tr>"
        )
        for v in classifiers:
            m = v.metrics or {}
            star = " ★" if v.id == genre_id else ""
            parts.append(
                f"<tr><td class='l'>{_e(v.kind)}{star}</td><td>{v.id}</td><td>{_fmt(m.get('accuracy'))}</td>"
                f"<td>{_fmt(m.get('macro_precision'))}</td><td>{_fmt(m.get('macro_recall'))}</td>"
                f"<td>{_fmt(m.get('macro_f1'))}</td><td>{_e(_pm(m, 'cv_accuracy'))}</td>"
                f"<td>{_e(_pm(m, 'cv_macro_f1'))}</td><td>{_e(m.get('n_train', '–'))} / {_e(m.get('n_test', '–'))}</td>"
                f"<td>{_fmt(v.training_seconds, 1)}</td></tr>"
            )
        parts.append(
            "</table><p>★ the genre model (best held-out macro F1). Accuracy and macro P/R/F1 on the "
            "held-out stratified split; CV: stratified k-fold mean ± standard deviation.</p>"
        )
    if clusterers:
        parts.append(
            "<h2>Clustering (active versions)</h2><table><tr><th class='l'>model</th><th>version</th>"
            "<th>k</th><th>silhouette</th><th>Davies-Bouldin</th><th>cluster sizes</th><th>training s</th></tr>"
        )
        for v in clusterers:
            m = v.metrics or {}
            parts.append(
                f"<tr><td class='l'>{_e(v.kind)}</td><td>{v.id}</td><td>{_e(m.get('n_clusters'))}</td>"
                f"<td>{_fmt(m.get('silhouette'))}</td><td>{_fmt(m.get('davies_bouldin'))}</td>"
                f"<td class='l'>{_e(m.get('cluster_sizes', ''))}</td><td>{_fmt(v.training_seconds, 1)}</td></tr>"
            )
        parts.append("</table>")
    if versions:
        parts.append(
            "<h2>Registry</h2><table><tr><th class='l'>model</th><th>version</th><th>state</th>"
            "<th>run</th><th class='l'>created</th><th>embedding dim</th><th class='l'>sha256</th></tr>"
        )
        for v in versions:
            parts.append(
                f"<tr><td class='l'>{_e(v.kind)}</td><td>{v.id}</td><td>{_e(v.state)}</td><td>{_e(v.run_id)}</td>"
                f"<td class='l'>{_e(v.created_at.strftime('%Y-%m-%d %H:%M') if v.created_at else '')}</td>"
                f"<td>{_e(v.embedding_dim or '')}</td>"
                f"<td class='l'><code>{_e((v.artifact_sha256 or '')[:16])}</code></td></tr>"
            )
        parts.append("</table>")

    # --- figures
    if classifiers:
        parts.append("<h2>Confusion matrices (held-out split)</h2>")
        for v in classifiers:
            name = f"confusion_{v.kind}_v{v.id}.png"
            _confusion_png(v, out / name)
            parts.append(f"<div class='fig'><img src='{name}' alt='confusion matrix of {_e(v.kind)}'></div>")
    nets = [v for v in classifiers if v.kind in ("ann", "cnn") and (v.metrics or {}).get("history")]
    if nets:
        parts.append("<h2>Learning curves</h2>")
        for v in nets:
            name = f"history_{v.kind}_v{v.id}.png"
            _history_png(v, out / name)
            best = (v.metrics.get("history") or {}).get("best_epoch")
            parts.append(
                f"<div><img src='{name}' alt='learning curves of {_e(v.kind)}'>"
                f"<br>early stopping kept epoch {_e(best)}</div>"
            )
    swept = [v for v in clusterers if len((v.metrics or {}).get("sweep") or []) > 1]
    if swept:
        parts.append("<h2>Silhouette against k</h2>")
        _silhouette_png(swept, out / "silhouette.png")
        parts.append("<img src='silhouette.png' alt='silhouette and Davies-Bouldin against k'>")
    if _map_png(db, out / "map.png"):
        parts.append("<h2>Map of the tracks</h2><img src='map.png' alt='PCA map of the tracks by genre'>")

    # --- data
    if per_label:
        parts.append("<h2>Indexed tracks per label</h2><table><tr><th class='l'>label</th><th>tracks</th></tr>")
        for lab, c in per_label:
            parts.append(f"<tr><td class='l'>{_e(lab if lab is not None else '(unlabelled)')}</td><td>{c}</td></tr>")
        parts.append("</table>")
    if least and genre_v is not None:
        parts.append(
            f"<h2>Least confident genre predictions ({_e(genre_v.kind)} v{genre_id})</h2><table>"
            "<tr><th class='l'>title</th><th class='l'>artist</th><th class='l'>label</th>"
            "<th class='l'>predicted</th><th>confidence</th></tr>"
        )
        for title, artist, path, lab, genre, conf in least:
            parts.append(
                f"<tr><td class='l'>{_e(title or os.path.basename(path))}</td><td class='l'>{_e(artist)}</td>"
                f"<td class='l'>{_e(lab)}</td><td class='l'>{_e(genre)}</td><td>{_fmt(conf)}</td></tr>"
            )
        parts.append("</table>")
    parts.append("</body></html>")
    path = out / "index.html"
    path.write_text("\n".join(parts), encoding="utf-8")
    return path
