"""A whole session against ``gortc serve`` in its own process, in both log
formats: every secret the clients saw (passwords, access and refresh
tokens, the session cookie, mailed codes, a signed URL's signature, a
stream key, a viewer token, the metrics token, the server's own secret)
is looked for in the server's whole log, and none may be there. On the
way: every line written while a request was handled names that request
(the id answered in X-Request-Id), JSON lines are JSON, and every answer
the clients got carries the security headers."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from collections.abc import Mapping
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from urllib.parse import parse_qs, urlsplit

import aiohttp
import pytest

from tests.e2e.server_process import ServerProcess, start_server
from tests.e2e.test_security_headers import missing_protection
from tests.integration.test_smtp import code_in
from tests.mail_outbox import outbox_mails
from tests.media_tools import ffmpeg_publish

FIRST_PASSWORD = "first-Password-of-alice-7Hq2"
SECOND_PASSWORD = "second-Password-of-alice-9Zr4"
WRONG_PASSWORD = "a-Wrong-guess-at-the-password-3Kx8"
BOB_PASSWORD = "the-Password-of-bob-5Wd1"
METRICS_TOKEN = "scrape-Token-for-prometheus-0123456789"
TEXT_LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} [A-Z]+ [\w.]+( rid=\S+)?: ")


class Session:
    """An HTTP client that notes every answer it gets, and every secret."""

    def __init__(self, server: ServerProcess) -> None:
        self.secrets: dict[str, str] = {}
        self.answers: list[tuple[str, int, Mapping[str, str]]] = []
        trace = aiohttp.TraceConfig()
        trace.on_request_end.append(self._note)
        # unsafe: the cookie of a server addressed by IP (127.0.0.1) is kept.
        self.http = aiohttp.ClientSession(
            server.url, trace_configs=[trace], cookie_jar=aiohttp.CookieJar(unsafe=True)
        )

    async def _note(self, session: Any, context: SimpleNamespace, params: Any) -> None:
        response = params.response
        self.answers.append((f"{params.method} {params.url}", response.status, response.headers))

    def keep(self, what: str, value: str) -> str:
        assert value, what
        self.secrets[what] = value
        return value

    async def call(
        self, method: str, path: str, *, expect: int, **kwargs: Any
    ) -> tuple[Any, aiohttp.ClientResponse]:
        async with self.http.request(method, path, **kwargs) as response:
            body = await response.read()
            assert response.status == expect, (method, path, response.status, body[:300])
            kind = response.content_type
            return (json.loads(body) if kind == "application/json" and body else body), response


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def eventually_listed(session: Session, token: str) -> dict[str, Any]:
    async with asyncio.timeout(20):
        while True:
            listed, _ = await session.call("GET", "/api/v1/live", expect=200, headers=bearer(token))
            if listed["items"]:
                return listed["items"][0]  # type: ignore[no-any-return]
            await asyncio.sleep(0.2)


async def full_session(session: Session, server: ServerProcess) -> dict[str, str]:
    """Everything a user and an operator do; returns request ids to look for."""
    ids: dict[str, str] = {}
    s = session
    s.keep("first password", FIRST_PASSWORD)
    s.keep("second password", SECOND_PASSWORD)
    s.keep("wrong password", WRONG_PASSWORD)
    s.keep("bob's password", BOB_PASSWORD)
    s.keep("metrics token", METRICS_TOKEN)
    s.keep("server secret", (server.data_dir / "secret.key").read_text().strip())

    # Sign up: the verification mail goes to the outbox (no SMTP).
    alice, answer = await s.call(
        "POST",
        "/api/v1/auth/register",
        expect=201,
        json={"username": "alice", "email": "alice@example.com", "password": FIRST_PASSWORD},
    )
    ids["register (writes a mail)"] = answer.headers["X-Request-Id"]
    await s.call(
        "POST",
        "/api/v1/auth/register",
        expect=201,
        json={"username": "bob", "email": "bob@example.com", "password": BOB_PASSWORD},
    )
    _, answer = await s.call(
        "POST",
        "/api/v1/auth/login",
        expect=401,
        json={"login": "alice", "password": WRONG_PASSWORD},
    )
    ids["refused login"] = answer.headers["X-Request-Id"]
    tokens, _ = await s.call(
        "POST",
        "/api/v1/auth/login",
        expect=200,
        json={"login": "alice", "password": FIRST_PASSWORD},
    )
    first_refresh = s.keep("first refresh token", tokens["refresh_token"])
    s.keep("first access token", tokens["access_token"])
    verification = s.keep("verification code", code_in(outbox_mails(server.data_dir)[0]))
    await s.call(
        "POST",
        "/api/v1/auth/verify-email",
        expect=200,
        json={"token": verification},
        headers=bearer(tokens["access_token"]),
    )
    tokens, _ = await s.call(
        "POST", "/api/v1/auth/refresh", expect=200, json={"refresh_token": first_refresh}
    )
    s.keep("second access token", tokens["access_token"])
    s.keep("second refresh token", tokens["refresh_token"])
    # A reused refresh token ends the sign-in, and the server warns of it
    # while handling that request.
    _, answer = await s.call(
        "POST", "/api/v1/auth/refresh", expect=401, json={"refresh_token": first_refresh}
    )
    ids["refresh token reused (logs a warning)"] = answer.headers["X-Request-Id"]

    # A password reset, by its mailed code.
    await s.call(
        "POST", "/api/v1/auth/password-reset", expect=202, json={"email": "alice@example.com"}
    )
    reset = s.keep("reset code", code_in(outbox_mails(server.data_dir)[-1]))
    await s.call(
        "POST",
        "/api/v1/auth/password-reset/confirm",
        expect=204,
        json={"token": reset, "password": SECOND_PASSWORD},
    )
    tokens, _ = await s.call(
        "POST",
        "/api/v1/auth/login",
        expect=200,
        json={"login": "alice", "password": SECOND_PASSWORD},
    )
    access = s.keep("third access token", tokens["access_token"])
    s.keep("third refresh token", tokens["refresh_token"])

    # The web client's cookie.
    origin = {"Origin": server.url}
    _, answer = await s.call(
        "POST",
        "/api/v1/auth/session",
        expect=200,
        json={"login": "bob", "password": BOB_PASSWORD},
        headers=origin,
    )
    s.keep("session cookie", answer.cookies["gortc_session"].value)
    bob, _ = await s.call("GET", "/api/v1/users/me", expect=200)
    bob_tokens, _ = await s.call(
        "POST", "/api/v1/auth/login", expect=200, json={"login": "bob", "password": BOB_PASSWORD}
    )
    bob_access = s.keep("bob's access token", bob_tokens["access_token"])

    # Chat: a group, the WebSocket (token in the query, as browsers must),
    # a message sent over it.
    group, _ = await s.call(
        "POST", "/api/v1/groups", expect=201, json={"name": "crew"}, headers=bearer(access)
    )
    async with s.http.ws_connect(f"/api/v1/ws?access_token={access}") as socket:
        ready = await socket.receive_json(timeout=5)
        assert ready["type"] == "ready"
        await socket.send_json(
            {"type": "message.send", "group_id": group["id"], "body": "hello", "client_id": "c1"}
        )
        async with asyncio.timeout(5):
            while (await socket.receive_json())["type"] != "message.ack":
                pass

    # A WebSocket ticket (how a page reaches another instance), in the query.
    ticket, _ = await s.call("POST", "/api/v1/ws/tickets", expect=200, headers=bearer(access))
    s.keep("websocket ticket's signature", ticket["ticket"].rsplit(".", 1)[1])
    async with s.http.ws_connect(f"/api/v1/ws?ticket={ticket['ticket']}") as socket:
        assert (await socket.receive_json(timeout=5))["type"] == "ready"

    # Files: an upload, a signed download URL used without credentials.
    form = aiohttp.FormData()
    form.add_field("file", b"quarterly figures\n", filename="figures.txt")
    uploaded, _ = await s.call(
        "POST", "/api/v1/files", expect=201, data=form, headers=bearer(access)
    )
    signed, _ = await s.call(
        "POST",
        f"/api/v1/files/{uploaded['id']}/download-url",
        expect=200,
        headers=bearer(access),
    )
    signed_query = parse_qs(urlsplit(signed["url"]).query)
    for name, values in signed_query.items():
        if name not in ("user", "expires"):  # an id and a time: not secret
            s.keep(f"signed URL's {name}", values[0])
    async with (
        aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as anonymous,
        anonymous.get(server.url + signed["url"]) as response,
    ):
        assert response.status == 200
        assert await response.read() == b"quarterly figures\n"
        s.answers.append(("signed download", response.status, response.headers))

    # Live: alice streams with her key, bob plays the hls_url with its
    # viewer token (and once with his access token in the URL).
    key, _ = await s.call("GET", "/api/v1/live/key", expect=200, headers=bearer(access))
    s.keep("stream key", key["stream_key"])
    # A mistyped key first: refused, and the attempt logged without it.
    mistyped = s.keep("mistyped stream key", key["stream_key"][:-3] + "Zz9")
    refused = await ffmpeg_publish(key["rtmp_url"].replace(key["stream_key"], mistyped), seconds=2)
    async with asyncio.timeout(15):
        assert await refused.wait() != 0
    publisher = await ffmpeg_publish(key["rtmp_url"], seconds=15)  # the key is in it
    try:
        room = await eventually_listed(s, bob_access)
        hls_url = room["hls_url"]
        s.keep("viewer token", parse_qs(urlsplit(hls_url).query)["vt"][0])
        async with asyncio.timeout(20):
            while True:
                playlist, _ = await s.call("GET", hls_url, expect=200)
                if b"#EXTINF" in playlist:
                    break
                await asyncio.sleep(0.3)
        segment = next(
            line for line in playlist.decode().splitlines() if line and not line.startswith("#")
        )
        base = hls_url.split("?", 1)[0].rsplit("/", 1)[0]
        await s.call("GET", f"{base}/{segment}", expect=200)
        await s.call("GET", f"{hls_url.split('?', 1)[0]}?access_token={bob_access}", expect=200)
    finally:
        with contextlib.suppress(ProcessLookupError):
            publisher.kill()
        await publisher.wait()

    # The operator scrapes the figures; a request that goes wrong.
    await s.call("GET", "/metrics", expect=200, headers=bearer(METRICS_TOKEN))
    _, answer = await s.call(
        "GET", f"/api/v1/no/such/page%0AINFO%20forged?access_token={access}", expect=404
    )
    ids["not found, with a token in its query"] = answer.headers["X-Request-Id"]
    await s.call("POST", "/api/v1/auth/logout", expect=204, headers=bearer(access))
    assert alice["username"] == "alice" and bob["username"] == "bob"
    return ids


@pytest.mark.parametrize("log_format", ["text", "json"])
async def test_no_secret_reaches_the_log_and_every_line_names_its_request(
    tmp_path: Path, log_format: str
) -> None:
    server = await start_server(
        tmp_path / "data",
        GORTC_SERVER_LOG_FORMAT=log_format,
        GORTC_AUTH_BCRYPT_ROUNDS="4",
        GORTC_METRICS_TOKEN=METRICS_TOKEN,
        GORTC_LIVE_SEGMENT_SECONDS="1",
    )
    session = Session(server)
    try:
        ids = await full_session(session, server)
    finally:
        await session.http.close()
        assert await server.stop() == 0
    log = "".join(server.log)

    leaked = [what for what, secret in session.secrets.items() if secret in log]
    assert leaked == [], f"found in the log: {leaked}"
    assert "invalid stream key" in log  # the mistyped key's attempt was logged, without it
    unprotected = [
        (what, status, problems)
        for what, status, headers in session.answers
        if (problems := missing_protection(headers))
    ]
    assert unprotected == []
    assert len(session.answers) > 25

    # Every request's lines name it: its access line, and what it logged.
    lines = [line for line in log.splitlines() if line.strip()]
    if log_format == "json":
        entries = [json.loads(line) for line in lines]  # every line is one object
        for entry in entries:
            assert entry["time"].endswith("Z") and "T" in entry["time"]
            assert {"level", "logger", "message"} <= entry.keys()
        by_request = {
            rid: [e for e in entries if e.get("request_id") == rid] for rid in ids.values()
        }
        access = {
            rid: next(e for e in found if e["logger"] == "gortc.access")
            for rid, found in by_request.items()
        }
        missing = access[ids["not found, with a token in its query"]]
        assert (missing["method"], missing["status"]) == ("GET", 404)
        assert missing["path"] == "/api/v1/no/such/page%0AINFO%20forged"
        assert access[ids["refused login"]]["status"] == 401
        assert any(
            e["logger"] == "gortc.usecases.accounts" and e["level"] == "WARNING"
            for e in by_request[ids["refresh token reused (logs a warning)"]]
        )
        assert any(e["logger"] == "gortc.mail" for e in by_request[ids["register (writes a mail)"]])
        assert any("ready on http://127.0.0.1:" in e["message"] for e in entries)
    else:
        # Tracebacks aside, every line is one record; none was forged.
        assert all(TEXT_LINE.match(line) for line in lines if not line.startswith((" ", "Tr")))
        for what, rid in ids.items():
            assert any(f" gortc.access rid={rid}: " in line for line in lines), what
        warned = ids["refresh token reused (logs a warning)"]
        assert any(f" WARNING gortc.usecases.accounts rid={warned}: " in line for line in lines)
        mailed = ids["register (writes a mail)"]
        assert any(f" INFO gortc.mail rid={mailed}: " in line for line in lines)


async def test_a_garbled_request_is_one_info_line_without_its_bytes(tmp_path: Path) -> None:
    server = await start_server(tmp_path / "data", GORTC_SERVER_LOG_FORMAT="json")
    port = int(server.url.rsplit(":", 1)[1])
    garbled = [
        b"GET /healthz HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer SECRET-in-a-header\x01\r\n\r\n",
        b"GET /healthz?access_token=SECRET-in-a-query\x01 HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET /healthz HTTP/1.1\r\nCookie: gortc_session=SECRET-cookie\r\nNo Colon\r\n\r\n",
    ]
    try:
        for raw in garbled:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(raw)
            await writer.drain()
            async with asyncio.timeout(5):
                assert (await reader.read(64)).split(b" ")[1] == b"400"
            writer.close()
    finally:
        assert await server.stop() == 0
    entries = [json.loads(line) for line in "".join(server.log).splitlines() if line.strip()]
    refused = [entry for entry in entries if "malformed request" in entry["message"]]
    assert len(refused) == 3
    assert {entry["level"] for entry in refused} == {"INFO"}  # the client's mistake
    assert not any("exception" in entry for entry in refused)
    assert "127.0.0.1" in refused[0]["message"]
    assert "SECRET" not in "".join(server.log)
