"""What operators and administrators do to accounts: the ``gortc user`` and
``gortc invite`` commands and the admin API share these rules."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import timedelta

from gortc.entities.errors import Conflict, Forbidden, NotFound
from gortc.entities.ids import new_id
from gortc.entities.opaque_tokens import hash_opaque_token, new_opaque_token
from gortc.entities.sessions import Invite
from gortc.entities.users import User, check_password, normalize_email, normalize_username
from gortc.usecases.ports import (
    Clock,
    EventPublisher,
    PasswordHasher,
    RevokedTokenStore,
    UnitOfWork,
)
from gortc.usecases.sessions import SessionTerminator


@dataclass(frozen=True, slots=True)
class NewInvite:
    invite: Invite
    code: str  # shown once; only its hash is stored


class AdminService:
    """Account administration.

    ``actor_id`` names the administrator acting through the API; None means
    the operator at the server's console (the CLI), who may do anything.
    Raises NotFound for unknown users, Conflict for taken names, Forbidden
    when the actor is not an administrator.
    """

    def __init__(
        self,
        *,
        uow: UnitOfWork,
        revoked: RevokedTokenStore,
        hasher: PasswordHasher,
        clock: Clock,
        invite_ttl: int,
        events: EventPublisher | None = None,
    ) -> None:
        self._uow = uow
        self._hasher = hasher
        self._clock = clock
        self._invite_ttl = invite_ttl
        self._terminator = SessionTerminator(uow, revoked, events)

    async def add_user(
        self, *, username: str, email: str, password: str, admin: bool = False
    ) -> User:
        username = normalize_username(username)
        email = normalize_email(email)
        check_password(password)
        password_hash = await self._hasher.hash(password)
        now = self._clock.now()
        user = User(
            id=new_id(),
            username=username,
            email=email,
            display_name=username,
            password_hash=password_hash,
            is_admin=admin,
            # The operator vouches for the address.
            email_verified=True,
            disabled_at=None,
            created_at=now,
            updated_at=now,
        )
        async with self._uow.transaction() as repos:
            if await repos.users.get_by_login(username) is not None:
                raise Conflict("that username is taken", code="username_taken")
            if await repos.users.get_by_login(email) is not None:
                raise Conflict("that email is already registered", code="email_taken")
            await repos.users.add(user)
        return user

    async def list_users(self, *, limit: int = 100, after: str | None = None) -> list[User]:
        async with self._uow.reading() as repos:
            return await repos.users.list(limit=limit, after=after)

    async def set_disabled(self, login: str, disabled: bool) -> User:
        """Disables (and signs out everywhere) or re-enables an account."""
        now = self._clock.now()
        user = await self._find(login)
        updated = replace(user, disabled_at=now if disabled else None, updated_at=now)
        async with self._uow.transaction() as repos:
            await repos.users.update(updated)
        if disabled:
            await self._terminator.end_all_for_user(user.id, now)
        return updated

    async def set_password(self, login: str, password: str) -> User:
        """Sets a password and ends every sign-in of the account."""
        check_password(password)
        user = await self._find(login)
        now = self._clock.now()
        updated = replace(user, password_hash=await self._hasher.hash(password), updated_at=now)
        async with self._uow.transaction() as repos:
            await repos.users.update(updated)
        await self._terminator.end_all_for_user(user.id, now)
        return updated

    async def set_admin(self, login: str, admin: bool) -> User:
        user = await self._find(login)
        updated = replace(user, is_admin=admin, updated_at=self._clock.now())
        async with self._uow.transaction() as repos:
            await repos.users.update(updated)
        return updated

    async def create_invite(self, actor_id: str | None, note: str = "") -> NewInvite:
        await self._require_admin(actor_id)
        now = self._clock.now()
        code = new_opaque_token()
        invite = Invite(
            id=new_id(),
            code_hash=hash_opaque_token(code),
            created_by=actor_id,
            note=note.strip()[:200],
            created_at=now,
            expires_at=now + timedelta(seconds=self._invite_ttl),
            used_by=None,
            used_at=None,
        )
        async with self._uow.transaction() as repos:
            await repos.invites.add(invite)
        return NewInvite(invite=invite, code=code)

    async def list_invites(self, actor_id: str | None, *, limit: int = 100) -> list[Invite]:
        await self._require_admin(actor_id)
        async with self._uow.reading() as repos:
            return await repos.invites.list(limit=limit)

    async def _require_admin(self, actor_id: str | None) -> None:
        if actor_id is None:
            return
        async with self._uow.reading() as repos:
            actor = await repos.users.get(actor_id)
        if actor is None or not actor.is_admin or actor.is_disabled:
            raise Forbidden("only administrators may do this", code="admin_only")

    async def _find(self, login: str) -> User:
        async with self._uow.reading() as repos:
            user = await repos.users.get_by_login(login.strip().lower())
        if user is None:
            raise NotFound(f"no user {login!r}", code="user_not_found")
        return user
