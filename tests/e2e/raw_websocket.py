"""A WebSocket opened by hand over a plain TCP stream, for tests that must
send what no WebSocket library would: broken frames, reserved bits,
unmasked frames, oversized control frames."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import struct
from dataclasses import dataclass


@dataclass
class ServerFrame:
    opcode: int
    payload: bytes

    @property
    def close_code(self) -> int | None:
        if self.opcode != 0x8 or len(self.payload) < 2:
            return None
        return int(struct.unpack("!H", self.payload[:2])[0])


class RawWebSocket:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def open(cls, host: str, port: int, token: str) -> RawWebSocket:
        reader, writer = await asyncio.open_connection(host, port)
        key = base64.b64encode(os.urandom(16)).decode()
        writer.write(
            (
                "GET /api/v1/ws HTTP/1.1\r\n"
                f"Host: {host}:{port}\r\n"
                "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
                f"Authorization: Bearer {token}\r\n\r\n"
            ).encode()
        )
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        assert head.startswith(b"HTTP/1.1 101 "), head
        return cls(reader, writer)

    def send_raw(self, data: bytes) -> None:
        self.writer.write(data)

    @staticmethod
    def frame(opcode: int, payload: bytes, *, fin: bool = True, mask: bool = True) -> bytes:
        """A client frame (masked, as RFC 6455 requires, unless told not to)."""
        first = (0x80 if fin else 0) | opcode
        size = len(payload)
        mask_bit = 0x80 if mask else 0
        if size < 126:
            header = struct.pack("!BB", first, mask_bit | size)
        elif size < 1 << 16:
            header = struct.pack("!BBH", first, mask_bit | 126, size)
        else:
            header = struct.pack("!BBQ", first, mask_bit | 127, size)
        if not mask:
            return header + payload
        key = os.urandom(4)
        return header + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))

    async def next_frame(self, timeout: float = 5.0) -> ServerFrame | None:
        """The next frame from the server; None when it closed the TCP stream."""
        try:
            async with asyncio.timeout(timeout):
                first, second = await self.reader.readexactly(2)
                size = second & 0x7F
                if size == 126:
                    (size,) = struct.unpack("!H", await self.reader.readexactly(2))
                elif size == 127:
                    (size,) = struct.unpack("!Q", await self.reader.readexactly(8))
                return ServerFrame(first & 0x0F, await self.reader.readexactly(size))
        except (asyncio.IncompleteReadError, ConnectionError):
            return None

    async def close_code(self, timeout: float = 5.0) -> int | None:
        """Reads until the server's close frame (its code) or the end of the
        stream (None); fails if neither comes in time."""
        async with asyncio.timeout(timeout):
            while True:
                frame = await self.next_frame(timeout)
                if frame is None:
                    return None
                if frame.opcode == 0x8:
                    return frame.close_code

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(ConnectionError):
            await self.writer.wait_closed()
