"""The clip every publisher sends, and reading its frame numbers back.

One 1080p30 H.264 + AAC clip is encoded once into ``bench/out/`` (FLV, so
publishers only copy it: ``ffmpeg -re -stream_loop -1 -i clip.flv -c copy``):
libx264 ``veryfast``, High profile (B-frames, as OBS sends), ~6 Mb/s, a
keyframe every 60 frames (2 s GOP, no scene-cut keyframes; ``gop=1``: every
30), AAC 128 kb/s at
48 kHz. 24 s long: a whole number of video frames (720) and of AAC frames
(1,125), so the loop does not drift.

Every frame carries its number twice: as text (``drawtext``: the clip's
time and frame number, for people looking at it) and as a machine-readable
strip near the bottom (``geq``): 12 cells of 64×96 px, white for a 1 bit,
least significant first, then the same 12 bits inverted, so a frame that
does not decode cleanly reads as "no number" rather than as a wrong one.
After 6 Mb/s H.264 the cells read back exactly (every frame of the clip is
checked once after encoding).

:func:`segment_info` finds, for an HLS segment, the number of its first
frame (decoding only until the first picture comes out) and how many video
frames it holds (counting packets, without decoding); the frame numbers
then give the clip time the segment ends at.
"""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

import av
import numpy as np

BENCH = Path(__file__).resolve().parent.parent
OUT = BENCH / "out"
FPS = 30
SECONDS = 24
FRAMES = FPS * SECONDS
GOP_SECONDS = 2
VIDEO_BITRATE = "6M"
FORMAT_VERSION = 1
FONT = Path("/usr/share/fonts/truetype/dejavu/DejaVuSansMono.ttf")
# The code strip: where it is in the 1920×1080 picture, and its cells.
BITS = 12
CELL = 64
STRIP_X, STRIP_Y, STRIP_HEIGHT = 192, 900, 96


@dataclass(frozen=True)
class Clip:
    path: Path
    fps: int
    frames: int
    first_video_pts: float  # seconds: the display time of frame 0
    loop_seconds: float  # what ffmpeg adds to timestamps at each -stream_loop turn
    video_bitrate: float  # bits per second, measured
    audio_bitrate: float
    gop_seconds: int = GOP_SECONDS

    def frame_time(self, number: float) -> float:
        """Clip time (s) at which frame ``number`` is shown."""
        return self.first_video_pts + number / self.fps


def say(text: str) -> None:
    print(f"[live] {text}", file=sys.stderr, flush=True)


def ffmpeg() -> str:
    found = shutil.which("ffmpeg")
    if not found:
        raise SystemExit("ffmpeg is needed (apt-get install -y ffmpeg)")
    return found


def _code_filter() -> str:
    # One cell per bit: X // CELL is the bit (the first BITS cells: N's bits,
    # the next BITS: the same inverted); an 8 px black frame around each cell.
    width = 2 * BITS * CELL
    half = BITS * CELL
    bit = f"mod(floor(N/pow(2,floor(mod(X,{half})/{CELL}))),2)"
    value = f"if(lt(X,{half}),{bit},1-{bit})"
    border = f"lt(mod(X,{CELL}),8)+gt(mod(X,{CELL}),{CELL - 9})+lt(Y,8)+gt(Y,{STRIP_HEIGHT - 9})"
    return (
        f"color=c=black:size={width}x{STRIP_HEIGHT}:rate={FPS},format=gray,"
        f"geq=lum='if({border},0,{value}*255)'"
    )


def _encode(path: Path, gop: int) -> None:
    video = f"[0:v][1:v]overlay=x={STRIP_X}:y={STRIP_Y}:shortest=1"
    if FONT.exists():
        video += (
            f",drawtext=fontfile={FONT}:text='%{{pts\\:hms}} frame %{{n}}'"
            ":fontsize=72:fontcolor=white:box=1:boxcolor=black@0.6:x=40:y=40"
        )
    else:
        say(f"{FONT} is missing: the clip carries its frame numbers as a code strip only")
    temporary = path.with_suffix(".tmp.flv")
    subprocess.run(
        [
            ffmpeg(), "-hide_banner", "-loglevel", "error", "-y",
            "-f", "lavfi", "-i", f"testsrc2=size=1920x1080:rate={FPS}",
            "-f", "lavfi", "-i", _code_filter(),
            "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
            "-filter_complex", video + "[v]",
            "-map", "[v]", "-map", "2:a", "-t", str(SECONDS),
            "-c:v", "libx264", "-preset", "veryfast", "-profile:v", "high",
            "-pix_fmt", "yuv420p", "-g", str(gop), "-keyint_min", str(gop),
            "-sc_threshold", "0", "-b:v", VIDEO_BITRATE, "-maxrate", VIDEO_BITRATE,
            "-bufsize", "12M",
            "-c:a", "aac", "-b:a", "128k", "-ar", "48000",
            "-f", "flv", str(temporary),
        ],
        check=True,
    )  # fmt: skip
    temporary.replace(path)


def read_code(frame: av.VideoFrame) -> int | None:
    """The frame number in a decoded 1920×1080 frame, None if unreadable."""
    if frame.width != 1920 or frame.height != 1080:
        return None
    gray = frame.to_ndarray(format="gray")
    strip = gray[STRIP_Y + 24 : STRIP_Y + STRIP_HEIGHT - 24, STRIP_X : STRIP_X + 2 * BITS * CELL]
    rows = strip.shape[0]
    cells = strip.reshape(rows, 2 * BITS, CELL)[:, :, 16:48].mean(axis=(0, 2))
    bits = cells > 128
    number = sum(1 << i for i in range(BITS) if bits[i])
    check = sum(1 << i for i in range(BITS) if not bits[BITS + i])
    if number != check or np.abs(cells - 127.5).min() < 60:  # a grey cell: not a clean read
        return None
    return number


def _measure(path: Path, gop_seconds: int) -> Clip:
    """Checks every frame's code, and measures what the publishers will send."""
    video_bytes = audio_bytes = 0
    first_pts: float | None = None
    with av.open(str(path), "r") as container:
        stream = container.streams.video[0]
        audio = container.streams.audio[0]
        for packet in container.demux(stream, audio):
            if packet.size == 0:
                continue
            if packet.stream.type == "video":
                video_bytes += packet.size
            else:
                audio_bytes += packet.size
    with av.open(str(path), "r") as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        numbers = []
        for frame in container.decode(stream):
            if first_pts is None and frame.pts is not None and frame.time_base is not None:
                first_pts = float(frame.pts * frame.time_base)
            numbers.append(read_code(frame))
    if numbers != list(range(FRAMES)):
        wrong = sum(1 for i, n in enumerate(numbers) if n != i)
        raise SystemExit(f"{path}: {wrong} of {len(numbers)} frames do not read back their number")
    return Clip(
        path=path,
        fps=FPS,
        frames=FRAMES,
        first_video_pts=first_pts or 0.0,
        loop_seconds=_loop_seconds(path, gop_seconds * FPS),
        video_bitrate=video_bytes * 8 / SECONDS,
        audio_bitrate=audio_bytes * 8 / SECONDS,
        gop_seconds=gop_seconds,
    )


def _loop_seconds(path: Path, gop: int) -> float:
    """How far ffmpeg moves the timestamps at each turn of ``-stream_loop``:
    the first keyframe's dts in the second turn minus in the first (copied
    twice, not in real time)."""
    looped = subprocess.run(
        [
            ffmpeg(), "-hide_banner", "-loglevel", "error", "-stream_loop", "1",
            "-i", str(path), "-c", "copy", "-f", "flv", "-",
        ],
        check=True,
        capture_output=True,
    ).stdout  # fmt: skip
    keyframes: list[float] = []
    with av.open(io.BytesIO(looped), "r", format="flv") as container:
        for packet in container.demux(container.streams.video[0]):
            if packet.is_keyframe and packet.dts is not None and packet.time_base is not None:
                keyframes.append(float(packet.dts * packet.time_base))
    per_turn = FRAMES // gop
    if len(keyframes) < 2 * per_turn:
        raise SystemExit(f"{path}: looping it gave {len(keyframes)} keyframes")
    return keyframes[per_turn] - keyframes[0]


def prepare(gop_seconds: int = GOP_SECONDS) -> Clip:
    """The clip, encoded on first use (~40 s on two cores) and checked."""
    OUT.mkdir(exist_ok=True)
    gop = gop_seconds * FPS
    path = OUT / f"live-1080p30-{VIDEO_BITRATE}-gop{gop}-v{FORMAT_VERSION}.flv"
    facts = path.with_suffix(".json")
    if path.exists() and facts.exists():
        values = json.loads(facts.read_text())
        values["path"] = path
        return Clip(**values)
    say(f"encoding {path.name} once (1080p30, {SECONDS} s; ~40 s)...")
    _encode(path, gop)
    clip = _measure(path, gop_seconds)
    values = asdict(clip)
    values["path"] = str(path)
    facts.write_text(json.dumps(values, indent=1))
    say(
        f"{path.name}: video {clip.video_bitrate / 1e6:.2f} Mb/s, audio "
        f"{clip.audio_bitrate / 1e3:.0f} kb/s, loop {clip.loop_seconds:.3f} s, every frame's "
        "code reads back"
    )
    return clip


@dataclass(frozen=True)
class SegmentInfo:
    first_frame: int | None  # the code of its first picture (None: unreadable)
    video_frames: int
    audio_packets: int
    video_codec: str
    audio_codec: str


def segment_info(data: bytes) -> SegmentInfo:
    """Demuxes a whole segment (cheap) and decodes only until its first
    picture comes out (a keyframe and the few frames the decoder holds back
    for B-frames): ~20 ms of CPU for 1080p."""
    video_frames = audio_packets = 0
    first: int | None = None
    decoded = False
    video_codec = audio_codec = ""
    with av.open(io.BytesIO(data), "r", format="mpegts") as container:
        streams = [*container.streams.video[:1], *container.streams.audio[:1]]
        if container.streams.video:
            video = container.streams.video[0]
            video.thread_type = "SLICE"
            video_codec = video.codec_context.name
        if container.streams.audio:
            audio_codec = container.streams.audio[0].codec_context.name
        for packet in container.demux(streams):
            if packet.size == 0:
                continue
            if packet.stream.type == "audio":
                audio_packets += 1
                continue
            video_frames += 1
            if not decoded:
                pictures = [f for f in packet.decode() if isinstance(f, av.VideoFrame)]
                if pictures:
                    first, decoded = read_code(pictures[0]), True
        if not decoded and container.streams.video:
            flushed = container.streams.video[0].codec_context.decode(None)
            if flushed:
                first = read_code(flushed[0])
    return SegmentInfo(first, video_frames, audio_packets, video_codec, audio_codec)


def segment_codes(data: bytes) -> list[int | None]:
    """Every frame's code, in display order (a full decode: ~0.3 s of CPU
    for a 2 s 1080p segment; used once per measurement to check continuity)."""
    with av.open(io.BytesIO(data), "r", format="mpegts") as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        return [read_code(frame) for frame in container.decode(stream)]
