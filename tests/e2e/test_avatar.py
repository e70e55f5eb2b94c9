"""Profile pictures: checked by content, size-limited, served safely."""

from __future__ import annotations

import io
import struct
import zlib

from aiohttp import FormData
from aiohttp.test_utils import TestClient

from tests.conftest import bearer, login, register


def tiny_png() -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    pixels = zlib.compress(b"\x00\xff\x00\x00")
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")
    )


def form(data: bytes, filename: str, content_type: str) -> FormData:
    payload = FormData()
    payload.add_field("file", io.BytesIO(data), filename=filename, content_type=content_type)
    return payload


async def test_png_avatar_is_stored_and_served_with_its_type(client: TestClient) -> None:
    alice = await register(client, "alice")
    await register(client, "bob")
    tokens = await login(client, "alice")
    png = tiny_png()
    # The claimed type is a lie; the content decides.
    response = await client.put(
        "/api/v1/users/me/avatar", data=form(png, "me.gif", "image/gif"), headers=bearer(tokens)
    )
    assert response.status == 200, await response.text()
    avatar_url = (await response.json())["avatar_url"]
    assert avatar_url.startswith(f"/api/v1/users/{alice['id']}/avatar")

    bob = await login(client, "bob")
    served = await client.get(avatar_url, headers=bearer(bob))
    assert served.status == 200
    assert served.headers["Content-Type"] == "image/png"
    assert served.headers["X-Content-Type-Options"] == "nosniff"
    assert await served.read() == png


async def test_raw_image_body_is_accepted(client: TestClient) -> None:
    await register(client, "alice")
    tokens = await login(client, "alice")
    jpeg = b"\xff\xd8\xff\xe0" + b"\x00" * 100
    response = await client.put(
        "/api/v1/users/me/avatar",
        data=jpeg,
        headers=bearer(tokens) | {"Content-Type": "image/jpeg"},
    )
    assert response.status == 200


async def test_non_images_and_oversize_pictures_are_refused(client: TestClient) -> None:
    await register(client, "alice")
    tokens = await login(client, "alice")
    html = b"<html><script>alert(1)</script></html>"
    response = await client.put(
        "/api/v1/users/me/avatar", data=form(html, "x.png", "image/png"), headers=bearer(tokens)
    )
    assert response.status == 415
    huge = tiny_png() + b"\x00" * (2 * 1024 * 1024)
    response = await client.put(
        "/api/v1/users/me/avatar", data=form(huge, "big.png", "image/png"), headers=bearer(tokens)
    )
    assert response.status == 413
    me = await (await client.get("/api/v1/users/me", headers=bearer(tokens))).json()
    assert me["avatar_url"] is None


async def test_replacing_and_removing_the_avatar_frees_the_old_bytes(
    client: TestClient, config
) -> None:  # type: ignore[no-untyped-def]
    await register(client, "alice")
    tokens = await login(client, "alice")
    blobs = config.data_path / "blobs"
    await client.put(
        "/api/v1/users/me/avatar",
        data=form(tiny_png(), "a.png", "image/png"),
        headers=bearer(tokens),
    )
    webp = b"RIFF\x10\x00\x00\x00WEBPVP8 " + b"\x00" * 40
    await client.put(
        "/api/v1/users/me/avatar", data=form(webp, "b.webp", "image/webp"), headers=bearer(tokens)
    )
    stored = [path for path in blobs.rglob("*") if path.is_file()]
    assert len(stored) == 1
    response = await client.delete("/api/v1/users/me/avatar", headers=bearer(tokens))
    assert response.status == 204
    assert not [path for path in blobs.rglob("*") if path.is_file()]
    user_id = (await (await client.get("/api/v1/users/me", headers=bearer(tokens))).json())["id"]
    gone = await client.get(f"/api/v1/users/{user_id}/avatar", headers=bearer(tokens))
    assert gone.status == 404


async def test_a_picture_both_avatar_and_file_survives_removing_either(
    client: TestClient,
) -> None:
    # One blob, two references: removing the avatar must not take the
    # stored file's bytes, nor deleting the file the avatar's.
    from tests.e2e.file_client import upload

    await register(client, "alice")
    tokens = await login(client, "alice")
    png = tiny_png()
    response = await client.put(
        "/api/v1/users/me/avatar", data=form(png, "me.png", "image/png"), headers=bearer(tokens)
    )
    assert response.status == 200
    avatar_url = (await response.json())["avatar_url"]
    [stored] = await upload(client, tokens, ("me.png", png))

    removed = await client.delete("/api/v1/users/me/avatar", headers=bearer(tokens))
    assert removed.status == 204
    content = await client.get(stored["content_url"], headers=bearer(tokens))
    assert content.status == 200 and await content.read() == png

    response = await client.put(
        "/api/v1/users/me/avatar", data=form(png, "me.png", "image/png"), headers=bearer(tokens)
    )
    avatar_url = (await response.json())["avatar_url"]
    deleted = await client.delete(f"/api/v1/files/{stored['id']}", headers=bearer(tokens))
    assert deleted.status == 204
    picture = await client.get(avatar_url, headers=bearer(tokens))
    assert picture.status == 200 and await picture.read() == png
