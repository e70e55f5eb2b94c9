"""The world the authorization matrix runs in, and how one cell is played.

One in-process server per test module, with five people who each stand for
a role (their names say which), and the objects the routes act on: a group
with a message, files, a direct conversation, a live room. Cells that
change or destroy something make their own fresh object first, so no cell
depends on another having run, or not.
"""

from __future__ import annotations

import contextlib
import io
import itertools
import json
import struct
import zlib
from dataclasses import dataclass, field
from typing import Any

from aiohttp import FormData, WSMsgType
from aiohttp.test_utils import TestClient
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription, VideoStreamTrack

from gortc.app import SESSION_COOKIE
from gortc.delivery.keys import LIVE
from gortc.delivery.live_webrtc import SDP
from gortc.media.aiortc_hooks import use_host_addresses
from tests.conftest import TEST_PASSWORD, login, register
from tests.e2e.ws_client import WsClient

# The columns of every table, in this order.
ROLES = ("anonymous", "stranger", "member", "admin", "owner", "server_admin")

# Who plays each role. The first account made is the server's administrator.
# "owner" owns the group and is the one the personal objects belong to (the
# file, the live room, the sign-ins, the invitation); "member" shares the
# group and a direct conversation with them; "stranger" shares nothing;
# "server_admin" is an administrator of the server in none of it.
PEOPLE = {
    "server_admin": "root",
    "owner": "olga",
    "admin": "adam",
    "member": "mia",
    "stranger": "sam",
    "inviter": "ivan",  # not a column: invites the owner to groups of his
}

FILE_BYTES = b"the quarterly budget, signed and sealed\n"


def tiny_png() -> bytes:
    """A valid 1x1 PNG (an avatar)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    pixels = zlib.compress(b"\x00\xff\x00\x00")
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")
    )


def file_form(name: str, data: bytes = FILE_BYTES, content_type: str = "text/plain") -> FormData:
    form = FormData(quote_fields=False)
    form.add_field("file", io.BytesIO(data), filename=name, content_type=content_type)
    return form


async def sdp_offer(stack: contextlib.AsyncExitStack, *, video: bool = False) -> str:
    """A real offer with its ICE candidates (loopback only), as a browser
    would send in call.join or to WHEP; the peer lives until ``stack`` closes."""
    use_host_addresses(["127.0.0.1"])
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    stack.push_async_callback(pc.close)
    pc.addTransceiver("video" if video else "audio", direction="recvonly")
    await pc.setLocalDescription(await pc.createOffer())
    return str(pc.localDescription.sdp)


@dataclass
class World:
    client: TestClient
    tokens: dict[str, dict[str, Any]]  # person's role -> their login answer
    ids: dict[str, str]  # what route templates are filled with by default
    _serial: itertools.count[int] = field(default_factory=itertools.count)
    # The web client's session cookie of each person (the Cookie header).
    cookies: dict[str, str] = field(default_factory=dict)
    # The streamers' WHIP publishers, sending video while the world lives.
    publishers: dict[str, RTCPeerConnection] = field(default_factory=dict)

    def user_id(self, role: str) -> str:
        return str(self.tokens[role]["user"]["id"])

    def auth(self, role: str, how: str = "bearer") -> dict[str, str]:
        """The role's credentials: its access token, or its session cookie
        with the Origin a browser sends along."""
        if role == "anonymous":
            return {}
        if how == "cookie":
            return {"Cookie": self.cookies[role]} | self.origin()
        return {"Authorization": f"Bearer {self.tokens[role]['access_token']}"}

    def origin(self) -> dict[str, str]:
        url = self.client.make_url("/")
        return {"Origin": f"{url.scheme}://{url.authority}"}

    async def sign_in_by_cookie(self, role: str) -> None:
        response = await self.client.post(
            "/api/v1/auth/session",
            json={"login": PEOPLE[role], "password": TEST_PASSWORD},
            headers=self.origin(),
        )
        assert response.status == 200, await response.text()
        cookie = response.cookies[SESSION_COOKIE]
        self.cookies[role] = f"{SESSION_COOKIE}={cookie.value}"
        self.client.session.cookie_jar.clear()  # sent only where a cell says so

    def unique(self, prefix: str) -> str:
        return f"{prefix}{next(self._serial)}"

    async def call(self, method: str, path: str, role: str, *, expect: int, **kwargs: Any) -> Any:
        """A request that must succeed: the world's own set-up steps."""
        headers = self.auth(role) | kwargs.pop("headers", {})
        response = await self.client.request(method, path, headers=headers, **kwargs)
        text = await response.text()
        assert response.status == expect, f"{method} {path} as {role}: {response.status} {text}"
        return json.loads(text) if text and response.content_type == "application/json" else None

    async def sign_in_again(self, role: str) -> dict[str, Any]:
        """A new sign-in of the same person: for cells that end one."""
        return await login(self.client, PEOPLE[role])

    async def new_person(self) -> dict[str, Any]:
        name = self.unique("extra")
        await register(self.client, name)
        return await login(self.client, name)

    async def new_group(self, owner: str = "owner") -> str:
        """A group like the world's own: owner, admin and member in it."""
        group = await self.call(
            "POST", "/api/v1/groups", owner, expect=201, json={"name": self.unique("g")}
        )
        if owner == "owner":
            for role, as_role in (("admin", "admin"), ("member", "member")):
                await self.call(
                    "POST",
                    f"/api/v1/groups/{group['id']}/members",
                    "owner",
                    expect=201,
                    json={"user_id": self.user_id(role), "role": as_role},
                )
        return str(group["id"])

    async def new_member(self, group_id: str | None = None) -> str:
        """A new person, added to the group as a plain member: their id."""
        person = await self.new_person()
        await self.call(
            "POST",
            f"/api/v1/groups/{group_id or self.ids['group_id']}/members",
            "owner",
            expect=201,
            json={"user_id": person["user"]["id"]},
        )
        return str(person["user"]["id"])

    async def new_message(self, author: str = "owner", **extra: Any) -> str:
        message = await self.call(
            "POST",
            f"/api/v1/groups/{self.ids['group_id']}/messages",
            author,
            expect=201,
            json={"body": "hello there"} | extra,
        )
        return str(message["id"])

    async def new_file(self, owner: str = "owner") -> str:
        stored = await self.call(
            "POST", "/api/v1/files", owner, expect=201, data=file_form(self.unique("f") + ".txt")
        )
        return str(stored["id"])

    async def new_invitation(self) -> str:
        """The inviter's new group, and an invitation to the owner to join it."""
        group_id = await self.new_group(owner="inviter")
        invitation = await self.call(
            "POST",
            f"/api/v1/groups/{group_id}/invitations",
            "inviter",
            expect=201,
            json={"user_id": self.user_id("owner")},
        )
        return str(invitation["id"])

    async def new_session(self, role: str = "owner") -> tuple[str, dict[str, Any]]:
        """A new sign-in of the person: its id, and its tokens."""
        tokens = await self.sign_in_again(role)
        headers = {"Authorization": f"Bearer {tokens['access_token']}"}
        listed = await self.call(
            "GET", "/api/v1/sessions", "anonymous", expect=200, headers=headers
        )
        current = next(item for item in listed["items"] if item["current"])
        return str(current["id"]), tokens

    async def ensure_live(self, streamer: str = "owner") -> None:
        """The streamer's room is live, published over WHIP (so that WHEP
        viewers have media too), unless it is already."""
        room_id = self.user_id(streamer)
        if room_id in {room.id for room in await self.client.app[LIVE].rooms()}:
            return
        if streamer in self.publishers:
            await self.publishers.pop(streamer).close()
        key = await self.call("GET", "/api/v1/live/key", streamer, expect=200)
        use_host_addresses(["127.0.0.1"])
        publisher = self.publishers[streamer] = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        publisher.addTransceiver(VideoStreamTrack(), direction="sendonly")
        await publisher.setLocalDescription(await publisher.createOffer())
        response = await self.client.post(
            "/api/v1/live/whip",
            data=publisher.localDescription.sdp.encode(),
            headers={"Authorization": f"Bearer {key['stream_key']}", "Content-Type": SDP},
        )
        answer = await response.text()
        assert response.status == 201, answer
        await publisher.setRemoteDescription(RTCSessionDescription(answer, "answer"))

    async def close(self) -> None:
        for publisher in self.publishers.values():
            await publisher.close()

    async def viewer_url(self, role: str = "owner") -> str:
        """The owner's room's hls_url as ``role`` is given it (path and query)."""
        await self.ensure_live()
        listed = await self.call("GET", "/api/v1/live", role, expect=200)
        room = next(item for item in listed["items"] if item["id"] == self.user_id("owner"))
        url = str(room["hls_url"])
        return url[url.index("/live/") :]


async def build_world(client: TestClient) -> World:
    for name in PEOPLE.values():  # root first: the server's administrator
        await register(client, name, password=TEST_PASSWORD)
    tokens = {role: await login(client, name) for role, name in PEOPLE.items()}
    assert tokens["server_admin"]["user"]["is_admin"] is True
    world = World(client, tokens, {})
    for role in PEOPLE:
        await world.sign_in_by_cookie(role)
    group_id = await world.new_group()
    world.ids["group_id"] = group_id
    attached = await world.new_file()
    world.ids |= {
        "message_id": await world.new_message(),
        "file_id": await world.new_file(),
        "attached_file_id": attached,
        "user_id": world.user_id("owner"),
        "room_id": world.user_id("owner"),
        "emoji": "👍",
        "name": "index.m3u8",
        "owner_email": tokens["owner"]["user"]["email"],
    }
    await world.new_message(file_ids=[attached])
    direct = await world.call(
        "POST",
        f"/api/v1/direct/{world.user_id('member')}/messages",
        "owner",
        expect=201,
        json={"body": "just us"},
    )
    world.ids["direct_id"] = direct["group_id"]
    await world.ensure_live()
    return world


# -- one WebSocket frame, played ----------------------------------------------

CLOSE_SESSION_ENDED = 4001
MARKER = "authz-marker"


async def anonymous_frame(client: TestClient, frame: dict[str, Any]) -> str:
    """A socket without credentials is closed before any frame is read:
    the close code, and never a reply."""
    ws = await client.ws_connect("/api/v1/ws")
    try:
        with contextlib.suppress(ConnectionResetError):
            await ws.send_str(json.dumps(frame))
        message = await ws.receive(timeout=5.0)
        assert message.type in (WSMsgType.CLOSE, WSMsgType.CLOSED), message
        return str(ws.close_code)
    finally:
        await ws.close()


async def played_frame(ws: WsClient, frame: dict[str, Any], kind: str, cell: str) -> str:
    """Sends ``frame`` with client_id ``cell`` (a new one each time: a
    message.send with a client_id used before is a retry, answered with the
    earlier message): "ok", or the code of the error frame that answers it.

    Frames with no reply of their own on success are followed by a marker
    the server answers after it (frames are read in order; call frames run
    one after another): the marker's answer without an error before it
    means the frame was accepted.
    """
    await ws.send(**frame, client_id=cell)
    if kind == "send":
        answer = await ws.next("message.ack", "error")
        assert answer.get("client_id") == cell, answer
        return "ok" if answer["type"] == "message.ack" else str(answer["code"])
    if kind == "call":  # a call frame for a call nobody is in: a sure error
        await ws.send(type="call.leave", group_id="00000000marker", client_id=MARKER)
    else:  # a frame of no known type: a sure error
        await ws.send(type="authz.marker", client_id=MARKER)
    while True:
        answer = await ws.next("error")
        if answer.get("client_id") == cell:
            return str(answer["code"])
        if answer.get("client_id") == MARKER:
            return "ok"
