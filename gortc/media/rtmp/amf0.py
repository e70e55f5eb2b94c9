"""AMF0, the encoding of RTMP's commands and metadata (Adobe's "Action
Message Format -- AMF 0", 2007).

Python values stand for AMF0 ones: ``float`` (number; ``int`` is encoded as
one too), ``bool``, ``str`` (string, or long string past 65,535 bytes),
``dict`` (object), :class:`EcmaArray` (ECMA array, a ``dict`` with its own
marker), ``list`` (strict array), ``None`` (null), :data:`UNDEFINED` and
:class:`AmfDate`. Decoding checks every length against the bytes at hand and
limits nesting, so hostile input costs at most its own size; anything
malformed raises :class:`AmfError`.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Final

from gortc.media.rtmp.errors import RtmpProtocolError

NUMBER: Final = 0x00
BOOLEAN: Final = 0x01
STRING: Final = 0x02
OBJECT: Final = 0x03
NULL: Final = 0x05
UNDEFINED_MARKER: Final = 0x06
ECMA_ARRAY: Final = 0x08
OBJECT_END: Final = 0x09
STRICT_ARRAY: Final = 0x0A
DATE: Final = 0x0B
LONG_STRING: Final = 0x0C

# Real commands and metadata nest two or three levels; this only stops
# a crafted message from recursing without end.
MAX_DEPTH: Final = 32

_DOUBLE = struct.Struct(">d")
_U16 = struct.Struct(">H")
_U32 = struct.Struct(">I")
_DATE = struct.Struct(">dh")


class AmfError(RtmpProtocolError):
    """Bytes that are not well-formed AMF0 (or use a type RTMP ingest has no
    use for: references, typed objects, AMF3 switches...)."""


class _Undefined:
    _instance: _Undefined | None = None

    def __new__(cls) -> _Undefined:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "UNDEFINED"

    def __bool__(self) -> bool:
        return False


UNDEFINED: Final = _Undefined()


class EcmaArray(dict[str, object]):
    """An AMF0 ECMA array (what ``onMetaData`` carries): a dict that encodes
    with the ECMA array marker instead of the object one."""


@dataclass(frozen=True, slots=True)
class AmfDate:
    epoch_ms: float  # milliseconds since 1970-01-01 UTC
    timezone: int = 0  # minutes; the spec says to send 0 and ignore it


def encode(*values: object) -> bytes:
    """The values one after the other (a command: name, transaction id,
    command object, arguments). Raises ValueError on a value AMF0 cannot
    carry (a key over 65,535 bytes, an unknown type)."""
    out = bytearray()
    for value in values:
        _encode_value(out, value, 0)
    return bytes(out)


def decode(data: bytes | bytearray | memoryview) -> list[object]:
    """Every value in ``data``. Raises AmfError."""
    view = memoryview(data)
    values = []
    offset = 0
    while offset < len(view):
        value, offset = _decode_value(view, offset, 0)
        values.append(value)
    return values


def _encode_value(out: bytearray, value: object, depth: int) -> None:
    if depth > MAX_DEPTH:
        raise ValueError("AMF0 values nested too deep")
    if value is None:
        out.append(NULL)
    elif value is UNDEFINED:
        out.append(UNDEFINED_MARKER)
    elif isinstance(value, bool):
        out += bytes((BOOLEAN, 1 if value else 0))
    elif isinstance(value, int | float):
        out.append(NUMBER)
        out += _DOUBLE.pack(float(value))
    elif isinstance(value, str):
        encoded = value.encode("utf-8")
        if len(encoded) <= 0xFFFF:
            out.append(STRING)
            out += _U16.pack(len(encoded))
        else:
            out.append(LONG_STRING)
            out += _U32.pack(len(encoded))
        out += encoded
    elif isinstance(value, EcmaArray):
        out.append(ECMA_ARRAY)
        out += _U32.pack(len(value))
        _encode_properties(out, value, depth)
    elif isinstance(value, dict):
        out.append(OBJECT)
        _encode_properties(out, value, depth)
    elif isinstance(value, list | tuple):
        out.append(STRICT_ARRAY)
        out += _U32.pack(len(value))
        for item in value:
            _encode_value(out, item, depth + 1)
    elif isinstance(value, AmfDate):
        out.append(DATE)
        out += _DATE.pack(value.epoch_ms, value.timezone)
    else:
        raise ValueError(f"AMF0 cannot carry a {type(value).__name__}")


def _encode_properties(out: bytearray, properties: dict[str, object], depth: int) -> None:
    for key, item in properties.items():
        if not isinstance(key, str):
            raise ValueError("AMF0 property names are strings")
        name = key.encode("utf-8")
        if not name or len(name) > 0xFFFF:
            # An empty name followed by the end marker ends the object.
            raise ValueError("AMF0 property names are 1 to 65,535 bytes")
        out += _U16.pack(len(name))
        out += name
        _encode_value(out, item, depth + 1)
    out += b"\x00\x00\x09"


def _need(view: memoryview, offset: int, size: int) -> None:
    if offset + size > len(view):
        raise AmfError("AMF0 value cut short")


def _text(view: memoryview, offset: int, size: int) -> str:
    _need(view, offset, size)
    return str(view[offset : offset + size], "utf-8", "replace")


def _decode_value(view: memoryview, offset: int, depth: int) -> tuple[object, int]:
    if depth > MAX_DEPTH:
        raise AmfError("AMF0 values nested too deep")
    _need(view, offset, 1)
    marker = view[offset]
    offset += 1
    if marker == NUMBER:
        _need(view, offset, 8)
        return _DOUBLE.unpack_from(view, offset)[0], offset + 8
    if marker == BOOLEAN:
        _need(view, offset, 1)
        return view[offset] != 0, offset + 1
    if marker == STRING:
        _need(view, offset, 2)
        (size,) = _U16.unpack_from(view, offset)
        return _text(view, offset + 2, size), offset + 2 + size
    if marker == LONG_STRING:
        _need(view, offset, 4)
        (size,) = _U32.unpack_from(view, offset)
        return _text(view, offset + 4, size), offset + 4 + size
    if marker == OBJECT:
        properties: dict[str, object] = {}
        return properties, _decode_properties(view, offset, depth, properties, ecma=False)
    if marker == ECMA_ARRAY:
        _need(view, offset, 4)
        array = EcmaArray()
        # The count is only a hint (encoders get it wrong); the end marker
        # ends the array.
        return array, _decode_properties(view, offset + 4, depth, array, ecma=True)
    if marker == STRICT_ARRAY:
        _need(view, offset, 4)
        (count,) = _U32.unpack_from(view, offset)
        offset += 4
        # Each value takes one byte at least: a larger count is a lie.
        if count > len(view) - offset:
            raise AmfError("AMF0 strict array longer than its message")
        items = []
        for _ in range(count):
            item, offset = _decode_value(view, offset, depth + 1)
            items.append(item)
        return items, offset
    if marker == NULL:
        return None, offset
    if marker == UNDEFINED_MARKER:
        return UNDEFINED, offset
    if marker == DATE:
        _need(view, offset, 10)
        epoch_ms, timezone = _DATE.unpack_from(view, offset)
        return AmfDate(epoch_ms, timezone), offset + 10
    if marker == OBJECT_END:
        raise AmfError("AMF0 object end outside an object")
    raise AmfError(f"unsupported AMF0 type 0x{marker:02x}")


def _decode_properties(
    view: memoryview, offset: int, depth: int, into: dict[str, object], *, ecma: bool
) -> int:
    while True:
        if ecma and offset == len(view):
            return offset  # some encoders leave the end marker out of ECMA arrays
        _need(view, offset, 2)
        (size,) = _U16.unpack_from(view, offset)
        offset += 2
        if size == 0:
            _need(view, offset, 1)
            if view[offset] != OBJECT_END:
                raise AmfError("AMF0 property with an empty name")
            return offset + 1
        key = _text(view, offset, size)
        offset += size
        into[key], offset = _decode_value(view, offset, depth + 1)
