"""Content-addressed blobs in an S3-compatible object store (AWS S3,
DigitalOcean Spaces, MinIO, SeaweedFS…), through aiobotocore.

Keys: ``blobs/<sha256>`` for stored bytes, ``staging/<handle>`` for bytes
written but not yet promoted (an upload through the server, or one a
client PUT straight to the store with a presigned URL). Promotion is a
server-side copy, so the write transaction it runs in never waits for the
bytes to cross the network again. Clients download with short-lived
presigned GET URLs that carry the headers the server would have sent.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
import secrets
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AsyncExitStack
from datetime import UTC, datetime, timedelta
from typing import Any

from gortc.entities.errors import TooLarge
from gortc.usecases.ports import BlobLocation, DirectUpload, ServedAs, StagedBlob

BLOBS = "blobs/"
STAGING = "staging/"
_SHA256 = re.compile(r"[0-9a-f]{64}")
# Handles of this store (hex) and of direct uploads (URL-safe tokens).
_HANDLE = re.compile(r"[A-Za-z0-9_-]{16,64}")
# Parts of a multipart upload: S3's smallest is 5 MiB; a file below this
# size goes in one PutObject, held in memory meanwhile.
PART_BYTES = 8 * 1024 * 1024
_READ_BYTES = 256 * 1024
_MISSING = ("404", "NoSuchKey", "NotFound")


class S3BlobStore:
    """``open`` before use, ``close`` after (the HTTP client's connections)."""

    direct_uploads = True

    def __init__(
        self,
        *,
        bucket: str,
        endpoint: str = "",
        region: str = "",
        access_key: str = "",
        secret_key: str = "",
    ) -> None:
        self._bucket = bucket
        self._endpoint = endpoint
        self._region = region or "us-east-1"
        self._access_key = access_key
        self._secret_key = secret_key
        self._stack = AsyncExitStack()
        self._client: Any = None

    async def open(self) -> None:
        if self._client is not None:
            return
        # Imported here: a server storing files on disk never loads them.
        from aiobotocore.session import get_session
        from botocore.config import Config as BotoConfig

        session = get_session()
        config = BotoConfig(
            # Presigned URLs must be SigV4 (the default for presigning is
            # still v2 in botocore); path-style addressing works with every
            # S3-compatible server behind any endpoint.
            signature_version="s3v4",
            s3={"addressing_style": "path" if self._endpoint else "auto"},
            retries={"max_attempts": 3, "mode": "standard"},
            # An unreachable store is said so in seconds, not botocore's minute.
            connect_timeout=10,
        )
        self._client = await self._stack.enter_async_context(
            session.create_client(
                "s3",
                endpoint_url=self._endpoint or None,
                region_name=self._region,
                aws_access_key_id=self._access_key or None,
                aws_secret_access_key=self._secret_key or None,
                config=config,
            )
        )

    async def close(self) -> None:
        self._client = None
        await self._stack.aclose()

    async def check(self) -> None:
        """Raises if the bucket cannot be reached with these credentials."""
        await self._client.head_bucket(Bucket=self._bucket)

    # -- writing ----------------------------------------------------------------

    async def put(self, chunks: AsyncIterator[bytes], max_size: int) -> tuple[str, int]:
        staged = await self.stage(chunks, max_size)
        try:
            await self.promote(staged)
        finally:
            await self.discard(staged)
        return staged.sha256, staged.size

    async def stage(self, chunks: AsyncIterator[bytes], max_size: int) -> StagedBlob:
        handle = secrets.token_hex(16)
        key = STAGING + handle
        digest = hashlib.sha256()
        size = 0
        buffer = bytearray()
        upload: _Multipart | None = None
        try:
            async for chunk in chunks:
                size += len(chunk)
                if size > max_size:
                    raise TooLarge(f"the upload exceeds {max_size} bytes")
                digest.update(chunk)
                buffer += chunk
                if len(buffer) >= PART_BYTES:
                    if upload is None:
                        upload = await _Multipart.start(self._client, self._bucket, key)
                    await upload.add(bytes(buffer))
                    buffer.clear()
            if upload is None:
                await self._client.put_object(Bucket=self._bucket, Key=key, Body=bytes(buffer))
            else:
                if buffer:
                    await upload.add(bytes(buffer))
                await upload.complete()
        except BaseException:
            if upload is not None:
                await upload.abort()
            raise
        return StagedBlob(digest.hexdigest(), size, handle)

    async def wait_durable(self, staged: Sequence[StagedBlob]) -> None:
        """Nothing to wait for: the store answered once the bytes were kept."""

    async def promote(self, staged: StagedBlob) -> None:
        key = BLOBS + staged.sha256
        if await self._size_of(key) == staged.size:
            return  # identical bytes are there already: one copy is enough
        await self._client.copy_object(
            Bucket=self._bucket,
            Key=key,
            CopySource={"Bucket": self._bucket, "Key": self._staged_key(staged.handle)},
        )

    async def promote_many(self, staged: Sequence[StagedBlob]) -> None:
        for item in staged:
            await self.promote(item)

    async def discard(self, staged: StagedBlob) -> None:
        await self._client.delete_object(Bucket=self._bucket, Key=self._staged_key(staged.handle))

    # -- direct uploads ---------------------------------------------------------

    async def presign_upload(
        self, handle: str, size: int, content_type: str, expires_seconds: int
    ) -> DirectUpload:
        url = await self._client.generate_presigned_url(
            "put_object",
            Params={
                "Bucket": self._bucket,
                "Key": self._staged_key(handle),
                "ContentType": content_type,
            },
            ExpiresIn=expires_seconds,
            HttpMethod="PUT",
        )
        # The Content-Type is signed: the client must send it as it is.
        return DirectUpload(url=url, method="PUT", headers={"Content-Type": content_type})

    async def stage_uploaded(
        self, handle: str, max_size: int, feed: Callable[[bytes], None]
    ) -> StagedBlob | None:
        key = self._staged_key(handle)
        size = await self._size_of(key)
        if size is None:
            return None
        if size > max_size:
            await self._client.delete_object(Bucket=self._bucket, Key=key)
            raise TooLarge(f"the upload exceeds {max_size} bytes")
        # The bytes are read back once, to hash them: the server vouches for
        # the name it files them under, whatever the client claimed.
        answer = await self._get(key)
        if answer is None:  # removed meanwhile (a concurrent confirmation)
            return None
        digest = hashlib.sha256()
        seen = 0
        async with answer["Body"] as body:
            while chunk := await body.read(_READ_BYTES):
                seen += len(chunk)
                if seen > max_size:  # replaced meanwhile by a larger object
                    await self._client.delete_object(Bucket=self._bucket, Key=key)
                    raise TooLarge(f"the upload exceeds {max_size} bytes")
                digest.update(chunk)
                feed(chunk)
        return StagedBlob(digest.hexdigest(), seen, handle)

    # -- reading ----------------------------------------------------------------

    async def locate(self, sha256: str, served: ServedAs, expires_seconds: int) -> BlobLocation:
        params = {
            "Bucket": self._bucket,
            "Key": self._key(sha256),
            "ResponseContentType": served.content_type,
            "ResponseCacheControl": served.cache_control,
        }
        if served.content_disposition is not None:
            params["ResponseContentDisposition"] = served.content_disposition
        url = await self._client.generate_presigned_url(
            "get_object", Params=params, ExpiresIn=expires_seconds
        )
        return BlobLocation(url=url)

    async def read(self, sha256: str) -> bytes:
        answer = await self._client.get_object(Bucket=self._bucket, Key=self._key(sha256))
        async with answer["Body"] as body:
            data: bytes = await body.read()
        return data

    async def delete(self, sha256: str) -> None:
        await self._client.delete_object(Bucket=self._bucket, Key=self._key(sha256))

    async def list_stored(self) -> list[str]:
        return [key[len(BLOBS) :] async for key, _ in self._objects(BLOBS)]

    # -- upkeep -----------------------------------------------------------------

    async def remove_stale_staged(self, older_than_seconds: float = 86_400.0) -> int:
        """Deletes staged objects and unfinished multipart uploads older than
        ``older_than_seconds``: uploads through the server stage for seconds,
        and a direct upload cannot be confirmed after twice its URL's
        lifetime, so nothing older is still wanted (by any instance)."""
        from botocore.exceptions import ClientError

        cutoff = datetime.now(UTC) - timedelta(seconds=older_than_seconds)
        removed = 0
        async for key, modified in self._objects(STAGING):
            if modified < cutoff:
                await self._client.delete_object(Bucket=self._bucket, Key=key)
                removed += 1
        paginator = self._client.get_paginator("list_multipart_uploads")
        async for page in paginator.paginate(Bucket=self._bucket, Prefix=STAGING):
            for upload in page.get("Uploads", []):
                if upload["Initiated"] < cutoff:
                    with contextlib.suppress(ClientError):  # finished meanwhile
                        await self._client.abort_multipart_upload(
                            Bucket=self._bucket, Key=upload["Key"], UploadId=upload["UploadId"]
                        )
        return removed

    # -- helpers ----------------------------------------------------------------

    async def _objects(self, prefix: str) -> AsyncIterator[tuple[str, datetime]]:
        """(key, last modified) of the objects under ``prefix`` that are this
        store's own (a blob named by its hash, a staged upload by its handle)."""
        name = _SHA256 if prefix == BLOBS else _HANDLE
        paginator = self._client.get_paginator("list_objects_v2")
        async for page in paginator.paginate(Bucket=self._bucket, Prefix=prefix):
            for item in page.get("Contents", []):
                key = item["Key"]
                if name.fullmatch(key[len(prefix) :]):
                    yield key, item["LastModified"]

    async def _get(self, key: str) -> dict[str, Any] | None:
        from botocore.exceptions import ClientError

        try:
            answer: dict[str, Any] = await self._client.get_object(Bucket=self._bucket, Key=key)
        except ClientError as exc:
            if str(exc.response.get("Error", {}).get("Code")) in _MISSING:
                return None
            raise
        return answer

    async def _size_of(self, key: str) -> int | None:
        from botocore.exceptions import ClientError

        try:
            answer = await self._client.head_object(Bucket=self._bucket, Key=key)
        except ClientError as exc:
            if str(exc.response.get("Error", {}).get("Code")) in _MISSING:
                return None
            raise
        return int(answer["ContentLength"])

    @staticmethod
    def _key(sha256: str) -> str:
        if not _SHA256.fullmatch(sha256):  # never a key from elsewhere
            raise ValueError("not a SHA-256")
        return BLOBS + sha256

    @staticmethod
    def _staged_key(handle: str) -> str:
        if not _HANDLE.fullmatch(handle):
            raise ValueError("not a handle of this store")
        return STAGING + handle


class _Multipart:
    """One multipart upload, part by part."""

    def __init__(self, client: Any, bucket: str, key: str, upload_id: str) -> None:
        self._client = client
        self._bucket = bucket
        self._key = key
        self._id = upload_id
        self._parts: list[dict[str, Any]] = []

    @classmethod
    async def start(cls, client: Any, bucket: str, key: str) -> _Multipart:
        answer = await client.create_multipart_upload(Bucket=bucket, Key=key)
        return cls(client, bucket, key, answer["UploadId"])

    async def add(self, data: bytes) -> None:
        number = len(self._parts) + 1
        answer = await self._client.upload_part(
            Bucket=self._bucket, Key=self._key, UploadId=self._id, PartNumber=number, Body=data
        )
        self._parts.append({"PartNumber": number, "ETag": answer["ETag"]})

    async def complete(self) -> None:
        await self._client.complete_multipart_upload(
            Bucket=self._bucket,
            Key=self._key,
            UploadId=self._id,
            MultipartUpload={"Parts": self._parts},
        )

    async def abort(self) -> None:
        with contextlib.suppress(Exception):  # the upload failed already; say why, not this
            await self._client.abort_multipart_upload(
                Bucket=self._bucket, Key=self._key, UploadId=self._id
            )
