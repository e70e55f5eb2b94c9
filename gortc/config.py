"""The one frozen configuration of a gortc process.

Settings come from three places, later ones winning: the defaults declared
here, a TOML file (``config.toml`` documents every key), and environment
variables named ``GORTC_<SECTION>_<KEY>``. Every problem is reported as one
:class:`ConfigError` naming the setting and where its value came from, so the
command line can print one line and exit with status 2.
"""

from __future__ import annotations

import ipaddress
import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator


class ConfigError(Exception):
    """A missing, unknown or invalid setting; the message is one line."""


class _Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ServerConfig(_Section):
    host: str = Field("127.0.0.1", description="Address to listen on.")
    port: int = Field(
        8080, ge=0, le=65535, description="TCP port to listen on (0 picks a free one)."
    )
    data_dir: str = Field(
        "./data",
        description="Everything the server keeps: database, files, secrets, HLS output.",
    )
    public_url: str = Field(
        "",
        description="URL users reach the server at, for mailed links; empty: http://host:port.",
    )
    instance_url: str = Field(
        "",
        description="With several instances: the URL other instances and redirected clients "
        "reach this one at (not the load balancer's); empty: server.public_url.",
    )
    max_body_bytes: int = Field(
        1_048_576, ge=1024, description="Largest JSON request body accepted (413 above)."
    )
    secure_cookies: bool = Field(
        False,
        description="Mark the session cookie Secure on every request (it is anyway on "
        "requests that came over HTTPS, directly or through a trusted proxy).",
    )
    trusted_origins: list[str] = Field(
        default_factory=list,
        description="Extra origins (scheme://host[:port]) allowed to use the session cookie.",
    )
    trusted_proxies: list[str] = Field(
        default_factory=list,
        description="Reverse proxies (addresses or CIDRs) whose X-Forwarded-For and "
        "X-Forwarded-Proto are believed; empty: nobody's.",
    )
    shutdown_timeout: float = Field(
        10.0, gt=0, description="Seconds in-flight requests get to finish on SIGINT/SIGTERM."
    )
    header_timeout_seconds: float = Field(
        75.0,
        gt=0,
        description="A connection that has not sent a whole request head this long after "
        "it opened, or after its last answer, is closed (slow or idle clients).",
    )
    body_timeout_seconds: float = Field(
        30.0,
        gt=0,
        description="A request whose body stops arriving for this long is answered 408 "
        "and its connection closed.",
    )
    log_level: Literal["debug", "info", "warning", "error"] = Field(
        "info", description="Logging threshold."
    )
    log_format: Literal["text", "json"] = Field(
        "text",
        description="Log lines as text, or one JSON object per line (for log collectors).",
    )
    event_loop: Literal["uvloop", "asyncio"] = Field(
        "uvloop",
        description="The event loop gortc serve runs on: uvloop (faster) or asyncio's own.",
    )

    @field_validator("trusted_origins")
    @classmethod
    def _origins_have_scheme(cls, value: list[str]) -> list[str]:
        for origin in value:
            if not origin.startswith(("http://", "https://")):
                raise ValueError(f"{origin!r} must start with http:// or https://")
        return [origin.rstrip("/") for origin in value]

    @field_validator("trusted_proxies")
    @classmethod
    def _proxies_are_networks(cls, value: list[str]) -> list[str]:
        for entry in value:
            try:
                ipaddress.ip_network(entry.strip(), strict=False)
            except ValueError:
                raise ValueError(f"{entry!r} is not an IP address or CIDR") from None
        return [entry.strip() for entry in value]


class DatabaseConfig(_Section):
    url: str = Field(
        "",
        description="PostgreSQL, as postgresql://user:password@host:port/dbname; "
        "empty: SQLite under the data directory.",
    )
    pool_size: int = Field(
        10, ge=1, le=200, description="PostgreSQL connections this instance may open."
    )
    path: str = Field("", description="SQLite file; empty: <data_dir>/gortc.db.")
    readers: int = Field(2, ge=1, le=16, description="Read-only connections beside the writer.")
    busy_timeout_ms: int = Field(
        5000, ge=0, description="How long SQLite waits on a locked database."
    )

    @field_validator("url")
    @classmethod
    def _url_is_postgresql(cls, value: str) -> str:
        if value and urlsplit(value).scheme not in ("postgresql", "postgres"):
            raise ValueError("must be a postgresql:// URL (or empty for SQLite)")
        return value


class StorageConfig(_Section):
    url: str = Field(
        "",
        description="S3-compatible object store, as s3://bucket; empty: files under the "
        "data directory.",
    )
    endpoint: str = Field(
        "",
        description="The store's address (http(s)://host:port); empty: AWS S3 of the region.",
    )
    region: str = Field("", description="The store's region; empty: us-east-1.")
    access_key: str = Field("", description="Access key id; empty: the AWS_* environment.")
    secret_key: str = Field("", description="Secret access key; empty: the AWS_* environment.")

    @field_validator("url")
    @classmethod
    def _url_is_s3(cls, value: str) -> str:
        if value:
            parts = urlsplit(value)
            if parts.scheme != "s3" or not parts.netloc or parts.path.strip("/"):
                raise ValueError("must be s3://bucket (or empty for files on disk)")
        return value

    @field_validator("endpoint")
    @classmethod
    def _endpoint_is_http(cls, value: str) -> str:
        if value and not value.startswith(("http://", "https://")):
            raise ValueError(f"{value!r} must start with http:// or https://")
        return value.rstrip("/")

    @property
    def bucket(self) -> str:
        return urlsplit(self.url).netloc

    @property
    def origin(self) -> str:
        """Where browsers fetch from and upload to the store (its presigned
        URLs' origin); empty for files on disk."""
        if not self.url:
            return ""
        if not self.endpoint:  # AWS S3: a host of the bucket's own, by region
            return "https://*.amazonaws.com"
        parts = urlsplit(self.endpoint)
        return f"{parts.scheme}://{parts.netloc}"


class AuthConfig(_Section):
    secret: str = Field(
        "",
        description="Signs tokens, encrypts cookies; empty: generated into <data_dir>/secret.key.",
    )
    access_token_ttl: int = Field(900, ge=30, description="Access token lifetime, seconds.")

    @field_validator("secret")
    @classmethod
    def _secret_is_long(cls, value: str) -> str:
        if value and len(value) < 32:
            raise ValueError("must be at least 32 characters (or empty to have one generated)")
        return value

    refresh_token_ttl: int = Field(
        30 * 24 * 3600, ge=60, description="Refresh token and web session lifetime, seconds."
    )
    signup: Literal["open", "invite", "closed"] = Field(
        "open",
        description="Who may register: anyone, holders of an admin-made invite code, or nobody.",
    )
    invite_ttl: int = Field(7 * 24 * 3600, ge=60, description="Invite code lifetime, seconds.")
    email_verification_ttl: int = Field(
        24 * 3600, ge=60, description="Email verification link lifetime, seconds."
    )
    password_reset_ttl: int = Field(
        3600, ge=60, description="Password reset link lifetime, seconds."
    )
    bcrypt_rounds: int = Field(12, ge=4, le=16, description="bcrypt cost factor.")


class MailConfig(_Section):
    smtp_host: str = Field(
        "", description="SMTP server; empty: mails are written to <data_dir>/outbox/."
    )
    smtp_port: int = Field(587, ge=1, le=65535, description="SMTP port.")
    smtp_username: str = Field("", description="SMTP login; empty: no authentication.")
    smtp_password: str = Field("", description="SMTP password.")
    smtp_security: Literal["none", "starttls", "tls"] = Field(
        "starttls", description="none, starttls (port 587) or implicit tls (port 465)."
    )
    sender: str = Field("gortc <noreply@localhost>", description="From address of outgoing mail.")
    timeout: float = Field(10.0, gt=0, description="SMTP timeout, seconds.")


class LimitsConfig(_Section):
    enabled: bool = Field(True, description="false turns every rate limit off (load tests).")
    login_per_ip_per_minute: int = Field(
        20, ge=1, description="Login attempts per client address per minute (burst of the same)."
    )
    login_per_account_per_minute: int = Field(
        10, ge=1, description="Login attempts per account per minute."
    )
    register_per_ip_per_hour: int = Field(
        20, ge=1, description="Registrations per client address per hour."
    )
    mail_per_account_per_hour: int = Field(
        5, ge=1, description="Verification and reset mails per account per hour."
    )
    messages_per_second: int = Field(
        20, ge=1, description="Messages a user may send per second, sustained."
    )
    message_burst: int = Field(40, ge=1, description="Messages a user may send in a burst.")


class HubConfig(_Section):
    heartbeat_seconds: float = Field(
        30.0, gt=0, description="WebSocket ping interval; a client that misses a pong is closed."
    )
    max_frame_bytes: int = Field(
        65536, ge=1024, description="Largest WebSocket frame a client may send (1009 above)."
    )
    queue_max_frames: int = Field(
        1024, ge=16, description="Outgoing frames queued for a slow client before it is evicted."
    )
    queue_high_water: int = Field(
        256, ge=1, description="Queued frames above which a client must catch up in time."
    )
    evict_after_seconds: float = Field(
        5.0, gt=0, description="How long a client may stay above the high-water mark."
    )
    auth_recheck_seconds: float = Field(
        60.0, gt=0, description="How often open sockets re-check that their sign-in is valid."
    )
    sync_limit: int = Field(
        500, ge=1, description="Most messages one sync replays; more missed means a reset."
    )
    presence_interval_seconds: float = Field(
        0.5,
        ge=0,
        le=60,
        description="Presence changes are gathered and sent to each group at most this often.",
    )


class FilesConfig(_Section):
    max_file_bytes: int = Field(
        25 * 1024 * 1024, ge=1, description="Largest file one may upload, bytes (413 above)."
    )
    quota_bytes: int = Field(
        1024 * 1024 * 1024, ge=0, description="Bytes of files each user may store (413 above)."
    )
    index_max_bytes: int = Field(
        1024 * 1024,
        ge=0,
        description="Bytes of a text file that are made searchable; the rest is stored only.",
    )
    max_files_per_upload: int = Field(100, ge=1, description="Files one upload request may carry.")
    max_attachments_per_message: int = Field(
        10, ge=1, le=20, description="Files one message may carry (400 above)."
    )
    signed_url_seconds: int = Field(
        600,
        ge=1,
        le=7 * 24 * 3600,
        description="Lifetime of signed upload and download URLs, seconds.",
    )


class RtcConfig(_Section):
    host_addresses: list[str] = Field(
        default_factory=list,
        description="Addresses the SFU gathers ICE host candidates on; empty: every interface.",
    )
    stun_urls: list[str] = Field(
        default_factory=list,
        description="STUN servers (stun:host:port) given to clients and used by the SFU.",
    )
    turn_urls: list[str] = Field(
        default_factory=list,
        description="TURN servers (turn:host:port?transport=udp) given to clients.",
    )
    turn_username: str = Field("", description="Fixed TURN user name (when turn_secret is empty).")
    turn_password: str = Field("", description="Fixed TURN password (when turn_secret is empty).")
    turn_secret: str = Field(
        "",
        description="Shared secret of the TURN server's REST credentials (coturn "
        "static-auth-secret): each client gets its own expiring user name and password.",
    )
    turn_credential_seconds: int = Field(
        86400, ge=60, description="Lifetime of TURN credentials made from turn_secret."
    )
    max_participants: int = Field(8, ge=2, le=64, description="Participants one call may have.")
    keyframe_interval_seconds: float = Field(
        1.0,
        ge=0.1,
        le=30,
        description="Fewest seconds between two keyframe requests to one publisher.",
    )
    answer_timeout_seconds: float = Field(
        10.0, gt=0, description="How long a participant has to answer the server's offer."
    )
    forwarding: Literal["passthrough", "transcode"] = Field(
        "passthrough",
        description="passthrough forwards encoded media; transcode decodes and re-encodes "
        "every track (slow: for comparison in benchmarks only).",
    )
    call_pin_seconds: float = Field(
        30.0,
        ge=3,
        description="With Redis: how long a call stays pinned to an instance that stopped "
        "renewing it (the instance renews it every third of this).",
    )

    @field_validator("stun_urls")
    @classmethod
    def _stun_scheme(cls, value: list[str]) -> list[str]:
        for url in value:
            if not url.startswith(("stun:", "stuns:")):
                raise ValueError(f"{url!r} must start with stun: or stuns:")
        return value

    @field_validator("turn_urls")
    @classmethod
    def _turn_scheme(cls, value: list[str]) -> list[str]:
        for url in value:
            if not url.startswith(("turn:", "turns:")):
                raise ValueError(f"{url!r} must start with turn: or turns:")
        return value


class LiveConfig(_Section):
    enabled: bool = Field(True, description="Accept live streams (RTMP ingest, HLS playback).")
    rtmp_host: str = Field(
        "", description="Address the RTMP ingest listens on; empty: server.host's."
    )
    rtmp_port: int = Field(
        1935, ge=0, le=65535, description="TCP port of the RTMP ingest (0 picks a free one)."
    )
    rtmp_public_url: str = Field(
        "",
        description="The ingest URL shown to streamers (rtmp://host:port/live); "
        "empty: built from server.public_url's host and rtmp_port.",
    )
    segment_seconds: float = Field(
        1.0, ge=0.5, le=10, description="Target HLS segment length (cut at keyframes)."
    )
    playlist_segments: int = Field(
        6, ge=2, le=60, description="Segments in the sliding live playlist; older are deleted."
    )
    stall_seconds: float = Field(
        10.0, gt=0, description="A publisher sending nothing this long is cut off."
    )
    max_publishers: int = Field(50, ge=1, description="Streams ingested at once, at most.")
    rtmp_setup_seconds: float = Field(
        10.0,
        gt=0,
        description="An RTMP connection must be publishing this long after it opened "
        "(handshake, connect, publish), or it is closed.",
    )
    viewer_token_seconds: int = Field(
        600,
        ge=10,
        le=86400,
        description="How long the viewer token in a room's hls_url lets a player start "
        "playing; a player that keeps reloading the playlist goes on while the viewer's "
        "sign-in lives.",
    )
    room_ttl_seconds: float = Field(
        30.0,
        ge=3,
        description="With Redis: how long a live room stays listed after its instance stops "
        "renewing it (it renews every third of this).",
    )


class MetricsConfig(_Section):
    token: str = Field(
        "",
        description="Bearer token that lets clients off loopback read /metrics; "
        "empty: loopback clients only.",
    )


class RedisConfig(_Section):
    url: str = Field("", description="redis:// URL; empty: no Redis, everything in-process.")


class Config(BaseModel):
    """Every setting of a gortc process, read once at start."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    server: ServerConfig = Field(default_factory=ServerConfig)  # type: ignore[arg-type]
    database: DatabaseConfig = Field(default_factory=DatabaseConfig)  # type: ignore[arg-type]
    storage: StorageConfig = Field(default_factory=StorageConfig)  # type: ignore[arg-type]
    auth: AuthConfig = Field(default_factory=AuthConfig)  # type: ignore[arg-type]
    mail: MailConfig = Field(default_factory=MailConfig)  # type: ignore[arg-type]
    limits: LimitsConfig = Field(default_factory=LimitsConfig)  # type: ignore[arg-type]
    hub: HubConfig = Field(default_factory=HubConfig)  # type: ignore[arg-type]
    files: FilesConfig = Field(default_factory=FilesConfig)  # type: ignore[arg-type]
    rtc: RtcConfig = Field(default_factory=RtcConfig)  # type: ignore[arg-type]
    live: LiveConfig = Field(default_factory=LiveConfig)  # type: ignore[arg-type]
    redis: RedisConfig = Field(default_factory=RedisConfig)  # type: ignore[arg-type]
    metrics: MetricsConfig = Field(default_factory=MetricsConfig)  # type: ignore[arg-type]

    @property
    def data_path(self) -> Path:
        return Path(self.server.data_dir)

    @property
    def database_path(self) -> Path:
        return Path(self.database.path) if self.database.path else self.data_path / "gortc.db"

    @property
    def public_url(self) -> str:
        if self.server.public_url:
            return self.server.public_url.rstrip("/")
        return f"http://{self.server.host}:{self.server.port}"

    @property
    def instance_url(self) -> str:
        """This instance's own address: where a call it hosts is signalled."""
        if self.server.instance_url:
            return self.server.instance_url.rstrip("/")
        return self.public_url

    def with_overrides(self, **sections: Mapping[str, Any]) -> Config:
        """A copy with some settings replaced, validated like any other source."""
        raw = self.model_dump()
        for section, values in sections.items():
            raw.setdefault(section, {}).update(values)
        return _validate(raw, {})


SECTIONS: dict[str, type[_Section]] = {
    name: field.annotation  # type: ignore[misc]
    for name, field in Config.model_fields.items()
}


def load_config(path: str | Path | None = None, environ: Mapping[str, str] | None = None) -> Config:
    """Read the TOML file (if any), apply ``GORTC_*`` overrides, validate.

    Raises ConfigError with a one-line message on any problem.
    """
    environ = os.environ if environ is None else environ
    raw: dict[str, Any] = {}
    if path is not None:
        try:
            raw = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"config file {path} does not exist") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"config file {path} cannot be read: {exc}") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None
    sources: dict[tuple[str, str], str] = {}
    for section, model in SECTIONS.items():
        for key, field in model.model_fields.items():
            name = f"GORTC_{section}_{key}".upper()
            if name in environ:
                value: Any = environ[name]
                if _is_list(field.annotation):
                    value = [item.strip() for item in value.split(",") if item.strip()]
                raw.setdefault(section, {})
                if not isinstance(raw[section], dict):
                    raise ConfigError(f"config: [{section}] must be a table")
                raw[section][key] = value
                sources[(section, key)] = name
    _reject_unknown_environment(environ)
    return _validate(raw, sources)


def _is_list(annotation: Any) -> bool:
    return getattr(annotation, "__origin__", None) is list


def _reject_unknown_environment(environ: Mapping[str, str]) -> None:
    # A typo in a variable name would otherwise be silently ignored; every
    # GORTC_* variable must name a setting.
    known = {
        f"GORTC_{section}_{key}".upper()
        for section, model in SECTIONS.items()
        for key in model.model_fields
    }
    for name in sorted(environ):
        if name.startswith("GORTC_") and name not in known:
            section = next((s for s in SECTIONS if name.startswith(f"GORTC_{s}_".upper())), None)
            where = f" of [{section}]" if section else ""
            raise ConfigError(f"config: {name} names no setting{where} (see config.toml)")


def _validate(raw: dict[str, Any], sources: Mapping[tuple[str, str], str]) -> Config:
    try:
        return Config.model_validate(raw)
    except ValidationError as exc:
        error = exc.errors()[0]
        location = [str(part) for part in error["loc"]]
        setting = ".".join(location) or "config"
        origin = sources.get((location[0], location[1])) if len(location) >= 2 else None
        where = f" (from {origin})" if origin else ""
        message = error["msg"]
        if error["type"] == "extra_forbidden":
            message = "unknown setting"
        raise ConfigError(f"config: {setting}: {message}{where}") from None
