"""Accounts and sign-ins: registration, login, tokens, profile, mailed links."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Literal

from gortc.entities.errors import (
    Conflict,
    DomainError,
    Forbidden,
    InvalidInput,
    NotFound,
    RateLimited,
    TooLarge,
    Unauthenticated,
    UnsupportedMediaType,
)
from gortc.entities.ids import new_id
from gortc.entities.images import sniff_image_type
from gortc.entities.opaque_tokens import hash_opaque_token, new_opaque_token
from gortc.entities.sessions import (
    AccessClaims,
    IssuedTokens,
    OneTimePurpose,
    OneTimeToken,
    RefreshToken,
    Session,
    SessionKind,
)
from gortc.entities.users import (
    User,
    check_password,
    normalize_display_name,
    normalize_email,
    normalize_username,
)
from gortc.usecases.blob_garbage import delete_unreferenced
from gortc.usecases.ports import (
    AccessTokenCodec,
    BlobLocation,
    BlobStore,
    Clock,
    EventPublisher,
    Mailer,
    MailMessage,
    PasswordHasher,
    RateLimiter,
    Repositories,
    RevokedTokenStore,
    ServedAs,
    UnitOfWork,
)
from gortc.usecases.sessions import SessionTerminator

log = logging.getLogger(__name__)

AVATAR_MAX_BYTES = 2 * 1024 * 1024
# A presigned picture URL of the object store: followed at once.
AVATAR_LOCATION_SECONDS = 300


@dataclass(frozen=True, slots=True)
class AccountSettings:
    signup: Literal["open", "invite", "closed"] = "open"
    access_token_ttl: int = 900
    refresh_token_ttl: int = 30 * 24 * 3600
    email_verification_ttl: int = 24 * 3600
    password_reset_ttl: int = 3600
    public_url: str = "http://127.0.0.1:8080"
    limits_enabled: bool = True
    login_per_ip_per_minute: int = 20
    login_per_account_per_minute: int = 10
    register_per_ip_per_hour: int = 20
    mail_per_account_per_hour: int = 5


@dataclass(frozen=True, slots=True)
class ClientInfo:
    """Where a request came from, for rate limits and the sessions list."""

    ip: str = ""
    user_agent: str = ""


@dataclass(frozen=True, slots=True)
class SignedIn:
    user: User
    session: Session
    tokens: IssuedTokens | None  # None for a cookie session


class AccountService:
    """Registration, sign-in and the user's own profile.

    Raises the errors of ``gortc.entities.errors``: InvalidInput for values
    breaking a rule, Conflict for taken names, Unauthenticated for bad
    credentials or tokens, Forbidden where policy says no, RateLimited when
    attempts come too fast.
    """

    def __init__(
        self,
        *,
        uow: UnitOfWork,
        revoked: RevokedTokenStore,
        hasher: PasswordHasher,
        tokens: AccessTokenCodec,
        mailer: Mailer,
        limiter: RateLimiter,
        blobs: BlobStore,
        clock: Clock,
        settings: AccountSettings,
        events: EventPublisher | None = None,
    ) -> None:
        self._uow = uow
        self._revoked = revoked
        self._hasher = hasher
        self._tokens = tokens
        self._mailer = mailer
        self._limiter = limiter
        self._blobs = blobs
        self._clock = clock
        self._settings = settings
        self._terminator = SessionTerminator(uow, revoked, events)
        # A hash to verify against when the login names nobody, so that the
        # answer takes as long as for a real account.
        self._dummy_hash: str | None = None

    # -- registration -----------------------------------------------------

    async def register(
        self,
        *,
        username: str,
        email: str,
        password: str,
        invite_code: str | None = None,
        client: ClientInfo = ClientInfo(),
    ) -> User:
        """Creates an account. The very first account becomes an administrator
        (under the invite policy it too needs a code: ``gortc invite create``)."""
        await self._limit(
            f"register:ip:{client.ip}", self._settings.register_per_ip_per_hour, 3600.0
        )
        if self._settings.signup == "closed":
            raise Forbidden("sign-up is closed on this server", code="signup_closed")
        if self._settings.signup == "invite" and not invite_code:
            raise Forbidden("sign-up needs an invite code", code="invite_required")
        username = normalize_username(username)
        email = normalize_email(email)
        check_password(password)
        password_hash = await self._hasher.hash(password)
        now = self._clock.now()
        user_id = new_id()
        async with self._uow.transaction() as repos:
            await self._check_available(repos, username, email)
            is_first = await repos.users.count() == 0
            user = User(
                id=user_id,
                username=username,
                email=email,
                display_name=username,
                password_hash=password_hash,
                is_admin=is_first,
                email_verified=False,
                disabled_at=None,
                created_at=now,
                updated_at=now,
            )
            await repos.users.add(user)
            if self._settings.signup == "invite":
                assert invite_code is not None
                if not await repos.invites.consume(hash_opaque_token(invite_code), user_id, now):
                    raise Forbidden(
                        "the invite code is unknown, used or expired", code="invalid_invite"
                    )
        await self._send_verification(user)
        return user

    @staticmethod
    async def _check_available(repos: Repositories, username: str, email: str) -> None:
        if await repos.users.get_by_login(username) is not None:
            raise Conflict("that username is taken", code="username_taken")
        if await repos.users.get_by_login(email) is not None:
            raise Conflict("that email is already registered", code="email_taken")

    # -- signing in and out -----------------------------------------------

    async def login(
        self,
        *,
        login: str,
        password: str,
        kind: SessionKind = SessionKind.TOKEN,
        client: ClientInfo = ClientInfo(),
    ) -> SignedIn:
        """Checks the password of the user named by username or email and
        opens a session: a refresh-token family, or a browser cookie session."""
        key = login.strip().lower()
        await self._limit(f"login:ip:{client.ip}", self._settings.login_per_ip_per_minute, 60.0)
        async with self._uow.reading() as repos:
            user = await repos.users.get_by_login(key) if key else None
        # One bucket per account, whichever name it is addressed by.
        account = user.id if user is not None else key
        await self._limit(
            f"login:account:{account}", self._settings.login_per_account_per_minute, 60.0
        )
        if user is None:
            await self._hasher.verify(password, await self._get_dummy_hash())
            raise Unauthenticated("wrong login or password", code="invalid_credentials")
        if not await self._hasher.verify(password, user.password_hash):
            raise Unauthenticated("wrong login or password", code="invalid_credentials")
        if user.is_disabled:
            raise Forbidden("this account is disabled", code="account_disabled")
        now = self._clock.now()
        session = Session(
            id=new_id(),
            user_id=user.id,
            kind=kind,
            created_at=now,
            expires_at=now + timedelta(seconds=self._settings.refresh_token_ttl),
            revoked_at=None,
            user_agent=client.user_agent[:256],
            ip=client.ip,
        )
        async with self._uow.transaction() as repos:
            await repos.sessions.add(session)
            tokens = await self._issue_tokens(repos, session) if kind is SessionKind.TOKEN else None
        return SignedIn(user=user, session=session, tokens=tokens)

    async def refresh(self, refresh_token: str) -> tuple[User, IssuedTokens]:
        """Rotates a refresh token. Presenting a token that was already rotated
        is taken as theft: the whole family (session) is revoked."""
        token_hash = hash_opaque_token(refresh_token)
        now = self._clock.now()
        reused_session: str | None = None
        async with self._uow.transaction() as repos:
            stored = await repos.refresh_tokens.get(token_hash)
            session = await repos.sessions.get(stored.session_id) if stored else None
            if stored is None or session is None:
                raise Unauthenticated("the refresh token is not valid", code="invalid_token")
            if not session.is_active(now):
                raise Unauthenticated(
                    "the refresh token has expired or was revoked", code="invalid_token"
                )
            user = await repos.users.get(session.user_id)
            if user is None or user.is_disabled:
                raise Unauthenticated("the account is disabled", code="invalid_token")
            if await repos.refresh_tokens.mark_used(token_hash, now):
                tokens = await self._issue_tokens(repos, session)
            else:
                reused_session = session.id
        if reused_session is not None:
            # Outside the transaction above, so the revocation is committed.
            await self._terminator.end_session(reused_session, now)
            log.warning("refresh token reuse: session %s revoked", reused_session)
            raise Unauthenticated(
                "the refresh token was already used; that sign-in has been ended",
                code="token_reused",
            )
        return user, tokens

    async def _issue_tokens(self, repos: Repositories, session: Session) -> IssuedTokens:
        now = self._clock.now()
        access_token, claims = self._tokens.issue(session.user_id, session.id, now)
        refresh_token = new_opaque_token()
        await repos.refresh_tokens.add(
            RefreshToken(
                token_hash=hash_opaque_token(refresh_token),
                session_id=session.id,
                access_jti=claims.jti,
                access_expires_at=claims.expires_at,
                created_at=now,
                used_at=None,
            )
        )
        return IssuedTokens(
            access_token=access_token,
            refresh_token=refresh_token,
            expires_in=int((claims.expires_at - now).total_seconds()),
        )

    async def logout(self, claims: AccessClaims) -> None:
        """Ends the sign-in the access token belongs to, and the token itself."""
        now = self._clock.now()
        await self._revoked.revoke(claims.jti, claims.expires_at)
        await self._terminator.end_session(claims.session_id, now)

    async def end_cookie_session(self, session_id: str) -> None:
        await self._terminator.end_session(session_id, self._clock.now())

    async def list_sessions(self, user_id: str) -> list[tuple[Session, datetime | None]]:
        """The user's sign-ins still going ("my sessions"), newest first,
        each with when it last renewed its tokens."""
        async with self._uow.reading() as repos:
            return await repos.sessions.active_for_user(user_id, self._clock.now())

    async def end_own_session(self, user_id: str, session_id: str) -> None:
        """Signs one of the user's own devices out: its tokens, its cookie
        and its open sockets stop at once. Someone else's sign-in, or one
        that already ended, is NotFound (its existence is not told)."""
        now = self._clock.now()
        async with self._uow.reading() as repos:
            session = await repos.sessions.get(session_id)
        if session is None or session.user_id != user_id or not session.is_active(now):
            raise NotFound("no such sign-in", code="session_not_found")
        await self._terminator.end_session(session_id, now)

    async def authenticate_token(self, access_token: str) -> AccessClaims:
        """The claims of a valid, unrevoked access token; else Unauthenticated."""
        claims = self._tokens.verify(access_token, self._clock.now())
        if await self._revoked.is_revoked(claims.jti):
            raise Unauthenticated("the access token was revoked", code="invalid_token")
        return claims

    async def check_still_signed_in(self, session_id: str, jti: str | None) -> None:
        """For long-lived connections: Unauthenticated once the sign-in has
        ended (sign-out, password reset, disabled account) or its access
        token was revoked."""
        if jti is not None and await self._revoked.is_revoked(jti):
            raise Unauthenticated("the access token was revoked", code="session_ended")
        async with self._uow.reading() as repos:
            session = await repos.sessions.get(session_id)
        if session is None or not session.is_active(self._clock.now()):
            raise Unauthenticated("the session has ended; sign in again", code="session_ended")

    async def authenticate_cookie_session(self, session_id: str) -> Session:
        async with self._uow.reading() as repos:
            session = await repos.sessions.get(session_id)
        if (
            session is None
            or session.kind is not SessionKind.COOKIE
            or not session.is_active(self._clock.now())
        ):
            raise Unauthenticated("the session has ended; sign in again", code="session_ended")
        return session

    # -- the user's own profile -------------------------------------------

    async def get_user(self, user_id: str) -> User:
        async with self._uow.reading() as repos:
            user = await repos.users.get(user_id)
        if user is None:
            raise NotFound("no such user", code="user_not_found")
        return user

    async def update_profile(
        self,
        user_id: str,
        *,
        display_name: str | None = None,
        email: str | None = None,
        current_password: str | None = None,
    ) -> User:
        """Changes the display name, or the email (which needs the password
        and a new verification)."""
        user = await self.get_user(user_id)
        changes: dict[str, object] = {}
        if display_name is not None:
            changes["display_name"] = normalize_display_name(display_name) or user.username
        new_email = normalize_email(email) if email is not None else None
        if new_email is not None and new_email.lower() != user.email.lower():
            await self._require_password(user, current_password)
            changes["email"] = new_email
            changes["email_verified"] = False
        elif new_email is not None and new_email != user.email:
            changes["email"] = new_email  # same address, other capitalisation
        if not changes:
            return user
        updated = replace(user, updated_at=self._clock.now(), **changes)  # type: ignore[arg-type]
        async with self._uow.transaction() as repos:
            if "email" in changes:
                holder = await repos.users.get_by_login(updated.email)
                if holder is not None and holder.id != user.id:
                    raise Conflict("that email is already registered", code="email_taken")
            await repos.users.update(updated)
            if "email_verified" in changes:
                # Links mailed to the old address must not work any more.
                for purpose in OneTimePurpose:
                    await repos.one_time_tokens.invalidate_for_user(
                        user.id, purpose, self._clock.now()
                    )
        if "email_verified" in changes:
            await self._send_verification(updated)
        return updated

    async def change_password(
        self, user_id: str, *, current_password: str, new_password: str, session_id: str
    ) -> None:
        """Sets a new password and ends every other sign-in of the user."""
        user = await self.get_user(user_id)
        await self._require_password(user, current_password)
        check_password(new_password)
        new_hash = await self._hasher.hash(new_password)
        now = self._clock.now()
        async with self._uow.transaction() as repos:
            await repos.users.update(replace(user, password_hash=new_hash, updated_at=now))
            # A reset link mailed earlier would undo the change.
            await repos.one_time_tokens.invalidate_for_user(
                user.id, OneTimePurpose.RESET_PASSWORD, now
            )
        await self._terminator.end_all_for_user(user.id, now, except_session_id=session_id)

    async def _require_password(self, user: User, password: str | None) -> None:
        if not password or not await self._hasher.verify(password, user.password_hash):
            raise Forbidden("the current password is wrong", code="wrong_password")

    async def set_avatar(self, user_id: str, data: bytes) -> User:
        """Stores a PNG, JPEG or WebP picture (checked by content, at most 2 MB)."""
        if len(data) > AVATAR_MAX_BYTES:
            raise TooLarge("the picture must be at most 2 MB", code="avatar_too_large")
        media_type = sniff_image_type(data)
        if media_type is None:
            raise UnsupportedMediaType(
                "the picture must be a PNG, JPEG or WebP image", code="unsupported_image"
            )
        user = await self.get_user(user_id)
        # The same protocol as the file store (usecases/files.py): the bytes
        # are staged, and put under their hash inside the transaction that
        # takes the reference, so that no deletion of identical, momentarily
        # unreferenced bytes (an avatar or a file) can remove them meanwhile.
        staged = await self._blobs.stage(_single_chunk(data), AVATAR_MAX_BYTES)
        updated = replace(
            user,
            avatar_sha256=staged.sha256,
            avatar_type=media_type,
            updated_at=self._clock.now(),
        )
        promoted = False
        try:
            await self._blobs.wait_durable([staged])
            async with self._uow.transaction() as repos:
                await repos.blobs.acquire(staged.sha256, staged.size)
                await repos.users.update(updated)
                orphan = user.avatar_sha256 and await repos.blobs.release(user.avatar_sha256)
                promoted = True
                await self._blobs.promote(staged)
        except BaseException:
            if promoted:  # the commit failed after the bytes were put in place
                await self._collect_garbage(staged.sha256)
            raise
        finally:
            await self._blobs.discard(staged)
        if orphan and user.avatar_sha256:
            await self._collect_garbage(user.avatar_sha256)
        return updated

    async def _collect_garbage(self, sha256: str) -> None:
        await delete_unreferenced(self._uow, self._blobs, [sha256])

    async def remove_avatar(self, user_id: str) -> None:
        user = await self.get_user(user_id)
        if user.avatar_sha256 is None:
            return
        async with self._uow.transaction() as repos:
            await repos.users.update(
                replace(user, avatar_sha256=None, avatar_type=None, updated_at=self._clock.now())
            )
            orphan = await repos.blobs.release(user.avatar_sha256)
        if orphan:
            await self._collect_garbage(user.avatar_sha256)

    async def avatar(self, user_id: str, cache_control: str) -> tuple[BlobLocation, ServedAs]:
        """Where a client gets a user's picture, and how it is served (its
        media type, ``cache_control``)."""
        user = await self.get_user(user_id)
        if user.avatar_sha256 is None or user.avatar_type is None:
            raise NotFound("this user has no picture", code="no_avatar")
        served = ServedAs(content_type=user.avatar_type, cache_control=cache_control)
        location = await self._blobs.locate(user.avatar_sha256, served, AVATAR_LOCATION_SECONDS)
        return location, served

    # -- mailed links -----------------------------------------------------

    async def request_email_verification(self, user_id: str) -> None:
        user = await self.get_user(user_id)
        if user.email_verified:
            raise Conflict("the email address is already verified", code="already_verified")
        await self._limit(f"mail:{user.id}", self._settings.mail_per_account_per_hour, 3600.0)
        await self._send_verification(user)

    async def verify_email(self, token: str) -> User:
        """``token`` from the mailed link, or the code pasted from the mail
        (spaces and line breaks around it, as copying brings, are ignored)."""
        now = self._clock.now()
        async with self._uow.transaction() as repos:
            used = await repos.one_time_tokens.consume(
                hash_opaque_token(token.strip()), OneTimePurpose.VERIFY_EMAIL, now
            )
            user = await repos.users.get(used.user_id) if used else None
            if used is None or user is None:
                raise InvalidInput(
                    "the verification link is unknown, used or expired", code="invalid_token"
                )
            if user.email.lower() != used.email.lower():
                raise InvalidInput(
                    "the email address changed after this link was sent", code="invalid_token"
                )
            user = replace(user, email_verified=True, updated_at=now)
            await repos.users.update(user)
        return user

    async def request_password_reset(self, email: str, client: ClientInfo = ClientInfo()) -> None:
        """Mails a reset link if the address belongs to an active account.
        Answers the same either way, so nobody learns who has an account."""
        await self._limit(f"reset:ip:{client.ip}", self._settings.login_per_ip_per_minute, 60.0)
        address = normalize_email(email)
        async with self._uow.reading() as repos:
            user = await repos.users.get_by_login(address)
        if user is None or user.is_disabled or user.email.lower() != address.lower():
            return
        try:
            await self._limit(f"mail:{user.id}", self._settings.mail_per_account_per_hour, 3600.0)
        except RateLimited:
            return  # silently: a 429 here would reveal that the account exists
        token = await self._new_one_time_token(
            user, OneTimePurpose.RESET_PASSWORD, self._settings.password_reset_ttl
        )
        link = f"{self._settings.public_url}/#reset-password?token={token}"
        await self._deliver(
            MailMessage(
                to=user.email,
                subject="Reset your gortc password",
                body=(
                    f"Hello {user.display_name},\n\n"
                    f"Someone asked to reset the password of the gortc account "
                    f"'{user.username}'. To choose a new one, open:\n\n{link}\n\n"
                    f"or use this code: {token}\n\n"
                    f"The link works once, for {self._settings.password_reset_ttl // 60} "
                    f"minutes. If it was not you, ignore this mail.\n"
                ),
            )
        )

    async def reset_password(self, token: str, new_password: str) -> None:
        """Sets a new password from a mailed token and ends every sign-in."""
        check_password(new_password)
        new_hash = await self._hasher.hash(new_password)
        now = self._clock.now()
        async with self._uow.transaction() as repos:
            used = await repos.one_time_tokens.consume(
                hash_opaque_token(token.strip()), OneTimePurpose.RESET_PASSWORD, now
            )
            user = await repos.users.get(used.user_id) if used else None
            if used is None or user is None or user.is_disabled:
                raise InvalidInput(
                    "the reset link is unknown, used or expired", code="invalid_token"
                )
            # The mail reached its owner, so the address is proven too.
            verified = user.email_verified or user.email.lower() == used.email.lower()
            await repos.users.update(
                replace(user, password_hash=new_hash, email_verified=verified, updated_at=now)
            )
            await repos.one_time_tokens.invalidate_for_user(
                user.id, OneTimePurpose.RESET_PASSWORD, now
            )
        await self._terminator.end_all_for_user(user.id, now)

    async def _send_verification(self, user: User) -> None:
        token = await self._new_one_time_token(
            user, OneTimePurpose.VERIFY_EMAIL, self._settings.email_verification_ttl
        )
        link = f"{self._settings.public_url}/#verify-email?token={token}"
        await self._deliver(
            MailMessage(
                to=user.email,
                subject="Confirm your email address for gortc",
                body=(
                    f"Hello {user.display_name},\n\n"
                    f"Please confirm that this address belongs to the gortc account "
                    f"'{user.username}' by opening:\n\n{link}\n\n"
                    f"or use this code: {token}\n\n"
                    f"The link works once, for "
                    f"{self._settings.email_verification_ttl // 3600} hours.\n"
                ),
            )
        )

    async def _new_one_time_token(self, user: User, purpose: OneTimePurpose, ttl: int) -> str:
        token = new_opaque_token()
        now = self._clock.now()
        async with self._uow.transaction() as repos:
            await repos.one_time_tokens.add(
                OneTimeToken(
                    token_hash=hash_opaque_token(token),
                    user_id=user.id,
                    purpose=purpose,
                    email=user.email,
                    created_at=now,
                    expires_at=now + timedelta(seconds=ttl),
                    used_at=None,
                )
            )
        return token

    async def _deliver(self, message: MailMessage) -> None:
        # A mail server outage must not undo the account change that caused
        # the mail; the user can ask for the mail again.
        try:
            await self._mailer.send(message)
        except DomainError as exc:
            log.error("mail to %s failed: %s", message.to, exc.message)

    # -- helpers ----------------------------------------------------------

    async def _limit(self, key: str, capacity: int, period: float) -> None:
        if not self._settings.limits_enabled:
            return
        wait = await self._limiter.hit(key, capacity, period)
        if wait > 0:
            raise RateLimited("too many attempts; try again later", retry_after=wait)

    async def _get_dummy_hash(self) -> str:
        if self._dummy_hash is None:
            self._dummy_hash = await self._hasher.hash(new_opaque_token())
        return self._dummy_hash


async def _single_chunk(data: bytes) -> AsyncIterator[bytes]:
    yield data
