"""The two servers the publishers stream to, each as its own process tree,
started afresh for every measurement and stopped whatever happens.

- gortc: ``gortc serve`` (``bench/gortc_process.py``) with its RTMP ingest
  on a free port, rate limits off, a throwaway data directory. One account
  per publisher (register, log in, ``GET /api/v1/live/key``); the playlist of
  a stream is ``/live/<room>/index.m3u8`` where the room is the streamer's
  user id (checked against ``GET /api/v1/live`` and ``live.started``).
- nginx with the RTMP module (Debian ``libnginx-mod-rtmp``): a throwaway
  ``nginx.conf``, one worker process (one event loop, like gortc's one
  Python process; nginx-rtmp needs a single worker for ``live`` anyway
  unless ``rtmp_auto_push``), ``hls on`` with the same fragment length and
  playlist length as gortc, and an ``http`` server on 127.0.0.1 serving the
  ``hls_path``.

Both write their playlists and segments to disk, and serve them over HTTP
from there; :class:`Stream` says where each stream's playlist is on disk
and at which URL.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import socket
import sys
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from gortc_process import clean_environment, serve_command

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "live-bench-password"
READY = "ready on "
RTMP_MODULE = Path("/usr/lib/nginx/modules/ngx_rtmp_module.so")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")


@dataclass(frozen=True)
class Stream:
    index: int
    rtmp_url: str  # where its publisher sends
    playlist_path: Path  # the playlist on the server's disk
    playlist_url: str  # the same over HTTP
    headers: dict[str, str]  # what a viewer sends with it
    room_id: str = ""  # gortc's live room


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def process_cpu(pid: int) -> float:
    """CPU seconds (user + system, every thread) of one process; 0 if gone."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def process_rss(pid: int) -> int:
    """Resident bytes of one process; 0 if gone."""
    try:
        with open(f"/proc/{pid}/statm") as statm:
            return int(statm.read().split()[1]) * PAGE_SIZE
    except (FileNotFoundError, ProcessLookupError):
        return 0


def children_of(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                parent = int(stat.read().rsplit(")", 1)[1].split()[1])
        except (FileNotFoundError, ProcessLookupError, ValueError, IndexError):
            continue
        if parent == pid:
            found.append(int(entry))
    return found


class Server:
    """What both servers have in common: one process tree, its log, its CPU."""

    name = ""
    label = ""

    def __init__(self, folder: Path, pin: list[str], segment: float, playlist: int) -> None:
        self.folder = folder
        self.pin = pin
        self.segment = segment
        self.playlist = playlist
        self.process: asyncio.subprocess.Process | None = None
        self.log: deque[str] = deque(maxlen=200)
        self._drain: asyncio.Task[None] | None = None
        self._known: set[int] = set()

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.returncode is None

    def pids(self) -> list[int]:
        """The process and its children (nginx's workers)."""
        if self.process is None:
            return []
        pids = [self.process.pid, *children_of(self.process.pid)]
        self._known.update(pids)
        return pids

    def cpu_seconds(self) -> float:
        return sum(process_cpu(pid) for pid in self.pids())

    def rss_bytes(self) -> int:
        return sum(process_rss(pid) for pid in self.pids())

    def log_tail(self, lines: int = 15) -> str:
        return "\n".join(list(self.log)[-lines:])

    async def _spawn(self, command: list[str], env: dict[str, str] | None = None) -> None:
        self.process = await asyncio.create_subprocess_exec(
            *self.pin,
            *command,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
            env=env,
            cwd=self.folder,
        )

    async def _read_log(self, until: str | None = None) -> str:
        """Reads the log up to a line containing ``until`` (returned), then
        keeps draining it in the background so the pipe never fills up."""
        assert self.process is not None
        assert self.process.stderr is not None
        stderr = self.process.stderr
        found = ""
        if until is not None:
            async with asyncio.timeout(60):
                while True:
                    line = (await stderr.readline()).decode(errors="replace")
                    if not line:
                        raise SystemExit(f"{self.label} did not start:\n{self.log_tail()}")
                    self.log.append(line.rstrip())
                    if until in line:
                        found = line
                        break

        async def drain() -> None:
            while line := await stderr.readline():
                self.log.append(line.decode(errors="replace").rstrip())

        self._drain = asyncio.get_running_loop().create_task(drain())
        return found

    async def stop(self) -> None:
        """SIGTERM, then SIGKILL after 15 s; the children too (by pid)."""
        if self.process is not None:
            self.pids()
            if self.process.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    self.process.send_signal(signal.SIGTERM)
                try:
                    async with asyncio.timeout(15):
                        await self.process.wait()
                except TimeoutError:
                    with contextlib.suppress(ProcessLookupError):
                        self.process.kill()
                    await self.process.wait()
            for pid in self._known - {self.process.pid}:
                kill_if_ours(pid, "nginx")
        if self._drain is not None:
            self._drain.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._drain

    async def start(self) -> None:
        raise NotImplementedError

    async def streams(self, http: aiohttp.ClientSession, count: int) -> list[Stream]:
        raise NotImplementedError


def kill_if_ours(pid: int, name: str) -> None:
    """SIGKILL a process left behind (an nginx worker whose master died), if
    that pid still is one of ours."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
            if not cmdline.read().startswith(name.encode()):
                return
        os.kill(pid, signal.SIGKILL)
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        pass


class Gortc(Server):
    name = "gortc"
    label = "gortc (RTMP → HLS in-process)"

    def __init__(self, folder: Path, pin: list[str], segment: float, playlist: int) -> None:
        super().__init__(folder, pin, segment, playlist)
        self.url = ""
        self.rtmp_port = 0
        self.data = folder / "data"
        self.viewer_token = ""

    async def start(self) -> None:
        self.rtmp_port = free_port()
        settings = {
            "GORTC_LIMITS_ENABLED": "false",
            "GORTC_AUTH_BCRYPT_ROUNDS": "4",
            "GORTC_AUTH_ACCESS_TOKEN_TTL": "3600",
            "GORTC_LIVE_ENABLED": "true",
            "GORTC_LIVE_RTMP_HOST": "127.0.0.1",
            "GORTC_LIVE_RTMP_PORT": str(self.rtmp_port),
            "GORTC_LIVE_SEGMENT_SECONDS": f"{self.segment:g}",
            "GORTC_LIVE_PLAYLIST_SEGMENTS": str(self.playlist),
            "GORTC_LIVE_MAX_PUBLISHERS": "1000",
            "PYTHONPATH": str(ROOT),
        }
        await self._spawn(serve_command(str(self.data)), clean_environment(**settings))
        line = await self._read_log(READY)
        self.url = line.split(READY, 1)[1].split()[0].rstrip("/")

    async def _post(
        self, http: aiohttp.ClientSession, path: str, body: dict[str, Any]
    ) -> dict[str, Any]:
        async with http.post(self.url + path, json=body) as response:
            answer: dict[str, Any] = await response.json(content_type=None)
            if response.status not in (200, 201):
                raise SystemExit(f"POST {path} → {response.status}: {answer}")
            return answer

    async def _account(self, http: aiohttp.ClientSession, index: int) -> tuple[str, str, str]:
        """(user id, access token, RTMP URL with the key) of a new account."""
        name = f"streamer{index:03d}"
        user = await self._post(
            http,
            "/api/v1/auth/register",
            {"username": name, "email": f"{name}@bench.example", "password": PASSWORD},
        )
        login = await self._post(http, "/api/v1/auth/login", {"login": name, "password": PASSWORD})
        token = login["access_token"]
        headers = {"Authorization": f"Bearer {token}"}
        async with http.get(self.url + "/api/v1/live/key", headers=headers) as response:
            key = await response.json()
            if response.status != 200:
                raise SystemExit(f"GET /api/v1/live/key → {response.status}: {key}")
        return user["id"], token, key["rtmp_url"]

    async def streams(self, http: aiohttp.ClientSession, count: int) -> list[Stream]:
        accounts = []
        for first in range(0, count, 10):  # ten registrations at a time
            accounts += await asyncio.gather(
                *(self._account(http, i) for i in range(first, min(count, first + 10)))
            )
        # One viewer (the first account) watches every stream.
        self.viewer_token = accounts[0][1]
        viewer = {"Authorization": f"Bearer {self.viewer_token}"}
        streams = []
        for index, (user_id, _, rtmp_url) in enumerate(accounts):
            expected = f"rtmp://127.0.0.1:{self.rtmp_port}/live/"
            if not rtmp_url.startswith(expected):
                raise SystemExit(f"unexpected ingest URL {rtmp_url} (wanted {expected}…)")
            streams.append(
                Stream(
                    index=index,
                    rtmp_url=rtmp_url,
                    playlist_path=self.data / "live" / user_id / "index.m3u8",
                    playlist_url=f"{self.url}/live/{user_id}/index.m3u8",
                    headers=viewer,
                    room_id=user_id,
                )
            )
        return streams


class NginxRtmp(Server):
    name = "nginx"
    label = "nginx-rtmp (1 worker)"

    def __init__(self, folder: Path, pin: list[str], segment: float, playlist: int) -> None:
        super().__init__(folder, pin, segment, playlist)
        self.rtmp_port = 0
        self.http_port = 0
        self.hls = folder / "hls"

    def config(self) -> str:
        user = "user root;\n" if os.geteuid() == 0 else ""
        temp = self.folder / "temp"
        return f"""# Written by bench/live_bench.py for one measurement.
load_module {RTMP_MODULE};
{user}worker_processes 1;
pid {self.folder / "nginx.pid"};
error_log {self.folder / "error.log"} warn;
events {{ worker_connections 4096; }}
rtmp {{
    server {{
        listen 127.0.0.1:{self.rtmp_port};
        application live {{
            live on;
            hls on;
            hls_path {self.hls};
            hls_fragment {self.segment:g}s;
            hls_playlist_length {self.segment * self.playlist:g}s;
        }}
    }}
}}
http {{
    access_log off;
    sendfile on;
    client_body_temp_path {temp}/body;
    proxy_temp_path {temp}/proxy;
    fastcgi_temp_path {temp}/fastcgi;
    uwsgi_temp_path {temp}/uwsgi;
    scgi_temp_path {temp}/scgi;
    types {{
        application/vnd.apple.mpegurl m3u8;
        video/mp2t ts;
    }}
    server {{
        listen 127.0.0.1:{self.http_port};
        location /hls/ {{
            alias {self.hls}/;
            add_header Cache-Control no-cache;
        }}
    }}
}}
"""

    async def start(self) -> None:
        binary = nginx_binary()
        self.rtmp_port, self.http_port = free_port(), free_port()
        self.hls.mkdir(parents=True, exist_ok=True)
        (self.folder / "temp").mkdir(exist_ok=True)
        conf = self.folder / "nginx.conf"
        conf.write_text(self.config())
        error_log = self.folder / "error.log"
        await self._spawn(
            [binary, "-p", str(self.folder), "-c", str(conf), "-e", str(error_log), "-g",
             "daemon off;"]
        )  # fmt: skip
        await self._read_log()
        async with asyncio.timeout(15):
            while not (_listening(self.rtmp_port) and _listening(self.http_port)):
                if self.process is not None and self.process.returncode is not None:
                    text = error_log.read_text() if error_log.exists() else ""
                    raise SystemExit(f"nginx exited:\n{self.log_tail()}\n{text[-2000:]}")
                await asyncio.sleep(0.05)

    def log_tail(self, lines: int = 15) -> str:
        error_log = self.folder / "error.log"
        text = error_log.read_text(errors="replace") if error_log.exists() else ""
        return "\n".join([*list(self.log), *text.splitlines()][-lines:])

    async def streams(self, http: aiohttp.ClientSession, count: int) -> list[Stream]:
        return [
            Stream(
                index=index,
                rtmp_url=f"rtmp://127.0.0.1:{self.rtmp_port}/live/stream{index:03d}",
                playlist_path=self.hls / f"stream{index:03d}.m3u8",
                playlist_url=f"http://127.0.0.1:{self.http_port}/hls/stream{index:03d}.m3u8",
                headers={},
            )
            for index in range(count)
        ]


def _listening(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.2)
        return probe.connect_ex(("127.0.0.1", port)) == 0


def nginx_binary() -> str:
    found = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else "")
    if not found or not RTMP_MODULE.exists():
        raise SystemExit(
            "nginx with the RTMP module is needed: apt-get install -y nginx libnginx-mod-rtmp "
            "(or --servers gortc)"
        )
    return found


SERVERS: dict[str, type[Server]] = {"gortc": Gortc, "nginx": NginxRtmp}


@dataclass
class Events:
    """gortc's ``live.started`` announcements, as a WebSocket client gets them."""

    started: dict[str, float] = field(default_factory=dict)  # room id → when (monotonic)
    hls_urls: dict[str, str] = field(default_factory=dict)
    error: str = ""


async def listen_for_live(
    http: aiohttp.ClientSession, server: Gortc, events: Events, clock: Any
) -> None:
    """Records when each room's ``live.started`` arrives (until cancelled)."""
    try:
        async with http.ws_connect(
            f"{server.url}/api/v1/ws",
            params={"access_token": server.viewer_token},
            heartbeat=None,
            max_msg_size=4 << 20,
        ) as ws:
            async for message in ws:
                if message.type is not aiohttp.WSMsgType.TEXT:
                    break
                frame = message.json()
                if frame.get("type") == "live.started":
                    room = frame["room"]
                    events.started.setdefault(room["id"], clock())
                    events.hls_urls[room["id"]] = room["hls_url"]
    except (aiohttp.ClientError, ValueError) as error:
        events.error = repr(error)
        print(f"[live] gortc's WebSocket: {error!r}", file=sys.stderr)
