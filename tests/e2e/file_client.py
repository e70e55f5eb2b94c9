"""Uploading to and reading from the file store in tests."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from aiohttp import FormData
from aiohttp.test_utils import TestClient
from yarl import URL

from tests.conftest import bearer


def form(*files: tuple[str, bytes]) -> FormData:
    # quote_fields=False: names as browsers send them (aiohttp would
    # otherwise percent-encode them).
    payload = FormData(quote_fields=False)
    for name, data in files:
        payload.add_field("file", io.BytesIO(data), filename=name, content_type="text/plain")
    return payload


async def upload(
    client: TestClient, tokens: dict[str, Any], *files: tuple[str, bytes]
) -> list[Any]:
    """The stored files, in the order sent; fails the test unless 201."""
    response = await client.post("/api/v1/files", data=form(*files), headers=bearer(tokens))
    assert response.status == 201, await response.text()
    body = await response.json()
    return body["items"] if len(files) > 1 else [body]


async def search(
    client: TestClient, tokens: dict[str, Any], q: str, **params: str
) -> dict[str, Any]:
    response = await client.get(
        "/api/v1/files/search", params={"q": q, **params}, headers=bearer(tokens)
    )
    assert response.status == 200, (q, await response.text())
    return await response.json()  # type: ignore[no-any-return]


async def search_raw(client: TestClient, tokens: dict[str, Any], encoded_q: str) -> int:
    """The status of a search whose q is sent exactly as given (percent-encoded)."""
    url = URL(f"/api/v1/files/search?q={encoded_q}", encoded=True)
    response = await client.get(url, headers=bearer(tokens))
    await response.read()
    return response.status


async def names_found(client: TestClient, tokens: dict[str, Any], q: str) -> list[str]:
    return [item["file"]["name"] for item in (await search(client, tokens, q))["items"]]


def stored_blobs(data_dir: Path) -> list[Path]:
    """Blob files on disk (anything left in incoming/ counts too)."""
    root = data_dir / "blobs"
    return sorted(path for path in root.rglob("*") if path.is_file()) if root.exists() else []
