"""``MusicIndex`` methods for training, the registry and the report (mixed into ``MusicIndex``)."""
from __future__ import annotations


class TrainingMixin:
    """Training-related methods of ``MusicIndex``; expects ``self.db`` and ``self.settings``."""
