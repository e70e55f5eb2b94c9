"""Signed URLs: a short-lived link that uploads one file, or downloads one,
with no other credential than its signature.

A URL names everything it allows in its query (the user it acts for, the
file's name and size or the file in its path, when it expires, a random
nonce) and carries an HMAC over those, the method and the path (see
``_fields``). Changing any of them breaks the signature. On use, the
signature is checked first, then the expiry, then, as at issue, that the
user is still enabled and (downloads) may still read the file, so taking
someone's access away also ends the download URLs they were given. An
upload URL stores its file once: its nonce is recorded in the transaction
that stores the file. Download URLs work any number of times until they
expire (a download may be resumed with Range requests).
"""

from __future__ import annotations

import re
import secrets
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import quote, urlencode

from gortc.entities.errors import Forbidden, InvalidInput, TooLarge
from gortc.entities.filenames import sanitize_filename
from gortc.entities.files import StoredFile
from gortc.usecases.files import FileService, IncomingFile, SingleUse, url_used
from gortc.usecases.ports import (
    BlobLocation,
    Clock,
    Repositories,
    ServedAs,
    Signer,
    UnitOfWork,
)

UPLOAD_PATH = "/api/v1/files/upload"
# Changing how fields are signed changes this, so old URLs stop matching.
_VERSION = "gortc signed url v1"
_NONCE = re.compile(r"[A-Za-z0-9_-]{16,64}")
_DIGITS = re.compile(r"[0-9]{1,15}")


def download_path(file_id: str) -> str:
    return f"/api/v1/files/{quote(file_id, safe='')}/download"


@dataclass(frozen=True, slots=True)
class SignedUrlSettings:
    lifetime_seconds: int = 600


@dataclass(frozen=True, slots=True)
class SignedUrl:
    url: str  # path and query, relative to the server (like content_url)
    method: str
    expires_at: datetime
    max_bytes: int | None = None  # an upload: exactly this many bytes


def _fields(
    method: str, path: str, user_id: str, name: str, size: str, expires: str, nonce: str
) -> list[str]:
    return [_VERSION, method, path, user_id, name, size, expires, nonce]


def upload_url(
    signer: Signer, *, user_id: str, name: str, size: int, expires: int, nonce: str
) -> str:
    """The upload URL for these values (also how tests make expired ones)."""
    signature = signer.sign(
        _fields("PUT", UPLOAD_PATH, user_id, name, str(size), str(expires), nonce)
    )
    query = {
        "user": user_id,
        "name": name,
        "size": str(size),
        "expires": str(expires),
        "nonce": nonce,
        "signature": signature,
    }
    return f"{UPLOAD_PATH}?{urlencode(query, quote_via=quote)}"


def download_url(signer: Signer, *, user_id: str, file_id: str, expires: int, nonce: str) -> str:
    path = download_path(file_id)
    signature = signer.sign(_fields("GET", path, user_id, "", "", str(expires), nonce))
    query = {"user": user_id, "expires": str(expires), "nonce": nonce, "signature": signature}
    return f"{path}?{urlencode(query, quote_via=quote)}"


@dataclass(frozen=True, slots=True)
class _Claim:
    """What a valid signature vouches for."""

    user_id: str
    expires_at: datetime
    nonce: str


class SignedUrlService:
    """Raises Forbidden ``invalid_signature`` (the URL is not one we made,
    or was changed), ``url_expired`` and ``account_disabled``; Conflict
    ``url_used``; TooLarge ``larger_than_declared`` and InvalidInput
    ``smaller_than_declared`` for an upload body of the wrong size; and what
    FileService raises (NotFound ``file_not_found``, quota and size limits)."""

    def __init__(
        self,
        *,
        uow: UnitOfWork,
        files: FileService,
        signer: Signer,
        clock: Clock,
        settings: SignedUrlSettings = SignedUrlSettings(),
    ) -> None:
        self._uow = uow
        self._files = files
        self._signer = signer
        self._clock = clock
        self._settings = settings

    # -- issuing ----------------------------------------------------------------

    async def issue_upload(self, user_id: str, name: str, size: int) -> SignedUrl:
        """A URL that stores one file of exactly ``size`` bytes as
        ``user_id``'s, named ``name`` (made safe as uploads' names are)."""
        if not name.strip():
            raise InvalidInput("the name must not be empty", code="invalid_file_name")
        if size < 0:
            raise InvalidInput("size must be 0 or more", code="invalid_size")
        await self._files.check_fits(user_id, size)
        expires = self._expiry()
        url = upload_url(
            self._signer,
            user_id=user_id,
            name=sanitize_filename(name),
            size=size,
            expires=expires,
            nonce=_nonce(),
        )
        return SignedUrl(url, "PUT", _time(expires), max_bytes=size)

    async def issue_download(self, user_id: str, file_id: str) -> SignedUrl:
        """A URL that downloads the file for as long as it lasts and
        ``user_id`` may read the file."""
        await self._files.get(user_id, file_id)
        expires = self._expiry()
        url = download_url(
            self._signer, user_id=user_id, file_id=file_id, expires=expires, nonce=_nonce()
        )
        return SignedUrl(url, "GET", _time(expires))

    def _expiry(self) -> int:
        return int(self._clock.now().timestamp()) + self._settings.lifetime_seconds

    # -- using ------------------------------------------------------------------

    async def upload(
        self, query: Mapping[str, str], chunks: AsyncIterator[bytes], *, length: int | None
    ) -> StoredFile:
        """Stores the body as the URL's file. ``length`` is the body's
        declared length, if any: a wrong one is refused before any byte is
        read. The body is counted as it streams too, and a body of any other
        size than the URL's stores nothing."""
        name = query.get("name", "")
        size_text = query.get("size", "")
        if not _DIGITS.fullmatch(size_text):
            raise _invalid_signature()
        claim = self._verify("PUT", UPLOAD_PATH, query, name=name, size=size_text)
        size = int(size_text)
        async with self._uow.reading() as repos:
            if await repos.used_upload_urls.is_used(claim.nonce):
                raise url_used()
            await _require_enabled(repos, claim.user_id)
        if length is not None:
            _check_length(length, size)

        async def one_file() -> AsyncIterator[IncomingFile]:
            yield IncomingFile(name, _exactly(chunks, size))

        [file] = await self._files.upload(
            claim.user_id, one_file(), single_use=SingleUse(claim.nonce, claim.expires_at)
        )
        return file

    async def download(
        self, file_id: str, query: Mapping[str, str], served: Callable[[StoredFile], ServedAs]
    ) -> tuple[StoredFile, BlobLocation]:
        """The file and where its bytes are, if the URL is good and its user
        may still read the file."""
        claim = self._verify("GET", download_path(file_id), query, name="", size="")
        async with self._uow.reading() as repos:
            await _require_enabled(repos, claim.user_id)
        return await self._files.content(claim.user_id, file_id, served)

    def _verify(
        self, method: str, path: str, query: Mapping[str, str], *, name: str, size: str
    ) -> _Claim:
        user_id = query.get("user", "")
        expires = query.get("expires", "")
        nonce = query.get("nonce", "")
        signature = query.get("signature", "")
        well_formed = bool(user_id) and _DIGITS.fullmatch(expires) and _NONCE.fullmatch(nonce)
        fields = _fields(method, path, user_id, name, size, expires, nonce)
        if not well_formed or not self._signer.verify(fields, signature):
            raise _invalid_signature()
        if int(expires) <= self._clock.now().timestamp():
            raise Forbidden("this URL has expired; ask for a new one", code="url_expired")
        return _Claim(user_id, _time(int(expires)), nonce)


def _invalid_signature() -> Forbidden:
    return Forbidden(
        "this URL's signature does not match it: use the URL exactly as it was given",
        code="invalid_signature",
    )


async def _require_enabled(repos: Repositories, user_id: str) -> None:
    user = await repos.users.get(user_id)
    if user is None or user.is_disabled:
        raise Forbidden("the account this URL was made for is disabled", code="account_disabled")


def _check_length(length: int, size: int) -> None:
    if length > size:
        raise _larger(size)
    if length < size:
        raise _smaller(size)


def _larger(size: int) -> TooLarge:
    return TooLarge(
        f"the body is larger than the {size} bytes this URL was made for",
        code="larger_than_declared",
    )


def _smaller(size: int) -> InvalidInput:
    return InvalidInput(
        f"the body is smaller than the {size} bytes this URL was made for",
        code="smaller_than_declared",
    )


async def _exactly(chunks: AsyncIterator[bytes], size: int) -> AsyncGenerator[bytes, None]:
    """The chunks, refused (before they are stored) once past ``size`` bytes,
    or at the end if short of it."""
    seen = 0
    async for chunk in chunks:
        seen += len(chunk)
        if seen > size:
            raise _larger(size)
        yield chunk
    if seen < size:
        raise _smaller(size)


def _nonce() -> str:
    return secrets.token_urlsafe(16)


def _time(epoch_seconds: int) -> datetime:
    return datetime.fromtimestamp(epoch_seconds, UTC)
