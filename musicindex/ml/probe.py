"""Query by example, the model side: what an outside audio file is in a similarity space (analysed, never stored).

:func:`analyse_example` decodes the file's analysis window, computes its 43 features (and its spectrogram for
the cnn space), its musicnn embedding and tags when the space needs them, and its vector under the space's
active trained version; the query layer then searches with it (``QueryService.similar_to_example``).
``MusicIndex.similar_to_file`` composes the two, so the read-only query layer never imports the models.
"""

from __future__ import annotations

import os

import numpy as np

from musicindex import audio
from musicindex.audio.window import AnalysisWindow
from musicindex.db.session import Database
from musicindex.ml.inference import transform_one
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
    needs_musicnn = space == MUSICNN or (version is not None and (version.params or {}).get("input") == MUSICNN)
    res = audio.analyse_file(fs, window, features=True, spectrogram=(space == "cnn"))
    m_emb = m_tags = None
    if needs_musicnn:
        emb, probs = pretrained.embed_signals([pretrained.load_signal(fs, window)])
        m_emb, m_tags = emb[0].astype(np.float64), probs[0].astype(np.float64)
    embeddings: dict[int, np.ndarray] = {}
    if version is not None and space not in ("features", MUSICNN) and version.kind in TRAINED_KINDS:
        with db.session() as s:
            out = transform_one(s, version.id, features=res.features, logmel=res.logmel, musicnn=m_emb)
        embeddings[version.id] = np.asarray(out["embedding"], dtype=np.float64).ravel()
    return Example(
        path=fs, features=res.features, musicnn=m_emb, tags=m_tags, embeddings=embeddings, duration=res.info.duration
    )
