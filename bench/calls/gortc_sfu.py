"""gortc's in-process aiortc SFU: the server process, and the bots' side of
its call signaling.

:func:`start_gortc` runs ``gortc serve`` (rate limits off, ICE host
candidates on 127.0.0.1 only, a throwaway data directory, optionally
``GORTC_RTC_FORWARDING=transcode``). :class:`GortcCall` registers one user
per bot over REST, has the first create a group and add the others, opens a
WebSocket per bot and joins them one after the other: ``call.join`` with a
complete offer (the bot's audio and video) → ``call.answer``; each later
``call.offer`` (the others' tracks, with who owns which mid) is answered
with ``call.answer``. ``call.leave`` at the end.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import subprocess
import threading
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import aiohttp
from gortc_process import clean_environment, serve_command

if TYPE_CHECKING:
    from aiortc import RTCPeerConnection

    from .bots import Bot

ROOT = Path(__file__).resolve().parents[2]
READY = "ready on "
PASSWORD = "calls-bench-password"


@dataclass
class GortcProcess:
    process: subprocess.Popen[str]
    url: str
    log: deque[str]

    @property
    def pid(self) -> int:
        return self.process.pid

    def log_tail(self, lines: int = 30) -> str:
        return "\n".join(list(self.log)[-lines:])

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)


def start_gortc(
    data_dir: Path,
    pin: list[str],
    forwarding: str | None = None,
    source: Path = ROOT,
    timeout: float = 60,
) -> GortcProcess:
    """Starts ``gortc serve`` from the checkout ``source`` on a free port;
    returns once it logs that it is ready. Its log keeps being read, so the
    pipe never fills up."""
    settings = {
        "GORTC_LIMITS_ENABLED": "false",
        "GORTC_AUTH_BCRYPT_ROUNDS": "4",
        "GORTC_AUTH_ACCESS_TOKEN_TTL": "3600",
        "GORTC_RTC_HOST_ADDRESSES": "127.0.0.1",
        "PYTHONPATH": str(source),
    }
    if forwarding:
        settings["GORTC_RTC_FORWARDING"] = forwarding
    process = subprocess.Popen(
        [*pin, *serve_command(str(data_dir))],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=clean_environment(**settings),
        cwd=source,
    )
    log: deque[str] = deque(maxlen=200)
    found: list[str] = []
    ready = threading.Event()

    def read_log() -> None:
        assert process.stderr is not None
        for line in process.stderr:
            log.append(line.rstrip())
            if not ready.is_set() and READY in line:
                found.append(line.split(READY, 1)[1].split()[0])
                ready.set()
        ready.set()

    threading.Thread(target=read_log, daemon=True).start()
    server = GortcProcess(process, "", log)
    if not ready.wait(timeout=timeout) or not found:
        server.stop()
        raise SystemExit("gortc did not start:\n" + server.log_tail())
    server.url = found[0]
    return server


# ---------------------------------------------------------------- the bots' side


class GortcError(RuntimeError):
    pass


@dataclass
class _Member:
    bot: Bot
    user_id: str
    token: str
    ws: aiohttp.ClientWebSocketResponse | None = None
    pc: RTCPeerConnection | None = None
    frames: list[dict[str, Any]] = field(default_factory=list)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)
    reader: asyncio.Task[None] | None = None
    offers: int = 0
    failure: BaseException | None = None


class GortcCall:
    """One group, every bot in its call."""

    name = "gortc"

    def __init__(self, url: str, codec: str) -> None:
        self.url = url.rstrip("/")
        self.codec = codec
        self.http: aiohttp.ClientSession | None = None
        self.group_id = ""
        self.members: list[_Member] = []
        self.names: dict[str, str] = {}  # user id → bot name

    async def _post(self, path: str, body: dict[str, Any], token: str = "") -> dict[str, Any]:
        assert self.http is not None
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        async with self.http.post(self.url + path, json=body, headers=headers) as response:
            answer: dict[str, Any] = await response.json(content_type=None)
            if response.status not in (200, 201):
                raise GortcError(f"POST {path} → {response.status}: {answer}")
            return answer

    async def setup(self, bots: list[Bot]) -> None:
        self.http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30))
        for bot in bots:
            user = await self._post(
                "/api/v1/auth/register",
                {"username": bot.name, "email": f"{bot.name}@bench.example", "password": PASSWORD},
            )
            login = await self._post(
                "/api/v1/auth/login", {"login": bot.name, "password": PASSWORD}
            )
            self.members.append(_Member(bot, user["id"], login["access_token"]))
            self.names[user["id"]] = bot.name
        owner = self.members[0]
        group = await self._post("/api/v1/groups", {"name": "calls bench"}, owner.token)
        self.group_id = group["id"]
        for member in self.members[1:]:
            await self._post(
                f"/api/v1/groups/{self.group_id}/members", {"user_id": member.user_id}, owner.token
            )
        for member in self.members:
            member.ws = await self.http.ws_connect(
                f"{self.url}/api/v1/ws",
                params={"access_token": member.token},
                max_msg_size=4 << 20,
                heartbeat=None,
            )
            member.reader = asyncio.get_running_loop().create_task(self._read(member))
            await self._wait_for(member, "ready")
        for member in self.members:  # one after the other, as people arrive
            await self._join(member)

    async def _join(self, member: _Member) -> None:
        member.pc = member.bot.publishing_connection()
        offer = await member.bot.offer(member.pc)
        mark = len(member.frames)
        await self._send(member, type="call.join", group_id=self.group_id, sdp=offer)
        reply = await self._wait_for(member, "call.answer", "error", after=mark)
        if reply["type"] == "error":
            raise GortcError(f"{member.bot.name}: call.join → {reply}")

    async def _send(self, member: _Member, **frame: Any) -> None:
        assert member.ws is not None
        await member.ws.send_str(json.dumps(frame))

    async def _wait_for(
        self, member: _Member, *types: str, after: int = 0, patience: float = 20.0
    ) -> dict[str, Any]:
        async with asyncio.timeout(patience):
            while True:
                if member.failure is not None:
                    raise GortcError(f"{member.bot.name}: {member.failure!r}")
                for frame in member.frames[after:]:
                    if frame["type"] in types:
                        return frame
                member.arrived.clear()
                await member.arrived.wait()

    async def _read(self, member: _Member) -> None:
        """Applies the server's answers and offers in the order they come."""
        assert member.ws is not None
        try:
            async for message in member.ws:
                if message.type is not aiohttp.WSMsgType.TEXT:
                    break
                frame = json.loads(message.data)
                kind = frame.get("type")
                if kind == "call.answer" and member.pc is not None:
                    await member.bot.accept_answer(member.pc, frame["sdp"])
                elif kind == "call.offer" and member.pc is not None:
                    member.offers += 1
                    member.bot.name_sources(
                        member.pc,
                        {t["mid"]: self.names.get(t["user_id"], "?") for t in frame["tracks"]},
                    )
                    answer = await member.bot.answer(member.pc, frame["sdp"])
                    await self._send(
                        member, type="call.answer", group_id=frame["group_id"], sdp=answer
                    )
                if kind in ("ready", "call.answer", "call.offer", "call.ended", "error") or (
                    kind == "call.participants"
                ):
                    member.frames.append(frame)
                member.arrived.set()
        except Exception as error:  # shown by the next _wait_for
            member.failure = error
        finally:
            member.arrived.set()

    async def teardown(self) -> None:
        try:
            for member in self.members:
                if member.ws is not None and not member.ws.closed:
                    with contextlib.suppress(Exception):
                        await self._send(member, type="call.leave", group_id=self.group_id)
            for member in self.members:
                if member.ws is not None:
                    with contextlib.suppress(Exception):
                        await member.ws.close()
                if member.reader is not None:
                    member.reader.cancel()
                    with contextlib.suppress(asyncio.CancelledError, Exception):
                        await member.reader
        finally:
            if self.http is not None:
                await self.http.close()
