"""Search: messages in the caller's groups, and people by name."""

from __future__ import annotations

from dataclasses import dataclass

from gortc.entities.errors import InvalidInput
from gortc.entities.message_search import (
    MAX_RELEVANCE_OFFSET,
    QUERY_MAX_LENGTH,
    MessageHit,
    SearchCursor,
    SearchOrder,
    search_identity,
)
from gortc.entities.name_search import QUERY_MAX_LENGTH as NAME_QUERY_MAX_LENGTH
from gortc.entities.name_search import fold, score_name
from gortc.entities.query_syntax import parse_query
from gortc.entities.users import User
from gortc.usecases.groups import require_member
from gortc.usecases.ports import UnitOfWork


@dataclass(frozen=True, slots=True)
class MessageSearchPage:
    hits: list[MessageHit]
    next_cursor: str | None


class SearchService:
    """Raises NotFound for a group the caller is not in (as every group
    route does), InvalidInput for a missing or overlong message query and a
    cursor that is not one; anything else typed is a query (what is not
    searchable in it matches nothing)."""

    def __init__(self, *, uow: UnitOfWork) -> None:
        self._uow = uow

    async def messages(
        self,
        user_id: str,
        text: str,
        *,
        group_id: str | None = None,
        order: SearchOrder = SearchOrder.NEWEST,
        cursor: str | None = None,
        limit: int = 20,
    ) -> MessageSearchPage:
        """Messages of the caller's groups (or of ``group_id``) that match
        ``text`` (entities/query_syntax.py), one page in ``order``. Any text
        is a query; as in file search, only an empty or overlong one, or a
        cursor of another search, is refused."""
        if not text.strip():
            raise InvalidInput("q, the words to search for, is required", code="missing_query")
        if len(text) > QUERY_MAX_LENGTH:
            raise InvalidInput(
                f"q must be at most {QUERY_MAX_LENGTH} characters", code="query_too_long"
            )
        identity = search_identity(text, group_id, order)
        start = SearchCursor.decode(cursor, identity).value if cursor else None
        query = parse_query(text)
        async with self._uow.reading() as repos:
            if group_id is not None:
                await require_member(repos, group_id, user_id)
            if query is None or (start or 0) > MAX_RELEVANCE_OFFSET:
                return MessageSearchPage([], None)
            relevance = order is SearchOrder.RELEVANCE
            # One more than asked: whether there is a next page.
            hits = await repos.messages.search(
                user_id,
                query,
                group_id=group_id,
                order=order,
                below=None if relevance else start,
                offset=(start or 0) if relevance else 0,
                limit=limit + 1,
            )
        if len(hits) <= limit:
            return MessageSearchPage(hits, None)
        hits = hits[:limit]
        if not relevance:
            following = hits[-1].position
        elif (following := (start or 0) + limit) > MAX_RELEVANCE_OFFSET:
            return MessageSearchPage(hits, None)
        return MessageSearchPage(hits, SearchCursor(following).encode(identity))

    async def people(self, text: str, *, limit: int = 20) -> list[User]:
        """Enabled users whose username or display name matches ``text``,
        best first (entities/name_search.py says how)."""
        query = fold(text[: NAME_QUERY_MAX_LENGTH * 2])[:NAME_QUERY_MAX_LENGTH]
        if not query:
            return []
        async with self._uow.reading() as repos:
            candidates = await repos.users.search_candidates(query, enough=limit)
        scored = [
            (score, user.username, user)
            for user in candidates
            if (score := score_name(query, user.username, user.display_name)) is not None
        ]
        scored.sort(key=lambda item: (item[0], item[1]))
        return [user for _, _, user in scored[:limit]]
