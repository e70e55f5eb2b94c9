"""The RTMP ingest server: OBS or ffmpeg publish to
``rtmp://host:port/<app>/<stream key>`` and the media go to a
:class:`~gortc.media.stream_sink.StreamSink`.

One asyncio server on one port takes any number of publishers (up to
``max_connections``), each connection an :class:`asyncio.Protocol` that
feeds what it receives to the handshake, then to a
:class:`~gortc.media.rtmp.chunks.ChunkReader`, and handles the messages as
they come out, in the event loop's callback: no task per connection and no
thread. Only ``publish`` waits (for the :class:`PublishAuthorizer`); reading
is paused meanwhile, and the client waits for the answer anyway.

The commands a publisher sends, and the answers (as nginx-rtmp gives them):
``connect`` (only to the configured app) -> Window Acknowledgement Size, Set
Peer Bandwidth, Set Chunk Size, ``_result`` NetConnection.Connect.Success;
``releaseStream`` -> ``_result``; ``FCPublish`` -> ``onFCPublish``;
``createStream`` -> ``_result`` with a stream id; ``publish`` -> Stream Begin
and ``onStatus`` NetStream.Publish.Start, or NetStream.Publish.BadName with
the authorizer's reason, after which the connection is closed (ffmpeg prints
"Server error: <reason>" and exits; OBS's librtmp closes on BadName and
shows its "could not access the stream key" message); ``FCUnpublish``,
``deleteStream``, ``closeStream`` end the publish.

Whatever happens on a connection stays there: a protocol error, a limit
passed, a sink or authorizer raising closes that connection (logged with the
peer's address, never the stream key) and the sink's :meth:`end` is called
exactly once, however the publish ends.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Final, Protocol, cast

from gortc.media.rtmp import amf0
from gortc.media.rtmp.chunks import (
    ACKNOWLEDGEMENT,
    AGGREGATE,
    AUDIO,
    COMMAND_AMF0,
    COMMAND_AMF3,
    DATA_AMF0,
    DATA_AMF3,
    MAX_CHUNK_SIZE,
    MAX_CHUNK_STREAMS,
    MAX_MESSAGE_SIZE,
    PING_REQUEST,
    PING_RESPONSE,
    PROTOCOL_CONTROL_CSID,
    SET_PEER_BANDWIDTH,
    STREAM_BEGIN,
    USER_CONTROL,
    VIDEO,
    WINDOW_ACK_SIZE,
    ChunkReader,
    ChunkWriter,
    RtmpMessage,
    acknowledgement,
    set_peer_bandwidth,
    user_control,
    window_ack_size,
)
from gortc.media.rtmp.errors import PublishRefused, RtmpProtocolError
from gortc.media.rtmp.handshake import ServerHandshake
from gortc.media.stream_sink import StreamSink

log = logging.getLogger(__name__)

# The chunk streams our messages go on (as nginx-rtmp and ffmpeg use them).
_COMMAND_CSID: Final = 3
_STATUS_CSID: Final = 5
# Message streams a connection may create; publishers use one.
_MAX_STREAMS: Final = 8
_MAX_STREAM_NAME: Final = 1024
# How long a closed connection may take to flush its last answer (the
# refusal) before it is cut.
_FLUSH_SECONDS: Final = 2.0


class PublishAuthorizer(Protocol):
    """Decides whether a publisher may go live, and where its media go."""

    async def start_publishing(self, app: str, stream_name: str, peer: str) -> StreamSink:
        """Called on ``publish`` (``stream_name`` is the stream key as sent,
        query string included; ``peer`` is "address:port"). Returns the sink
        the stream goes to; its ``end()`` is called exactly once when the
        publish ends, however it ends. Raises PublishRefused (its reason is
        shown to the publisher).

        The sink's methods run in the event loop's read callback: they must
        be quick and must not block. One may raise PublishRefused to cut the
        publisher off (say, a codec it cannot package); anything else it
        raises is logged as a bug, and cuts the publisher off too."""
        ...


@dataclass(frozen=True, slots=True)
class RtmpSettings:
    app: str = "live"  # the only application publishers may connect to
    max_connections: int = 100  # more are closed at once
    # From the TCP accept until ``publish`` (handshake, connect,
    # createStream), and again after an unpublish; the authorizer gets as
    # long again.
    setup_timeout: float = 10.0
    # Publishing with no audio or video this long ends the publish.
    stall_timeout: float = 10.0
    max_message_size: int = MAX_MESSAGE_SIZE
    max_chunk_size: int = MAX_CHUNK_SIZE
    max_chunk_streams: int = MAX_CHUNK_STREAMS
    # What we send with; and how often the client should acknowledge.
    chunk_size: int = 4096
    window_ack_size: int = 5_000_000
    # Answers a client does not read may pile up to this much.
    max_write_buffer: int = 1 << 20


class RtmpServer:
    """Listens on ``host``:``port`` (port 0: a free one, see :attr:`port`).
    :meth:`start` binds (raises OSError when it cannot); :meth:`stop` ends
    every publish (each sink's ``end()``) and closes every connection."""

    def __init__(
        self,
        authorizer: PublishAuthorizer,
        *,
        host: str | None = "127.0.0.1",
        port: int = 1935,
        settings: RtmpSettings | None = None,
    ) -> None:
        self.authorizer = authorizer
        self.settings = settings or RtmpSettings()
        self._host = host
        self._port = port
        self._server: asyncio.Server | None = None
        self.connections: set[_RtmpConnection] = set()  # read-only outside
        self.tasks: set[asyncio.Task[None]] = set()  # the authorizer calls under way

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: _RtmpConnection(self), self._host, self._port, reuse_address=True
        )
        log.info("RTMP ingest listening on port %d", self.port)

    @property
    def port(self) -> int:
        if self._server is None or not self._server.sockets:
            raise RuntimeError("the RTMP server is not listening")
        return int(self._server.sockets[0].getsockname()[1])

    @property
    def publishing(self) -> int:
        """Connections publishing now."""
        return sum(1 for connection in self.connections if connection.publication is not None)

    def make_room(self) -> None:
        """Every slot is taken: a connection still setting up (not
        publishing, not waiting for the authorizer) is cut, so that a crowd
        of silent or slow clients (slowloris) cannot lock a publisher out.
        Those still in the handshake go first (a real publisher is through
        it in one round trip), the longest-waiting first."""
        idle = [c for c in self.connections if c.setting_up]
        if idle:
            oldest = min(idle, key=lambda c: (c.shaken_hands, c.setting_up_since))
            log.warning("RTMP: %s cut to make room for a new connection", oldest.peer)
            oldest.shut_down("cut to make room for a new connection")
            self.connections.discard(oldest)  # connection_lost comes later

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for connection in list(self.connections):
            connection.shut_down("the server is stopping")
        for task in list(self.tasks):
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None


class _Publication:
    __slots__ = ("ended", "sink", "stream_id")

    def __init__(self, sink: StreamSink, stream_id: int) -> None:
        self.sink = sink
        self.stream_id = stream_id
        self.ended = False

    def end(self) -> None:
        if self.ended:
            return
        self.ended = True
        try:
            self.sink.end()
        except Exception:
            log.exception("RTMP: a stream sink failed to end")


class _RtmpConnection(asyncio.Protocol):
    def __init__(self, server: RtmpServer) -> None:
        self._server = server
        self._settings = server.settings
        self._loop = asyncio.get_running_loop()
        self._transport: asyncio.Transport | None = None
        self.peer = "?"
        self._handshake: ServerHandshake | None = ServerHandshake()
        self._reader = ChunkReader(
            max_message_size=self._settings.max_message_size,
            max_chunk_size=self._settings.max_chunk_size,
            max_chunk_streams=self._settings.max_chunk_streams,
        )
        self._writer = ChunkWriter()
        self._closed = False
        self._connected = False  # after a successful connect
        self._waiting = False  # for the authorizer; reading is paused
        self._streams: set[int] = set()
        self._next_stream_id = 1
        self.publication: _Publication | None = None
        self._idle_since = self._loop.time()
        self._last_media = 0.0
        self._peer_window = 0  # acknowledge every this many bytes (0: never)
        self._acknowledged = 0
        self._timer: asyncio.TimerHandle | None = None

    @property
    def setting_up(self) -> bool:
        """Connected, but neither publishing nor waiting for the authorizer."""
        return not self._closed and self.publication is None and not self._waiting

    @property
    def shaken_hands(self) -> bool:
        return self._handshake is None

    @property
    def setting_up_since(self) -> float:
        return self._idle_since

    # -- asyncio.Protocol -------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports have the methods without the base class.
        transport = cast(asyncio.Transport, transport)
        self._transport = transport
        self.peer = _address(transport.get_extra_info("peername"))
        if len(self._server.connections) >= self._settings.max_connections:
            self._server.make_room()
        if len(self._server.connections) >= self._settings.max_connections:
            log.warning(
                "RTMP: %s turned away: %d connections already",
                self.peer,
                len(self._server.connections),
            )
            self._closed = True
            transport.abort()
            return
        self._server.connections.add(self)
        self._timer = self._loop.call_at(
            self._idle_since + self._settings.setup_timeout, self._check_deadline
        )

    def data_received(self, data: bytes) -> None:
        if self._closed:
            return
        try:
            if self._handshake is not None:
                data = self._shake_hands(data)
                if not data:
                    return
            self._reader.feed(data)
            self._pump()
        except Exception as error:
            self._fail(error)

    def eof_received(self) -> bool | None:
        return None  # close the transport

    def connection_lost(self, exc: Exception | None) -> None:
        if self.publication is not None:
            self._end_publication("the publisher disconnected")
        self._closed = True
        if self._timer is not None:
            self._timer.cancel()
        self._server.connections.discard(self)

    # -- closing ----------------------------------------------------------------

    def shut_down(self, reason: str) -> None:
        """Ends the publish and cuts the connection at once."""
        self._end_publication(reason)
        self._closed = True
        if self._transport is not None:
            self._transport.abort()

    def _close(self, reason: str) -> None:
        """Ends the publish and closes once the last answer is sent."""
        self._end_publication(reason)
        if self._closed or self._transport is None:
            return
        self._closed = True
        self._transport.close()
        self._loop.call_later(_FLUSH_SECONDS, self._transport.abort)

    def _fail(self, error: Exception) -> None:
        if isinstance(error, PublishRefused) and self.publication is not None:
            # The sink cannot take this stream (a codec it does not handle...).
            log.info("RTMP: %s cut off: %s", self.peer, error.reason)
            self._send_status_error(self.publication.stream_id, error.reason)
            self._close("refused by its sink")
        elif isinstance(error, RtmpProtocolError):
            log.info("RTMP: %s: %s; closing the connection", self.peer, error)
            self.shut_down(f"protocol error: {error}")
        else:
            log.exception("RTMP: %s: unexpected error; closing the connection", self.peer)
            self.shut_down("internal error")

    def _end_publication(self, reason: str) -> None:
        publication = self.publication
        if publication is None:
            return
        self.publication = None
        self._idle_since = self._loop.time()
        log.info("RTMP: %s stopped publishing: %s", self.peer, reason)
        publication.end()

    def _check_deadline(self) -> None:
        self._timer = None
        if self._closed:
            return
        now = self._loop.time()
        if self._waiting:
            # The authorizer has a timeout of its own, after which the
            # publisher is told why.
            deadline = now + self._settings.setup_timeout
            reason = ""
        elif self.publication is not None:
            deadline = self._last_media + self._settings.stall_timeout
            reason = f"no media for {self._settings.stall_timeout:g} s"
        else:
            deadline = self._idle_since + self._settings.setup_timeout
            reason = f"not publishing after {self._settings.setup_timeout:g} s"
        if now >= deadline and reason:
            log.info("RTMP: %s: %s; closing the connection", self.peer, reason)
            self.shut_down(reason)
            return
        self._timer = self._loop.call_at(deadline, self._check_deadline)

    # -- receiving ---------------------------------------------------------------

    def _shake_hands(self, data: bytes) -> bytes:
        """Returns what came after the handshake (if it is over)."""
        assert self._handshake is not None
        reply = self._handshake.feed(data)
        if reply:
            self._send(reply)
        if not self._handshake.done:
            return b""
        leftover = self._handshake.leftover
        self._handshake = None
        return leftover

    def _pump(self) -> None:
        reader = self._reader
        publication = self.publication
        while not self._waiting and not self._closed:
            message = reader.next_message()
            if message is None:
                break
            type_id = message.type_id
            if type_id in (VIDEO, AUDIO):
                # The hot path: one sink call per frame.
                if (
                    publication is not None
                    and message.stream_id == publication.stream_id
                    and message.body
                ):
                    self._last_media = self._loop.time()
                    if type_id == VIDEO:
                        publication.sink.video(message.timestamp, message.body)
                    else:
                        publication.sink.audio(message.timestamp, message.body)
            else:
                self._on_other(message)
                publication = self.publication
        if self._peer_window and not self._closed:
            received = reader.bytes_received
            if received - self._acknowledged >= self._peer_window:
                self._acknowledged = received
                self._send_control(ACKNOWLEDGEMENT, acknowledgement(received))

    def _on_other(self, message: RtmpMessage) -> None:
        type_id = message.type_id
        if type_id == COMMAND_AMF0:
            self._on_command(message.stream_id, message.body)
        elif type_id == COMMAND_AMF3:
            # An AMF3 command is AMF0 after a format byte (0).
            self._on_command(message.stream_id, message.body[1:])
        elif type_id in (DATA_AMF0, DATA_AMF3):
            body = message.body[1:] if type_id == DATA_AMF3 else message.body
            self._on_data(message.stream_id, body)
        elif type_id == WINDOW_ACK_SIZE:
            if len(message.body) >= 4:
                self._peer_window = int.from_bytes(message.body[:4], "big")
        elif type_id == USER_CONTROL:
            body = message.body
            if len(body) >= 6 and int.from_bytes(body[:2], "big") == PING_REQUEST:
                self._send_control(
                    USER_CONTROL, user_control(PING_RESPONSE, int.from_bytes(body[2:6], "big"))
                )
        elif type_id in (ACKNOWLEDGEMENT, SET_PEER_BANDWIDTH, AGGREGATE):
            pass  # nothing for an ingest to do (publishers send no aggregates)
        else:
            log.debug("RTMP: %s sent a message of type %d; ignored", self.peer, type_id)

    def _on_data(self, stream_id: int, body: bytes) -> None:
        publication = self.publication
        if publication is None or stream_id != publication.stream_id:
            return
        try:
            values = amf0.decode(body)
        except amf0.AmfError as error:
            # Metadata are a nicety: a garbled one is not worth a stream.
            log.info("RTMP: %s sent unreadable metadata (%s); ignored", self.peer, error)
            return
        if values and values[0] == "@setDataFrame":
            values = values[1:]
        if len(values) >= 2 and values[0] == "onMetaData" and isinstance(values[1], dict):
            publication.sink.metadata(dict(values[1]))

    # -- commands ----------------------------------------------------------------

    def _on_command(self, stream_id: int, body: bytes) -> None:
        values = amf0.decode(body)
        if not values or not isinstance(values[0], str):
            raise RtmpProtocolError("a command without a name")
        name = values[0]
        transaction = values[1] if len(values) > 1 and isinstance(values[1], float) else 0.0
        arguments = values[3:]  # after the command object (null, except in connect)
        if name == "connect":
            self._on_connect(transaction, values[2] if len(values) > 2 else None)
            return
        if not self._connected:
            raise RtmpProtocolError(f"{name!r} before connect")
        if name == "createStream":
            self._on_create_stream(transaction)
        elif name == "publish":
            self._on_publish(stream_id, transaction, arguments)
        elif name == "releaseStream":
            if transaction:
                self._send_command(0, "_result", transaction, None, amf0.UNDEFINED)
        elif name == "FCPublish":
            stream_name = _text(arguments)
            self._send_command(
                0,
                "onFCPublish",
                0.0,
                None,
                {"code": "NetStream.Publish.Start", "description": stream_name},
            )
        elif name == "FCUnpublish":
            self._end_publication("unpublished")
        elif name == "deleteStream":
            deleted = arguments[0] if arguments and isinstance(arguments[0], float) else -1.0
            if self.publication is not None and self.publication.stream_id == deleted:
                self._end_publication("deleted its stream")
            if deleted.is_integer():
                self._streams.discard(int(deleted))
        elif name == "closeStream":
            if self.publication is not None and self.publication.stream_id == stream_id:
                self._end_publication("closed its stream")
        elif transaction:
            log.debug("RTMP: %s called %r; not supported", self.peer, name[:64])
            self._send_command(
                0,
                "_error",
                transaction,
                None,
                _status("error", "NetConnection.Call.Failed", "This server only takes publishers."),
            )

    def _on_connect(self, transaction: float, command: object) -> None:
        if self._connected:
            raise RtmpProtocolError("connect twice")
        app = command.get("app") if isinstance(command, dict) else None
        if not isinstance(app, str) or _app_name(app) != self._settings.app:
            log.info("RTMP: %s asked for an unknown application; closing", self.peer)
            self._send_command(
                0,
                "_error",
                transaction,
                None,
                _status(
                    "error",
                    "NetConnection.Connect.Rejected",
                    f"Unknown application: publish to /{self._settings.app}/<stream key>",
                ),
            )
            self._close("rejected")
            return
        self._connected = True
        self._send_control(WINDOW_ACK_SIZE, window_ack_size(self._settings.window_ack_size))
        self._send_control(SET_PEER_BANDWIDTH, set_peer_bandwidth(self._settings.window_ack_size))
        self._send(self._writer.set_chunk_size(self._settings.chunk_size))
        self._send_command(
            0,
            "_result",
            transaction,
            {"fmsVer": "FMS/3,0,1,123", "capabilities": 31.0},
            _status("status", "NetConnection.Connect.Success", "Connection succeeded.")
            | {"objectEncoding": 0.0},
        )

    def _on_create_stream(self, transaction: float) -> None:
        if len(self._streams) >= _MAX_STREAMS:
            raise RtmpProtocolError(f"more than {_MAX_STREAMS} streams")
        stream_id = self._next_stream_id
        self._next_stream_id += 1
        self._streams.add(stream_id)
        self._send_command(0, "_result", transaction, None, float(stream_id))

    def _on_publish(self, stream_id: int, transaction: float, arguments: list[object]) -> None:
        if stream_id not in self._streams:
            raise RtmpProtocolError("publish on a stream it did not create")
        stream_name = _text(arguments)
        if self.publication is not None:
            self._refuse(stream_id, "This connection is publishing already.")
        elif not stream_name or len(stream_name) > _MAX_STREAM_NAME:
            self._refuse(stream_id, "No stream key.")
        else:
            self._waiting = True
            if self._transport is not None:
                self._transport.pause_reading()
            task = self._loop.create_task(self._authorize(stream_id, stream_name))
            self._server.tasks.add(task)
            task.add_done_callback(self._server.tasks.discard)

    async def _authorize(self, stream_id: int, stream_name: str) -> None:
        try:
            await self._start_publishing(stream_id, stream_name)
        except Exception as error:
            self._fail(error)

    async def _start_publishing(self, stream_id: int, stream_name: str) -> None:
        try:
            async with asyncio.timeout(self._settings.setup_timeout):
                sink = await self._server.authorizer.start_publishing(
                    self._settings.app, stream_name, self.peer
                )
        except PublishRefused as refusal:
            log.info("RTMP: %s refused: %s", self.peer, refusal.reason)
            self._refuse(stream_id, refusal.reason)
            return
        except TimeoutError:
            log.warning("RTMP: %s: the publish authorizer timed out", self.peer)
            self._refuse(stream_id, "The server is busy; try again.")
            return
        except Exception:
            log.exception("RTMP: %s: the publish authorizer failed", self.peer)
            self._refuse(stream_id, "The server could not start the stream.")
            return
        publication = _Publication(sink, stream_id)
        if self._closed:
            publication.end()  # gone while we asked
            return
        self.publication = publication
        self._last_media = self._loop.time()
        self._waiting = False
        log.info("RTMP: %s publishing to /%s", self.peer, self._settings.app)
        self._send_control(USER_CONTROL, user_control(STREAM_BEGIN, stream_id))
        self._send_command(
            stream_id,
            "onStatus",
            0.0,
            None,
            _status("status", "NetStream.Publish.Start", "Publishing."),
            csid=_STATUS_CSID,
        )
        if self._timer is not None:
            self._timer.cancel()
        self._timer = self._loop.call_at(
            self._last_media + self._settings.stall_timeout, self._check_deadline
        )
        if self._transport is not None:
            self._transport.resume_reading()
        self._pump()  # what came in behind the publish

    def _refuse(self, stream_id: int, reason: str) -> None:
        """Tells the publisher why (as ffmpeg and OBS understand it) and
        closes the connection."""
        self._send_status_error(stream_id, reason)
        self._close("refused")

    def _send_status_error(self, stream_id: int, reason: str) -> None:
        self._send_command(
            stream_id,
            "onStatus",
            0.0,
            None,
            _status("error", "NetStream.Publish.BadName", reason),
            csid=_STATUS_CSID,
        )

    # -- sending -------------------------------------------------------------------

    def _send(self, data: bytes) -> None:
        transport = self._transport
        if transport is None or self._closed:
            return
        transport.write(data)
        if transport.get_write_buffer_size() > self._settings.max_write_buffer:
            log.info("RTMP: %s does not read what it is sent; closing the connection", self.peer)
            self.shut_down("not reading")

    def _send_control(self, type_id: int, body: bytes) -> None:
        self._send(self._writer.write(PROTOCOL_CONTROL_CSID, type_id, 0, 0, body))

    def _send_command(self, stream_id: int, *values: object, csid: int = _COMMAND_CSID) -> None:
        self._send(self._writer.write(csid, COMMAND_AMF0, stream_id, 0, amf0.encode(*values)))


def _status(level: str, code: str, description: str) -> dict[str, object]:
    return {"level": level, "code": code, "description": description}


def _text(arguments: list[object]) -> str:
    return arguments[0] if arguments and isinstance(arguments[0], str) else ""


def _app_name(app: str) -> str:
    """``live``, however the client spelled it (``live/``, ``live?x=y``)."""
    return app.split("?", 1)[0].strip().strip("/")


def _address(peername: object) -> str:
    if isinstance(peername, tuple) and len(peername) >= 2:
        host, port = peername[0], peername[1]
        return f"[{host}]:{port}" if ":" in str(host) else f"{host}:{port}"
    return "?"
