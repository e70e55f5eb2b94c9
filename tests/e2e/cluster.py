"""Three ``gortc serve`` instances on one PostgreSQL, one Redis and one
object store, behind Debian's nginx running the shipped several-instances
site (deploy/nginx/gortc-instances.conf) grown to three instances, as
docs/deploy.md ("Several machines") lays them out. All on loopback.

Shared by every instance: the database, Redis, the auth secret and the
object store (a real SeaweedFS S3 server, tests/object_store.py). Per
instance: its data directory (temporary files, HLS output), its port, its
RTMP port and its server.instance_url (its /iN/ prefix on nginx's name,
which a call's ``call_elsewhere`` ws_url is built from).
"""

from __future__ import annotations

import asyncio
import re
import secrets
import signal
import ssl
import subprocess
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from tests.conftest import TEST_PASSWORD
from tests.e2e.server_process import ServerProcess, start_server
from tests.e2e.test_behind_nginx import make_certificate, require_nginx
from tests.e2e.test_instances_behind_nginx import nginx_config, run_nginx
from tests.object_store import ACCESS_KEY, REGION, SECRET_KEY, ObjectStore
from tests.postgres_server import PostgresServer
from tests.redis_server import RedisServer, free_port

SITE = Path(__file__).resolve().parents[2] / "deploy" / "nginx" / "gortc-instances.conf"
# The shipped site's first instance; its upstream line and its /i1/ location
# are the pattern that every further instance repeats.
_UPSTREAM_LINE = re.compile(r"^([ \t]*)server 127\.0\.0\.1:8081 (.*);\n", re.MULTILINE)
_OTHER_UPSTREAMS = re.compile(r"^[ \t]*server 127\.0\.0\.1:808[2-9] .*;\n", re.MULTILINE)
_LOCATION = re.compile(r"^([ \t]*)location /i1/ \{\n(.*?)^\1\}\n", re.MULTILINE | re.DOTALL)
_OTHER_LOCATIONS = re.compile(
    r"^([ \t]*)location /i[2-9]/ \{\n.*?^\1\}\n", re.MULTILINE | re.DOTALL
)


def site_for_instances(prefix: Path, listen_port: int, ports: list[int]) -> str:
    """The shipped site with one upstream server line and one /iN/ location
    per instance (the shipped file shows two), this test's certificate and
    listening address."""
    site = SITE.read_text()
    site = _OTHER_UPSTREAMS.sub("", site)
    site = _OTHER_LOCATIONS.sub("", site)
    upstream = _UPSTREAM_LINE.search(site)
    location = _LOCATION.search(site)
    assert upstream and location, "the shipped site's pattern changed; update this test"
    servers = "".join(
        f"{upstream.group(1)}server 127.0.0.1:{port} {upstream.group(2)};\n" for port in ports
    )
    locations = "".join(
        location.group(0)
        .replace("location /i1/", f"location /i{number}/")
        .replace("127.0.0.1:8081", f"127.0.0.1:{port}")
        for number, port in enumerate(ports, start=1)
    )
    site = site[: upstream.start()] + servers + site[upstream.end() :]
    location = _LOCATION.search(site)
    assert location is not None
    site = site[: location.start()] + locations + site[location.end() :]
    site = site.replace(
        "/etc/letsencrypt/live/chat.example.org/fullchain.pem", f"{prefix}/cert.pem"
    )
    site = site.replace("/etc/letsencrypt/live/chat.example.org/privkey.pem", f"{prefix}/key.pem")
    site = site.replace("listen 443 ssl http2;", f"listen 127.0.0.1:{listen_port} ssl http2;")
    return site.replace("listen [::]:443 ssl http2;", "")


@dataclass
class Instance:
    number: int
    port: int
    rtmp_port: int
    data_dir: Path
    env: dict[str, str]
    via_nginx: str  # https://<nginx>/iN: this instance, through the load balancer
    process: ServerProcess | None = None

    @property
    def direct(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        self.process = await start_server(self.data_dir, port=self.port, **self.env)

    def kill(self) -> None:
        """SIGKILL: no goodbye to its sockets, nothing flushed."""
        assert self.process is not None
        self.process.process.send_signal(signal.SIGKILL)

    async def stop(self) -> None:
        if self.process is not None:
            await self.process.stop()


@dataclass
class Cluster:
    public: str  # the public name: nginx, which picks an instance
    tls: ssl.SSLContext
    instances: list[Instance]
    postgres_url: str
    http: aiohttp.ClientSession = field(init=False)

    def __post_init__(self) -> None:
        # One client for every check: nginx's self-signed certificate
        # trusted, no cookies (every call carries its Bearer token).
        self.http = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(ssl=self.tls, limit=0),
            cookie_jar=aiohttp.DummyCookieJar(),
        )

    def bases(self) -> dict[str, str]:
        """Every way in: nginx's shared name, each instance through nginx,
        each instance directly."""
        found = {"nginx": self.public}
        for instance in self.instances:
            found[f"nginx/i{instance.number}"] = instance.via_nginx
            found[f"i{instance.number}"] = instance.direct
        return found

    async def register(self, base: str, username: str) -> dict[str, Any]:
        account = {"username": username, "email": f"{username}@example.org"}
        async with self.http.post(
            f"{base}/api/v1/auth/register", json=account | {"password": TEST_PASSWORD}
        ) as response:
            assert response.status == 201, (base, await response.text())
            return await response.json()  # type: ignore[no-any-return]

    async def login(self, base: str, username: str) -> dict[str, Any]:
        async with self.http.post(
            f"{base}/api/v1/auth/login", json={"login": username, "password": TEST_PASSWORD}
        ) as response:
            assert response.status == 200, (base, await response.text())
            return await response.json()  # type: ignore[no-any-return]

    async def person(self, base: str, username: str) -> dict[str, Any]:
        """A new user, signed in at ``base``: the login answer (with "user")."""
        await self.register(base, username)
        return await self.login(base, username)

    async def call(
        self, method: str, url: str, tokens: dict[str, Any], expect: int = 200, **kwargs: Any
    ) -> Any:
        headers = {"Authorization": f"Bearer {tokens['access_token']}"}
        async with self.http.request(method, url, headers=headers, **kwargs) as response:
            body = await response.read()
            assert response.status == expect, (method, url, response.status, body[:500])
            if response.content_type == "application/json":
                return await response.json()
            return body

    async def group_of(self, base: str, owner: dict[str, Any], *others: dict[str, Any]) -> str:
        group = await self.call(
            "POST", f"{base}/api/v1/groups", owner, expect=201, json={"name": "cluster"}
        )
        for other in others:
            await self.call(
                "POST",
                f"{base}/api/v1/groups/{group['id']}/members",
                owner,
                expect=201,
                json={"user_id": other["user"]["id"]},
            )
        return str(group["id"])

    async def websocket_counts(self) -> dict[int, float]:
        """Open WebSockets per running instance, from each one's /metrics
        (answered on loopback)."""
        counts: dict[int, float] = {}
        for instance in self.instances:
            if instance.process is None or instance.process.process.returncode is not None:
                continue
            async with self.http.get(f"{instance.direct}/metrics") as response:
                text = await response.text()
            found = re.search(r"^gortc_websocket_connections(?:\{[^}]*\})? (\S+)$", text, re.M)
            counts[instance.number] = float(found.group(1)) if found else 0.0
        return counts

    async def nginx_picks(self, tokens: dict[str, Any]) -> int:
        """The instance that nginx sends this machine's connections to:
        ip_hash keeps a client address on one instance, and every test
        client is 127.0.0.1."""
        seen: list[tuple[dict[int, float], dict[int, float]]] = []
        for _ in range(5):  # a socket of an earlier test may still be closing
            before = await self.websocket_counts()
            async with self.http.ws_connect(
                f"{self.public}/api/v1/ws",
                headers={"Authorization": f"Bearer {tokens['access_token']}"},
            ) as ws:
                await ws.receive_json(timeout=10)
                after = await self.websocket_counts()
            grown = [number for number, count in after.items() if count > before.get(number, 0)]
            if len(grown) == 1:
                return grown[0]
            seen.append((before, after))
            await asyncio.sleep(0.5)
        raise AssertionError(f"no instance took the socket alone: {seen}")


async def _stop_nginx(process: subprocess.Popen[bytes]) -> None:
    process.send_signal(signal.SIGQUIT)
    try:
        await asyncio.to_thread(process.wait, 10)
    except subprocess.TimeoutExpired:
        process.kill()
        await asyncio.to_thread(process.wait, 10)


@asynccontextmanager
async def running_cluster(
    folder: Path, postgres: PostgresServer, template: str, size: int = 3
) -> AsyncIterator[Cluster]:
    """PostgreSQL (a new database of the session's server), Redis, the
    object store, ``size`` instances and nginx; everything stopped after."""
    binary = require_nginx()
    async with AsyncExitStack() as stack:
        database_url = postgres.create_database(template=template)
        redis = RedisServer(folder / "redis")
        redis.start()
        stack.callback(redis.stop)
        listen_port = free_port()
        public = f"https://127.0.0.1:{listen_port}"
        prefix = folder / "nginx"
        prefix.mkdir()
        certificate = make_certificate(prefix)
        shared = {
            "GORTC_DATABASE_URL": database_url,
            "GORTC_REDIS_URL": redis.url,
            "GORTC_AUTH_SECRET": secrets.token_urlsafe(32),
            "GORTC_AUTH_BCRYPT_ROUNDS": "4",
            "GORTC_SERVER_PUBLIC_URL": public,
            "GORTC_SERVER_TRUSTED_PROXIES": "127.0.0.1",
            "GORTC_LIMITS_ENABLED": "false",
            "GORTC_RTC_HOST_ADDRESSES": "127.0.0.1",
            # The instances reach each other at their instance_url, through
            # nginx: they trust its test certificate as they would a real one.
            "SSL_CERT_FILE": str(certificate),
        }
        store = ObjectStore(folder / "seaweedfs")
        store.start()
        stack.callback(store.stop)
        shared |= {
            "GORTC_STORAGE_URL": store.url,
            "GORTC_STORAGE_ENDPOINT": store.endpoint,
            "GORTC_STORAGE_REGION": REGION,
            "GORTC_STORAGE_ACCESS_KEY": ACCESS_KEY,
            "GORTC_STORAGE_SECRET_KEY": SECRET_KEY,
        }
        instances: list[Instance] = []
        for number in range(1, size + 1):
            data_dir = folder / f"instance{number}"
            data_dir.mkdir()
            port, rtmp_port = free_port(), free_port()
            env = shared | {
                # Its prefix on the public name: reached through nginx by
                # browsers following a call elsewhere and by other instances.
                "GORTC_SERVER_INSTANCE_URL": f"{public}/i{number}",
                "GORTC_LIVE_RTMP_PORT": str(rtmp_port),
            }
            instances.append(
                Instance(number, port, rtmp_port, data_dir, env, f"{public}/i{number}")
            )
        for instance in instances:
            stack.push_async_callback(instance.stop)
        # The first one alone (it migrates the schema, if anything is left
        # to do), then the others together.
        await instances[0].start()
        await asyncio.gather(*(instance.start() for instance in instances[1:]))

        site = site_for_instances(prefix, listen_port, [i.port for i in instances])
        nginx = await asyncio.to_thread(
            run_nginx, binary, prefix, nginx_config(prefix, site), listen_port
        )
        stack.push_async_callback(_stop_nginx, nginx)
        tls = ssl.create_default_context(cafile=str(certificate))
        cluster = Cluster(public, tls, instances, database_url)
        stack.push_async_callback(cluster.http.close)
        yield cluster
