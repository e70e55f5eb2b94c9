"""Pre-encoded media for the call bots, encoded once and cached.

One clip per (codec, resolution): ten seconds at 30 fps of moving content
(drifting gradients, bouncing blocks, a band of scrolling fine texture), so
the rate controller spends a realistic bitrate: ~0.8 Mb/s at 640×360,
~2 Mb/s at 1280×720. VP8 comes from libvpx (realtime, CBR); H.264 from
libx264 (baseline profile, no B-frames, Annex-B with SPS/PPS before every
IDR, packetisation-mode-1 friendly). A keyframe every second, so a looping
clip and a late subscriber both find one soon. Audio is Opus, 48 kHz, 20 ms
frames (~32 kb/s).

The clips live under ``bench/out/calls-media/`` (git-ignored); a cached
clip is reused when its name (which carries every encoding setting) matches.
"""

from __future__ import annotations

import functools
import hashlib
import re
import struct
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

BENCH = Path(__file__).resolve().parent.parent
CACHE = BENCH / "out" / "calls-media"
FPS = 30
SECONDS = 10
VIDEO_CLOCK = 90_000
AUDIO_RATE = 48_000
AUDIO_FRAME = 960  # 20 ms at 48 kHz
RESOLUTIONS: dict[str, tuple[int, int]] = {"360p": (640, 360), "720p": (1280, 720)}
VIDEO_BITRATE: dict[str, int] = {"360p": 800_000, "720p": 2_000_000}
CODECS = ("vp8", "h264")
AUDIO_BITRATE = 32_000
FORMAT_VERSION = 1
MAGIC = b"gortc-calls-clip\n"
RECORD = struct.Struct("<IqB")  # length, pts, keyframe


@dataclass(frozen=True)
class EncodedPacket:
    data: bytes
    pts: int
    keyframe: bool


@dataclass(frozen=True)
class Clip:
    """Encoded packets in decode order; ``time_base`` is that of ``pts``,
    ``interval`` the time one packet covers in that time base."""

    name: str
    kind: str  # "video" | "audio"
    codec: str  # "vp8" | "h264" | "opus"
    time_base: Fraction
    interval: int
    packets: list[EncodedPacket]

    @functools.cached_property
    def digests(self) -> frozenset[bytes]:
        """Every packet's :func:`frame_digest`: a received frame found here
        went through the server bit for bit (not decoded and re-encoded)."""
        return frozenset(frame_digest(self.codec, p.data) for p in self.packets)

    @property
    def seconds(self) -> float:
        return float(len(self.packets) * self.interval * self.time_base)

    @property
    def bitrate(self) -> float:
        return sum(len(p.data) for p in self.packets) * 8 / self.seconds


START_CODE = re.compile(b"\x00\x00\x01")


def frame_digest(codec: str, data: bytes) -> bytes:
    """A digest of an encoded frame that survives RTP packetisation: for
    H.264 the NAL units count, not how their start codes were written."""
    if codec == "h264":
        units = [u.rstrip(b"\x00") for u in START_CODE.split(data)]
        data = b"".join(b"\x00\x00\x00\x01" + u for u in units if u)
    return hashlib.blake2b(data, digest_size=16).digest()


def video_clip_name(codec: str, resolution: str) -> str:
    width, height = RESOLUTIONS[resolution]
    return (
        f"{codec}-{width}x{height}-{FPS}fps-{SECONDS}s-{VIDEO_BITRATE[resolution] // 1000}k"
        f"-v{FORMAT_VERSION}"
    )


def audio_clip_name() -> str:
    return f"opus-{AUDIO_RATE}-{AUDIO_FRAME}-{SECONDS}s-{AUDIO_BITRATE // 1000}k-v{FORMAT_VERSION}"


# ---------------------------------------------------------------- content


def _video_frames(width: int, height: int, count: int) -> Iterator[av.VideoFrame]:
    """Moving YUV 4:2:0 pictures drawn with numpy, deterministic."""
    rng = np.random.default_rng(20261121)
    texture = rng.integers(16, 235, size=(height // 4, width * 2), dtype=np.uint8)
    ys = np.arange(height, dtype=np.float32)[:, None]
    xs = np.arange(width, dtype=np.float32)[None, :]
    cys = np.arange(height // 2, dtype=np.float32)[:, None]
    cxs = np.arange(width // 2, dtype=np.float32)[None, :]
    blocks = [
        (rng.uniform(0, width), rng.uniform(0, height), rng.uniform(-9, 9), rng.uniform(-6, 6))
        for _ in range(6)
    ]
    size = max(16, height // 6)
    for n in range(count):
        t = n / FPS
        luma = 128 + 60 * np.sin(xs / 37.0 + ys / 53.0 + t * 2.1) + 30 * np.cos(ys / 23.0 - t * 3.3)
        y_plane = luma.clip(16, 235).astype(np.uint8)
        band = height // 2 - height // 8
        shift = (n * 7) % width
        y_plane[band : band + height // 4, :] = texture[:, shift : shift + width]
        for bx, by, vx, vy in blocks:
            x = int(bx + vx * n) % max(1, width - size)
            y = int(by + vy * n) % max(1, height - size)
            y_plane[y : y + size, x : x + size] = (n * 5 + x) % 200 + 30
        u_plane = (128 + 50 * np.sin(cxs / 41.0 + t * 1.3) + 0 * cys).astype(np.uint8)
        v_plane = (128 + 50 * np.cos(cys / 29.0 - t * 0.7) + 0 * cxs).astype(np.uint8)
        frame = av.VideoFrame(width, height, "yuv420p")
        for plane, data in zip(frame.planes, (y_plane, u_plane, v_plane), strict=True):
            stride = plane.line_size
            rows = data.shape[0]
            buffer = np.zeros((rows, stride), dtype=np.uint8)
            buffer[:, : data.shape[1]] = data
            plane.update(buffer.tobytes())
        frame.pts = n
        frame.time_base = Fraction(1, FPS)
        yield frame


def _encode_video(codec: str, resolution: str) -> list[EncodedPacket]:
    width, height = RESOLUTIONS[resolution]
    bitrate = VIDEO_BITRATE[resolution]
    context = av.CodecContext.create("libvpx" if codec == "vp8" else "libx264", "w")
    assert isinstance(context, av.VideoCodecContext)
    context.width = width
    context.height = height
    context.pix_fmt = "yuv420p"
    context.time_base = Fraction(1, FPS)
    context.framerate = Fraction(FPS, 1)
    context.gop_size = FPS
    context.bit_rate = bitrate
    context.max_b_frames = 0
    if codec == "vp8":
        context.options = {
            "deadline": "realtime",
            "cpu-used": "4",
            "lag-in-frames": "0",
            "minrate": str(bitrate),
            "maxrate": str(bitrate),
            "bufsize": str(bitrate),
            "keyint_min": str(FPS),
            "auto-alt-ref": "0",
        }
    else:
        context.options = {
            "preset": "veryfast",
            "tune": "zerolatency",
            "profile": "baseline",
            "maxrate": str(bitrate),
            "bufsize": str(bitrate),
            "x264-params": f"keyint={FPS}:min-keyint={FPS}:scenecut=0:bframes=0:repeat-headers=1",
        }
    packets: list[EncodedPacket] = []
    frames = list(_video_frames(width, height, FPS * SECONDS))
    for frame in [*frames, None]:
        for packet in context.encode(frame):
            assert packet.pts is not None
            packets.append(EncodedPacket(bytes(packet), packet.pts * 3000, packet.is_keyframe))
    if len(packets) != FPS * SECONDS or not packets[0].keyframe:
        raise RuntimeError(f"{codec} {resolution}: {len(packets)} packets, first not a keyframe")
    if codec == "h264" and not packets[0].data.startswith((b"\x00\x00\x00\x01", b"\x00\x00\x01")):
        raise RuntimeError("libx264 did not produce Annex-B")
    return packets


def _encode_audio() -> list[EncodedPacket]:
    context = av.CodecContext.create("libopus", "w")
    assert isinstance(context, av.AudioCodecContext)
    context.sample_rate = AUDIO_RATE
    context.layout = "stereo"
    context.format = "s16"
    context.bit_rate = AUDIO_BITRATE
    context.time_base = Fraction(1, AUDIO_RATE)
    context.options = {"frame_duration": "20", "application": "voip"}
    rng = np.random.default_rng(7)
    total = AUDIO_RATE * SECONDS
    t = np.arange(total) / AUDIO_RATE
    tone = 0.25 * np.sin(2 * np.pi * (220 + 80 * np.sin(2 * np.pi * 0.3 * t)) * t)
    signal = tone + 0.03 * rng.standard_normal(total)
    samples = (signal.clip(-1, 1) * 32767).astype(np.int16)
    packets: list[EncodedPacket] = []
    for start in range(0, total, AUDIO_FRAME):
        chunk = samples[start : start + AUDIO_FRAME]
        frame = av.AudioFrame.from_ndarray(
            np.repeat(chunk[None, :], 2, axis=0).reshape(1, -1), format="s16", layout="stereo"
        )
        frame.sample_rate = AUDIO_RATE
        frame.pts = start
        frame.time_base = Fraction(1, AUDIO_RATE)
        for packet in context.encode(frame):
            packets.append(EncodedPacket(bytes(packet), packet.pts or 0, True))
    for packet in context.encode(None):
        packets.append(EncodedPacket(bytes(packet), packet.pts or 0, True))
    return packets[: total // AUDIO_FRAME]


# ---------------------------------------------------------------- cache


def _save(path: Path, packets: list[EncodedPacket]) -> None:
    part = path.with_suffix(".part")
    with part.open("wb") as out:
        out.write(MAGIC)
        for packet in packets:
            out.write(RECORD.pack(len(packet.data), packet.pts, int(packet.keyframe)))
            out.write(packet.data)
    part.replace(path)


def _load(path: Path) -> list[EncodedPacket]:
    blob = path.read_bytes()
    if not blob.startswith(MAGIC):
        raise ValueError(f"{path} is not a clip")
    packets: list[EncodedPacket] = []
    offset = len(MAGIC)
    while offset < len(blob):
        length, pts, keyframe = RECORD.unpack_from(blob, offset)
        offset += RECORD.size
        packets.append(EncodedPacket(blob[offset : offset + length], pts, bool(keyframe)))
        offset += length
    return packets


def video_clip(codec: str, resolution: str) -> Clip:
    """The cached clip, encoded first if it is not there."""
    name = video_clip_name(codec, resolution)
    path = CACHE / f"{name}.bin"
    if not path.exists():
        CACHE.mkdir(parents=True, exist_ok=True)
        started = time.perf_counter()
        _save(path, _encode_video(codec, resolution))
        print(
            f"[calls] encoded {name} in {time.perf_counter() - started:.1f} s",
            file=sys.stderr,
            flush=True,
        )
    return Clip(name, "video", codec, Fraction(1, VIDEO_CLOCK), VIDEO_CLOCK // FPS, _load(path))


def audio_clip() -> Clip:
    name = audio_clip_name()
    path = CACHE / f"{name}.bin"
    if not path.exists():
        CACHE.mkdir(parents=True, exist_ok=True)
        _save(path, _encode_audio())
    return Clip(name, "audio", "opus", Fraction(1, AUDIO_RATE), AUDIO_FRAME, _load(path))


def prepare(codecs: list[str], resolutions: list[str]) -> list[Clip]:
    """Encodes (or finds) every clip a run needs; returns them."""
    clips = [video_clip(c, r) for c in codecs for r in resolutions]
    clips.append(audio_clip())
    return clips


if __name__ == "__main__":
    for clip in prepare(list(CODECS), list(RESOLUTIONS)):
        keyframes = sum(p.keyframe for p in clip.packets)
        print(
            f"{clip.name}: {len(clip.packets)} packets, {clip.seconds:.1f} s, "
            f"{clip.bitrate / 1e6:.2f} Mb/s, {keyframes} keyframes"
        )
