"""Health, the OpenAPI document, and the web client's files."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from aiohttp import web
from pydantic import BaseModel, Field

from gortc import __version__
from gortc.config import Config
from gortc.delivery.bodies import json_response
from gortc.delivery.keys import CONFIG, HEALTH_PROBES, OPENAPI_JSON
from gortc.delivery.routing import ApiRoute
from gortc.delivery.schemas import Health
from gortc.entities.groups import GROUP_NAME_MAX_LENGTH, MESSAGE_MAX_LENGTH
from gortc.entities.live import TITLE_MAX
from gortc.entities.reactions import MAX_REACTIONS_PER_MESSAGE
from gortc.entities.users import DISPLAY_NAME_MAX_LENGTH
from gortc.usecases.accounts import AVATAR_MAX_BYTES
from gortc.usecases.live import CHAT_MAX

# In a checkout this is a link to the top-level static/; installed, a copy.
STATIC_ROOT = Path(__file__).resolve().parent.parent / "static"
# The client is all our own files: nothing inline, nothing from elsewhere.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; img-src 'self' data: blob:; media-src 'self' blob:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
)


def content_security_policy(store_origin: str, socket_sources: str = "") -> str:
    """The client's policy; with files in an object store, pictures, media
    and uploads may also come from and go to the store's origin (downloads
    are redirects there, uploads PUT there); ``socket_sources`` (see
    call_socket_sources) are where else WebSockets may go."""
    if not store_origin and not socket_sources:
        return CONTENT_SECURITY_POLICY
    store = f" {store_origin}" if store_origin else ""
    sockets = f" {socket_sources}" if socket_sources else ""
    return (
        f"default-src 'self'; img-src 'self' data: blob:{store}; "
        f"media-src 'self' blob:{store}; connect-src 'self'{store}{sockets}; "
        "object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
    )


def call_socket_sources(config: Config) -> str:
    """With several instances (Redis), a call may be hosted by another
    instance, whose WebSocket (the call's ws_url, from server.instance_url)
    is on a host name the page cannot know in advance: WebSockets may then
    go to any host, over TLS only unless this instance's own address is
    plain http (a test or a private network). Empty with one instance."""
    if not config.redis.url:
        return ""
    return "wss:" if config.instance_url.startswith("https://") else "ws: wss:"


async def healthz(request: web.Request) -> web.Response:
    checks: dict[str, str] = {}
    healthy = True
    for name, probe in request.app[HEALTH_PROBES].items():
        try:
            detail = await probe()
        except Exception as exc:  # a probe that fails is the finding, not a crash
            detail, healthy = f"failing: {exc}", False
        checks[name] = detail
    body = Health(status="ok" if healthy else "degraded", checks=checks, version=__version__)
    return web.Response(
        text=body.model_dump_json(),
        status=200 if healthy else 503,
        content_type="application/json",
        headers={"Cache-Control": "no-store"},
    )


class ServerLimits(BaseModel):
    """The limits a client can check before sending (the server checks them
    again): the very values its validators use."""

    message_max_chars: int = Field(description="Characters in a message body")
    file_max_bytes: int = Field(description="Bytes in one uploaded file")
    quota_bytes: int = Field(description="Bytes of files one user may keep")
    max_attachments: int = Field(description="Files one message may carry")
    max_files_per_upload: int = Field(description="Files in one upload request")
    display_name_max_chars: int = Field(description="Characters in a display name")
    group_name_max_chars: int = Field(description="Characters in a group's name")
    avatar_max_bytes: int = Field(description="Bytes in a profile picture")
    max_reactions_per_message: int = Field(description="Different emojis on one message")
    live_title_max_chars: int = Field(description="Characters in a live stream's title")
    live_chat_max_chars: int = Field(description="Characters in a live chat line")

    @classmethod
    def of(cls, config: Config) -> ServerLimits:
        return cls(
            message_max_chars=MESSAGE_MAX_LENGTH,
            file_max_bytes=config.files.max_file_bytes,
            quota_bytes=config.files.quota_bytes,
            max_attachments=config.files.max_attachments_per_message,
            max_files_per_upload=config.files.max_files_per_upload,
            display_name_max_chars=DISPLAY_NAME_MAX_LENGTH,
            group_name_max_chars=GROUP_NAME_MAX_LENGTH,
            avatar_max_bytes=AVATAR_MAX_BYTES,
            max_reactions_per_message=MAX_REACTIONS_PER_MESSAGE,
            live_title_max_chars=TITLE_MAX,
            live_chat_max_chars=CHAT_MAX,
        )


class ServerInfo(BaseModel):
    """What this server offers, for a client deciding what to show."""

    version: str
    mail_enabled: bool = Field(
        description="Whether mail really goes out (an SMTP server is set): without it "
        "there are no verification or reset mails to wait for"
    )
    signup: Literal["open", "invite", "closed"] = Field(
        description="open: anyone may register; invite: registering needs an invite "
        "code; closed: only the operator makes accounts"
    )
    limits: ServerLimits
    direct_uploads: bool = Field(
        description="Whether files may be uploaded straight to the object store "
        "(POST /api/v1/files/direct-uploads); false: upload through POST /api/v1/files"
    )

    @classmethod
    def of(cls, config: Config) -> ServerInfo:
        return cls(
            version=__version__,
            mail_enabled=bool(config.mail.smtp_host),
            signup=config.auth.signup,
            limits=ServerLimits.of(config),
            direct_uploads=bool(config.storage.url),
        )


async def server_info(request: web.Request) -> web.Response:
    return json_response(ServerInfo.of(request.app[CONFIG]))


async def openapi_document(request: web.Request) -> web.Response:
    return web.Response(body=request.app[OPENAPI_JSON], content_type="application/json")


async def index(request: web.Request) -> web.FileResponse:
    return web.FileResponse(
        STATIC_ROOT / "index.html",
        headers={
            "Cache-Control": "no-cache",
            "Content-Security-Policy": content_security_policy(
                request.app[CONFIG].storage.origin, call_socket_sources(request.app[CONFIG])
            ),
        },
    )


ROUTES = [
    ApiRoute(
        "GET",
        "/healthz",
        healthz,
        "Is the server well",
        "system",
        response=Health,
        auth=False,
        errors=(503,),
    ),
    ApiRoute(
        "GET",
        "/api/v1/server",
        server_info,
        "What this server offers: version, sign-up, mail, limits",
        "system",
        response=ServerInfo,
        auth=False,
        description="No sign-in needed: the sign-in page uses it (sign-up policy, "
        "whether mails go out), the composer its limits.",
    ),
    ApiRoute(
        "GET",
        "/api/openapi.json",
        openapi_document,
        "This document",
        "system",
        auth=False,
        response_content_type="application/json",
    ),
]
