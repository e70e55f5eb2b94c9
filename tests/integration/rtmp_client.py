"""A bare RTMP publisher over asyncio streams, built on the server's own
codecs, for what ffmpeg will not do: stop half-way, stall, misbehave."""

from __future__ import annotations

import asyncio
import contextlib
import os

from gortc.media.rtmp import amf0
from gortc.media.rtmp.chunks import (
    AUDIO,
    COMMAND_AMF0,
    DATA_AMF0,
    VIDEO,
    ChunkReader,
    ChunkWriter,
    RtmpMessage,
)
from gortc.media.rtmp.handshake import HANDSHAKE_SIZE

# FLV bodies as OBS sends them: AVC sequence header, a keyframe, AAC.
AVC_SEQUENCE_HEADER = bytes.fromhex("1700000000") + bytes.fromhex("0164001fffe1000467640028")
AVC_KEYFRAME = bytes.fromhex("1701000000") + bytes(64)
AAC_SEQUENCE_HEADER = bytes.fromhex("af001190")
AAC_FRAME = bytes.fromhex("af01") + bytes(32)


class RawRtmpClient:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.chunks = ChunkWriter()
        self.incoming = ChunkReader()
        self._transaction = 0.0
        self.stream_id = 0

    @classmethod
    async def open(cls, port: int) -> RawRtmpClient:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        return cls(reader, writer)

    async def handshake(self) -> bytes:
        """Returns S1."""
        self.writer.write(b"\x03" + os.urandom(HANDSHAKE_SIZE))
        reply = await self.reader.readexactly(1 + 2 * HANDSHAKE_SIZE)
        s1 = reply[1 : 1 + HANDSHAKE_SIZE]
        self.writer.write(s1)
        await self.writer.drain()
        return s1

    async def send(
        self, csid: int, type_id: int, stream_id: int, timestamp: int, body: bytes
    ) -> None:
        self.writer.write(self.chunks.write(csid, type_id, stream_id, timestamp, body))
        await self.writer.drain()

    async def send_raw(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def command(self, name: str, *arguments: object, stream_id: int = 0) -> float:
        self._transaction += 1
        body = amf0.encode(name, self._transaction, *arguments)
        await self.send(3 if stream_id == 0 else 8, COMMAND_AMF0, stream_id, 0, body)
        return self._transaction

    async def next_message(self, timeout: float = 3.0) -> RtmpMessage | None:
        """The next message from the server; None once it closed."""
        async with asyncio.timeout(timeout):
            while True:
                message = self.incoming.next_message()
                if message is not None:
                    return message
                try:
                    data = await self.reader.read(65536)
                except ConnectionError:
                    return None
                if not data:
                    return None
                self.incoming.feed(data)

    async def next_command(self, timeout: float = 3.0) -> list[object] | None:
        """The next command's values (name first); None once closed."""
        while True:
            message = await self.next_message(timeout)
            if message is None:
                return None
            if message.type_id == COMMAND_AMF0:
                return amf0.decode(message.body)

    async def connect(self, app: str = "live") -> list[object] | None:
        await self.command(
            "connect",
            {"app": app, "type": "nonprivate", "flashVer": "FMLE/3.0", "tcUrl": f"rtmp://x/{app}"},
        )
        return await self.next_command()

    async def start_publishing(self, key: str, app: str = "live") -> dict[str, object]:
        """Handshake to ``publish``; returns the publish's onStatus info."""
        await self.handshake()
        connected = await self.connect(app)
        assert connected is not None
        assert connected[0] == "_result", connected
        await self.command("releaseStream", None, key)
        await self.command("FCPublish", None, key)
        created = await self.command("createStream", None)
        while True:
            values = await self.next_command()
            assert values is not None, "closed before createStream's _result"
            if values[0] == "_result" and values[1] == created:
                assert isinstance(values[3], float)
                self.stream_id = int(values[3])
                break
        await self.command("publish", None, key, "live", stream_id=self.stream_id)
        while True:
            values = await self.next_command()
            assert values is not None, "closed before publish's onStatus"
            if values[0] == "onStatus":
                info = values[3]
                assert isinstance(info, dict)
                return info

    async def send_media(self, timestamp: int = 0, *, headers: bool = False) -> None:
        if headers:
            metadata = amf0.encode("@setDataFrame", "onMetaData", amf0.EcmaArray(width=320.0))
            await self.send(4, DATA_AMF0, self.stream_id, 0, metadata)
            await self.send(6, VIDEO, self.stream_id, 0, AVC_SEQUENCE_HEADER)
            await self.send(4, AUDIO, self.stream_id, 0, AAC_SEQUENCE_HEADER)
        await self.send(6, VIDEO, self.stream_id, timestamp, AVC_KEYFRAME)
        await self.send(4, AUDIO, self.stream_id, timestamp, AAC_FRAME)

    async def closed_by_server(self, timeout: float) -> bool:
        """Whether the server closes the connection within ``timeout``
        (whatever it sends before is read and dropped)."""
        try:
            async with asyncio.timeout(timeout):
                while True:
                    try:
                        data = await self.reader.read(65536)
                    except ConnectionError:
                        return True
                    if not data:
                        return True
        except TimeoutError:
            return False

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(ConnectionError):
            await self.writer.wait_closed()
