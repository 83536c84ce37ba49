"""Database layer: engine and sessions, schema checks, the ORM, migrations. Knows nothing of audio."""

from musicindex.db.orm import (
    Base,
    ClusterAssignment,
    Embedding,
    IngestBatch,
    ModelVersion,
    Prediction,
    Spectrogram,
    Track,
    TrackFeatures,
    TrackTag,
    TrainingRun,
)
from musicindex.db.session import Database

__all__ = [
    "Base",
    "ClusterAssignment",
    "Database",
    "Embedding",
    "IngestBatch",
    "ModelVersion",
    "Prediction",
    "Spectrogram",
    "Track",
    "TrackFeatures",
    "TrackTag",
    "TrainingRun",
]
