"""The relaying instance's memory of segments: bounded in bytes and age."""

from __future__ import annotations

from gortc.delivery.live_relay import _SegmentCache

TS = {"Content-Type": "video/mp2t"}


def key(name: str) -> tuple[str, str, str]:
    return ("http://10.0.0.1:8080", "01ROOM", name)


def test_the_oldest_segments_go_first_past_the_byte_bound() -> None:
    cache = _SegmentCache(max_bytes=10, max_seconds=60)
    cache.put(key("seg_a_00001.ts"), b"123456", TS)
    cache.put(key("seg_a_00002.ts"), b"abcdef", TS)
    assert cache.get(key("seg_a_00001.ts")) is None
    assert cache.get(key("seg_a_00002.ts")) == (b"abcdef", TS)


def test_a_segment_is_forgotten_after_its_time() -> None:
    cache = _SegmentCache(max_bytes=1000, max_seconds=-1.0)  # too old as soon as kept
    cache.put(key("seg_a_00001.ts"), b"123456", TS)
    assert cache.get(key("seg_a_00001.ts")) is None


def test_the_first_copy_of_a_segment_stays() -> None:
    cache = _SegmentCache(max_bytes=1000, max_seconds=60)
    cache.put(key("seg_a_00001.ts"), b"first", TS)
    cache.put(key("seg_a_00001.ts"), b"second", TS)
    assert cache.get(key("seg_a_00001.ts")) == (b"first", TS)
