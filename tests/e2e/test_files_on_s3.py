"""The file store and avatars of a server whose storage.url is an S3 bucket
(a real SeaweedFS, tests/object_store.py): uploads through the server and
straight to the store, downloads by redirect to a presigned URL with the
same headers, deduplication and reference counting, search, orphans."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient

from gortc.app import CORE, collect_blobs, create_app
from gortc.config import Config
from tests.conftest import ClientFactory, bearer, login, make_config, register
from tests.e2e.file_client import names_found, upload
from tests.integration.blob_stores import new_bucket
from tests.object_store import ACCESS_KEY, REGION, SECRET_KEY, ObjectStore

PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082"
)


@pytest.fixture
async def s3_config(object_store: ObjectStore, tmp_path: Any) -> Config:
    bucket = await new_bucket(object_store)
    return make_config(
        tmp_path / "data",
        storage={
            "url": f"s3://{bucket}",
            "endpoint": object_store.endpoint,
            "region": REGION,
            "access_key": ACCESS_KEY,
            "secret_key": SECRET_KEY,
        },
    )


@pytest.fixture
async def s3_client(aiohttp_client: ClientFactory, s3_config: Config) -> TestClient:
    return await aiohttp_client(create_app(s3_config))


@pytest.fixture
async def bucket(object_store: ObjectStore, s3_config: Config) -> AsyncIterator[Any]:
    """The bucket's raw client, for what a test checks beneath the server."""

    async with object_store.client() as client:
        yield client


async def keys(bucket: Any, config: Config) -> list[str]:
    answer = await bucket.list_objects_v2(Bucket=config.storage.bucket)
    return sorted(item["Key"] for item in answer.get("Contents", []))


async def signed_in(client: TestClient, username: str) -> dict[str, Any]:
    await register(client, username)
    return await login(client, username)


async def follow(client: TestClient, path: str, tokens: dict[str, Any]) -> aiohttp.ClientResponse:
    """GET through the server, then (as a browser does) to where it redirects."""
    response = await client.get(path, headers=bearer(tokens), allow_redirects=False)
    assert response.status == 302, await response.text()
    assert response.headers["Cache-Control"] == "no-store"
    async with aiohttp.ClientSession() as http:
        # No credentials of ours go to the store: the URL is the credential.
        store = await http.get(response.headers["Location"])
        await store.read()
        return store


async def direct_upload(
    client: TestClient, tokens: dict[str, Any], name: str, data: bytes, *, sent: bytes | None = None
) -> aiohttp.ClientResponse:
    asked = await client.post(
        "/api/v1/files/direct-uploads",
        json={"name": name, "size": len(data), "content_type": "text/plain"},
        headers=bearer(tokens),
    )
    assert asked.status == 201, await asked.text()
    ticket = await asked.json()
    assert ticket["method"] == "PUT" and ticket["headers"] == {"Content-Type": "text/plain"}
    async with (
        aiohttp.ClientSession() as http,
        http.put(
            ticket["url"], data=data if sent is None else sent, headers=ticket["headers"]
        ) as put,
    ):
        assert put.status == 200, await put.text()
    return await client.post(
        "/api/v1/files/direct-uploads/confirm",
        json={"upload_id": ticket["upload_id"]},
        headers=bearer(tokens),
    )


async def test_uploads_through_the_server_are_kept_once_and_downloaded_by_redirect(
    s3_client: TestClient, s3_config: Config, bucket: Any
) -> None:
    alice = await signed_in(s3_client, "alice")
    bob = await signed_in(s3_client, "bob")
    text = "Grüße aus Zürich: the quarterly budget.\n".encode()
    [mine] = await upload(s3_client, alice, ('Grüße 2024 "final".txt', text))
    [theirs] = await upload(s3_client, bob, ("copy.txt", text))
    assert mine["sha256"] == theirs["sha256"] == hashlib.sha256(text).hexdigest()
    # Identical bytes, one object; nothing staged left behind.
    assert await keys(bucket, s3_config) == [f"blobs/{mine['sha256']}"]

    download = await follow(s3_client, mine["content_url"], alice)

    assert download.status == 200
    assert await download.read() == text
    assert download.headers["Content-Type"] == "text/plain; charset=utf-8"
    assert download.headers["Content-Disposition"] == (
        'attachment; filename="Gr__e 2024 _final_.txt"; '
        "filename*=UTF-8''Gr%C3%BC%C3%9Fe%202024%20_final_.txt"
    )
    assert download.headers["Cache-Control"] == "private, no-cache"
    assert await names_found(s3_client, alice, "quarterly") == ["Grüße 2024 _final_.txt"]
    # Someone else's file: no redirect, no URL.
    refused = await s3_client.get(mine["content_url"], headers=bearer(bob), allow_redirects=False)
    assert refused.status == 404

    deleted = await s3_client.delete(f"/api/v1/files/{mine['id']}", headers=bearer(alice))
    assert deleted.status == 204
    assert await keys(bucket, s3_config) == [f"blobs/{mine['sha256']}"]  # bob's still
    await s3_client.delete(f"/api/v1/files/{theirs['id']}", headers=bearer(bob))
    assert await keys(bucket, s3_config) == []


async def test_a_large_upload_through_the_server_downloads_byte_exact(
    s3_client: TestClient,
) -> None:
    alice = await signed_in(s3_client, "alice")
    data = bytes(range(256)) * (40 * 1024 + 7)  # 10 MiB and more: a multipart upload
    [stored] = await upload(s3_client, alice, ("big.bin", data))

    download = await follow(s3_client, stored["content_url"], alice)

    assert await download.read() == data
    assert download.headers["Content-Length"] == str(len(data))
    # A range of it, from the store as from the server (206).
    redirect = await s3_client.get(
        stored["content_url"], headers=bearer(alice), allow_redirects=False
    )
    async with (
        aiohttp.ClientSession() as http,
        http.get(redirect.headers["Location"], headers={"Range": "bytes=1000-1999"}) as part,
    ):
        assert part.status == 206
        assert await part.read() == data[1000:2000]
    # A signed download URL answers the same way, to anyone holding it.
    signed = await s3_client.post(
        f"/api/v1/files/{stored['id']}/download-url", headers=bearer(alice)
    )
    link = (await signed.json())["url"]
    anyone = await s3_client.get(link, allow_redirects=False)
    assert anyone.status == 302
    async with aiohttp.ClientSession() as http, http.get(anyone.headers["Location"]) as got:
        assert await got.read() == data
        assert got.headers["Content-Disposition"].startswith('attachment; filename="big.bin"')


async def test_a_direct_upload_is_listed_indexed_and_deduplicated(
    s3_client: TestClient, s3_config: Config, bucket: Any
) -> None:
    info = await (await s3_client.get("/api/v1/server")).json()
    assert info["direct_uploads"] is True
    health = await (await s3_client.get("/healthz")).json()
    assert health["checks"]["storage"] == "ok"
    alice = await signed_in(s3_client, "alice")
    text = b"Minutes of the zeppelin committee.\n"
    [through_server] = await upload(s3_client, alice, ("first.txt", text))

    confirmed = await direct_upload(s3_client, alice, "minutes.txt", text)

    assert confirmed.status == 201, await confirmed.text()
    stored = await confirmed.json()
    assert stored["name"] == "minutes.txt"
    assert stored["size"] == len(text)
    assert stored["sha256"] == through_server["sha256"]
    assert stored["content_type"] == "text/plain; charset=utf-8"
    assert stored["searchable"] is True
    assert sorted(await names_found(s3_client, alice, "zeppelin")) == ["first.txt", "minutes.txt"]
    listed = await (await s3_client.get("/api/v1/files", headers=bearer(alice))).json()
    assert {item["id"] for item in listed["items"]} == {stored["id"], through_server["id"]}
    assert await keys(bucket, s3_config) == [f"blobs/{stored['sha256']}"]
    assert await (await follow(s3_client, stored["content_url"], alice)).read() == text


async def test_a_direct_upload_of_the_wrong_size_is_refused_and_removed(
    s3_client: TestClient, s3_config: Config, bucket: Any
) -> None:
    alice = await signed_in(s3_client, "alice")

    shorter = await direct_upload(s3_client, alice, "a.txt", b"twelve bytes", sent=b"eleven byte")
    longer = await direct_upload(s3_client, alice, "b.txt", b"twelve bytes", sent=b"thirteen byte")

    assert shorter.status == 400
    assert (await shorter.json())["error"]["code"] == "smaller_than_declared"
    assert longer.status == 413
    assert (await longer.json())["error"]["code"] == "larger_than_declared"
    assert await keys(bucket, s3_config) == []
    listed = await (await s3_client.get("/api/v1/files", headers=bearer(alice))).json()
    assert listed["items"] == []


async def test_a_direct_upload_is_confirmed_once_by_its_owner_only(
    s3_client: TestClient,
) -> None:
    alice = await signed_in(s3_client, "alice")
    bob = await signed_in(s3_client, "bob")
    asked = await s3_client.post(
        "/api/v1/files/direct-uploads", json={"name": "a.txt", "size": 2}, headers=bearer(alice)
    )
    ticket = await asked.json()
    assert ticket["headers"] == {"Content-Type": "application/octet-stream"}
    confirm = {"upload_id": ticket["upload_id"]}

    missing = await s3_client.post(
        "/api/v1/files/direct-uploads/confirm", json=confirm, headers=bearer(alice)
    )
    assert missing.status == 404
    assert (await missing.json())["error"]["code"] == "upload_missing"
    async with aiohttp.ClientSession() as http:
        await (await http.put(ticket["url"], data=b"hi", headers=ticket["headers"])).read()
    not_bobs = await s3_client.post(
        "/api/v1/files/direct-uploads/confirm", json=confirm, headers=bearer(bob)
    )
    assert not_bobs.status == 400
    assert (await not_bobs.json())["error"]["code"] == "invalid_upload_id"
    first = await s3_client.post(
        "/api/v1/files/direct-uploads/confirm", json=confirm, headers=bearer(alice)
    )
    again = await s3_client.post(
        "/api/v1/files/direct-uploads/confirm", json=confirm, headers=bearer(alice)
    )
    assert first.status == 201
    assert again.status == 409
    assert (await again.json())["error"]["code"] == "url_used"


async def test_asking_checks_the_limits_first(
    aiohttp_client: ClientFactory, s3_config: Config
) -> None:
    config = s3_config.model_copy(
        update={"files": s3_config.files.model_copy(update={"max_file_bytes": 10})}
    )
    client = await aiohttp_client(create_app(config))
    alice = await signed_in(client, "alice")

    asked = await client.post(
        "/api/v1/files/direct-uploads", json={"name": "a.txt", "size": 11}, headers=bearer(alice)
    )

    assert asked.status == 413
    assert (await asked.json())["error"]["code"] == "file_too_large"


async def test_unconfirmed_uploads_and_orphans_are_collected(
    s3_client: TestClient, s3_config: Config, bucket: Any
) -> None:
    alice = await signed_in(s3_client, "alice")
    [kept] = await upload(s3_client, alice, ("kept.txt", b"kept"))
    asked = await s3_client.post(
        "/api/v1/files/direct-uploads", json={"name": "a.txt", "size": 2}, headers=bearer(alice)
    )
    ticket = await asked.json()
    async with aiohttp.ClientSession() as http:
        await (await http.put(ticket["url"], data=b"hi", headers=ticket["headers"])).read()
    orphan = hashlib.sha256(b"left by a crash").hexdigest()
    await bucket.put_object(
        Bucket=s3_config.storage.bucket, Key=f"blobs/{orphan}", Body=b"left by a crash"
    )
    # What the hourly upkeep does, with every staged object past its age.
    await collect_blobs(s3_client.app[CORE], staged_older_than=0)

    assert await keys(bucket, s3_config) == [f"blobs/{kept['sha256']}"]
    confirmed = await s3_client.post(
        "/api/v1/files/direct-uploads/confirm",
        json={"upload_id": ticket["upload_id"]},
        headers=bearer(alice),
    )
    assert confirmed.status == 404


async def test_an_avatar_is_served_from_the_store(s3_client: TestClient) -> None:
    alice = await signed_in(s3_client, "alice")
    put = await s3_client.put(
        "/api/v1/users/me/avatar",
        data=PNG,
        headers={**bearer(alice), "Content-Type": "image/png"},
    )
    assert put.status == 200, await put.text()
    me = await (await s3_client.get("/api/v1/users/me", headers=bearer(alice))).json()

    picture = await follow(s3_client, me["avatar_url"], alice)

    assert picture.status == 200
    assert await picture.read() == PNG
    assert picture.headers["Content-Type"] == "image/png"
    assert picture.headers["Cache-Control"] == "private, max-age=86400"


async def test_an_upload_not_confirmed_in_time_is_refused(
    aiohttp_client: ClientFactory, s3_config: Config
) -> None:
    # URLs of one second: the confirmation may come until two after asking.
    config = s3_config.model_copy(
        update={"files": s3_config.files.model_copy(update={"signed_url_seconds": 1})}
    )
    client = await aiohttp_client(create_app(config))
    alice = await signed_in(client, "alice")
    asked = await client.post(
        "/api/v1/files/direct-uploads", json={"name": "a.txt", "size": 2}, headers=bearer(alice)
    )
    ticket = await asked.json()
    await asyncio.sleep(2.2)

    late = await client.post(
        "/api/v1/files/direct-uploads/confirm",
        json={"upload_id": ticket["upload_id"]},
        headers=bearer(alice),
    )

    assert late.status == 403
    assert (await late.json())["error"]["code"] == "upload_expired"
