"""``MusicIndex`` query methods (mixed into ``MusicIndex``)."""
from __future__ import annotations


class QueryMixin:
    """Query methods of ``MusicIndex``; expects ``self.db`` and ``self.settings``."""
