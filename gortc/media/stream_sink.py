"""What an ingest (RTMP, WHIP) hands a live stream's media to.

The media arrive as FLV tag bodies, the form RTMP carries them in (and what
OBS sends): a video body starts with the frame-type/codec byte (H.264:
0x17 keyframe, 0x27 inter frame, then the AVC packet type and composition
time), an audio body with the sound-format byte (AAC: 0xAF, then the AAC
packet type). Timestamps are RTMP's: milliseconds, from the stream's start.
"""

from __future__ import annotations

from typing import Protocol


class StreamSink(Protocol):
    def metadata(self, values: dict[str, object]) -> None:
        """``@setDataFrame``/``onMetaData`` (width, height, framerate, encoder...)."""
        ...

    def video(self, timestamp_ms: int, body: bytes) -> None: ...

    def audio(self, timestamp_ms: int, body: bytes) -> None: ...

    def end(self) -> None:
        """The publisher stopped (or was cut off); nothing more comes."""
        ...
