"""Uploads straight to the object store: asking for one, confirming it
(see usecases/direct_uploads.py)."""

from __future__ import annotations

from aiohttp import web

from gortc.delivery.auth import authenticate
from gortc.delivery.bodies import json_response, read_json
from gortc.delivery.file_schemas import (
    ConfirmDirectUpload,
    DirectUploadRequest,
    DirectUploadView,
    FileView,
    UploadAnswer,
)
from gortc.delivery.keys import DIRECT_UPLOADS
from gortc.delivery.routing import ApiRoute


async def ask_direct_upload(request: web.Request) -> web.Response:
    principal = await authenticate(request)
    body = await read_json(request, DirectUploadRequest)
    ticket = await request.app[DIRECT_UPLOADS].ask(
        principal.user_id, body.name, body.size, body.content_type
    )
    return json_response(DirectUploadView.of(ticket), status=201)


async def confirm_direct_upload(request: web.Request) -> web.Response:
    principal = await authenticate(request)
    body = await read_json(request, ConfirmDirectUpload)
    file = await request.app[DIRECT_UPLOADS].confirm(principal.user_id, body.upload_id)
    return json_response(UploadAnswer(FileView.of(file)), status=201)


_TAG = "files"
DIRECT = "/api/v1/files/direct-uploads"

ROUTES = [
    ApiRoute(
        "POST",
        DIRECT,
        ask_direct_upload,
        "Ask to upload one file straight to the object store",
        _TAG,
        status=201,
        request=DirectUploadRequest,
        response=DirectUploadView,
        errors=(400, 409, 413),
        description=(
            "Only where files live in an S3-compatible store (GET /api/v1/server: "
            "direct_uploads); elsewhere 409 direct_upload_unavailable: upload with POST "
            "/api/v1/files. Send the file's bytes with `method` to `url` with `headers` "
            "before expires_at, then confirm with the upload_id. 413 file_too_large or "
            "quota_exceeded if such a file would be refused now."
        ),
    ),
    ApiRoute(
        "POST",
        f"{DIRECT}/confirm",
        confirm_direct_upload,
        "Confirm an upload made straight to the object store",
        _TAG,
        status=201,
        request=ConfirmDirectUpload,
        response=UploadAnswer,
        errors=(400, 403, 404, 409, 413),
        description=(
            "The server reads the bytes back, checks their size and hashes them, then "
            "lists and indexes the file exactly as POST /api/v1/files would (same answer). "
            "404 upload_missing (nothing was PUT); 400 smaller_than_declared and 413 "
            "larger_than_declared (the bytes are removed); 413 quota_exceeded; 400 "
            "invalid_upload_id (not yours, or changed); 403 upload_expired; 409 url_used "
            "(confirmed already)."
        ),
    ),
]
