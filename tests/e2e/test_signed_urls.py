"""Signed file URLs: an upload URL stores one file of its declared size,
once; a download URL serves one file without credentials. Anything changed
in a URL, an expired one, or a body of the wrong size is refused, and a
refused upload stores nothing."""

from __future__ import annotations

import asyncio
import hashlib
import os
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from aiohttp.test_utils import TestClient

from gortc.adapters.hmac_signer import HmacSigner
from gortc.adapters.secret_key import derive_key, load_or_create_secret
from gortc.app import SIGNED_URL_KEY, create_app
from gortc.config import Config
from gortc.delivery.keys import ADMIN
from gortc.entities.timestamps import from_text
from gortc.usecases.signed_urls import download_url, upload_url
from tests.conftest import ClientFactory, app_rows, dump_database, make_config
from tests.e2e.file_client import stored_blobs
from tests.e2e.test_attachments import crew, send, upload_as
from tests.e2e.test_groups_api import GROUPS, Person, call, sign_up

DATA = b"the quarterly budget, signed and sealed\n"


async def upload_url_for(
    client: TestClient, who: Person, *, name: str = "budget.txt", size: int = len(DATA)
) -> dict[str, Any]:
    answer: dict[str, Any] = await call(
        client,
        "POST",
        "/api/v1/files/upload-url",
        who,
        expect=200,
        body={"name": name, "size": size, "content_type": "text/plain"},
    )
    return answer


async def download_url_for(client: TestClient, who: Person, file_id: str) -> str:
    answer = await call(client, "POST", f"/api/v1/files/{file_id}/download-url", who, expect=200)
    assert answer["method"] == "GET"
    url: str = answer["url"]
    return url


async def put(client: TestClient, url: str, body: Any = DATA) -> tuple[int, dict[str, Any]]:
    """A PUT with no credentials at all: the URL is the credential."""
    response = await client.put(url, data=body)
    return response.status, await response.json()


def refused(answer: tuple[int, dict[str, Any]], status: int, code: str) -> None:
    assert answer[0] == status, answer
    assert answer[1]["error"]["code"] == code, answer


def changed(url: str, **params: str) -> str:
    """The URL with some query parameters replaced."""
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query)) | params
    return f"{parts.path}?{urlencode(query)}"


def flipped(signature: str) -> str:
    return ("A" if signature[0] != "A" else "B") + signature[1:]


def signer(config: Config) -> HmacSigner:
    """The server's own signer, from the secret in its data directory: how a
    URL that expired a while ago is made without waiting for it."""
    secret = load_or_create_secret(config.auth.secret, config.data_path)
    return HmacSigner(derive_key(secret, SIGNED_URL_KEY))


def files_of(config: Config) -> list[tuple[Any, ...]]:
    return app_rows(config, "SELECT owner_id, name FROM files ORDER BY id")


async def test_an_upload_url_stores_one_file_once(client: TestClient, config: Config) -> None:
    alice = await sign_up(client, "alice")
    answer = await upload_url_for(client, alice)
    assert answer["method"] == "PUT"
    assert answer["max_bytes"] == len(DATA)
    expires_at = from_text(answer["expires_at"])
    assert 590 <= (expires_at - datetime.now(UTC)).total_seconds() <= 601

    status, stored = await put(client, answer["url"])

    assert status == 201, stored
    assert (stored["name"], stored["size"]) == ("budget.txt", len(DATA))
    assert stored["sha256"] == hashlib.sha256(DATA).hexdigest()
    content = await client.get(stored["content_url"], headers=alice.headers)
    assert await content.read() == DATA
    listed = await call(client, "GET", "/api/v1/files", alice, expect=200)
    assert [file["id"] for file in listed["items"]] == [stored["id"]]

    before = dump_database(config)
    refused(await put(client, answer["url"]), 409, "url_used")
    assert dump_database(config) == before


async def test_two_uploads_racing_with_one_url_store_one_file(
    client: TestClient, config: Config
) -> None:
    alice = await sign_up(client, "alice")
    url = (await upload_url_for(client, alice))["url"]

    answers = await asyncio.gather(put(client, url), put(client, url))

    assert sorted(status for status, _ in answers) == [201, 409]
    assert len(files_of(config)) == 1


async def test_wrong_sizes_are_refused_and_nothing_is_stored(
    client: TestClient, config: Config
) -> None:
    alice = await sign_up(client, "alice")
    url = (await upload_url_for(client, alice))["url"]
    before = dump_database(config)

    async def streamed(data: bytes) -> AsyncIterator[bytes]:
        # Chunked, without a Content-Length: counted as the bytes arrive.
        for start in range(0, len(data), 7):
            yield data[start : start + 7]

    refused(await put(client, url, DATA + b"!"), 413, "larger_than_declared")
    refused(await put(client, url, DATA[:-1]), 400, "smaller_than_declared")
    refused(await put(client, url, b""), 400, "smaller_than_declared")
    refused(await put(client, url, streamed(DATA + b"!")), 413, "larger_than_declared")
    refused(await put(client, url, streamed(DATA[:-1])), 400, "smaller_than_declared")

    assert dump_database(config) == before
    assert stored_blobs(config.data_path) == []
    # A failed attempt does not spend the URL.
    status, _ = await put(client, url, streamed(DATA))
    assert status == 201


async def test_a_changed_url_is_refused(client: TestClient, config: Config) -> None:
    alice, bob = await sign_up(client, "alice"), await sign_up(client, "bob")
    url = (await upload_url_for(client, alice))["url"]
    query = dict(parse_qsl(urlsplit(url).query))
    before = dump_database(config)

    for tampered in (
        changed(url, signature=flipped(query["signature"])),
        changed(url, signature=query["signature"][:-1]),
        changed(url, signature=""),
        changed(url, size=str(len(DATA) + 1)),
        changed(url, size=f"0{len(DATA)}"),
        changed(url, name="other.txt"),
        changed(url, name="budget.exe"),
        changed(url, user=bob.id),
        changed(url, expires=str(int(query["expires"]) + 3600)),
        changed(url, nonce=query["nonce"][::-1]),
        url.replace("signature=", "sig="),
    ):
        refused(await put(client, tampered, DATA), 403, "invalid_signature")
    # The same signed values on another path, or with another method.
    download_path = url.replace("/api/v1/files/upload?", "/api/v1/files/whatever/download?")
    response = await client.get(download_path)
    assert (response.status, (await response.json())["error"]["code"]) == (
        403,
        "invalid_signature",
    )
    assert (await client.post(url, data=DATA)).status == 405

    assert dump_database(config) == before
    assert stored_blobs(config.data_path) == []


async def test_an_expired_url_is_refused(client: TestClient, config: Config) -> None:
    alice = await sign_up(client, "alice")
    mine = await upload_as(client, alice, "mine.txt", DATA)
    past = int(time.time()) - 1
    expired_upload = upload_url(
        signer(config),
        user_id=alice.id,
        name="late.txt",
        size=len(DATA),
        expires=past,
        nonce="n" * 22,
    )
    expired_download = download_url(
        signer(config), user_id=alice.id, file_id=mine["id"], expires=past, nonce="n" * 22
    )
    # The same signer, a minute ahead: these are good, so only time refuses the others.
    good_download = download_url(
        signer(config), user_id=alice.id, file_id=mine["id"], expires=past + 61, nonce="m" * 22
    )

    refused(await put(client, expired_upload), 403, "url_expired")
    response = await client.get(expired_download)
    assert (await response.json())["error"]["code"] == "url_expired"
    assert (await client.get(good_download)).status == 200
    assert len(files_of(config)) == 1


async def test_a_download_url_works_without_credentials(client: TestClient) -> None:
    alice = await sign_up(client, "alice")
    file = await upload_as(client, alice, "Grüße.txt", DATA)
    other = await upload_as(client, alice, "other.txt", b"other bytes")
    url = await download_url_for(client, alice, file["id"])
    normal = await client.get(file["content_url"], headers=alice.headers)

    response = await client.get(url)  # no Authorization, no cookie

    assert response.status == 200
    assert await response.read() == DATA
    for header in ("Content-Type", "Content-Disposition", "Content-Security-Policy"):
        assert response.headers[header] == normal.headers[header]
    ranged = await client.get(url, headers={"Range": "bytes=4-12"})
    assert (ranged.status, await ranged.read()) == (206, DATA[4:13])
    # Usable again until it expires.
    assert (await client.get(url)).status == 200

    # Not for another file, and not changed.
    query = dict(parse_qsl(urlsplit(url).query))
    for tampered in (
        url.replace(file["id"], other["id"]),
        changed(url, signature=flipped(query["signature"])),
        changed(url, expires=str(int(query["expires"]) + 1)),
    ):
        answer = await client.get(tampered)
        assert answer.status == 403, tampered
        assert (await answer.json())["error"]["code"] == "invalid_signature"


async def test_a_members_download_url_lasts_as_long_as_their_access(client: TestClient) -> None:
    alice, bob, carol, gid = await crew(client)
    file = await upload_as(client, alice, "plan.txt", DATA)
    stranger = await call(
        client, "POST", f"/api/v1/files/{file['id']}/download-url", carol, expect=404
    )
    assert stranger["error"]["code"] == "file_not_found"
    message = await send(client, gid, alice, [file["id"]])
    url = await download_url_for(client, bob, file["id"])
    assert (await client.get(url)).status == 200

    await call(client, "DELETE", f"{GROUPS}/{gid}/messages/{message['id']}", alice, expect=204)

    # Checked on every use: the URL ends with bob's access to the file.
    response = await client.get(url)
    assert response.status == 404
    assert (await response.json())["error"]["code"] == "file_not_found"

    await send(client, gid, alice, [file["id"]])
    url = await download_url_for(client, bob, file["id"])
    await call(client, "DELETE", f"{GROUPS}/{gid}/members/{bob.id}", bob, expect=204)
    assert (await client.get(url)).status == 404


async def test_a_disabled_accounts_urls_stop_working(client: TestClient) -> None:
    alice = await sign_up(client, "alice")
    file = await upload_as(client, alice, "plan.txt", DATA)
    upload = (await upload_url_for(client, alice))["url"]
    download = await download_url_for(client, alice, file["id"])

    await client.app[ADMIN].set_disabled("alice", True)

    refused(await put(client, upload), 403, "account_disabled")
    response = await client.get(download)
    assert (response.status, (await response.json())["error"]["code"]) == (
        403,
        "account_disabled",
    )


async def test_limits_apply_as_to_every_upload(
    aiohttp_client: ClientFactory, tmp_path: Any
) -> None:
    config = make_config(tmp_path / "data", files={"quota_bytes": 100, "max_file_bytes": 80})
    client: TestClient = await aiohttp_client(create_app(config))
    alice = await sign_up(client, "alice")

    await upload_as(client, alice, "filler.bin", os.urandom(50))
    for size, code in ((81, "file_too_large"), (51, "quota_exceeded")):
        error = await call(
            client,
            "POST",
            "/api/v1/files/upload-url",
            alice,
            expect=413,
            body={"name": "big.bin", "size": size},
        )
        assert error["error"]["code"] == code
    for body, code in (
        ({"name": "   ", "size": 1}, "invalid_file_name"),
        ({"name": "x", "size": -1}, "invalid_body"),
        ({"name": "x"}, "invalid_body"),
    ):
        error = await call(client, "POST", "/api/v1/files/upload-url", alice, expect=400, body=body)
        assert error["error"]["code"] == code
    assert (
        await client.post("/api/v1/files/upload-url", json={"name": "x", "size": 1})
    ).status == 401

    # Issued while it fitted; by the time it is used, the quota is full.
    url = (await upload_url_for(client, alice, size=40))["url"]
    await upload_as(client, alice, "more.bin", os.urandom(20))
    refused(await put(client, url, os.urandom(40)), 413, "quota_exceeded")
    assert [name for _, name in files_of(config)] == ["filler.bin", "more.bin"]
    assert len(stored_blobs(config.data_path)) == 2


async def test_the_upload_belongs_to_whoever_asked(client: TestClient, config: Config) -> None:
    alice = await sign_up(client, "alice")
    url = (await upload_url_for(client, alice, name="../../etc/passwd"))["url"]
    bob = await sign_up(client, "bob")

    # Whoever sends it, even signed in as someone else.
    response = await client.put(url, data=DATA, headers=bob.headers)

    assert response.status == 201
    assert files_of(config) == [(alice.id, "passwd")]
    assert (await call(client, "GET", "/api/v1/files", bob, expect=200))["items"] == []
