"""gortc behind Debian's nginx ending TLS, as a self-hoster deploys it.

Real processes: nginx (its own master, a certificate made here, logs and
pid in the test's folder) in front of ``python -m gortc serve``, and
ffmpeg publishing over RTMP straight to gortc. Everything a browser does
goes through https and wss: sign-up, the cookie sign-in (Secure without
server.secure_cookies, because nginx says X-Forwarded-Proto: https), chat
both ways over two WebSockets kept open past nginx's read timeout by the
server's heartbeat, and a live stream's hls_url (https, through nginx)
played by a client that sends no credentials.

nginx connects to gortc from 127.0.0.2, the only trusted proxy; clients
come from other loopback addresses, so the test can tell the real client
(what the rate limits, the sessions list and the access log must see)
from the proxy.

The nginx lines a deployment needs are in NGINX_CONF; what each is for:
- ``proxy_http_version 1.1`` with ``Upgrade`` and ``Connection`` passed on
  (seed 004's notes): without them the WebSocket upgrade never reaches
  gortc (hop-by-hop headers are dropped by a proxy);
- ``proxy_read_timeout`` / ``proxy_send_timeout`` above
  ``hub.heartbeat_seconds``: nginx closes a connection idle for that long,
  and the heartbeat's pings are what keep a quiet socket busy;
- ``Host $http_host`` (the port included, when not 443) and
  ``X-Forwarded-Proto $scheme``: the same-origin check compares the
  browser's Origin with scheme://host of the request;
- ``X-Forwarded-For $proxy_add_x_forwarded_for``, believed only from the
  addresses in server.trusted_proxies;
- ``client_max_body_size`` at least files.max_file_bytes (nginx's 1 MB
  default refuses uploads with its own 413);
- ``proxy_buffering off`` for HLS: a playlist is short-lived.
"""

from __future__ import annotations

import asyncio
import datetime
import getpass
import hashlib
import io
import ipaddress
import os
import shutil
import signal
import socket
import ssl
import subprocess
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import aiohttp
import pytest
import pytest_asyncio
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.conftest import TEST_PASSWORD
from tests.e2e.server_process import ServerProcess, start_server
from tests.e2e.test_live_streaming import eventually
from tests.e2e.ws_client import WsClient
from tests.media_tools import ffmpeg_publish
from tests.redis_server import free_port

PROXY_ADDRESS = "127.0.0.2"  # nginx's side of its connections to gortc
HEARTBEAT_SECONDS = 1
PROXY_TIMEOUT_SECONDS = 3
LOGIN_LIMIT = 3

NGINX_CONF = """\
user {user};
worker_processes 1;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log info;
events {{ worker_connections 128; }}
http {{
    access_log {prefix}/access.log;
    client_body_temp_path {prefix}/body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;

    # "Connection: upgrade" only for an upgrade; otherwise the upstream
    # connection may be closed after the answer as usual.
    map $http_upgrade $connection_upgrade {{
        default upgrade;
        ''      close;
    }}

    server {{
        listen 127.0.0.1:{port} ssl;
        ssl_certificate {prefix}/cert.pem;
        ssl_certificate_key {prefix}/key.pem;
        client_max_body_size 26m;

        location / {{
            proxy_pass http://127.0.0.1:{upstream};
            proxy_bind {proxy_address};
            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection $connection_upgrade;
            proxy_set_header Host $http_host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_read_timeout {timeout}s;
            proxy_send_timeout {timeout}s;
            proxy_buffering off;
        }}
    }}
}}
"""


def require_nginx() -> str:
    found = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/sbin")
    if found is None:
        if os.environ.get("CI"):
            pytest.fail("CI needs nginx for the reverse-proxy test (apt-get install nginx)")
        pytest.skip("nginx is not installed (apt-get install nginx)")
    return found


def make_certificate(folder: Path) -> Path:
    """A self-signed certificate for 127.0.0.1; returns its path."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "gortc test")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    (folder / "key.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    cert_path = folder / "cert.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    return cert_path


@dataclass
class Nginx:
    process: subprocess.Popen[bytes]
    url: str
    prefix: Path
    certificate: Path

    def log(self, name: str) -> str:
        path = self.prefix / name
        return path.read_text(errors="replace") if path.exists() else ""


def start_nginx(binary: str, prefix: Path, upstream: int) -> Nginx:
    prefix.mkdir(parents=True)
    certificate = make_certificate(prefix)
    port = free_port()
    conf = prefix / "nginx.conf"
    conf.write_text(
        NGINX_CONF.format(
            user=getpass.getuser(),
            prefix=prefix,
            port=port,
            upstream=upstream,
            proxy_address=PROXY_ADDRESS,
            timeout=PROXY_TIMEOUT_SECONDS,
        )
    )
    # -e: nginx opens its error log before reading the configuration, by
    # default under /var/log; -g: in the foreground, our child to stop.
    with (prefix / "stderr.log").open("wb") as stderr:  # the child keeps its own copy
        process = subprocess.Popen(
            [binary, "-p", str(prefix), "-c", str(conf), "-e", str(prefix / "error.log"),
             "-g", "daemon off;"],
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )  # fmt: skip
    deadline = 100  # tries, 0.05 s apart
    while True:
        if process.poll() is not None:
            raise AssertionError(
                f"nginx did not start: {(prefix / 'stderr.log').read_text(errors='replace')}"
            )
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            deadline -= 1
            if deadline == 0:
                process.kill()
                raise AssertionError("nginx did not listen within 5 s") from None
            time.sleep(0.05)
    return Nginx(process, f"https://127.0.0.1:{port}", prefix, certificate)


def stop_nginx(nginx: Nginx) -> None:
    nginx.process.send_signal(signal.SIGQUIT)  # graceful: workers finish, master exits
    try:
        nginx.process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        nginx.process.kill()
        nginx.process.wait(timeout=10)


@dataclass
class Stack:
    nginx: Nginx
    server: ServerProcess
    tls: ssl.SSLContext

    def browser(self, address: str) -> aiohttp.ClientSession:
        """A client on its own loopback address, trusting the test
        certificate, keeping cookies set for an IP address host."""
        return aiohttp.ClientSession(
            base_url=self.nginx.url,
            connector=aiohttp.TCPConnector(ssl=self.tls, local_addr=(address, 0)),
            cookie_jar=aiohttp.CookieJar(unsafe=True),
            headers={"Origin": self.nginx.url},
        )


# One nginx and one gortc for the module (each start costs seconds); the
# tests keep apart by their clients' addresses and user names.
pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def stack(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stack]:
    binary = require_nginx()
    tmp_path = tmp_path_factory.mktemp("behind-nginx")
    server = await start_server(
        tmp_path / "data",
        GORTC_SERVER_TRUSTED_PROXIES=PROXY_ADDRESS,
        GORTC_AUTH_BCRYPT_ROUNDS="4",
        GORTC_HUB_HEARTBEAT_SECONDS=str(HEARTBEAT_SECONDS),
        GORTC_LIMITS_LOGIN_PER_IP_PER_MINUTE=str(LOGIN_LIMIT),
        GORTC_LIVE_SEGMENT_SECONDS="1",
        GORTC_SERVER_EVENT_LOOP="asyncio",
    )
    try:
        upstream = int(server.url.rsplit(":", 1)[1])
        nginx = start_nginx(binary, tmp_path / "nginx", upstream)
        try:
            tls = ssl.create_default_context(cafile=str(nginx.certificate))
            yield Stack(nginx, server, tls)
        finally:
            stop_nginx(nginx)
    finally:
        await server.stop()


async def sign_up_and_in(browser: aiohttp.ClientSession, name: str) -> dict[str, Any]:
    """The web client's way: register, then the cookie sign-in."""
    response = await browser.post(
        "/api/v1/auth/register",
        json={"username": name, "email": f"{name}@example.com", "password": TEST_PASSWORD},
    )
    assert response.status == 201, await response.text()
    user: dict[str, Any] = await response.json()
    response = await browser.post(
        "/api/v1/auth/session", json={"login": name, "password": TEST_PASSWORD}
    )
    assert response.status == 200, await response.text()
    cookie = response.headers["Set-Cookie"]
    # Secure although server.secure_cookies is off: nginx said https.
    assert cookie.startswith("gortc_session="), cookie
    for flag in ("Secure", "HttpOnly", "SameSite=Lax"):
        assert flag in cookie, cookie
    return user


async def open_socket(browser: aiohttp.ClientSession) -> WsClient:
    """wss:// through nginx with the session cookie, as a browser opens it."""
    ws = await browser.ws_connect("/api/v1/ws")
    client = WsClient(ws)
    client.ready = await client.next("ready")
    return client


async def stay_quiet(client: WsClient, seconds: float) -> None:
    """Sends nothing for a while, reading as a browser does (which answers
    the server's pings); fails if the socket closes meanwhile."""
    try:
        async with asyncio.timeout(seconds):
            while True:
                await client.receive(seconds + 1)  # presence and the like
    except TimeoutError:
        return


async def test_a_browser_behind_nginx_with_tls(stack: Stack) -> None:
    async with stack.browser("127.0.0.3") as alice, stack.browser("127.0.0.4") as bob:
        alice_user = await sign_up_and_in(alice, "alice")
        bob_user = await sign_up_and_in(bob, "bob")
        me = await (await alice.get("/api/v1/users/me")).json()
        assert me["id"] == alice_user["id"]

        # The sessions list and the access log name each browser's address,
        # not nginx's.
        sessions = await (await alice.get("/api/v1/sessions")).json()
        assert [s["ip"] for s in sessions["items"]] == ["127.0.0.3"]

        async def access_logged() -> bool:
            # The line reaches us through the server's stderr, a moment later.
            return any(
                "/api/v1/sessions" in line and line.rstrip().endswith("client=127.0.0.3")
                for line in stack.server.log
            )

        await eventually(access_logged, "the access log naming 127.0.0.3", 5)

        # An upload past nginx's default 1 MB body limit, and back.
        content = os.urandom(3 * 1024 * 1024)
        form = aiohttp.FormData()
        form.add_field(
            "file", io.BytesIO(content), filename="big.bin", content_type="application/octet-stream"
        )
        uploaded = await alice.post("/api/v1/files", data=form)
        assert uploaded.status == 201, await uploaded.text()
        file_id = (await uploaded.json())["id"]
        downloaded = await alice.get(f"/api/v1/files/{file_id}/content")
        assert downloaded.status == 200
        back = await downloaded.read()
        assert hashlib.sha256(back).digest() == hashlib.sha256(content).digest(), len(back)

        created = await alice.post("/api/v1/groups", json={"name": "proxied"})
        assert created.status == 201, await created.text()
        group_id = (await created.json())["id"]
        added = await alice.post(
            f"/api/v1/groups/{group_id}/members", json={"user_id": bob_user["id"]}
        )
        assert added.status == 201, await added.text()

        alice_ws = await open_socket(alice)
        bob_ws = await open_socket(bob)
        # Quiet for longer than nginx's read timeout: the heartbeat keeps
        # both sockets open.
        await asyncio.gather(
            stay_quiet(alice_ws, PROXY_TIMEOUT_SECONDS + 1),
            stay_quiet(bob_ws, PROXY_TIMEOUT_SECONDS + 1),
        )
        await alice_ws.send(type="message.send", group_id=group_id, body="hi bob", client_id="a1")
        assert (await alice_ws.next("message.ack"))["client_id"] == "a1"
        assert (await bob_ws.next("message.created"))["message"]["body"] == "hi bob"
        await bob_ws.send(type="message.send", group_id=group_id, body="hi alice", client_id="b1")
        received = await alice_ws.next("message.created", "message.created")
        if received["message"]["body"] == "hi bob":  # her own, echoed first
            received = await alice_ws.next("message.created")
        assert received["message"]["body"] == "hi alice"
        assert received["message"]["sender_id"] == bob_user["id"]
        await alice_ws.ws.close()
        await bob_ws.ws.close()

    # Both sockets were nginx's: it logs an upgrade when it ends.
    async def upgrades_logged() -> bool:
        return stack.nginx.log("access.log").count('"GET /api/v1/ws HTTP/1.1" 101') == 2

    await eventually(upgrades_logged, "two WebSocket upgrades in nginx's access log", 5)


async def test_live_hls_plays_through_nginx(stack: Stack) -> None:
    async with stack.browser("127.0.0.3") as browser:
        await sign_up_and_in(browser, "streamer")
        key = await (await browser.get("/api/v1/live/key")).json()
        # RTMP goes straight to gortc (nginx here proxies HTTP only).
        publisher = await ffmpeg_publish(key["rtmp_url"], seconds=15)
        try:

            async def rooms() -> list[dict[str, Any]]:
                listed = await (await browser.get("/api/v1/live")).json()
                return listed["items"]  # type: ignore[no-any-return]

            async def is_live() -> bool:
                return len(await rooms()) == 1

            await eventually(is_live, "the stream listed")
            [room] = await rooms()
            hls_url = room["hls_url"]
            # Built from the request: https and nginx's address, as the
            # browser reached it.
            assert hls_url.startswith(f"{stack.nginx.url}/live/"), hls_url

            # A player with no cookie and no header of ours.
            async with aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(ssl=stack.tls),
                cookie_jar=aiohttp.DummyCookieJar(),
            ) as player:

                async def playlist() -> str:
                    async with player.get(hls_url) as response:
                        assert response.status == 200, await response.text()
                        return await response.text()

                async def has_segment() -> bool:
                    return "#EXTINF" in await playlist()

                await eventually(has_segment, "a first segment through nginx")
                text = await playlist()
                uris = [line for line in text.splitlines() if line and not line.startswith("#")]
                async with player.get(urljoin(hls_url, uris[0])) as response:
                    assert response.status == 200
                    segment = await response.read()
                assert len(segment) > 1000 and segment[0] == 0x47  # MPEG-TS sync byte
        finally:
            if publisher.returncode is None:
                publisher.kill()
            await publisher.wait()


async def test_rate_limits_see_the_client_behind_nginx(stack: Stack) -> None:
    async def failed_logins(address: str, count: int, **headers: str) -> list[str]:
        """The error code of each answer: gortc's own, not an nginx page."""
        async with stack.browser(address) as browser:
            codes = []
            for _ in range(count):
                response = await browser.post(
                    "/api/v1/auth/login",
                    json={"login": "nobody", "password": "wrong password"},
                    headers=headers,
                )
                code = (await response.json())["error"]["code"]
                codes.append(f"{response.status} {code}")
            return codes

    refused = "429 rate_limited"
    wrong = "401 invalid_credentials"
    assert await failed_logins("127.0.0.5", LOGIN_LIMIT + 1) == [wrong] * LOGIN_LIMIT + [refused]
    # Another client through the same nginx has its own bucket...
    assert await failed_logins("127.0.0.6", 1) == [wrong]
    # ...and the first cannot escape its own by forging the header: nginx
    # appends the address it saw, and that is the one gortc believes.
    assert await failed_logins("127.0.0.5", 1, **{"X-Forwarded-For": "203.0.113.7"}) == [refused]
