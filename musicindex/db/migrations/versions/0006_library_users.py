"""the library (artists, albums, covers, search by word parts) and users (accounts, keys, stars, plays, queues,
playlists): one model for the web page and the Subsonic API

* ``artists`` and ``albums``: rows with stable ids. A track belongs to the album of its album artist (else its
  artist) and album tag; a track without an album tag to an album named after its folder (keyed by the folder, so
  two folders never merge). An album keeps its counters (``song_count``, ``duration``, ``size``: indexed tracks
  only), year, genre, ``created`` and where its cover comes from (a ``cover.*``/``folder.*``/``front.*`` image
  beside its files, or a track's embedded picture). Rows are never deleted: an album emptied by a re-tag keeps its
  id (and its stars) for when the tag comes back.
* ``tracks``: ``artist_id``, ``album_id``, ``album_artist``, ``track_no``, ``disc_no``, ``musicbrainz_id``,
  ``bit_rate`` (kbit/s), ``has_picture``, ``genres`` (the genre tags, GIN), ``search_text`` and
  ``search_grams`` (folded text and its trigram hashes, GIN: word parts, no case or accents; see
  ``musicindex.textnorm``; replacing the full-text index ``ix_tracks_search`` of 0003, which every registered
  file paid for), ``tags_version`` (NULL: the tags were read before this revision; the next ingest
  reads them again, without audio work); ``retryable`` (the failure came from the environment: a time limit, a
  lost worker, memory, an I/O error) and ``auto_retries`` (how often the next ingest retried it by itself: once).
* ``users`` (the password encrypted under a key kept outside the database; ``is_system``: the single local user
  of a server without accounts), ``api_keys`` (sha256 of the key), ``annotations`` (per user and item: starred,
  rating, play count, last played), ``play_queues``, ``playlists`` / ``playlist_tracks``, ``now_playing``.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

ITEM_TYPES = "('track', 'album', 'artist')"  # musicindex.vocab.ITEM_TYPES at this revision
COVER_KINDS = "('file', 'embedded')"


def _now() -> sa.TextClause:
    return sa.text("now()")


def upgrade() -> None:
    op.create_table(
        "artists",
        sa.Column("id", sa.BigInteger, primary_key=True),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("name_key", sa.Text, nullable=False, unique=True),
        sa.Column("sort_key", sa.Text, nullable=False),
        sa.Column("musicbrainz_id", sa.Text),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=_now()),
    )
    op.create_index("ix_artists_sort", "artists", ["sort_key", "id"])
    op.create_table(
        "albums",
        sa.Column("id", sa.BigInteger, primary_key=True),
        sa.Column("artist_id", sa.BigInteger, sa.ForeignKey("artists.id"), nullable=False),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("name_key", sa.Text, nullable=False),
        sa.Column("sort_key", sa.Text, nullable=False),
        sa.Column("folder", sa.Text),
        sa.Column("year", sa.Integer),
        sa.Column("genre", sa.Text),
        sa.Column("song_count", sa.Integer, nullable=False, server_default="0"),
        sa.Column("duration", sa.Double, nullable=False, server_default="0"),
        sa.Column("size", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("cover_kind", sa.String(8)),
        sa.Column("cover_path", sa.Text),
        sa.Column("cover_path_bytes", sa.LargeBinary),
        sa.Column("cover_track_id", sa.BigInteger, sa.ForeignKey("tracks.id", ondelete="SET NULL")),
        sa.Column("musicbrainz_id", sa.Text),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=_now()),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=_now()),
        sa.UniqueConstraint("artist_id", "name_key", name="uq_albums_artist_name"),
        sa.CheckConstraint(f"cover_kind IS NULL OR cover_kind IN {COVER_KINDS}", name="ck_albums_cover_kind"),
    )
    op.create_index("ix_albums_artist", "albums", ["artist_id"])
    op.create_index("ix_albums_sort", "albums", ["sort_key", "id"], postgresql_where=sa.text("song_count > 0"))
    op.create_index(
        "ix_albums_created", "albums", [sa.text("created_at DESC"), "id"], postgresql_where=sa.text("song_count > 0")
    )
    op.create_index("ix_albums_year", "albums", ["year", "id"], postgresql_where=sa.text("song_count > 0"))
    op.create_index("ix_albums_genre", "albums", ["genre", "id"], postgresql_where=sa.text("song_count > 0"))

    for column in (
        sa.Column("artist_id", sa.BigInteger, sa.ForeignKey("artists.id")),
        sa.Column("album_id", sa.BigInteger, sa.ForeignKey("albums.id")),
        sa.Column("album_artist", sa.Text),
        sa.Column("track_no", sa.Integer),
        sa.Column("disc_no", sa.Integer),
        sa.Column("musicbrainz_id", sa.Text),
        sa.Column("bit_rate", sa.Integer),
        sa.Column("has_picture", sa.Boolean),
        sa.Column("genres", postgresql.ARRAY(sa.Text)),
        sa.Column("search_text", sa.Text),
        sa.Column("search_grams", postgresql.ARRAY(sa.Integer)),
        sa.Column("tags_version", sa.SmallInteger),
        sa.Column("retryable", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("auto_retries", sa.SmallInteger, nullable=False, server_default="0"),
    ):
        op.add_column("tracks", column)
    # partial: a registered track (not analysed yet) has none of these, so registering a million files adds no
    # entry to them; the full-text index of 0003 goes (search reads search_grams now): registration stays cheap
    op.create_index("ix_tracks_album", "tracks", ["album_id", "disc_no", "track_no", "id"],
                    postgresql_where=sa.text("album_id IS NOT NULL"))  # fmt: skip
    op.create_index("ix_tracks_artist_id", "tracks", ["artist_id"], postgresql_where=sa.text("artist_id IS NOT NULL"))
    op.create_index("ix_tracks_genres", "tracks", ["genres"], postgresql_using="gin",
                    postgresql_where=sa.text("genres IS NOT NULL"))  # fmt: skip
    op.create_index("ix_tracks_search_grams", "tracks", ["search_grams"], postgresql_using="gin",
                    postgresql_where=sa.text("search_grams IS NOT NULL"))  # fmt: skip
    op.create_index("ix_tracks_unsearchable", "tracks", ["id"], postgresql_where=sa.text("search_text IS NULL"))
    op.drop_index("ix_tracks_search", table_name="tracks")

    op.create_table(
        "users",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("name_key", sa.Text, nullable=False, unique=True),
        sa.Column("is_admin", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("is_system", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("password_enc", sa.LargeBinary),
        sa.Column("session_epoch", sa.Integer, nullable=False, server_default="0"),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=_now()),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=_now()),
    )
    op.create_table(
        "api_keys",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
        sa.Column("key_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=_now()),
        sa.Column("last_used_at", sa.DateTime(timezone=True)),
    )
    op.create_table(
        "annotations",
        sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("item_type", sa.String(8), primary_key=True),
        sa.Column("item_id", sa.BigInteger, primary_key=True),
        sa.Column("starred_at", sa.DateTime(timezone=True)),
        sa.Column("rating", sa.SmallInteger),
        sa.Column("play_count", sa.Integer, nullable=False, server_default="0"),
        sa.Column("last_played", sa.DateTime(timezone=True)),
        sa.CheckConstraint(f"item_type IN {ITEM_TYPES}", name="ck_annotations_item_type"),
        sa.CheckConstraint("rating IS NULL OR rating BETWEEN 1 AND 5", name="ck_annotations_rating"),
    )
    op.create_index(
        "ix_annotations_starred",
        "annotations",
        ["user_id", "item_type", sa.text("starred_at DESC")],
        postgresql_where=sa.text("starred_at IS NOT NULL"),
    )
    op.create_index(
        "ix_annotations_played",
        "annotations",
        ["user_id", "item_type", sa.text("last_played DESC")],
        postgresql_where=sa.text("last_played IS NOT NULL"),
    )
    op.create_table(
        "play_queues",
        sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("track_ids", postgresql.ARRAY(sa.BigInteger), nullable=False, server_default="{}"),
        sa.Column("current_id", sa.BigInteger),
        sa.Column("position_ms", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False, server_default=_now()),
        sa.Column("changed_by", sa.Text),
    )
    op.create_table(
        "playlists",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("owner_id", sa.Integer, sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("comment", sa.Text),
        sa.Column("public", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=_now()),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False, server_default=_now()),
    )
    op.create_index("ix_playlists_owner", "playlists", ["owner_id"])
    op.create_table(
        "playlist_tracks",
        sa.Column("playlist_id", sa.Integer, sa.ForeignKey("playlists.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("position", sa.Integer, primary_key=True),
        sa.Column("track_id", sa.BigInteger, sa.ForeignKey("tracks.id", ondelete="CASCADE"), nullable=False),
    )
    op.create_index("ix_playlist_tracks_track", "playlist_tracks", ["track_id"])
    op.create_table(
        "now_playing",
        sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("client", sa.Text, primary_key=True),
        sa.Column("track_id", sa.BigInteger, sa.ForeignKey("tracks.id", ondelete="CASCADE"), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False, server_default=_now()),
    )


def downgrade() -> None:
    for table in ("now_playing", "playlist_tracks", "playlists", "play_queues", "annotations", "api_keys", "users"):
        op.drop_table(table)
    for index in ("ix_tracks_unsearchable", "ix_tracks_search_grams", "ix_tracks_genres", "ix_tracks_artist_id",
                  "ix_tracks_album"):  # fmt: skip
        op.drop_index(index, table_name="tracks")
    op.create_index(
        "ix_tracks_search", "tracks", [sa.text("musicindex_search_doc(title, artist, album, path)")],
        postgresql_using="gin",
    )  # fmt: skip
    for column in ("auto_retries", "retryable", "tags_version", "search_grams", "search_text", "genres", "has_picture", "bit_rate",
                   "musicbrainz_id", "disc_no", "track_no", "album_artist", "album_id", "artist_id"):  # fmt: skip
        op.drop_column("tracks", column)
    op.drop_table("albums")
    op.drop_table("artists")
