"""/api/v1/files: the caller's own files and the search among them."""

from __future__ import annotations

import warnings
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from urllib.parse import quote

from aiohttp import BodyPartReader, ClientPayloadError, MultipartReader, web
from aiohttp.multipart import BadContentDispositionHeader

from gortc.delivery.auth import authenticate
from gortc.delivery.bodies import json_response, read_json
from gortc.delivery.file_schemas import (
    FileList,
    FileView,
    RenameFile,
    SearchHitView,
    SearchResults,
    StorageUsageView,
    UploadAnswer,
    UploadedFiles,
)
from gortc.delivery.keys import FILES
from gortc.delivery.queries import IdCursor, Limit, text_parameter
from gortc.delivery.routing import ApiRoute
from gortc.entities.errors import InvalidInput, UnsupportedMediaType
from gortc.entities.files import StoredFile
from gortc.usecases.files import MAX_QUERY_CHARS, IncomingFile
from gortc.usecases.ports import BlobLocation, ServedAs

_LIST_LIMIT = Limit(default=50, maximum=200)
_BEFORE = IdCursor("before")
_SEARCH_LIMIT = Limit(default=20, maximum=100)

# Big enough that writing a chunk (in a worker thread) costs little per byte.
CHUNK_BYTES = 256 * 1024
_PLAIN_ENCODINGS = ("", "binary", "8bit", "7bit", "identity")


async def upload_files(request: web.Request) -> web.Response:
    principal = await authenticate(request)
    if request.content_type != "multipart/form-data":
        raise UnsupportedMediaType(
            "send files as multipart/form-data, each in a field named 'file'"
        )
    try:
        reader = await request.multipart()
    except (ValueError, AssertionError) as exc:
        raise InvalidInput(f"the multipart body is malformed: {exc}") from None
    files = await request.app[FILES].upload(principal.user_id, _file_parts(reader))
    if len(files) == 1:
        return json_response(UploadAnswer(FileView.of(files[0])), status=201)
    return json_response(
        UploadAnswer(UploadedFiles(items=[FileView.of(file) for file in files])), status=201
    )


async def _file_parts(reader: MultipartReader) -> AsyncIterator[IncomingFile]:
    """Every part named ``file``, streamed; other fields are skipped."""
    while True:
        with reading_body():
            part = await reader.next()
        if part is None:
            return
        if not isinstance(part, BodyPartReader):
            raise InvalidInput("nested multipart bodies are not accepted; send one part per file")
        # The part's Content-Disposition is parsed here. One aiohttp cannot
        # read is only a warning to it (and the part would be skipped): a
        # 400 tells the client what is wrong. (No await inside: the warning
        # filter changes for this synchronous block only.)
        with reading_body(), warnings.catch_warnings():
            warnings.simplefilter("error", BadContentDispositionHeader)
            name, filename = part.name, part.filename
        if name == "file":
            # Decoding base64 or gzip chunk by chunk is not possible reliably;
            # browsers and HTTP libraries never encode form parts anyway.
            for header in ("Content-Transfer-Encoding", "Content-Encoding"):
                if part.headers.get(header, "").lower() not in _PLAIN_ENCODINGS:
                    raise UnsupportedMediaType(f"file parts must not have a {header}")
            yield IncomingFile(_form_filename(filename), _chunks(part))
        with reading_body():
            await part.release()  # a field we skip, or what the service left unread


def _form_filename(raw: str | None) -> str | None:
    # Browsers write '"', CR and LF of a name as %22, %0D and %0A (the HTML
    # standard's form encoding) and everything else as it is, so only those
    # three are decoded: "50%25 off.txt" stays what its owner called it.
    # (aiohttp's FormData percent-encodes whole names unless quote_fields=False.)
    if raw is None:
        return None
    return raw.replace("%22", '"').replace("%0D", "\r").replace("%0A", "\n")


async def _chunks(part: BodyPartReader) -> AsyncIterator[bytes]:
    while True:
        with reading_body():
            chunk = await part.read_chunk(CHUNK_BYTES)
        if not chunk:
            return
        yield chunk


@contextmanager
def reading_body() -> Iterator[None]:
    """A garbled body is the client's mistake (400), and so is one cut short."""
    try:
        yield
    except (ValueError, AssertionError) as exc:
        raise InvalidInput(f"the multipart body is malformed: {exc}") from None
    except BadContentDispositionHeader:
        raise InvalidInput(
            "the multipart body is malformed: a part's Content-Disposition cannot be read"
        ) from None
    except RuntimeError as exc:
        # aiohttp's multipart reader raises it for a body's bad declared
        # encodings, e.g. an overlong _charset_ part.
        raise InvalidInput(f"the multipart body is malformed: {exc}") from None
    except (ClientPayloadError, ConnectionError):
        raise InvalidInput(
            "the upload ended before its last byte", code="incomplete_upload"
        ) from None


async def list_files(request: web.Request) -> web.Response:
    principal = await authenticate(request)
    limit = _LIST_LIMIT.read(request)
    files = await request.app[FILES].list_mine(
        principal.user_id, limit=limit, before=_BEFORE.read(request)
    )
    next_cursor = files[-1].id if len(files) == limit else None
    return json_response(
        FileList(items=[FileView.of(file) for file in files], next_cursor=next_cursor)
    )


async def storage_usage(request: web.Request) -> web.Response:
    principal = await authenticate(request)
    usage = await request.app[FILES].usage(principal.user_id)
    return json_response(StorageUsageView.of(usage))


async def search_files(request: web.Request) -> web.Response:
    principal = await authenticate(request)
    limit = _SEARCH_LIMIT.read(request)
    cursor = request.query.get("cursor") or request.query.get("before") or None
    page = await request.app[FILES].search(
        principal.user_id, request.query.get("q", ""), limit=limit, cursor=cursor
    )
    return json_response(
        SearchResults(
            items=[SearchHitView.of(hit) for hit in page.hits], next_cursor=page.next_cursor
        )
    )


async def get_file(request: web.Request) -> web.Response:
    principal = await authenticate(request)
    file = await request.app[FILES].get(principal.user_id, request.match_info["file_id"])
    return json_response(FileView.of(file))


async def download_file(request: web.Request) -> web.StreamResponse:
    principal = await authenticate(request)
    file, location = await request.app[FILES].content(
        principal.user_id, request.match_info["file_id"], served_as_download
    )
    return blob_response(location, served_as_download(file))


def served_as_download(file: StoredFile) -> ServedAs:
    """Every download: an attachment, typed by the server, never rendered."""
    return ServedAs(
        content_type=file.content_type,
        cache_control="private, no-cache",
        content_disposition=attachment(file.name),
    )


def blob_response(location: BlobLocation, served: ServedAs) -> web.StreamResponse:
    """The bytes from the server's disk, or a redirect to the object store's
    short-lived URL, which answers with the same headers (``served``)."""
    if location.url is not None:
        # The URL changes with every answer: the redirect is not cached.
        return web.Response(
            status=302, headers={"Location": location.url, "Cache-Control": "no-store"}
        )
    if location.path is None:
        raise RuntimeError("a blob location names neither a file nor a URL")
    headers = {"Content-Type": served.content_type, "Cache-Control": served.cache_control}
    if served.content_disposition is not None:
        headers["Content-Disposition"] = served.content_disposition
        # Should a browser ever render a download, it runs nothing and loads nothing.
        headers["Content-Security-Policy"] = "sandbox; default-src 'none'; frame-ancestors 'none'"
    # FileResponse streams from disk and answers Range requests (206).
    return web.FileResponse(location.path, headers=headers)


def attachment(name: str) -> str:
    """Content-Disposition for a download (RFC 6266): the exact name in
    ``filename*`` (UTF-8, percent-encoded) and an ASCII stand-in for old
    clients, so no character of a name can break out of the header."""
    fallback = "".join(char if " " <= char <= "~" and char not in '"\\%' else "_" for char in name)
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(name, safe='')}"


async def rename_file(request: web.Request) -> web.Response:
    principal = await authenticate(request)
    body = await read_json(request, RenameFile)
    file = await request.app[FILES].rename(
        principal.user_id, request.match_info["file_id"], body.name
    )
    return json_response(FileView.of(file))


async def delete_file(request: web.Request) -> web.Response:
    principal = await authenticate(request)
    await request.app[FILES].delete(principal.user_id, request.match_info["file_id"])
    return web.Response(status=204)


_TAG = "files"
_FILES = "/api/v1/files"
_FILE = "/api/v1/files/{file_id}"
_UPLOAD: dict[str, object] = {
    "multipart/form-data": {
        "schema": {
            "type": "object",
            "properties": {
                # Any value is some bytes once in a part, and any bytes are a
                # file: only "no part at all" (an empty list) is refused.
                "file": {
                    "not": {"type": "array", "maxItems": 0},
                    "contentMediaType": "application/octet-stream",
                    "description": "One part per file, its bytes as they are (any type; "
                    "its filename is the file's name); repeat the field for several files. "
                    "Parts with other names are skipped.",
                }
            },
            "required": ["file"],
        }
    }
}

# search and usage before {file_id}, which would otherwise take their names.
ROUTES = [
    ApiRoute(
        "POST",
        _FILES,
        upload_files,
        "Upload files",
        _TAG,
        status=201,
        request_content=_UPLOAD,
        response=UploadAnswer,
        errors=(400, 413, 415),
        description=(
            "Each part named 'file' is one file, streamed to disk. Text (UTF-8, "
            "UTF-16 with BOM, or Windows-1252 for text extensions) is made searchable; "
            "other content is stored with searchable false. All files of the request "
            "are stored, or none: 413 file_too_large (files.max_file_bytes) or "
            "quota_exceeded (files.quota_bytes)."
        ),
    ),
    ApiRoute(
        "GET",
        _FILES,
        list_files,
        "My files, newest first",
        _TAG,
        response=FileList,
        errors=(400,),
        query=(_LIST_LIMIT.parameter, _BEFORE.parameter),
    ),
    ApiRoute(
        "GET",
        f"{_FILES}/search",
        search_files,
        "Search my files",
        _TAG,
        response=SearchResults,
        errors=(400,),
        query=(
            text_parameter(
                "q",
                'Words, "phrase", prefix*, OR, -word, (…), name:',
                max_length=MAX_QUERY_CHARS,
                required=True,
            ),
            _SEARCH_LIMIT.parameter,
            ("cursor", "string", "next_cursor of the previous page (before= works too)"),
        ),
        description=(
            "Full-text search of the caller's own files (names weigh ten times the text). "
            "Any q answers 200; only an empty or too long q is a 400."
        ),
    ),
    ApiRoute(
        "GET",
        f"{_FILES}/usage",
        storage_usage,
        "My storage use and quota",
        _TAG,
        response=StorageUsageView,
    ),
    ApiRoute("GET", _FILE, get_file, "A file's metadata", _TAG, response=FileView, errors=(404,)),
    ApiRoute(
        "GET",
        f"{_FILE}/content",
        download_file,
        "Download a file",
        _TAG,
        response_content_type="*/*",
        errors=(404,),
        description=(
            "Streamed as an attachment with the stored type and nosniff; Range requests answer 206."
        ),
    ),
    ApiRoute(
        "PATCH",
        _FILE,
        rename_file,
        "Rename a file",
        _TAG,
        request=RenameFile,
        response=FileView,
        errors=(404,),
    ),
    ApiRoute("DELETE", _FILE, delete_file, "Delete a file", _TAG, status=204, errors=(404,)),
]
