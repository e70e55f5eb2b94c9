"""CPU of gortc's RTMP ingest per 1080p30 stream.

Encodes a 10 s 1080p30 H.264 + AAC clip once (bench/out/, kept between
runs), starts the RTMP server in this process with a sink that only counts,
and has N ffmpeg publishers send the clip in a loop at its real rate
(``-re -stream_loop -1 -c copy``: they do not encode, so they cost almost
nothing). After a warm-up, this process's CPU time (``time.process_time``,
all of it the server's) over a window, per stream and per megabit.

    python bench/rtmp_ingest.py                      # 1, 4 and 8 streams at 6 Mb/s
    python bench/rtmp_ingest.py --streams 1 --bitrate 16M --loop asyncio
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from gortc.media.rtmp import RtmpServer

OUT = Path(__file__).resolve().parent / "out"
FFMPEG = shutil.which("ffmpeg") or "/usr/bin/ffmpeg"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def clip(bitrate: str) -> Path:
    """The clip to publish, encoded on first use."""
    path = OUT / f"rtmp-1080p30-{bitrate}.flv"
    if not path.exists():
        OUT.mkdir(exist_ok=True)
        print(f"encoding {path.name} (once)...", file=sys.stderr)
        subprocess.run(
            [
                FFMPEG, "-hide_banner", "-loglevel", "error", "-y",
                "-f", "lavfi", "-i", "testsrc2=size=1920x1080:rate=30",
                "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
                "-t", "10",
                "-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency",
                "-g", "60", "-b:v", bitrate, "-maxrate", bitrate, "-bufsize", bitrate,
                "-c:a", "aac", "-b:a", "128k",
                "-f", "flv", str(path),
            ],
            check=True,
        )  # fmt: skip
    return path


class CountingSink:
    def __init__(self) -> None:
        self.bytes = 0
        self.frames = 0
        self.ended = False

    def metadata(self, values: dict[str, object]) -> None:
        pass

    def video(self, timestamp_ms: int, body: bytes) -> None:
        self.frames += 1
        self.bytes += len(body)

    def audio(self, timestamp_ms: int, body: bytes) -> None:
        self.bytes += len(body)

    def end(self) -> None:
        self.ended = True


class CountingAuthorizer:
    def __init__(self) -> None:
        self.sinks: list[CountingSink] = []

    async def start_publishing(self, app: str, stream_name: str, peer: str) -> CountingSink:
        sink = CountingSink()
        self.sinks.append(sink)
        return sink


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


async def run(streams: int, path: Path, warmup: float, window: float) -> None:
    authorizer = CountingAuthorizer()
    server = RtmpServer(authorizer, port=0)
    await server.start()
    publishers = []
    for index in range(streams):
        publisher = await asyncio.create_subprocess_exec(
            FFMPEG, "-hide_banner", "-loglevel", "error", "-nostdin",
            "-re", "-stream_loop", "-1", "-i", str(path), "-c", "copy",
            "-f", "flv", f"rtmp://127.0.0.1:{server.port}/live/key{index}",
        )  # fmt: skip
        publishers.append(publisher)
    try:
        async with asyncio.timeout(30):
            while server.publishing < streams:  # noqa: ASYNC110 - polling a counter
                await asyncio.sleep(0.1)
        await asyncio.sleep(warmup)
        bytes_before = sum(sink.bytes for sink in authorizer.sinks)
        frames_before = sum(sink.frames for sink in authorizer.sinks)
        publishers_before = sum(cpu_seconds(p.pid) for p in publishers)
        cpu_before, wall_before = time.process_time(), time.perf_counter()
        await asyncio.sleep(window)
        cpu = time.process_time() - cpu_before
        wall = time.perf_counter() - wall_before
        publishers_cpu = sum(cpu_seconds(p.pid) for p in publishers) - publishers_before
        megabits = (sum(sink.bytes for sink in authorizer.sinks) - bytes_before) * 8 / 1e6
        frames = sum(sink.frames for sink in authorizer.sinks) - frames_before
        if server.publishing < streams:
            raise SystemExit("a publisher dropped out during the run")
    finally:
        for publisher in publishers:
            if publisher.returncode is None:
                publisher.terminate()
        for publisher in publishers:
            await publisher.wait()
        await server.stop()
    per_stream = 100 * cpu / wall / streams
    print(
        f"{streams:2d} stream(s) {megabits / wall / streams:5.2f} Mb/s "
        f"{frames / wall / streams:4.1f} fps each: server {100 * cpu / wall:5.2f} % of a core, "
        f"{per_stream:5.3f} % per stream, {1e6 * cpu / (megabits or 1):5.1f} us per Mbit; "
        f"publishers {100 * publishers_cpu / wall / streams:4.2f} % each",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--streams", default="1,4,8", help="publisher counts, comma-separated")
    parser.add_argument("--bitrate", default="6M", help="the clip's video bitrate")
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--window", type=float, default=20.0, help="seconds measured")
    parser.add_argument("--loop", choices=["uvloop", "asyncio"], default="uvloop")
    args = parser.parse_args()
    path = clip(args.bitrate)
    print(f"event loop: {args.loop}, clip {path.name}, {args.window:g} s windows", flush=True)
    for streams in (int(count) for count in args.streams.split(",")):
        if args.loop == "uvloop":
            import uvloop

            uvloop.run(run(streams, path, args.warmup, args.window))
        else:
            asyncio.run(run(streams, path, args.warmup, args.window))


if __name__ == "__main__":
    main()
