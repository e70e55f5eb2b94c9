"""AMF0 as RTMP publishers write it: round trips, known bytes, and garbage."""

from __future__ import annotations

import contextlib
import os
import random
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gortc.media.rtmp import amf0
from gortc.media.rtmp.amf0 import UNDEFINED, AmfDate, AmfError, EcmaArray

# `make fuzz-protocols` sets GORTC_FUZZ_EXAMPLES for a long run.
FUZZ = settings(
    database=None,
    deadline=None,
    max_examples=int(os.environ.get("GORTC_FUZZ_EXAMPLES", "150")),
)

text = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=40)
leaves = (
    st.none()
    | st.just(UNDEFINED)
    | st.booleans()
    | st.floats(allow_nan=False)
    | text
    | st.builds(
        AmfDate,
        st.floats(allow_nan=False, allow_infinity=False),
        st.integers(-32768, 32767),
    )
)
keys = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=20)
values = st.recursive(
    leaves,
    lambda children: (
        st.lists(children, max_size=5)
        | st.dictionaries(keys, children, max_size=5)
        | st.dictionaries(keys, children, max_size=5).map(EcmaArray)
    ),
    max_leaves=15,
)


@FUZZ
@given(st.lists(values, max_size=6))
def test_every_value_survives_a_round_trip(items: list[object]) -> None:
    decoded = amf0.decode(amf0.encode(*items))
    assert decoded == items
    # An ECMA array stays one (it has its own marker), an object stays a dict.
    assert [type(item) for item in decoded] == [type(item) for item in items]


def test_ffmpegs_connect_command_decodes() -> None:
    # What ffmpeg 5.1 sent to rtmp://127.0.0.1:38587/live/k, off the wire.
    body = bytes.fromhex(
        "020007636f6e6e656374003ff00000000000000300036170700200046c6976650004747970650200"
        "0a6e6f6e707269766174650008666c617368566572020024464d4c452f332e302028636f6d706174"
        "69626c653b204c61766635392e32372e313030290005746355726c02001b72746d703a2f2f313237"
        "2e302e302e313a33383538372f6c697665000009"
    )
    assert amf0.decode(body) == [
        "connect",
        1.0,
        {
            "app": "live",
            "type": "nonprivate",
            "flashVer": "FMLE/3.0 (compatible; Lavf59.27.100)",
            "tcUrl": "rtmp://127.0.0.1:38587/live",
        },
    ]
    assert amf0.encode(*amf0.decode(body)) == body


def test_metadata_come_as_an_ecma_array() -> None:
    body = amf0.encode(
        "@setDataFrame", "onMetaData", EcmaArray(width=1920.0, height=1080.0, stereo=True)
    )
    assert body[: 3 + 13] == b"\x02\x00\x0d@setDataFrame"
    _, _, metadata = amf0.decode(body)
    assert isinstance(metadata, EcmaArray)
    assert metadata == {"width": 1920.0, "height": 1080.0, "stereo": True}


def test_long_strings_dates_and_strict_arrays() -> None:
    long = "x" * 70_000
    encoded = amf0.encode(long, AmfDate(1.5e12, 0), [1, "a", None])
    assert encoded[0] == amf0.LONG_STRING
    assert amf0.decode(encoded) == [long, AmfDate(1.5e12, 0), [1.0, "a", None]]


def test_an_ecma_array_without_its_end_marker_is_taken() -> None:
    # Some encoders leave it out at the end of a message.
    body = b"\x08\x00\x00\x00\x01\x00\x05width\x00" + struct.pack(">d", 640.0)
    assert amf0.decode(body) == [{"width": 640.0}]


def test_the_ecma_array_count_is_only_a_hint() -> None:
    body = b"\x08\x00\x00\x00\x09\x00\x01a\x05\x00\x00\x09"
    assert amf0.decode(body) == [{"a": None}]


def test_invalid_utf8_is_replaced_not_fatal() -> None:
    assert amf0.decode(b"\x02\x00\x02\xff\xfe") == ["\ufffd\ufffd"]


@pytest.mark.parametrize(
    "body",
    [
        b"\x00\x01\x02",  # a number cut short
        b"\x02\x00\x10abc",  # a string longer than its message
        b"\x0c\xff\xff\xff\xffabc",  # a long string of 4 GiB
        b"\x0a\xff\xff\xff\xff\x05",  # a strict array of 4 billion values
        b"\x03\x00\x01a",  # an object cut after a key
        b"\x03\x00\x00\x05",  # an empty key not followed by the end marker
        b"\x09",  # an object end on its own
        b"\x07\x00\x01",  # a reference
        b"\x10\x00\x01a\x00\x00\x09",  # a typed object
        b"\x11",  # the switch to AMF3
        b"\x0b\x00\x00",  # a date cut short
    ],
)
def test_malformed_input_raises_amf_error(body: bytes) -> None:
    with pytest.raises(AmfError):
        amf0.decode(body)


def test_deep_nesting_is_refused_not_recursed_into() -> None:
    body = b"\x0a\x00\x00\x00\x01" * 100_000 + b"\x05"
    with pytest.raises(AmfError, match="nested too deep"):
        amf0.decode(body)


def test_every_truncation_of_a_command_raises_amf_error_only() -> None:
    body = amf0.encode("_result", 1.0, {"fmsVer": "FMS/3", "n": [1, 2, {"x": UNDEFINED}]}, None)
    for end in range(1, len(body)):
        with contextlib.suppress(AmfError):
            amf0.decode(body[:end])


@FUZZ
@given(st.binary(max_size=300))
def test_garbage_raises_amf_error_or_decodes(data: bytes) -> None:
    with contextlib.suppress(AmfError):
        amf0.decode(data)


def test_a_seeded_flood_of_mutated_commands_raises_amf_error_only() -> None:
    rng = random.Random(7)
    base = bytearray(amf0.encode("connect", 1.0, {"app": "live", "tcUrl": "rtmp://h/live"}))
    for _ in range(3000):
        data = bytearray(base)
        for _ in range(rng.randrange(1, 4)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        with contextlib.suppress(AmfError):
            amf0.decode(bytes(data[: rng.randrange(1, len(data) + 1)]))


@pytest.mark.parametrize(
    "value",
    [object(), {1: "a"}, {"": 1.0}, {"k" * 70_000: 1.0}, b"bytes"],
    ids=["object", "int key", "empty key", "long key", "bytes"],
)
def test_values_amf0_cannot_carry_are_refused(value: object) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - each case has its own message
        amf0.encode(value)
