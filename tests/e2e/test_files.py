"""The personal file store over HTTP: uploads stream to disk, downloads are
byte-exact (ranges too), identical bytes are stored once, limits refuse
whole uploads, and nobody but the owner can learn that a file exists."""

from __future__ import annotations

import hashlib
import os
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
from aiohttp.test_utils import TestClient

from gortc.app import create_app
from gortc.config import Config
from tests.conftest import ClientFactory, bearer, login, make_config, register
from tests.e2e.file_client import form, names_found, search, stored_blobs, upload


async def signed_in(client: TestClient, username: str) -> dict[str, Any]:
    await register(client, username)
    return await login(client, username)


async def usage(client: TestClient, tokens: dict[str, Any]) -> dict[str, Any]:
    response = await client.get("/api/v1/files/usage", headers=bearer(tokens))
    assert response.status == 200
    return await response.json()  # type: ignore[no-any-return]


async def test_upload_and_download_round_trip(client: TestClient) -> None:
    alice = await signed_in(client, "alice")
    text = "Grüße aus Zürich: the quarterly budget.\n".encode()
    [stored] = await upload(client, alice, ('Grüße 2024 "final".txt', text))
    assert stored["name"] == "Grüße 2024 _final_.txt"
    assert stored["size"] == len(text)
    assert stored["sha256"] == hashlib.sha256(text).hexdigest()
    assert stored["content_type"] == "text/plain; charset=utf-8"
    assert stored["searchable"] is True
    assert stored["not_searchable_reason"] is None
    assert set(stored) >= {"id", "name", "size", "content_type", "sha256", "created_at"}

    response = await client.get(stored["content_url"], headers=bearer(alice))
    assert response.status == 200
    assert await response.read() == text
    assert response.headers["Content-Type"] == "text/plain; charset=utf-8"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Content-Disposition"] == (
        'attachment; filename="Gr__e 2024 _final_.txt"; '
        "filename*=UTF-8''Gr%C3%BC%C3%9Fe%202024%20_final_.txt"
    )
    assert "sandbox" in response.headers["Content-Security-Policy"]

    metadata = await client.get(f"/api/v1/files/{stored['id']}", headers=bearer(alice))
    assert await metadata.json() == stored


async def test_a_large_file_streams_in_chunks_and_ranges_are_served(
    client: TestClient,
) -> None:
    alice = await signed_in(client, "alice")
    data = os.urandom(8 * 1024 * 1024 + 123)

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(data), 64 * 1024):
            yield data[start : start + 64 * 1024]

    with aiohttp.MultipartWriter("form-data") as body:
        part = body.append(chunks())  # no length: sent chunked as it is read
        part.set_content_disposition("form-data", name="file", filename="big.bin")
    response = await client.post("/api/v1/files", data=body, headers=bearer(alice))
    assert response.status == 201, await response.text()
    stored = await response.json()
    assert stored["size"] == len(data)
    assert stored["sha256"] == hashlib.sha256(data).hexdigest()
    assert stored["searchable"] is False
    assert stored["content_type"] == "application/octet-stream"

    download = await client.get(stored["content_url"], headers=bearer(alice))
    assert download.status == 200
    assert await download.read() == data

    ranged = await client.get(
        stored["content_url"], headers=bearer(alice) | {"Range": "bytes=5000000-5000099"}
    )
    assert ranged.status == 206
    assert ranged.headers["Content-Range"] == f"bytes 5000000-5000099/{len(data)}"
    assert await ranged.read() == data[5000000:5000100]
    tail = await client.get(stored["content_url"], headers=bearer(alice) | {"Range": "bytes=-10"})
    assert await tail.read() == data[-10:]


async def test_several_files_in_one_upload(client: TestClient) -> None:
    alice = await signed_in(client, "alice")
    stored = await upload(client, alice, ("a.txt", b"first"), ("b.md", b"second"), ("", b"x"))
    assert [file["name"] for file in stored] == ["a.txt", "b.md", "untitled"]
    listed = await (await client.get("/api/v1/files", headers=bearer(alice))).json()
    assert [file["name"] for file in listed["items"]] == ["untitled", "b.md", "a.txt"]
    assert (await usage(client, alice)) | {"quota_bytes": 0} == {
        "used_bytes": 12,
        "files": 3,
        "quota_bytes": 0,
    }


async def test_identical_bytes_are_stored_once_until_the_last_file_goes(
    client: TestClient, config: Config
) -> None:
    alice = await signed_in(client, "alice")
    bob = await signed_in(client, "bob")
    data = b"the same bytes, uploaded twice\n" * 100
    [mine] = await upload(client, alice, ("mine.txt", data))
    [his] = await upload(client, bob, ("his.txt", data))
    assert mine["sha256"] == his["sha256"]
    assert len(stored_blobs(config.data_path)) == 1

    assert (await client.delete(f"/api/v1/files/{mine['id']}", headers=bearer(alice))).status == 204
    assert len(stored_blobs(config.data_path)) == 1
    still = await client.get(his["content_url"], headers=bearer(bob))
    assert await still.read() == data

    assert (await client.delete(f"/api/v1/files/{his['id']}", headers=bearer(bob))).status == 204
    assert stored_blobs(config.data_path) == []
    # Each paid for their own copy; nobody's quota shows the sharing.
    assert (await usage(client, alice))["used_bytes"] == 0


async def limited_client(aiohttp_client: ClientFactory, tmp_path: Any) -> tuple[TestClient, Config]:
    config = make_config(tmp_path / "data", files={"max_file_bytes": 1000, "quota_bytes": 2500})
    return await aiohttp_client(create_app(config)), config


async def test_file_size_limit_refuses_and_keeps_nothing(
    aiohttp_client: ClientFactory, tmp_path: Any
) -> None:
    client, config = await limited_client(aiohttp_client, tmp_path)
    alice = await signed_in(client, "alice")
    response = await client.post(
        "/api/v1/files", data=form(("big.txt", b"x" * 1001)), headers=bearer(alice)
    )
    assert response.status == 413
    assert (await response.json())["error"]["code"] == "file_too_large"
    assert stored_blobs(config.data_path) == []
    assert (await usage(client, alice))["used_bytes"] == 0

    async def endless() -> AsyncIterator[bytes]:
        for _ in range(50):
            yield b"y" * 65536

    # A long stream is cut at the first byte too many.
    with aiohttp.MultipartWriter("form-data") as body:
        body.append(endless()).set_content_disposition("form-data", name="file", filename="y")
    response = await client.post("/api/v1/files", data=body, headers=bearer(alice))
    assert response.status == 413
    assert stored_blobs(config.data_path) == []
    [exact] = await upload(client, alice, ("exact.txt", b"x" * 1000))
    assert exact["size"] == 1000


async def test_quota_refuses_the_whole_upload_and_keeps_nothing(
    aiohttp_client: ClientFactory, tmp_path: Any
) -> None:
    client, config = await limited_client(aiohttp_client, tmp_path)
    alice = await signed_in(client, "alice")
    await upload(client, alice, ("one.txt", b"1" * 900), ("two.txt", b"2" * 900))
    before = await usage(client, alice)
    assert before == {"used_bytes": 1800, "files": 2, "quota_bytes": 2500}
    blobs_before = stored_blobs(config.data_path)

    # The first file fits, the second does not: neither is kept.
    response = await client.post(
        "/api/v1/files",
        data=form(("three.txt", b"3" * 500), ("four.txt", b"4" * 900)),
        headers=bearer(alice),
    )
    assert response.status == 413
    error = (await response.json())["error"]
    assert error["code"] == "quota_exceeded"
    assert "quota" in error["message"]
    assert await usage(client, alice) == before
    assert stored_blobs(config.data_path) == blobs_before
    assert await names_found(client, alice, "three OR four") == []
    listed = await client.get("/api/v1/files", headers=bearer(alice))
    assert len((await listed.json())["items"]) == 2

    # Deleting makes room again.
    first = (await listed.json())["items"][0]
    await client.delete(f"/api/v1/files/{first['id']}", headers=bearer(alice))
    await upload(client, alice, ("three.txt", b"3" * 500))


async def test_uploads_that_are_not_file_forms_are_refused(client: TestClient) -> None:
    alice = await signed_in(client, "alice")
    response = await client.post("/api/v1/files", data=b"raw", headers=bearer(alice))
    assert response.status == 415
    with aiohttp.MultipartWriter("form-data") as empty:
        empty.append("value").set_content_disposition("form-data", name="other")
    response = await client.post("/api/v1/files", data=empty, headers=bearer(alice))
    assert response.status == 400
    assert (await response.json())["error"]["code"] == "missing_file"
    # RFC 7578 deprecates encoded parts; they cannot be decoded chunk by chunk.
    encoded = (
        b"--b\r\nContent-Disposition: form-data; name=file; filename=x.txt\r\n"
        b"Content-Transfer-Encoding: base64\r\n\r\neHl6\r\n--b--\r\n"
    )
    response = await client.post(
        "/api/v1/files",
        data=encoded,
        headers=bearer(alice) | {"Content-Type": "multipart/form-data; boundary=b"},
    )
    assert response.status == 415
    truncated = b"--b\r\nContent-Disposition: form-data; name=file; filename=x.txt\r\n\r\nab"
    response = await client.post(
        "/api/v1/files",
        data=truncated,
        headers=bearer(alice) | {"Content-Type": "multipart/form-data; boundary=b"},
    )
    assert response.status == 400
    assert (await usage(client, alice))["files"] == 0


async def test_list_is_newest_first_with_a_cursor(client: TestClient) -> None:
    alice = await signed_in(client, "alice")
    ids = []
    for index in range(5):
        [stored] = await upload(client, alice, (f"f{index}.txt", f"file {index}".encode()))
        ids.append(stored["id"])
    first = await (await client.get("/api/v1/files?limit=3", headers=bearer(alice))).json()
    assert [item["id"] for item in first["items"]] == ids[::-1][:3]
    second = await (
        await client.get(
            f"/api/v1/files?limit=3&before={first['next_cursor']}", headers=bearer(alice)
        )
    ).json()
    assert [item["id"] for item in second["items"]] == ids[::-1][3:]
    assert second["next_cursor"] is None


async def test_rename_changes_the_name_everywhere(client: TestClient) -> None:
    alice = await signed_in(client, "alice")
    [stored] = await upload(client, alice, ("old.txt", b"contents"))
    response = await client.patch(
        f"/api/v1/files/{stored['id']}", json={"name": "../new\u202e.txt"}, headers=bearer(alice)
    )
    assert response.status == 200
    renamed = await response.json()
    assert renamed["name"] == "new.txt"
    assert renamed["updated_at"] > stored["updated_at"]
    assert renamed["sha256"] == stored["sha256"]
    download = await client.get(stored["content_url"], headers=bearer(alice))
    assert "new.txt" in download.headers["Content-Disposition"]
    blank = await client.patch(
        f"/api/v1/files/{stored['id']}", json={"name": "  "}, headers=bearer(alice)
    )
    assert blank.status == 400
    assert (await blank.json())["error"]["code"] == "invalid_file_name"


async def test_delete_removes_the_file(client: TestClient, config: Config) -> None:
    alice = await signed_in(client, "alice")
    [stored] = await upload(client, alice, ("gone.txt", b"soon gone"))
    assert (
        await client.delete(f"/api/v1/files/{stored['id']}", headers=bearer(alice))
    ).status == 204
    for method, path in [
        ("GET", f"/api/v1/files/{stored['id']}"),
        ("GET", stored["content_url"]),
        ("DELETE", f"/api/v1/files/{stored['id']}"),
    ]:
        response = await client.request(method, path, headers=bearer(alice))
        assert response.status == 404, (method, path)
    assert stored_blobs(config.data_path) == []
    assert (await usage(client, alice))["files"] == 0


async def test_another_user_cannot_see_or_touch_my_files(client: TestClient) -> None:
    alice = await signed_in(client, "alice")
    bob = await signed_in(client, "bob")
    [secret] = await upload(client, alice, ("secret plans.txt", b"the quarterly budget"))
    missing = "01ARZ3NDEKTSV4RRFFQ69G5FAV"
    for file_id in (secret["id"], missing):
        answers = []
        for method, path, body in [
            ("GET", f"/api/v1/files/{file_id}", None),
            ("GET", f"/api/v1/files/{file_id}/content", None),
            ("PATCH", f"/api/v1/files/{file_id}", {"name": "mine now.txt"}),
            ("DELETE", f"/api/v1/files/{file_id}", None),
        ]:
            response = await client.request(method, path, json=body, headers=bearer(bob))
            answers.append((response.status, await response.json()))
        assert {status for status, _ in answers} == {404}
        # Byte for byte what a file that does not exist answers.
        assert {error["error"]["code"] for _, error in answers} == {"file_not_found"}
    listed = await (await client.get("/api/v1/files", headers=bearer(bob))).json()
    assert listed["items"] == []
    for q in ("quarterly budget", "secret", "plans", "budg*", "name:secret"):
        assert (await search(client, bob, q))["items"] == []
    assert (await usage(client, bob))["used_bytes"] == 0
    # And alice's file is untouched.
    assert await names_found(client, alice, "quarterly") == ["secret plans.txt"]


async def test_binary_content_is_stored_but_reported_unsearchable(client: TestClient) -> None:
    alice = await signed_in(client, "alice")
    png = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR budget"
    [stored] = await upload(client, alice, ("budget chart.png", png))
    assert stored["searchable"] is False
    assert "not text" in stored["not_searchable_reason"]
    assert stored["content_type"] == "image/png"
    assert await names_found(client, alice, "budget") == []
    download = await client.get(stored["content_url"], headers=bearer(alice))
    assert await download.read() == png
    # Text dressed up as HTML is served as plain text.
    [page] = await upload(client, alice, ("page.html", b"<script>alert(1)</script>"))
    served = await client.get(page["content_url"], headers=bearer(alice))
    assert served.headers["Content-Type"] == "text/plain; charset=utf-8"
    assert served.headers["Content-Disposition"].startswith("attachment;")


async def test_files_need_a_sign_in(client: TestClient) -> None:
    for method, path in [
        ("GET", "/api/v1/files"),
        ("POST", "/api/v1/files"),
        ("GET", "/api/v1/files/search?q=x"),
        ("GET", "/api/v1/files/usage"),
        ("GET", "/api/v1/files/01ARZ3NDEKTSV4RRFFQ69G5FAV/content"),
    ]:
        response = await client.request(method, path)
        assert response.status == 401, (method, path)
