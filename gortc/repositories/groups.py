"""Groups, members and invitations in SQLite."""

from __future__ import annotations

import sqlite3

import aiosqlite

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
from gortc.entities.timestamps import from_text, to_text
from gortc.repositories import message_index
from gortc.repositories.database import fetch_all, fetch_one

# Unread counts stop here: "999+" is all anyone needs to know.
UNREAD_CAP = 1000


def _group(row: sqlite3.Row) -> Group:
    return Group(
        id=row["id"],
        name=row["name"],
        kind=GroupKind(row["kind"]),
        owner_id=row["owner_id"],
        created_at=from_text(row["created_at"]),
        last_seq=row["last_seq"],
        last_change=row["last_change"],
    )


class SqliteGroupRepository:
    def __init__(self, conn: aiosqlite.Connection) -> None:
        self._conn = conn

    async def add(self, group: Group, direct_key: str | None = None) -> None:
        try:
            await self._conn.execute(
                "INSERT INTO groups (id, name, kind, owner_id, direct_key, last_seq, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    group.id,
                    group.name,
                    group.kind.value,
                    group.owner_id,
                    direct_key,
                    group.last_seq,
                    to_text(group.created_at),
                ),
            )
        except sqlite3.IntegrityError:
            raise Conflict("that conversation exists already", code="conversation_exists") from None

    async def get(self, group_id: str) -> Group | None:
        row = await fetch_one(self._conn, "SELECT * FROM groups WHERE id = ?", (group_id,))
        return _group(row) if row else None

    async def get_direct(self, direct_key: str) -> Group | None:
        row = await fetch_one(
            self._conn, "SELECT * FROM groups WHERE direct_key = ?", (direct_key,)
        )
        return _group(row) if row else None

    async def rename(self, group_id: str, name: str) -> None:
        await self._conn.execute("UPDATE groups SET name = ? WHERE id = ?", (name, group_id))

    async def set_owner(self, group_id: str, owner_id: str) -> None:
        await self._conn.execute(
            "UPDATE groups SET owner_id = ? WHERE id = ?", (owner_id, group_id)
        )

    async def delete(self, group_id: str) -> None:
        # Its messages go by ON DELETE CASCADE, which the search index
        # cannot see: their entries are taken out first.
        await message_index.forget_group(self._conn, group_id)
        await self._conn.execute("DELETE FROM groups WHERE id = ?", (group_id,))

    async def get_for_user(self, user_id: str, group_id: str) -> MyGroup | None:
        found = await self._my_groups(user_id, "g.id = ?", group_id, 1)
        return found[0] if found else None

    async def list_for_user(
        self, user_id: str, *, limit: int, after: str | None = None
    ) -> list[MyGroup]:
        return await self._my_groups(user_id, "g.id > ?", after or "", limit)

    async def _my_groups(self, user_id: str, where: str, value: str, limit: int) -> list[MyGroup]:
        rows = await fetch_all(
            self._conn,
            f"""
            SELECT g.*, m.role, m.read_seq,
                   (SELECT count(*) FROM (
                        SELECT 1 FROM messages AS msg
                        WHERE msg.group_id = g.id AND msg.seq > m.read_seq
                          AND msg.deleted_at IS NULL AND msg.sender_id IS NOT m.user_id
                        LIMIT {UNREAD_CAP})) AS unread,
                   (SELECT other.user_id FROM members AS other
                    WHERE g.kind = 'direct' AND other.group_id = g.id
                      AND other.user_id != m.user_id) AS peer_id
            FROM members AS m JOIN groups AS g ON g.id = m.group_id
            WHERE m.user_id = ? AND {where}
            ORDER BY g.id
            LIMIT ?
            """,
            (user_id, value, limit),
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
        """How many unread messages of others mention the user, per group.
        Read among the newest UNREAD_CAP messages of each group, like the
        unread count: one range of the (group_id, seq) index per group, and
        only the bodies holding "@username" come back, to be judged whole
        words by ``mentions``. One query for the page; none without unread."""
        if not group_ids:
            return {}
        row = await fetch_one(self._conn, "SELECT username FROM users WHERE id = ?", (user_id,))
        if row is None:
            return {}
        username: str = row[0]
        rows = await fetch_all(
            self._conn,
            f"""
            SELECT msg.group_id, msg.body
            FROM members AS m
            JOIN groups AS g ON g.id = m.group_id
            JOIN messages AS msg ON msg.group_id = m.group_id
                AND msg.seq > max(m.read_seq, g.last_seq - {UNREAD_CAP})
            WHERE m.user_id = ? AND m.group_id IN ({", ".join("?" * len(group_ids))})
              AND msg.deleted_at IS NULL AND msg.sender_id IS NOT m.user_id
              AND instr(lower(msg.body), ?) > 0
            """,
            (user_id, *group_ids, f"@{username}"),
        )
        return mention_counts(((row["group_id"], row["body"]) for row in rows), username)


def _member(row: sqlite3.Row) -> Member:
    return Member(
        group_id=row["group_id"],
        user_id=row["user_id"],
        role=Role(row["role"]),
        joined_at=from_text(row["joined_at"]),
        read_seq=row["read_seq"],
    )


class SqliteMemberRepository:
    def __init__(self, conn: aiosqlite.Connection) -> None:
        self._conn = conn

    async def get(self, group_id: str, user_id: str) -> Member | None:
        row = await fetch_one(
            self._conn,
            "SELECT * FROM members WHERE group_id = ? AND user_id = ?",
            (group_id, user_id),
        )
        return _member(row) if row else None

    async def add(self, member: Member) -> None:
        try:
            await self._conn.execute(
                "INSERT INTO members (group_id, user_id, role, joined_at, read_seq) "
                "VALUES (?, ?, ?, ?, ?)",
                (
                    member.group_id,
                    member.user_id,
                    member.role.value,
                    to_text(member.joined_at),
                    member.read_seq,
                ),
            )
        except sqlite3.IntegrityError:
            raise Conflict("that user is a member already", code="already_member") from None

    async def set_role(self, group_id: str, user_id: str, role: Role) -> None:
        await self._conn.execute(
            "UPDATE members SET role = ? WHERE group_id = ? AND user_id = ?",
            (role.value, group_id, user_id),
        )

    async def remove(self, group_id: str, user_id: str) -> None:
        await self._conn.execute(
            "DELETE FROM members WHERE group_id = ? AND user_id = ?", (group_id, user_id)
        )

    async def user_ids(self, group_id: str) -> list[str]:
        rows = await fetch_all(
            self._conn, "SELECT user_id FROM members WHERE group_id = ?", (group_id,)
        )
        return [row[0] for row in rows]

    async def group_ids_for_user(self, user_id: str) -> list[str]:
        rows = await fetch_all(
            self._conn, "SELECT group_id FROM members WHERE user_id = ?", (user_id,)
        )
        return [row[0] for row in rows]

    async def mark_read(self, group_id: str, user_id: str, seq: int) -> int:
        row = await fetch_one(
            self._conn,
            "UPDATE members SET read_seq = max(read_seq, min(?, "
            "(SELECT last_seq FROM groups WHERE id = ?))) "
            "WHERE group_id = ? AND user_id = ? RETURNING read_seq",
            (seq, group_id, group_id, user_id),
        )
        return int(row[0]) if row else 0

    async def list(self, group_id: str) -> list[MemberView]:
        rows = await fetch_all(
            self._conn,
            "SELECT m.*, u.username, u.display_name FROM members AS m "
            "JOIN users AS u ON u.id = m.user_id WHERE m.group_id = ? "
            "ORDER BY CASE m.role WHEN 'owner' THEN 0 WHEN 'admin' THEN 1 ELSE 2 END, "
            "u.username",
            (group_id,),
        )
        return [
            MemberView(
                member=_member(row), username=row["username"], display_name=row["display_name"]
            )
            for row in rows
        ]


def _invitation(row: sqlite3.Row) -> Invitation:
    return Invitation(
        id=row["id"],
        group_id=row["group_id"],
        user_id=row["user_id"],
        inviter_id=row["inviter_id"],
        created_at=from_text(row["created_at"]),
        group_name=row["group_name"],
    )


_INVITATION_SELECT = (
    "SELECT i.*, g.name AS group_name FROM invitations AS i JOIN groups AS g ON g.id = i.group_id"
)


class SqliteInvitationRepository:
    def __init__(self, conn: aiosqlite.Connection) -> None:
        self._conn = conn

    async def add(self, invitation: Invitation) -> None:
        try:
            await self._conn.execute(
                "INSERT INTO invitations (id, group_id, user_id, inviter_id, created_at) "
                "VALUES (?, ?, ?, ?, ?)",
                (
                    invitation.id,
                    invitation.group_id,
                    invitation.user_id,
                    invitation.inviter_id,
                    to_text(invitation.created_at),
                ),
            )
        except sqlite3.IntegrityError:
            raise Conflict("that user is invited already", code="already_invited") from None

    async def get(self, invitation_id: str) -> Invitation | None:
        row = await fetch_one(self._conn, f"{_INVITATION_SELECT} WHERE i.id = ?", (invitation_id,))
        return _invitation(row) if row else None

    async def delete(self, invitation_id: str) -> None:
        await self._conn.execute("DELETE FROM invitations WHERE id = ?", (invitation_id,))

    async def delete_for(self, group_id: str, user_id: str) -> None:
        await self._conn.execute(
            "DELETE FROM invitations WHERE group_id = ? AND user_id = ?", (group_id, user_id)
        )

    async def list_for_user(self, user_id: str) -> list[Invitation]:
        rows = await fetch_all(
            self._conn, f"{_INVITATION_SELECT} WHERE i.user_id = ? ORDER BY i.id", (user_id,)
        )
        return [_invitation(row) for row in rows]

    async def list_for_group(self, group_id: str) -> list[Invitation]:
        rows = await fetch_all(
            self._conn, f"{_INVITATION_SELECT} WHERE i.group_id = ? ORDER BY i.id", (group_id,)
        )
        return [_invitation(row) for row in rows]
