"""Two gortc instances behind nginx, as deploy/nginx/gortc-instances.conf
and docs/deploy.md ("Several instances") set them up: one data directory,
one Redis, each instance's server.public_url a path prefix (/i1, /i2) on the
one public name. Its server.instance_url is its own address here (the
relay of live streams between instances would refuse the test's
self-signed certificate on the public name).

Real processes: Debian's nginx running the shipped site (only its
certificate, listening address and upstream ports swapped for the test's),
two ``python -m gortc serve``, redis-server and ffmpeg. What a user would
notice if the layout were wrong: the cookie from signing in on the shared
name works under both prefixes, a WebSocket opens through /i1/, and a
stream that the second instance ingests plays through nginx without
credentials, whichever instance lists it and serves it.
"""

from __future__ import annotations

import asyncio
import getpass
import signal
import socket
import ssl
import subprocess
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import aiohttp
import pytest_asyncio

from tests.conftest import TEST_PASSWORD
from tests.e2e.server_process import ServerProcess, start_server
from tests.e2e.test_behind_nginx import make_certificate, require_nginx
from tests.e2e.test_live_streaming import eventually
from tests.media_tools import ffmpeg_publish
from tests.redis_server import free_port

SITE = Path(__file__).resolve().parents[2] / "deploy" / "nginx" / "gortc-instances.conf"


@dataclass
class Deployment:
    url: str  # the public name, through nginx
    tls: ssl.SSLContext
    instances: list[ServerProcess]

    def browser(self) -> aiohttp.ClientSession:
        return aiohttp.ClientSession(
            base_url=self.url,
            connector=aiohttp.TCPConnector(ssl=self.tls),
            cookie_jar=aiohttp.CookieJar(unsafe=True),  # cookies for an IP address host
            headers={"Origin": self.url},
        )


def site_for_test(prefix: Path, port: int, upstreams: list[int]) -> Path:
    site = SITE.read_text()
    site = site.replace(
        "/etc/letsencrypt/live/chat.example.org/fullchain.pem", f"{prefix}/cert.pem"
    )
    site = site.replace("/etc/letsencrypt/live/chat.example.org/privkey.pem", f"{prefix}/key.pem")
    site = site.replace("listen 443 ssl http2;", f"listen 127.0.0.1:{port} ssl http2;")
    site = site.replace("listen [::]:443 ssl http2;", "")
    for shipped, actual in zip((8081, 8082), upstreams, strict=True):
        site = site.replace(f"127.0.0.1:{shipped}", f"127.0.0.1:{actual}")
    return nginx_config(prefix, site)


def nginx_config(prefix: Path, site: str) -> Path:
    (prefix / "site.conf").write_text(site)
    conf = prefix / "nginx.conf"
    conf.write_text(
        f"""
        user {getpass.getuser()};
        worker_processes 1;
        pid {prefix}/nginx.pid;
        error_log {prefix}/error.log;
        events {{ worker_connections 512; }}
        http {{
            access_log {prefix}/access.log;
            client_body_temp_path {prefix}/body;
            proxy_temp_path {prefix}/proxy;
            fastcgi_temp_path {prefix}/fastcgi;
            uwsgi_temp_path {prefix}/uwsgi;
            scgi_temp_path {prefix}/scgi;
            include {prefix}/site.conf;
        }}
        """
    )
    return conf


def run_nginx(binary: str, prefix: Path, conf: Path, port: int) -> subprocess.Popen[bytes]:
    with (prefix / "stderr.log").open("wb") as stderr:  # the child keeps its own copy
        process = subprocess.Popen(
            [binary, "-p", str(prefix), "-c", str(conf), "-e", str(prefix / "error.log"),
             "-g", "daemon off;"],
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )  # fmt: skip
    deadline = time.monotonic() + 5
    while True:
        if process.poll() is not None:
            raise AssertionError(f"nginx did not start: {(prefix / 'stderr.log').read_text()}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return process
        except OSError:
            if time.monotonic() > deadline:
                process.kill()
                raise AssertionError("nginx did not listen within 5 s") from None
            time.sleep(0.05)


@pytest_asyncio.fixture
async def deployment(tmp_path: Path, redis_url: str) -> AsyncIterator[Deployment]:
    binary = require_nginx()
    port = free_port()
    public = f"https://127.0.0.1:{port}"
    instances: list[ServerProcess] = []
    nginx: subprocess.Popen[bytes] | None = None
    try:
        # One after the other: the first makes the shared secret.key.
        for number in (1, 2):
            own = free_port()
            instances.append(
                await start_server(
                    tmp_path / "data",
                    port=own,
                    GORTC_SERVER_INSTANCE_URL=f"http://127.0.0.1:{own}",
                    GORTC_REDIS_URL=redis_url,
                    GORTC_SERVER_PUBLIC_URL=f"{public}/i{number}",
                    GORTC_SERVER_TRUSTED_PROXIES="127.0.0.1",
                    GORTC_SERVER_EVENT_LOOP="asyncio",
                    GORTC_LIMITS_ENABLED="false",
                )
            )
        prefix = tmp_path / "nginx"
        prefix.mkdir()
        certificate = make_certificate(prefix)
        upstreams = [int(urlsplit(server.url).port or 0) for server in instances]
        nginx = run_nginx(binary, prefix, site_for_test(prefix, port, upstreams), port)
        tls = ssl.create_default_context(cafile=str(certificate))
        yield Deployment(public, tls, instances)
    finally:
        if nginx is not None:
            nginx.send_signal(signal.SIGQUIT)
            try:
                nginx.wait(timeout=10)
            except subprocess.TimeoutExpired:
                nginx.kill()
                nginx.wait(timeout=10)
        for server in instances:
            await server.stop()


async def test_two_instances_behind_one_name(deployment: Deployment) -> None:
    async with deployment.browser() as browser:
        account = {"username": "ann", "email": "ann@example.org", "password": TEST_PASSWORD}
        assert (await browser.post("/api/v1/auth/register", json=account)).status == 201
        sign_in = {"login": "ann", "password": TEST_PASSWORD}
        assert (await browser.post("/api/v1/auth/session", json=sign_in)).status == 200

        # The cookie set on the shared name is good under each instance's prefix.
        for prefix in ("/i1", "/i2"):
            me = await browser.get(f"{prefix}/api/v1/users/me")
            assert me.status == 200, (prefix, await me.text())
            assert (await me.json())["username"] == "ann"

        # A call moved to instance 1 would signal here (call_elsewhere's ws_url).
        async with browser.ws_connect("/i1/api/v1/ws") as ws:
            ready = await asyncio.wait_for(ws.receive_json(), 10)
            assert ready["type"] == "ready"

        # A stream ingested by instance 2 is watched through either.
        key = await (await browser.get("/i2/api/v1/live/key")).json()
        publisher = await ffmpeg_publish(key["rtmp_url"], seconds=15)
        try:
            hls_url = ""

            async def listed() -> bool:
                nonlocal hls_url
                rooms = (await (await browser.get("/api/v1/live")).json())["items"]
                hls_url = rooms[0]["hls_url"] if rooms else ""
                return bool(hls_url)

            await eventually(listed, "the stream listed")
            # On the prefix of whichever instance answered: any of them plays it.
            assert hls_url.startswith((f"{deployment.url}/i1/live/", f"{deployment.url}/i2/live/"))
            # A plain player: no cookie, no header, the URL exactly as listed.
            async with aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(ssl=deployment.tls)
            ) as player:
                segment = b""

                async def plays() -> bool:
                    nonlocal segment
                    playlist = await player.get(hls_url)
                    names = [
                        line for line in (await playlist.text()).splitlines()
                        if line.startswith("seg")
                    ]  # fmt: skip
                    if playlist.status != 200 or not names:
                        return False
                    answer = await player.get(urljoin(hls_url, names[0]))
                    segment = await answer.read()
                    return answer.status == 200

                await eventually(plays, "a segment through nginx")
                assert segment[:1] == b"\x47" and len(segment) >= 188  # MPEG-TS
        finally:
            if publisher.returncode is None:
                publisher.terminate()
            await publisher.communicate()
