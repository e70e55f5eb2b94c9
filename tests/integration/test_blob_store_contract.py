"""The BlobStore port's contract, on the local disk and on a real S3 server:
what the use cases rely on holds on both (tests/integration/blob_stores.py)."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from gortc.adapters.s3_blob_store import PART_BYTES
from gortc.entities.errors import Conflict, TooLarge
from gortc.usecases.ports import ServedAs
from tests.integration.blob_stores import BlobBackend


async def chunks_of(*parts: bytes) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


async def fetch(
    backend: BlobBackend, sha256: str, served: ServedAs
) -> tuple[bytes, dict[str, str]]:
    """The bytes and headers a client gets from where the store says they are."""
    location = await backend.store.locate(sha256, served, 60)
    if location.path is not None:
        return Path(location.path).read_bytes(), {}
    assert location.url is not None
    async with aiohttp.ClientSession() as http, http.get(location.url) as answer:
        assert answer.status == 200, await answer.text()
        return await answer.read(), dict(answer.headers)


async def test_put_stores_bytes_under_their_hash(blob_backend: BlobBackend) -> None:
    store = blob_backend.store
    data = b"hello, " * 1000

    sha256, size = await store.put(chunks_of(data[:10], data[10:]), max_size=len(data))

    assert (sha256, size) == (hashlib.sha256(data).hexdigest(), len(data))
    assert await store.read(sha256) == data
    assert await store.list_stored() == [sha256]


async def test_staged_bytes_are_invisible_until_promoted_and_kept_once(
    blob_backend: BlobBackend,
) -> None:
    store = blob_backend.store
    first = await store.stage(chunks_of(b"same bytes"), max_size=100)
    second = await store.stage(chunks_of(b"same bytes"), max_size=100)
    assert first.sha256 == second.sha256 and first.handle != second.handle
    assert await store.list_stored() == []

    await store.wait_durable([first, second])
    await store.promote_many([first, second])
    await store.discard(first)
    await store.discard(second)

    assert await store.list_stored() == [first.sha256]
    assert await store.read(first.sha256) == b"same bytes"
    # Discarded after promotion: nothing staged is left to collect.
    assert await store.remove_stale_staged(0) == 0


async def test_an_upload_past_its_limit_is_refused_and_leaves_nothing(
    blob_backend: BlobBackend,
) -> None:
    store = blob_backend.store
    with pytest.raises(TooLarge):
        await store.stage(chunks_of(b"x" * 60, b"x" * 60), max_size=100)
    assert await store.list_stored() == []
    assert await store.remove_stale_staged(0) == 0


async def test_a_large_upload_streams_in_parts(blob_backend: BlobBackend) -> None:
    # Past one part: on S3 a multipart upload, whose parts never sit in memory at once.
    part = bytes(range(256)) * 4096  # 1 MiB
    count = PART_BYTES // len(part) + 2
    sha256, size = await blob_backend.store.put(
        chunks_of(*[part] * count), max_size=count * len(part)
    )
    assert size == count * len(part)
    assert sha256 == hashlib.sha256(part * count).hexdigest()
    assert await blob_backend.store.read(sha256) == part * count


async def test_deleted_bytes_are_gone(blob_backend: BlobBackend) -> None:
    store = blob_backend.store
    kept, _ = await store.put(chunks_of(b"kept"), 10)
    gone, _ = await store.put(chunks_of(b"gone"), 10)

    await store.delete(gone)
    await store.delete(gone)  # twice is harmless

    assert await store.list_stored() == [kept]


async def test_a_client_gets_the_bytes_with_the_servers_headers(
    blob_backend: BlobBackend,
) -> None:
    sha256, _ = await blob_backend.store.put(chunks_of(b"%PDF-1.4 report"), 100)
    served = ServedAs(
        content_type="application/pdf",
        cache_control="private, no-cache",
        content_disposition="attachment; filename=\"r.pdf\"; filename*=UTF-8''r%C3%A9.pdf",
    )

    data, headers = await fetch(blob_backend, sha256, served)

    assert data == b"%PDF-1.4 report"
    if blob_backend.name == "s3":  # the disk's are set by the delivery layer
        assert headers["Content-Type"] == "application/pdf"
        assert headers["Content-Disposition"] == served.content_disposition
        assert headers["Cache-Control"] == "private, no-cache"


async def test_direct_uploads_only_where_the_store_offers_them(
    blob_backend: BlobBackend,
) -> None:
    store = blob_backend.store
    if blob_backend.name == "disk":
        assert not store.direct_uploads
        with pytest.raises(Conflict) as caught:
            await store.presign_upload("a" * 22, 5, "text/plain", 60)
        assert caught.value.code == "direct_upload_unavailable"
        return
    assert store.direct_uploads
    upload = await store.presign_upload("handle-of-22-chars_abc", 11, "text/plain", 60)
    async with (
        aiohttp.ClientSession() as http,
        http.request(
            upload.method, upload.url, data=b"hello world", headers=upload.headers
        ) as answer,
    ):
        assert answer.status == 200, await answer.text()
    seen: list[bytes] = []

    staged = await store.stage_uploaded("handle-of-22-chars_abc", 11, seen.append)

    assert staged is not None
    assert (staged.sha256, staged.size) == (hashlib.sha256(b"hello world").hexdigest(), 11)
    assert b"".join(seen) == b"hello world"
    await store.promote(staged)
    await store.discard(staged)
    assert await store.read(staged.sha256) == b"hello world"
    assert await store.remove_stale_staged(0) == 0
    assert await store.stage_uploaded("handle-never-uploaded-", 11, seen.append) is None


# (The disk takes no direct uploads: see the test above.)
@pytest.mark.parametrize("blob_backend", ["s3"], indirect=True)
async def test_a_direct_upload_larger_than_allowed_is_removed(blob_backend: BlobBackend) -> None:
    store = blob_backend.store
    upload = await store.presign_upload("too-large-upload-handle", 5, "text/plain", 60)
    async with (
        aiohttp.ClientSession() as http,
        http.put(upload.url, data=b"more than five", headers=upload.headers) as answer,
    ):
        assert answer.status == 200

    with pytest.raises(TooLarge):
        await store.stage_uploaded("too-large-upload-handle", 5, lambda chunk: None)

    assert await store.stage_uploaded("too-large-upload-handle", 5, lambda chunk: None) is None


async def test_abandoned_staged_bytes_are_collected_fresh_ones_kept(
    blob_backend: BlobBackend,
) -> None:
    store = blob_backend.store
    if blob_backend.name == "disk":
        # A staged file of a process that died: unlocked, so collected.
        incoming = Path(str(store._incoming))  # type: ignore[union-attr]
        incoming.mkdir(parents=True)
        (incoming / ("0" * 32)).write_bytes(b"left by a crash")
    else:
        await blob_backend.client.put_object(
            Bucket=blob_backend.bucket, Key="staging/never-confirmed-upload", Body=b"left"
        )
    live = await store.stage(chunks_of(b"being uploaded"), 100)

    assert await store.remove_stale_staged(3600) == (1 if blob_backend.name == "disk" else 0)
    if blob_backend.name == "s3":
        assert await store.remove_stale_staged(0) == 2  # both, past any age
    else:
        await store.discard(live)


async def test_only_the_stores_own_blobs_are_listed(blob_backend: BlobBackend) -> None:
    store = blob_backend.store
    sha256, _ = await store.put(chunks_of(b"ours"), 10)
    if blob_backend.name == "disk":
        stray = Path(store.path(sha256)).parent / "notes.txt"  # type: ignore[union-attr]
        stray.write_text("an operator's")
    else:
        for key in ("blobs/notes.txt", "elsewhere/" + "a" * 64):
            await blob_backend.client.put_object(Bucket=blob_backend.bucket, Key=key, Body=b"x")

    assert await store.list_stored() == [sha256]


async def test_a_large_upload_past_its_limit_leaves_no_parts(blob_backend: BlobBackend) -> None:
    part = bytes(1024 * 1024)
    limit = PART_BYTES + len(part) // 2
    with pytest.raises(TooLarge):
        await blob_backend.store.stage(chunks_of(*[part] * (PART_BYTES // len(part) + 1)), limit)
    assert await blob_backend.store.list_stored() == []
    if blob_backend.name == "s3":  # the multipart upload begun was aborted
        answer = await blob_backend.client.list_multipart_uploads(Bucket=blob_backend.bucket)
        assert answer.get("Uploads", []) == []
