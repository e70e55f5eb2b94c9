"""RTMP's chunk stream: the specification's examples, every header format,
extended timestamps, the limits, and fuzzing with garbage and cut input."""

from __future__ import annotations

import contextlib
import os
import random
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gortc.media.rtmp.chunks import (
    ABORT,
    AUDIO,
    COMMAND_AMF0,
    SET_CHUNK_SIZE,
    VIDEO,
    ChunkReader,
    ChunkWriter,
    RtmpMessage,
)
from gortc.media.rtmp.errors import RtmpProtocolError

# `make fuzz-protocols` sets GORTC_FUZZ_EXAMPLES for a long run.
FUZZ = settings(
    database=None,
    deadline=None,
    max_examples=int(os.environ.get("GORTC_FUZZ_EXAMPLES", "200")),
)


def read_all(
    reader: ChunkReader, data: bytes, pieces: list[int] | None = None
) -> list[RtmpMessage]:
    """Feeds ``data`` (in pieces of these sizes, cycled; else at once)."""
    messages = []
    position = 0
    sizes = pieces or [len(data) or 1]
    turn = 0
    while position < len(data):
        size = sizes[turn % len(sizes)]
        turn += 1
        reader.feed(data[position : position + size])
        position += size
        while (message := reader.next_message()) is not None:
            messages.append(message)
    return messages


def header_formats(data: bytes, chunk_size: int, lengths: list[int]) -> list[int]:
    """The format of each message's first chunk, for messages of these
    lengths written on one chunk stream below 64 without extended times."""
    formats = []
    position = 0
    for length in lengths:
        fmt = data[position] >> 6
        formats.append(fmt)
        position += 1 + (11, 7, 3, 0)[fmt]
        chunks = max(1, -(-length // chunk_size))
        position += length + (chunks - 1)
    return formats


# -- the specification's examples (RTMP 1.0, 5.3.2.2) -------------------------


def test_example_1_four_audio_messages_in_formats_0_2_3_3() -> None:
    payloads = [bytes([i]) * 32 for i in range(4)]
    data = (
        bytes.fromhex("03 0003e8 000020 08 39300000")  # stream 12345, 1000 ms
        + payloads[0]
        + bytes.fromhex("83 000014")  # +20 ms
        + payloads[1]
        + b"\xc3"
        + payloads[2]
        + b"\xc3"
        + payloads[3]
    )
    messages = read_all(ChunkReader(), data)
    assert messages == [RtmpMessage(AUDIO, 12345, 1000 + 20 * i, payloads[i]) for i in range(4)]
    writer = ChunkWriter()
    written = b"".join(writer.write(3, AUDIO, 12345, 1000 + 20 * i, payloads[i]) for i in range(4))
    assert written == data


def test_example_2_a_message_over_three_chunks() -> None:
    body = bytes(range(256)) + bytes(51)
    data = (
        bytes.fromhex("04 0003e8 000133 09 39300000")
        + body[:128]
        + b"\xc4"
        + body[128:256]
        + b"\xc4"
        + body[256:]
    )
    assert len(body) == 307
    for pieces in ([len(data)], [1], [5, 200], [128]):
        assert read_all(ChunkReader(), data, pieces) == [RtmpMessage(VIDEO, 12345, 1000, body)]
    assert ChunkWriter().write(4, VIDEO, 12345, 1000, body) == data


def test_the_writer_picks_the_shortest_header() -> None:
    writer = ChunkWriter()
    data = b"".join(
        writer.write(5, VIDEO, 1, timestamp, bytes(length))
        for timestamp, length in [(0, 10), (33, 20), (66, 20), (99, 20), (100, 20)]
    )
    assert header_formats(data, 128, [10, 20, 20, 20, 20]) == [0, 1, 3, 3, 2]
    assert [m.timestamp for m in read_all(ChunkReader(), data)] == [0, 33, 66, 99, 100]


def test_a_type_3_header_after_a_type_0_repeats_its_timestamp_as_a_delta() -> None:
    # RTMP 1.0, 5.3.1.2.4, and how ffmpeg reads it.
    data = bytes.fromhex("03 000064 000001 08 01000000 aa c3 bb")
    assert [m.timestamp for m in read_all(ChunkReader(), data)] == [100, 200]


def test_chunk_stream_ids_of_every_size() -> None:
    writer = ChunkWriter()
    ids = [2, 63, 64, 319, 320, 65599]
    data = b"".join(writer.write(csid, AUDIO, 1, csid, b"x") for csid in ids)
    assert [m.timestamp for m in read_all(ChunkReader(max_chunk_streams=6), data)] == ids
    assert [m.timestamp for m in read_all(ChunkReader(max_chunk_streams=6), data, [1])] == ids


# -- extended timestamps ---------------------------------------------------------


def test_an_extended_timestamp_in_every_chunk_of_a_message() -> None:
    body = b"\xaa" * 200
    data = ChunkWriter().write(3, VIDEO, 1, 0x01020304, body)
    assert data[1:4] == b"\xff\xff\xff"
    assert data.count(b"\x01\x02\x03\x04") == 2  # the first chunk and the continuation
    assert read_all(ChunkReader(), data) == [RtmpMessage(VIDEO, 1, 0x01020304, body)]


def test_an_extended_timestamp_left_out_of_continuations_is_tolerated() -> None:
    body = b"\xaa" * 200
    data = (
        bytes.fromhex("03 ffffff 0000c8 09 01000000 01020304")
        + body[:128]
        + b"\xc3"  # no extended timestamp repeated here
        + body[128:]
    )
    assert read_all(ChunkReader(), data) == [RtmpMessage(VIDEO, 1, 0x01020304, body)]


def test_extended_deltas_and_a_new_message_in_format_3() -> None:
    writer = ChunkWriter()
    times = [5, 5 + 0x01000000, 5 + 2 * 0x01000000, 5 + 3 * 0x01000000]
    data = b"".join(writer.write(3, AUDIO, 1, t, b"abc") for t in times)
    assert data.count(b"\xc3\x01\x00\x00\x00") == 2  # format 3, extended
    assert [m.timestamp for m in read_all(ChunkReader(), data)] == times
    assert [m.timestamp for m in read_all(ChunkReader(), data, [1])] == times


def test_timestamps_wrap_at_32_bits() -> None:
    data = bytes.fromhex("03 ffffff 000001 08 01000000 fffffff0 aa 83 000020 bb")
    assert [m.timestamp for m in read_all(ChunkReader(), data)] == [0xFFFFFFF0, 0x10]


# -- control messages the reader applies --------------------------------------------


def test_set_chunk_size_applies_to_the_chunks_after_it() -> None:
    writer = ChunkWriter()
    body = bytes(10_000)
    data = writer.set_chunk_size(4096) + writer.write(6, VIDEO, 1, 0, body)
    reader = ChunkReader()
    assert read_all(reader, data) == [RtmpMessage(VIDEO, 1, 0, body)]
    assert reader.chunk_size == 4096


def test_set_chunk_size_ignores_the_top_bit() -> None:
    reader = ChunkReader()
    read_all(reader, bytes.fromhex("02 000000 000004 01 00000000 80001000"))
    assert reader.chunk_size == 4096


def test_abort_drops_the_message_in_progress() -> None:
    first_chunk = ChunkWriter().write(4, VIDEO, 1, 0, b"\x01" * 300)[: 12 + 128]
    abort = ChunkWriter().write(2, ABORT, 0, 0, struct.pack(">I", 4))
    # The same length again, in format 3 chunks only: a new message once
    # the first was aborted, its continuation otherwise.
    fresh = b"\x02" * 300
    again = b"\xc4" + fresh[:128] + b"\xc4" + fresh[128:256] + b"\xc4" + fresh[256:]
    assert read_all(ChunkReader(), first_chunk + abort + again) == [RtmpMessage(VIDEO, 1, 0, fresh)]
    assert read_all(ChunkReader(), first_chunk + again)[0].body != fresh


def test_a_new_header_mid_message_drops_the_unfinished_one() -> None:
    partial = ChunkWriter().write(4, VIDEO, 1, 0, bytes(300))[: 12 + 128]
    fresh = ChunkWriter().write(4, AUDIO, 1, 9, b"fresh")
    assert read_all(ChunkReader(), partial + fresh) == [RtmpMessage(AUDIO, 1, 9, b"fresh")]


def test_an_empty_message_and_counting_bytes() -> None:
    data = ChunkWriter().write(3, COMMAND_AMF0, 0, 0, b"")
    reader = ChunkReader()
    assert read_all(reader, data) == [RtmpMessage(COMMAND_AMF0, 0, 0, b"")]
    assert reader.bytes_received == len(data)


def test_a_stream_may_start_with_a_format_1_header() -> None:
    # Not what the spec says, but encoders do it; the timestamp is absolute.
    data = bytes.fromhex("45 000010 000002 08 abcd")
    assert read_all(ChunkReader(), data) == [RtmpMessage(AUDIO, 0, 16, b"\xab\xcd")]


# -- limits -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        (bytes.fromhex("02 000000 000004 01 00000000 00000000"), "chunk size 0"),
        (bytes.fromhex("02 000000 000004 01 00000000 7fffffff"), "chunk size 2147483647"),
        (bytes.fromhex("02 000000 000002 01 00000000 0001"), "without a size"),
        (bytes.fromhex("02 000000 000001 02 00000000 00"), "without a chunk stream"),
        (bytes.fromhex("03 000000 100001 09 01000000"), "1048577-byte message"),
        (bytes.fromhex("83 000000"), "format 2"),
        (bytes.fromhex("c3"), "format 3"),
    ],
)
def test_protocol_errors(data: bytes, problem: str) -> None:
    reader = ChunkReader(max_message_size=1 << 20)
    with pytest.raises(RtmpProtocolError, match=problem):
        read_all(reader, data)


def test_too_many_chunk_streams() -> None:
    writer = ChunkWriter()
    data = b"".join(writer.write(csid, AUDIO, 1, 0, b"x") for csid in range(3, 3 + 65))
    with pytest.raises(RtmpProtocolError, match="more than 64 chunk streams"):
        read_all(ChunkReader(), data)


def test_unfinished_messages_may_not_pile_up() -> None:
    reader = ChunkReader(max_message_size=1000, max_pending_bytes=2500)
    writer = ChunkWriter()
    data = b"".join(
        writer.write(csid, VIDEO, 1, 0, bytes(1000))[: 12 + 128] for csid in range(3, 30)
    )
    with pytest.raises(RtmpProtocolError, match="2500 bytes of unfinished messages"):
        read_all(reader, data)


def test_finished_messages_no_longer_count_as_unfinished() -> None:
    reader = ChunkReader(max_message_size=1000, max_pending_bytes=2000)
    writer = ChunkWriter()
    data = b"".join(writer.write(6, VIDEO, 1, step, bytes(1000)) for step in range(50))
    assert len(read_all(reader, data, [300])) == 50


# -- round trips and fuzzing ----------------------------------------------------------------

message_lists = st.lists(
    st.tuples(
        st.sampled_from([2, 3, 4, 63, 64, 65, 319, 320, 1000, 65599]),
        st.sampled_from([3, 4, 5, 6, AUDIO, VIDEO, 15, 18, COMMAND_AMF0, 22]),
        st.sampled_from([0, 1, 0xFFFFFFFF]),
        st.one_of(st.integers(0, 100), st.integers(0, 0xFFFFFFFF), st.just(0xFFFFFF)),
        st.binary(max_size=700),
    ),
    max_size=25,
)


@FUZZ
@given(
    message_lists,
    st.sampled_from([1, 2, 127, 128, 129, 4096, 65536]),
    st.booleans(),
    st.lists(st.integers(1, 900), min_size=1, max_size=8),
)
def test_whatever_the_writer_writes_the_reader_reads_back(
    items: list[tuple[int, int, int, int, bytes]],
    chunk_size: int,
    compact: bool,
    pieces: list[int],
) -> None:
    writer = ChunkWriter(compact=compact)
    data = writer.set_chunk_size(chunk_size)
    expected = []
    times: dict[int, int] = {}
    for csid, type_id, stream_id, delta_or_time, body in items:
        # Mostly rising timestamps per chunk stream (deltas), sometimes jumps.
        timestamp = (times.get(csid, 0) + delta_or_time) & 0xFFFFFFFF
        times[csid] = timestamp
        data += writer.write(csid, type_id, stream_id, timestamp, body)
        expected.append(RtmpMessage(type_id, stream_id, timestamp, body))
    assert read_all(ChunkReader(), data, pieces) == expected


def sample_stream(seed: int) -> tuple[bytes, list[RtmpMessage]]:
    rng = random.Random(seed)
    writer = ChunkWriter()
    data = writer.set_chunk_size(rng.choice([64, 128, 4096]))
    messages = []
    for step in range(40):
        csid, type_id = rng.choice([(4, AUDIO), (6, VIDEO), (3, COMMAND_AMF0)])
        timestamp = step * 33 + rng.choice([0, 0, 0x01000000])
        body = rng.randbytes(rng.choice([0, 5, 300, 5000]))
        data += writer.write(csid, type_id, 1, timestamp, body)
        messages.append(RtmpMessage(type_id, 1, timestamp, body))
    return data, messages


def test_a_stream_cut_anywhere_yields_a_prefix_and_no_error() -> None:
    data, messages = sample_stream(1)
    for end in range(0, len(data), len(data) // 200):
        got = read_all(ChunkReader(), data[:end], [301])
        assert got == messages[: len(got)]


@FUZZ
@given(st.binary(max_size=3000), st.lists(st.integers(1, 500), min_size=1, max_size=4))
def test_garbage_raises_protocol_errors_only(data: bytes, pieces: list[int]) -> None:
    reader = ChunkReader(max_message_size=4096, max_pending_bytes=8192)
    with contextlib.suppress(RtmpProtocolError):
        read_all(reader, data, pieces)
    assert reader._pending <= 8192


@FUZZ
@given(
    st.integers(0, 2**32),
    st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)), max_size=6),
)
def test_a_damaged_stream_raises_protocol_errors_only(
    seed: int, damage: list[tuple[int, int]]
) -> None:
    data, _ = sample_stream(seed % 50)
    broken = bytearray(data)
    for position, value in damage:
        broken[position % len(broken)] = value
    with contextlib.suppress(RtmpProtocolError):
        read_all(ChunkReader(max_message_size=1 << 16), bytes(broken), [1000, 7])


def test_a_seeded_flood_of_random_bytes_after_a_good_start() -> None:
    """Bounded: 400 connections' worth, 2 MB of random bytes."""
    rng = random.Random(11)
    start, _ = sample_stream(2)
    for _ in range(400):
        reader = ChunkReader(max_message_size=1 << 16, max_pending_bytes=1 << 17)
        data = start[: rng.randrange(3000)] + rng.randbytes(5000)
        with contextlib.suppress(RtmpProtocolError):
            read_all(reader, data, [rng.randrange(1, 4000)])
        assert reader._pending <= 1 << 17


def test_writer_refuses_what_rtmp_cannot_carry() -> None:
    writer = ChunkWriter()
    with pytest.raises(ValueError, match="chunk stream ids"):
        writer.write(1, AUDIO, 0, 0, b"")
    with pytest.raises(ValueError, match="16 MiB"):
        writer.write(3, AUDIO, 0, 0, bytes(1 << 24))
    with pytest.raises(ValueError, match="chunk sizes"):
        writer.set_chunk_size(0)
    assert writer.set_chunk_size(1)[7] == SET_CHUNK_SIZE
