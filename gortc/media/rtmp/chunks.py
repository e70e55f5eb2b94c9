"""RTMP's chunk stream without I/O (RTMP 1.0, section 5.3).

A message (a command, an audio or video frame) travels as one or more
chunks of at most the sender's chunk size, interleaved with other messages'
chunks on other chunk streams. Each chunk starts with a basic header (format
and chunk stream id, 1 to 3 bytes) and a message header of 11, 7, 3 or 0
bytes (formats 0 to 3: each leaves out what is the same as in the previous
chunk of that chunk stream), then an extended timestamp when the 24-bit one
is 0xFFFFFF.

:class:`ChunkReader` takes bytes as they come (:meth:`~ChunkReader.feed`)
and gives back whole messages (:meth:`~ChunkReader.next_message`); it
applies Set Chunk Size and Abort itself, since they change how the next
chunks are read. Payload bytes are copied once into the message being put
together (or sliced out at once when a message fits one chunk), so a chunk
costs a header parse and one copy. Every length is checked against limits
before anything is kept, and hostile input raises
:class:`~gortc.media.rtmp.errors.RtmpProtocolError`, never anything else.

:class:`ChunkWriter` does the reverse, choosing the shortest header.
"""

from __future__ import annotations

import struct
from typing import Final, NamedTuple

from gortc.media.rtmp.errors import RtmpProtocolError

# Message type ids (RTMP 1.0, 5.4 and 7.1).
SET_CHUNK_SIZE: Final = 1
ABORT: Final = 2
ACKNOWLEDGEMENT: Final = 3
USER_CONTROL: Final = 4
WINDOW_ACK_SIZE: Final = 5
SET_PEER_BANDWIDTH: Final = 6
AUDIO: Final = 8
VIDEO: Final = 9
DATA_AMF3: Final = 15
COMMAND_AMF3: Final = 17
DATA_AMF0: Final = 18
COMMAND_AMF0: Final = 20
AGGREGATE: Final = 22

# User control events (RTMP 1.0, 7.1.7).
STREAM_BEGIN: Final = 0
STREAM_EOF: Final = 1
PING_REQUEST: Final = 6
PING_RESPONSE: Final = 7

PROTOCOL_CONTROL_CSID: Final = 2
DEFAULT_CHUNK_SIZE: Final = 128
# The largest chunk size we accept from a peer. The protocol allows 2^31-1;
# encoders use 4,096 to 65,536.
MAX_CHUNK_SIZE: Final = 1 << 24
# The 24-bit length field caps a message at 16 MiB - 1.
MAX_MESSAGE_SIZE: Final = 0xFFFFFF
MAX_CHUNK_STREAMS: Final = 64
_EXTENDED: Final = 0xFFFFFF
_MASK32: Final = 0xFFFFFFFF
_U32 = struct.Struct(">I")


class RtmpMessage(NamedTuple):
    type_id: int
    stream_id: int  # the message stream (0: the connection's own)
    timestamp: int  # milliseconds, 32 bits
    body: bytes


class _ChunkStream:
    """What a chunk stream's next headers may leave out, and the message
    being put together on it."""

    __slots__ = ("body", "extended", "length", "stream_id", "timestamp", "ts_field", "type_id")

    def __init__(self) -> None:
        self.timestamp = 0
        self.ts_field = 0  # the last header's timestamp (absolute or delta)
        self.extended = False  # whether that needed the extended field
        self.length = 0
        self.type_id = 0
        self.stream_id = 0
        self.body: bytearray | None = None  # a message in progress


class ChunkReader:
    """Parses a peer's chunk stream into messages.

    Limits (each raises RtmpProtocolError when passed): a message's length
    (``max_message_size``), the chunk size the peer may set
    (``max_chunk_size``), how many chunk streams it may use
    (``max_chunk_streams``) and how many bytes of unfinished messages may be
    held at once (``max_pending_bytes``; by default twice the largest
    message), so a connection costs at most about that much memory.
    """

    def __init__(
        self,
        *,
        max_message_size: int = MAX_MESSAGE_SIZE,
        max_chunk_size: int = MAX_CHUNK_SIZE,
        max_chunk_streams: int = MAX_CHUNK_STREAMS,
        max_pending_bytes: int | None = None,
    ) -> None:
        self.chunk_size = DEFAULT_CHUNK_SIZE
        self.bytes_received = 0  # every byte fed, for acknowledgements
        self._max_message_size = max_message_size
        self._max_chunk_size = max_chunk_size
        self._max_chunk_streams = max_chunk_streams
        self._max_pending = (
            max_pending_bytes if max_pending_bytes is not None else 2 * max_message_size
        )
        self._pending = 0
        self._streams: dict[int, _ChunkStream] = {}
        self._buffer = b""
        self._view = memoryview(self._buffer)
        self._pos = 0
        # Inside a chunk's payload: the stream it belongs to, bytes to go.
        self._in_chunk: _ChunkStream | None = None
        self._chunk_left = 0

    def feed(self, data: bytes) -> None:
        """Adds bytes from the peer. Cheap: parsing happens in
        :meth:`next_message`."""
        self.bytes_received += len(data)
        if self._pos < len(self._buffer):
            self._buffer = self._buffer[self._pos :] + data
        else:
            self._buffer = bytes(data)
        self._view = memoryview(self._buffer)
        self._pos = 0

    @property
    def buffered(self) -> int:
        """Bytes fed but not parsed yet."""
        return len(self._buffer) - self._pos

    def next_message(self) -> RtmpMessage | None:
        """The next whole message, or None until more bytes are fed.
        Raises RtmpProtocolError."""
        while True:
            if self._in_chunk is not None:
                message = self._read_payload()
                if message is None:
                    if self._in_chunk is not None:
                        return None  # the rest of the chunk has not come yet
                    continue
            else:
                message = self._read_header()
                if message is None:
                    if self._in_chunk is None:
                        return None  # the header has not fully come yet
                    continue
            if message.type_id == SET_CHUNK_SIZE:
                self._set_chunk_size(message.body)
            elif message.type_id == ABORT:
                self._abort(message.body)
            else:
                return message

    def _read_header(self) -> RtmpMessage | None:
        """Parses one chunk header if it is all there; returns the message
        when it fits this chunk and is all there too, else sets up
        :meth:`_read_payload`. Changes nothing when the header is cut off."""
        buf = self._buffer
        end = len(buf)
        p = self._pos
        if p >= end:
            return None
        first = buf[p]
        fmt = first >> 6
        csid = first & 0x3F
        p += 1
        if csid == 0:
            if p + 1 > end:
                return None
            csid = buf[p] + 64
            p += 1
        elif csid == 1:
            if p + 2 > end:
                return None
            csid = buf[p] + (buf[p + 1] << 8) + 64
            p += 2
        stream = self._streams.get(csid)
        length = type_id = stream_id = 0
        if fmt < 3:
            if fmt == 0:
                if p + 11 > end:
                    return None
                length = (buf[p + 3] << 16) | (buf[p + 4] << 8) | buf[p + 5]
                type_id = buf[p + 6]
                stream_id = (
                    buf[p + 7] | (buf[p + 8] << 8) | (buf[p + 9] << 16) | (buf[p + 10] << 24)
                )
                header_size = 11
            elif fmt == 1:
                if p + 7 > end:
                    return None
                length = (buf[p + 3] << 16) | (buf[p + 4] << 8) | buf[p + 5]
                type_id = buf[p + 6]
                header_size = 7
            else:
                if stream is None:
                    raise RtmpProtocolError(f"chunk stream {csid} starts with a format 2 header")
                if p + 3 > end:
                    return None
                header_size = 3
            field = (buf[p] << 16) | (buf[p + 1] << 8) | buf[p + 2]
            p += header_size
            extended = field == _EXTENDED
            if extended:
                if p + 4 > end:
                    return None
                field = _U32.unpack_from(buf, p)[0]
                p += 4
        else:
            if stream is None:
                raise RtmpProtocolError(f"chunk stream {csid} starts with a format 3 header")
            field = stream.ts_field
            extended = stream.extended
            if extended:
                if p + 4 > end:
                    return None
                if stream.body is None:
                    field = _U32.unpack_from(buf, p)[0]
                    p += 4
                elif _U32.unpack_from(buf, p)[0] == field:
                    # Within a message the field is repeated by most
                    # encoders (and the spec) and left out by a few.
                    p += 4

        # The header is whole: from here on, state changes.
        if stream is None:
            if len(self._streams) >= self._max_chunk_streams:
                raise RtmpProtocolError(f"more than {self._max_chunk_streams} chunk streams")
            stream = self._streams[csid] = _ChunkStream()
        self._pos = p
        if fmt < 3:
            if stream.body is not None:
                # A new header in the middle of a message: the peer gave up
                # on the rest of it (as ffmpeg reads it too).
                self._pending -= len(stream.body)
                stream.body = None
            if fmt == 0:
                stream.timestamp = field
                stream.stream_id = stream_id
            else:
                stream.timestamp = (stream.timestamp + field) & _MASK32
            if fmt < 2:
                if length > self._max_message_size:
                    raise RtmpProtocolError(f"a {length}-byte message (the limit is set lower)")
                stream.length = length
                stream.type_id = type_id
            stream.ts_field = field
            stream.extended = extended
        elif stream.body is None:
            stream.timestamp = (stream.timestamp + field) & _MASK32
            stream.ts_field = field
        else:
            # The next chunk of the message in progress.
            self._in_chunk = stream
            self._chunk_left = min(self.chunk_size, stream.length - len(stream.body))
            return None

        # The first chunk of a new message.
        length = stream.length
        if length <= self.chunk_size and end - p >= length:
            self._pos = p + length
            body = buf[p : p + length]
            return RtmpMessage(stream.type_id, stream.stream_id, stream.timestamp, body)
        stream.body = bytearray()
        self._in_chunk = stream
        self._chunk_left = min(self.chunk_size, length)
        return None

    def _read_payload(self) -> RtmpMessage | None:
        stream = self._in_chunk
        assert stream is not None
        assert stream.body is not None
        available = len(self._buffer) - self._pos
        if available <= 0:
            return None
        take = min(available, self._chunk_left)
        self._pending += take
        if self._pending > self._max_pending:
            raise RtmpProtocolError(f"over {self._max_pending} bytes of unfinished messages")
        stream.body += self._view[self._pos : self._pos + take]
        self._pos += take
        self._chunk_left -= take
        if self._chunk_left:
            return None
        self._in_chunk = None
        if len(stream.body) < stream.length:
            return None
        body = bytes(stream.body)
        stream.body = None
        self._pending -= len(body)
        return RtmpMessage(stream.type_id, stream.stream_id, stream.timestamp, body)

    def _set_chunk_size(self, body: bytes) -> None:
        if len(body) < 4:
            raise RtmpProtocolError("Set Chunk Size without a size")
        size = _U32.unpack_from(body)[0] & 0x7FFFFFFF
        if not 1 <= size <= self._max_chunk_size:
            raise RtmpProtocolError(f"chunk size {size} (the limit is {self._max_chunk_size})")
        self.chunk_size = size

    def _abort(self, body: bytes) -> None:
        if len(body) < 4:
            raise RtmpProtocolError("Abort without a chunk stream")
        stream = self._streams.get(_U32.unpack_from(body)[0])
        if stream is not None and stream.body is not None:
            self._pending -= len(stream.body)
            stream.body = None
            if self._in_chunk is stream:
                self._in_chunk = None


class _Sent(NamedTuple):
    stream_id: int
    length: int
    type_id: int
    timestamp: int
    ts_field: int


class ChunkWriter:
    """Turns messages into chunks of ``chunk_size`` bytes. With ``compact``
    (the default) each message's first chunk has the shortest header the
    previous message on its chunk stream allows; without, always format 0."""

    def __init__(self, chunk_size: int = DEFAULT_CHUNK_SIZE, *, compact: bool = True) -> None:
        self.chunk_size = chunk_size
        self._compact = compact
        self._sent: dict[int, _Sent] = {}

    def set_chunk_size(self, size: int) -> bytes:
        """The Set Chunk Size message; chunks written after it use ``size``."""
        if not 1 <= size <= 0x7FFFFFFF:
            raise ValueError("chunk sizes are 1 to 2^31-1")
        data = self.write(PROTOCOL_CONTROL_CSID, SET_CHUNK_SIZE, 0, 0, _U32.pack(size))
        self.chunk_size = size
        return data

    def write(self, csid: int, type_id: int, stream_id: int, timestamp: int, body: bytes) -> bytes:
        if not 2 <= csid <= 65599:
            raise ValueError("chunk stream ids are 2 to 65,599")
        if len(body) > MAX_MESSAGE_SIZE:
            raise ValueError("an RTMP message is 16 MiB - 1 bytes at most")
        timestamp &= _MASK32
        previous = self._sent.get(csid)
        fmt = 0
        field = timestamp
        if (
            self._compact
            and previous is not None
            and previous.stream_id == stream_id
            and timestamp >= previous.timestamp
        ):
            field = timestamp - previous.timestamp
            if previous.length == len(body) and previous.type_id == type_id:
                fmt = 3 if field == previous.ts_field else 2
            else:
                fmt = 1
        self._sent[csid] = _Sent(stream_id, len(body), type_id, timestamp, field)

        out = bytearray(_basic_header(fmt, csid))
        short_field = min(field, _EXTENDED)
        if fmt < 3:
            out += short_field.to_bytes(3, "big")
        if fmt < 2:
            out += len(body).to_bytes(3, "big")
            out.append(type_id)
        if fmt == 0:
            out += stream_id.to_bytes(4, "little")
        extended = _U32.pack(field) if field >= _EXTENDED else b""
        out += extended
        continuation = _basic_header(3, csid) + extended
        size = self.chunk_size
        view = memoryview(body)
        out += view[:size]
        for start in range(size, len(body), size):
            out += continuation
            out += view[start : start + size]
        return bytes(out)


def _basic_header(fmt: int, csid: int) -> bytes:
    if csid < 64:
        return bytes((fmt << 6 | csid,))
    if csid < 320:
        return bytes((fmt << 6, csid - 64))
    return bytes((fmt << 6 | 1, (csid - 64) & 0xFF, (csid - 64) >> 8))


# -- protocol control and user control message bodies ------------------------


def window_ack_size(size: int) -> bytes:
    return _U32.pack(size)


def set_peer_bandwidth(size: int, limit_type: int = 2) -> bytes:
    """``limit_type`` 2 is "dynamic" (RTMP 1.0, 5.4.5)."""
    return _U32.pack(size) + bytes((limit_type,))


def acknowledgement(sequence_number: int) -> bytes:
    return _U32.pack(sequence_number & _MASK32)


def user_control(event: int, value: int) -> bytes:
    return event.to_bytes(2, "big") + _U32.pack(value & _MASK32)
