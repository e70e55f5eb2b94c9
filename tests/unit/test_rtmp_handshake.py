"""The server side of RTMP's plain handshake."""

from __future__ import annotations

import os
import random

import pytest

from gortc.media.rtmp.errors import RtmpProtocolError
from gortc.media.rtmp.handshake import HANDSHAKE_SIZE, ServerHandshake


def test_c0_c1_get_s0_s1_s2_and_c2_ends_it() -> None:
    handshake = ServerHandshake(uptime_ms=1234)
    c1 = os.urandom(HANDSHAKE_SIZE)
    reply = handshake.feed(b"\x03" + c1)
    assert len(reply) == 1 + 2 * HANDSHAKE_SIZE
    assert reply[0] == 3
    s1, s2 = reply[1 : 1 + HANDSHAKE_SIZE], reply[1 + HANDSHAKE_SIZE :]
    assert s1[:4] == (1234).to_bytes(4, "big")
    assert s1[4:8] == bytes(4)  # no version: clients skip the digest check
    assert s2 == c1  # what librtmp compares it with
    assert not handshake.done
    assert handshake.feed(s1) == b""
    assert handshake.done
    assert handshake.leftover == b""


def test_bytes_in_any_pieces_and_what_follows_c2_is_kept() -> None:
    rng = random.Random(3)
    c1, c2 = os.urandom(HANDSHAKE_SIZE), os.urandom(HANDSHAKE_SIZE)
    stream = b"\x03" + c1 + c2 + b"connect..."
    handshake = ServerHandshake()
    replies = b""
    position = 0
    while not handshake.done:
        size = rng.randrange(1, 700)
        replies += handshake.feed(stream[position : position + size])
        position += size
    assert replies[1 + HANDSHAKE_SIZE :] == c1
    assert handshake.leftover + stream[position:] == b"connect..."


@pytest.mark.parametrize("first", [b"\x06", b"\x08", b"G", b"\x00"])
def test_anything_but_version_3_is_refused_at_the_first_byte(first: bytes) -> None:
    with pytest.raises(RtmpProtocolError):
        ServerHandshake().feed(first)


def test_feeding_after_the_end_is_a_bug() -> None:
    handshake = ServerHandshake()
    handshake.feed(b"\x03" + bytes(2 * HANDSHAKE_SIZE))
    with pytest.raises(RuntimeError):
        handshake.feed(b"x")
