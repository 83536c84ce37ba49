"""The domain vocabulary: the one definition of the words every layer uses.

Track statuses, label sources, model kinds and states, similarity spaces, queues, the
43 feature names, the HNSW index naming rule and the genre-model rule live here and are
imported everywhere else (ORM, ingestion, training, queries, CLI, workers).

Migrations are the exception on purpose: a migration is a frozen snapshot of the schema
at its revision, so it spells its CHECK constraints and SQL with literals of its own
(importing these tuples would silently rewrite old revisions when a word is added). The
tests check that the migrated schema at head and the SQL functions agree with this
module (``tests/test_vocab.py``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Final

# --------------------------------------------------------------------------- tracks
PENDING: Final = "pending"
INDEXED: Final = "indexed"
FAILED: Final = "failed"
MISSING: Final = "missing"
TRACK_STATUSES: Final = (PENDING, INDEXED, FAILED, MISSING)
"""Life of a track: registered ``pending`` -> analysed ``indexed`` or ``failed``; ``missing``
when its file is gone (seen again: ``pending``). ``musicindex.ingest.lifecycle`` moves them."""

LABEL_SOURCES: Final = ("tag", "folder", "csv")
"""Where a track's training label came from."""

# --------------------------------------------------------------------------- duplicates (issue 31)
SAME_RECORDING: Final = "same recording"
"""Files holding one recording (the audio fingerprint agrees): a re-encode, a trimmed or gain-changed copy."""
SAME_SONG: Final = "same song"
"""Versions of one song (title and artist, checked by the audio): never merged with a recording group."""
DUPLICATE_KINDS: Final = (SAME_RECORDING, SAME_SONG)
"""Kinds of duplicate groups (``musicindex.dupes``); files are never deleted, only grouped."""

# --------------------------------------------------------------------------- features
_FEATURE_PAIRS = (
    "chroma_stft",
    "rms",
    "spectral_centroid",
    "spectral_bandwidth",
    "rolloff",
    "zero_crossing_rate",
    "harmony",
    "perceptr",
)
FEATURE_NAMES: Final[tuple[str, ...]] = (
    *(f"{base}_{stat}" for base in _FEATURE_PAIRS for stat in ("mean", "var")),
    "tempo",
    *(f"mfcc{i}_{stat}" for i in range(1, 14) for stat in ("mean", "var")),
)
"""The 43 features in storage order; names follow the public GTZAN feature tables
(``features_30_sec.csv``). How each is computed: ``musicindex.audio.features`` and docs/features.md."""
N_FEATURES: Final = len(FEATURE_NAMES)
assert N_FEATURES == 43, N_FEATURES

# --------------------------------------------------------------------------- models
SKLEARN_CLASSIFIER_KINDS: Final = ("knn", "logreg", "svm", "forest", "tree", "gbm")
"""Genre classifiers that are scikit-learn pipelines tuned by a grid search (``ml.estimators``): KNN, logistic
regression, SVM (RBF or linear kernel, chosen by the search), random forest, decision tree, histogram gradient
boosting."""
ENSEMBLE: Final = "ensemble"
"""Soft voting over the best scikit-learn classifiers, chosen by the same artist-grouped cross-validation."""
CLASSIFIER_KINDS: Final = ("knn", "logreg", "svm", "forest", "tree", "gbm", ENSEMBLE, "ann", "cnn")
"""Genre classifiers (trained on labels; each writes predictions)."""
CLUSTER_KINDS: Final = ("kmeans", "birch", "gmm", "agglomerative")
"""Clusterers (trained without labels; each writes cluster assignments). ``agglomerative`` (Ward or average
linkage) has no predict of its own: a new track joins the cluster with the nearest centroid."""
METRIC_KINDS: Final = ("lda",)
"""Similarity spaces learned from the labels (trained on labels; each writes embeddings, no predictions): ``lda``, the
linear discriminant projection of the musicnn embedding (classes - 1 dimensions), which puts tracks of one genre
closer together than the embedding does (benchmarks/quality_grouped.py)."""
SCALER: Final = "scaler"
"""The standardisation of the 43 features: the model behind the ``features`` space."""
MUSICNN: Final = "musicnn"
"""The built-in embedding model (musicnn trained on the Million Song Dataset, no training here): one version per
extractor version, the model behind the ``musicnn`` space and the per-track tag probabilities. Every embedding
model of the registry (``musicindex.pretrained.registry``) is such a kind, named by the model."""
TRAINABLE_KINDS: Final = (*CLASSIFIER_KINDS, *CLUSTER_KINDS, *METRIC_KINDS)
"""What `musicindex train --models` accepts (the scaler is trained with every run)."""
TRAINED_KINDS: Final = (*TRAINABLE_KINDS, SCALER)
"""Kinds with a trained artifact (loaded through the registry); musicnn ships its weights instead."""
MODEL_KINDS: Final = (*TRAINED_KINDS, MUSICNN)
"""The kinds of row in ``model_versions`` this code ships: the trained ones and the built-in embedding model. An
embedding model registered beside it adds its own name (:data:`MODEL_NAME_PATTERN`)."""
MODEL_NAME_PATTERN: Final = "^[a-z][a-z0-9_]{0,15}$"
"""What a model kind (and so a space and an embedding model) is named like: the CHECK constraint of
``model_versions.kind`` and ``embeddings.space`` (migration 0009), checked when a model is registered."""
NET_KINDS: Final = ("ann", "cnn")
"""Kinds stored as Keras models (the others are scikit-learn objects)."""

TRAINING, CANDIDATE, ACTIVE, RETIRED = "training", "candidate", "active", "retired"
MODEL_STATES: Final = (TRAINING, CANDIDATE, ACTIVE, RETIRED, FAILED)
"""``training`` -> ``candidate`` -> ``active`` (one per kind) -> ``retired``; or ``failed``."""

GENRE_MODEL_PREFERENCES: Final = ("auto", *CLASSIFIER_KINDS)
GENRE_MODEL_METRIC: Final = "cv_macro_f1_mean"
"""The score by which ``auto`` picks the genre model: the cross-validated macro-F1 (mean over the folds), which
is steadier than one held-out split of a small library."""

SPACE_MODEL_METRIC: Final = "cv_other_precision_at_10_mean"
"""The score of a space learned from labels (``METRIC_KINDS``), by which promotion compares its versions: genre
precision@10 of held-out queries among other artists' tracks, mean over artist-grouped folds."""

MAP_METHODS: Final = ("pca", "tsne", "umap")
"""How a similarity space is drawn in two dimensions (``ml.maps``): principal components, t-SNE, UMAP; each cached
per model version in ``space_maps``."""

TOP_TAG_MIN: Final = 0.1
"""A track's top tags (``track_tags.top_tags``, GIN-indexed) are its musicnn tags at least this probable."""
EMBEDDING_MODELS: Final = (MUSICNN,)
"""The embedding models of ``MUSICINDEX_EMBEDDING_MODELS`` by default, in order of preference (the first that can
answer for a track is the default space, the first with tags answers tag questions)."""
SPAN_WINDOW: Final = "window"
"""A span of audio: the analysis window (``MUSICINDEX_WINDOW_*``; 30 s from 30 s by default)."""
SPAN_TRACK: Final = "track"
"""A span of audio: the whole track from its start."""
SPANS: Final = (SPAN_WINDOW, SPAN_TRACK)
"""What audio an analysis stage or an embedding model reads (decoded once per track for all of them)."""
EMBEDDING_STAGE_PREFIX: Final = "embedding."
"""An embedding model's analysis stage is named ``embedding.<model>`` (its key in ``tracks.stage_versions``)."""

CLASSIFIER_INPUTS: Final = ("features", MUSICNN)
"""What a classifier (every kind but the cnn) can be trained on: the 43 features or the musicnn embedding."""

# --------------------------------------------------------------------------- spaces
SPACE_KIND: Final[Mapping[str, str]] = {
    "features": SCALER,
    "ann": "ann",
    "cnn": "cnn",
    MUSICNN: MUSICNN,
    "lda": "lda",
}
"""Built-in similarity space -> the model kind whose vectors it searches. An embedding model's space is its own
kind (``query.spaces.space_kind``)."""
TRAINED_SPACES: Final = ("features", "ann", "cnn", "lda")
"""The spaces of trained models (the scaler behind ``features``): every other space is an embedding model's."""
LABELLED_SPACES: Final = ("ann", "cnn", "lda")
"""Trained spaces learned from the genre labels: scored only on the tracks held out from their training."""
SPACES: Final = tuple(SPACE_KIND)
"""The built-in spaces; the embedding models of the registry add theirs (``pretrained.registry.space_names``)."""
KIND_SPACE: Final[Mapping[str, str]] = {kind: space for space, kind in SPACE_KIND.items()}
"""Model kinds that write embeddings -> their similarity space."""
FEATURES_SPACE: Final = "features"
"""The space that always exists (the 43 features, standardised; no model needed). The default space is musicnn
when it can answer (``query.spaces.default_space``), else this one."""

DESCRIPTOR_COLUMNS: Final = (
    "tempo",
    "tempo_confidence",
    "key",
    "mode",
    "key_confidence",
    "camelot",
    "loudness",
    "loudness_range",
    "true_peak",
    "replay_gain",
    "energy",
    "danceability",
    "moods",
)
"""The ``track_descriptors`` columns the ``descriptors`` stage writes (migration 0013; NULL: unknown)."""
MOODS: Final = ("calm", "energetic", "happy", "sad", "aggressive", "danceable")
"""The named moods of the descriptors (``audio.descriptors.mood``; the ``mood`` filter), in display order."""

# --------------------------------------------------------------------------- the library and its listeners
TRACK, ALBUM, ARTIST = "track", "album", "artist"
ITEM_TYPES: Final = (TRACK, ALBUM, ARTIST)
"""What a listener can star, rate and play (``annotations.item_type``)."""
COVER_KINDS: Final = ("file", "embedded")
"""Where an album's cover comes from: an image file beside its tracks, or a track's embedded picture."""
COVER_NAMES: Final = ("cover", "folder", "front", "albumart", "album")
"""Image files (any case, .jpg/.jpeg/.png/.webp/.gif) that are an album's cover, most preferred first."""
MOOD_TAGS: Final = (
    "Mellow", "chill", "chillout", "happy", "sad", "beautiful", "sexy", "party", "catchy", "easy listening",
)  # fmt: skip
"""The musicnn tags that are moods (the OpenSubsonic ``moods`` of a song), among its top tags."""
STARTING, PLAYING, PAUSED, STOPPED = "starting", "playing", "paused", "stopped"
PLAYBACK_STATES: Final = (STARTING, PLAYING, PAUSED, STOPPED)
"""The states a music app reports of a playback (OpenSubsonic ``reportPlayback``; ``play_events.state``)."""

# --------------------------------------------------------------------------- queues
QUEUE_INGEST: Final = "ingest"
QUEUE_EMBED: Final = "embed"
QUEUE_TRAIN: Final = "train"
QUEUES: Final = (QUEUE_INGEST, QUEUE_EMBED, QUEUE_TRAIN)


# --------------------------------------------------------------------------- rules
def hnsw_index_name(version_id: int) -> str:
    """Name of the partial HNSW index over one model version's embeddings."""
    return f"ix_emb_hnsw_v{int(version_id)}"


HNSW_INDEX_PATTERN: Final = "ix_emb_hnsw_v%"
"""SQL LIKE pattern matching every name :func:`hnsw_index_name` makes."""


@dataclass(frozen=True)
class GenreCandidate:
    """What the genre-model rule looks at: an active classifier's id, kind and metrics."""

    id: int
    kind: str
    metrics: Mapping[str, object]


def pick_genre_model(active: Iterable[GenreCandidate], preference: str = "auto") -> GenreCandidate | None:
    """The classifier that answers genre questions, among the ACTIVE versions.

    ``preference`` names a classifier kind (its active version, or None), or ``auto``: the
    active classifier with the highest held-out ``macro_f1``; versions without a numeric
    score rank last; ties go to the lowest id. The SQL function
    ``musicindex_genre_model_version`` implements the same rule (tested).
    """
    if preference not in GENRE_MODEL_PREFERENCES:
        raise ValueError(f"genre model {preference!r}: choose one of {', '.join(GENRE_MODEL_PREFERENCES)}")
    classifiers = [c for c in active if c.kind in CLASSIFIER_KINDS]
    if preference != "auto":
        return next((c for c in classifiers if c.kind == preference), None)
    if not classifiers:
        return None

    def rank(c: GenreCandidate) -> tuple[float, int]:
        score = c.metrics.get(GENRE_MODEL_METRIC)
        value = float(score) if isinstance(score, (int, float)) and not isinstance(score, bool) else float("-inf")
        return (value, -c.id)

    return max(classifiers, key=rank)
