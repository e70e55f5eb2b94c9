"""Signed URLs for files: asking for one (signed in), and using one (the
signature is the only credential). See usecases/signed_urls.py."""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from gortc.delivery.auth import authenticate
from gortc.delivery.bodies import json_response, read_json
from gortc.delivery.file_schemas import DownloadUrlView, FileView, UploadUrlRequest, UploadUrlView
from gortc.delivery.files import (
    CHUNK_BYTES,
    blob_response,
    reading_body,
    served_as_download,
)
from gortc.delivery.keys import SIGNED_URLS
from gortc.delivery.routing import ApiRoute
from gortc.entities.errors import UnsupportedMediaType
from gortc.usecases.signed_urls import UPLOAD_PATH


async def issue_upload_url(request: web.Request) -> web.Response:
    principal = await authenticate(request)
    body = await read_json(request, UploadUrlRequest)
    signed = await request.app[SIGNED_URLS].issue_upload(principal.user_id, body.name, body.size)
    return json_response(UploadUrlView.of(signed))


async def issue_download_url(request: web.Request) -> web.Response:
    principal = await authenticate(request)
    signed = await request.app[SIGNED_URLS].issue_download(
        principal.user_id, request.match_info["file_id"]
    )
    return json_response(DownloadUrlView.of(signed))


async def signed_upload(request: web.Request) -> web.Response:
    # The size is counted on the bytes as they arrive; a compressed body
    # would be counted decompressed against a length that is not.
    if request.headers.get("Content-Encoding", "identity").lower() not in ("", "identity"):
        raise UnsupportedMediaType("send the file's bytes as they are, without Content-Encoding")
    file = await request.app[SIGNED_URLS].upload(
        request.query, _body(request), length=request.content_length
    )
    return json_response(FileView.of(file), status=201)


async def _body(request: web.Request) -> AsyncIterator[bytes]:
    while True:
        with reading_body():
            chunk = await request.content.read(CHUNK_BYTES)
        if not chunk:
            return
        yield chunk


async def signed_download(request: web.Request) -> web.StreamResponse:
    file, location = await request.app[SIGNED_URLS].download(
        request.match_info["file_id"], request.query, served_as_download
    )
    return blob_response(location, served_as_download(file))


_TAG = "files"
_FILE = "/api/v1/files/{file_id}"
_SIGNED_QUERY = (
    ("user", "string", "Set by the server"),
    ("expires", "integer", "Set by the server"),
    ("nonce", "string", "Set by the server"),
    ("signature", "string", "Set by the server"),
)
_SIGNED_ERRORS = (
    "403 invalid_signature (not a URL we made, or changed), url_expired, account_disabled"
)

ROUTES = [
    ApiRoute(
        "POST",
        "/api/v1/files/upload-url",
        issue_upload_url,
        "A signed URL to upload one file",
        _TAG,
        request=UploadUrlRequest,
        response=UploadUrlView,
        errors=(400, 413),
        description=(
            "The URL stores one file of exactly `size` bytes as the caller's, with a PUT "
            "of the raw bytes and no credentials, once, until expires_at "
            "(files.signed_url_seconds). 413 file_too_large or quota_exceeded if such a "
            "file would be refused now."
        ),
    ),
    ApiRoute(
        "PUT",
        UPLOAD_PATH,
        signed_upload,
        "Upload with a signed URL",
        _TAG,
        status=201,
        auth=False,
        response=FileView,
        request_content={
            "application/octet-stream": {
                "schema": {"type": "string", "contentMediaType": "application/octet-stream"}
            }
        },
        errors=(400, 403, 409, 413, 415),
        query=(
            ("name", "string", "Set by the server"),
            ("size", "integer", "Set by the server"),
            *_SIGNED_QUERY,
        ),
        description=(
            "Use the url of POST /api/v1/files/upload-url as it is. The body is the file. "
            f"{_SIGNED_ERRORS}; 409 url_used (it stored its file already); 413 "
            "larger_than_declared, 400 smaller_than_declared, or the limits of every "
            "upload (413 file_too_large, quota_exceeded): nothing is stored."
        ),
    ),
    ApiRoute(
        "POST",
        f"{_FILE}/download-url",
        issue_download_url,
        "A signed URL to download a file",
        _TAG,
        response=DownloadUrlView,
        errors=(404,),
        description=(
            "For the owner, or a member of a group where a message carries the file. The "
            "URL downloads it without credentials until expires_at, as long as the caller "
            "may still read the file (checked on every use)."
        ),
    ),
    ApiRoute(
        "GET",
        f"{_FILE}/download",
        signed_download,
        "Download with a signed URL",
        _TAG,
        auth=False,
        response_content_type="*/*",
        errors=(403, 404),
        query=_SIGNED_QUERY,
        description=(
            "Use the url of POST …/download-url as it is; answered like …/content "
            f"(an attachment; Range requests answer 206). {_SIGNED_ERRORS}; 404 "
            "file_not_found once the URL's user may no longer read the file."
        ),
    ),
]
