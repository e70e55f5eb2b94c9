"""Groups, members and invitations on PostgreSQL."""

from __future__ import annotations

import asyncpg

from gortc.entities.errors import Conflict
from gortc.entities.groups import (
    Group,
    GroupKind,
    Invitation,
    Member,
    MemberView,
    MyGroup,
    Role,
    mention_counts,
)
from gortc.repositories.groups import UNREAD_CAP
from gortc.repositories.postgres.database import Connection

_GROUP_COLUMNS = "id, name, kind, owner_id, created_at, last_seq, last_change"


def _group(row: asyncpg.Record) -> Group:
    return Group(
        id=row["id"],
        name=row["name"],
        kind=GroupKind(row["kind"]),
        owner_id=row["owner_id"],
        created_at=row["created_at"],
        last_seq=row["last_seq"],
        last_change=row["last_change"],
    )


class PostgresGroupRepository:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    async def add(self, group: Group, direct_key: str | None = None) -> None:
        try:
            await self._conn.execute(
                "INSERT INTO groups (id, name, kind, owner_id, direct_key, last_seq, created_at) "
                "VALUES ($1, $2, $3, $4, $5, $6, $7)",
                group.id,
                group.name,
                group.kind.value,
                group.owner_id,
                direct_key,
                group.last_seq,
                group.created_at,
            )
        except asyncpg.UniqueViolationError:
            raise Conflict("that conversation exists already", code="conversation_exists") from None

    async def get(self, group_id: str) -> Group | None:
        row = await self._conn.fetchrow(
            f"SELECT {_GROUP_COLUMNS} FROM groups WHERE id = $1", group_id
        )
        return _group(row) if row else None

    async def get_direct(self, direct_key: str) -> Group | None:
        row = await self._conn.fetchrow(
            f"SELECT {_GROUP_COLUMNS} FROM groups WHERE direct_key = $1", direct_key
        )
        return _group(row) if row else None

    async def rename(self, group_id: str, name: str) -> None:
        await self._conn.execute("UPDATE groups SET name = $1 WHERE id = $2", name, group_id)

    async def set_owner(self, group_id: str, owner_id: str) -> None:
        await self._conn.execute(
            "UPDATE groups SET owner_id = $1 WHERE id = $2", owner_id, group_id
        )

    async def delete(self, group_id: str) -> None:
        # Messages, their search entries (a column of theirs), members and
        # invitations go by ON DELETE CASCADE.
        await self._conn.execute("DELETE FROM groups WHERE id = $1", group_id)

    async def get_for_user(self, user_id: str, group_id: str) -> MyGroup | None:
        found = await self._my_groups(user_id, "g.id = $2", group_id, 1)
        return found[0] if found else None

    async def list_for_user(
        self, user_id: str, *, limit: int, after: str | None = None
    ) -> list[MyGroup]:
        return await self._my_groups(user_id, "g.id > $2", after or "", limit)

    async def _my_groups(self, user_id: str, where: str, value: str, limit: int) -> list[MyGroup]:
        rows = await self._conn.fetch(
            f"""
            SELECT g.id, g.name, g.kind, g.owner_id, g.created_at, g.last_seq, g.last_change,
                   m.role, m.read_seq,
                   (SELECT count(*) FROM (
                        SELECT 1 FROM messages AS msg
                        WHERE msg.group_id = g.id AND msg.seq > m.read_seq
                          AND msg.deleted_at IS NULL
                          AND msg.sender_id IS DISTINCT FROM m.user_id
                        LIMIT {UNREAD_CAP}) AS capped) AS unread,
                   (SELECT other.user_id FROM members AS other
                    WHERE g.kind = 'direct' AND other.group_id = g.id
                      AND other.user_id <> m.user_id) AS peer_id
            FROM members AS m JOIN groups AS g ON g.id = m.group_id
            WHERE m.user_id = $1 AND {where}
            ORDER BY g.id
            LIMIT $3
            """,
            user_id,
            value,
            limit,
        )
        mentioned = await self._unread_mentions(
            user_id, [row["id"] for row in rows if row["unread"]]
        )
        return [
            MyGroup(
                group=_group(row),
                role=Role(row["role"]),
                read_seq=row["read_seq"],
                unread=row["unread"],
                peer_id=row["peer_id"],
                unread_mentions=mentioned.get(row["id"], 0),
            )
            for row in rows
        ]

    async def _unread_mentions(self, user_id: str, group_ids: list[str]) -> dict[str, int]:
        """As on SQLite (repositories/groups.py): the unread bodies of
        others holding "@username", judged whole words by ``mentions``."""
        if not group_ids:
            return {}
        username = await self._conn.fetchval("SELECT username FROM users WHERE id = $1", user_id)
        if username is None:
            return {}
        rows = await self._conn.fetch(
            f"""
            SELECT msg.group_id, msg.body
            FROM members AS m
            JOIN groups AS g ON g.id = m.group_id
            JOIN messages AS msg ON msg.group_id = m.group_id
                AND msg.seq > greatest(m.read_seq, g.last_seq - {UNREAD_CAP})
            WHERE m.user_id = $1 AND m.group_id = ANY($2::text[])
              AND msg.deleted_at IS NULL AND msg.sender_id IS DISTINCT FROM m.user_id
              AND strpos(lower(msg.body), $3) > 0
            """,
            user_id,
            group_ids,
            f"@{username}",
        )
        return mention_counts(((row["group_id"], row["body"]) for row in rows), username)


_MEMBER_COLUMNS = "group_id, user_id, role, joined_at, read_seq"


def _member(row: asyncpg.Record) -> Member:
    return Member(
        group_id=row["group_id"],
        user_id=row["user_id"],
        role=Role(row["role"]),
        joined_at=row["joined_at"],
        read_seq=row["read_seq"],
    )


class PostgresMemberRepository:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    async def get(self, group_id: str, user_id: str) -> Member | None:
        row = await self._conn.fetchrow(
            f"SELECT {_MEMBER_COLUMNS} FROM members WHERE group_id = $1 AND user_id = $2",
            group_id,
            user_id,
        )
        return _member(row) if row else None

    async def add(self, member: Member) -> None:
        try:
            await self._conn.execute(
                f"INSERT INTO members ({_MEMBER_COLUMNS}) VALUES ($1, $2, $3, $4, $5)",
                member.group_id,
                member.user_id,
                member.role.value,
                member.joined_at,
                member.read_seq,
            )
        except asyncpg.UniqueViolationError:
            raise Conflict("that user is a member already", code="already_member") from None

    async def set_role(self, group_id: str, user_id: str, role: Role) -> None:
        await self._conn.execute(
            "UPDATE members SET role = $1 WHERE group_id = $2 AND user_id = $3",
            role.value,
            group_id,
            user_id,
        )

    async def remove(self, group_id: str, user_id: str) -> None:
        await self._conn.execute(
            "DELETE FROM members WHERE group_id = $1 AND user_id = $2", group_id, user_id
        )

    async def user_ids(self, group_id: str) -> list[str]:
        rows = await self._conn.fetch("SELECT user_id FROM members WHERE group_id = $1", group_id)
        return [row[0] for row in rows]

    async def group_ids_for_user(self, user_id: str) -> list[str]:
        rows = await self._conn.fetch("SELECT group_id FROM members WHERE user_id = $1", user_id)
        return [row[0] for row in rows]

    async def mark_read(self, group_id: str, user_id: str, seq: int) -> int:
        read = await self._conn.fetchval(
            "UPDATE members SET read_seq = greatest(read_seq, least($1, "
            "(SELECT last_seq FROM groups WHERE id = $2))) "
            "WHERE group_id = $2 AND user_id = $3 RETURNING read_seq",
            seq,
            group_id,
            user_id,
        )
        return int(read) if read is not None else 0

    async def list(self, group_id: str) -> list[MemberView]:
        rows = await self._conn.fetch(
            "SELECT m.group_id, m.user_id, m.role, m.joined_at, m.read_seq, u.username, "
            "u.display_name FROM members AS m JOIN users AS u ON u.id = m.user_id "
            "WHERE m.group_id = $1 "
            "ORDER BY CASE m.role WHEN 'owner' THEN 0 WHEN 'admin' THEN 1 ELSE 2 END, "
            'u.username COLLATE "C"',
            group_id,
        )
        return [
            MemberView(
                member=_member(row), username=row["username"], display_name=row["display_name"]
            )
            for row in rows
        ]


_INVITATION_SELECT = (
    "SELECT i.id, i.group_id, i.user_id, i.inviter_id, i.created_at, g.name AS group_name "
    "FROM invitations AS i JOIN groups AS g ON g.id = i.group_id"
)


def _invitation(row: asyncpg.Record) -> Invitation:
    return Invitation(
        id=row["id"],
        group_id=row["group_id"],
        user_id=row["user_id"],
        inviter_id=row["inviter_id"],
        created_at=row["created_at"],
        group_name=row["group_name"],
    )


class PostgresInvitationRepository:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    async def add(self, invitation: Invitation) -> None:
        try:
            await self._conn.execute(
                "INSERT INTO invitations (id, group_id, user_id, inviter_id, created_at) "
                "VALUES ($1, $2, $3, $4, $5)",
                invitation.id,
                invitation.group_id,
                invitation.user_id,
                invitation.inviter_id,
                invitation.created_at,
            )
        except asyncpg.UniqueViolationError:
            raise Conflict("that user is invited already", code="already_invited") from None

    async def get(self, invitation_id: str) -> Invitation | None:
        row = await self._conn.fetchrow(f"{_INVITATION_SELECT} WHERE i.id = $1", invitation_id)
        return _invitation(row) if row else None

    async def delete(self, invitation_id: str) -> None:
        await self._conn.execute("DELETE FROM invitations WHERE id = $1", invitation_id)

    async def delete_for(self, group_id: str, user_id: str) -> None:
        await self._conn.execute(
            "DELETE FROM invitations WHERE group_id = $1 AND user_id = $2", group_id, user_id
        )

    async def list_for_user(self, user_id: str) -> list[Invitation]:
        rows = await self._conn.fetch(
            f"{_INVITATION_SELECT} WHERE i.user_id = $1 ORDER BY i.id", user_id
        )
        return [_invitation(row) for row in rows]

    async def list_for_group(self, group_id: str) -> list[Invitation]:
        rows = await self._conn.fetch(
            f"{_INVITATION_SELECT} WHERE i.group_id = $1 ORDER BY i.id", group_id
        )
        return [_invitation(row) for row in rows]
