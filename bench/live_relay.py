"""What relaying a live stream through another instance costs.

Two ``gortc serve`` (A ingests, B relays) share a real redis-server, the
secret and an SQLite file for accounts, each with its own data directory,
all on loopback. ffmpeg publishes a 1280x720 H.264/AAC test pattern to A
over RTMP. Then N simulated HLS players (each: reload the playlist every
second, download every segment it lists that it has not had) play for a
while, once straight from A and once through B. Measured per run: the CPU
(utime + stime from /proc) of A and of B over the window, the playlist and
segment fetch times the players saw (p50 / p95), the bytes they got, and
how many playlist fetches reached A (its access log).

    python bench/live_relay.py [--viewers 1,50] [--seconds 15]

Needs redis-server and ffmpeg. About 1 minute with the defaults.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import socket
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urljoin

import aiohttp
from gortc_process import clean_environment

PASSWORD = "correct horse battery staple"
TICKS = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


@dataclass
class Instance:
    process: asyncio.subprocess.Process
    url: str
    log: list[str] = field(default_factory=list)


async def start(data_dir: Path, port: int, **settings: str) -> Instance:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gortc", "serve", "--port", str(port), "--data-dir", str(data_dir),
        env=clean_environment(**settings),
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert process.stderr is not None
    instance = Instance(process, f"http://127.0.0.1:{port}")
    async with asyncio.timeout(60):
        while True:
            line = (await process.stderr.readline()).decode()
            if not line:
                raise SystemExit("gortc did not start")
            if "ready on " in line:
                break

    async def drain() -> None:
        assert process.stderr is not None
        while line := await process.stderr.readline():
            instance.log.append(line.decode())

    asyncio.get_running_loop().create_task(drain())
    return instance


@dataclass
class Player:
    """One simulated HLS player."""

    url: str
    playlist_ms: list[float] = field(default_factory=list)
    segment_ms: list[float] = field(default_factory=list)
    bytes: int = 0
    errors: list[str] = field(default_factory=list)  # the answers that were not 200

    async def play(self, http: aiohttp.ClientSession, until: float) -> None:
        seen: set[str] = set()
        while time.monotonic() < until:
            reload_at = time.perf_counter() + 1.0
            began = time.perf_counter()
            async with http.get(self.url) as response:
                text = await response.text()
            self.playlist_ms.append((time.perf_counter() - began) * 1000)
            if response.status != 200:
                self.errors.append(f"{response.status} {error_code(text)} (playlist)")
            for name in [line for line in text.splitlines() if line and line[0] != "#"]:
                path = name.split("?", 1)[0]
                if path in seen:
                    continue
                seen.add(path)
                began = time.perf_counter()
                async with http.get(urljoin(self.url, name)) as segment:
                    body = await segment.read()
                    self.bytes += len(body)
                    if segment.status != 200:
                        self.errors.append(f"{segment.status} {error_code(body.decode())}")
                self.segment_ms.append((time.perf_counter() - began) * 1000)
            await asyncio.sleep(max(0.0, reload_at - time.perf_counter()))


def error_code(body: str) -> str:
    try:
        return str(json.loads(body)["error"]["code"])
    except (ValueError, LookupError, TypeError):
        return "?"


def errors(players: list[Player]) -> str:
    statuses = sorted(status for p in players for status in p.errors)
    return ", ".join(f"{statuses.count(s)}× {s}" for s in sorted(set(statuses))) or "0"


def spread(values: list[float]) -> str:
    """p50 / p95, in ms."""
    if not values:
        return "-"
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]
    return f"{statistics.median(ordered):.1f} / {p95:.1f}"


async def run(viewers: list[int], seconds: float) -> None:
    redis_binary = shutil.which("redis-server")
    ffmpeg = shutil.which("ffmpeg")
    if redis_binary is None or ffmpeg is None:
        raise SystemExit("needs redis-server and ffmpeg (apt-get install redis-server ffmpeg)")
    with tempfile.TemporaryDirectory(prefix="gortc-relay-") as temporary:
        root = Path(temporary)
        redis_port = free_port()
        redis = await asyncio.create_subprocess_exec(
            redis_binary, "--port", str(redis_port), "--bind", "127.0.0.1",
            "--save", "", "--appendonly", "no",
            stdout=asyncio.subprocess.DEVNULL,
        )  # fmt: skip
        await asyncio.sleep(0.3)
        instances: list[Instance] = []
        publisher: asyncio.subprocess.Process | None = None
        try:
            for name in ("a", "b"):
                port = free_port()
                instances.append(
                    await start(
                        root / name,
                        port,
                        GORTC_SERVER_INSTANCE_URL=f"http://127.0.0.1:{port}",
                        GORTC_REDIS_URL=f"redis://127.0.0.1:{redis_port}/0",
                        GORTC_AUTH_SECRET="bench-" + "s" * 60,
                        GORTC_DATABASE_PATH=str(root / "accounts.db"),
                        GORTC_AUTH_BCRYPT_ROUNDS="4",
                        GORTC_LIMITS_ENABLED="false",
                        GORTC_LIVE_RTMP_PORT="0",
                        GORTC_SERVER_LOG_LEVEL="info",
                    )
                )
            a, b = instances
            async with aiohttp.ClientSession(
                cookie_jar=aiohttp.DummyCookieJar(),
                connector=aiohttp.TCPConnector(limit=0),
            ) as http:
                headers = {}
                for user, at in (("bob", a), ("ann", b)):
                    account = {
                        "username": user,
                        "email": f"{user}@example.org",
                        "password": PASSWORD,
                    }
                    await http.post(f"{at.url}/api/v1/auth/register", json=account)
                    login = {"login": user, "password": PASSWORD}
                    async with http.post(f"{at.url}/api/v1/auth/login", json=login) as response:
                        tokens = await response.json()
                    headers[user] = {"Authorization": f"Bearer {tokens['access_token']}"}
                async with http.get(f"{a.url}/api/v1/live/key", headers=headers["bob"]) as r:
                    key = await r.json()
                publisher = await asyncio.create_subprocess_exec(
                    ffmpeg, "-hide_banner", "-nostdin", "-loglevel", "error", "-re",
                    "-f", "lavfi", "-i", "testsrc2=size=1280x720:rate=30",
                    "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100",
                    "-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency",
                    "-b:v", "2500k", "-g", "60", "-pix_fmt", "yuv420p",
                    "-c:a", "aac", "-b:a", "128k", "-f", "flv", key["rtmp_url"],
                )  # fmt: skip
                urls: dict[str, str] = {}
                async with asyncio.timeout(30):
                    while "b" not in urls:
                        for label, at in (("a", a), ("b", b)):
                            async with http.get(
                                f"{at.url}/api/v1/live", headers=headers["ann"]
                            ) as response:
                                items = (await response.json())["items"]
                            if items:
                                urls[label] = items[0]["hls_url"]
                        await asyncio.sleep(0.5)
                await asyncio.sleep(6)  # a few segments in the playlist
                print(
                    "| viewers | through | A CPU % | B CPU % | playlist p50 / p95 ms "
                    "| segment p50 / p95 ms | MB/s to players | playlist fetches at A/s | errors |"
                )
                print("|---|---|---|---|---|---|---|---|---|")
                for count in viewers:
                    for label in ("a", "b"):
                        players = [Player(urls[label]) for _ in range(count)]
                        room_path = urls[label].split("?", 1)[0].split("/", 3)[3]
                        at_a_before = sum(f"GET /{room_path} 200" in x for x in a.log)
                        cpu = [cpu_seconds(i.process.pid) for i in instances]
                        began = time.monotonic()
                        await asyncio.gather(*(p.play(http, began + seconds) for p in players))
                        elapsed = time.monotonic() - began
                        used = [
                            (cpu_seconds(i.process.pid) - c) / elapsed * 100
                            for i, c in zip(instances, cpu, strict=True)
                        ]
                        at_a = sum(f"GET /{room_path} 200" in x for x in a.log) - at_a_before
                        playlists = spread([ms for p in players for ms in p.playlist_ms])
                        segments = spread([ms for p in players for ms in p.segment_ms])
                        print(
                            f"| {count} | {'A (direct)' if label == 'a' else 'B (relay)'} "
                            f"| {used[0]:.1f} | {used[1]:.1f} "
                            f"| {playlists} | {segments} "
                            f"| {sum(p.bytes for p in players) / elapsed / 1e6:.2f} "
                            f"| {at_a / elapsed:.1f} | {errors(players)} |",
                            flush=True,
                        )
            for label, instance in zip("AB", instances, strict=True):
                warnings = [x.strip() for x in instance.log if " WARNING " in x or " ERROR " in x]
                if warnings:
                    print(f"{label}: {len(warnings)} warnings, e.g. {warnings[:3]}")
        finally:
            if publisher is not None and publisher.returncode is None:
                publisher.kill()
                await publisher.wait()
            for instance in instances:
                instance.process.terminate()
                await instance.process.wait()
            redis.terminate()
            await redis.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--viewers", default="1,50")
    parser.add_argument("--seconds", type=float, default=15.0)
    options = parser.parse_args()
    asyncio.run(run([int(v) for v in options.viewers.split(",")], options.seconds))


if __name__ == "__main__":
    main()
