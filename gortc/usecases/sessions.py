"""Ending sign-ins: shared by sign-out, refresh-token reuse, password changes
and operators disabling an account."""

from __future__ import annotations

from datetime import datetime

from gortc.usecases.ports import EventPublisher, RevokedTokenStore, UnitOfWork


class SessionTerminator:
    """Revokes sessions in the database and their live access tokens in the
    revoked-token store, so both refresh and access tokens stop at once."""

    def __init__(
        self, uow: UnitOfWork, revoked: RevokedTokenStore, events: EventPublisher | None = None
    ) -> None:
        self._uow = uow
        self._revoked = revoked
        # Closes open WebSockets at once; without a hub (the operator
        # commands) the sockets notice at their next periodic check.
        self._events = events

    async def end_session(self, session_id: str, now: datetime) -> None:
        async with self._uow.transaction() as repos:
            tokens = await repos.sessions.revoke(session_id, now)
        await self._revoke_access(tokens)
        if self._events is not None:
            self._events.end_session(session_id)

    async def end_all_for_user(
        self, user_id: str, now: datetime, *, except_session_id: str | None = None
    ) -> None:
        async with self._uow.transaction() as repos:
            ended = await repos.sessions.active_ids_for_user(user_id, now)
            tokens = await repos.sessions.revoke_all_for_user(
                user_id, now, except_session_id=except_session_id
            )
        await self._revoke_access(tokens)
        if self._events is None:
            return
        if except_session_id is None:
            self._events.end_user(user_id)
        else:
            for session_id in ended:
                if session_id != except_session_id:
                    self._events.end_session(session_id)

    async def _revoke_access(self, tokens: list[tuple[str, datetime]]) -> None:
        for jti, expires_at in tokens:
            await self._revoked.revoke(jti, expires_at)
