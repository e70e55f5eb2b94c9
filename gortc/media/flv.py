"""FLV, the container RTMP's media messages come from: written, read, checked.

An RTMP publisher (OBS) sends each audio or video frame as the body of an
FLV tag (see :mod:`gortc.media.stream_sink`). Wrapping those bodies back in
tags, after an FLV file header, gives a stream FFmpeg's ``flv`` demuxer reads
as it would read a file: that is how :mod:`gortc.media.hls` hands RTMP's
media to PyAV without parsing H.264 or AAC itself.

The checks here (:func:`inspect_video`, :func:`inspect_audio`) look only at a
body's few header bytes, and for H.264 at the NAL unit length prefixes, so a
malformed body is refused with a reason instead of reaching FFmpeg. They are
cheap enough to run on the event loop for every frame.

Layout (Adobe's FLV specification v10.1, annex E):

- file header: ``FLV`` 0x01, flags (0x04 audio, 0x01 video), header size 9
  (u32), then PreviousTagSize0 = 0 (u32);
- each tag: type (8 audio, 9 video, 18 script data), body size (u24),
  timestamp in ms (u24 low bits, then u8 high bits), stream id 0 (u24), the
  body, then the tag's whole size, 11 + body size (u32);
- video body (H.264): frame type << 4 | codec id 7, AVC packet type (0
  sequence header = AVCDecoderConfigurationRecord, 1 NAL units, each behind
  its length, 2 end of sequence), composition time offset in ms (s24);
- audio body (AAC): 0xAF-ish (sound format 10 << 4 | rate, size, channels),
  AAC packet type (0 AudioSpecificConfig, 1 raw frame).
"""

from __future__ import annotations

import enum
import struct
from collections.abc import Iterator
from dataclasses import dataclass

TAG_AUDIO = 8
TAG_VIDEO = 9
TAG_SCRIPT = 18

HEADER_SIZE = 9
TAG_HEADER_SIZE = 11
FLAG_AUDIO = 0x04
FLAG_VIDEO = 0x01

VIDEO_CODEC_H264 = 7
SOUND_FORMAT_AAC = 10
# Video frame types (upper nibble of the first byte).
FRAME_KEY = 1
FRAME_INTER = 2
FRAME_DISPOSABLE_INTER = 3
FRAME_GENERATED_KEY = 4
FRAME_INFO = 5  # "video info/command frame": no picture
# Enhanced RTMP (HEVC, AV1, VP9 over RTMP) sets the top bit of the first byte.
EX_HEADER = 0x80

VIDEO_CODECS = {2: "Sorenson H.263", 3: "Screen video", 4: "VP6", 5: "VP6 alpha", 6: "Screen 2"}
SOUND_FORMATS = {
    0: "linear PCM",
    1: "ADPCM",
    2: "MP3",
    3: "linear PCM",
    4: "Nellymoser",
    5: "Nellymoser",
    6: "Nellymoser",
    7: "G.711 A-law",
    8: "G.711 mu-law",
    11: "Speex",
    14: "MP3 8 kHz",
}


class FlvError(ValueError):
    """A body or file that is not the FLV/H.264/AAC this server accepts; the
    message says why, in words a streamer's log can show."""


class Packet(enum.Enum):
    CONFIG = "config"  # AVC sequence header / AAC AudioSpecificConfig
    FRAME = "frame"  # coded media
    END = "end"  # AVC end of sequence
    NOTHING = "nothing"  # a video info/command frame, an empty frame: not passed on


@dataclass(frozen=True, slots=True)
class VideoPacket:
    packet: Packet
    keyframe: bool = False
    # For CONFIG: the byte length of each NAL unit's length prefix (1, 2 or 4).
    nal_length_size: int = 0


def file_header(*, audio: bool, video: bool) -> bytes:
    """The FLV file header and PreviousTagSize0: what comes before the first tag."""
    flags = (FLAG_AUDIO if audio else 0) | (FLAG_VIDEO if video else 0)
    return b"FLV\x01" + bytes([flags]) + HEADER_SIZE.to_bytes(4, "big") + b"\x00\x00\x00\x00"


def encode_tag(kind: int, timestamp_ms: int, body: bytes) -> bytes:
    """One tag and its PreviousTagSize, ready to follow the previous one.

    Timestamps are RTMP's 32-bit milliseconds (they wrap after 49.7 days)."""
    size = len(body)
    if size >= 1 << 24:
        raise FlvError(f"a {size}-byte frame is too large for FLV")
    timestamp_ms &= 0xFFFFFFFF
    header = struct.pack(
        ">B3s3sB3s",
        kind,
        size.to_bytes(3, "big"),
        (timestamp_ms & 0xFFFFFF).to_bytes(3, "big"),
        timestamp_ms >> 24,
        b"\x00\x00\x00",
    )
    return header + body + (TAG_HEADER_SIZE + size).to_bytes(4, "big")


@dataclass(frozen=True, slots=True)
class Tag:
    kind: int
    timestamp_ms: int
    body: bytes


def read_tags(data: bytes) -> Iterator[Tag]:
    """The tags of a whole FLV file (the header's flags are not checked).

    Raises :class:`FlvError` on a file that is not FLV or a tag cut short;
    a cut-off last PreviousTagSize is tolerated (a recording cut mid-write)."""
    if len(data) < HEADER_SIZE or data[:3] != b"FLV":
        raise FlvError("not an FLV file")
    position = int.from_bytes(data[5:9], "big") + 4
    while position < len(data):
        if position + TAG_HEADER_SIZE > len(data):
            raise FlvError(f"tag header cut short at byte {position}")
        head = data[position : position + TAG_HEADER_SIZE]
        size = int.from_bytes(head[1:4], "big")
        timestamp = int.from_bytes(head[4:7], "big") | head[7] << 24
        start = position + TAG_HEADER_SIZE
        if start + size > len(data):
            raise FlvError(f"tag body cut short at byte {start}")
        yield Tag(head[0] & 0x1F, timestamp, data[start : start + size])
        position = start + size + 4


def inspect_video(body: bytes, nal_length_size: int) -> VideoPacket:
    """What an RTMP video body holds; :class:`FlvError` if it is not well-formed
    H.264. ``nal_length_size`` is the last sequence header's (0 before one:
    NAL units are then not walked)."""
    if not body:
        raise FlvError("empty video message")
    first = body[0]
    if first & EX_HEADER:
        raise FlvError("enhanced RTMP video (HEVC, AV1, VP9) is not supported: send H.264")
    frame_type, codec = first >> 4, first & 0x0F
    if frame_type == FRAME_INFO:
        return VideoPacket(Packet.NOTHING)
    if codec != VIDEO_CODEC_H264:
        name = VIDEO_CODECS.get(codec, f"id {codec}")
        raise FlvError(f"video codec {name} is not supported: send H.264")
    if frame_type not in (FRAME_KEY, FRAME_INTER, FRAME_DISPOSABLE_INTER, FRAME_GENERATED_KEY):
        raise FlvError(f"unknown video frame type {frame_type}")
    if len(body) < 5:
        raise FlvError(f"H.264 message of {len(body)} bytes is too short")
    packet_type = body[1]
    if packet_type == 0:
        record = body[5:]
        # AVCDecoderConfigurationRecord: version 1, profile, compatibility,
        # level, 0b111111 + lengthSizeMinusOne, 0b111 + number of SPS, ...
        if len(record) < 7 or record[0] != 1:
            raise FlvError("malformed H.264 sequence header (AVCDecoderConfigurationRecord)")
        size = (record[4] & 0x03) + 1
        if size == 3:
            raise FlvError("malformed H.264 sequence header (3-byte NAL lengths)")
        return VideoPacket(Packet.CONFIG, nal_length_size=size)
    if packet_type == 2:
        return VideoPacket(Packet.END)
    if packet_type != 1:
        raise FlvError(f"unknown AVC packet type {packet_type}")
    if len(body) == 5:
        return VideoPacket(Packet.NOTHING)
    if nal_length_size:
        _walk_nal_units(body, 5, nal_length_size)
    return VideoPacket(Packet.FRAME, keyframe=frame_type in (FRAME_KEY, FRAME_GENERATED_KEY))


def _walk_nal_units(body: bytes, position: int, length_size: int) -> None:
    end = len(body)
    while position < end:
        if position + length_size > end:
            raise FlvError("malformed H.264 message (NAL unit length cut short)")
        length = int.from_bytes(body[position : position + length_size], "big")
        position += length_size + length
        if position > end:
            raise FlvError("malformed H.264 message (NAL unit lengths do not add up)")


def inspect_audio(body: bytes) -> Packet:
    """What an RTMP audio body holds (CONFIG, FRAME, or NOTHING for an empty
    frame); :class:`FlvError` if it is not AAC."""
    if not body:
        raise FlvError("empty audio message")
    sound_format = body[0] >> 4
    if sound_format != SOUND_FORMAT_AAC:
        name = SOUND_FORMATS.get(sound_format, f"id {sound_format}")
        raise FlvError(f"audio codec {name} is not supported: send AAC")
    if len(body) < 2:
        raise FlvError("AAC message of 1 byte is too short")
    if body[1] == 0:
        # AudioSpecificConfig: 5 bits object type, 4 bits frequency index, ...
        if len(body) < 4:
            raise FlvError("malformed AAC sequence header (AudioSpecificConfig)")
        return Packet.CONFIG
    if body[1] != 1:
        raise FlvError(f"unknown AAC packet type {body[1]}")
    return Packet.FRAME if len(body) > 2 else Packet.NOTHING
