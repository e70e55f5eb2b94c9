"""Bodies of the file store API, declared once: answers and OpenAPI schemas."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field, RootModel, StrictInt

from gortc.delivery.schemas import Request, Timestamp
from gortc.entities.files import SearchHit, StoredFile
from gortc.usecases.direct_uploads import DirectUploadTicket
from gortc.usecases.files import StorageUsage
from gortc.usecases.signed_urls import SignedUrl

_MARKERS = (
    "The matched words are between U+E000 and U+E001 (private-use characters, "
    "never markup): render the text as text and emphasise what lies between them."
)


class FileView(BaseModel):
    id: str
    name: str
    size: int = Field(description="Bytes")
    content_type: str = Field(description="Chosen by the server, never the client's claim")
    sha256: str
    created_at: Timestamp
    updated_at: Timestamp
    searchable: bool = Field(description="Whether the name and text are in your search")
    not_searchable_reason: str | None = Field(description="Why not, when not searchable")
    index_truncated: bool = Field(
        description="Only the start of a long text is searchable (files.index_max_bytes)"
    )
    content_url: str

    @classmethod
    def of(cls, file: StoredFile) -> FileView:
        return cls(
            id=file.id,
            name=file.name,
            size=file.size,
            content_type=file.content_type,
            sha256=file.sha256,
            created_at=file.created_at,
            updated_at=file.updated_at,
            searchable=file.searchable,
            not_searchable_reason=file.not_searchable_reason,
            index_truncated=file.index_truncated,
            content_url=f"/api/v1/files/{file.id}/content",
        )


class UploadedFiles(BaseModel):
    """The answer to an upload of several files, in the order sent."""

    items: list[FileView]


class UploadAnswer(RootModel[FileView | UploadedFiles]):
    """One file sent: that file. Several: ``{"items": [file…]}``."""


class FileList(BaseModel):
    items: list[FileView]
    next_cursor: str | None = Field(description="Pass as ?before= for the next page")


class RenameFile(Request):
    name: str = Field(
        min_length=1, max_length=1024, description="Made safe like uploaded names are"
    )


class UploadUrlRequest(Request):
    name: str = Field(
        min_length=1, max_length=1024, description="Made safe like uploaded names are"
    )
    size: StrictInt = Field(ge=0, le=2**53, description="The exact size of the file, bytes")
    content_type: str | None = Field(
        None,
        max_length=255,
        description="Accepted and ignored: the server decides the type by content, "
        "as for every upload",
    )


class UploadUrlView(BaseModel):
    url: str = Field(description="PUT the file's bytes (the raw body) here, without signing in")
    method: Literal["PUT"]
    expires_at: Timestamp
    max_bytes: int = Field(description="The body must be exactly this many bytes")

    @classmethod
    def of(cls, signed: SignedUrl) -> UploadUrlView:
        assert signed.max_bytes is not None
        return cls(
            url=signed.url, method="PUT", expires_at=signed.expires_at, max_bytes=signed.max_bytes
        )


class DownloadUrlView(BaseModel):
    url: str = Field(description="GET the file here, without signing in, until expires_at")
    method: Literal["GET"]
    expires_at: Timestamp

    @classmethod
    def of(cls, signed: SignedUrl) -> DownloadUrlView:
        return cls(url=signed.url, method="GET", expires_at=signed.expires_at)


class StorageUsageView(BaseModel):
    used_bytes: int
    files: int
    quota_bytes: int

    @classmethod
    def of(cls, usage: StorageUsage) -> StorageUsageView:
        return cls(used_bytes=usage.used_bytes, files=usage.files, quota_bytes=usage.quota_bytes)


class SearchHitView(BaseModel):
    file: FileView
    snippet: str = Field(description=f"A passage of the text around the matches. {_MARKERS}")
    name_highlight: str = Field(description=f"The name. {_MARKERS}")
    score: float = Field(
        description="1, 1/2, 1/3 … by position in the whole result (bm25, names weigh 10× the text)"
    )

    @classmethod
    def of(cls, hit: SearchHit) -> SearchHitView:
        return cls(
            file=FileView.of(hit.file),
            snippet=hit.snippet,
            name_highlight=hit.name_highlight,
            score=hit.score,
        )


class SearchResults(BaseModel):
    items: list[SearchHitView]
    next_cursor: str | None = Field(description="Pass as ?cursor= (with the same q) for more")


class DirectUploadRequest(Request):
    name: str = Field(
        min_length=1, max_length=1024, description="Made safe like uploaded names are"
    )
    size: StrictInt = Field(ge=0, le=2**53, description="The exact size of the file, bytes")
    content_type: str | None = Field(
        None,
        max_length=255,
        pattern=r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+/[!#$%&'*+.^_`|~0-9A-Za-z-]+$",
        description="type/subtype the PUT will carry (its Content-Type, which is signed); "
        "default application/octet-stream. The server decides the file's own type by "
        "content, as for every upload",
    )


class DirectUploadView(BaseModel):
    upload_id: str = Field(description="Give it to .../direct-uploads/confirm once the PUT is done")
    url: str = Field(description="The object store's address for the bytes (another origin)")
    method: Literal["PUT"]
    headers: dict[str, str] = Field(description="Send these headers with the PUT, as they are")
    expires_at: Timestamp = Field(description="The PUT must start before this")

    @classmethod
    def of(cls, ticket: DirectUploadTicket) -> DirectUploadView:
        return cls(
            upload_id=ticket.upload_id,
            url=ticket.url,
            method="PUT",
            headers=ticket.headers,
            expires_at=ticket.expires_at,
        )


class ConfirmDirectUpload(Request):
    upload_id: str = Field(
        min_length=1,
        max_length=4096,
        description="The upload_id of POST /api/v1/files/direct-uploads",
    )
