"""Messages over REST: history, posting, editing, deleting, read markers,
direct messages."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from gortc.delivery.auth import authenticate
from gortc.delivery.bodies import json_response, read_json
from gortc.delivery.chat_schemas import (
    EditMessage,
    GroupView,
    MarkRead,
    MessagePage,
    MessageView,
    PostMessage,
)
from gortc.delivery.keys import CHAT, GROUPS
from gortc.delivery.queries import Limit, Seq
from gortc.delivery.routing import ApiRoute
from gortc.entities.groups import Message

_LIMIT = Limit(default=50, maximum=200)
_BEFORE = Seq("before", "Older messages: seq below this (a next_cursor)")
_AFTER = Seq("after", "Newer messages: the oldest with seq above this (a newer_cursor)")
_AROUND = Seq("around", "The page around this seq, about half older, half newer")


async def history(request: web.Request) -> web.Response:
    principal = await authenticate(request)
    page = await request.app[CHAT].history(
        principal.user_id,
        request.match_info["group_id"],
        limit=_LIMIT.read(request),
        before_seq=_BEFORE.read(request),
        after_seq=_AFTER.read(request),
        around_seq=_AROUND.read(request),
    )
    messages = page.messages
    return json_response(
        MessagePage(
            items=[MessageView.of(m) for m in messages],
            next_cursor=str(messages[-1].seq) if messages and page.more_older else None,
            newer_cursor=str(messages[0].seq) if messages and page.more_newer else None,
        )
    )


async def post_message(request: web.Request) -> web.Response:
    principal = await authenticate(request)
    body = await read_json(request, PostMessage)
    message = await request.app[CHAT].send(
        principal.user_id,
        request.match_info["group_id"],
        body.body,
        tuple(body.file_ids),
        client_id=body.client_id,
        reply_to=body.reply_to,
    )
    return json_response(MessageView.of(message), status=201)


async def edit_message(request: web.Request) -> web.Response:
    principal = await authenticate(request)
    body = await read_json(request, EditMessage)
    message = await request.app[CHAT].edit(
        principal.user_id,
        request.match_info["group_id"],
        request.match_info["message_id"],
        body.body,
    )
    return json_response(MessageView.of(message))


async def delete_message(request: web.Request) -> web.Response:
    principal = await authenticate(request)
    await request.app[CHAT].delete(
        principal.user_id, request.match_info["group_id"], request.match_info["message_id"]
    )
    return web.Response(status=204)


async def add_reaction(request: web.Request) -> web.Response:
    return await _change_reaction(request, request.app[CHAT].react)


async def remove_reaction(request: web.Request) -> web.Response:
    return await _change_reaction(request, request.app[CHAT].unreact)


async def _change_reaction(
    request: web.Request, change: Callable[[str, str, str, str], Awaitable[Message]]
) -> web.Response:
    principal = await authenticate(request)
    path = request.match_info
    message = await change(principal.user_id, path["group_id"], path["message_id"], path["emoji"])
    return json_response(MessageView.of(message))


async def mark_read(request: web.Request) -> web.Response:
    principal = await authenticate(request)
    body = await read_json(request, MarkRead)
    await request.app[CHAT].mark_read(principal.user_id, request.match_info["group_id"], body.seq)
    return web.Response(status=204)


async def post_direct(request: web.Request) -> web.Response:
    principal = await authenticate(request)
    body = await read_json(request, PostMessage)
    message = await request.app[CHAT].send_direct(
        principal.user_id,
        request.match_info["user_id"],
        body.body,
        tuple(body.file_ids),
        client_id=body.client_id,
        reply_to=body.reply_to,
    )
    return json_response(MessageView.of(message), status=201)


async def get_direct(request: web.Request) -> web.Response:
    principal = await authenticate(request)
    mine = await request.app[GROUPS].direct_with(principal.user_id, request.match_info["user_id"])
    return json_response(GroupView.of_mine(mine))


_TAG = "messages"
_MESSAGES = "/api/v1/groups/{group_id}/messages"
_REACTION = f"{_MESSAGES}/{{message_id}}/reactions/{{emoji}}"

ROUTES = [
    ApiRoute(
        "GET",
        _MESSAGES,
        history,
        "History, newest first",
        _TAG,
        response=MessagePage,
        query=(_LIMIT.parameter, _BEFORE.parameter, _AFTER.parameter, _AROUND.parameter),
        errors=(400, 404),
        description="At most one of before, after and around (400 invalid_cursor "
        "otherwise); none: the newest page. Every page lists newest first. Deleted "
        "messages are left out.",
    ),
    ApiRoute(
        "POST",
        _MESSAGES,
        post_message,
        "Post a message",
        _TAG,
        status=201,
        request=PostMessage,
        response=MessageView,
        errors=(403, 404, 429),
    ),
    ApiRoute(
        "PATCH",
        f"{_MESSAGES}/{{message_id}}",
        edit_message,
        "Edit my message",
        _TAG,
        request=EditMessage,
        response=MessageView,
        errors=(403, 404),
    ),
    ApiRoute(
        "DELETE",
        f"{_MESSAGES}/{{message_id}}",
        delete_message,
        "Delete a message for everyone",
        _TAG,
        status=204,
        errors=(403, 404),
    ),
    ApiRoute(
        "PUT",
        _REACTION,
        add_reaction,
        "Put an emoji on a message",
        _TAG,
        response=MessageView,
        errors=(400, 404, 409),
        description="{emoji} is the emoji itself, URL-encoded (👍 is %F0%9F%91%8D). "
        "Idempotent: answers the message, with its reactions. A change is told to the "
        "group as message.updated and takes a change number; edited_at is untouched. "
        "400 invalid_emoji (not one emoji), 409 too_many_reactions (20 different "
        "emojis on the message already), 404 for a deleted message.",
    ),
    ApiRoute(
        "DELETE",
        _REACTION,
        remove_reaction,
        "Take my emoji off a message",
        _TAG,
        response=MessageView,
        errors=(400, 404),
        description="Idempotent: an emoji you have not put there answers the message "
        "unchanged. Otherwise as PUT.",
    ),
    ApiRoute(
        "POST",
        "/api/v1/groups/{group_id}/read",
        mark_read,
        "Move my read marker",
        _TAG,
        status=204,
        request=MarkRead,
        errors=(404,),
    ),
    ApiRoute(
        "POST",
        "/api/v1/direct/{user_id}/messages",
        post_direct,
        "Send a direct message",
        _TAG,
        status=201,
        request=PostMessage,
        response=MessageView,
        errors=(404, 429),
    ),
    ApiRoute(
        "GET",
        "/api/v1/direct/{user_id}",
        get_direct,
        "My direct conversation with a user",
        _TAG,
        response=GroupView,
        errors=(404,),
    ),
]
