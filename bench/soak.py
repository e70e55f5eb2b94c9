"""Soak: 10,000 WebSocket connections with steady chat for ten minutes,
plus a loop of call joins/leaves and live publish/stops; the server's RSS,
fds, threads and event-loop tasks must not creep.

Who connects: USERS signed-in users (2,500 by default) with CONNECTIONS /
USERS sockets each (4: a phone, a laptop, ... — fewer users than sockets
keeps the set-up to a minute, and several devices per user is what the
server sees anyway), in groups of GROUP_SIZE (50) users. The sockets are
held by WORKERS client processes (4 × 2,500: one Python process would be
the bottleneck, not the server); each reads every frame it is sent.

The load, for ``--minutes`` (10) once every socket is open:
- chat: ``--rate`` (5) ``message.send``/s in all, from random sockets into
  their user's group, so each message reaches 200 sockets (1,000 frames/s);
- every PERIOD (30 s): two aiortc bots join a call in a group of their own,
  exchange media for HOLD seconds and leave; meanwhile ffmpeg publishes a
  320x240 RTMP stream for HOLD seconds, which must show in ``GET /api/v1/live``
  and end.

Samples are taken once per period when no call or stream is on (so that
each compares like with like): RSS and threads from /proc/<pid>/status,
fds from /proc/<pid>/fd, event-loop tasks and open sockets from /metrics.
Warm-up is the first ``--warmup`` minutes (2); the reference is the
samples of the two minutes after it, the end the last three samples. It
fails (exit 1) when the RSS median grew by more than 10 % from reference to
end; when tasks, fds or threads in every end sample exceed the reference's
highest (a leak climbs steadily; the few tasks of messages in flight come
and go); when not every socket is open at the end (a client opens again,
after a second, any socket the server closes: the closes are counted, with
their codes), a message went unacknowledged, or half the calls or streams
did not work.

Run: ``python bench/soak.py`` (``make soak``: about 12 minutes with set-up;
needs ffmpeg); ``--minutes 2 --connections 2000`` for a quick look.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import re
import resource
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

REPO = Path(__file__).resolve().parents[1]
READY = re.compile(r"ready on (http://127\.0\.0\.1:\d+)")
PASSWORD = "soak-password-0123"
PERIOD = 30.0
HOLD = 8.0
RSS_GROWTH_LIMIT = 0.10


def raise_fd_limit() -> int:
    """Soft fd limit up to the hard one (10,000 sockets need it); returns it."""
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


# ------------------------------------------------------------------ workers


async def worker(spec: dict[str, Any]) -> None:
    """Holds its share of the sockets (opening again, as a client app would,
    any the server closes), reads everything, sends its share of the chat;
    prints a JSON status line every few seconds; ends on 'stop'."""
    raise_fd_limit()
    url: str = spec["url"]
    counts = {
        "open": 0,
        "closed": 0,
        "reopened": 0,
        "frames": 0,
        "sent": 0,
        "acked": 0,
        "errors": 0,
        "failed": 0,
        "unacked_at_close": 0,  # sends whose socket the server closed first
    }
    open_ws: dict[aiohttp.ClientWebSocketResponse, str] = {}  # socket -> its group
    # socket -> client_ids sent on it and not acknowledged yet
    pending: dict[aiohttp.ClientWebSocketResponse, set[str]] = {}
    rng = random.Random(spec["index"])
    stop = asyncio.Event()
    first_round = len(spec["sockets"])
    all_tried = asyncio.Event()
    gate = asyncio.Semaphore(50)  # handshakes at once, per worker
    connector = aiohttp.TCPConnector(limit=0)
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=60)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as http:

        async def hold(token: str, group_id: str) -> None:
            nonlocal first_round
            attempt = 0
            while not stop.is_set():
                if attempt:
                    counts["reopened"] += 1
                    await asyncio.sleep(1.0)
                attempt += 1
                try:
                    async with gate:
                        ws = await http.ws_connect(
                            f"{url}/api/v1/ws", headers={"Authorization": f"Bearer {token}"}
                        )
                except (aiohttp.ClientError, OSError):
                    counts["failed"] += 1
                    ws = None
                if attempt == 1:
                    first_round -= 1
                    if first_round == 0:
                        all_tried.set()
                if ws is None:
                    continue
                counts["open"] += 1
                open_ws[ws] = group_id
                pending[ws] = set()
                await read(ws)
                del open_ws[ws]
                counts["unacked_at_close"] += len(pending.pop(ws))
                counts["open"] -= 1
                if stop.is_set():
                    return
                counts["closed"] += 1
                # Why: 1006 (no close frame: e.g. the heartbeat's pong came
                # too late), 4008 (evicted as too slow), ...
                key = f"close {ws.close_code}"
                counts[key] = counts.get(key, 0) + 1

        async def read(ws: aiohttp.ClientWebSocketResponse) -> None:
            async for message in ws:
                if message.type is not aiohttp.WSMsgType.TEXT:
                    break
                counts["frames"] += 1
                frame = json.loads(message.data)
                kind = frame["type"]
                if kind == "message.ack":
                    counts["acked"] += 1
                    pending[ws].discard(frame["client_id"])
                elif kind == "error":
                    counts["errors"] += 1

        holders = [asyncio.create_task(hold(token, group)) for token, group in spec["sockets"]]
        await all_tried.wait()
        print(json.dumps({"connected": counts["open"]} | counts), flush=True)

        async def stdin_stop() -> None:
            loop = asyncio.get_running_loop()
            await loop.run_in_executor(None, sys.stdin.readline)
            stop.set()

        async def chat() -> None:
            interval = 1.0 / spec["rate"]
            n = 0
            next_at = time.monotonic()
            while not stop.is_set():
                next_at += interval
                await asyncio.sleep(max(0.0, next_at - time.monotonic()))
                if not open_ws:
                    continue
                ws, group_id = rng.choice(list(open_ws.items()))
                n += 1
                client_id = f"w{spec['index']}-{n}"
                with contextlib.suppress(ConnectionError, RuntimeError):
                    pending[ws].add(client_id)
                    counts["sent"] += 1
                    await ws.send_str(
                        json.dumps(
                            {
                                "type": "message.send",
                                "group_id": group_id,
                                "client_id": client_id,
                                "body": f"soak {n} " + "x" * 60,
                            }
                        )
                    )

        async def status() -> None:
            while not stop.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), 5)
                print(json.dumps(counts), flush=True)

        tasks = [asyncio.create_task(job()) for job in (stdin_stop, chat, status)]
        await stop.wait()
        for task in tasks:
            task.cancel()
        # The last sends' acks are on their way: a bounded wait for them.
        for _ in range(100):
            if counts["acked"] >= counts["sent"]:
                break
            await asyncio.sleep(0.1)
        await asyncio.gather(*(ws.close() for ws in list(open_ws)), return_exceptions=True)
        for task in holders:
            task.cancel()
        print(json.dumps(counts), flush=True)


# ------------------------------------------------------------------ the server


@dataclass
class Sample:
    at: float  # seconds since the load began
    rss_kib: int
    threads: int
    fds: int
    tasks: int
    sockets: int
    healthz_ms: float  # how long the event loop took to answer: its lag

    def line(self) -> str:
        return (
            f"{self.at:6.0f} s  RSS {self.rss_kib / 1024:7.1f} MiB  threads {self.threads:3d}  "
            f"fds {self.fds:6d}  tasks {self.tasks:6d}  sockets {self.sockets:6d}  "
            f"/healthz {self.healthz_ms:5.0f} ms"
        )


async def start_server(data_dir: Path) -> tuple[asyncio.subprocess.Process, str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("GORTC_")}
    environment.update(
        GORTC_LIMITS_ENABLED="false",
        GORTC_AUTH_BCRYPT_ROUNDS="4",
        # The set-up takes a minute or two and the run ten: tokens outlive it.
        GORTC_AUTH_ACCESS_TOKEN_TTL="7200",  # noqa: S106 (seconds, not a secret)
        GORTC_LIVE_RTMP_PORT="0",
        GORTC_RTC_HOST_ADDRESSES="127.0.0.1",
    )
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "gortc",
        "serve",
        "--port",
        "0",
        "--data-dir",
        str(data_dir),
        cwd=REPO,
        env=environment,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    assert process.stderr is not None
    async with asyncio.timeout(60):
        while True:
            line = (await process.stderr.readline()).decode()
            if not line:
                raise SystemExit("the server did not start")
            if match := READY.search(line):
                break

    async def drain(stream: asyncio.StreamReader) -> None:
        while await stream.readline():
            pass

    asyncio.get_running_loop().create_task(drain(process.stderr))
    return process, match.group(1)


async def scrape(http: aiohttp.ClientSession, url: str) -> dict[str, float]:
    async with http.get(f"{url}/metrics") as response:
        text = await response.text()
    figures: dict[str, float] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, number = line.rpartition(" ")
            figures[name] = float(number)
    return figures


async def sample(http: aiohttp.ClientSession, url: str, pid: int, began: float) -> Sample:
    status = await asyncio.to_thread(Path(f"/proc/{pid}/status").read_text)
    fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    figures = await scrape(http, url)
    asked = time.perf_counter()
    async with http.get(f"{url}/healthz") as response:
        await response.read()
    healthz_ms = (time.perf_counter() - asked) * 1000
    return Sample(
        at=time.monotonic() - began,
        rss_kib=int(fields["VmRSS"].split()[0]),
        threads=int(fields["Threads"]),
        fds=len(os.listdir(f"/proc/{pid}/fd")),
        tasks=int(figures["gortc_asyncio_tasks"]),
        sockets=int(figures["gortc_websocket_connections"]),
        healthz_ms=healthz_ms,
    )


# ------------------------------------------------------------------ set-up


async def post(http: aiohttp.ClientSession, url: str, status: int, **kwargs: Any) -> Any:
    async with http.post(url, **kwargs) as response:
        if response.status != status:
            raise SystemExit(f"POST {url}: {response.status} {await response.text()}")
        return await response.json()


async def sign_up(
    http: aiohttp.ClientSession, url: str, name: str, gate: asyncio.Semaphore
) -> tuple[str, str]:
    """Registers and signs in ``name``; (user id, access token)."""
    async with gate:
        await post(
            http,
            f"{url}/api/v1/auth/register",
            201,
            json={"username": name, "email": f"{name}@example.com", "password": PASSWORD},
        )
        tokens = await post(
            http, f"{url}/api/v1/auth/login", 200, json={"login": name, "password": PASSWORD}
        )
    return tokens["user"]["id"], tokens["access_token"]


async def make_group(
    http: aiohttp.ClientSession,
    url: str,
    name: str,
    members: list[tuple[str, str]],
    gate: asyncio.Semaphore,
) -> str:
    owner = {"Authorization": f"Bearer {members[0][1]}"}
    async with gate:
        group = await post(http, f"{url}/api/v1/groups", 201, json={"name": name}, headers=owner)
    for user_id, _ in members[1:]:
        async with gate:
            await post(
                http,
                f"{url}/api/v1/groups/{group['id']}/members",
                201,
                json={"user_id": user_id},
                headers=owner,
            )
    return str(group["id"])


# ------------------------------------------------------------------ calls and live


class BaseUrlClient:
    """What tests/e2e/call_peer.py needs of a test client: ws_connect(path)."""

    def __init__(self, http: aiohttp.ClientSession, url: str) -> None:
        self._http = http
        self._url = url

    def ws_connect(self, path: str, **kwargs: Any) -> Any:
        return self._http.ws_connect(self._url + path, **kwargs)


@dataclass
class Activity:
    calls_tried: int = 0
    calls: int = 0  # answered
    calls_with_media: int = 0  # video both ways
    streams_tried: int = 0
    streams_listed: int = 0  # in GET /api/v1/live while on the air
    streams: int = 0  # published to the end
    problems: list[str] = field(default_factory=list)

    def worked(self) -> bool:
        """At least half of the calls and of the streams worked end to end
        (the loop is there to exercise their set-up and tear-down; a join
        slow on a busy shared machine is reported, not fatal)."""
        return (
            2 * self.calls_with_media >= self.calls_tried and 2 * self.streams >= self.streams_tried
        )

    def line(self) -> str:
        return (
            f"calls: {self.calls_with_media} of {self.calls_tried} with video both ways "
            f"({self.calls} answered); streams: {self.streams} of {self.streams_tried} "
            f"published to the end ({self.streams_listed} listed while on the air)"
        )


async def one_call(
    http: aiohttp.ClientSession,
    url: str,
    bots: list[tuple[str, str]],
    group_id: str,
    activity: Activity,
) -> None:
    activity.calls_tried += 1
    try:
        await _call(http, url, bots, group_id, activity)
    except (TimeoutError, aiohttp.ClientError, OSError) as exc:
        activity.problems.append(f"call: {exc!r}")


async def _call(
    http: aiohttp.ClientSession,
    url: str,
    bots: list[tuple[str, str]],
    group_id: str,
    activity: Activity,
) -> None:
    from tests.e2e.call_peer import CallPeer

    peers = [
        CallPeer(BaseUrlClient(http, url), {"id": user_id}, {"access_token": token})  # type: ignore[arg-type]
        for user_id, token in bots
    ]
    try:
        for index, peer in enumerate(peers):
            await peer.connect()
            answer = await peer.join(group_id, luma=60 + 100 * index, audio=False)
            if answer["type"] != "call.answer":
                activity.problems.append(f"call.join refused: {answer}")
                return
        activity.calls += 1
        await asyncio.sleep(HOLD)
        first, second = peers
        if first.frames_from(second.user_id, "video") and second.frames_from(
            first.user_id, "video"
        ):
            activity.calls_with_media += 1
        else:
            activity.problems.append("a call carried no video between its two bots")
        for peer in peers:
            await peer.send(type="call.leave", group_id=group_id)
    finally:
        for peer in peers:
            await peer.close()


async def one_stream(http: aiohttp.ClientSession, url: str, token: str, activity: Activity) -> None:
    activity.streams_tried += 1
    try:
        await _stream(http, url, token, activity)
    except (TimeoutError, aiohttp.ClientError, OSError) as exc:
        activity.problems.append(f"stream: {exc!r}")


async def _stream(http: aiohttp.ClientSession, url: str, token: str, activity: Activity) -> None:
    headers = {"Authorization": f"Bearer {token}"}
    async with http.get(f"{url}/api/v1/live/key", headers=headers) as response:
        ingest = (await response.json())["rtmp_url"]
    publisher = await asyncio.create_subprocess_exec(
        "ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error", "-re",
        "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=30",
        "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100",
        "-t", str(HOLD),
        "-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency", "-g", "30",
        "-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", "64k",
        "-f", "flv", ingest,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    # Listed once ffmpeg has connected and published (a few seconds on a busy
    # machine): looked for twice a second while it is on the air.
    for _ in range(int(HOLD * 2) - 2):
        await asyncio.sleep(0.5)
        async with http.get(f"{url}/api/v1/live", headers=headers) as response:
            if (await response.json())["items"]:
                activity.streams_listed += 1
                break
    else:
        activity.problems.append("a stream on the air was never listed")
    _, err = await asyncio.wait_for(publisher.communicate(), timeout=HOLD + 30)
    if publisher.returncode != 0:
        activity.problems.append(f"ffmpeg ended {publisher.returncode}: {err.decode()[-300:]}")
    else:
        activity.streams += 1


# ------------------------------------------------------------------ the run


@dataclass
class Options:
    minutes: float
    warmup: float
    reference: float
    connections: int
    users: int
    group_size: int
    workers: int
    rate: float


async def soak(options: Options, data_dir: Path) -> int:
    process, url = await start_server(data_dir)
    workers: list[asyncio.subprocess.Process] = []
    status: dict[int, dict[str, int]] = {}
    try:
        timeout = aiohttp.ClientTimeout(total=60)
        async with aiohttp.ClientSession(
            timeout=timeout, connector=aiohttp.TCPConnector(limit=0)
        ) as http:
            started = time.monotonic()
            gate = asyncio.Semaphore(16)
            users = await asyncio.gather(
                *(sign_up(http, url, f"soak{i}", gate) for i in range(options.users + 3))
            )
            bots, streamer, users = users[:2], users[2], users[3:]
            call_group = await make_group(http, url, "calls", bots, gate)
            chunks = [
                users[i : i + options.group_size] for i in range(0, len(users), options.group_size)
            ]
            group_ids = await asyncio.gather(
                *(make_group(http, url, f"soak {i}", c, gate) for i, c in enumerate(chunks))
            )
            group_of = {
                user[0]: group_id
                for chunk, group_id in zip(chunks, group_ids, strict=True)
                for user in chunk
            }
            print(
                f"set-up: {len(users)} users in {len(group_ids)} groups "
                f"in {time.monotonic() - started:.0f} s",
                flush=True,
            )
            sockets = [
                (users[i % len(users)][1], group_of[users[i % len(users)][0]])
                for i in range(options.connections)
            ]
            began_connecting = time.monotonic()
            for index in range(options.workers):
                share = sockets[index :: options.workers]
                spec = {
                    "index": index,
                    "url": url,
                    "sockets": share,
                    "rate": options.rate / options.workers,
                }
                child = await asyncio.create_subprocess_exec(
                    sys.executable,
                    __file__,
                    "--worker",
                    stdin=asyncio.subprocess.PIPE,
                    stdout=asyncio.subprocess.PIPE,
                )
                assert child.stdin is not None
                child.stdin.write(json.dumps(spec).encode() + b"\n")
                await child.stdin.drain()
                workers.append(child)

            all_connected = asyncio.Event()
            readers = [
                asyncio.create_task(follow(child, index, status, len(workers), all_connected))
                for index, child in enumerate(workers)
            ]
            async with asyncio.timeout(600):
                await all_connected.wait()
            connected = sum(s["connected"] for s in status.values())
            failed = sum(s["failed"] for s in status.values())
            print(
                f"{connected} sockets open ({failed} refused) in "
                f"{time.monotonic() - began_connecting:.0f} s",
                flush=True,
            )
            first = totals(status)
            samples, activity = await steady(
                http, url, process.pid, options, bots, call_group, streamer, status
            )
            # The chat stops; each worker waits for its last acks, reports, ends.
            for child in workers:
                assert child.stdin is not None
                child.stdin.write(b"stop\n")
                await child.stdin.drain()
            await asyncio.wait_for(asyncio.gather(*(child.wait() for child in workers)), 60)
            await asyncio.gather(*readers)
            return judge(samples, options, activity, totals(status), first)
    finally:
        for child in workers:
            if child.returncode is None:
                child.kill()
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
            await asyncio.wait_for(process.wait(), 60)


async def follow(
    child: asyncio.subprocess.Process,
    index: int,
    status: dict[int, dict[str, int]],
    workers: int,
    all_connected: asyncio.Event,
) -> None:
    """Keeps ``status[index]`` up to date from the worker's status lines."""
    assert child.stdout is not None
    while line := await child.stdout.readline():
        status[index] = status.get(index, {}) | json.loads(line)
        if sum("connected" in s for s in status.values()) == workers:
            all_connected.set()


async def steady(
    http: aiohttp.ClientSession,
    url: str,
    pid: int,
    options: Options,
    bots: list[tuple[str, str]],
    call_group: str,
    streamer: tuple[str, str],
    status: dict[int, dict[str, int]],
) -> tuple[list[Sample], Activity]:
    activity = Activity()
    samples: list[Sample] = []
    began = time.monotonic()
    duration = options.minutes * 60
    first_counts = totals(status)
    while time.monotonic() - began < duration:
        period_start = time.monotonic()
        await asyncio.gather(
            one_call(http, url, bots, call_group, activity),
            one_stream(http, url, streamer[1], activity),
        )
        # Quiet: no call, no stream; chat goes on. Let the leave settle.
        await asyncio.sleep(max(0.0, period_start + PERIOD - 2 - time.monotonic()))
        samples.append(await sample(http, url, pid, began))
        counts = totals(status)
        print(
            samples[-1].line()
            + f"  acks {counts['acked'] - first_counts['acked']}  closed {counts['closed']}",
            flush=True,
        )
        await asyncio.sleep(max(0.0, period_start + PERIOD - time.monotonic()))
    return samples, activity


def totals(status: dict[int, dict[str, int]]) -> dict[str, int]:
    keys = {key for s in status.values() for key in s} - {"connected"}
    return {key: sum(s.get(key, 0) for s in status.values()) for key in sorted(keys)}


def judge(
    samples: list[Sample],
    options: Options,
    activity: Activity,
    counts: dict[str, int],
    first: dict[str, int],
) -> int:
    warmup = options.warmup * 60
    reference = [s for s in samples if warmup <= s.at < warmup + options.reference * 60]
    end = samples[-3:]
    if not reference or samples.index(reference[-1]) >= len(samples) - 3:
        print("too short a run to judge: make --minutes at least --warmup + 4")
        return 1
    failures: list[str] = []
    rss_ref = statistics.median(s.rss_kib for s in reference)
    rss_end = statistics.median(s.rss_kib for s in end)
    growth = (rss_end - rss_ref) / rss_ref
    print(
        f"RSS: {rss_ref / 1024:.1f} MiB after warm-up -> {rss_end / 1024:.1f} MiB at the end "
        f"({growth:+.1%}; limit +{RSS_GROWTH_LIMIT:.0%})"
    )
    if growth > RSS_GROWTH_LIMIT:
        failures.append(f"RSS grew {growth:.1%}")
    for name in ("tasks", "fds", "threads"):
        ref = [getattr(s, name) for s in reference]
        last = [getattr(s, name) for s in end]
        print(f"{name}: {ref} after warm-up -> {last} at the end")
        if min(last) > max(ref):
            failures.append(f"{name} grew from {max(ref)} to {min(last)}")
    sockets = [s.sockets for s in samples]
    codes = ", ".join(f"{counts[k]} x {k}" for k in counts if k.startswith("close ")) or "none"
    print(
        f"sockets open on the server: {min(sockets)}..{max(sockets)} (wanted "
        f"{options.connections}); closed by the server: {counts['closed']} ({codes}), "
        f"{counts['reopened']} opened again by their clients"
    )
    if sockets[-1] < options.connections:
        failures.append(f"{sockets[-1]} of {options.connections} sockets open at the end")
    sent = counts["sent"] - first.get("sent", 0)
    acked = counts["acked"] - first.get("acked", 0)
    unanswered = counts["unacked_at_close"] - first.get("unacked_at_close", 0)
    print(
        f"chat: {sent} sent, {acked} acknowledged, {counts['frames']:,} frames received, "
        f"{counts['errors']} error frames; {unanswered} unanswered because the server "
        f"closed their socket first (a client sends those again)"
    )
    print(activity.line())
    for problem in activity.problems[:10]:
        print(f"  {problem}")
    if counts["errors"] or acked + unanswered < sent:
        failures.append(f"chat: {sent} sent, {acked} acknowledged, {counts['errors']} errors")
    if not activity.worked():
        failures.append(activity.line())
    if failures:
        print("FAILED: " + "; ".join(failures))
        return 1
    print("OK")
    return 0


async def interruptible(run: Coroutine[Any, Any, int]) -> int:
    """``run``, cancelled by SIGINT or SIGTERM so that its clean-up (workers,
    server) happens even when started in the background."""
    task = asyncio.ensure_future(run)
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, task.cancel)
    try:
        return await task
    except asyncio.CancelledError:
        print("interrupted", flush=True)
        return 2


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=2.0, help="minutes")
    parser.add_argument(
        "--reference", type=float, default=2.0, help="minutes after the warm-up to compare with"
    )
    parser.add_argument("--connections", type=int, default=10_000)
    parser.add_argument("--users", type=int, default=2_500)
    parser.add_argument("--group-size", type=int, default=50)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--rate", type=float, default=5.0, help="chat messages per second")
    args = parser.parse_args()
    if args.worker:
        asyncio.run(worker(json.loads(sys.stdin.readline())))
        return
    limit = raise_fd_limit()
    print(
        f"soak: {args.connections} sockets ({args.users} users, groups of {args.group_size}, "
        f"{args.workers} client processes), {args.rate} messages/s, {args.minutes} minutes "
        f"(warm-up {args.warmup}); fd limit {limit}",
        flush=True,
    )
    sys.path.insert(0, str(REPO))  # tests.e2e.call_peer, the call bots
    options = Options(
        args.minutes,
        args.warmup,
        args.reference,
        args.connections,
        args.users,
        args.group_size,
        args.workers,
        args.rate,
    )
    with tempfile.TemporaryDirectory(prefix="gortc-soak-") as scratch:
        raise SystemExit(asyncio.run(interruptible(soak(options, Path(scratch) / "data"))))


if __name__ == "__main__":
    main()
