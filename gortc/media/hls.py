"""Live HLS from an RTMP publish: remuxed by PyAV, never re-encoded.

An :class:`HlsPackager` is the :class:`~gortc.media.stream_sink.StreamSink` of
one publish. It writes a sliding live playlist and its segments into one
directory, which the HTTP side serves as static files (:func:`served_file`
gives each name's content type and cache header).

How the work is split, and why:

- **The sink methods run on the event loop and stay cheap.** Each body is
  checked (:mod:`gortc.media.flv`: a few header bytes, and the H.264 NAL unit
  lengths), wrapped back in an FLV tag and appended to a bounded in-memory
  pipe. That is all: a few microseconds per frame.
- **One worker thread per stream does the FFmpeg work**: PyAV's ``flv``
  demuxer reads the pipe as if it were a file and every packet goes,
  untouched, into FFmpeg's ``hls`` muxer. The demuxer already knows what
  RTMP's bodies mean (AVC sequence header → extradata, composition time
  offsets → pts for B-frames, AudioSpecificConfig), and the muxer cuts
  segments at keyframes, keeps the sliding window, deletes old segments and
  writes ``#EXT-X-ENDLIST`` when closed, so none of that is reimplemented
  here. Remuxing costs 0.003-0.006 CPU-seconds per second of 1080p 6 Mb/s
  media (the worker; the sink calls add about 10 us per frame); FFmpeg
  releases the GIL while it works, and the thread waits (GIL released)
  while the pipe is empty, looking again every 0.1 s.
- **The pipe is bounded** (``max_buffered_bytes``, 32 MiB by default: half a
  minute at 8 Mb/s). A thread that falls that far behind (a stalled disk)
  will not catch up; the stream is ended with a reason instead of growing
  memory without bound.
- **The FLV header waits for the sequence headers.** FFmpeg's demuxer learns
  the streams as their first tags arrive and probes for more for
  ``analyzeduration`` of media (kept short, 0.2 s, and no frame-rate probing,
  so the first segment is not held back); a stream whose first tag came
  later than that would be left out (and PyAV's ``demux()`` does not expect
  streams to appear afterwards). So the tags are held until the
  first frame that will be kept, and then until every stream ``onMetaData``
  announced (``videocodecid``/``audiocodecid``; without those, both audio
  and video) has its sequence header, or one second of media has gone by:
  then the header is written, the held sequence headers, then the held
  frames, and the thread starts. A sequence header for a kind of stream
  that was not there at the start is refused (logged once): its frames are
  not packaged.
  OBS sends its metadata and both sequence headers before any frame, so in
  practice nothing waits.
- **Playable from the first keyframe.** Video frames before the first
  keyframe, and audio before it when there is video, are dropped, so the
  first segment starts with a picture. A stream that never sends a keyframe
  produces no segment (and no playlist): nothing to play, nothing crashes.
- **Failures end that stream only.** A malformed or unsupported body (not
  H.264/AAC), an overflowing pipe, or an error from FFmpeg sets
  :attr:`HlsPackager.reason`; the worker packages what came before a bad
  body (an overflowing pipe is discarded instead), closes the muxer (the
  playlist so far gets its ``#EXT-X-ENDLIST``) and exits. Later calls of
  the sink methods do nothing. Packets whose dts does not increase
  (a publisher's timestamp glitch) are dropped and counted rather than
  failing the stream, as FFmpeg's muxer would.

Segments are MPEG-TS by default: every HLS player takes them (Safari and
iOS natively, hls.js in every other browser, old smart TVs and set-top
boxes), H.264 + AAC need nothing newer, and FFmpeg's hls muxer does not make
the partial segments of low-latency HLS, for which fMP4 would be needed.
``segment_format="fmp4"`` (an ``init_*.mp4`` + ``.m4s``) is there for whoever
prefers CMAF (smaller segments, no transmuxing in hls.js).

The hls muxer's flags: ``delete_segments`` (the sliding window is also
what is on disk; FFmpeg keeps one extra segment, ``hls_delete_threshold``,
for a client that read the previous playlist), ``independent_segments``
(``#EXT-X-INDEPENDENT-SEGMENTS``: each segment starts with a keyframe, which
holds since segments are cut only at keyframes), ``temp_file`` (segments and
the playlist are written under ``.tmp`` and renamed, so the HTTP side never
serves half a file: :func:`served_file` refuses ``.tmp`` names).

**Keyframes decide the segment length.** Segments are cut at the first
keyframe after ``segment_seconds``, so a segment lasts at least one
keyframe interval and the delay behind the streamer grows with it. Tell
streamers: OBS, Settings > Output, Output Mode "Advanced", Streaming tab,
Keyframe Interval = 1 s (2 s is fine too: 2 s segments, a few seconds more
delay). 0 ("auto") leaves it to the encoder: x264 then waits up to 250
frames between keyframes (8 s at 30 fps, 10 s at 25), hence segments that
long and a delay of 20-30 s behind the streamer; hardware encoders' "auto"
differs between them and OBS versions, so set it explicitly.
:attr:`HlsPackager.keyframe_interval_ms` reports what the publisher sends
(and a warning is logged once when it is over 2 s and twice the target).

Names: the playlist is always ``index.m3u8`` (served ``no-cache``); segments
are ``seg_<publish id>_00000.ts``, ``..._00001.ts`` ... (and ``init_<publish
id>.mp4`` for fMP4), where the publish id is random unless given, so a
segment's URL never names other bytes, not even after the same room is
published again at the same URL: they are served as immutable. The
directory must be empty at the start (the constructor refuses one that is
not: the muxer would mix its files with another publish's). What is left after
:meth:`HlsPackager.aclose` (the last playlist, with ``#EXT-X-ENDLIST``, and
its segments) is for the caller to delete when viewers no longer need it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import av

from gortc.media import flv

log = logging.getLogger(__name__)

PLAYLIST_NAME = "index.m3u8"
THREAD_NAME_PREFIX = "hls-packager"
DEFAULT_MAX_BUFFERED_BYTES = 32 * 1024 * 1024
# Media held before the FLV header is written, waiting for a sequence header
# that onMetaData announced (see the module's docstring).
STARTUP_WAIT_MS = 1000
# FFmpeg's demuxer probes this much media for streams not seen yet.
ANALYZE_DURATION_US = 200_000

# The demuxer's reads: a second of 2 Mb/s video in one call.
READ_BUFFER_SIZE = 256 * 1024

SegmentFormat = Literal["mpegts", "fmp4"]
_SEGMENT_EXTENSIONS: dict[str, str] = {"mpegts": "ts", "fmp4": "m4s"}


@dataclass(frozen=True, slots=True)
class ServedFile:
    """The headers to serve one file of a packager's directory with."""

    content_type: str
    cache_control: str


# Segment names are unique within a publish's directory (which is new for
# each publish) and never rewritten: cacheable for good. "private": live
# rooms may be members-only; make it "public" behind a CDN that should cache.
SEGMENT_CACHE_CONTROL = "private, max-age=86400, immutable"
# The live playlist changes every segment: always revalidated.
PLAYLIST_CACHE_CONTROL = "no-cache"

_PUBLISH_ID = re.compile(r"[0-9A-Za-z]{1,32}")
_SERVED_NAME = re.compile(
    r"(?P<playlist>index\.m3u8)|(?P<init>init_[0-9A-Za-z]{1,32}\.mp4)"
    r"|seg_[0-9A-Za-z]{1,32}_\d{5,10}\.(?P<segment>ts|m4s)"
)
_SEGMENT_TYPES = {"ts": "video/mp2t", "m4s": "video/iso.segment"}


def served_file(name: str) -> ServedFile | None:
    """How to serve ``name`` from a packager's directory, or None for a name
    that is not a playlist or segment (a ``.tmp`` file being written, a path
    with a separator, anything else): the HTTP side answers 404 for those."""
    match = _SERVED_NAME.fullmatch(name)
    if match is None:
        return None
    if match["playlist"]:
        return ServedFile("application/vnd.apple.mpegurl", PLAYLIST_CACHE_CONTROL)
    if match["init"]:
        return ServedFile("video/mp4", SEGMENT_CACHE_CONTROL)
    return ServedFile(_SEGMENT_TYPES[match["segment"]], SEGMENT_CACHE_CONTROL)


def _ffmpeg_message(exc: av.FFmpegError) -> str:
    """FFmpeg's error, and what it logged last if PyAV kept it (without the
    file name: the reason is shown to people who do not need our paths)."""
    message = exc.strerror or type(exc).__name__
    if exc.log and exc.log[1] is not None:
        message += f" ({exc.log[1][2].strip()})"
    return message


class _Pipe:
    """Bytes from the event loop to the worker's demuxer: a read-only,
    unseekable file object (all PyAV needs is ``read``), bounded in bytes.

    The reader is not woken for every tag (80 a second at 30 fps with AAC,
    a thread switch each): it looks again every ``POLL_SECONDS`` while the
    pipe is empty, and is woken at once only by a close or by ``WAKE_BYTES``
    waiting. A tenth of a second of delay is nothing next to a segment's."""

    POLL_SECONDS = 0.1
    WAKE_BYTES = 256 * 1024

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._chunks: deque[bytes] = deque()
        self._offset = 0  # into the first chunk
        self._size = 0
        self._closed = False
        self._condition = threading.Condition()

    def write(self, data: bytes) -> bool:
        """Queue ``data``; False (and nothing queued) if it would go over the
        limit. Writes after :meth:`close` are ignored."""
        with self._condition:
            if self._closed:
                return True
            if self._size + len(data) > self._limit:
                return False
            self._chunks.append(data)
            self._size += len(data)
            if self._size >= self.WAKE_BYTES:
                self._condition.notify()
            return True

    def close(self, *, discard: bool = False) -> None:
        """No more data: the reader gets what is queued (none with ``discard``),
        then end of file."""
        with self._condition:
            self._closed = True
            if discard:
                self._chunks.clear()
                self._offset = self._size = 0
            self._condition.notify_all()

    def read(self, size: int = -1) -> bytes:
        """Up to ``size`` bytes (at least one), blocking until there are some;
        b"" at the end. Called by FFmpeg from the worker thread."""
        with self._condition:
            while not self._chunks and not self._closed:
                self._condition.wait(self.POLL_SECONDS)
            if size < 0:
                size = self._size
            parts: list[bytes] = []
            wanted = size
            while self._chunks and wanted > 0:
                head = self._chunks[0]
                available = len(head) - self._offset
                if wanted >= available:
                    parts.append(head[self._offset :] if self._offset else head)
                    self._chunks.popleft()
                    self._offset = 0
                    wanted -= available
                else:
                    parts.append(head[self._offset : self._offset + wanted])
                    self._offset += wanted
                    wanted = 0
            self._size -= size - wanted
            return parts[0] if len(parts) == 1 else b"".join(parts)


class HlsPackager:
    """One publish's live HLS (a :class:`~gortc.media.stream_sink.StreamSink`).

    Create it on the event loop, for a new, empty ``output_dir``; hand it the
    ingest's media; ``await wait_playable()`` to know when the playlist has a
    first segment; ``await aclose()`` when the publish ends (or at shutdown),
    which also waits for the worker thread. See the module's docstring.
    """

    def __init__(
        self,
        output_dir: Path,
        *,
        segment_seconds: float = 1.0,
        playlist_segments: int = 6,
        segment_format: SegmentFormat = "mpegts",
        max_buffered_bytes: int = DEFAULT_MAX_BUFFERED_BYTES,
        name: str = "",
        publish_id: str | None = None,
    ) -> None:
        if segment_format not in _SEGMENT_EXTENSIONS:
            raise ValueError(f"segment_format must be mpegts or fmp4, not {segment_format!r}")
        if segment_seconds <= 0 or playlist_segments < 1:
            raise ValueError("segment_seconds and playlist_segments must be positive")
        if publish_id is not None and not _PUBLISH_ID.fullmatch(publish_id):
            raise ValueError("publish_id must be 1-32 letters and digits")
        self._loop = asyncio.get_running_loop()
        output_dir.mkdir(parents=True, exist_ok=True)
        if any(output_dir.iterdir()):
            raise ValueError(f"{output_dir} is not empty: each publish needs an empty directory")
        self.output_dir = output_dir
        self.playlist_path = output_dir / PLAYLIST_NAME
        self.name = name or output_dir.name
        # In every segment's name: unique URLs across publishes (see above).
        self.publish_id = publish_id or secrets.token_hex(4)
        self._segment_seconds = segment_seconds
        self._playlist_segments = playlist_segments
        self._segment_format: SegmentFormat = segment_format
        self._pipe = _Pipe(max_buffered_bytes)
        self._max_buffered_bytes = max_buffered_bytes
        self._lock = threading.Lock()  # guards _reason, set from either side
        self._reason: str | None = None
        self._ended = False
        self._playable = asyncio.Event()
        self._finished = asyncio.Event()
        self._thread: threading.Thread | None = None
        # Before the FLV header is written (see _media and _start).
        self._held: list[bytes] = []
        self._held_configs: list[bytes] = []  # sequence headers: written first
        self._held_bytes = 0
        # The streams onMetaData announced (None: no metadata said).
        self._announced: set[str] | None = None
        self._first_held_ms: int | None = None
        # The input seen so far.
        self._video_config = False
        self._audio_config = False
        self._nal_length_size = 0
        self._keyframe_seen = False
        self._started = False
        self._header_video = False
        self._header_audio = False
        self._last_keyframe_ms: int | None = None
        self._warned: set[str] = set()
        self.keyframe_interval_ms: int | None = None
        self.dropped_packets = 0  # by the worker: dts not increasing
        self.worker_cpu_seconds = 0.0  # the worker thread's, once it is done

    # -- state ---------------------------------------------------------------

    @property
    def failed(self) -> bool:
        return self._reason is not None

    @property
    def reason(self) -> str | None:
        """Why the stream was ended early (None while it is fine, and after a
        normal end)."""
        return self._reason

    @property
    def playable(self) -> bool:
        """The playlist exists with at least one segment."""
        return self._playable.is_set()

    @property
    def finished(self) -> bool:
        """Nothing more will be written (the worker thread, if any, is done)."""
        return self._finished.is_set()

    async def wait_playable(self) -> bool:
        """Wait until the playlist has its first segment (True), or until the
        packager finished without one (False: failed, or the publish ended
        before a keyframe). Wrap it in ``asyncio.timeout`` as needed."""
        if self._playable.is_set() or self._finished.is_set():
            return self._playable.is_set()
        waits = {
            asyncio.ensure_future(self._playable.wait()),
            asyncio.ensure_future(self._finished.wait()),
        }
        try:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for wait in waits:
                wait.cancel()
        return self._playable.is_set()

    async def wait_finished(self) -> None:
        """Wait until the worker thread is done (after :meth:`end`, or a failure)."""
        await self._finished.wait()
        if self._thread is not None:
            # Its last act was to schedule _thread_done: it is ending now.
            self._thread.join()

    async def aclose(self) -> None:
        """End the stream (if the ingest has not) and wait for the worker:
        the playlist then ends with ``#EXT-X-ENDLIST``."""
        self.end()
        await self.wait_finished()

    # -- StreamSink ----------------------------------------------------------

    def metadata(self, values: dict[str, object]) -> None:
        if self._started or self._ended:
            return
        announced = {
            kind
            for key, kind in (("videocodecid", "video"), ("audiocodecid", "audio"))
            if values.get(key) not in (None, False, "")
        }
        if announced:
            self._announced = announced

    def video(self, timestamp_ms: int, body: bytes) -> None:
        if self._ended or self._reason is not None:
            return
        try:
            info = flv.inspect_video(body, self._nal_length_size)
        except flv.FlvError as exc:
            self._fail(str(exc))
            return
        if info.packet is flv.Packet.CONFIG:
            if self._started and not self._header_video:
                self._warn_once("late-video", "video started after the stream: not packaged")
                return
            self._video_config = True
            self._nal_length_size = info.nal_length_size
            self._send(flv.TAG_VIDEO, timestamp_ms, body, config=True)
            return
        if info.packet is not flv.Packet.FRAME:
            return
        if not self._video_config:
            self._warn_once("no-avc-config", "H.264 frames before their sequence header: dropped")
            return
        if self._started and not self._header_video:
            return
        if info.keyframe:
            self._keyframe(timestamp_ms)
        elif not self._keyframe_seen:
            return
        self._media(flv.TAG_VIDEO, timestamp_ms, body)

    def audio(self, timestamp_ms: int, body: bytes) -> None:
        if self._ended or self._reason is not None:
            return
        try:
            packet = flv.inspect_audio(body)
        except flv.FlvError as exc:
            self._fail(str(exc))
            return
        if packet is flv.Packet.CONFIG:
            if self._started and not self._header_audio:
                self._warn_once("late-audio", "audio started after the stream: not packaged")
                return
            self._audio_config = True
            self._send(flv.TAG_AUDIO, timestamp_ms, body, config=True)
            return
        if packet is not flv.Packet.FRAME:
            return
        if not self._audio_config:
            self._warn_once("no-aac-config", "AAC frames before their sequence header: dropped")
            return
        if self._started and not self._header_audio:
            return
        if self._video_config and not self._keyframe_seen:
            return  # the first segment starts at the first keyframe
        self._media(flv.TAG_AUDIO, timestamp_ms, body)

    def end(self) -> None:
        if self._ended:
            return
        self._ended = True
        if not self._started and self._reason is None and self._first_held_ms is not None:
            self._start()  # a publish shorter than the start-up wait
        self._held_configs.clear()
        self._held.clear()
        self._pipe.close()
        if self._thread is None:
            self._finished.set()

    # -- event loop side -----------------------------------------------------

    def _keyframe(self, timestamp_ms: int) -> None:
        self._keyframe_seen = True
        if self._last_keyframe_ms is not None and timestamp_ms > self._last_keyframe_ms:
            interval = timestamp_ms - self._last_keyframe_ms
            self.keyframe_interval_ms = interval
            if interval > max(2000, 2000 * self._segment_seconds) + 100:
                self._warn_once(
                    "keyframes",
                    f"keyframes {interval / 1000:.1f} s apart: segments are that long "
                    "(set the encoder's keyframe interval to 1 or 2 s)",
                )
        self._last_keyframe_ms = timestamp_ms

    def _media(self, kind: int, timestamp_ms: int, body: bytes) -> None:
        if self._started:
            self._send(kind, timestamp_ms, body)
            return
        if self._first_held_ms is None:
            self._first_held_ms = timestamp_ms
        self._send(kind, timestamp_ms, body)
        if self._reason is not None:
            return
        have = {"video"} if self._video_config else set()
        if self._audio_config:
            have.add("audio")
        expected = self._announced if self._announced is not None else {"video", "audio"}
        if expected <= have or timestamp_ms - self._first_held_ms >= STARTUP_WAIT_MS:
            self._start()

    def _send(self, kind: int, timestamp_ms: int, body: bytes, *, config: bool = False) -> None:
        try:
            tag = flv.encode_tag(kind, timestamp_ms, body)
        except flv.FlvError as exc:
            self._fail(str(exc))
            return
        if not self._started:
            # (The limit leaves room for the FLV header _start writes first.)
            if self._held_bytes + len(tag) + flv.HEADER_SIZE + 4 > self._max_buffered_bytes:
                self._fail("too much media before the stream could start")
                return
            (self._held_configs if config else self._held).append(tag)
            self._held_bytes += len(tag)
        elif not self._pipe.write(tag):
            self._fail(
                f"the HLS packager fell more than {self._max_buffered_bytes} bytes behind "
                "the publisher (the server is overloaded or its disk too slow)",
                discard=True,
            )

    def _start(self) -> None:
        """Write the FLV header and the held tags, sequence headers first (so
        the demuxer has every stream at once, even when one kind's frames began
        well before the other's), and start the worker."""
        self._started = True
        self._header_video = self._video_config
        self._header_audio = self._audio_config
        self._pipe.write(flv.file_header(audio=self._header_audio, video=self._header_video))
        for tag in [*self._held_configs, *self._held]:
            self._pipe.write(tag)  # within the limit: _send counted them
        self._held_configs.clear()
        self._held.clear()
        self._held_bytes = 0
        self._thread = threading.Thread(
            target=self._run, name=f"{THREAD_NAME_PREFIX}-{self.name}", daemon=True
        )
        self._thread.start()

    def _fail(self, reason: str, *, discard: bool = False) -> None:
        """End the stream for ``reason``: the worker packages what came before
        (or nothing more, with ``discard``), then closes the playlist."""
        if not self._set_reason(reason):
            return
        self._ended = True
        self._held_configs.clear()
        self._held.clear()
        self._pipe.close(discard=discard)
        if self._thread is None:
            self._finished.set()

    def _set_reason(self, reason: str) -> bool:
        with self._lock:
            if self._reason is not None:
                return False
            self._reason = reason
        log.warning("live stream %s ended: %s", self.name, reason)
        return True

    def _warn_once(self, key: str, message: str) -> None:
        if key not in self._warned:
            self._warned.add(key)
            log.warning("live stream %s: %s", self.name, message)

    def _call_soon(self, callback: Callable[[], object]) -> None:
        # A closed loop has nobody waiting any more.
        with contextlib.suppress(RuntimeError):
            self._loop.call_soon_threadsafe(callback)

    def _thread_done(self) -> None:
        self._ended = True
        self._finished.set()

    # -- worker thread -------------------------------------------------------

    def _run(self) -> None:
        try:
            self._remux()
        except av.FFmpegError as exc:
            log.debug("live stream %s: FFmpeg failed", self.name, exc_info=True)
            self._set_reason(f"remuxing failed: {_ffmpeg_message(exc)}")
        except Exception as exc:
            log.exception("live stream %s: remuxing failed", self.name)
            self._set_reason(f"remuxing failed: {exc}")
        finally:
            self._pipe.close(discard=True)  # the loop's later writes are dropped
            self.worker_cpu_seconds = time.thread_time()
            self._call_soon(self._thread_done)

    def _hls_options(self) -> dict[str, str]:
        extension = _SEGMENT_EXTENSIONS[self._segment_format]
        options = {
            "hls_time": f"{self._segment_seconds:g}",
            "hls_list_size": str(self._playlist_segments),
            "hls_flags": "delete_segments+independent_segments+temp_file",
            "hls_segment_type": self._segment_format,
            "hls_segment_filename": str(
                self.output_dir / f"seg_{self.publish_id}_%05d.{extension}"
            ),
        }
        if self._segment_format == "fmp4":
            options["hls_fmp4_init_filename"] = f"init_{self.publish_id}.mp4"
        return options

    def _remux(self) -> None:
        demuxer_options = {"analyzeduration": str(ANALYZE_DURATION_US), "fpsprobesize": "0"}
        with av.open(
            self._pipe, "r", format="flv", options=demuxer_options, buffer_size=READ_BUFFER_SIZE
        ) as source:
            streams = [s for s in source.streams if s.type in ("video", "audio")]
            playable = False
            if not streams:
                self._set_reason("FFmpeg found no audio or video in the stream")
                return
            with av.open(
                str(self.playlist_path), "w", format="hls", options=self._hls_options()
            ) as output:
                outputs = {s.index: output.add_stream_from_template(s) for s in streams}
                last_dts: dict[int, int] = {}
                for packet in source.demux(streams):
                    if packet.dts is None:
                        continue  # the demuxer's final flush packets
                    index = packet.stream.index
                    previous = last_dts.get(index)
                    if previous is not None and packet.dts <= previous:
                        self.dropped_packets += 1
                        continue
                    last_dts[index] = packet.dts
                    packet.stream = outputs[index]
                    output.mux(packet)
                    if not playable and os.path.exists(self.playlist_path):
                        playable = True
                        self._call_soon(self._playable.set)
        # Closing the muxer wrote the last segment: a publish shorter than one
        # segment still leaves a (finished) playlist to play.
        if not playable and os.path.exists(self.playlist_path):
            self._call_soon(self._playable.set)
