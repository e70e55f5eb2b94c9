"""Uploads straight to the object store (seed 003's flow): the client asks
for an upload giving the file's name and size, PUTs the bytes to the
store with the presigned request it gets, then confirms. Only then does
the server read the bytes back (size, then SHA-256 as they stream), file
them under their hash (identical bytes already there: no second copy)
and list and index the file exactly as an upload through the server.

Nothing is kept between asking and confirming: the ``upload_id`` carries
what was asked (owner, name, size, expiry, a nonce naming the staged
object) under the server's signature, so any instance can confirm it.
The nonce is recorded when the file is stored, so an upload is confirmed
once. Bytes never confirmed are collected once they are older than any
confirmation could be (see ``confirm_deadline``; app.py's upkeep).
"""

from __future__ import annotations

import base64
import binascii
import json
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from gortc.entities.errors import Conflict, Forbidden, InvalidInput
from gortc.entities.filenames import sanitize_filename
from gortc.entities.files import StoredFile
from gortc.usecases.files import FileService, SingleUse
from gortc.usecases.ports import BlobStore, Clock, Signer

# Changing what is signed changes this, so old upload ids stop matching.
_VERSION = "gortc direct upload v1"
DEFAULT_CONTENT_TYPE = "application/octet-stream"


@dataclass(frozen=True, slots=True)
class DirectUploadTicket:
    upload_id: str
    url: str
    method: str
    headers: dict[str, str]
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class _Claim:
    user_id: str
    name: str
    size: int
    expires: int
    nonce: str


class DirectUploadService:
    """Raises Conflict ``direct_upload_unavailable`` where the store takes no
    direct uploads; TooLarge ``file_too_large``/``quota_exceeded`` at asking
    and confirming, ``larger_than_declared`` at confirming; InvalidInput
    ``smaller_than_declared``, ``invalid_upload_id``; NotFound
    ``upload_missing``; Forbidden ``upload_expired``; Conflict ``url_used``."""

    def __init__(
        self,
        *,
        files: FileService,
        blobs: BlobStore,
        signer: Signer,
        clock: Clock,
        lifetime_seconds: int,
    ) -> None:
        self._files = files
        self._blobs = blobs
        self._signer = signer
        self._clock = clock
        self._lifetime = lifetime_seconds

    async def ask(
        self, user_id: str, name: str, size: int, content_type: str | None
    ) -> DirectUploadTicket:
        if not name.strip():
            raise InvalidInput("the name must not be empty", code="invalid_file_name")
        if size < 0:
            raise InvalidInput("size must be 0 or more", code="invalid_size")
        if not self._blobs.direct_uploads:
            raise Conflict(
                "this server keeps files on its own disk: upload through POST /api/v1/files",
                code="direct_upload_unavailable",
            )
        await self._files.check_fits(user_id, size)
        claim = _Claim(
            user_id=user_id,
            name=sanitize_filename(name),
            size=size,
            expires=int(self._clock.now().timestamp()) + self._lifetime,
            nonce=secrets.token_urlsafe(16),
        )
        request = await self._blobs.presign_upload(
            claim.nonce, size, content_type or DEFAULT_CONTENT_TYPE, self._lifetime
        )
        return DirectUploadTicket(
            upload_id=self._encode(claim),
            url=request.url,
            method=request.method,
            headers=request.headers,
            expires_at=datetime.fromtimestamp(claim.expires, UTC),
        )

    async def confirm(self, user_id: str, upload_id: str) -> StoredFile:
        claim = self._decode(upload_id)
        if claim.user_id != user_id:
            raise _invalid()  # someone else's: as if it did not exist
        deadline = self.confirm_deadline(claim.expires)
        if self._clock.now().timestamp() > deadline:
            raise Forbidden(
                "this upload was not confirmed in time; ask for a new one", code="upload_expired"
            )
        return await self._files.store_uploaded(
            user_id,
            claim.nonce,
            claim.name,
            claim.size,
            SingleUse(claim.nonce, datetime.fromtimestamp(deadline, UTC)),
        )

    def confirm_deadline(self, expires: int) -> int:
        """A PUT may start until ``expires``; its confirmation may come one
        lifetime later (a large file takes a while to send)."""
        return expires + self._lifetime

    def _encode(self, claim: _Claim) -> str:
        fields = [claim.user_id, claim.name, str(claim.size), str(claim.expires), claim.nonce]
        payload = json.dumps(fields, separators=(",", ":")).encode()
        body = base64.urlsafe_b64encode(payload).decode("ascii").rstrip("=")
        return f"{body}.{self._signer.sign([_VERSION, *fields])}"

    def _decode(self, upload_id: str) -> _Claim:
        body, _, signature = upload_id.partition(".")
        try:
            fields: Any = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
        except (binascii.Error, ValueError):
            raise _invalid() from None
        if (
            not isinstance(fields, list)
            or len(fields) != 5
            or not all(isinstance(field, str) for field in fields)
            or not self._signer.verify([_VERSION, *fields], signature)
        ):
            raise _invalid()
        user_id, name, size, expires, nonce = fields
        return _Claim(user_id, name, int(size), int(expires), nonce)


def _invalid() -> InvalidInput:
    return InvalidInput(
        "upload_id is not one this server gave you: use it exactly as it was given",
        code="invalid_upload_id",
    )
