"""Database layer: engine and sessions, schema checks, ORM models. Knows nothing of audio."""
from musicindex.db.models import (  # noqa: F401
    Base,
    ClusterAssignment,
    Embedding,
    IngestBatch,
    ModelVersion,
    Prediction,
    Spectrogram,
    Track,
    TrackFeatures,
    TrainingRun,
)
from musicindex.db.session import Database, connect  # noqa: F401
