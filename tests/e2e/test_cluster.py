"""Three instances behind nginx on PostgreSQL, Redis and an S3 object
store (tests/e2e/cluster.py starts them once for the module): what a user
of a deployment spread over several machines would notice, checked through
nginx's shared name, through each instance's /iN/ prefix and through each
instance directly.

The last test kills an instance with SIGKILL (and starts it again), so it
stays last.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import io
import secrets
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, cast
from urllib.parse import urljoin

import aiohttp
import pytest
import pytest_asyncio
from aiohttp import FormData
from aiohttp.test_utils import TestClient

from tests.e2e.call_peer import CallPeer
from tests.e2e.cluster import Cluster, running_cluster
from tests.e2e.file_client import stored_blobs
from tests.e2e.test_live_streaming import eventually
from tests.e2e.ws_client import WsClient
from tests.media_tools import ffmpeg_publish
from tests.postgres_server import PostgresServer

pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def cluster(
    tmp_path_factory: pytest.TempPathFactory,
    postgres_server: PostgresServer,
    postgres_template: str,
) -> AsyncIterator[Cluster]:
    async with running_cluster(
        tmp_path_factory.mktemp("cluster"), postgres_server, postgres_template
    ) as running:
        yield running


class Endpoint:
    """Where a test socket opens: WsClient and CallPeer ask their client for
    ``ws_connect("/api/v1/ws", ...)``; this one sends it to ``base``
    (nginx, an instance through nginx, or an instance directly)."""

    def __init__(self, cluster: Cluster, base: str) -> None:
        self.http = cluster.http
        self.base = base

    def ws_connect(self, path: str, **kwargs: Any) -> Any:
        return self.http.ws_connect(self.base + path, **kwargs)


def at(cluster: Cluster, base: str) -> TestClient:
    # Typed as the test client the socket helpers were written for: they
    # only call ws_connect.
    return cast(TestClient, Endpoint(cluster, base))


def unique(name: str) -> str:
    return f"{name}{secrets.token_hex(3)}"


async def test_sign_up_on_one_instance_sign_in_on_any(cluster: Cluster) -> None:
    first, second, third = cluster.instances
    name = unique("ann")
    await cluster.register(first.via_nginx, name)
    for base in cluster.bases().values():
        tokens = await cluster.login(base, name)
        # A token issued by one instance is good on every other one.
        for other in (cluster.public, second.direct, third.via_nginx):
            me = await cluster.call("GET", f"{other}/api/v1/users/me", tokens)
            assert me["username"] == name, (base, other)

    # A refresh token from one instance is renewed by another; presented
    # again on a third (a sign of theft), it ends the whole sign-in.
    first_pair = await cluster.login(first.direct, name)
    renewed = await cluster.call(
        "POST", f"{second.direct}/api/v1/auth/refresh", first_pair,
        json={"refresh_token": first_pair["refresh_token"]},
    )  # fmt: skip
    await cluster.call("GET", f"{third.via_nginx}/api/v1/users/me", renewed)
    await cluster.call(
        "POST", f"{third.direct}/api/v1/auth/refresh", first_pair, expect=401,
        json={"refresh_token": first_pair["refresh_token"]},
    )  # fmt: skip
    await cluster.call("GET", f"{first.direct}/api/v1/users/me", renewed, expect=401)

    # Signing out on one instance ends that sign-in on all of them at once.
    tokens = await cluster.login(third.direct, name)
    await cluster.call("POST", f"{second.via_nginx}/api/v1/auth/logout", tokens, expect=204)
    for base in cluster.bases().values():
        await cluster.call("GET", f"{base}/api/v1/users/me", tokens, expect=401)

    # A name taken through one instance is taken on all of them.
    async with cluster.http.post(
        f"{third.direct}/api/v1/auth/register",
        json={"username": name, "email": f"other-{name}@example.org", "password": "x" * 20},
    ) as taken:
        assert taken.status == 409, await taken.text()


async def test_a_message_reaches_members_on_every_instance_in_order(cluster: Cluster) -> None:
    first, second, third = cluster.instances
    names = [unique(n) for n in ("ann", "ben", "cat", "dan")]
    ann, ben, cat, dan = [await cluster.person(cluster.public, name) for name in names]
    group_id = await cluster.group_of(first.direct, ann, ben, cat, dan)

    sender = await WsClient.open(at(cluster, first.via_nginx), ann)
    receivers = [
        await WsClient.open(at(cluster, second.via_nginx), ben),
        await WsClient.open(at(cluster, third.direct), cat),
        await WsClient.open(at(cluster, cluster.public), dan),  # wherever nginx puts it
    ]
    try:
        count = 40
        for index in range(count):  # pipelined, as a fast typist's client does
            await sender.send(
                type="message.send", group_id=group_id, body=f"m{index}", client_id=f"c{index}"
            )
        acks = await sender.collect("message.ack", count, timeout=20)
        assert [ack["message"]["seq"] for ack in acks] == list(range(1, count + 1))
        for receiver in receivers:
            created = await receiver.collect("message.created", count, timeout=20)
            assert [f["message"]["body"] for f in created] == [f"m{i}" for i in range(count)]
            assert [f["message"]["seq"] for f in created] == list(range(1, count + 1))

        # History read through any instance is the same.
        for base in (second.direct, third.via_nginx):
            page = await cluster.call(
                "GET", f"{base}/api/v1/groups/{group_id}/messages?limit=100", dan
            )
            assert [m["seq"] for m in page["items"]] == list(range(count, 0, -1))
    finally:
        for ws in (sender, *receivers):
            await ws.close()


@dataclass
class Writers:
    """Three members of one group, each with a sending and a reading socket
    directly on an instance of their own."""

    group_id: str
    names: list[str]
    senders: list[WsClient]
    readers: list[WsClient]

    rounds: int = 0

    async def send_at_once(self, count: int) -> None:
        """Each sends ``count`` messages (pipelined), all three at once."""
        self.rounds += 1
        tag = self.rounds  # a new client_id each round: a repeated one is stored once

        async def send(ws: WsClient, name: str) -> None:
            for index in range(count):
                await ws.send(
                    type="message.send", group_id=self.group_id, body=f"{name} {index}",
                    client_id=f"{name}-{tag}-{index}",
                )  # fmt: skip

        await asyncio.gather(*(send(ws, n) for ws, n in zip(self.senders, self.names, strict=True)))

    async def close(self) -> None:
        for ws in (*self.senders, *self.readers):
            await ws.close()


@contextlib.asynccontextmanager
async def writers(cluster: Cluster) -> AsyncIterator[Writers]:
    names = [unique(n) for n in ("ann", "ben", "cat")]
    people = [await cluster.person(cluster.public, name) for name in names]
    group_id = await cluster.group_of(cluster.public, *people)
    places = [instance.direct for instance in cluster.instances]
    opened = Writers(
        group_id,
        names,
        [await WsClient.open(at(cluster, b), p) for b, p in zip(places, people, strict=True)],
        [await WsClient.open(at(cluster, b), p) for b, p in zip(places, people, strict=True)],
    )
    try:
        yield opened
    finally:
        await opened.close()


async def test_messages_sent_at_once_through_three_instances_are_numbered_without_gaps(
    cluster: Cluster,
) -> None:
    count = 30
    async with writers(cluster) as group:
        await group.send_at_once(count)
        for ws in group.senders:
            acks = await ws.collect("message.ack", count, timeout=20)
            # Each sender's messages keep the order it sent them in.
            seqs = [ack["message"]["seq"] for ack in acks]
            assert seqs == sorted(seqs)
        for reader in group.readers:
            created = await reader.collect("message.created", 3 * count, timeout=20)
            # Every member hears every message once: seqs 1..90, none missing.
            assert sorted(f["message"]["seq"] for f in created) == list(range(1, 3 * count + 1))


async def test_messages_sent_at_once_through_three_instances_are_heard_in_seq_order(
    cluster: Cluster,
) -> None:
    count = 30
    async with writers(cluster) as group:
        # Each instance first hears the group's messages from seq 1 on.
        await group.senders[0].send(
            type="message.send", group_id=group.group_id, body="hello", client_id="warm-up"
        )
        for reader in group.readers:
            assert (await reader.next("message.created"))["message"]["seq"] == 1
        for _ in range(3):  # a race: three rounds of it
            await group.send_at_once(count)
            for ws in group.senders:
                await ws.collect("message.ack", count, timeout=20)
            for reader in group.readers:
                created = await reader.collect("message.created", 3 * count, timeout=20)
                seqs = [f["message"]["seq"] for f in created]
                assert seqs == sorted(seqs)


def _upload_form(name: str, data: bytes) -> FormData:
    payload = FormData(quote_fields=False)
    payload.add_field("file", io.BytesIO(data), filename=name, content_type="text/plain")
    return payload


async def test_an_upload_is_downloaded_and_found_through_other_instances(
    cluster: Cluster,
) -> None:
    first, second, third = cluster.instances
    ann = await cluster.person(cluster.public, unique("ann"))
    word = f"zebracrossing{secrets.token_hex(4)}"
    # 2 MiB of text (search indexes its first MiB), none of it repeated.
    lines = [secrets.token_hex(32) for _ in range(2 * 1024 * 1024 // 65)]
    data = f"minutes of the {word} meeting\n{chr(10).join(lines)}\n".encode()
    stored = await cluster.call(
        "POST",
        f"{first.via_nginx}/api/v1/files",
        ann,
        expect=201,
        data=_upload_form("minutes.txt", data),
    )
    assert stored["sha256"] == hashlib.sha256(data).hexdigest()

    for base in (third.direct, third.via_nginx, cluster.public):
        body = await cluster.call("GET", f"{base}/api/v1/files/{stored['id']}/content", ann)
        assert hashlib.sha256(body).hexdigest() == stored["sha256"], base
        assert body == data

    # The bytes are in the object store, in no instance's data directory.
    for instance in cluster.instances:
        assert stored_blobs(instance.data_dir) == [], instance.number

    for base in (second.direct, second.via_nginx):
        found = await cluster.call("GET", f"{base}/api/v1/files/search", ann, params={"q": word})
        assert [item["file"]["id"] for item in found["items"]] == [stored["id"]], base

    # Someone else's search, through any instance, finds nothing of it.
    ben = await cluster.person(third.direct, unique("ben"))
    found = await cluster.call(
        "GET", f"{second.direct}/api/v1/files/search", ben, params={"q": word}
    )
    assert found["items"] == []


async def test_a_stream_published_to_one_instance_plays_through_nginx(cluster: Cluster) -> None:
    bob = await cluster.person(cluster.public, unique("bob"))
    # Publish to an instance other than the one nginx sends this machine to,
    # so that playing through nginx has to cross instances.
    picked = await cluster.nginx_picks(bob)
    ingest = next(i for i in cluster.instances if i.number != picked)
    key = await cluster.call("GET", f"{ingest.via_nginx}/api/v1/live/key", bob)
    # The streamer is told that instance's own ingest address, as OBS needs.
    assert key["rtmp_url"].startswith(f"rtmp://127.0.0.1:{ingest.rtmp_port}/live/")
    publisher = await ffmpeg_publish(key["rtmp_url"], seconds=20)
    try:
        viewer = await cluster.person(cluster.public, unique("vic"))
        hls_url = ""

        async def listed() -> bool:
            nonlocal hls_url
            rooms = await cluster.call("GET", f"{cluster.public}/api/v1/live", viewer)
            mine = [room for room in rooms["items"] if room["user_id"] == bob["user"]["id"]]
            hls_url = mine[0]["hls_url"] if mine else ""
            return bool(hls_url)

        await eventually(listed, "the stream listed through nginx")
        assert hls_url.startswith(cluster.public + "/"), hls_url
        # A plain player: no credentials but the URL's own token.
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=cluster.tls)) as player:
            segment = b""

            async def plays() -> bool:
                nonlocal segment
                async with player.get(hls_url) as playlist:
                    lines = (await playlist.text()).splitlines()
                    if playlist.status != 200:
                        return False
                names = [line for line in lines if line and not line.startswith("#")]
                if not names:
                    return False
                async with player.get(urljoin(hls_url, names[0])) as answer:
                    segment = await answer.read()
                    return answer.status == 200

            await eventually(plays, "a segment through nginx", seconds=12)
            assert segment[:1] == b"\x47" and len(segment) >= 188  # MPEG-TS
    finally:
        if publisher.returncode is None:
            publisher.terminate()
        await publisher.communicate()


async def join_call(
    cluster: Cluster,
    base: str,
    tokens: dict[str, Any],
    group_id: str,
    opened: list[CallPeer],
    luma: int,
) -> tuple[CallPeer, str | None]:
    """Joins the call from a socket at ``base``; when the call is hosted
    elsewhere, follows the error's ws_url as the API promises a client may.
    Returns the joined peer and the ws_url followed (None: none)."""
    peer = CallPeer(at(cluster, base), tokens["user"], tokens)
    opened.append(peer)
    await peer.connect()
    reply = await peer.join(group_id, luma=luma)
    if reply["type"] == "call.answer":
        return peer, None
    assert reply.get("code") == "call_elsewhere", reply
    ws_url: str = reply["ws_url"]
    await peer.close()
    moved = CallPeer(at(cluster, ws_url.removesuffix("/api/v1/ws")), tokens["user"], tokens)
    opened.append(moved)
    await moved.connect()
    reply = await moved.join(group_id, luma=luma)
    assert reply["type"] == "call.answer", reply
    return moved, ws_url


async def test_a_call_connects_members_whose_sockets_are_on_different_instances(
    cluster: Cluster,
) -> None:
    first, second, third = cluster.instances
    names = [unique(n) for n in ("ann", "ben", "cat")]
    people = [await cluster.person(cluster.public, name) for name in names]
    group_id = await cluster.group_of(cluster.public, *people)
    opened: list[CallPeer] = []
    try:
        # Ann starts it on the first instance, which then hosts it.
        ann, followed = await join_call(cluster, first.via_nginx, people[0], group_id, opened, 50)
        assert followed is None
        # Ben's socket is on the second, Cat's on the third: each is sent
        # to the host's own address (its prefix on nginx), and follows.
        ben, followed = await join_call(cluster, second.via_nginx, people[1], group_id, opened, 120)
        assert followed == f"wss://{first.via_nginx.removeprefix('https://')}/api/v1/ws"
        cat, followed = await join_call(cluster, third.direct, people[2], group_id, opened, 200)
        assert followed == f"wss://{first.via_nginx.removeprefix('https://')}/api/v1/ws"

        peers = [ann, ben, cat]
        for peer in peers:
            for other in peers:
                if other is not peer:
                    await peer.wait_until(
                        lambda p=peer, o=other: (
                            p.frames_from(o.user_id, "video") >= 5
                            and p.frames_from(o.user_id, "audio") >= 5
                        ),
                        timeout=20,
                    )
        # Everyone's socket, wherever it sits, hears who is in the call.
        for peer in peers:
            await peer.wait_until(lambda p=peer: len(p.participants() or []) == 3, timeout=10)
    finally:
        for peer in opened:
            with contextlib.suppress(Exception):
                await peer.close()


async def _sync(ws: WsClient, group_id: str, after_seq: int) -> list[dict[str, Any]]:
    await ws.send(type="sync", group_id=group_id, after_seq=after_seq)
    found = []
    while (frame := await ws.next("message.created", "sync.done", timeout=10))[
        "type"
    ] != "sync.done":
        found.append(frame["message"])
    return found


async def test_killing_an_instance_loses_no_acknowledged_message(cluster: Cluster) -> None:
    names = [unique(n) for n in ("ann", "ben", "cat", "dan", "eve")]
    ann, ben, cat, dan, eve = [await cluster.person(cluster.public, name) for name in names]
    # The instance that dies is the one nginx sends this machine to: its
    # clients' reconnections through nginx must be moved to another.
    picked = await cluster.nginx_picks(ann)
    victim = cluster.instances[picked - 1]
    first, third = [i for i in cluster.instances if i is not victim]
    group_id = await cluster.group_of(cluster.public, ann, ben, cat, dan, eve)
    # Ben, Cat and Eve are on the instance that dies; Ann and Dan are not.
    sockets = {
        "ann": await WsClient.open(at(cluster, first.via_nginx), ann),
        "ben": await WsClient.open(at(cluster, victim.via_nginx), ben),
        "cat": await WsClient.open(at(cluster, victim.direct), cat),
        "dan": await WsClient.open(at(cluster, third.direct), dan),
        # Through the load balancer itself, which sends this machine there.
        "eve": await WsClient.open(at(cluster, cluster.public), eve),
    }
    tokens = {"ann": ann, "ben": ben, "cat": cat, "dan": dan, "eve": eve}
    on_victim = ("ben", "cat", "eve")
    acked: dict[str, dict[str, Any]] = {}  # client_id -> stored message
    sent: dict[str, str] = {}  # client_id -> body
    last_seen: dict[str, int] = dict.fromkeys(sockets, 0)

    async def send_and_collect(name: str, rounds: int) -> None:
        """Sends and reads acks until the socket dies or ``rounds`` are sent."""
        ws = sockets[name]
        for index in range(rounds):
            client_id = f"{name}-{index}"
            sent[client_id] = f"{name} says {index}"
            try:
                await ws.send(
                    type="message.send", group_id=group_id, body=sent[client_id],
                    client_id=client_id,
                )  # fmt: skip
                while True:
                    frame = await ws.next("message.ack", "message.created", timeout=10)
                    if frame["type"] == "message.created":
                        last_seen[name] = max(last_seen[name], frame["message"]["seq"])
                        continue
                    acked[frame["client_id"]] = frame["message"]
                    last_seen[name] = max(last_seen[name], frame["message"]["seq"])
                    break
            except (AssertionError, ConnectionError, RuntimeError, TimeoutError):
                return  # the instance is gone; the client will reconnect

    senders = [asyncio.create_task(send_and_collect(name, 150)) for name in sockets]
    # Kill while all four are sending (some acks in, more under way).
    deadline = time.monotonic() + 15
    while len(acked) < 60 and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    assert len(acked) >= 60, "the senders did not get going"
    victim.kill()
    killed_at = time.monotonic()
    await asyncio.gather(*senders)
    for name in on_victim:
        await sockets[name].close()

    try:
        # The survivors sent every round; the victim's clients stopped.
        assert all(f"{name}-149" in acked for name in ("ann", "dan"))
        assert not any(f"{name}-149" in acked for name in on_victim), "killed too late"
        # Ben, Cat and Eve reconnect through nginx's shared name (nginx moves them
        # off the dead instance), catch up since the last seq they saw, and
        # send again what was never acknowledged, under the same client_id.
        for name in on_victim:
            sockets[name] = await WsClient.open(at(cluster, cluster.public), tokens[name])
            caught_up = await _sync(sockets[name], group_id, last_seen[name])
            seqs = [m["seq"] for m in caught_up]
            assert seqs == list(range(last_seen[name] + 1, last_seen[name] + 1 + len(seqs)))
            for client_id, body in sent.items():
                if client_id.startswith(name) and client_id not in acked:
                    await sockets[name].send(
                        type="message.send", group_id=group_id, body=body, client_id=client_id
                    )
                    ack = await sockets[name].next("message.ack", timeout=10)
                    assert ack["client_id"] == client_id
                    acked[client_id] = ack["message"]
        reconnected_in = time.monotonic() - killed_at

        # Every acknowledged message is stored, once, and seqs have no gap.
        messages: list[dict[str, Any]] = []
        url = f"{cluster.public}/api/v1/groups/{group_id}/messages?limit=100"
        while url:
            page = await cluster.call("GET", url, dan)
            messages.extend(page["items"])
            cursor = page.get("next_cursor")
            url = (
                f"{cluster.public}/api/v1/groups/{group_id}/messages?limit=100&before={cursor}"
                if cursor
                else ""
            )
        by_id = {m["id"]: m for m in messages}
        assert sorted(m["seq"] for m in messages) == list(range(1, len(messages) + 1))
        for client_id, message in acked.items():
            assert message["id"] in by_id, client_id
            assert by_id[message["id"]]["body"] == sent[client_id]
        bodies = [m["body"] for m in messages]
        assert sorted(bodies) == sorted(sent.values()), "each message stored exactly once"
        assert reconnected_in < 30, reconnected_in
    finally:
        for ws in sockets.values():
            with contextlib.suppress(Exception):
                await ws.close()
        # The instance comes back on its own address, for whatever runs after.
        assert victim.process is not None
        await victim.process.process.wait()
        await victim.start()
