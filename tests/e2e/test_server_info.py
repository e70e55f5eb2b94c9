"""GET /api/v1/server: what a client can know before anyone signs in, and
limits that are the ones the server really enforces."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient

from gortc.app import create_app
from tests.conftest import bearer, make_config
from tests.e2e.file_client import form
from tests.e2e.test_websocket import group_of, people


async def server_info(client: TestClient) -> dict[str, Any]:
    response = await client.get("/api/v1/server")  # no credentials
    assert response.status == 200, await response.text()
    return await response.json()  # type: ignore[no-any-return]


async def test_a_fresh_server_says_what_it_offers(client: TestClient) -> None:
    info = await server_info(client)
    assert info["mail_enabled"] is False  # no SMTP server configured
    assert info["signup"] == "open"
    assert info["version"] == (await (await client.get("/healthz")).json())["version"]
    assert set(info["limits"]) >= {
        "message_max_chars",
        "file_max_bytes",
        "quota_bytes",
        "max_attachments",
        "display_name_max_chars",
    }
    assert info["limits"]["message_max_chars"] == 4000
    assert info["limits"]["max_attachments"] == 10


async def test_mail_and_signup_follow_the_configuration(
    aiohttp_client: Any, tmp_path: Path
) -> None:
    config = make_config(
        tmp_path / "data",
        mail={"smtp_host": "mail.example.org"},
        auth={"signup": "invite"},
        files={"max_file_bytes": 1000, "quota_bytes": 5000, "max_attachments_per_message": 2},
    )
    client = await aiohttp_client(create_app(config))
    info = await server_info(client)
    assert (info["mail_enabled"], info["signup"]) == (True, "invite")
    assert info["limits"]["file_max_bytes"] == 1000
    assert info["limits"]["quota_bytes"] == 5000
    assert info["limits"]["max_attachments"] == 2

    closed = make_config(tmp_path / "closed", auth={"signup": "closed"})
    assert (await server_info(await aiohttp_client(create_app(closed))))["signup"] == "closed"


async def test_the_limits_shown_are_the_limits_enforced(
    aiohttp_client: Any, tmp_path: Path
) -> None:
    config = make_config(
        tmp_path / "data", limits={"enabled": False}, files={"max_file_bytes": 300}
    )
    client = await aiohttp_client(create_app(config))
    limits = (await server_info(client))["limits"]
    u = await people(client, "alice")
    group_id = await group_of(client, u["alice"])
    url = f"/api/v1/groups/{group_id}/messages"
    auth = bearer(u["alice"])

    longest = "x" * limits["message_max_chars"]
    assert (await client.post(url, json={"body": longest}, headers=auth)).status == 201
    too_long = await client.post(url, json={"body": longest + "x"}, headers=auth)
    assert (too_long.status, (await too_long.json())["error"]["code"]) == (
        400,
        "invalid_body_text",
    )

    name = "n" * limits["display_name_max_chars"]
    me = "/api/v1/users/me"
    assert (await client.patch(me, json={"display_name": name}, headers=auth)).status == 200
    refused = await client.patch(me, json={"display_name": name + "n"}, headers=auth)
    assert refused.status == 400

    fits = form(("fits.txt", b"a" * limits["file_max_bytes"]))
    assert (await client.post("/api/v1/files", data=fits, headers=auth)).status == 201
    over = form(("over.txt", b"a" * (limits["file_max_bytes"] + 1)))
    assert (await client.post("/api/v1/files", data=over, headers=auth)).status == 413

    group_name = "g" * limits["group_name_max_chars"]
    made = await client.post("/api/v1/groups", json={"name": group_name}, headers=auth)
    assert made.status == 201
    longer = await client.post("/api/v1/groups", json={"name": group_name + "g"}, headers=auth)
    assert longer.status == 400
