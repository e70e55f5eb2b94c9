"""FLV tags written and read back, and the checks on RTMP's media bodies."""

from __future__ import annotations

import pytest

from gortc.media import flv
from gortc.media.flv import FlvError, Packet

# Version 1, High profile, 4-byte NAL lengths, one 4-byte SPS, no PPS.
AVC_CONFIG = bytes.fromhex("170000000001640028ffe100046764002800")
AAC_CONFIG = bytes.fromhex("af001210")


def nal_units(*sizes: int, length_size: int = 4) -> bytes:
    return b"".join(size.to_bytes(length_size, "big") + b"\x65" * size for size in sizes)


def test_tags_round_trip_with_extended_timestamps() -> None:
    tags = [
        (flv.TAG_VIDEO, 0, AVC_CONFIG),
        (flv.TAG_AUDIO, 0x12345678, AAC_CONFIG),
        (flv.TAG_VIDEO, 0xFFFFFF + 1, b"\x27\x01\x00\x00\x00" + nal_units(3)),
    ]
    data = flv.file_header(audio=True, video=True) + b"".join(
        flv.encode_tag(kind, ts, body) for kind, ts, body in tags
    )
    assert data[:13] == b"FLV\x01\x05\x00\x00\x00\x09\x00\x00\x00\x00"
    read = [(tag.kind, tag.timestamp_ms, tag.body) for tag in flv.read_tags(data)]
    assert read == tags
    # Each tag is followed by its own size: the previous-tag-size of the next.
    first = flv.encode_tag(*tags[0])
    assert int.from_bytes(first[-4:], "big") == len(first) - 4


def test_header_flags_say_which_streams_there_are() -> None:
    assert flv.file_header(audio=False, video=True)[4] == 0x01
    assert flv.file_header(audio=True, video=False)[4] == 0x04


def test_reading_refuses_what_is_not_flv_or_cut_short() -> None:
    with pytest.raises(FlvError, match="not an FLV"):
        list(flv.read_tags(b"GIF89a..."))
    whole = flv.file_header(audio=True, video=False) + flv.encode_tag(8, 0, AAC_CONFIG)
    with pytest.raises(FlvError, match="cut short"):
        list(flv.read_tags(whole[:-6]))


def test_video_bodies() -> None:
    config = flv.inspect_video(AVC_CONFIG, 0)
    assert config.packet is Packet.CONFIG
    assert config.nal_length_size == 4
    key = flv.inspect_video(b"\x17\x01\x00\x00\x21" + nal_units(10, 2), 4)
    assert (key.packet, key.keyframe) == (Packet.FRAME, True)
    inter = flv.inspect_video(b"\x27\x01\x00\x00\x21" + nal_units(10), 4)
    assert (inter.packet, inter.keyframe) == (Packet.FRAME, False)
    two_byte = flv.inspect_video(b"\x27\x01\x00\x00\x00" + nal_units(5, length_size=2), 2)
    assert two_byte.packet is Packet.FRAME
    assert flv.inspect_video(b"\x17\x02\x00\x00\x00", 4).packet is Packet.END
    assert flv.inspect_video(b"\x50\x00", 4).packet is Packet.NOTHING  # info frame
    assert flv.inspect_video(b"\x27\x01\x00\x00\x00", 4).packet is Packet.NOTHING  # empty


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"", "empty video"),
        (b"\x12\x00\x00", "Sorenson H.263 is not supported: send H.264"),
        (b"\x9c\x00\x00\x00\x00", "enhanced RTMP"),
        (b"\x17\x01\x00", "too short"),
        (AVC_CONFIG[:5] + b"\x02" + AVC_CONFIG[6:], "sequence header"),
        (AVC_CONFIG[:5] + b"\x01\x64", "sequence header"),
        (AVC_CONFIG[:9] + b"\xfe" + AVC_CONFIG[10:], "3-byte NAL lengths"),
        (b"\x17\x07\x00\x00\x00", "AVC packet type 7"),
        (b"\x17\x01\x00\x00\x00" + nal_units(10)[:-1], "do not add up"),
        (b"\x17\x01\x00\x00\x00\x00\x00", "cut short"),
        (b"\x67\x01\x00\x00\x00", "frame type 6"),
    ],
)
def test_malformed_or_unsupported_video_is_refused(body: bytes, reason: str) -> None:
    with pytest.raises(FlvError, match=reason):
        flv.inspect_video(body, 4)


def test_audio_bodies() -> None:
    assert flv.inspect_audio(AAC_CONFIG) is Packet.CONFIG
    assert flv.inspect_audio(b"\xaf\x01\x21\x10") is Packet.FRAME
    assert flv.inspect_audio(b"\xaf\x01") is Packet.NOTHING


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"", "empty audio"),
        (b"\x2f\x01\xff\xfb", "MP3 is not supported: send AAC"),
        (b"\xbf\x01\x00", "Speex"),
        (b"\xaf", "too short"),
        (b"\xaf\x00\x12", "AudioSpecificConfig"),
        (b"\xaf\x05\x00", "AAC packet type 5"),
    ],
)
def test_malformed_or_unsupported_audio_is_refused(body: bytes, reason: str) -> None:
    with pytest.raises(FlvError, match=reason):
        flv.inspect_audio(body)


def test_oversized_frames_do_not_fit_a_tag() -> None:
    with pytest.raises(FlvError, match="too large"):
        flv.encode_tag(flv.TAG_VIDEO, 0, bytes(1 << 24))
