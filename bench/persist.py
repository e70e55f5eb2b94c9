"""Persisted, acknowledged messages per second in gortc.

One group of 50 members; the server pinned to core 0, this client to core 1.

0. Group commit alone: each of the 50 users also has a group of their own
   and sends to it over WebSocket (IN_FLIGHT outstanding), so each message is
   stored once and delivered once (to its sender's connection), besides the
   ack: storage and the send path, with fan-out out of the picture.
1. WebSocket: each member opens one connection and keeps IN_FLIGHT
   ``message.send`` frames outstanding (a new one for each ``message.ack``);
   every member also receives every ``message.created`` of the group, so each
   message is stored once and delivered 50 times.
2. REST: ``POST /api/v1/groups/{id}/messages`` from 50 concurrent workers
   (one per member, one request at a time each), with no WebSocket open:
   storage and the HTTP path alone.
3. REST again with the 50 WebSocket connections open and reading, so that
   each message is delivered 50 times, as in 1.

Each phase counts the answers (acks, 201s) received within a 10 s window
after a 2 s warm-up, with the server's CPU time over the window. The
group's ``last_seq`` at the end must equal every message acknowledged.

The WebSocket clients are a minimal asyncio protocol (handshake, frame
parsing, pong), not aiohttp's client: 50 connections receive tens of
thousands of frames per second, and the client must not be what is measured.
Its frames are masked with an all-zero key (valid framing; masking protects
proxies, of which there are none on loopback).

Run: ``python bench/persist.py`` (about a minute); ``--only-own`` runs phase 0
alone (for profiling the send path); ``--postgresql`` runs everything on
SQLite and then on PostgreSQL (a durable server of Debian's, started here as
the tests start theirs; it is not pinned, so it shares both cores), one
after the other in the same run. ``--drivers`` (``make
bench-persist-drivers``, about two minutes) runs SQLite, then PostgreSQL
through asyncpg (what gortc ships), then PostgreSQL with the message batches
through psycopg 3 (bench/psycopg_store.py: the same statements on psycopg's
async pool), each in a fresh database of one server, and ends with a table
of every phase's msg/s and its ratio to SQLite. ``--window S`` and
``--warmup S`` shorten the windows (a smoke run: ``--window 1 --warmup 0.5``).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import os
import struct
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from gortc_process import serve_command, start_gortc

MEMBERS = 50
IN_FLIGHT = 10  # message.send outstanding per WebSocket connection
WARMUP = 2.0
WINDOW = 10.0
DRAIN = 5.0  # seconds to wait for the last acknowledgements
PASSWORD = "persist-bench-password"
BODY = "persist bench " + "x" * 86  # 100 characters
CLK_TCK = os.sysconf("SC_CLK_TCK")
# For the PostgreSQL server the tests use (tests/postgres_server.py).
REPO = str(Path(__file__).resolve().parents[1])
PSYCOPG_SERVE = str(Path(__file__).resolve().parent / "psycopg_store.py")


def server_cpu(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def percentile(samples: list[float], fraction: float) -> float | None:
    if not samples:
        return None
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


# ---------------------------------------------------------------- a lean WebSocket client


def client_frame(payload: bytes, opcode: int = 0x1) -> bytes:
    """A masked client frame, with an all-zero masking key."""
    size = len(payload)
    if size < 126:
        header = struct.pack("!BB", 0x80 | opcode, 0x80 | size)
    elif size < 1 << 16:
        header = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, size)
    else:
        header = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, size)
    return header + b"\x00\x00\x00\x00" + payload


@dataclass
class Counters:
    acks: int = 0
    frames: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    ack_latencies: list[float] = field(default_factory=list)
    window: tuple[float, float] = (float("inf"), float("-inf"))
    window_acks: int = 0


class WsClient(asyncio.Protocol):
    """One gortc WebSocket: handshake, then counts frames; acks are matched
    to their send time by client_id."""

    def __init__(self, counters: Counters, path: str, host: str) -> None:
        self.counters = counters
        self.path = path
        self.host = host
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.upgraded = False
        self.ready = asyncio.get_running_loop().create_future()
        self.closed = asyncio.get_running_loop().create_future()
        self.sent_at: dict[str, float] = {}
        self.acked = asyncio.Event()  # set at each ack: the sender refills
        self.serial = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        key = base64.b64encode(os.urandom(16)).decode()
        transport.write(
            (
                f"GET {self.path} HTTP/1.1\r\nHost: {self.host}\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                "Sec-WebSocket-Version: 13\r\n\r\n"
            ).encode()
        )

    def data_received(self, data: bytes) -> None:
        buffer = self.buffer
        buffer += data
        if not self.upgraded:
            end = buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            status = bytes(buffer[:end]).split(b"\r\n", 1)[0]
            if b" 101 " not in status:
                self.ready.set_exception(RuntimeError(status.decode()))
                return
            self.upgraded = True
            del buffer[: end + 4]
        position = 0
        available = len(buffer)
        counters = self.counters
        while available - position >= 2:
            first, second = buffer[position], buffer[position + 1]
            size = second & 0x7F
            header = 2
            if size == 126:
                if available - position < 4:
                    break
                size = struct.unpack_from("!H", buffer, position + 2)[0]
                header = 4
            elif size == 127:
                if available - position < 10:
                    break
                size = struct.unpack_from("!Q", buffer, position + 2)[0]
                header = 10
            end = position + header + size
            if end > available:
                break
            opcode = first & 0x0F
            if opcode == 0x1:
                counters.frames += 1
                # Most frames are the group's message.created: recognised
                # from their first bytes, not parsed; every other one is.
                start = position + header
                if buffer.find(b'"message.created"', start, min(end, start + 40)) < 0:
                    self.on_frame(json.loads(bytes(buffer[start:end])))
            elif opcode == 0x9 and self.transport is not None:
                self.transport.write(client_frame(bytes(buffer[position + header : end]), 0xA))
            elif opcode == 0x8 and not self.closed.done():
                self.closed.set_result(bytes(buffer[position + header : end]))
            position = end
        if position:
            del buffer[:position]

    def on_frame(self, frame: dict[str, Any]) -> None:
        kind = frame.get("type")
        if kind == "message.ack":
            self.on_ack(frame)
        elif kind == "ready" and not self.ready.done():
            self.ready.set_result(None)
        elif kind == "error":
            self.on_error(frame)

    def on_ack(self, frame: dict[str, Any]) -> None:
        now = time.perf_counter()
        counters = self.counters
        counters.acks += 1
        sent = self.sent_at.pop(frame["client_id"], None)
        if sent is not None and counters.window[0] <= now < counters.window[1]:
            counters.window_acks += 1
            counters.ack_latencies.append(now - sent)
        self.acked.set()

    def on_error(self, frame: dict[str, Any]) -> None:
        code = frame.get("code", "?")
        self.counters.errors[code] = self.counters.errors.get(code, 0) + 1
        self.sent_at.pop(frame.get("client_id", ""), None)
        self.acked.set()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closed.done():
            self.closed.set_result(b"")
        if not self.ready.done():
            self.ready.set_exception(RuntimeError("connection lost during the handshake"))
        self.acked.set()

    def send(self, group_id: str) -> None:
        assert self.transport is not None
        self.serial += 1
        client_id = f"p{self.serial}"
        self.sent_at[client_id] = time.perf_counter()
        frame = {"type": "message.send", "group_id": group_id, "body": BODY, "client_id": client_id}
        self.transport.write(client_frame(json.dumps(frame, separators=(",", ":")).encode()))


async def open_ws(url: str, token: str, counters: Counters) -> WsClient:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    path = f"/api/v1/ws?access_token={token}"
    loop = asyncio.get_running_loop()
    _, client = await loop.create_connection(
        lambda: WsClient(counters, path, f"{host}:{port}"), host, port
    )
    async with asyncio.timeout(30):
        await client.ready
    return client


# ---------------------------------------------------------------- set-up and phases


async def setup(http: aiohttp.ClientSession) -> tuple[str, list[str], list[str]]:
    """The shared group, the members' tokens and each member's own group."""

    async def post(path: str, body: dict[str, Any], token: str = "") -> dict[str, Any]:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        async with http.post(path, json=body, headers=headers) as response:
            answer = await response.json()
            if response.status not in (200, 201):
                raise SystemExit(f"POST {path} → {response.status}: {answer}")
            return answer  # type: ignore[no-any-return]

    names = [f"persist{i:02d}" for i in range(MEMBERS)]
    users = await asyncio.gather(
        *(
            post(
                "/api/v1/auth/register",
                {"username": n, "email": f"{n}@bench.example", "password": PASSWORD},
            )
            for n in names
        )
    )
    logins = await asyncio.gather(
        *(post("/api/v1/auth/login", {"login": n, "password": PASSWORD}) for n in names)
    )
    tokens = [login["access_token"] for login in logins]
    group = await post("/api/v1/groups", {"name": "persist"}, tokens[0])
    await asyncio.gather(
        *(
            post(f"/api/v1/groups/{group['id']}/members", {"user_id": user["id"]}, tokens[0])
            for user in users[1:]
        )
    )
    solos = await asyncio.gather(
        *(post("/api/v1/groups", {"name": f"solo {i}"}, token) for i, token in enumerate(tokens))
    )
    return group["id"], tokens, [solo["id"] for solo in solos]


async def measure_window(pid: int, during: float) -> tuple[float, float, float, float]:
    """Sleeps through the warm-up, then the window; (start, end, server CPU s,
    this client's CPU s)."""
    await asyncio.sleep(WARMUP)
    start, cpu0, mine0 = time.perf_counter(), server_cpu(pid), time.process_time()
    await asyncio.sleep(during)
    return start, time.perf_counter(), server_cpu(pid) - cpu0, time.process_time() - mine0


async def websocket_phase(
    pid: int, group_ids: list[str], clients: list[WsClient]
) -> dict[str, Any]:
    """Client i sends to group_ids[i]."""
    counters = clients[0].counters
    stop = False

    async def sender(client: WsClient, group_id: str) -> None:
        for _ in range(IN_FLIGHT):
            client.send(group_id)
        while not stop and not client.closed.done():
            await client.acked.wait()
            client.acked.clear()
            missing = IN_FLIGHT - len(client.sent_at)
            for _ in range(missing if not stop else 0):
                client.send(group_id)

    tasks = [asyncio.create_task(sender(c, g)) for c, g in zip(clients, group_ids, strict=True)]
    frames0 = counters.frames
    started = time.perf_counter()
    counters.window = (started + WARMUP, started + WARMUP + WINDOW)
    start, end, cpu, client_cpu = await measure_window(pid, WINDOW)
    frames = counters.frames - frames0
    stop = True
    for client in clients:
        client.acked.set()
    await asyncio.gather(*tasks)
    deadline = time.perf_counter() + DRAIN
    # A bounded poll over 50 clients' outstanding sends.
    while any(c.sent_at for c in clients) and time.perf_counter() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.05)
    seconds = end - start
    return {
        "answers": counters.window_acks,
        "per_s": counters.window_acks / seconds,
        "p50_ms": _ms(percentile(counters.ack_latencies, 0.5)),
        "p99_ms": _ms(percentile(counters.ack_latencies, 0.99)),
        "server_cpu_s": cpu,
        "client_cpu_s": client_cpu,
        "frames_per_s": frames / (time.perf_counter() - started),
        "errors": dict(counters.errors),
        "unanswered": sum(len(c.sent_at) for c in clients),
        "acks_total": counters.acks,
        "closed": sum(1 for c in clients if c.closed.done()),
    }


async def rest_phase(
    http: aiohttp.ClientSession, pid: int, group_id: str, tokens: list[str]
) -> dict[str, Any]:
    latencies: list[float] = []
    window = [float("inf"), float("-inf")]
    counts = {"answers": 0, "total": 0, "errors": 0}
    stop = False

    async def worker(token: str) -> None:
        headers = {"Authorization": f"Bearer {token}"}
        path = f"/api/v1/groups/{group_id}/messages"
        while not stop:
            sent = time.perf_counter()
            async with http.post(path, json={"body": BODY}, headers=headers) as response:
                await response.read()
                now = time.perf_counter()
                if response.status != 201:
                    counts["errors"] += 1
                    continue
                counts["total"] += 1
                if window[0] <= now < window[1]:
                    counts["answers"] += 1
                    latencies.append(now - sent)

    tasks = [asyncio.create_task(worker(t)) for t in tokens]
    started = time.perf_counter()
    window[:] = [started + WARMUP, started + WARMUP + WINDOW]
    start, end, cpu, client_cpu = await measure_window(pid, WINDOW)
    stop = True
    await asyncio.gather(*tasks)
    return {
        "answers": counts["answers"],
        "per_s": counts["answers"] / (end - start),
        "p50_ms": _ms(percentile(latencies, 0.5)),
        "p99_ms": _ms(percentile(latencies, 0.99)),
        "server_cpu_s": cpu,
        "client_cpu_s": client_cpu,
        "errors": counts["errors"],
        "total": counts["total"],
    }


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else seconds * 1000


def show(label: str, result: dict[str, Any]) -> None:
    cpu = result["server_cpu_s"]
    per_cpu = result["answers"] / cpu if cpu else 0
    line = (
        f"{label:56} {result['per_s']:6,.0f} msg/s  p50 {result['p50_ms'] or 0:6.1f} ms  "
        f"p99 {result['p99_ms'] or 0:6.1f} ms  server CPU {cpu / WINDOW:4.2f}  "
        f"{per_cpu:6,.0f} msg/CPU-s  client CPU {result['client_cpu_s'] / WINDOW:4.2f}"
    )
    if result.get("frames_per_s"):
        line += f"  {result['frames_per_s']:,.0f} frames/s received"
    if result.get("errors"):
        line += f"  errors {result['errors']}"
    print(line, flush=True)


async def main(only_own: bool, postgresql: bool, drivers: bool) -> None:
    with contextlib.ExitStack() as stack:
        server = None
        if postgresql or drivers:
            sys.path.insert(0, REPO)
            from tests.postgres_server import PostgresServer

            # Started before this process pins itself to core 1, so that
            # PostgreSQL (which inherits the affinity) has both cores.
            server = stack.enter_context(PostgresServer(durable=True))
        with contextlib.suppress(OSError):
            os.sched_setaffinity(0, {1})
        print("== SQLite", flush=True)
        results = {"SQLite": await run(only_own)}
        if server is None:
            return
        durable = "durable: fsync on, synchronous_commit on"
        print(f"== PostgreSQL, asyncpg ({durable})", flush=True)
        results["asyncpg"] = await run(
            only_own, GORTC_DATABASE_URL=server.create_database("persist_asyncpg")
        )
        if drivers:
            # Neither driver inherits the other's dirty pages.
            server.psql("CHECKPOINT")
            print(f"== PostgreSQL, message batches on psycopg 3 ({durable})", flush=True)
            results["psycopg 3"] = await run(
                only_own,
                psycopg=True,
                GORTC_DATABASE_URL=server.create_database("persist_psycopg"),
            )
    if drivers:
        compare(results)


def compare(results: dict[str, dict[str, dict[str, Any]]]) -> None:
    """Each phase's msg/s on every engine, and its ratio to SQLite's."""
    engines = list(results)
    print(f"\n== msg/s per phase (ratio to SQLite); {WINDOW:g} s windows", flush=True)
    print(f"{'':56}" + "".join(f"{engine:>20}" for engine in engines))
    for phase, base in results["SQLite"].items():
        cells = [f"{base['per_s']:20,.0f}"]
        for engine in engines[1:]:
            result = results[engine].get(phase)
            if result is None:
                cells.append(f"{'—':>20}")
                continue
            ratio = result["per_s"] / base["per_s"] if base["per_s"] else 0
            cells.append(f"{result['per_s']:11,.0f} (x{ratio:4.2f})")
        print(f"{phase:56}" + "".join(cells))
    if "psycopg 3" in results:
        pairs = [
            (results["psycopg 3"][phase]["per_s"], result["per_s"])
            for phase, result in results["asyncpg"].items()
            if phase in results["psycopg 3"] and result["per_s"]
        ]
        ratios = ", ".join(f"x{psycopg / asyncpg:.2f}" for psycopg, asyncpg in pairs)
        print(f"psycopg 3 / asyncpg per phase: {ratios}", flush=True)


async def run(
    only_own: bool, *, psycopg: bool = False, **database: str
) -> dict[str, dict[str, Any]]:
    """Every phase's result, by its label."""
    results: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory() as data_dir:
        # The psycopg variant: gortc serve with bench/psycopg_store.py's batches.
        command = [sys.executable, PSYCOPG_SERVE, *serve_command(data_dir)[3:]] if psycopg else None
        process, url = await start_gortc(
            data_dir,
            command=command,
            GORTC_LIMITS_ENABLED="false",
            GORTC_AUTH_BCRYPT_ROUNDS="4",
            **database,
        )
        pid = process.pid
        # The server on core 0 (it inherited this process's core 1).
        with contextlib.suppress(OSError):
            os.sched_setaffinity(pid, {0})
        try:
            async with aiohttp.ClientSession(
                url, connector=aiohttp.TCPConnector(limit=MEMBERS)
            ) as http:
                group_id, tokens, solo_ids = await setup(http)
                print(
                    f"gortc, one group of {MEMBERS} members, server on core 0, client on core 1;"
                    f" {WINDOW:g} s windows after {WARMUP:g} s warm-up",
                    flush=True,
                )
                counters = Counters()
                clients = [await open_ws(url, token, counters) for token in tokens]
                await asyncio.sleep(1.0)  # presence and joins settle
                solo = await websocket_phase(pid, solo_ids, clients)
                results[f"WebSocket, {MEMBERS} conns x {IN_FLIGHT} in flight, own groups"] = solo
                show(f"WebSocket, {MEMBERS} conns x {IN_FLIGHT} in flight, own groups", solo)
                if only_own:
                    return results
                counters = Counters()
                for client in clients:
                    client.counters = counters
                ws = await websocket_phase(pid, [group_id] * MEMBERS, clients)
                results[f"WebSocket, {MEMBERS} conns x {IN_FLIGHT} in flight (50 deliveries)"] = ws
                show(f"WebSocket, {MEMBERS} conns x {IN_FLIGHT} in flight (50 deliveries)", ws)
                for client in clients:
                    assert client.transport is not None
                    client.transport.close()
                await asyncio.sleep(1.0)
                rest = await rest_phase(http, pid, group_id, tokens)
                results[f"REST, {MEMBERS} concurrent, no WebSocket open"] = rest
                show(f"REST, {MEMBERS} concurrent, no WebSocket open", rest)
                counters = Counters()
                clients = [await open_ws(url, token, counters) for token in tokens]
                await asyncio.sleep(1.0)
                rest_fanout = await rest_phase(http, pid, group_id, tokens)
                rest_fanout["frames_per_s"] = counters.frames / (WARMUP + WINDOW)
                results[f"REST, {MEMBERS} concurrent, {MEMBERS} WebSockets reading"] = rest_fanout
                show(f"REST, {MEMBERS} concurrent, {MEMBERS} WebSockets reading", rest_fanout)
                for client in clients:
                    assert client.transport is not None
                    client.transport.close()
                async with http.get(
                    f"/api/v1/groups/{group_id}", headers={"Authorization": f"Bearer {tokens[0]}"}
                ) as response:
                    last_seq = (await response.json())["last_seq"]
                acknowledged = ws["acks_total"] + rest["total"] + rest_fanout["total"]
                solo_seqs = 0
                for solo_id, token in zip(solo_ids, tokens, strict=True):
                    async with http.get(
                        f"/api/v1/groups/{solo_id}", headers={"Authorization": f"Bearer {token}"}
                    ) as response:
                        solo_seqs += (await response.json())["last_seq"]
                print(
                    f"own groups' last_seq total {solo_seqs:,}; acknowledged {solo['acks_total']:,}"
                )
                note = "" if last_seq == acknowledged else " (the rest: stored, never answered)"
                print(f"group last_seq {last_seq:,}; acknowledged {acknowledged:,}{note}")
        finally:
            process.terminate()
            try:
                async with asyncio.timeout(15):
                    await process.wait()
            except TimeoutError:
                process.kill()
    return results


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only-own", action="store_true", help="phase 0 alone")
    parser.add_argument("--postgresql", action="store_true", help="SQLite, then PostgreSQL")
    parser.add_argument(
        "--drivers", action="store_true", help="SQLite, PostgreSQL on asyncpg, on psycopg 3"
    )
    parser.add_argument("--window", type=float, default=WINDOW, help="seconds measured per phase")
    parser.add_argument("--warmup", type=float, default=WARMUP, help="seconds before each window")
    arguments = parser.parse_args()
    WINDOW, WARMUP = arguments.window, arguments.warmup
    asyncio.run(main(arguments.only_own, arguments.postgresql, arguments.drivers))
