"""The composition root: builds every object once and wires them together.

``create_app`` is what ``gortc serve`` runs and what the tests drive;
``Core`` is the part without HTTP that the operator commands reuse.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from aiohttp import web
from aiohttp_session import session_middleware

from gortc.adapters.blob_store import DiskBlobStore
from gortc.adapters.call_placement import LocalCallPlacement
from gortc.adapters.clock import SystemClock
from gortc.adapters.hmac_signer import HmacSigner
from gortc.adapters.ice_servers import ConfiguredIceServers
from gortc.adapters.jwt_tokens import JwtAccessTokens
from gortc.adapters.live_registry import LocalLiveRegistry
from gortc.adapters.mail import OutboxMailer, SmtpMailer
from gortc.adapters.metrics import Metrics
from gortc.adapters.passwords import BcryptPasswordHasher
from gortc.adapters.rate_limit import MemoryRateLimiter
from gortc.adapters.s3_blob_store import S3BlobStore
from gortc.adapters.secret_key import derive_key, load_or_create_secret
from gortc.adapters.used_tickets import MemoryUsedTickets, RedisUsedTickets
from gortc.config import Config, ConfigError
from gortc.delivery import (
    accounts,
    admin,
    calls,
    direct_uploads,
    files,
    groups,
    live,
    live_webrtc,
    messages,
    metrics,
    search,
    sessions,
    signed_urls,
    system,
    users,
    websocket,
)
from gortc.delivery.events import created_message_seq, encode_event
from gortc.delivery.keys import (
    ACCOUNTS,
    ADMIN,
    API_ROUTES,
    CALLS,
    CHAT,
    CONFIG,
    DIRECT_UPLOADS,
    FILES,
    GROUPS,
    HEALTH_PROBES,
    HUB,
    LIVE,
    LIVE_RELAY,
    MEDIA_ROUTER,
    METRICS,
    OPENAPI_JSON,
    RTMP_SERVER,
    SEARCH,
    SIGNED_URLS,
    WS_TICKETS,
)
from gortc.delivery.live_ingest import LiveIngest
from gortc.delivery.live_relay import LiveRelay
from gortc.delivery.metrics import measure_requests, note_upgrade
from gortc.delivery.middlewares import error_mapping, harden_response, request_context
from gortc.delivery.openapi import build_openapi
from gortc.delivery.proxies import TrustedProxies, forwarded_middleware
from gortc.delivery.routing import add_routes
from gortc.delivery.session_cookie import SessionCookieStorage
from gortc.delivery.slow_clients import stalled_body_guard
from gortc.hub.backplane import Backplane, LocalBackplane
from gortc.hub.hub import Hub
from gortc.hub.presence import LocalPresence, PresenceRegistry
from gortc.repositories.backends import DatabaseBackend, database_backend
from gortc.repositories.group_commit import GroupCommitMessageStore
from gortc.usecases.accounts import AccountService, AccountSettings
from gortc.usecases.admin import AdminService
from gortc.usecases.blob_garbage import remove_orphans
from gortc.usecases.calls import CallService, CallSettings
from gortc.usecases.chat import ChatService, ChatSettings
from gortc.usecases.direct_uploads import DirectUploadService
from gortc.usecases.files import FileService, FileSettings
from gortc.usecases.groups import GroupService
from gortc.usecases.live import LiveService, LiveSettings
from gortc.usecases.ports import (
    CallPlacement,
    LiveRegistry,
    Mailer,
    MediaRouter,
    RevokedTokenStore,
)
from gortc.usecases.search import SearchService
from gortc.usecases.signed_urls import SignedUrlService, SignedUrlSettings
from gortc.usecases.viewer_tokens import ViewerTokens
from gortc.usecases.ws_tickets import WebSocketTickets

if TYPE_CHECKING:
    import redis.asyncio as redis

    from gortc.adapters.redis_rate_limit import RedisRateLimiter
    from gortc.media.live_webrtc import LiveWebRtc
    from gortc.media.rtmp import RtmpServer
    from gortc.media.sfu import AiortcSfu, SfuSettings

log = logging.getLogger("gortc")

SESSION_COOKIE = "gortc_session"
# The label of the key that signs file URLs (derive_key): used for nothing
# else, so a signed URL is never a valid token or cookie, nor the reverse.
SIGNED_URL_KEY = "files/signed-urls v1"
# The label of the key stream keys are made with (derive_key).
STREAM_KEY_KEY = "live/stream-keys v1"
# The label of the key viewer tokens are signed with (derive_key).
VIEWER_TOKEN_KEY = "live/viewer-tokens v1"  # noqa: S105 (a label, not a secret)
# The label of the key direct uploads' ids are signed with (derive_key).
DIRECT_UPLOAD_KEY = "files/direct-uploads v1"
# The label of the key WebSocket tickets are signed with (derive_key).
WS_TICKET_KEY = "realtime/ws-tickets v1"
_PURGE_INTERVAL_SECONDS = 3600.0
# Where mails go, under the data directory, when no SMTP server is set.
OUTBOX_FOLDER = "outbox"


@dataclass
class Core:
    """Everything but HTTP: storage, drivers and use cases."""

    config: Config
    secret: bytes
    database: DatabaseBackend
    redis: redis.Redis | None
    accounts: AccountService
    admin: AdminService
    hub: Hub
    groups: GroupService
    chat: ChatService
    message_store: GroupCommitMessageStore
    search: SearchService
    files: FileService
    signed_urls: SignedUrlService
    direct_uploads: DirectUploadService
    blob_store: DiskBlobStore | S3BlobStore
    calls: CallService
    media_router: MediaRouter
    live: LiveService
    live_registry: LiveRegistry
    live_media: LiveWebRtc
    metrics: Metrics
    account_limiter: MemoryRateLimiter | RedisRateLimiter

    async def open(self) -> None:
        """Raises SchemaError when the database cannot be used."""
        if isinstance(self.blob_store, S3BlobStore):
            # First: refused, nothing else has started that would need stopping.
            await self.blob_store.open()
            try:
                await self.blob_store.check()
            except Exception as exc:  # whatever botocore says, the operator must read it
                await self.blob_store.close()
                raise ConfigError(
                    f"storage.url {self.config.storage.url}: the bucket cannot be used "
                    f"({type(exc).__name__}: {exc})"
                ) from None
        await self.database.open()
        await self.hub.start()
        try:
            await collect_blobs(self, staged_older_than=86_400.0)
        except Exception:  # housekeeping: the hourly upkeep tries again
            log.exception("collecting abandoned uploads and blobs failed")

    async def close(self) -> None:
        """Ends the calls, closes the sockets, lets messages being stored
        finish, then the rest."""
        await self.calls.close()
        await self.live_media.close()
        await self.live_registry.close()
        await self.hub.close()
        await self.message_store.close()
        await self.database.close()
        if isinstance(self.blob_store, S3BlobStore):
            await self.blob_store.close()
        await self.account_limiter.close()
        if self.redis is not None:
            await self.redis.aclose()


# The core of an application, for its upkeep (and the tests of it).
CORE = web.AppKey("core", Core)


def build_core(config: Config) -> Core:
    secret = load_or_create_secret(config.auth.secret, config.data_path)
    database = database_backend(
        config.database.url,
        config.database_path,
        readers=config.database.readers,
        busy_timeout_ms=config.database.busy_timeout_ms,
        pool_size=config.database.pool_size,
    )
    uow = database.uow
    clock = SystemClock()
    redis_client = _redis_client(config.redis.url) if config.redis.url else None
    revoked: RevokedTokenStore = database.revoked_tokens
    if redis_client is not None:
        from gortc.adapters.redis_revocations import RedisRevokedTokenStore

        revoked = RedisRevokedTokenStore(redis_client)
    hasher = BcryptPasswordHasher(config.auth.bcrypt_rounds)
    backplane: Backplane = LocalBackplane()
    presence: PresenceRegistry = LocalPresence()
    placement: CallPlacement = LocalCallPlacement()
    live_registry: LiveRegistry = LocalLiveRegistry()
    if config.redis.url:
        # Imported only when configured, like the Redis client itself.
        from gortc.adapters.redis_call_placement import RedisCallPlacement
        from gortc.adapters.redis_live_registry import RedisLiveRegistry
        from gortc.hub.redis_backplane import RedisBackplane
        from gortc.hub.redis_presence import RedisPresence

        # Each has its own client: they close what they are given, and need
        # clients that do not retry behind their backs.
        redis_backplane = RedisBackplane(config.redis.url)
        backplane = redis_backplane
        presence = RedisPresence(config.redis.url, instance_id=redis_backplane.instance_id)
        live_registry = RedisLiveRegistry(
            config.redis.url, ttl_seconds=config.live.room_ttl_seconds
        )
        placement = RedisCallPlacement(
            config.redis.url,
            instance_id=redis_backplane.instance_id,
            ws_url=_websocket_url(config.instance_url),
            pin_seconds=config.rtc.call_pin_seconds,
        )
    hub = Hub(
        backplane,
        encode_event,
        presence,
        presence_interval=config.hub.presence_interval_seconds,
        # With several instances a group's new messages can cross on the
        # way; the hub puts them back in seq order (hub/ordering.py).
        seq_of=created_message_seq if config.redis.url else None,
    )
    # Per-user limits on sending (messages, typing, live chat) stay in this
    # process: a Redis round trip costs about as much CPU as storing the
    # message (docs/benchmarks.md), and a user's socket is on one instance.
    limiter = MemoryRateLimiter()
    account_limiter = _account_limiter(config)
    mailer: Mailer = (
        SmtpMailer(
            host=config.mail.smtp_host,
            port=config.mail.smtp_port,
            sender=config.mail.sender,
            username=config.mail.smtp_username,
            password=config.mail.smtp_password,
            security=config.mail.smtp_security,
            timeout=config.mail.timeout,
        )
        if config.mail.smtp_host
        else OutboxMailer(config.data_path / OUTBOX_FOLDER)
    )
    limits = config.limits
    media_router = _media_router(config)
    # One registry per application: two in one process do not collide.
    figures = Metrics()
    figures.watch_hub(hub)
    figures.watch_sfu(media_router.figures)
    live_media = _live_media(config)
    # One store for every kind of blob: identical bytes are kept once.
    blob_store = _blob_store(config)
    account_service = AccountService(
        uow=uow,
        revoked=revoked,
        hasher=hasher,
        tokens=JwtAccessTokens(derive_key(secret, "jwt"), config.auth.access_token_ttl),
        mailer=mailer,
        limiter=account_limiter,
        blobs=blob_store,
        clock=clock,
        settings=AccountSettings(
            signup=config.auth.signup,
            access_token_ttl=config.auth.access_token_ttl,
            refresh_token_ttl=config.auth.refresh_token_ttl,
            email_verification_ttl=config.auth.email_verification_ttl,
            password_reset_ttl=config.auth.password_reset_ttl,
            public_url=config.public_url,
            limits_enabled=limits.enabled,
            login_per_ip_per_minute=limits.login_per_ip_per_minute,
            login_per_account_per_minute=limits.login_per_account_per_minute,
            register_per_ip_per_hour=limits.register_per_ip_per_hour,
            mail_per_account_per_hour=limits.mail_per_account_per_hour,
        ),
        events=hub,
    )
    admin_service = AdminService(
        uow=uow,
        revoked=revoked,
        hasher=hasher,
        clock=clock,
        invite_ttl=config.auth.invite_ttl,
        events=hub,
    )
    message_store = database.message_store()
    chat = ChatService(
        uow=uow,
        store=figures.measure(message_store),
        events=hub,
        limiter=limiter,
        clock=clock,
        settings=ChatSettings(
            limits_enabled=limits.enabled,
            messages_per_second=limits.messages_per_second,
            message_burst=limits.message_burst,
            sync_limit=config.hub.sync_limit,
            max_attachments=config.files.max_attachments_per_message,
        ),
    )
    file_service = FileService(
        uow=uow,
        blobs=blob_store,
        clock=clock,
        settings=FileSettings(
            max_file_bytes=config.files.max_file_bytes,
            quota_bytes=config.files.quota_bytes,
            index_max_bytes=config.files.index_max_bytes,
            max_files_per_upload=config.files.max_files_per_upload,
        ),
    )
    calls = CallService(
        uow=uow,
        router=media_router,
        placement=placement,
        ice_servers=_ice_servers(config),
        events=hub,
        settings=CallSettings(max_participants=config.rtc.max_participants),
    )
    hub.on_group_left(calls.member_left)
    return Core(
        config=config,
        secret=secret,
        database=database,
        redis=redis_client,
        accounts=account_service,
        admin=admin_service,
        hub=hub,
        groups=GroupService(uow=uow, events=hub, presence=hub, clock=clock),
        chat=chat,
        message_store=message_store,
        search=SearchService(uow=uow),
        files=file_service,
        signed_urls=SignedUrlService(
            uow=uow,
            files=file_service,
            signer=HmacSigner(derive_key(secret, SIGNED_URL_KEY)),
            clock=clock,
            settings=SignedUrlSettings(lifetime_seconds=config.files.signed_url_seconds),
        ),
        direct_uploads=DirectUploadService(
            files=file_service,
            blobs=blob_store,
            signer=HmacSigner(derive_key(secret, DIRECT_UPLOAD_KEY)),
            clock=clock,
            lifetime_seconds=config.files.signed_url_seconds,
        ),
        blob_store=blob_store,
        calls=calls,
        media_router=media_router,
        live=LiveService(
            uow=uow,
            signer=HmacSigner(derive_key(secret, STREAM_KEY_KEY)),
            viewer_tokens=ViewerTokens(
                HmacSigner(derive_key(secret, VIEWER_TOKEN_KEY)),
                clock,
                config.live.viewer_token_seconds,
            ),
            registry=live_registry,
            events=hub,
            clock=clock,
            media=live_media,
            limiter=limiter if limits.enabled else None,
            settings=LiveSettings(
                rtmp_url=_rtmp_url(config),
                # One instance serves its streams at relative URLs; with
                # several, any instance serves any room's HLS (fetched from
                # the ingesting one at its instance_url: delivery/live_relay.py).
                instance=config.instance_url if config.redis.url else "",
                public_url=config.public_url if config.redis.url else "",
            ),
        ),
        live_registry=live_registry,
        live_media=live_media,
        metrics=figures,
        account_limiter=account_limiter,
    )


def _account_limiter(config: Config) -> MemoryRateLimiter | RedisRateLimiter:
    """The sign-in, registration and mail limits. With Redis, every instance
    draws from the same buckets: a password guesser gets the same number of
    attempts however a load balancer spreads them."""
    if not config.redis.url:
        return MemoryRateLimiter()
    from gortc.adapters.redis_rate_limit import RedisRateLimiter

    return RedisRateLimiter(config.redis.url)


def _media_router(config: Config) -> AiortcSfu:
    # Imported here, like the Redis parts: aiortc and PyAV are the heaviest
    # imports of the package.
    from gortc.media.sfu import AiortcSfu

    return AiortcSfu(_sfu_settings(config))


def _sfu_settings(config: Config) -> SfuSettings:
    from gortc.media.sfu import SfuSettings

    rtc = config.rtc
    return SfuSettings(
        stun_urls=tuple(rtc.stun_urls),
        host_addresses=tuple(rtc.host_addresses),
        keyframe_interval=rtc.keyframe_interval_seconds,
        answer_timeout=rtc.answer_timeout_seconds,
        transcode=rtc.forwarding == "transcode",
    )


def _live_media(config: Config) -> LiveWebRtc:
    from gortc.media.live_webrtc import LiveWebRtc

    return LiveWebRtc(_sfu_settings(config))


def _ice_servers(config: Config) -> ConfiguredIceServers:
    rtc = config.rtc
    return ConfiguredIceServers(
        stun_urls=rtc.stun_urls,
        turn_urls=rtc.turn_urls,
        turn_username=rtc.turn_username,
        turn_password=rtc.turn_password,
        turn_secret=rtc.turn_secret,
        credential_seconds=rtc.turn_credential_seconds,
    )


def _rtmp_url(config: Config, port: int | None = None) -> str:
    """The ingest URL streamers paste into OBS (without their key)."""
    if config.live.rtmp_public_url:
        return config.live.rtmp_public_url.rstrip("/")
    host = urlsplit(config.public_url).hostname or config.server.host
    return f"rtmp://{host}:{port or config.live.rtmp_port}/live"


def _websocket_url(public_url: str) -> str:
    """Where clients of this instance open their WebSocket."""
    if public_url.startswith("https://"):
        return "wss://" + public_url.removeprefix("https://") + "/api/v1/ws"
    return "ws://" + public_url.removeprefix("http://") + "/api/v1/ws"


def _redis_client(url: str) -> redis.Redis:
    # Imported only when configured: redis-py adds ~50 ms to every start.
    import redis.asyncio

    return redis.asyncio.Redis.from_url(url)


def create_app(config: Config) -> web.Application:
    core = build_core(config)
    cookie_storage = SessionCookieStorage(
        derive_key(core.secret, "cookie"),
        cookie_name=SESSION_COOKIE,
        max_age=config.auth.refresh_token_ttl,
        httponly=True,
        samesite="Lax",
        secure=config.server.secure_cookies,
    )
    trusted = TrustedProxies(config.server.trusted_proxies)
    app = web.Application(
        middlewares=[
            measure_requests,
            # Only where proxies are named: a layer per request otherwise.
            *([forwarded_middleware(trusted)] if trusted else []),
            request_context,
            error_mapping,
            # Inside error_mapping: a stalled body is the client's doing (408).
            stalled_body_guard(config.server.body_timeout_seconds),
            session_middleware(cookie_storage),
        ],
        client_max_size=config.server.max_body_bytes,
    )
    app[CONFIG] = config
    app[ACCOUNTS] = core.accounts
    app[ADMIN] = core.admin
    app[HUB] = core.hub
    app[GROUPS] = core.groups
    app[CHAT] = core.chat
    app[CALLS] = core.calls
    app[MEDIA_ROUTER] = core.media_router
    app[LIVE] = core.live
    # A fraction of a segment: see LiveRelay.
    app[LIVE_RELAY] = LiveRelay(playlist_seconds=min(0.5, config.live.segment_seconds / 4))
    app[SEARCH] = core.search
    app[FILES] = core.files
    app[SIGNED_URLS] = core.signed_urls
    app[CORE] = core
    app[DIRECT_UPLOADS] = core.direct_uploads
    app[METRICS] = core.metrics
    app[WS_TICKETS] = WebSocketTickets(
        HmacSigner(derive_key(core.secret, WS_TICKET_KEY)),
        SystemClock(),
        RedisUsedTickets(core.redis) if core.redis is not None else MemoryUsedTickets(),
    )
    routes = (
        system.ROUTES
        + metrics.ROUTES
        + accounts.ROUTES
        + sessions.ROUTES
        + search.ROUTES  # before users.ROUTES: /users/search
        + users.ROUTES
        + admin.ROUTES
        + groups.ROUTES
        + messages.ROUTES
        + files.ROUTES
        + signed_urls.ROUTES
        + direct_uploads.ROUTES
        + calls.ROUTES
        + live_webrtc.ROUTES
        + live.ROUTES
        + websocket.ROUTES
    )
    app[API_ROUTES] = routes
    app[OPENAPI_JSON] = json.dumps(build_openapi(routes)).encode("utf-8")
    probes: dict[str, Callable[[], Awaitable[str]]] = {"database": core.database.ping}
    if core.redis is not None:
        probes["redis"] = _redis_probe(core.redis)
        probes["backplane"] = _backplane_probe(core.hub)
    if isinstance(core.blob_store, S3BlobStore):
        probes["storage"] = _storage_probe(core.blob_store)
    app[HEALTH_PROBES] = probes
    add_routes(app, routes)
    app.router.add_get("/", system.index)
    app.router.add_static("/static/", system.STATIC_ROOT)
    app.on_response_prepare.append(harden_response)
    app.on_response_prepare.append(note_upgrade)
    app.cleanup_ctx.append(_lifetime(core))
    app.on_shutdown.append(_close_sockets(core.hub))
    return app


def _blob_store(config: Config) -> DiskBlobStore | S3BlobStore:
    if not config.storage.url:
        return DiskBlobStore(config.data_path / "blobs")
    return S3BlobStore(
        bucket=config.storage.bucket,
        endpoint=config.storage.endpoint,
        region=config.storage.region,
        access_key=config.storage.access_key,
        secret_key=config.storage.secret_key,
    )


async def collect_blobs(core: Core, *, staged_older_than: float) -> None:
    """Removes staged bytes nobody will promote (a crash, a direct upload
    never confirmed) and blobs nothing references (a crash between a
    commit and the removal of its bytes)."""
    removed = await core.blob_store.remove_stale_staged(staged_older_than)
    if removed:
        log.info("removed %d unfinished or unconfirmed uploads", removed)
    orphans = await remove_orphans(core.database.uow, core.blob_store)
    if orphans:
        log.info("removed %d blobs nothing referenced", orphans)


def _staged_lifetime(config: Config) -> float:
    """How old staged bytes may be before they are certainly abandoned: a
    direct upload can be confirmed until twice its URL's lifetime after it
    was asked for; an upload through the server stages for seconds."""
    return max(2.0 * config.files.signed_url_seconds + 60.0, 3600.0)


async def _collect_blobs_periodically(core: Core) -> None:
    while True:
        await asyncio.sleep(_PURGE_INTERVAL_SECONDS)
        try:
            await collect_blobs(core, staged_older_than=_staged_lifetime(core.config))
        except Exception:  # housekeeping must never stop the server
            log.exception("collecting abandoned uploads and blobs failed")


def _lifetime(core: Core) -> Callable[[web.Application], AsyncIterator[None]]:
    async def lifetime(app: web.Application) -> AsyncIterator[None]:
        await core.open()
        ingest = await _start_live_ingest(app, core)
        background = [
            asyncio.create_task(_count_viewers(core.live), name="gortc-live-viewers"),
            asyncio.create_task(_purge_periodically(core.database), name="gortc-purge"),
            asyncio.create_task(_collect_blobs_periodically(core), name="gortc-blob-upkeep"),
            asyncio.create_task(
                websocket.recheck_sign_ins(
                    core.hub, core.accounts, core.config.hub.auth_recheck_seconds
                ),
                name="gortc-recheck-sign-ins",
            ),
        ]
        try:
            yield
        finally:
            for task in background:
                task.cancel()
            for task in background:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            if ingest is not None:
                await ingest.stop()
            await app[LIVE_RELAY].close()
            await core.close()

    return lifetime


@dataclass
class _RunningIngest:
    server: RtmpServer
    handler: LiveIngest

    async def stop(self) -> None:
        await self.server.stop()  # ends every publish
        await self.handler.close()  # their playlists get their end marker


async def _start_live_ingest(app: web.Application, core: Core) -> _RunningIngest | None:
    """The RTMP ingest, when live streaming is on. A port it cannot take
    is logged and shown by /healthz; everything else runs all the same."""
    from gortc.media.hls import HlsPackager
    from gortc.media.rtmp import RtmpServer, RtmpSettings

    config = core.config
    if not config.live.enabled:
        return None
    live = config.live

    def packager(directory: Path) -> HlsPackager:
        return HlsPackager(
            directory,
            segment_seconds=live.segment_seconds,
            playlist_segments=live.playlist_segments,
        )

    handler = LiveIngest(
        core.live,
        config.data_path,
        packager,
        max_publishers=live.max_publishers,
        stall_seconds=live.stall_seconds,
        video_feed=core.live_media.rtmp_video,
    )
    server = RtmpServer(
        handler,
        host=live.rtmp_host or config.server.host,
        port=live.rtmp_port,
        settings=RtmpSettings(
            stall_timeout=live.stall_seconds,
            setup_timeout=live.rtmp_setup_seconds,
            # Publishers, plus room for those being refused or setting up.
            max_connections=2 * live.max_publishers + 10,
        ),
    )
    try:
        await server.start()
    except OSError as exc:
        log.error("live streaming is off: RTMP cannot listen on port %d (%s)", live.rtmp_port, exc)
        app[HEALTH_PROBES]["rtmp"] = _failed_probe(f"not listening: {exc.strerror or exc}")
        return None
    if not live.rtmp_public_url and live.rtmp_port == 0:
        core.live.ingest_at(_rtmp_url(config, port=server.port))
    app[RTMP_SERVER] = server
    app[HEALTH_PROBES]["rtmp"] = _rtmp_probe(server)
    core.metrics.watch_segment_lag(handler.playlist_ages)
    return _RunningIngest(server, handler)


def _failed_probe(reason: str) -> Callable[[], Awaitable[str]]:
    async def probe() -> str:
        raise RuntimeError(reason)

    return probe


def _rtmp_probe(server: RtmpServer) -> Callable[[], Awaitable[str]]:
    async def probe() -> str:
        return f"ok, port {server.port}, {server.publishing} publishing"

    return probe


async def _count_viewers(live: LiveService) -> None:
    while True:
        await asyncio.sleep(5.0)
        try:
            await live.count_viewers()
        except Exception:  # a count is not worth stopping the loop for
            log.exception("counting live viewers failed")


def _close_sockets(hub: Hub) -> Callable[[web.Application], Awaitable[None]]:
    async def close(app: web.Application) -> None:
        # Before requests in flight are waited for: a WebSocket handler runs
        # until its socket closes, so the sockets must be told to go first.
        await hub.close()

    return close


async def _purge_periodically(database: DatabaseBackend) -> None:
    while True:
        try:
            removed = await database.purge_expired(datetime.now(UTC))
            if removed:
                log.info("purged %d expired sessions and tokens", removed)
        except Exception:  # housekeeping must never stop the server
            log.exception("purging expired tokens failed")
        await asyncio.sleep(_PURGE_INTERVAL_SECONDS)


def _storage_probe(store: S3BlobStore) -> Callable[[], Awaitable[str]]:
    async def probe() -> str:
        await store.check()
        return "ok"

    return probe


def _backplane_probe(hub: Hub) -> Callable[[], Awaitable[str]]:
    async def probe() -> str:
        if not hub.backplane.healthy:
            # Local delivery goes on; only other instances miss events.
            raise RuntimeError(hub.backplane.status())
        return "ok"

    return probe


def _redis_probe(client: redis.Redis) -> Callable[[], Awaitable[str]]:
    async def probe() -> str:
        await client.ping()
        return "ok"

    return probe
