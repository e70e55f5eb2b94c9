"""The web client on a server whose files are in an object store (a real
SeaweedFS on another origin), in real Chromium: the Files view and the
composer upload straight to the store with progress (the page's CSP and
the store's CORS let the PUT through), the preview reads the text through
the download redirect, a refused file shows the server's reason, and the
avatar comes from the store."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.e2e.server_process import ServerProcess, start_server
from tests.e2e.web import create_group, expect, sign_up
from tests.integration.blob_stores import new_bucket
from tests.object_store import ACCESS_KEY, REGION, SECRET_KEY, ObjectStore

MAX_FILE_BYTES = 2000
NOTES = "Minutes of the zebra meeting.\nThe quarterly budget is approved.\n"
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082"
)


@pytest.fixture
async def server(tmp_path: Path, object_store: ObjectStore) -> AsyncIterator[ServerProcess]:

    bucket = await new_bucket(object_store)
    running = await start_server(
        tmp_path / "data",
        GORTC_AUTH_BCRYPT_ROUNDS="4",
        GORTC_LIMITS_ENABLED="false",
        GORTC_FILES_MAX_FILE_BYTES=str(MAX_FILE_BYTES),
        GORTC_STORAGE_URL=f"s3://{bucket}",
        GORTC_STORAGE_ENDPOINT=object_store.endpoint,
        GORTC_STORAGE_REGION=REGION,
        GORTC_STORAGE_ACCESS_KEY=ACCESS_KEY,
        GORTC_STORAGE_SECRET_KEY=SECRET_KEY,
    )
    # The operator's step of docs/deploy.md: the bucket lets the site's
    # origin, and no other, PUT and GET (SeaweedFS otherwise allows any).
    async with object_store.client() as client:
        await client.put_bucket_cors(
            Bucket=bucket,
            CORSConfiguration={
                "CORSRules": [
                    {
                        "AllowedOrigins": [running.url.rstrip("/")],
                        "AllowedMethods": ["PUT", "GET"],
                        "AllowedHeaders": ["content-type"],
                        "ExposeHeaders": ["ETag"],
                        "MaxAgeSeconds": 3600,
                    }
                ]
            },
        )
    # The rule holds: another site's browser would be refused.
    async with (
        aiohttp.ClientSession() as http,
        http.options(
            f"{object_store.endpoint}/{bucket}/staging/x",
            headers={"Origin": "http://elsewhere.example", "Access-Control-Request-Method": "PUT"},
        ) as preflight,
    ):
        assert "Access-Control-Allow-Origin" not in preflight.headers
    yield running
    await running.stop()


def row(page: Any, name: str) -> Any:
    return page.locator("#file-list li.file-row").filter(
        has=page.locator(".file-name", has_text=re.compile(f"^{re.escape(name)}$"))
    )


def upload(page: Any, name: str) -> Any:
    return page.locator(".upload-list li.upload").filter(has_text=name)


async def test_files_go_straight_to_the_store_and_come_back(
    server: ServerProcess, browser: Any, object_store: ObjectStore
) -> None:
    alice = await sign_up(browser, server.url, "alice")
    page = alice.page
    puts: list[str] = []
    page.on(
        "request",
        lambda request: puts.append(request.url) if request.method == "PUT" else None,
    )
    await page.get_by_role("link", name="Files").click()
    await expect(page.get_by_role("heading", name="Files", exact=True)).to_be_visible()

    await page.locator("#files-input").set_input_files(
        [
            {"name": "notes.txt", "mimeType": "text/plain", "buffer": NOTES.encode()},
            {"name": "big.txt", "mimeType": "text/plain", "buffer": b"x" * (MAX_FILE_BYTES + 1)},
        ]
    )

    await expect(upload(page, "notes.txt").locator(".upload-status")).to_have_text("Uploaded")
    await expect(upload(page, "notes.txt").locator("progress")).to_have_js_property("value", 1)
    # The bytes went to the store's origin, not the server's.
    assert [url.startswith(object_store.endpoint + "/") for url in puts] == [True]
    # Refused when asked, before a byte was sent: the server's reason.
    refused = upload(page, "big.txt").locator(".upload-status")
    await expect(refused).to_contain_text(f"{MAX_FILE_BYTES} bytes")
    await expect(refused).to_have_attribute("role", "alert")
    notes = row(page, "notes.txt")
    await expect(notes).to_be_visible()
    await expect(notes.locator(".file-badge")).to_have_count(0)  # searchable

    # The preview follows the download's redirect to the store.
    await notes.get_by_role("button", name="notes.txt", exact=True).click()
    dialog = page.get_by_role("dialog", name="notes.txt")
    await expect(dialog.locator("pre")).to_have_text(NOTES)
    await page.keyboard.press("Escape")

    # A composer attachment takes the same way; the picture is shown from the store.
    await page.get_by_role("link", name="Chat").click()
    await create_group(alice, "Crew")
    await page.locator("#attach-input").set_input_files(
        [{"name": "pixel.png", "mimeType": "image/png", "buffer": PNG}]
    )
    await expect(page.locator("#composer-files li.file-chip.ready")).to_have_count(1)
    await alice.send("see the pixel")
    image = alice.message("see the pixel").get_by_role("img", name="pixel.png")
    await expect(image).to_be_visible()
    assert await image.evaluate("(img) => img.complete && img.naturalWidth === 1")
    assert len(puts) == 2 and puts[1].startswith(object_store.endpoint + "/")

    # A profile picture, shown from the store.
    picture = await page.evaluate(
        """async (bytes) => {
            const form = new FormData();
            form.append("file", new File([new Uint8Array(bytes)], "me.png", { type: "image/png" }));
            const answer = await fetch("/api/v1/users/me/avatar", { method: "PUT", body: form });
            const me = await answer.json();
            const img = new Image();
            img.src = me.avatar_url;
            await img.decode();
            return img.naturalWidth;
        }""",
        list(PNG),
    )
    assert picture == 1
    assert [p for p in alice.problems if not re.search(r"status of 413", p)] == []
