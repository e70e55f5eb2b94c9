"""Hostile file names, from upload to download: paths, control characters,
quotes, CR/LF header-injection attempts (raw, browser-encoded, RFC 5987
encoded, and through a rename), direction overrides, very long names. The
API stores the cleaned name (docs/api.md, "Names"), and the download's
head, read byte by byte off the socket, has exactly one well-formed
Content-Disposition and nothing injected."""

from __future__ import annotations

import asyncio
import re
from typing import Any
from urllib.parse import unquote

import pytest
from aiohttp.test_utils import TestClient

from gortc.entities.filenames import MAX_NAME_BYTES
from tests.conftest import bearer, login, register

DATA = b"the same few bytes\n"
BOUNDARY = "hostile-names-boundary"
# attachment; filename="<printable ASCII but " \ %>"; filename*=UTF-8''<RFC 3986 unreserved or %XX>
WELL_FORMED = re.compile(
    r"attachment; filename=\"(?P<fallback>[ !#-$&-\[\]-~]*)\"; "
    r"filename\*=UTF-8''(?P<encoded>(?:[A-Za-z0-9\-._~]|%[0-9A-F]{2})*)"
)


def multipart(disposition: bytes) -> bytes:
    """One file part whose Content-Disposition line is exactly ``disposition``."""
    return (
        f"--{BOUNDARY}\r\n".encode()
        + b'Content-Disposition: form-data; name="file"; '
        + disposition
        + b"\r\nContent-Type: text/plain\r\n\r\n"
        + DATA
        + f"\r\n--{BOUNDARY}--\r\n".encode()
    )


async def upload_raw(client: TestClient, tokens: dict[str, Any], disposition: bytes) -> str:
    response = await client.post(
        "/api/v1/files",
        data=multipart(disposition),
        headers=bearer(tokens) | {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"},
    )
    assert response.status == 201, await response.text()
    stored = await response.json()
    assert stored["size"] == len(DATA)
    return stored["id"]  # type: ignore[no-any-return]


async def download_head(client: TestClient, tokens: dict[str, Any], file_id: str) -> list[str]:
    """The head of the owner's download, as the bytes on the wire."""
    return await raw_head(
        client,
        f"/api/v1/files/{file_id}/content",
        f"Authorization: Bearer {tokens['access_token']}\r\n",
    )


async def raw_head(client: TestClient, target: str, headers: str = "") -> list[str]:
    """A GET's response head as the bytes on the wire, one entry per CRLF line."""
    assert client.server.port is not None
    reader, writer = await asyncio.open_connection("127.0.0.1", client.server.port)
    try:
        writer.write(
            f"GET {target} HTTP/1.1\r\nHost: 127.0.0.1\r\n{headers}"
            "Connection: close\r\n\r\n".encode()
        )
        await writer.drain()
        async with asyncio.timeout(5):
            head = await reader.readuntil(b"\r\n\r\n")
    finally:
        writer.close()
    assert all(byte < 0x80 for byte in head), head  # nothing but ASCII in a header
    lines = head.decode("ascii").split("\r\n")[:-2]
    assert lines[0] == "HTTP/1.1 200 OK", lines[0]
    for line in lines[1:]:
        # A bare CR or LF would start a header of its own in some parsers.
        assert "\r" not in line and "\n" not in line and ": " in line, line
    return lines[1:]


@pytest.fixture
async def alice(client: TestClient) -> dict[str, Any]:
    await register(client, "alice")
    return await login(client, "alice")


CASES = [
    # (what the client sends as the disposition's name part, the stored name)
    (b'filename="../../etc/passwd"', "passwd"),
    (b'filename="..\\\\..\\\\windows\\\\win.ini"', "win.ini"),
    (b'filename="a%0D%0ASet-Cookie: x=1"', "a  Set-Cookie_ x=1"),
    (b'filename="%22quoted%22.txt"', "_quoted_.txt"),
    (b"filename*=UTF-8''nul%00bell%07esc%1Bdel%7F.txt", "nulbellescdel.txt"),
    (b"filename*=UTF-8''line%0D%0ASet-Cookie%3A%20y%3D2.txt", "line  Set-Cookie_ y=2.txt"),
    (b"filename*=UTF-8''r%C3%A9sum%C3%A9%20%E2%98%83.pdf", "résumé ☃.pdf"),
    (b"filename*=UTF-8''invoice%E2%80%AEfdp.exe", "invoicefdp.exe"),
    (b'filename="CON.txt"', "_CON.txt"),
    (b'filename="..."', "untitled"),
]


@pytest.mark.parametrize(("disposition", "stored"), CASES)
async def test_a_hostile_name_is_stored_clean_and_downloads_in_one_header(
    client: TestClient, alice: dict[str, Any], disposition: bytes, stored: str
) -> None:
    file_id = await upload_raw(client, alice, disposition)
    listed = await (await client.get(f"/api/v1/files/{file_id}", headers=bearer(alice))).json()
    assert listed["name"] == stored
    head = await download_head(client, alice, file_id)
    names = [line.split(": ", 1)[0].lower() for line in head]
    assert names.count("content-disposition") == 1
    assert "set-cookie" not in names
    [disposition_line] = [line for line in head if line.lower().startswith("content-disposition")]
    match = WELL_FORMED.fullmatch(disposition_line.split(": ", 1)[1])
    assert match, disposition_line
    assert unquote(match["encoded"], errors="strict") == stored


async def test_a_raw_crlf_in_a_parts_header_is_refused_with_a_reason(
    client: TestClient, alice: dict[str, Any]
) -> None:
    # The CR LF ends the part's header line inside the quoted name: the
    # part's Content-Disposition cannot be read, and the upload is refused.
    response = await client.post(
        "/api/v1/files",
        data=multipart(b'filename="a\r\nSet-Cookie: x=1"'),
        headers=bearer(alice) | {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"},
    )
    assert response.status == 400
    assert "Set-Cookie" not in response.headers
    message = (await response.json())["error"]["message"]
    assert message == "the multipart body is malformed: a part's Content-Disposition cannot be read"
    listed = await (await client.get("/api/v1/files", headers=bearer(alice))).json()
    assert listed["items"] == []


async def test_a_rename_is_cleaned_like_an_upload(
    client: TestClient, alice: dict[str, Any]
) -> None:
    file_id = await upload_raw(client, alice, b'filename="plain.txt"')
    renamed = await client.patch(
        f"/api/v1/files/{file_id}",
        json={"name": 'x"\r\nSet-Cookie: z=3\u0000\\..\\evil.txt'},
        headers=bearer(alice),
    )
    assert renamed.status == 200, await renamed.text()
    assert (await renamed.json())["name"] == "evil.txt"
    empty = await client.patch(f"/api/v1/files/{file_id}", json={"name": ""}, headers=bearer(alice))
    assert empty.status == 400
    head = await download_head(client, alice, file_id)
    assert [line for line in head if line.lower().startswith("content-disposition")] == [
        "Content-Disposition: attachment; filename=\"evil.txt\"; filename*=UTF-8''evil.txt"
    ]


async def test_a_very_long_name_is_cut_to_255_bytes_keeping_its_extension(
    client: TestClient, alice: dict[str, Any]
) -> None:
    long_name = "ü" * 1000 + ".pdf"
    encoded = "".join(f"%{byte:02X}" for byte in long_name.encode())
    file_id = await upload_raw(client, alice, f"filename*=UTF-8''{encoded}".encode())
    listed = await (await client.get(f"/api/v1/files/{file_id}", headers=bearer(alice))).json()
    assert listed["name"].endswith(".pdf")
    assert len(listed["name"].encode()) <= MAX_NAME_BYTES
    head = await download_head(client, alice, file_id)
    [disposition] = [line for line in head if line.lower().startswith("content-disposition")]
    match = WELL_FORMED.fullmatch(disposition.split(": ", 1)[1])
    assert match and unquote(match["encoded"]) == listed["name"]


async def test_an_overlong_charset_part_is_a_400_not_a_500(
    client: TestClient, alice: dict[str, Any]
) -> None:
    # RFC 7578's _charset_ field, first in the form: aiohttp reads it itself.
    body = (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="_charset_"\r\n\r\n'.encode()
        + b"x" * 40
        + b"\r\n"
        + multipart(b'filename="a.txt"')
    )
    response = await client.post(
        "/api/v1/files",
        data=body,
        headers=bearer(alice) | {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"},
    )
    assert response.status == 400, await response.text()
    assert "malformed" in (await response.json())["error"]["message"]


async def test_a_signed_upload_urls_name_is_cleaned_and_its_signed_download_is_one_header(
    client: TestClient, alice: dict[str, Any]
) -> None:
    asked = await client.post(
        "/api/v1/files/upload-url",
        json={"name": "../a\r\nSet-Cookie: x=1\u202e.txt", "size": len(DATA)},
        headers=bearer(alice),
    )
    assert asked.status == 200, await asked.text()
    stored = await (await client.put((await asked.json())["url"], data=DATA)).json()
    assert stored["name"] == "a  Set-Cookie_ x=1.txt"
    signed = await client.post(f"/api/v1/files/{stored['id']}/download-url", headers=bearer(alice))
    head = await raw_head(client, (await signed.json())["url"])  # no credentials: the URL is
    dispositions = [line for line in head if line.lower().startswith("content-disposition")]
    assert dispositions == [
        'Content-Disposition: attachment; filename="a  Set-Cookie_ x=1.txt"; '
        "filename*=UTF-8''a%20%20Set-Cookie_%20x%3D1.txt"
    ]
    assert not any(line.lower().startswith("set-cookie") for line in head)
