"""Hostile WebSocket clients against a real ``gortc serve`` (rate limits on):
garbage of every kind gets an error frame, broken or oversized frames a
clean close with a documented code, floods the rate limit; other users'
sockets keep working throughout, and the server logs no error."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import WSMsgType
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import TEST_PASSWORD
from tests.e2e.raw_websocket import RawWebSocket
from tests.e2e.server_process import ServerProcess, start_server

MAX_FRAME = 65536  # hub.max_frame_bytes's default
# The suite runs a bounded fuzz; `make fuzz-protocols` a long one.
FUZZ_EXAMPLES = int(os.environ.get("GORTC_FUZZ_EXAMPLES", "200"))


@dataclass
class Chat:
    server: ServerProcess
    http: aiohttp.ClientSession
    tokens: dict[str, dict[str, Any]]
    group_id: str

    def headers(self, name: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[name]['access_token']}"}

    async def socket(self, name: str) -> aiohttp.ClientWebSocketResponse:
        ws = await self.http.ws_connect(
            f"{self.server.url}/api/v1/ws", headers=self.headers(name), autoping=True
        )
        assert (await next_frame(ws))["type"] == "ready"
        return ws

    def address(self) -> tuple[str, int]:
        host, port = self.server.url.removeprefix("http://").split(":")
        return host, int(port)


@pytest.fixture
async def chat(tmp_path: Path) -> AsyncIterator[Chat]:
    server = await start_server(
        tmp_path / "data",
        GORTC_AUTH_BCRYPT_ROUNDS="4",
        GORTC_RTC_HOST_ADDRESSES="127.0.0.1",  # a stray call.join stays on loopback
    )
    async with aiohttp.ClientSession() as http:
        tokens: dict[str, dict[str, Any]] = {}
        for name in ("alice", "bob"):
            account = {"username": name, "email": f"{name}@example.com", "password": TEST_PASSWORD}
            async with http.post(f"{server.url}/api/v1/auth/register", json=account) as response:
                assert response.status == 201
            login = {"login": name, "password": TEST_PASSWORD}
            async with http.post(f"{server.url}/api/v1/auth/login", json=login) as response:
                tokens[name] = await response.json()
        owner = {"Authorization": f"Bearer {tokens['alice']['access_token']}"}
        async with http.post(
            f"{server.url}/api/v1/groups", json={"name": "den"}, headers=owner
        ) as response:
            group_id = (await response.json())["id"]
        async with http.post(
            f"{server.url}/api/v1/groups/{group_id}/members",
            json={"user_id": tokens["bob"]["user"]["id"]},
            headers=owner,
        ) as response:
            assert response.status == 201
        yield Chat(server, http, tokens, group_id)
    await server.stop()
    problems = [line for line in server.log if "Traceback" in line or " ERROR " in line]
    assert problems == [], "".join(server.log)


async def next_frame(
    ws: aiohttp.ClientWebSocketResponse, *types: str, timeout: float = 5.0
) -> dict[str, Any]:
    """The next JSON frame (of one of ``types``, if given), skipping others."""
    async with asyncio.timeout(timeout):
        while True:
            message = await ws.receive()
            if message.type in (WSMsgType.PING, WSMsgType.PONG):
                continue
            assert message.type is WSMsgType.TEXT, (message.type, message.data, message.extra)
            frame: dict[str, Any] = json.loads(message.data)
            if not types or frame["type"] in types:
                return frame


async def still_chatting(chat: Chat, bob: aiohttp.ClientWebSocketResponse, text: str) -> None:
    """Bob (untouched by the abuse) sends, and gets his own message back."""
    await bob.send_json(
        {"type": "message.send", "group_id": chat.group_id, "body": text, "client_id": text}
    )
    seen: dict[str, dict[str, Any]] = {}
    while len(seen) < 2:  # in either order
        frame = await next_frame(bob, "message.ack", "message.created")
        seen[frame["type"]] = frame
    assert seen["message.ack"]["client_id"] == text
    assert seen["message.created"]["message"]["body"] == text


def deep(levels: int) -> str:
    return "[" * levels + "]" * levels


SEND = '{{"type": "message.send", "group_id": "{{group}}", "body": "{body}", "client_id": "c"}}'
# What alice sends, and the code of the error frame she must get for it.
GARBAGE: list[tuple[str, str | bytes, str]] = [
    ("binary frame", b"\x00\x01\x02", "invalid_frame"),
    ("not JSON", "{not json", "malformed_json"),
    ("empty text", "", "malformed_json"),
    ("a JSON array", "[]", "invalid_frame"),
    ("a JSON string", '"message.send"', "invalid_frame"),
    ("a JSON number", "42", "invalid_frame"),
    ("JSON null", "null", "invalid_frame"),
    ("an infinite number", "1e999999", "invalid_frame"),
    ("no type", '{"group_id": "x"}', "invalid_frame"),
    ("unknown type", '{"type": "no.such.type"}', "invalid_frame"),
    ("type an object", '{"type": {"a": 1}}', "invalid_frame"),
    ("type a list", '{"type": ["message.send"]}', "invalid_frame"),
    (
        "wrong field types",
        '{"type": "message.send", "group_id": 5, "body": [1], "client_id": {}}',
        "invalid_frame",
    ),
    ("unknown field", '{"type": "typing", "group_id": "x", "surprise": 1}', "invalid_frame"),
    ("nested 20,000 deep", deep(20_000), "malformed_json"),
    (
        "a field nested 10,000 deep",
        '{"type": "message.send", "group_id": "x", "body": "a", "client_id": ' + deep(10_000) + "}",
        "malformed_json",
    ),
    ("nested 500 deep", '{"type": "typing", "group_id": ' + deep(500) + "}", "invalid_frame"),
    ("a lone surrogate", SEND.format(body="\\ud800"), "invalid_frame"),
    ("NUL in the body", SEND.format(body="a\\u0000b"), "invalid_body_text"),
    ("a huge seq", '{"type": "sync", "group_id": "{group}", "after_seq": 1e400}', "invalid_frame"),
    (
        "a stranger's group",
        '{"type": "sync", "group_id": "01NOPE", "after_seq": 0}',
        "group_not_found",
    ),
    ("not an SDP", '{"type": "call.join", "group_id": "{group}", "sdp": "v=0"}', "invalid_sdp"),
]


async def test_garbage_frames_get_error_frames_and_the_sockets_stay(chat: Chat) -> None:
    alice = await chat.socket("alice")
    bob = await chat.socket("bob")
    for what, payload, code in GARBAGE:
        if isinstance(payload, bytes):
            await alice.send_bytes(payload)
        else:
            await alice.send_str(payload.replace("{group}", chat.group_id))
        error = await next_frame(alice, "error")
        assert (error["code"], 400 <= error["status"] < 500) == (code, True), (what, error)
    await still_chatting(chat, bob, "bob is fine")
    # And alice's own socket still works after all of it.
    await alice.send_json(
        {"type": "message.send", "group_id": chat.group_id, "body": "hi", "client_id": "ok"}
    )
    assert (await next_frame(alice, "message.ack"))["client_id"] == "ok"


async def test_a_deeply_nested_rest_body_is_a_400_too(chat: Chat) -> None:
    async with chat.http.post(
        f"{chat.server.url}/api/v1/groups",
        data='{"name": ' + deep(30_000) + "}",
        headers=chat.headers("alice") | {"Content-Type": "application/json"},
    ) as response:
        assert response.status == 400
        assert (await response.json())["error"]["code"] == "malformed_json"


async def test_broken_and_oversized_frames_close_with_documented_codes(chat: Chat) -> None:
    bob = await chat.socket("bob")
    host, port = chat.address()
    token = chat.tokens["alice"]["access_token"]
    text, binary, continuation, ping = 0x1, 0x2, 0x0, 0x9
    cases: list[tuple[str, bytes, set[int | None]]] = [
        ("text over the limit", RawWebSocket.frame(text, b"x" * (MAX_FRAME + 1)), {1009}),
        ("binary over the limit", RawWebSocket.frame(binary, bytes(MAX_FRAME + 1)), {1009}),
        (
            "fragments adding up past the limit",
            RawWebSocket.frame(text, b"x" * 40_000, fin=False)
            + RawWebSocket.frame(continuation, b"x" * 40_000),
            {1009},
        ),
        ("invalid UTF-8", RawWebSocket.frame(text, b'{"type": "\xff\xfe"}'), {1007}),
        ("a ping over 125 bytes", RawWebSocket.frame(ping, bytes(200)), {1002}),
        ("reserved bits set", b"\xf1\x85" + bytes(4) + b"hello", {1002}),
        ("an unknown opcode", RawWebSocket.frame(0x3, b"hi"), {1002}),
        ("a continuation with nothing to continue", RawWebSocket.frame(0x0, b"hi"), {1002}),
        ("an announced length of 2^63", b"\x81\xff" + b"\x7f" + bytes(7) + bytes(4), {1009}),
    ]
    for what, data, codes in cases:
        raw = await RawWebSocket.open(host, port, token)
        raw.send_raw(data)
        assert await raw.close_code() in codes, what
        await raw.close()
        await still_chatting(chat, bob, what)

    # RFC 6455 5.1 says a server closes on an unmasked client frame; aiohttp
    # reads them like any other (its frame parser serves its client too).
    # Harmless here: the frame is judged on its content like any other.
    raw = await RawWebSocket.open(host, port, token)
    raw.send_raw(RawWebSocket.frame(text, b"[]", mask=False))
    ready, answer = await raw.next_frame(), await raw.next_frame()
    assert ready is not None and answer is not None
    assert json.loads(answer.payload)["code"] == "invalid_frame"
    await raw.close()


async def test_a_flood_is_rate_limited_and_a_ping_flood_changes_nothing(chat: Chat) -> None:
    alice = await chat.socket("alice")
    bob = await chat.socket("bob")
    sent = 200
    for number in range(sent):
        await alice.send_json(
            {
                "type": "message.send",
                "group_id": chat.group_id,
                "body": f"flood {number}",
                "client_id": f"f{number}",
            }
        )
    answers: dict[str, dict[str, Any]] = {}
    while len(answers) < sent:
        frame = await next_frame(alice, "message.ack", "error")
        answers[frame["client_id"]] = frame
    acked = [a for a in answers.values() if a["type"] == "message.ack"]
    limited = [a for a in answers.values() if a["type"] == "error"]
    assert {(e["code"], e["status"]) for e in limited} == {("rate_limited", 429)}
    assert all(e["retry_after"] > 0 for e in limited)
    assert 40 <= len(acked) < sent  # the burst, and what refilled meanwhile
    # Bob got exactly the messages that were acknowledged, in order.
    bodies = [(await next_frame(bob, "message.created"))["message"]["body"] for _ in acked]
    in_order = sorted(acked, key=lambda ack: ack["message"]["seq"])
    assert bodies == [ack["message"]["body"] for ack in in_order]

    # 2,000 pings: answered, and nothing else changes.
    for _ in range(2000):
        await bob.ping(b"are you there")
    await still_chatting(chat, bob, "after the pings")


# -- fuzzing -----------------------------------------------------------------------------

FRAME_TYPES = [
    "message.send", "message.edit", "message.delete", "sync", "typing", "message.read",
    "call.join", "call.answer", "call.mute", "call.leave",
    "live.watch", "live.unwatch", "live.chat", "no.such.type",
]  # fmt: skip
JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False)
    | st.text(max_size=30)
    | st.just("{group}"),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
FIELDS = ["group_id", "body", "client_id", "message_id", "seq", "after_seq", "after_change",
          "sdp", "kind", "muted", "room_id", "file_ids", "reply_to"]  # fmt: skip
FRAMES = st.builds(
    lambda kind, fields: {"type": kind, **fields},
    st.sampled_from(FRAME_TYPES) | JSON_VALUES,
    st.dictionaries(st.sampled_from(FIELDS), JSON_VALUES, max_size=5),
)
PAYLOADS = st.one_of(
    FRAMES.map(json.dumps),
    JSON_VALUES.map(json.dumps),
    st.text(max_size=300),
    st.binary(max_size=300),
)


@settings(
    max_examples=FUZZ_EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(payloads=st.lists(PAYLOADS, min_size=1, max_size=5))
async def test_fuzzed_frames_never_break_the_server(chat: Chat, payloads: list[Any]) -> None:
    alice = await chat.socket("alice")
    try:
        for payload in payloads:
            if isinstance(payload, bytes):
                await alice.send_bytes(payload)
            else:
                await alice.send_str(payload.replace('"{group}"', json.dumps(chat.group_id)))
        # A frame the server always answers, queued behind the fuzz: every
        # answer up to it must be a client error at worst, never a 500.
        await alice.send_json({"type": "sync", "group_id": chat.group_id, "after_seq": 1 << 40})
        while True:
            frame = await next_frame(alice, timeout=10)
            assert frame.get("status", 200) < 500, frame
            if frame["type"] == "sync.done":
                break
    finally:
        await alice.close()
