"""The server side of RTMP's handshake, without I/O.

The client sends C0 (the version, 3) and C1 (1,536 bytes); the server answers
S0, S1 and S2 at once, then waits for C2 (1,536 bytes), after which chunks
flow. This is the plain handshake of the specification (RTMP 1.0, 5.2):
S1 carries a zero version field, which tells Flash-era clients (ffmpeg,
librtmp in OBS) not to expect the digest ("complex") handshake, and S2
echoes C1 byte for byte, which is what librtmp compares it against. Nothing
in C1 or C2 is validated: clients fill them with anything.
"""

from __future__ import annotations

import os
from typing import Final

from gortc.media.rtmp.errors import RtmpProtocolError

RTMP_VERSION: Final = 3
HANDSHAKE_SIZE: Final = 1536


class ServerHandshake:
    """Feed it the client's first bytes; send what :meth:`feed` returns.
    Once :attr:`done`, :attr:`leftover` holds what the client sent after
    C2 (usually the start of its ``connect``)."""

    def __init__(self, uptime_ms: int = 0) -> None:
        self._buffer = bytearray()
        self._uptime_ms = uptime_ms & 0xFFFFFFFF
        self._answered = False
        self.done = False
        self.leftover = b""

    def feed(self, data: bytes) -> bytes:
        """Returns the bytes to send (S0+S1+S2 once C0+C1 are in, else
        nothing). Raises RtmpProtocolError on a version other than 3
        (RTMPE, RTMPT's 6 and 8, or not RTMP at all)."""
        if self.done:
            raise RuntimeError("the handshake is over")
        self._buffer += data
        reply = b""
        if not self._answered:
            if not self._buffer:
                return b""
            if self._buffer[0] != RTMP_VERSION:
                raise RtmpProtocolError(f"not an RTMP {RTMP_VERSION} handshake")
            if len(self._buffer) < 1 + HANDSHAKE_SIZE:
                return b""
            c1 = bytes(self._buffer[1 : 1 + HANDSHAKE_SIZE])
            del self._buffer[: 1 + HANDSHAKE_SIZE]
            s1 = self._uptime_ms.to_bytes(4, "big") + bytes(4) + os.urandom(HANDSHAKE_SIZE - 8)
            reply = bytes((RTMP_VERSION,)) + s1 + c1
            self._answered = True
        if len(self._buffer) >= HANDSHAKE_SIZE:
            self.leftover = bytes(self._buffer[HANDSHAKE_SIZE:])
            self._buffer = bytearray()
            self.done = True
        return reply
