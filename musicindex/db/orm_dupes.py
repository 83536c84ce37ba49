"""ORM models of the duplicates tables (migration 0014; issue 31, docs/duplicates.md): a track's fingerprint, its
index keys, the links between copies and versions, and the files a listener prefers. Imported by ``orm`` so
``Base.metadata`` holds them."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    SmallInteger,
    String,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import REAL
from sqlalchemy.orm import Mapped, mapped_column

from musicindex.db.orm import Base
from musicindex.vocab import DUPLICATE_KINDS


def _track_fk() -> ForeignKey:
    return ForeignKey("tracks.id", ondelete="CASCADE")


class TrackFingerprint(Base):
    """A track's audio fingerprint (``audio.fingerprint``), or why it has none; ``song``: its same-song key."""

    __tablename__ = "track_fingerprints"
    __table_args__ = (
        CheckConstraint("(data IS NULL) <> (error IS NULL)", name="ck_track_fingerprints_data_or_error"),
        Index("ix_track_fingerprints_song", "song", postgresql_where=text("song IS NOT NULL")),
    )

    track_id: Mapped[int] = mapped_column(BigInteger, _track_fk(), primary_key=True)
    version: Mapped[int] = mapped_column(SmallInteger)
    duration: Mapped[float | None] = mapped_column(REAL)
    data: Mapped[bytes | None] = mapped_column(LargeBinary)
    error: Mapped[str | None] = mapped_column(Text)
    song: Mapped[str | None] = mapped_column(Text)
    computed_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class FingerprintKey(Base):
    """A sampled triplet key of a track's fingerprint at frame ``t`` (what a lookup probes; no primary key)."""

    __tablename__ = "fingerprint_keys"
    __table_args__ = (
        Index("ix_fingerprint_keys_key", "key", "track_id", "t"),
        Index("ix_fingerprint_keys_track", "track_id"),
    )

    key: Mapped[int] = mapped_column(Integer)
    track_id: Mapped[int] = mapped_column(BigInteger, _track_fk())
    t: Mapped[int] = mapped_column(Integer)
    __mapper_args__ = {"primary_key": [key, track_id, t]}  # noqa: RUF012


class DuplicateLink(Base):
    """Two tracks (``a < b``) that hold one recording or one song, with a confidence in [0, 1] and why."""

    __tablename__ = "duplicate_links"
    __table_args__ = (
        CheckConstraint("a < b", name="ck_duplicate_links_order"),
        CheckConstraint(f"kind IN {DUPLICATE_KINDS}", name="ck_duplicate_links_kind"),
        CheckConstraint("confidence BETWEEN 0 AND 1", name="ck_duplicate_links_confidence"),
        Index("ix_duplicate_links_b", "b"),
    )

    a: Mapped[int] = mapped_column(BigInteger, _track_fk(), primary_key=True)
    b: Mapped[int] = mapped_column(BigInteger, _track_fk(), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), primary_key=True)
    confidence: Mapped[float] = mapped_column(REAL)
    why: Mapped[str] = mapped_column(Text, server_default="")
    found_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class DuplicateChoice(Base):
    """A file the listener chose as the preferred one of its groups (the latest choice in a group wins)."""

    __tablename__ = "duplicate_choices"

    track_id: Mapped[int] = mapped_column(BigInteger, _track_fk(), primary_key=True)
    chosen_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


__all__ = ["DuplicateChoice", "DuplicateLink", "FingerprintKey", "TrackFingerprint"]
