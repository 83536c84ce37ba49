"""Query by example, the model side: what an outside audio file is in a similarity space (analysed, never stored).

:func:`analyse_example` decodes the file's analysis window, computes its 43 features (and its spectrogram for
the cnn space), its vector in an embedding model's space when the space (or the classifier answering it) reads one,
the tags of the model whose tags answer (for "why"), and its vector under the space's active trained version; the
query layer then searches with it (``QueryService.similar_to_example``).
``MusicIndex.similar_to_file`` composes the two, so the read-only query layer never imports the models.
"""

from __future__ import annotations

import os

import numpy as np

from musicindex import audio
from musicindex.audio.window import AnalysisWindow
from musicindex.db.session import Database
from musicindex.ml.inference import transform_one
from musicindex.pretrained import registry
from musicindex.query.results import Example
from musicindex.query.snapshot import VersionInfo
from musicindex.vocab import MUSICNN, TRAINED_KINDS


def analyse_example(
    db: Database, path: str | os.PathLike[str], *, space: str, version: VersionInfo | None, window: AnalysisWindow
) -> Example:
    """``path`` as an :class:`~musicindex.query.results.Example` for ``space`` answered by ``version`` (None: the
    raw features). Raises AudioError for a file that cannot be analysed."""
    from musicindex.ml import pretrained

    fs = os.fspath(path)
    models = registry.names()
    reads = (version.params or {}).get("input") if version is not None else None  # a classifier's input space
    res = audio.analyse_file(fs, window, features=True, spectrogram=(space == "cnn"))
    vectors: dict[str, np.ndarray] = {}
    tags: np.ndarray | None = None
    tagger = next((n for n in models if pretrained.model_of(n).tags), None)  # whose tags answer (query.tags)
    for name in (n for n in models if n in (space, reads)):
        m = pretrained.model_of(name)
        emb, probs = pretrained.embed_signals([pretrained.load_signal(fs, window, m)], m)
        vectors[name] = emb[0].astype(np.float64)
        if name == tagger:
            tags = probs[0].astype(np.float64)
    embeddings: dict[int, np.ndarray] = {}
    if version is not None and space in vectors:  # an embedding model's space: its vector is the query
        embeddings[version.id] = vectors[space]
    if version is not None and space not in ("features", *models) and version.kind in TRAINED_KINDS:
        with db.session() as s:
            out = transform_one(s, version.id, features=res.features, logmel=res.logmel, musicnn=vectors.get(MUSICNN))
        embeddings[version.id] = np.asarray(out["embedding"], dtype=np.float64).ravel()
    return Example(
        path=fs,
        features=res.features,
        musicnn=vectors.get(MUSICNN),
        tags=tags,
        embeddings=embeddings,
        duration=res.info.duration,
    )
