"""Janus (Debian's ``janus`` 1.1, the VideoRoom plugin) as the reference SFU.

:func:`start_janus` writes a throwaway configuration (only the VideoRoom
plugin and the plain-HTTP transport, on 127.0.0.1; ICE candidates on
127.0.0.1 only, no STUN; no event handlers or loggers) and starts it.
:class:`JanusCall` is the bots' side: each bot has its own Janus session, a
publisher handle (join, then publish with a complete offer, no trickle) and
one multistream subscriber handle for every other participant's audio and
video (Janus offers, the bot answers). Rooms are created through the API
with no bitrate cap and the scenario's codec as the only video codec.

Install: ``apt-get install -y janus`` (Debian bookworm: 1.1.2).
"""

from __future__ import annotations

import asyncio
import contextlib
import glob
import hashlib
import itertools
import os
import random
import shutil
import signal
import socket
import subprocess
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import aiohttp

if TYPE_CHECKING:
    from .bots import Bot

PLUGIN = "janus.plugin.videoroom"
WANTED_PLUGIN = "libjanus_videoroom.so"
WANTED_TRANSPORT = "libjanus_http.so"


class JanusMissing(SystemExit):
    pass


def janus_binary() -> str:
    found = shutil.which("janus")
    if not found:
        raise JanusMissing(
            "janus is not installed: `apt-get install -y janus` (Debian's package, 1.1.x), "
            "or run with --servers gortc"
        )
    return found


def _library_folder() -> Path:
    for candidate in glob.glob(f"/usr/lib/*/janus/plugins/{WANTED_PLUGIN}"):
        return Path(candidate).parent.parent
    for candidate in glob.glob(f"/usr/*lib*/janus/plugins/{WANTED_PLUGIN}"):
        return Path(candidate).parent.parent
    raise JanusMissing(f"janus is installed but {WANTED_PLUGIN} was not found")


def _others(folder: Path, keep: str) -> str:
    """Every module in ``folder`` but ``keep``, as Janus's ``disable`` list."""
    names = sorted({p.name.split(".so")[0] + ".so" for p in folder.glob("libjanus_*.so*")})
    return ",".join(n for n in names if n != keep)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


# Janus skips every interface flagged IFF_LOOPBACK when it lists the addresses
# to gather ICE candidates on (src/ice.c, janus_ice_setup_local: "Skip loopback
# interfaces"), whatever ice_enforce_list says; with no address left, libnice
# then gathers on every other interface. The machines' rule is loopback-only
# traffic, so Janus runs with this getifaddrs() wrapper preloaded: it clears the
# loopback flag, and ice_enforce_list = "127.0.0.1" then keeps 127.0.0.1 alone.
LOOPBACK_SHIM = r"""
#define _GNU_SOURCE
#include <dlfcn.h>
#include <ifaddrs.h>
#include <net/if.h>

int getifaddrs(struct ifaddrs **ifap) {
    static int (*real)(struct ifaddrs **) = 0;
    if (!real)
        real = (int (*)(struct ifaddrs **))dlsym(RTLD_NEXT, "getifaddrs");
    int rc = real(ifap);
    if (rc == 0)
        for (struct ifaddrs *i = *ifap; i; i = i->ifa_next)
            i->ifa_flags &= ~IFF_LOOPBACK;
    return rc;
}
"""


def loopback_shim(folder: Path) -> Path:
    """Builds (once) the getifaddrs() wrapper that lets Janus gather on
    127.0.0.1; needs a C compiler (Debian: gcc)."""
    digest = hashlib.sha256(LOOPBACK_SHIM.encode()).hexdigest()[:12]
    library = folder / f"janus-loopback-{digest}.so"
    if library.exists():
        return library
    compiler = shutil.which("cc") or shutil.which("gcc")
    if not compiler:
        raise JanusMissing(
            "a C compiler is needed to let Janus use 127.0.0.1 (apt-get install -y gcc)"
        )
    folder.mkdir(parents=True, exist_ok=True)
    source = folder / f"janus-loopback-{digest}.c"
    source.write_text(LOOPBACK_SHIM)
    subprocess.run(
        [compiler, "-shared", "-fPIC", "-O2", "-o", str(library), str(source), "-ldl"],
        check=True,
    )
    return library


def write_config(folder: Path, http_port: int, debug_level: int) -> None:
    lib = _library_folder()
    (folder / "janus.jcfg").write_text(
        f"""general: {{
	configs_folder = "{folder}"
	plugins_folder = "{lib / "plugins"}"
	transports_folder = "{lib / "transports"}"
	events_folder = "{lib / "events"}"
	loggers_folder = "{lib / "loggers"}"
	debug_level = {debug_level}
	server_name = "gortc-bench"
	session_timeout = 120
	hide_dependencies = true
	interface = "127.0.0.1"
}}
certificates: {{
}}
media: {{
	ipv6 = false
	no_media_timer = 5
}}
nat: {{
	nice_debug = false
	full_trickle = false
	ice_enforce_list = "127.0.0.1"
}}
plugins: {{
	disable = "{_others(lib / "plugins", WANTED_PLUGIN)}"
}}
transports: {{
	disable = "{_others(lib / "transports", WANTED_TRANSPORT)}"
}}
loggers: {{
	disable = "{_others(lib / "loggers", "")}"
}}
events: {{
	broadcast = false
	disable = "{_others(lib / "events", "")}"
}}
"""
    )
    (folder / "janus.transport.http.jcfg").write_text(
        f"""general: {{
	events = false
	json = "compact"
	base_path = "/janus"
	http = true
	port = {http_port}
	ip = "127.0.0.1"
	https = false
}}
admin: {{
	admin_http = false
	admin_https = false
}}
"""
    )
    (folder / "janus.plugin.videoroom.jcfg").write_text(
        """general: {
	events = false
}
"""
    )


@dataclass
class JanusProcess:
    process: subprocess.Popen[bytes]
    url: str
    log_path: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def log_tail(self, lines: int = 30) -> str:
        with contextlib.suppress(OSError):
            text = self.log_path.read_text(errors="replace")
            return "\n".join(deque(text.splitlines(), maxlen=lines))
        return ""

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)  # Janus's own clean shutdown
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)


def start_janus(
    folder: Path, shim_folder: Path, pin: list[str], debug_level: int = 3, timeout: float = 30
) -> JanusProcess:
    """Starts Janus with a configuration written into ``folder``; returns
    once its HTTP API listens."""
    binary = janus_binary()
    shim = loopback_shim(shim_folder)
    environment = dict(os.environ)
    environment["LD_PRELOAD"] = str(shim.resolve())
    port = free_port()
    write_config(folder, port, debug_level)
    log_path = folder / "janus.log"
    with open(os.devnull, "rb") as nothing:
        process = subprocess.Popen(
            [
                *pin,
                binary,
                "-F",
                str(folder),
                "-C",
                str(folder / "janus.jcfg"),
                "-L",
                str(log_path),
                "-N",
                "-o",
            ],
            stdin=nothing,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            cwd=folder,
            env=environment,
        )
    janus = JanusProcess(process, f"http://127.0.0.1:{port}/janus", log_path)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"janus exited with {process.returncode}:\n{janus.log_tail()}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return janus
        except OSError:
            time.sleep(0.1)
    janus.stop()
    raise SystemExit(f"janus did not listen on 127.0.0.1:{port} within {timeout} s")


# ---------------------------------------------------------------- the bots' side


class JanusError(RuntimeError):
    pass


@dataclass
class JanusSession:
    """One Janus API session over HTTP with its long-poll loop; answers to
    asynchronous plugin requests are matched by transaction."""

    http: aiohttp.ClientSession
    base: str
    id: int = 0
    pending: dict[str, asyncio.Future[dict[str, Any]]] = field(default_factory=dict)
    webrtc_up: dict[int, asyncio.Event] = field(default_factory=dict)
    events: list[dict[str, Any]] = field(default_factory=list)
    _poller: asyncio.Task[None] | None = None
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def _transaction(self) -> str:
        return f"t{next(self._ids)}"

    async def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        async with self.http.post(self.base + path, json=body) as response:
            answer: dict[str, Any] = await response.json(content_type=None)
        if answer.get("janus") == "error":
            raise JanusError(f"{body.get('janus')}: {answer.get('error')}")
        return answer

    async def create(self) -> None:
        answer = await self._post("", {"janus": "create", "transaction": self._transaction()})
        self.id = answer["data"]["id"]
        self._poller = asyncio.get_running_loop().create_task(self._poll())

    async def attach(self) -> int:
        answer = await self._post(
            f"/{self.id}", {"janus": "attach", "plugin": PLUGIN, "transaction": self._transaction()}
        )
        handle: int = answer["data"]["id"]
        self.webrtc_up[handle] = asyncio.Event()
        return handle

    async def request(self, handle: int, body: dict[str, Any]) -> dict[str, Any]:
        """A synchronous plugin request (create, exists, list…): its data."""
        answer = await self._post(
            f"/{self.id}/{handle}",
            {"janus": "message", "transaction": self._transaction(), "body": body},
        )
        data: dict[str, Any] = answer["plugindata"]["data"]
        if "error" in data:
            raise JanusError(f"{body['request']}: {data['error']}")
        return data

    async def message(
        self, handle: int, body: dict[str, Any], jsep: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """An asynchronous plugin request: the event that answers it (with
        its ``jsep``, if any)."""
        transaction = self._transaction()
        waiter: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self.pending[transaction] = waiter
        message: dict[str, Any] = {"janus": "message", "transaction": transaction, "body": body}
        if jsep is not None:
            message["jsep"] = jsep
        try:
            answer = await self._post(f"/{self.id}/{handle}", message)
            if answer.get("janus") == "success":  # answered at once
                return answer
            async with asyncio.timeout(20):
                event = await waiter
        finally:
            self.pending.pop(transaction, None)
        data = event.get("plugindata", {}).get("data", {})
        if "error" in data:
            raise JanusError(f"{body['request']}: {data['error']}")
        return event

    async def _poll(self) -> None:
        while True:
            try:
                async with self.http.get(
                    f"{self.base}/{self.id}", params={"maxev": "10", "rid": str(time.time_ns())}
                ) as response:
                    got = await response.json(content_type=None)
            except (TimeoutError, aiohttp.ClientError):
                await asyncio.sleep(0.2)
                continue
            for event in got if isinstance(got, list) else [got]:
                self._dispatch(event)

    def _dispatch(self, event: dict[str, Any]) -> None:
        kind = event.get("janus")
        if kind == "keepalive":
            return
        transaction = event.get("transaction")
        if kind == "event" and transaction in self.pending:
            waiter = self.pending[transaction]
            if not waiter.done():
                waiter.set_result(event)
            return
        if kind == "webrtcup":
            up = self.webrtc_up.get(event.get("sender", 0))
            if up is not None:
                up.set()
            return
        if kind in ("hangup", "detached") or len(self.events) < 200:
            self.events.append(event)

    async def destroy(self) -> None:
        with contextlib.suppress(Exception):
            await self._post(
                f"/{self.id}", {"janus": "destroy", "transaction": self._transaction()}
            )
        if self._poller is not None:
            self._poller.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._poller


@dataclass
class _Participant:
    bot: Bot
    session: JanusSession
    feed: int
    publisher: int = 0
    subscriber: int = 0


class JanusCall:
    """One VideoRoom room with every bot publishing and subscribing to all
    the others."""

    name = "janus"

    def __init__(self, url: str, codec: str) -> None:
        self.url = url
        self.codec = codec
        self.room = random.randrange(1, 2**31)
        self.admin_handle = 0
        self.http: aiohttp.ClientSession | None = None
        self.admin: JanusSession | None = None
        self.participants: list[_Participant] = []

    async def setup(self, bots: list[Bot]) -> None:
        self.http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=70))
        self.admin = JanusSession(self.http, self.url)
        await self.admin.create()
        self.admin_handle = await self.admin.attach()
        await self.admin.request(
            self.admin_handle,
            {
                "request": "create",
                "room": self.room,
                "description": "gortc bench",
                "publishers": max(6, len(bots)),
                "bitrate": 0,
                "fir_freq": 0,
                "audiocodec": "opus",
                "videocodec": self.codec,
                "notify_joining": False,
                "is_private": True,
            },
        )
        for number, bot in enumerate(bots, start=1):
            session = JanusSession(self.http, self.url)
            await session.create()
            self.participants.append(_Participant(bot, session, feed=1000 + number))
        await asyncio.gather(*(self._publish(p) for p in self.participants))
        async with asyncio.timeout(20):
            for p in self.participants:
                await p.session.webrtc_up[p.publisher].wait()
        await asyncio.gather(*(self._subscribe(p) for p in self.participants))

    async def _publish(self, p: _Participant) -> None:
        p.publisher = await p.session.attach()
        await p.session.message(
            p.publisher,
            {
                "request": "join",
                "ptype": "publisher",
                "room": self.room,
                "id": p.feed,
                "display": p.bot.name,
            },
        )
        pc = p.bot.publishing_connection()
        offer = await p.bot.offer(pc)
        event = await p.session.message(
            p.publisher,
            {"request": "publish", "bitrate": 0},
            {"type": "offer", "sdp": offer, "trickle": False},
        )
        await p.bot.accept_answer(pc, event["jsep"]["sdp"])

    async def _subscribe(self, p: _Participant) -> None:
        others = [o for o in self.participants if o is not p]
        p.subscriber = await p.session.attach()
        event = await p.session.message(
            p.subscriber,
            {
                "request": "join",
                "ptype": "subscriber",
                "room": self.room,
                "streams": [{"feed": o.feed} for o in others],
            },
        )
        by_feed = {o.feed: o.bot.name for o in others}
        sources = {
            str(s["mid"]): by_feed.get(s.get("feed_id", 0), "?")
            for s in event["plugindata"]["data"].get("streams", [])
        }
        pc = p.bot.subscribing_connection(sources)
        answer = await p.bot.answer(pc, event["jsep"]["sdp"])
        await p.session.message(
            p.subscriber, {"request": "start"}, {"type": "answer", "sdp": answer, "trickle": False}
        )

    async def teardown(self) -> None:
        try:
            for p in self.participants:
                await p.session.destroy()
            if self.admin is not None:
                with contextlib.suppress(Exception):
                    await self.admin.request(
                        self.admin_handle, {"request": "destroy", "room": self.room}
                    )
                await self.admin.destroy()
        finally:
            if self.http is not None:
                await self.http.close()
