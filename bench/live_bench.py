"""Live streaming: gortc's RTMP ingest + HLS packaging against nginx with the
RTMP module (the reference), with the same publishers, in the same run.

Publishers: ffmpeg, one process per stream, each sending the same clip in a
loop at its real rate (``-re -stream_loop -1 -c copy``: they do not encode,
so they cost little of the CPU the server shares). The clip
(``bench/live/clip.py``, encoded once into ``bench/out/``) is 1080p30 H.264
(High, B-frames, ~6 Mb/s, a keyframe every 2 s) + AAC 128 kb/s, with every
frame's number burned into the picture as text and as a machine-readable
strip. 1, 10 and 20 publishers start at once (``--streams``, add 50 for the
capacity target); each server is started afresh for each count, pinned to
core 0 (``taskset``), this process and the publishers to core 1; the two
servers take turns (the order alternates between counts). Both cut HLS
segments of the same length (``--segment``, 2 s: the GOP; ``--gop 1`` for a
clip with a keyframe every second and 1 s segments) and keep the same
playlist length (6 segments).

What is measured, per server and publisher count:

- **CPU**: the server's utime+stime (``/proc/<pid>/stat``; nginx: master and
  workers) over a window (``--window``) after a warm-up, with no viewer
  traffic: ingest and packaging only. Per stream = that / publishers.
  The publishers' own CPU and what other programs used are reported too.
- **Publish → first playable segment**: from launching a publisher until its
  playlist, fetched over HTTP as a player would, lists a segment and that
  segment downloads.
- **Segment availability delay**: for a few streams (``--watch``), every
  segment's first appearance in the playlist (the file on the server's disk,
  which its HTTP side serves, polled every 25 ms) minus the moment the
  publisher sent the frame that ends it (the next segment's keyframe). The
  publisher's clock: ffmpeg's ``-progress`` reports how much media it has
  sent; with ``-re`` that is the time since it started sending, so its start
  is ``min(report time − out_time)``. The frame that ends a segment is read
  from the segment itself: the code in its first picture plus its number of
  frames.
- **Latency behind the publisher**: at random moments T after the window,
  fetch the live playlist over HTTP, then its newest segment; decode the
  frame number of its last frame; the **live-edge delay** is the publisher's
  media clock at T minus that frame's time (the newest picture any player
  could show at T). A standard player does not play the live edge: hls.js
  (``liveSyncDurationCount = 3``) and Safari start 3 target durations before
  the end of the playlist, so the **player delay** is computed as live-edge
  delay + 3 × ``#EXT-X-TARGETDURATION``. The clip is pre-encoded, so a real
  encoder's own delay is not in these figures.
- **The streams are right**: a segment from each server through ``ffprobe``
  (H.264 + AAC, frames counted), and fully decoded: consecutive frame
  numbers.

Run: ``make bench-live`` (1, 10, 20 publishers, ~5 min); ``python
bench/live_bench.py --streams 1,10,20,50`` for the 50-stream target (~7
min). Needs ffmpeg, ffprobe, and Debian's ``nginx`` and
``libnginx-mod-rtmp`` (or ``--servers gortc``). Everything on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import random
import re
import shutil
import signal
import statistics
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import aiohttp
from live.clip import Clip, prepare, say, segment_codes, segment_info
from live.servers import SERVERS, Events, Gortc, Server, Stream, listen_for_live, process_cpu

BENCH = Path(__file__).resolve().parent
OUT = BENCH / "out"
POLL = 0.025  # s between looks at the playlists on disk
PLAYER_SEGMENTS = 3  # hls.js liveSyncDurationCount, and Safari: 3 target durations back
TARGET_PLAYER_DELAY = 3.0  # s
TARGET_STREAMS = 50
DISTURBED = 0.15  # cores used by other programs during a window
clock = time.monotonic
# Every process started, for the last-resort cleanup.
STARTED: list[asyncio.subprocess.Process] = []


# ---------------------------------------------------------------- playlists


@dataclass
class Playlist:
    target_duration: float = 0.0
    media_sequence: int = 0
    segments: list[tuple[str, float]] = field(default_factory=list)  # (uri, duration)
    ended: bool = False


def parse_playlist(text: str) -> Playlist:
    playlist = Playlist()
    duration: float | None = None
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("#EXT-X-TARGETDURATION:"):
            playlist.target_duration = float(line.split(":", 1)[1])
        elif line.startswith("#EXT-X-MEDIA-SEQUENCE:"):
            playlist.media_sequence = int(line.split(":", 1)[1])
        elif line.startswith("#EXTINF:"):
            duration = float(line.split(":", 1)[1].split(",", 1)[0])
        elif line.startswith("#EXT-X-ENDLIST"):
            playlist.ended = True
        elif line and not line.startswith("#") and duration is not None:
            playlist.segments.append((line, duration))
            duration = None
    return playlist


@dataclass
class Watch:
    """One stream's playlist on the server's disk, looked at every POLL."""

    stream: Stream
    seen: dict[str, float] = field(default_factory=dict)  # segment → first seen (clock)
    durations: dict[str, float] = field(default_factory=dict)
    target_duration: float = 0.0
    ended: bool = False
    signature: tuple[int, int, int] = (0, 0, 0)
    first_seen: float | None = None

    def poll(self, now: float) -> list[str]:
        """New segments since the last look."""
        try:
            status = os.stat(self.stream.playlist_path)
            signature = (status.st_ino, status.st_mtime_ns, status.st_size)
            if signature == self.signature:
                return []
            text = self.stream.playlist_path.read_text()
        except FileNotFoundError:
            return []
        self.signature = signature
        playlist = parse_playlist(text)
        self.target_duration = playlist.target_duration or self.target_duration
        self.ended = self.ended or playlist.ended
        new = []
        for uri, duration in playlist.segments:
            if uri not in self.seen:
                self.seen[uri] = now
                self.durations[uri] = duration
                new.append(uri)
        if new and self.first_seen is None:
            self.first_seen = now
        return new

    def appeared_between(self, start: float, end: float) -> list[float]:
        return sorted(t for t in self.seen.values() if start <= t < end)


# ---------------------------------------------------------------- publishers


@dataclass
class Publisher:
    stream: Stream
    process: asyncio.subprocess.Process
    launched: float
    start: float | None = None  # its media clock's zero (clock), from -progress
    reports: int = 0
    reader: asyncio.Task[None] | None = None

    def media_now(self, when: float) -> float:
        assert self.start is not None
        return when - self.start

    async def read_progress(self) -> None:
        """-progress: ``out_time_us`` is how much media has been sent; with
        -re it tracks the time since sending began, so the earliest
        ``now − out_time`` is when it began (within an audio frame)."""
        assert self.process.stdout is not None
        async for raw in self.process.stdout:
            now = clock()
            line = raw.decode(errors="replace").strip()
            if line.startswith("out_time_us="):
                value = line.removeprefix("out_time_us=")
                if value.isdigit() and int(value) > 0:
                    self.reports += 1
                    start = now - int(value) / 1e6
                    if self.start is None or start < self.start:
                        self.start = start


async def launch(stream: Stream, clip: Clip, log: Path) -> Publisher:
    launched = clock()  # (creating the process blocks: 50 of them take a second)
    with log.open("ab") as errors:
        process = await asyncio.create_subprocess_exec(
            "ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-nostats",
            "-re", "-stream_loop", "-1", "-i", str(clip.path), "-c", "copy",
            "-progress", "pipe:1", "-stats_period", "0.25",
            "-f", "flv", stream.rtmp_url,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=errors,
        )  # fmt: skip
    STARTED.append(process)
    publisher = Publisher(stream, process, launched)
    publisher.reader = asyncio.get_running_loop().create_task(publisher.read_progress())
    return publisher


async def stop_processes(processes: list[asyncio.subprocess.Process], grace: float = 5.0) -> None:
    for process in processes:
        if process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                process.terminate()
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(grace):
            await asyncio.gather(*(p.wait() for p in processes))
    for process in processes:
        if process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()


# ---------------------------------------------------------------- one measurement


def machine_ticks() -> int:
    with open("/proc/stat") as stat:
        values = [int(v) for v in stat.readline().split()[1:]]
    return sum(values[:8]) - values[3] - values[4]


def machine_busy() -> float:
    """Cores' worth of CPU the whole machine used over the last second."""
    before = machine_ticks()
    time.sleep(1.0)
    return (machine_ticks() - before) / os.sysconf("SC_CLK_TCK")


def wait_for_quiet(patience: float, threshold: float) -> float:
    deadline = time.monotonic() + patience
    busy = machine_busy()
    while busy >= threshold and time.monotonic() < deadline:
        busy = machine_busy()
    return busy


def summary(values: list[float]) -> dict[str, float | int | None]:
    if not values:
        return {"n": 0, "p50": None, "min": None, "max": None, "mean": None}
    return {
        "n": len(values),
        "p50": statistics.median(values),
        "min": min(values),
        "max": max(values),
        "mean": statistics.fmean(values),
    }


def delay_behind(publisher: Publisher, when: float, clip_time: float, loop: float) -> float:
    """How long before ``when`` the publisher sent what is at ``clip_time``
    in its clip (choosing the loop turn that makes it -loop/4 … 3·loop/4)."""
    behind = publisher.media_now(when) - clip_time
    turns = (behind + loop / 4) // loop
    return behind - turns * loop


class Measurement:
    def __init__(self, server: Server, count: int, clip: Clip, args: argparse.Namespace) -> None:
        self.server = server
        self.count = count
        self.clip = clip
        self.args = args
        self.publishers: list[Publisher] = []
        self.watches: list[Watch] = []
        self.watched: set[int] = set()
        self.availability: list[dict[str, Any]] = []
        self.first_playable: dict[int, float] = {}
        self.http_checks: dict[int, asyncio.Task[None]] = {}
        self.analyses: set[asyncio.Task[None]] = set()
        self.errors: list[str] = []
        self.http: aiohttp.ClientSession

    # -- watching the playlists

    async def poll_playlists(self) -> None:
        while True:
            now = clock()
            for watch in self.watches:
                new = watch.poll(now)
                if not new:
                    continue
                index = watch.stream.index
                if index not in self.http_checks:
                    task = asyncio.get_running_loop().create_task(self.check_playable(index))
                    self.http_checks[index] = task
                if index in self.watched:
                    for uri in new:
                        self._spawn(self.analyse(index, uri, watch.seen[uri]))
            await asyncio.sleep(POLL)

    def _spawn(self, coroutine: Any) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self.analyses.add(task)
        task.add_done_callback(self.analyses.discard)

    async def check_playable(self, index: int) -> None:
        """The playlist over HTTP lists a segment, and the segment downloads."""
        stream = self.watches[index].stream
        deadline = clock() + 20
        while clock() < deadline:
            try:
                async with self.http.get(stream.playlist_url, headers=stream.headers) as answer:
                    text = await answer.text() if answer.status == 200 else ""
                playlist = parse_playlist(text)
                if playlist.segments:
                    url = urljoin(stream.playlist_url, playlist.segments[0][0])
                    async with self.http.get(url, headers=stream.headers) as answer:
                        body = await answer.read()
                    if answer.status == 200 and body:
                        self.first_playable[index] = clock()
                        return
            except aiohttp.ClientError as error:
                self.errors.append(f"stream {index}: {error!r}")
            await asyncio.sleep(0.05)

    async def analyse(self, index: int, uri: str, seen: float) -> None:
        """A new segment of a watched stream: when the publisher sent the
        frame that ends it, hence its availability delay."""
        path = self.watches[index].stream.playlist_path.parent / uri
        try:
            data = await asyncio.to_thread(path.read_bytes)
        except FileNotFoundError:
            return
        info = await asyncio.to_thread(segment_info, data)
        if index >= len(self.publishers):
            return
        publisher = self.publishers[index]
        if info.first_frame is None or publisher.start is None:
            self.availability.append({"stream": index, "segment": uri, "unreadable": True})
            return
        end_frame = info.first_frame + info.video_frames  # the next segment's first frame
        ends_at = end_frame / self.clip.fps
        delay = delay_behind(publisher, seen, ends_at, self.clip.loop_seconds)
        self.availability.append(
            {
                "stream": index,
                "segment": uri,
                "seen": seen,
                "first_frame": info.first_frame,
                "frames": info.video_frames,
                "delay": delay,
            }
        )

    # -- latency as a player sees it

    async def sample_latency(self, index: int, until: float) -> list[dict[str, Any]]:
        stream = self.watches[index].stream
        publisher = self.publishers[index]
        samples = []
        while clock() < until:
            await asyncio.sleep(random.uniform(0.3, 0.9))
            asked = clock()
            try:
                async with self.http.get(stream.playlist_url, headers=stream.headers) as answer:
                    playlist = parse_playlist(await answer.text())
                if not playlist.segments:
                    continue
                uri = playlist.segments[-1][0]
                url = urljoin(stream.playlist_url, uri)
                async with self.http.get(url, headers=stream.headers) as answer:
                    data = await answer.read()
                    if answer.status != 200:
                        continue
            except aiohttp.ClientError as error:
                self.errors.append(f"stream {index}: {error!r}")
                continue
            fetched = clock()
            info = await asyncio.to_thread(segment_info, data)
            if info.first_frame is None or publisher.start is None:
                continue
            last_frame = info.first_frame + info.video_frames - 1
            edge = delay_behind(
                publisher, asked, last_frame / self.clip.fps, self.clip.loop_seconds
            )
            samples.append(
                {
                    "stream": index,
                    "segment": uri,
                    "last_frame": last_frame,
                    "edge": edge,
                    "target_duration": playlist.target_duration,
                    "player": edge + PLAYER_SEGMENTS * playlist.target_duration,
                    "fetch_seconds": fetched - asked,
                }
            )
        return samples

    async def verify(self, index: int) -> dict[str, Any]:
        """ffprobe the newest segment of a stream, and decode all of it."""
        stream = self.watches[index].stream
        async with self.http.get(stream.playlist_url, headers=stream.headers) as answer:
            playlist = parse_playlist(await answer.text())
        if not playlist.segments:
            return {"ok": False, "why": "no segment in the playlist"}
        url = urljoin(stream.playlist_url, playlist.segments[-1][0])
        async with self.http.get(url, headers=stream.headers) as answer:
            data = await answer.read()
            content_type = answer.headers.get("Content-Type", "")
        with tempfile.NamedTemporaryFile(suffix=".ts") as segment:
            segment.write(data)
            segment.flush()
            probe = await asyncio.to_thread(
                subprocess.run,
                ["ffprobe", "-v", "error", "-count_frames", "-show_entries",
                 "stream=codec_type,codec_name,width,height,nb_read_frames,sample_rate",
                 "-of", "json", segment.name],
                capture_output=True,
                text=True,
            )  # fmt: skip
        streams = json.loads(probe.stdout or "{}").get("streams", [])
        kinds = {s.get("codec_type"): s for s in streams}
        video, audio = kinds.get("video", {}), kinds.get("audio", {})
        codes = await asyncio.to_thread(segment_codes, data)
        continuous = bool(codes) and all(
            b is not None and a is not None and b == (a + 1) % self.clip.frames
            for a, b in itertools.pairwise(codes)
        )
        ok = (
            video.get("codec_name") == "h264"
            and audio.get("codec_name") == "aac"
            and int(video.get("nb_read_frames") or 0) > 0
            and int(audio.get("nb_read_frames") or 0) > 0
            and continuous
        )
        return {
            "ok": ok,
            "segment": url,
            "bytes": len(data),
            "content_type": content_type,
            "video": video,
            "audio": audio,
            "frames_decoded": len(codes),
            "codes_first_last": [codes[0], codes[-1]] if codes else None,
            "codes_continuous": continuous,
            "ffprobe_error": probe.stderr.strip()[-500:],
        }

    # -- the run

    async def run(self) -> dict[str, Any]:
        args, server = self.args, self.server
        connector = aiohttp.TCPConnector(limit=200)
        timeout = aiohttp.ClientTimeout(total=20)
        async with aiohttp.ClientSession(connector=connector, timeout=timeout) as http:
            self.http = http
            await server.start()
            streams = await server.streams(http, self.count)
            self.watches = [Watch(stream) for stream in streams]
            self.watched = set(watched_indexes(self.count, args.watch))
            events = Events()
            background: list[asyncio.Task[Any]] = []
            loop = asyncio.get_running_loop()
            if isinstance(server, Gortc):
                background.append(loop.create_task(listen_for_live(http, server, events, clock)))
                await asyncio.sleep(0.3)  # connected before anyone goes live
            idle = await self.idle_cpu()
            background.append(loop.create_task(self.poll_playlists()))
            logs = server.folder / "publishers.log"
            try:
                self.publishers = list(
                    await asyncio.gather(*(launch(s, self.clip, logs) for s in streams))
                )
                launched = min(p.launched for p in self.publishers)
                patience = 20 + 0.3 * self.count
                while len(self.first_playable) < self.count and clock() < launched + patience:
                    if not server.alive:
                        raise SystemExit(f"{server.label} died:\n{server.log_tail()}")
                    await asyncio.sleep(0.1)
                if len(self.first_playable) < self.count:
                    missing = self.count - len(self.first_playable)
                    raise SystemExit(
                        f"{missing} of {self.count} streams never became playable within "
                        f"{patience:.0f} s:\n{server.log_tail()}\n{tail(logs)}"
                    )
                await asyncio.sleep(args.warmup)
                window = await self.cpu_window()
                latency_until = clock() + args.latency
                samples = [
                    s
                    for found in await asyncio.gather(
                        *(self.sample_latency(i, latency_until) for i in sorted(self.watched))
                    )
                    for s in found
                ]
                ended = clock()
                rooms = await self.rooms(http) if isinstance(server, Gortc) else None
                verified = await self.verify(0)
                alive = sum(1 for p in self.publishers if p.process.returncode is None)
                await asyncio.sleep(0.1)  # the last analyses
                if self.analyses:
                    await asyncio.gather(*self.analyses, return_exceptions=True)
            finally:
                for task in background:
                    task.cancel()
                await asyncio.gather(*background, return_exceptions=True)
                await stop_processes([p.process for p in self.publishers])
                for publisher in self.publishers:
                    if publisher.reader is not None:
                        publisher.reader.cancel()
                for task in [*self.http_checks.values(), *self.analyses]:
                    task.cancel()
        window["idle_cpu_pct"] = idle
        return self.result(window, samples, ended, rooms, verified, alive, events)

    async def idle_cpu(self) -> float:
        """The server's CPU with nobody publishing (its fixed cost), % of a core."""
        before, began = self.server.cpu_seconds(), clock()
        await asyncio.sleep(self.args.idle)
        return 100 * (self.server.cpu_seconds() - before) / (clock() - began)

    async def cpu_window(self) -> dict[str, Any]:
        server, publishers = self.server, self.publishers
        pids = [p.process.pid for p in publishers]
        own = time.process_time()
        machine = machine_ticks()
        server_cpu = server.cpu_seconds()
        publishers_cpu = sum(process_cpu(pid) for pid in pids)
        began = clock()
        await asyncio.sleep(self.args.window)
        ended = clock()
        wall = ended - began
        server_cpu = server.cpu_seconds() - server_cpu
        publishers_cpu = sum(process_cpu(pid) for pid in pids) - publishers_cpu
        own = time.process_time() - own
        machine_cpu = (machine_ticks() - machine) / os.sysconf("SC_CLK_TCK")
        return {
            "began": began,
            "ended": ended,
            "seconds": wall,
            "server_cpu_pct": 100 * server_cpu / wall,
            "server_rss_mib": server.rss_bytes() / 2**20,
            "server_processes": len(server.pids()),
            "publishers_cpu_pct": 100 * publishers_cpu / wall,
            "bench_cpu_pct": 100 * own / wall,
            "other_cpu_pct": 100 * max(0.0, machine_cpu - server_cpu - publishers_cpu - own) / wall,
        }

    async def rooms(self, http: aiohttp.ClientSession) -> dict[str, Any]:
        """gortc's own list of live rooms: all there, with the HLS URL used."""
        assert isinstance(self.server, Gortc)
        headers = {"Authorization": f"Bearer {self.server.viewer_token}"}
        async with http.get(self.server.url + "/api/v1/live", headers=headers) as answer:
            items = (await answer.json())["items"]
        expected = {w.stream.room_id: w.stream.playlist_url for w in self.watches}
        matching = sum(
            1
            for item in items
            if expected.get(item["id"]) == urljoin(self.server.url + "/", item["hls_url"])
        )
        return {"listed": len(items), "hls_url_matching": matching}

    def result(
        self,
        window: dict[str, Any],
        samples: list[dict[str, Any]],
        ended: float,
        rooms: dict[str, Any] | None,
        verified: dict[str, Any],
        alive: int,
        events: Events,
    ) -> dict[str, Any]:
        count = self.count
        segment = max((w.target_duration for w in self.watches), default=0.0)
        # Every stream kept producing segments through the window.
        gaps: list[float] = []
        short: list[int] = []
        expected = int(window["seconds"] // self.args.segment) - 1
        for watch in self.watches:
            times = watch.appeared_between(window["began"] - 3 * segment, window["ended"])
            gaps += [b - a for a, b in itertools.pairwise(times)]
            inside = [t for t in times if t >= window["began"]]
            if len(inside) < expected:
                short.append(watch.stream.index)
        first = [
            self.first_playable[p.stream.index] - p.launched
            for p in self.publishers
            if p.stream.index in self.first_playable
        ]
        first_from_media = [
            self.first_playable[p.stream.index] - p.start
            for p in self.publishers
            if p.stream.index in self.first_playable and p.start is not None
        ]
        connect = [p.start - p.launched for p in self.publishers if p.start is not None]
        steady = [
            a["delay"]
            for a in self.availability
            if "delay" in a and a["seen"] >= window["began"] and a["seen"] <= ended
        ]
        announced = [
            events.started[p.stream.room_id] - p.launched
            for p in self.publishers
            if p.stream.room_id in events.started
        ]
        ended_playlists = sum(1 for w in self.watches if w.ended)
        cpu_limit = 95.0 if self.args.pin else 190.0
        held = (
            alive == count
            and not short
            and ended_playlists == 0
            and (max(gaps) if gaps else 0.0) < 2 * max(segment, self.args.segment)
            and window["server_cpu_pct"] < cpu_limit
        )
        return {
            "server": self.server.name,
            "streams": count,
            **window,
            "cpu_per_stream_pct": window["server_cpu_pct"] / count,
            "publisher_cpu_pct_each": window["publishers_cpu_pct"] / count,
            "target_duration": segment,
            "segment_durations": summary([d for w in self.watches for d in w.durations.values()]),
            "first_playable": summary(first_from_media),
            "first_playable_after_launch": summary(first),
            "publisher_start_after_launch": summary(connect),
            "live_started_after_launch": summary(announced) if announced else None,
            "availability_delay": summary(steady),
            "edge_delay": summary([s["edge"] for s in samples]),
            "player_delay": summary([s["player"] for s in samples]),
            "segment_gap_max": max(gaps) if gaps else None,
            "streams_short_of_segments": short,
            "playlists_ended": ended_playlists,
            "publishers_alive": alive,
            "held": held,
            "rooms": rooms,
            "verify": verified,
            "watched": sorted(self.watched),
            "availability_samples": self.availability,
            "latency_samples": samples,
            "http_errors": self.errors[:20],
        }


def web_client_sync_count() -> int | None:
    """How many target durations behind the end gortc's own web player
    starts (its hls.js ``liveSyncDurationCount``), if it says."""
    player = BENCH.parent / "static" / "live-player.js"
    if not player.exists():
        return None
    found = re.search(r"liveSyncDurationCount:\s*(\d+)", player.read_text())
    return int(found[1]) if found else None


def watched_indexes(count: int, watch: int) -> list[int]:
    """``watch`` streams spread over the publishers (the first, the last…)."""
    if watch >= count:
        return list(range(count))
    if watch <= 1:
        return [0]
    return sorted({round(i * (count - 1) / (watch - 1)) for i in range(watch)})


def tail(path: Path, lines: int = 5) -> str:
    if not path.exists():
        return ""
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


async def measure(name: str, count: int, clip: Clip, args: argparse.Namespace) -> dict[str, Any]:
    if args.quiet_max > 0:
        busy = await asyncio.to_thread(wait_for_quiet, args.quiet_max, args.quiet_threshold)
        if busy >= args.quiet_threshold:
            say(f"the machine is busy ({busy:.2f} cores in use): measuring anyway")
    pin = ["taskset", "-c", args.server_core] if args.pin else []
    with tempfile.TemporaryDirectory(prefix=f"live-{name}-") as folder:
        server = SERVERS[name](Path(folder), pin, args.segment, args.playlist_segments)
        say(f"{count} publisher(s) → {server.label}")
        try:
            result = await Measurement(server, count, clip, args).run()
            if not server.alive:
                result["server_exit"] = server.process.returncode if server.process else None
        except SystemExit as error:
            result = {"server": name, "streams": count, "error": str(error)}
        except Exception as error:  # one measurement's failure is reported, not fatal
            result = {"server": name, "streams": count, "error": f"{error!r}"}
            result["server_log"] = server.log_tail(20)
        finally:
            await server.stop()
    if "error" in result:
        say(f"{count} × {name} failed: {result['error']}")
    else:
        say(
            f"{count} × {name}: CPU {result['server_cpu_pct']:.1f} % "
            f"({result['cpu_per_stream_pct']:.2f} % per stream), first playable "
            f"{fmt(result['first_playable']['p50'], 2)} s, availability "
            f"{fmt(result['availability_delay']['p50'], 2)} s, edge "
            f"{fmt(result['edge_delay']['p50'], 2)} s, held: {result['held']}"
        )
    return result


# ---------------------------------------------------------------- report


def fmt(value: float | None, digits: int = 1) -> str:
    return "—" if value is None else f"{value:,.{digits}f}"


LABELS = {"gortc": "gortc", "nginx": "nginx-rtmp"}


def report(results: list[dict[str, Any]], clip: Clip, args: argparse.Namespace) -> None:
    print()
    pinning = (
        f"servers pinned to core {args.server_core}, publishers and this bench to core "
        f"{args.load_core}"
        if args.pin
        else "nothing pinned"
    )
    print(
        f"Live: 1080p30 H.264 {clip.video_bitrate / 1e6:.1f} Mb/s + AAC, {clip.gop_seconds} s GOP, "
        f"{args.segment:g} s segments, {pinning}; {args.window:g} s CPU windows after "
        f"{args.warmup:g} s of warm-up."
    )
    for line in (
        "CPU: % of one core (nginx: master + 1 worker + its cache manager); idle: the same",
        "before anyone publishes. first: the publisher's first frame sent (after the RTMP",
        "publish was accepted) → the playlist over HTTP lists a segment that downloads.",
        "avail: a segment appears in the playlist − the publisher sent the frame that ends it.",
        "edge: the publisher's clock − the newest frame in the playlist, at random moments.",
        f"player: edge + {PLAYER_SEGMENTS} × target duration (where hls.js and Safari start).",
        "Delays: median/max over streams or samples, s. gap: longest time between two",
        "segments of a stream. pub: the publishers' CPU, % of a core, all together.",
    ):
        print(line)
    print()
    header = (
        f"{'streams':>7} {'server':10} {'CPU %':>6} {'/stream':>7} {'idle %':>6} {'RSS MiB':>7} "
        f"{'first s':>11} {'avail s':>11} {'edge s':>11} {'player s':>8} {'gap s':>5} "
        f"{'pub %':>6} {'other %':>7} {'held':>4} {'ffprobe':>7}"
    )
    print(header)
    print("-" * len(header))
    for result in sorted(results, key=lambda r: (r["streams"], r["server"])):
        label = LABELS.get(result["server"], result["server"])
        if "error" in result:
            first_line = result["error"].splitlines()[0]
            print(f"{result['streams']:>7} {label:10} error: {first_line}")
            continue

        def pair(key: str, source: dict[str, Any] = result) -> str:
            values = source[key]
            return f"{fmt(values['p50'], 2)}/{fmt(values['max'], 1)}"

        mark = "!" if result["other_cpu_pct"] > 100 * DISTURBED else ""
        print(
            f"{result['streams']:>7} {label:10} {result['server_cpu_pct']:>6.1f} "
            f"{result['cpu_per_stream_pct']:>7.2f} {result['idle_cpu_pct']:>6.2f} "
            f"{result['server_rss_mib']:>7.1f} "
            f"{pair('first_playable'):>11} {pair('availability_delay'):>11} "
            f"{pair('edge_delay'):>11} {fmt(result['player_delay']['p50'], 2):>8} "
            f"{fmt(result['segment_gap_max'], 1):>5} {result['publishers_cpu_pct']:>6.1f} "
            f"{result['other_cpu_pct']:>7.1f} {'yes' if result['held'] else 'NO':>4} "
            f"{'ok' if result['verify']['ok'] else 'BAD':>7}{mark}"
        )
    if any(r.get("other_cpu_pct", 0) > 100 * DISTURBED for r in results):
        print(f"! other programs used more than {100 * DISTURBED:g} % of a core in the window")
    ratios(results)
    targets(results, args)


def by_count(results: list[dict[str, Any]]) -> dict[int, dict[str, dict[str, Any]]]:
    table: dict[int, dict[str, dict[str, Any]]] = {}
    for result in results:
        if "error" not in result:
            table.setdefault(result["streams"], {})[result["server"]] = result
    return table


def ratio(mine: float | None, theirs: float | None) -> str:
    if mine is None or theirs is None or theirs <= 0:
        return "—"
    return f"×{mine / theirs:.2f}"


def ratios(results: list[dict[str, Any]]) -> None:
    lines = []
    for count, pair in sorted(by_count(results).items()):
        gortc, nginx = pair.get("gortc"), pair.get("nginx")
        if not gortc or not nginx:
            continue
        lines.append(
            f"{count:>7} {ratio(gortc['cpu_per_stream_pct'], nginx['cpu_per_stream_pct']):>10} "
            f"{ratio(gortc['first_playable']['p50'], nginx['first_playable']['p50']):>8} "
            f"{ratio(gortc['availability_delay']['p50'], nginx['availability_delay']['p50']):>8} "
            f"{ratio(gortc['edge_delay']['p50'], nginx['edge_delay']['p50']):>8} "
            f"{ratio(gortc['player_delay']['p50'], nginx['player_delay']['p50']):>8} "
            f"{ratio(gortc['server_rss_mib'], nginx['server_rss_mib']):>8}"
        )
    if lines:
        print()
        print("gortc / nginx-rtmp, same publishers, same run (medians):")
        print(
            f"{'streams':>7} {'CPU/stream':>10} {'first':>8} {'avail':>8} {'edge':>8} "
            f"{'player':>8} {'RSS':>8}"
        )
        for line in lines:
            print(line)


def targets(results: list[dict[str, Any]], args: argparse.Namespace) -> None:
    table = by_count(results)
    gortc = {count: pair["gortc"] for count, pair in table.items() if "gortc" in pair}
    if not gortc:
        return
    print()
    print("Targets (gortc):")
    worst = None
    for _count, pair in sorted(table.items()):
        if "gortc" in pair and "nginx" in pair and pair["nginx"]["cpu_per_stream_pct"] > 0:
            value = pair["gortc"]["cpu_per_stream_pct"] / pair["nginx"]["cpu_per_stream_pct"]
            worst = value if worst is None else max(worst, value)
    nginx_range = [p["nginx"]["cpu_per_stream_pct"] for p in table.values() if "nginx" in p]
    mine_range = [r["cpu_per_stream_pct"] for r in gortc.values()]
    if worst is not None:
        print(
            f"  CPU per stream <= nginx-rtmp's: gortc {min(mine_range):.2f}–"
            f"{max(mine_range):.2f} % of a core, nginx-rtmp {min(nginx_range):.2f}–"
            f"{max(nginx_range):.2f} %; worst ratio ×{worst:.2f} "
            f"({'met' if worst <= 1.0 else 'not met'})"
        )
    big = [r for count, r in gortc.items() if count >= TARGET_STREAMS]
    if big:
        best = max(big, key=lambda r: r["streams"])
        cores = "its one core" if args.pin else "the 2 cores"
        print(
            f"  >= {TARGET_STREAMS} concurrent 1080p streams on 2 cores: {best['streams']} streams "
            f"held: {'yes' if best['held'] else 'no'} (server {best['server_cpu_pct']:.1f} % of "
            f"a core on {cores}, largest gap between segments "
            f"{fmt(best['segment_gap_max'], 2)} s) ({'met' if best['held'] else 'not met'})"
        )
    else:
        largest = gortc[max(gortc)]
        estimate = TARGET_STREAMS * largest["cpu_per_stream_pct"]
        print(
            f"  >= {TARGET_STREAMS} concurrent 1080p streams: not measured (add 50 to "
            f"--streams); {largest['streams']} streams at {largest['cpu_per_stream_pct']:.2f} % "
            f"each would put {TARGET_STREAMS} at ~{estimate:.0f} % of a core"
        )
    delays = [r["player_delay"]["p50"] for r in gortc.values() if r["player_delay"]["p50"]]
    edges = [r["edge_delay"]["p50"] for r in gortc.values() if r["edge_delay"]["p50"]]
    if delays:
        worst_delay = max(delays)
        print(
            f"  HLS player <= {TARGET_PLAYER_DELAY:g} s behind the publisher: player delay "
            f"(edge + {PLAYER_SEGMENTS} × target duration) {min(delays):.2f}–{worst_delay:.2f} s, "
            f"live edge {min(edges):.2f}–{max(edges):.2f} s "
            f"({'met' if worst_delay <= TARGET_PLAYER_DELAY else 'not met'})"
        )
    if edges:
        web = web_client_sync_count()
        for segments, who in (
            (web, "gortc's web client (hls.js liveSyncDurationCount in static/live-player.js)"),
            (1, "a player started 1 target duration from the end"),
        ):
            if segments is None or segments == PLAYER_SEGMENTS:
                continue
            closer = [
                r["edge_delay"]["p50"] + segments * r["target_duration"]
                for r in gortc.values()
                if r["edge_delay"]["p50"] is not None
            ]
            print(f"  ({who}, {segments}: {min(closer):.2f}–{max(closer):.2f} s)")
    nginx_player = [p["nginx"]["player_delay"]["p50"] for p in table.values() if "nginx" in p]
    nginx_player = [d for d in nginx_player if d is not None]
    if nginx_player:
        print(
            f"  (nginx-rtmp with the same {args.segment:g} s fragments: player delay "
            f"{min(nginx_player):.2f}–{max(nginx_player):.2f} s)"
        )


# ---------------------------------------------------------------- command line


def parse_arguments(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])

    def counts(text: str) -> list[int]:
        chosen = [int(t) for t in text.split(",") if t.strip()]
        if not chosen or any(n < 1 for n in chosen):
            raise argparse.ArgumentTypeError("publisher counts are positive integers")
        return chosen

    def servers(text: str) -> list[str]:
        chosen = [t.strip() for t in text.split(",") if t.strip()]
        unknown = [t for t in chosen if t not in SERVERS]
        if unknown or not chosen:
            raise argparse.ArgumentTypeError(f"servers are among {', '.join(SERVERS)}")
        return chosen

    parser.add_argument("--streams", type=counts, default=[1, 10, 20], help="e.g. 1,10,20,50")
    parser.add_argument("--servers", type=servers, default=["gortc", "nginx"])
    parser.add_argument(
        "--gop", type=int, choices=(1, 2), default=2, help="the clip's keyframe interval, s"
    )
    parser.add_argument(
        "--segment",
        type=float,
        help="HLS segment length for both servers, s (default: the GOP)",
    )
    parser.add_argument("--playlist-segments", type=int, default=6)
    parser.add_argument(
        "--idle", type=float, default=3.0, help="s of server CPU measured before publishing"
    )
    parser.add_argument("--warmup", type=float, default=5.0, help="s after all are playable")
    parser.add_argument("--window", type=float, default=20.0, help="CPU window, s")
    parser.add_argument("--latency", type=float, default=12.0, help="s of latency sampling")
    parser.add_argument("--watch", type=int, default=3, help="streams whose delays are measured")
    parser.add_argument("--quiet-max", type=float, default=30.0)
    parser.add_argument("--quiet-threshold", type=float, default=0.3)
    parser.add_argument("--server-core", default="0")
    parser.add_argument("--load-core", default="1", help="publishers and this process")
    parser.add_argument("--no-pin", dest="pin", action="store_false")
    parser.add_argument("--json", type=Path, help="default: bench/out/live-<time>.json")
    args = parser.parse_args(argv)
    if args.segment is None:
        args.segment = float(args.gop)
    return args


def check_tools(args: argparse.Namespace) -> None:
    for tool in ("ffmpeg", "ffprobe"):
        if not shutil.which(tool):
            raise SystemExit(f"{tool} is needed (apt-get install -y ffmpeg)")
    if args.pin and not shutil.which("taskset"):
        raise SystemExit("taskset (util-linux) is needed to pin the processes, or pass --no-pin")
    if "nginx" in args.servers:
        from live.servers import nginx_binary

        nginx_binary()


async def run_all(args: argparse.Namespace, clip: Clip) -> list[dict[str, Any]]:
    task = asyncio.current_task()
    assert task is not None
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
    results: list[dict[str, Any]] = []
    try:
        for turn, count in enumerate(args.streams):
            order = args.servers if turn % 2 == 0 else args.servers[::-1]
            for name in order:
                results.append(await measure(name, count, clip, args))
    except asyncio.CancelledError:
        say("interrupted: reporting what was measured")
    finally:
        await stop_processes([p for p in STARTED if p.returncode is None], grace=2.0)
    return results


def main() -> None:
    args = parse_arguments()
    check_tools(args)
    if args.pin:
        os.sched_setaffinity(0, {int(args.load_core)})
    clip = prepare(args.gop)
    started = time.strftime("%Y%m%d-%H%M%S")
    try:
        results = asyncio.run(run_all(args, clip))
    except KeyboardInterrupt:
        results = []
    finally:
        for process in STARTED:  # last resort: nothing of ours outlives the bench
            if process.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
    OUT.mkdir(exist_ok=True)
    path = args.json or OUT / f"live-{started}.json"
    path.write_text(
        json.dumps(
            {"arguments": vars(args), "clip": vars(clip), "results": results}, indent=1, default=str
        )
    )
    report(results, clip, args)
    print(f"\nEvery figure: {path}")


if __name__ == "__main__":
    main()
