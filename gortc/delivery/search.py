"""Search over REST: messages in my groups, people by name.

Their routes come before the users routes in the table, so that
``/api/v1/users/search`` is not taken for a user called "search".
"""

from __future__ import annotations

from aiohttp import web
from pydantic import BaseModel, Field

from gortc.delivery.auth import authenticate
from gortc.delivery.bodies import json_response
from gortc.delivery.chat_schemas import MessageView
from gortc.delivery.keys import SEARCH
from gortc.delivery.queries import Limit, QueryParam, text_parameter
from gortc.delivery.routing import ApiRoute
from gortc.delivery.schemas import UserPublic
from gortc.entities.errors import InvalidInput
from gortc.entities.message_search import QUERY_MAX_LENGTH, MessageHit, SearchOrder

_MESSAGES_LIMIT = Limit(default=20, maximum=100)
_PEOPLE_LIMIT = Limit(default=20, maximum=50, description="How many")

_MARKERS = (
    "The matched words are between U+E000 and U+E001 (private-use characters, "
    "never markup): render the text as text and emphasise what lies between them."
)


class MessageHitView(BaseModel):
    message: MessageView
    snippet: str = Field(description=f"The message around the matches. {_MARKERS}")
    score: float = Field(description="1, 1/2, 1/3 … by position in the whole result")

    @classmethod
    def of(cls, hit: MessageHit) -> MessageHitView:
        return cls(message=MessageView.of(hit.message), snippet=hit.snippet, score=hit.score)


class MessageSearchResults(BaseModel):
    items: list[MessageHitView]
    next_cursor: str | None = Field(
        description="Pass as ?cursor= (with the same q, group_id and sort) for the next page"
    )


class UserSearchResults(BaseModel):
    items: list[UserPublic]


async def search_messages(request: web.Request) -> web.Response:
    principal = await authenticate(request)
    limit = _MESSAGES_LIMIT.read(request)
    page = await request.app[SEARCH].messages(
        principal.user_id,
        request.query.get("q", ""),
        group_id=request.query.get("group_id") or None,
        order=_order(request),
        cursor=request.query.get("cursor") or request.query.get("before") or None,
        limit=limit,
    )
    return json_response(
        MessageSearchResults(
            items=[MessageHitView.of(hit) for hit in page.hits], next_cursor=page.next_cursor
        )
    )


def _order(request: web.Request) -> SearchOrder:
    raw = request.query.get("sort") or SearchOrder.NEWEST.value
    try:
        return SearchOrder(raw)
    except ValueError:
        raise InvalidInput("sort must be newest or relevance", code="invalid_sort") from None


async def search_users(request: web.Request) -> web.Response:
    await authenticate(request)
    limit = _PEOPLE_LIMIT.read(request)
    users = await request.app[SEARCH].people(request.query.get("q", ""), limit=limit)
    return json_response(UserSearchResults(items=[UserPublic.of(user) for user in users]))


ROUTES = [
    ApiRoute(
        "GET",
        "/api/v1/messages/search",
        search_messages,
        "Search the messages of my groups",
        "messages",
        response=MessageSearchResults,
        query=(
            text_parameter(
                "q",
                'Words (all must match), "phrases", prefix*, OR, -exclusions',
                max_length=QUERY_MAX_LENGTH,
                required=True,
            ),
            ("group_id", "string", "Only this group (404 if you are not in it)"),
            QueryParam(
                "sort",
                # Empty: the default.
                {"enum": ["", *(order.value for order in SearchOrder)]},
                "newest (default) or relevance",
            ),
            ("cursor", "string", "The next_cursor of the previous page"),
            _MESSAGES_LIMIT.parameter,
        ),
        errors=(400, 404),
        description="Deleted messages never match; an edited one matches its current text. "
        "A query with nothing searchable in it answers an empty page.",
    ),
    ApiRoute(
        "GET",
        "/api/v1/users/search",
        search_users,
        "Find people by username or display name",
        "users",
        response=UserSearchResults,
        query=(
            ("q", "string", "Part of a name; small typos are forgiven"),
            _PEOPLE_LIMIT.parameter,
        ),
        errors=(400,),
        description="Best first: the username itself, then names starting with q, names "
        "containing it, then similar names. Below three characters, usernames starting "
        "with q only. Disabled accounts are never found.",
    ),
]
