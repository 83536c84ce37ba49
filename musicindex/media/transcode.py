"""Transcoding in-process with FFmpeg's libraries (PyAV: they ship inside the wheel, no system ffmpeg), streamed
while it encodes.

:func:`plan` decides what a ``stream`` call gets (the original file, or which codec at which bitrate from which
second) from the client's ``format`` / ``maxBitRate`` / ``timeOffset``, the listener's and the server's maximum
bitrate and the file's own bitrate; it raises ``InvalidArgumentError`` for what it cannot accept.

:class:`Transcoder` (one per server) runs them: at most ``MUSICINDEX_TRANSCODE_MAX_STREAMS`` at once, a quarter of
them per listener (beyond it :class:`TranscodeBusyError` at once, never a wait), each in its own thread that decodes
the checked descriptor of the track (``OpenedTrackFile.dup_file``), resamples and encodes into a small bounded
queue of chunks (:data:`QUEUE_CHUNKS` x :data:`CHUNK_BYTES`: the memory of a stream). :class:`TranscodeResponse`
sends the chunks as they come; when the client goes away the job is cancelled and its thread stops at its next
packet, closing the FFmpeg contexts. A client that stops reading for :data:`STALL_SECONDS` ends its job too.

Before an answer starts, :meth:`Transcoder.start` waits for the first chunk: a file FFmpeg cannot read is then a
:class:`~musicindex.errors.TranscodeError` (the protocol's error), never a hung connection. A failure after bytes
were sent ends the stream cleanly (logged). With ``estimate_length`` the answer has a ``Content-Length`` of
duration x bitrate and exactly that many bytes (cut, or padded with zeros).

Finished transcodes of a whole song may be kept (``MUSICINDEX_TRANSCODE_CACHE_MB``) in ``home/transcodes``, keyed
by the file's identity and the codec and bitrate, and are then served from disk with HTTP Range.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import queue
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from starlette.requests import ClientDisconnect
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from musicindex.errors import InvalidArgumentError, TranscodeBusyError, TranscodeError
from musicindex.media.files import OpenedTrackFile, until_disconnect
from musicindex.media.transcode_cache import CACHE_FOLDER, CacheFile, TranscodeCache

if TYPE_CHECKING:
    from musicindex.config import Settings

log = logging.getLogger(__name__)

CHUNK_BYTES = 32 * 1024
"""Bytes per chunk handed to the answer (the first chunk goes out at :data:`FIRST_CHUNK_BYTES`)."""
FIRST_CHUNK_BYTES = 4 * 1024
QUEUE_CHUNKS = 8
"""Chunks a stream may hold ahead of its client: with :data:`CHUNK_BYTES`, 256 KiB per stream at most."""
STALL_SECONDS = 120.0
"""A client that reads nothing for this long ends its transcode (its slot is freed)."""
FIRST_CHUNK_SECONDS = 60.0
"""Longest wait for the first chunk before the call is answered with the protocol's error."""
MAX_BAD_PACKETS = 100
"""Packets in a row FFmpeg cannot decode before the file is given up as corrupt."""
RETRY_AFTER = 5
"""Seconds a client turned away by the cap is told to wait (``Retry-After``)."""
RAW = "raw"


@dataclass(frozen=True)
class Codec:
    """A target format: ``name`` as clients ask for it, FFmpeg's encoder and muxer, what the answer says."""

    name: str
    encoder: str
    container: str
    media_type: str
    suffix: str
    min_kbps: int = 32
    max_kbps: int = 320
    rate: int | None = None
    """A sample rate the encoder needs (Opus: 48 kHz); None: the source's when the encoder takes it."""
    muxer_options: Mapping[str, str] = field(default_factory=dict)
    encoder_options: Mapping[str, str] = field(default_factory=dict)


CODECS: dict[str, Codec] = {
    "mp3": Codec("mp3", "libmp3lame", "mp3", "audio/mpeg", "mp3"),
    "opus": Codec("opus", "libopus", "ogg", "audio/ogg", "opus", min_kbps=16, max_kbps=256, rate=48000,
                  encoder_options={"vbr": "constrained"}),
    "aac": Codec("aac", "aac", "adts", "audio/aac", "aac"),
    "m4a": Codec("m4a", "aac", "mp4", "audio/mp4", "m4a",
                 muxer_options={"movflags": "frag_keyframe+empty_moov+default_base_moof", "frag_duration": "1000000"}),
}  # fmt: skip
"""What ``format`` accepts besides ``raw``: MP3 (LAME), Opus in Ogg, AAC in ADTS, AAC in fragmented MP4."""


# --------------------------------------------------------------------------- what a call gets
@dataclass(frozen=True)
class Plan:
    """The original file (``codec`` None) or a transcode to ``codec`` at ``kbps`` from ``offset`` seconds."""

    codec: Codec | None
    kbps: int = 0
    offset: float = 0.0
    duration: float | None = None
    """The song's length in seconds (for the estimated length)."""

    @property
    def transcodes(self) -> bool:
        return self.codec is not None

    def estimated_bytes(self) -> int | None:
        """duration x bitrate of what is sent (None when the duration is unknown)."""
        if self.codec is None or self.duration is None:
            return None
        return max(0, math.ceil((self.duration - self.offset) * self.kbps * 1000 / 8))


def parse_offset(raw: str | None) -> float:
    """``timeOffset`` in seconds: a finite number >= 0 (``InvalidArgumentError`` otherwise); absent: 0."""
    if raw is None or raw.strip() == "":
        return 0.0
    try:
        value = float(raw)
    except ValueError:
        raise InvalidArgumentError(f"timeOffset must be a number of seconds >= 0, got {raw[:20]!r}") from None
    if not math.isfinite(value) or value < 0:
        raise InvalidArgumentError(f"timeOffset must be a number of seconds >= 0, got {raw[:20]!r}")
    return value


def plan(
    settings: Settings,
    *,
    fmt: str | None,
    max_kbps: int | None,
    offset: float,
    user_max_kbps: int | None,
    source_kbps: int | None,
    source_suffix: str | None,
    duration: float | None,
) -> Plan:
    """What ``stream`` sends.

    * ``fmt`` one of :data:`CODECS`: that codec, unless the file already is one at no more than the bitrate;
      ``raw``, absent or empty: the original file, unless a maximum (the call's ``max_kbps``, the listener's, the
      server's; 0 is no maximum) lies below the file's bitrate or ``offset`` > 0: then the server's default format
      (``MUSICINDEX_TRANSCODE_FORMAT``). ``raw`` ignores the call's own ``maxBitRate``, not the listener's or the
      server's maximum.
    * the bitrate: the lowest maximum, else ``MUSICINDEX_TRANSCODE_BITRATE``, within the codec's range (a
      maximum above it is the codec's highest: ``maxBitRate=99999999`` is 320 kbps MP3).
    * ``offset`` at or past the end of the song is an ``InvalidArgumentError``.
    """
    name = (fmt or "").strip().lower()
    if name and name != RAW and name not in CODECS:
        raise InvalidArgumentError(f"unknown format {name[:20]!r}; accepted: {RAW}, {', '.join(CODECS)}")
    if max_kbps is not None and max_kbps < 0:
        raise InvalidArgumentError(f"maxBitRate is kilobits per second >= 0 (0: no limit), got {max_kbps}")
    if duration is not None and offset > 0 and offset >= duration:
        raise InvalidArgumentError(f"timeOffset {offset:g} s is past the end of the song ({duration:.0f} s)")
    limits = [k for k in (user_max_kbps, settings.transcode_max_bitrate) if k]
    if name != RAW and max_kbps:
        limits.append(max_kbps)
    cap = min(limits) if limits else None
    if name in CODECS:
        codec = CODECS[name]
    elif (cap is not None and (source_kbps is None or source_kbps > cap)) or offset > 0:
        codec = CODECS[settings.transcode_format]
    else:
        return Plan(None, duration=duration)
    kbps = max(codec.min_kbps, min(codec.max_kbps, cap if cap is not None else settings.transcode_bitrate))
    same = (source_suffix or "").lower() in {codec.suffix, codec.name}
    if same and offset == 0 and source_kbps is not None and source_kbps <= kbps:
        return Plan(None, duration=duration)  # already what was asked, and no larger
    return Plan(codec, kbps, offset, duration)


# --------------------------------------------------------------------------- the running jobs
class _Cancelled(Exception):
    pass


_END = object()


class TranscodeJob:
    """One transcode: a thread that encodes into a bounded queue; :meth:`next_chunk` hands the bytes on."""

    def __init__(self, opened: OpenedTrackFile, job_plan: Plan, release: Callable[[], None],
                 cache_file: CacheFile | None = None):  # fmt: skip
        assert job_plan.codec is not None
        self.opened, self.plan, self.codec = opened, job_plan, job_plan.codec
        self._release = release
        self._cache_file = cache_file
        self._queue: queue.Queue[Any] = queue.Queue(QUEUE_CHUNKS)
        self._cancel = threading.Event()
        self._first = threading.Event()
        self._done = threading.Event()
        self._notify: Callable[[], None] = lambda: None
        self._pending = bytearray()
        self._sent_any = False
        self.error: BaseException | None = None
        self.bytes_out = 0
        self._thread = threading.Thread(target=self._run, name=f"transcode-{opened.track_id}", daemon=True)

    # ------------------------------------------------------------------ control
    def start(self, timeout: float = FIRST_CHUNK_SECONDS) -> None:
        """Start encoding and wait for the first chunk (or the end): raises ``TranscodeError`` when the file
        fails before any byte was made."""
        self._thread.start()
        if not self._first.wait(timeout):
            self.cancel()
            raise TranscodeError("the transcode did not start in time; try again")
        if self.error is not None and not self._sent_any:
            raise TranscodeError(f"this song cannot be transcoded: {_reason(self.error)}")

    def cancel(self) -> None:
        """Stop at the next packet (the thread closes its FFmpeg contexts and frees its slot)."""
        self._cancel.set()

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the thread to end; whether it did."""
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def attach(self, notify: Callable[[], None]) -> None:
        """``notify`` is called (from the encoding thread) whenever a chunk or the end is queued."""
        self._notify = notify

    def next_chunk(self) -> bytes | None:
        """The next chunk if one is ready, ``b""`` if none yet, None at the end."""
        try:
            item = self._queue.get_nowait()
        except queue.Empty:
            return b""
        if item is _END:
            self._queue.put_nowait(_END)  # stays the answer for later calls
            return None
        return bytes(item)

    # ------------------------------------------------------------------ the thread
    def write(self, data: bytes | memoryview) -> int:
        """The muxer's output (PyAV calls this): gathered into chunks and queued."""
        self._pending += data
        limit = CHUNK_BYTES if self._sent_any else FIRST_CHUNK_BYTES
        if len(self._pending) >= limit:
            self._flush()
        return len(data)

    def _flush(self) -> None:
        if not self._pending:
            return
        chunk, self._pending = bytes(self._pending), bytearray()
        if self._cache_file is not None:
            self._cache_file.write(chunk)
        self._put(chunk)
        self.bytes_out += len(chunk)
        self._sent_any = True
        self._first.set()

    def _put(self, item: Any) -> None:
        """Queue ``item``, waiting while the queue is full (the client is behind); a cancelled job raises
        ``_Cancelled`` (its end mark is dropped when nobody reads any more)."""
        deadline = time.monotonic() + STALL_SECONDS
        while True:
            if self._cancel.is_set():
                if item is _END:
                    with contextlib.suppress(queue.Full):
                        self._queue.put_nowait(item)
                    self._notify()
                    return
                raise _Cancelled()
            try:
                self._queue.put(item, timeout=0.25)
                break
            except queue.Full:
                if time.monotonic() > deadline:
                    log.info("transcode of track %s: the client read nothing for %.0f s; stopped",
                             self.opened.track_id, STALL_SECONDS)  # fmt: skip
                    self._cancel.set()
        self._notify()

    def _run(self) -> None:
        try:
            with self.opened.dup_file() as src:
                self._encode(src)
            self._flush()
            if self._cache_file is not None:
                self._cache_file.commit()
        except _Cancelled:
            pass
        except BaseException as exc:  # noqa: BLE001 - any FFmpeg or I/O failure ends this stream, never the server
            self.error = exc
            level = logging.INFO if isinstance(exc, TranscodeError) else logging.WARNING
            log.log(level, "transcode of track %s (%s) failed after %d bytes: %s: %s", self.opened.track_id,
                    self.opened.display_path, self.bytes_out, type(exc).__name__, exc)  # fmt: skip
        finally:
            if self._cache_file is not None:
                self._cache_file.discard()
            self.opened.close()
            self._release()
            self._first.set()
            self._done.set()
            self._put(_END)

    def _encode(self, src: IO[bytes]) -> None:
        import av

        codec, job_plan = self.codec, self.plan
        with av.open(src, mode="r") as inp:
            if not inp.streams.audio:
                raise TranscodeError("the file holds no audio stream")
            audio = inp.streams.audio[0]
            in_rate = audio.codec_context.sample_rate or 44100
            rate = codec.rate or _nearest_rate(codec.encoder, in_rate)
            layout = "mono" if _channels(audio) == 1 else "stereo"
            with av.open(self, mode="w", format=codec.container, options=dict(codec.muxer_options)) as out:
                ost: Any = out.add_stream(codec.encoder, rate=rate, layout=layout, options=dict(codec.encoder_options))
                ost.bit_rate = job_plan.kbps * 1000
                sample_format = ost.codec_context.codec.audio_formats[0].name
                resampler = av.AudioResampler(format=sample_format, layout=layout, rate=rate)
                if job_plan.offset > 0:
                    inp.seek(int(job_plan.offset * av.time_base), any_frame=False)
                samples = 0
                bad = 0

                def encode(frame: Any) -> None:
                    nonlocal samples
                    for rf in resampler.resample(frame):
                        rf.pts, rf.time_base = samples, Fraction(1, rate)
                        samples += rf.samples
                        for packet in ost.encode(rf):
                            out.mux(packet)

                for packet in inp.demux(audio):
                    if self._cancel.is_set():
                        raise _Cancelled()
                    try:
                        frames = packet.decode()
                    except av.FFmpegError:
                        bad += 1
                        if bad > MAX_BAD_PACKETS:
                            raise TranscodeError("the file is corrupt (nothing decodes)") from None
                        continue
                    bad = 0
                    for frame in frames:
                        if job_plan.offset > 0 and _ends_before(frame, job_plan.offset):
                            continue
                        encode(frame)
                if samples == 0 and not self._cancel.is_set():
                    raise TranscodeError("the file holds no audio that decodes")
                encode(None)
                for packet in ost.encode(None):
                    out.mux(packet)


def _ends_before(frame: Any, offset: float) -> bool:
    """Whether a decoded frame ends before ``offset`` seconds (frames after a seek that lie before the offset)."""
    if frame.time is None:
        return False
    return bool(frame.time + frame.samples / (frame.sample_rate or 44100) <= offset)


def _channels(audio: Any) -> int:
    try:
        return int(audio.codec_context.layout.nb_channels) or 2
    except (AttributeError, TypeError, ValueError):
        return 2


def _nearest_rate(encoder: str, rate: int) -> int:
    import av

    rates = av.codec.Codec(encoder, "w").audio_rates
    if not rates or rate in rates:
        return rate
    return min(rates, key=lambda r: (abs(r - rate), -r))


def _reason(exc: BaseException) -> str:
    """A short reason for a player: FFmpeg's words, never a path."""
    if isinstance(exc, TranscodeError):
        return str(exc)
    text = str(getattr(exc, "strerror", None) or type(exc).__name__)
    return text[:120]


# --------------------------------------------------------------------------- one per server
class Transcoder:
    """The transcodes of one server: the cap on how many run at once, the cache, the running jobs."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.max_streams = settings.transcode_max_streams
        self._slots = threading.BoundedSemaphore(max(1, self.max_streams))
        self._lock = threading.Lock()
        self._active = 0
        self._owners: dict[object, int] = {}
        self.per_owner = max(1, self.max_streams // 4)
        """Most transcodes one listener may run at once (a quarter of the slots): one account holding streams it
        never reads cannot take every slot."""
        self.cache = TranscodeCache(Path(settings.home) / CACHE_FOLDER, settings.transcode_cache_mb * 1024 * 1024)

    @property
    def active(self) -> int:
        """Transcodes running now."""
        return self._active

    def cached(self, opened: OpenedTrackFile, job_plan: Plan) -> OpenedTrackFile | None:
        """A finished transcode of the whole song from the cache (then serve it as a file), else None."""
        if job_plan.codec is None or job_plan.offset > 0:
            return None
        return self.cache.open(TranscodeCache.key(opened, job_plan.codec.name, job_plan.kbps), job_plan.codec.suffix)

    def start(self, opened: OpenedTrackFile, job_plan: Plan, owner: object = None) -> TranscodeJob:
        """A running job of ``job_plan`` over ``opened`` (which it closes), its first chunk made: raises
        ``TranscodeBusyError`` at once when every slot is taken or ``owner`` (a listener) holds
        :attr:`per_owner` already, ``TranscodeError`` when the file fails."""
        with self._lock:
            mine = self._owners.get(owner, 0)
            if owner is not None and mine >= self.per_owner:
                opened.close()
                raise TranscodeBusyError(
                    f"this account has {mine} transcodes running already; retry in {RETRY_AFTER} s",
                    retry_after=RETRY_AFTER,
                )
            if self.max_streams <= 0 or not self._slots.acquire(blocking=False):
                opened.close()
                raise TranscodeBusyError(
                    f"the server is transcoding {self.max_streams} streams already; retry in {RETRY_AFTER} s",
                    retry_after=RETRY_AFTER,
                )
            self._active += 1
            self._owners[owner] = mine + 1
        assert job_plan.codec is not None
        cache_file = None
        if job_plan.offset == 0:
            cache_file = self.cache.writer(TranscodeCache.key(opened, job_plan.codec.name, job_plan.kbps),
                                           job_plan.codec.suffix)  # fmt: skip
        job = TranscodeJob(opened, job_plan, lambda: self._release(owner), cache_file)
        job.start()
        return job

    def _release(self, owner: object) -> None:
        with self._lock:
            self._active -= 1
            left = self._owners.get(owner, 1) - 1
            if left > 0:
                self._owners[owner] = left
            else:
                self._owners.pop(owner, None)
        self._slots.release()


# --------------------------------------------------------------------------- HTTP
class TranscodeResponse(Response):
    """The chunks of a :class:`TranscodeJob` as they are made (chunked, or exactly ``length`` bytes); the job is
    cancelled when the client goes away or the answer ends. Without a job (``HEAD``): the headers alone."""

    def __init__(self, job: TranscodeJob | None, codec: Codec, *, length: int | None = None,
                 headers: Mapping[str, str] | None = None):  # fmt: skip
        self.job = job
        self.background = None
        self.status_code = 200
        self.length = length
        out = {"content-type": codec.media_type, "accept-ranges": "none", "cache-control": "no-store"}
        if length is not None:
            out["content-length"] = str(length)
        out.update(headers or {})
        self.raw_headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in out.items()]

    def __del__(self) -> None:  # an answer built but never sent must not leave its transcode running
        if self.job is not None:
            self.job.cancel()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
            if self.job is None:
                await send({"type": "http.response.body", "body": b"", "more_body": False})
                return
            try:
                await until_disconnect(lambda: self._send(send), receive)
            except OSError:
                raise ClientDisconnect() from None
        finally:
            if self.job is not None:
                self.job.cancel()

    async def _send(self, send: Send) -> None:
        assert self.job is not None
        job = self.job
        loop = asyncio.get_running_loop()
        ready = asyncio.Event()

        def notify() -> None:  # from the encoding thread
            with contextlib.suppress(RuntimeError):  # the loop is gone: nobody waits any more
                loop.call_soon_threadsafe(ready.set)

        job.attach(notify)
        sent = 0
        while True:
            ready.clear()  # before looking: a chunk queued from here on sets it again
            chunk = job.next_chunk()
            if chunk == b"":
                await ready.wait()
                continue
            if chunk is None:
                break
            if self.length is not None:
                chunk = chunk[: max(0, self.length - sent)]
            if chunk:
                sent += len(chunk)
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
        if self.length is not None and sent < self.length:  # the promised length is kept (zeros)
            await send({"type": "http.response.body", "body": bytes(self.length - sent), "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})
