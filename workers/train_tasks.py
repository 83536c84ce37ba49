"""Task wrappers for training and embedding (queues `train` and `embed`); they import TensorFlow lazily."""
from __future__ import annotations
