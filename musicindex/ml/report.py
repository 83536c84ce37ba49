"""The model report: one HTML page (plus PNGs drawn by ``figures`` with matplotlib's Agg backend).

``write_report(db, out_dir)`` (``MusicIndex.report``, ``musicindex report --out DIR``) shows, for the active model
versions: the comparison of every classifier and space on held-out queries (``evaluate``: accuracy, macro-F1,
precision@10, other-artist precision@10), the classifiers' metrics (held-out accuracy, macro precision / recall /
F1, k-fold mean ± std and how its folds were grouped, training seconds), the ensemble's members, the decision
tree's depth and top splits, confusion matrices, the ANN / CNN learning curves, the clusterers' silhouette and
Davies-Bouldin against k, the agglomerative tree's dendrogram, PCA, t-SNE and UMAP maps of each similarity space
(cached per model version: ``maps.space_map``) coloured by genre, and the least confident genre predictions.
Every text that comes from the database (titles, artists, labels) is HTML-escaped.
"""

from __future__ import annotations

import datetime as dt
import html
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from musicindex.db.orm import ModelVersion, Prediction, Track, TrainingRun
from musicindex.db.session import Database
from musicindex.errors import MusicIndexError
from musicindex.ml import figures
from musicindex.ml.registry import active_versions, genre_model_version
from musicindex.vocab import CLASSIFIER_KINDS, CLUSTER_KINDS, ENSEMBLE, MAP_METHODS

log = logging.getLogger(__name__)
LEAST_CONFIDENT = 25


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _fmt(v: Any, digits: int = 3) -> str:
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return f"{v:.{digits}f}"
    return "–"


def _pm(m: dict[str, Any], key: str) -> str:
    mean, std = m.get(f"{key}_mean"), m.get(f"{key}_std")
    if mean is None:
        return "–"
    return f"{mean:.3f} ± {std:.3f}" + (f" ({m.get('cv_folds')}-fold)" if m.get("cv_folds") else "")


# --------------------------------------------------------------------------- sections
def _comparison_section(db: Database) -> list[str]:
    """The study's comparison: every classifier and space on held-out queries (``evaluate``)."""
    from musicindex.ml.evaluate import evaluate

    try:
        rep = evaluate(db)
    except (MusicIndexError, ValueError) as exc:  # the report still shows the rest
        log.warning("the comparison could not be computed: %s", exc)
        return [f"<h2>Comparison</h2><p>not computed: {_e(exc)}</p>"]
    rows = rep.comparison()
    if not rows:
        return []
    out = [
        "<h2>Comparison on held-out queries</h2><table><tr><th class='l'>model or space</th><th class='l'>what"
        "</th><th>version</th><th>queries</th><th>accuracy</th><th>macro F1</th><th>unseen-artist accuracy</th>"
        "<th>precision@10</th><th>other-artist precision@10</th><th>CV macro F1</th><th class='l'>folds</th></tr>"
    ]
    for r in rows:
        out.append(
            f"<tr><td class='l'>{_e(r['name'])}</td><td class='l'>{_e(r['what'])}</td><td>{_e(r['version'])}</td>"
            f"<td>{_e(r['queries'])}</td><td>{_fmt(r['accuracy'])}</td><td>{_fmt(r['macro_f1'])}</td>"
            f"<td>{_fmt(r['unseen_artist_accuracy'])}</td><td>{_fmt(r['precision_at_10'])}</td>"
            f"<td>{_fmt(r['other_artist_precision_at_10'])}</td><td>{_fmt(r['cv_macro_f1'])}</td>"
            f"<td class='l'>{_e(r['cv_protocol'] or '')}</td></tr>"
        )
    out.append(
        "</table><p>Queries: each model's held-out tracks (a space: the classifiers' held-out tracks, or its "
        "own); neighbours among every track of known genre. A classifier's precision@10: the tracks whose "
        "predicted genre probabilities are closest; a space's accuracy: the genre its 10 nearest neighbours by "
        "other artists vote for. <i>Other-artist</i>: every track of the query's artist (artist tag, else album, "
        "else folder) left out; <i>unseen-artist accuracy</i>: held-out tracks whose artist has no training "
        f"track. {_e(rep.protocol)}.</p>"
    )
    return out


def _selection_notes(classifiers: Sequence[ModelVersion]) -> list[str]:
    notes = {str(((v.metrics or {}).get("selection") or {}).get("note") or "") for v in classifiers}
    notes.discard("")
    return [f"<p>Model selection: {_e(n)}.</p>" for n in sorted(notes)]


def _ensemble_and_tree(classifiers: Sequence[ModelVersion]) -> list[str]:
    out: list[str] = []
    for v in classifiers:
        p, m = v.params or {}, v.metrics or {}
        if v.kind == ENSEMBLE:
            best = p.get("best") or {}
            scores = p.get("member_scores") or {}
            listed = ", ".join(f"{k} ({_fmt(scores.get(k))})" for k in scores)
            out.append(
                f"<h3>Ensemble v{v.id}</h3><p>soft voting over {_e(', '.join(best.get('members') or []))}; "
                f"members ranked by grouped inner-CV macro F1: {_e(listed)}; "
                f"ensemble sizes tried: {_e(p.get('size_scores'))}.</p>"
            )
        if v.kind == "tree" and m.get("top_splits"):
            out.append(
                f"<h3>Decision tree v{v.id}</h3><p>depth {_e(m.get('depth'))}, {_e(m.get('leaves'))} leaves "
                f"(chosen: {_e(p.get('best'))}); its top three levels:</p><pre>{_e(m['top_splits'])}</pre>"
            )
    return out


def _best_per_linkage(m: dict[str, Any]) -> str:
    parts = []
    for method, sweep in (m.get("sweep_by_linkage") or {}).items():
        if sweep:
            best = max(sweep, key=lambda r: r["silhouette"])
            parts.append(f"{method} {best['silhouette']:.3f} at k={best['k']}")
    return "; ".join(parts)


def _maps_section(db: Database, out: Path) -> list[str]:
    """PCA, t-SNE and UMAP maps of every space that has an active version (cached per version)."""
    from musicindex.ml import maps

    with db.session() as s:
        labels = {
            int(t): str(lab) for t, lab in s.execute(select(Track.id, Track.label).where(Track.label.isnot(None)))
        }
    parts: list[str] = []
    for space in maps.available_spaces(db):
        drawn = []
        for method in MAP_METHODS:
            try:
                drawn.append(maps.space_map(db, space, method))
            except (MusicIndexError, ValueError) as exc:  # a map that cannot be drawn (too few tracks): the others
                log.warning("no %s map of the %s space: %s", method, space, exc)
        if drawn:
            name = f"map_{space}.png"
            figures.maps_png(space, drawn, labels, out / name)
            parts.append(f"<div><img src='{name}' alt='maps of the {_e(space)} space by genre'></div>")
    if parts:
        parts.insert(
            0,
            "<h2>Maps of the similarity spaces</h2><p>PCA, t-SNE and UMAP of each space's vectors (unit length, as "
            "queries compare them), coloured by genre label; computed once per model version and cached.</p>",
        )
    return parts


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
    else:
        parts.extend(_comparison_section(db))

    # --- metrics tables
    if classifiers:
        parts.append(
            "<h2>Genre classifiers (active versions)</h2><table><tr><th class='l'>model</th><th>version</th>"
            "<th>accuracy</th><th>macro precision</th><th>macro recall</th><th>macro F1</th>"
            "<th>CV accuracy</th><th>CV macro F1</th><th class='l'>folds</th><th>train / test</th>"
            "<th>training s</th></tr>"
        )
        for v in classifiers:
            m = v.metrics or {}
            star = " ★" if v.id == genre_id else ""
            parts.append(
                f"<tr><td class='l'>{_e(v.kind)}{star}</td><td>{v.id}</td><td>{_fmt(m.get('accuracy'))}</td>"
                f"<td>{_fmt(m.get('macro_precision'))}</td><td>{_fmt(m.get('macro_recall'))}</td>"
                f"<td>{_fmt(m.get('macro_f1'))}</td><td>{_e(_pm(m, 'cv_accuracy'))}</td>"
                f"<td>{_e(_pm(m, 'cv_macro_f1'))}</td><td class='l'>{_e(m.get('cv_protocol', 'stratified'))}</td>"
                f"<td>{_e(m.get('n_train', '–'))} / {_e(m.get('n_test', '–'))}</td>"
                f"<td>{_fmt(v.training_seconds, 1)}</td></tr>"
            )
        parts.append(
            "</table><p>★ the genre model (best cross-validated macro F1). Accuracy and macro P/R/F1 on the "
            "held-out split; CV: k-fold mean ± standard deviation. Folds: <i>artist-grouped</i> (one artist's "
            "tracks never on both sides), <i>partly grouped</i> (genres from a single artist split track by "
            "track) or <i>stratified</i> (the fallback when artists are unknown).</p>"
        )
        parts.extend(_selection_notes(classifiers))
        parts.extend(_ensemble_and_tree(classifiers))
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
            figures.confusion_png(v, out / name)
            parts.append(f"<div class='fig'><img src='{name}' alt='confusion matrix of {_e(v.kind)}'></div>")
    nets = [v for v in classifiers if v.kind in ("ann", "cnn") and (v.metrics or {}).get("history")]
    if nets:
        parts.append("<h2>Learning curves</h2>")
        for v in nets:
            name = f"history_{v.kind}_v{v.id}.png"
            figures.history_png(v, out / name)
            best = (v.metrics.get("history") or {}).get("best_epoch")
            parts.append(
                f"<div><img src='{name}' alt='learning curves of {_e(v.kind)}'>"
                f"<br>early stopping kept epoch {_e(best)}</div>"
            )
    swept = [v for v in clusterers if len((v.metrics or {}).get("sweep") or []) > 1]
    if swept:
        parts.append("<h2>Silhouette against k</h2>")
        figures.silhouette_png(swept, out / "silhouette.png")
        parts.append("<img src='silhouette.png' alt='silhouette and Davies-Bouldin against k'>")
    for v in clusterers:
        if (v.metrics or {}).get("dendrogram"):
            name = f"dendrogram_{v.kind}_v{v.id}.png"
            figures.dendrogram_png(v, out / name)
            m = v.metrics
            parts.append(
                f"<h2>Dendrogram ({_e(v.kind)} v{v.id})</h2><img src='{name}' alt='dendrogram'>"
                f"<p>{_e(m.get('linkage'))} linkage chosen by silhouette over {_e(m.get('tree_sample'))} tracks "
                f"(best silhouette per linkage: {_e(_best_per_linkage(m))}); the other tracks join the "
                "cluster with the nearest centroid.</p>"
            )
    parts.extend(_maps_section(db, out))

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
