"""Events encoded once, as the exact bytes every recipient's socket gets."""

from __future__ import annotations

import struct
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Frame:
    payload: bytes  # the JSON text
    wire: bytes  # a complete unmasked WebSocket text frame carrying it


def text_frame(payload: bytes) -> Frame:
    """Server-to-client frames are never masked, so one frame can be written
    to every connection as it is (RFC 6455 §5.2; no extensions negotiated)."""
    size = len(payload)
    if size < 126:
        header = struct.pack("!BB", 0x81, size)
    elif size < 1 << 16:
        header = struct.pack("!BBH", 0x81, 126, size)
    else:
        header = struct.pack("!BBQ", 0x81, 127, size)
    return Frame(payload=payload, wire=header + payload)
