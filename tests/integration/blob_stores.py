"""The two blob stores, side by side, for the blob store contract suite:
every test that takes ``blob_backend`` runs once on the local disk and once
on a real S3 server (SeaweedFS, tests/object_store.py), each in a bucket
of its own."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from gortc.adapters.blob_store import DiskBlobStore
from gortc.adapters.s3_blob_store import S3BlobStore
from tests.object_store import ACCESS_KEY, REGION, SECRET_KEY, ObjectStore


@dataclass
class BlobBackend:
    name: str
    store: DiskBlobStore | S3BlobStore
    # The bucket's raw client (S3 only), for what a test checks beneath the store.
    client: Any = None
    bucket: str = ""


async def new_bucket(object_store: ObjectStore) -> str:
    """A fresh, empty bucket of the session's S3 server."""

    name = f"test-{secrets.token_hex(6)}"
    async with object_store.client() as client:
        await client.create_bucket(Bucket=name)
    return name


def s3_store(object_store: ObjectStore, bucket: str) -> S3BlobStore:
    return S3BlobStore(
        bucket=bucket,
        endpoint=object_store.endpoint,
        region=REGION,
        access_key=ACCESS_KEY,
        secret_key=SECRET_KEY,
    )


@pytest.fixture(params=["disk", "s3"])
async def blob_backend(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[BlobBackend]:
    if request.param == "disk":
        yield BlobBackend("disk", DiskBlobStore(tmp_path / "blobs"))
        return

    object_store: ObjectStore = request.getfixturevalue("object_store")
    bucket = await new_bucket(object_store)
    store = s3_store(object_store, bucket)
    await store.open()
    async with object_store.client() as client:
        yield BlobBackend("s3", store, client, bucket)
    await store.close()
