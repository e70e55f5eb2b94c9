"""Crash safety: ``gortc serve`` killed with SIGKILL at random moments.

Each cycle starts the server on the same data directory, checks everything
acknowledged so far (below), then lets several clients send and upload at
once: per user a WebSocket sender (``message.send`` with a ``client_id``,
a few in flight), a REST sender (``POST …/messages``), an uploader of
random-size files (a few bytes to a few MB, so that kills land in the middle
of uploads too) and a downloader of the files acknowledged so far. At a
random moment (seeded: the seed is printed, and ``--seed`` replays a run)
the server gets SIGKILL, with no chance to tidy anything.

After every restart, and once more after a clean stop, it checks what a
user or operator would notice:

- every message whose ``message.ack`` or 201 arrived is stored, with the
  same body, in the same group; each group's seqs are 1..N without a gap
  or a repeat, and no stored message is one nobody sent;
- every upload answered 201 is listed and downloads byte-exact (SHA-256);
  every listed file has its blob on disk, of its size; no blob on disk
  lacks a file (an orphan), once the server has started; a download that
  answered 200 never carried other bytes than the file's;
- after the final clean stop: ``PRAGMA integrity_check`` is ok and each
  group's ``last_seq`` is its number of messages.

Staged uploads a kill interrupted (``blobs/incoming/``) must be gone after
the restart too: the server holds a lock on the staged files of uploads in
progress, and removes those nobody holds. Only a kill in the instant between
creating one and locking it leaves an empty ``<handle>.new`` (removed a day
later); those are counted.

Run: ``python bench/crash_cycles.py --cycles 25`` (``make crash``, about
three to five minutes); the suite runs three cycles (tests/e2e/test_crash_safety.py).
Exits non-zero on the first violation.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import io
import json
import os
import random
import re
import signal
import sqlite3
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

REPO = Path(__file__).resolve().parents[1]
READY = re.compile(r"ready on (http://127\.0\.0\.1:\d+)")
PASSWORD = "crash-cycles-password"
SHA256_NAME = re.compile(r"[0-9a-f]{64}")
# Network errors a client sees when the server dies under it.
GONE = (aiohttp.ClientError, ConnectionError, asyncio.TimeoutError, OSError)


class Violation(AssertionError):
    """Something acknowledged was lost, or something wrong was served."""


@dataclass(frozen=True)
class Plan:
    cycles: int = 3
    users: int = 3
    groups: int = 2
    seed: int = 0
    # Seconds of load before the kill: uniform in this range.
    min_uptime: float = 0.4
    max_uptime: float = 2.0
    ws_in_flight: int = 4
    # Uploads: mostly small files, one in LARGE_ODDS up to max_file_bytes.
    max_file_bytes: int = 3 * 1024 * 1024


@dataclass
class Figures:
    cycles: int = 0
    messages_acked: int = 0
    messages_stored: int = 0
    messages_verified: int = 0
    uploads_acked: int = 0
    uploads_verified: int = 0
    downloads_during_load: int = 0
    staged_leftovers: int = 0
    kill_after_seconds: list[float] = field(default_factory=list)

    def summary(self) -> str:
        return (
            f"{self.cycles} kill cycles: {self.messages_acked} messages acknowledged, "
            f"{self.messages_verified} verified after restarts (of {self.messages_stored} "
            f"stored); {self.uploads_acked} uploads acknowledged, {self.uploads_verified} "
            f"verified byte-exact; {self.downloads_during_load} downloads checked under load; "
            f"unlocked leftovers in blobs/incoming: {self.staged_leftovers}"
        )


@dataclass
class User:
    username: str
    user_id: str = ""
    token: str = ""

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@dataclass
class Ledger:
    """What the server acknowledged, and what has been checked so far."""

    users: list[User]
    groups: list[str]
    # message id -> (group id, body), from an ack or a 201
    acked: dict[str, tuple[str, str]] = field(default_factory=dict)
    # bodies ever sent (acknowledged or not): anything stored must be one
    sent_bodies: set[str] = field(default_factory=set)
    # group id -> every stored message seen, by seq: (id, body)
    stored: dict[str, list[tuple[str, str]]] = field(default_factory=dict)
    # file id -> (user index, sha256, size), from a 201
    files: dict[str, tuple[int, str, int]] = field(default_factory=dict)
    downloaded: set[str] = field(default_factory=set)


# ------------------------------------------------------------------ the server


@dataclass
class Server:
    process: asyncio.subprocess.Process
    url: str
    log: list[str]

    def kill(self) -> None:
        if self.process.returncode is None:
            self.process.send_signal(signal.SIGKILL)

    async def wait(self) -> int:
        return await asyncio.wait_for(self.process.wait(), timeout=30)

    async def stop(self) -> int:
        if self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)
        return await self.wait()


async def start_server(data_dir: Path) -> Server:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("GORTC_")}
    environment.update(
        GORTC_LIMITS_ENABLED="false",
        GORTC_AUTH_BCRYPT_ROUNDS="4",
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
    log: list[str] = []
    async with asyncio.timeout(30):
        while True:
            line = (await process.stderr.readline()).decode()
            if not line:
                raise Violation("the server did not start after a kill:\n" + "".join(log))
            log.append(line)
            if match := READY.search(line):
                break

    async def drain(stream: asyncio.StreamReader) -> None:
        while line := await stream.readline():
            log.append(line.decode())

    asyncio.get_running_loop().create_task(drain(process.stderr))
    return Server(process, match.group(1), log)


# ------------------------------------------------------------------ set-up


async def expect(response: aiohttp.ClientResponse, status: int) -> Any:
    if response.status != status:
        raise Violation(
            f"{response.method} {response.url.path}: {response.status} {await response.text()}"
        )
    return await response.json() if status != 204 else None


async def sign_in(http: aiohttp.ClientSession, url: str, users: list[User]) -> None:
    for user in users:
        async with http.post(
            f"{url}/api/v1/auth/login", json={"login": user.username, "password": PASSWORD}
        ) as response:
            body = await expect(response, 200)
        user.token, user.user_id = body["access_token"], body["user"]["id"]


async def set_up(http: aiohttp.ClientSession, url: str, plan: Plan) -> Ledger:
    users = [User(f"crash{index}") for index in range(plan.users)]
    for user in users:
        async with http.post(
            f"{url}/api/v1/auth/register",
            json={
                "username": user.username,
                "email": f"{user.username}@example.com",
                "password": PASSWORD,
            },
        ) as response:
            await expect(response, 201)
    await sign_in(http, url, users)
    owner = users[0]
    groups = []
    for index in range(plan.groups):
        async with http.post(
            f"{url}/api/v1/groups", json={"name": f"crash {index}"}, headers=owner.headers
        ) as response:
            group_id = (await expect(response, 201))["id"]
        for member in users[1:]:
            async with http.post(
                f"{url}/api/v1/groups/{group_id}/members",
                json={"user_id": member.user_id},
                headers=owner.headers,
            ) as response:
                await expect(response, 201)
        groups.append(group_id)
    return Ledger(users, groups, stored={group_id: [] for group_id in groups})


# ------------------------------------------------------------------ load


class Load:
    """The clients of one cycle; each stops at its first network error
    (the server is gone) or when ``stop`` is set."""

    def __init__(
        self, http: aiohttp.ClientSession, url: str, ledger: Ledger, plan: Plan, cycle: int
    ) -> None:
        self.http = http
        self.url = url
        self.ledger = ledger
        self.plan = plan
        self.cycle = cycle
        self.figures = Figures()
        # One generator per worker, derived from the run's seed: the bodies
        # and sizes replay; the moments they meet the kill cannot.
        self._seed = plan.seed * 1_000_003 + cycle

    def _rng(self, worker: str, user: int) -> random.Random:
        return random.Random(f"{self._seed}/{worker}/{user}")

    def _body(self, rng: random.Random, kind: str, user: int, n: int) -> str:
        body = f"c{self.cycle} u{user} {kind}{n} " + rng.randbytes(rng.randint(0, 60)).hex()
        self.ledger.sent_bodies.add(body)
        return body

    def _ack(self, message: dict[str, Any], group_id: str, body: str) -> None:
        if message["group_id"] != group_id or message["body"] != body:
            raise Violation(f"acknowledged as something else: {message} for {body!r}")
        self.ledger.acked[message["id"]] = (group_id, body)
        self.figures.messages_acked += 1

    async def ws_sender(self, user: int) -> None:
        rng = self._rng("ws", user)
        pending: dict[str, tuple[str, str]] = {}  # client_id -> (group, body)
        async with self.http.ws_connect(
            f"{self.url}/api/v1/ws", headers=self.ledger.users[user].headers
        ) as ws:
            n = 0
            while True:
                while len(pending) < self.plan.ws_in_flight:
                    n += 1
                    client_id = f"c{self.cycle}-u{user}-{n}"
                    group_id = rng.choice(self.ledger.groups)
                    body = self._body(rng, "ws", user, n)
                    pending[client_id] = (group_id, body)
                    await ws.send_json(
                        {
                            "type": "message.send",
                            "group_id": group_id,
                            "body": body,
                            "client_id": client_id,
                        }
                    )
                message = await ws.receive()
                if message.type is not aiohttp.WSMsgType.TEXT:
                    return  # closed: the server died
                frame = json.loads(message.data)
                if frame["type"] == "message.ack":
                    group_id, body = pending.pop(frame["client_id"])
                    self._ack(frame["message"], group_id, body)
                elif frame["type"] == "error":
                    raise Violation(f"the server refused a send: {frame}")

    async def rest_sender(self, user: int) -> None:
        rng = self._rng("rest", user)
        headers = self.ledger.users[user].headers
        for n in range(1, 1_000_000):
            group_id = rng.choice(self.ledger.groups)
            body = self._body(rng, "rest", user, n)
            async with self.http.post(
                f"{self.url}/api/v1/groups/{group_id}/messages",
                json={"body": body, "client_id": f"c{self.cycle}-u{user}-rest{n}"},
                headers=headers,
            ) as response:
                message = await expect(response, 201)
            self._ack(message, group_id, body)

    async def uploader(self, user: int) -> None:
        rng = self._rng("upload", user)
        headers = self.ledger.users[user].headers
        for n in range(1, 1_000_000):
            large = rng.random() < 0.3
            size = (
                rng.randint(256 * 1024, self.plan.max_file_bytes)
                if large
                else rng.randint(0, 64 * 1024)
            )
            data = rng.randbytes(size)
            digest = hashlib.sha256(data).hexdigest()
            form = aiohttp.FormData()
            form.add_field("file", io.BytesIO(data), filename=f"c{self.cycle}-u{user}-{n}.bin")
            async with self.http.post(
                f"{self.url}/api/v1/files", data=form, headers=headers
            ) as response:
                stored = await expect(response, 201)
            if stored["sha256"] != digest or stored["size"] != size:
                raise Violation(f"upload stored as something else: {stored}, sent {digest} {size}")
            self.ledger.files[stored["id"]] = (user, digest, size)
            self.figures.uploads_acked += 1

    async def downloader(self, user: int) -> None:
        rng = self._rng("download", user)
        while True:
            mine = [
                file_id for file_id, (owner, _, _) in self.ledger.files.items() if owner == user
            ]
            if not mine:
                await asyncio.sleep(0.05)
                continue
            file_id = rng.choice(mine)
            await download(self.http, self.url, self.ledger, file_id)
            self.figures.downloads_during_load += 1

    async def run(self, kill: Callable[[], None], uptime: float) -> Figures:
        workers = [
            asyncio.create_task(self._until_gone(job(user)))
            for user in range(len(self.ledger.users))
            for job in (self.ws_sender, self.rest_sender, self.uploader, self.downloader)
        ]
        await asyncio.sleep(uptime)
        kill()
        # Each worker notices the server has gone at its next read; bounded.
        done, hung = await asyncio.wait(workers, timeout=15)
        for task in hung:
            task.cancel()
        for task in done:
            task.result()  # a Violation fails the run here
        return self.figures

    @staticmethod
    async def _until_gone(job: Any) -> None:
        with contextlib.suppress(*GONE):
            await job


async def download(http: aiohttp.ClientSession, url: str, ledger: Ledger, file_id: str) -> None:
    """One download: a 200 must carry exactly the file's bytes."""
    owner, digest, size = ledger.files[file_id]
    async with http.get(
        f"{url}/api/v1/files/{file_id}/content", headers=ledger.users[owner].headers
    ) as response:
        if response.status != 200:
            raise Violation(f"download of acknowledged {file_id}: {response.status}")
        data = await response.read()
    if len(data) != size or hashlib.sha256(data).hexdigest() != digest:
        raise Violation(f"{file_id} served {len(data)} bytes other than its own {size}")


# ------------------------------------------------------------------ checks


async def verify(
    http: aiohttp.ClientSession, url: str, data_dir: Path, ledger: Ledger, figures: Figures
) -> None:
    """Checks everything acknowledged so far against the server just started."""
    reader = ledger.users[0]
    for group_id in ledger.groups:
        seen = ledger.stored[group_id]
        while True:
            async with http.get(
                f"{url}/api/v1/groups/{group_id}/messages",
                params={"after": str(len(seen)), "limit": "200"},
                headers=reader.headers,
            ) as response:
                page = (await expect(response, 200))["items"]
            if not page:
                break
            for message in sorted(page, key=lambda item: item["seq"]):
                if message["seq"] != len(seen) + 1:
                    raise Violation(f"group {group_id}: seq {message['seq']} after {len(seen)}")
                if message["body"] not in ledger.sent_bodies:
                    raise Violation(f"group {group_id}: a message nobody sent: {message}")
                seen.append((message["id"], message["body"]))
    stored = {
        message_id: (group_id, body)
        for group_id in ledger.groups
        for message_id, body in ledger.stored[group_id]
    }
    for message_id, (group_id, body) in ledger.acked.items():
        if stored.get(message_id) != (group_id, body):
            raise Violation(
                f"acknowledged message {message_id} ({body!r}) is {stored.get(message_id)}"
            )
    figures.messages_verified = len(ledger.acked)
    figures.messages_stored = len(stored)

    listed: dict[str, tuple[int, str, int]] = {}
    for index, user in enumerate(ledger.users):
        async for file in list_files(http, url, user):
            listed[file["id"]] = (index, file["sha256"], file["size"])
    for file_id, (owner, digest, size) in ledger.files.items():
        if listed.get(file_id) != (owner, digest, size):
            raise Violation(f"acknowledged upload {file_id} is listed as {listed.get(file_id)}")
    blob_root = data_dir / "blobs"
    for file_id, (_, digest, size) in listed.items():
        blob = blob_root / digest[:2] / digest[2:4] / digest
        if not blob.is_file() or blob.stat().st_size != size:
            raise Violation(f"listed file {file_id} has no whole blob ({blob})")
    # Uploads answered with no 201 (the kill came first) may be stored:
    # they count as files like any other, and download like any other.
    ledger.files.update(listed)
    for file_id in sorted(set(listed) - ledger.downloaded):
        await download(http, url, ledger, file_id)
        ledger.downloaded.add(file_id)
    figures.uploads_verified = len(ledger.downloaded)

    on_disk = {path.name for path in blob_root.glob("??/??/*") if SHA256_NAME.fullmatch(path.name)}
    orphans = on_disk - {digest for _, digest, _ in listed.values()}
    if orphans:
        raise Violation(
            f"{len(orphans)} blobs on disk that no file references: {sorted(orphans)[:3]}"
        )
    # The server holds (flock) the staged files of uploads in progress; a
    # new one finds those of a dead process unheld, and removes them.
    incoming = blob_root / "incoming"
    leftovers = sorted(path.name for path in incoming.iterdir()) if incoming.is_dir() else []
    if staged := [name for name in leftovers if not name.endswith(".new")]:
        raise Violation(f"{len(staged)} staged uploads of the killed server left: {staged[:3]}")
    # Killed in the instant between creating a staged file and locking it
    # (removed a day later): counted.
    figures.staged_leftovers = len(leftovers)


async def list_files(
    http: aiohttp.ClientSession, url: str, user: User
) -> AsyncIterator[dict[str, Any]]:
    cursor: str | None = None
    while True:
        params = {"limit": "200"} | ({"before": cursor} if cursor else {})
        async with http.get(f"{url}/api/v1/files", params=params, headers=user.headers) as response:
            page = await expect(response, 200)
        for file in page["items"]:
            yield file
        cursor = page["next_cursor"]
        if not cursor:
            return


def verify_database(data_dir: Path, ledger: Ledger) -> None:
    """After a clean stop: the file is sound and the counters match."""
    conn = sqlite3.connect(data_dir / "gortc.db")
    try:
        if (check := conn.execute("PRAGMA integrity_check").fetchone()[0]) != "ok":
            raise Violation(f"integrity_check: {check}")
        for group_id in ledger.groups:
            last_seq, count, top = conn.execute(
                "SELECT g.last_seq, count(m.id), coalesce(max(m.seq), 0) FROM groups AS g "
                "LEFT JOIN messages AS m ON m.group_id = g.id WHERE g.id = ? GROUP BY g.id",
                (group_id,),
            ).fetchone()
            if not last_seq == count == top == len(ledger.stored[group_id]):
                raise Violation(
                    f"group {group_id}: last_seq {last_seq}, {count} rows, max seq {top}"
                )
    finally:
        conn.close()


# ------------------------------------------------------------------ the run


async def run_cycles(plan: Plan, data_dir: Path, report: Callable[[str], None] = print) -> Figures:
    """Set-up, ``plan.cycles`` kills, then a clean stop; raises Violation."""
    rng = random.Random(plan.seed)
    figures = Figures()
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(timeout=timeout) as http:
        server = await start_server(data_dir)
        try:
            ledger = await set_up(http, server.url, plan)
            for cycle in range(1, plan.cycles + 1):
                uptime = rng.uniform(plan.min_uptime, plan.max_uptime)
                load = await Load(http, server.url, ledger, plan, cycle).run(server.kill, uptime)
                await server.wait()
                figures.cycles = cycle
                figures.messages_acked += load.messages_acked
                figures.uploads_acked += load.uploads_acked
                figures.downloads_during_load += load.downloads_during_load
                figures.kill_after_seconds.append(round(uptime, 2))
                server = await start_server(data_dir)
                await sign_in(http, server.url, ledger.users)
                await verify(http, server.url, data_dir, ledger, figures)
                report(
                    f"cycle {cycle}: killed after {uptime:.2f} s; {load.messages_acked} messages "
                    f"and {load.uploads_acked} uploads acknowledged; all verified "
                    f"({figures.messages_stored} messages, {figures.uploads_verified} files stored)"
                )
        finally:
            await server.stop()
    verify_database(data_dir, ledger)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cycles", type=int, default=25)
    parser.add_argument("--users", type=int, default=4)
    parser.add_argument("--groups", type=int, default=3)
    parser.add_argument("--seed", type=int, default=None, help="default: a random one (printed)")
    parser.add_argument("--data-dir", type=Path, default=None, help="default: a temporary folder")
    args = parser.parse_args()
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(1_000_000)
    plan = Plan(
        cycles=args.cycles,
        users=args.users,
        groups=args.groups,
        seed=seed,
        min_uptime=0.5,
        max_uptime=4.0,
    )
    print(f"seed {seed} (replay with --seed {seed}); {plan.users} users, {plan.groups} groups")
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="gortc-crash-") as scratch:
        data_dir = args.data_dir or Path(scratch) / "data"
        try:
            figures = asyncio.run(run_cycles(plan, data_dir))
        except Violation as violation:
            print(f"FAILED (seed {seed}): {violation}")
            raise SystemExit(1) from None
    print(figures.summary())
    print(f"in {time.monotonic() - started:.0f} s")


if __name__ == "__main__":
    main()
