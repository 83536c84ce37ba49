"""Exception hierarchy of musicindex.

Every error a user can cause has its own class and a message that says what to do.
Library code raises these; the CLI turns them into a message and a non-zero exit code
(``exit_code`` on each class).
"""

from __future__ import annotations


class MusicIndexError(Exception):
    """Base class of every musicindex error."""

    exit_code = 1


# --- configuration and services -------------------------------------------------
class ConfigError(MusicIndexError):
    """A setting (environment variable or argument) has an invalid value."""

    exit_code = 2


class ServiceError(MusicIndexError):
    """An embedded or external server could not be started or reached."""

    exit_code = 3


class DatabaseUnavailableError(ServiceError):
    """The PostgreSQL server named by the database URL does not answer."""


class BrokerUnavailableError(ServiceError):
    """The Redis broker named by the broker URL does not answer."""


class PgvectorMissingError(ServiceError):
    """The PostgreSQL server has no pgvector extension available."""


class SchemaOutdatedError(MusicIndexError):
    """The database schema is not at the Alembic head revision."""

    exit_code = 4


# --- audio ---------------------------------------------------------------------
class AudioError(MusicIndexError):
    """A file could not be analysed. The message is stored as the track's failure reason."""

    exit_code = 5


class UnsupportedFormatError(AudioError):
    """No decoder (libsndfile, audioread backend) can read this file."""


class CorruptAudioError(AudioError):
    """The file claims to be audio but cannot be decoded (truncated, garbage, empty)."""


class InvalidAudioError(AudioError):
    """The audio decodes but is unusable: too short, silent, non-finite samples, absurd header."""


class NotFingerprintableError(InvalidAudioError):
    """The audio decodes but gives no trustworthy fingerprint (too short, near-silent, too little structure);
    the message is the reason shown for a track that stays ungrouped (``musicindex.audio.fingerprint``)."""


# --- API arguments ---------------------------------------------------------------
class InvalidArgumentError(MusicIndexError, ValueError):
    """An API argument is out of range or of the wrong kind."""

    exit_code = 2


class TrackNotFoundError(MusicIndexError, LookupError):
    """No track with the given id or path is in the index."""

    exit_code = 6


class TrackFileError(MusicIndexError):
    """The file of an indexed track cannot be served (``musicindex.media``): one of the subclasses says why."""


class TrackFileMissingError(TrackFileError):
    """The track's file is gone, unreadable, or no regular file (a folder, a FIFO, a device)."""


class TrackFileOutsideError(TrackFileError):
    """The track's file now leads outside the ingested folders (a symlink swapped in after indexing); refused
    unless ``MUSICINDEX_FOLLOW_SYMLINKS`` allows links out of the folders."""


class TrackFileChangedError(TrackFileError):
    """The file at the track's path is not the one the index recorded (its size or mtime differ): re-ingest."""


class ItemNotFoundError(MusicIndexError, LookupError):
    """No album, artist, playlist, user or cover with the given id (the library's items other than tracks)."""

    exit_code = 6


class UserNotFoundError(ItemNotFoundError):
    """No account with that name (``musicindex user list`` lists them)."""


class PermissionDeniedError(MusicIndexError):
    """The account may not do this (an admin's command, another listener's playlist)."""

    exit_code = 2


class TooManyAttemptsError(PermissionDeniedError):
    """Too many failed attempts to prove a password or key from this address (for this account): nothing is
    checked until the cool-down ends (``retry_after`` seconds). HTTP 429 with ``Retry-After``."""

    def __init__(self, retry_after: int):
        self.retry_after = max(1, int(retry_after))
        super().__init__(f"too many attempts, retry in {self.retry_after} s")

    @property
    def http_headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after)}


class NotEnoughDataError(MusicIndexError):
    """Training was asked for with too little labelled data."""

    exit_code = 7


class ModelNotTrainedError(MusicIndexError):
    """A query needs a model that has not been trained yet."""

    exit_code = 8


class TrainingInProgressError(MusicIndexError):
    """Another training run is still alive (its heartbeat is fresh); runs never overlap."""

    exit_code = 10


class QueryTimeoutError(MusicIndexError):
    """A query ran longer than ``MUSICINDEX_QUERY_TIMEOUT`` and was cancelled."""

    exit_code = 12


class WorkerLostError(MusicIndexError):
    """The worker that was running a job stopped answering; the job will not finish."""

    exit_code = 11


class UnknownGenreError(InvalidArgumentError):
    """A genre that no label or model knows; the message lists the known ones."""


class ArtifactIntegrityError(MusicIndexError):
    """A stored model artifact does not match its recorded sha256; it is never loaded."""

    exit_code = 9


class PretrainedModelError(ArtifactIntegrityError):
    """The weights of a pretrained model (musicnn) are missing, corrupted, or do not fit its network."""


# --- transcoding (musicindex.media.transcode) ----------------------------------------
class TranscodeError(AudioError):
    """A song cannot be transcoded (a file FFmpeg cannot read, no audio in it); the message has no path."""


class LyricsError(AudioError):
    """Data that is not lyrics (an ``.lrc`` file or a tag too large, or binary): refused with the reason."""


class TranscodeBusyError(MusicIndexError):
    """Every transcoding slot is taken (``MUSICINDEX_TRANSCODE_MAX_STREAMS``); retry after ``retry_after`` s."""

    exit_code = 1

    def __init__(self, message: str, retry_after: int = 5):
        super().__init__(message)
        self.retry_after = retry_after
