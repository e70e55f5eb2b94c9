"""The group-commit message store, whatever the database beneath it.

Every message that arrives while a transaction is being committed waits for
the next one, which carries them all. Under load one commit (and one fsync)
serves hundreds of messages; alone, a message is committed at once.

What a batch decides is the same on every backend and lives here: which
drafts are from members, which repeat a ``client_id`` already stored (or
earlier in the batch), which carry files that are not their sender's or
answer a message they may not quote, and the numbers each stored message
gets. What a batch asks the database is a ``MessageBatch``: one write
transaction, implemented per backend (repositories/messages.py for SQLite,
repositories/postgres/messages.py).

Seqs come from ``groups.last_seq`` and change numbers from
``groups.last_change``, both bumped once per group per batch inside the
transaction, so seqs have no gaps however many processes write. Before it
reads anything, a batch locks the rows of its groups (``lock_groups``): any
other writer to those groups has committed by then, so the look-ups below
see its messages and no duplicate ``client_id`` can slip in between a
look-up and the insert. (SQLite's single writer holds that lock already.)

Membership is checked in that same transaction: a message from someone who
is not (or no longer) a member is refused with NotFound, like a missing
group. Files a draft carries must be its sender's (else NotFound
``file_not_found``); a draft's ``reply_to_id`` must name a message of its
group that is not deleted (else InvalidInput ``invalid_reply``). A refused
draft stores nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager
from itertools import groupby
from typing import Protocol

from gortc.entities.errors import NotFound
from gortc.entities.files import FileSummary
from gortc.entities.groups import Message, NewMessage, Quote, StoredMessage, invalid_reply

log = logging.getLogger(__name__)

# (group id, sender id, client id): what makes a resend the same message.
ClientKey = tuple[str, str, str]
# (owner id, file id) -> what messages show of the file
OwnedFiles = dict[tuple[str, str], FileSummary]
# message_files rows: (message id, file id, group id, position)
AttachmentRow = tuple[str, str, str, int]


class MessageBatch(Protocol):
    """The statements of one batch, all in one write transaction."""

    async def lock_groups(self, group_ids: Sequence[str]) -> None:
        """Holds the rows of these groups until the transaction ends."""
        ...

    async def memberships(self, pairs: Sequence[tuple[str, str]]) -> set[tuple[str, str]]:
        """Which (group, user) pairs are memberships."""
        ...

    async def stored_by_client_id(self, keys: Sequence[ClientKey]) -> dict[ClientKey, Message]:
        """The stored messages with these keys, complete (files, reactions, quote)."""
        ...

    async def files(self, file_ids: Sequence[str]) -> OwnedFiles:
        """The files of these ids, keyed by (owner, id)."""
        ...

    async def quotable(self, message_ids: Sequence[str]) -> dict[str, tuple[str, Quote]]:
        """The messages of these ids that are not deleted: id -> (group id, quote)."""
        ...

    async def take_numbers(self, counts: dict[str, int]) -> dict[str, tuple[int, int]]:
        """Reserves ``counts[group]`` consecutive seqs and change numbers per
        group; each group's first (seq, change). Deleted groups are absent."""
        ...

    async def insert(
        self, messages: Sequence[tuple[Message, str | None]], attached: Sequence[AttachmentRow]
    ) -> None:
        """Stores new messages (each with its reply_to_id), searchable from
        this commit on, and their message_files rows."""
        ...


BatchOpener = Callable[[], AbstractAsyncContextManager[MessageBatch]]


class GroupCommitMessageStore:
    """The MessageStore port: see the module's docstring."""

    def __init__(self, open_batch: BatchOpener, *, max_batch: int = 1000) -> None:
        self._open_batch = open_batch
        self._max_batch = max_batch
        self._pending: list[tuple[NewMessage, asyncio.Future[StoredMessage]]] = []
        self._flusher: asyncio.Task[None] | None = None

    async def add(self, draft: NewMessage) -> StoredMessage:
        future: asyncio.Future[StoredMessage] = asyncio.get_running_loop().create_future()
        self._pending.append((draft, future))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush(), name="gortc-message-commit")
        # Not shielded, and it need not be: a sender cancelled here only
        # cancels its future; the draft stays queued and is stored all the
        # same (``_flush`` skips futures already done).
        return await future

    async def close(self) -> None:
        if self._flusher is not None:
            with contextlib.suppress(Exception):
                await self._flusher

    async def _flush(self) -> None:
        while self._pending:
            batch = self._pending[: self._max_batch]
            del self._pending[: len(batch)]
            try:
                async with self._open_batch() as statements:
                    results = await write_batch(statements, [draft for draft, _ in batch])
            except Exception as exc:
                log.exception("storing %d messages failed", len(batch))
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                continue
            # Resolved in seq order, so the senders wake (and publish) in order.
            for (_, future), result in zip(batch, results, strict=True):
                if future.done():
                    continue
                if isinstance(result, StoredMessage):
                    future.set_result(result)
                else:
                    future.set_exception(result)


async def write_batch(
    statements: MessageBatch, drafts: list[NewMessage]
) -> list[StoredMessage | Exception]:
    """Decides and stores one batch; one result per draft, in order."""
    results: list[StoredMessage | Exception] = [
        NotFound("no such group", code="group_not_found")
    ] * len(drafts)
    await statements.lock_groups(sorted({draft.group_id for draft in drafts}))
    allowed = await statements.memberships(
        sorted({(draft.group_id, draft.sender_id) for draft in drafts})
    )
    accepted = [
        (index, draft)
        for index, draft in enumerate(drafts)
        if (draft.group_id, draft.sender_id) in allowed
    ]
    keys = sorted({key for _, draft in accepted if (key := client_key(draft)) is not None})
    stored = await statements.stored_by_client_id(keys) if keys else {}
    fresh: list[tuple[int, NewMessage]] = []
    first_of: dict[ClientKey, int] = {}  # key -> index of its first draft
    repeats: list[tuple[int, int]] = []  # (index, index of the first draft)
    for index, draft in accepted:
        key = client_key(draft)
        if key is not None:
            if key in stored:
                results[index] = StoredMessage(stored[key], is_new=False)
                continue
            if key in first_of:
                repeats.append((index, first_of[key]))
                continue
            first_of[key] = index
        fresh.append((index, draft))
    # Each file must be the sender's, checked in this transaction (a file
    # deleted meanwhile is caught); one query, only if any draft has files.
    file_ids = sorted({file_id for _, draft in fresh for file_id in draft.file_ids})
    owned = await statements.files(file_ids) if file_ids else {}
    refused = {index for index, draft in fresh if not _owns_all(draft, owned)}
    for index in refused:
        results[index] = file_not_found()
    fresh = [item for item in fresh if item[0] not in refused]
    # A reply must answer a message of its group that is not deleted,
    # checked here for the same reasons (one query, only for replies).
    reply_ids = sorted({draft.reply_to_id for _, draft in fresh if draft.reply_to_id})
    quotable = await statements.quotable(reply_ids) if reply_ids else {}
    refused = {
        index
        for index, draft in fresh
        if draft.reply_to_id is not None
        and quotable.get(draft.reply_to_id, ("", None))[0] != draft.group_id
    }
    for index in refused:
        results[index] = invalid_reply()
    fresh = [item for item in fresh if item[0] not in refused]
    fresh.sort(key=lambda item: item[1].group_id)
    by_group = {
        group_id: sorted(items, key=lambda item: item[0])  # the order they came in
        for group_id, items in ((g, list(i)) for g, i in groupby(fresh, key=_group_of))
    }
    numbers = (
        await statements.take_numbers(
            {group_id: len(items) for group_id, items in by_group.items()}
        )
        if by_group
        else {}
    )
    new: list[tuple[Message, str | None]] = []
    attached: list[AttachmentRow] = []
    for group_id, members in by_group.items():
        if group_id not in numbers:
            continue  # the group was deleted meanwhile
        first_seq, first_change = numbers[group_id]
        for offset, (index, draft) in enumerate(members):
            message = Message(
                id=draft.id,
                group_id=draft.group_id,
                seq=first_seq + offset,
                sender_id=draft.sender_id,
                body=draft.body,
                created_at=draft.created_at,
                file_ids=draft.file_ids,
                client_id=draft.client_id,
                change=first_change + offset,
                created_change=first_change + offset,
                files=tuple(owned[(draft.sender_id, file_id)] for file_id in draft.file_ids),
                reply_to=None if draft.reply_to_id is None else quotable[draft.reply_to_id][1],
            )
            results[index] = StoredMessage(message, is_new=True)
            attached.extend(attachment_rows(message))
            new.append((message, draft.reply_to_id))
    if new:
        await statements.insert(new, attached)
    for index, first in repeats:
        earlier = results[first]
        # If the first was refused (its group deleted meanwhile), so is this.
        results[index] = (
            StoredMessage(earlier.message, is_new=False)
            if isinstance(earlier, StoredMessage)
            else earlier
        )
    return results


def client_key(draft: NewMessage) -> ClientKey | None:
    if draft.client_id is None:
        return None
    return (draft.group_id, draft.sender_id, draft.client_id)


def _group_of(item: tuple[int, NewMessage]) -> str:
    return item[1].group_id


def _owns_all(draft: NewMessage, owned: OwnedFiles) -> bool:
    return all((draft.sender_id, file_id) in owned for file_id in draft.file_ids)


def file_not_found() -> NotFound:
    # The same answer as for a file that does not exist, whoever owns it.
    return NotFound("no such file", code="file_not_found")


def attachment_rows(message: Message) -> list[AttachmentRow]:
    """The message_files rows of a message being stored."""
    return [
        (message.id, file_id, message.group_id, position)
        for position, file_id in enumerate(message.file_ids)
    ]
