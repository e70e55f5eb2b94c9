"""/api/v1/groups and /api/v1/invitations: groups, members, invitations."""

from __future__ import annotations

from aiohttp import web

from gortc.delivery.auth import authenticate
from gortc.delivery.bodies import json_response, read_json
from gortc.delivery.chat_schemas import (
    AddMember,
    ChangeRole,
    CreateGroup,
    GroupInfo,
    GroupList,
    GroupView,
    InvitationList,
    InvitationView,
    InviteMember,
    ListedGroupView,
    ListedMemberOut,
    MemberList,
    MemberOut,
    RenameGroup,
    TransferOwnership,
)
from gortc.delivery.keys import GROUPS
from gortc.delivery.queries import IdCursor, Limit
from gortc.delivery.routing import ApiRoute
from gortc.entities.groups import Role

_LIMIT = Limit(default=100, maximum=500)
_BEFORE = IdCursor("before")


async def create_group(request: web.Request) -> web.Response:
    principal = await authenticate(request)
    body = await read_json(request, CreateGroup)
    mine = await request.app[GROUPS].create(principal.user_id, body.name)
    return json_response(GroupView.of_mine(mine), status=201)


async def list_groups(request: web.Request) -> web.Response:
    principal = await authenticate(request)
    limit = _LIMIT.read(request)
    groups = await request.app[GROUPS].list_mine(
        principal.user_id, limit=limit, after=_BEFORE.read(request)
    )
    next_cursor = groups[-1].mine.group.id if len(groups) == limit else None
    return json_response(
        GroupList(
            items=[ListedGroupView.of_listed(listed) for listed in groups],
            next_cursor=next_cursor,
        )
    )


async def get_group(request: web.Request) -> web.Response:
    principal = await authenticate(request)
    mine = await request.app[GROUPS].get(principal.user_id, request.match_info["group_id"])
    return json_response(GroupView.of_mine(mine))


async def rename_group(request: web.Request) -> web.Response:
    principal = await authenticate(request)
    body = await read_json(request, RenameGroup)
    group = await request.app[GROUPS].rename(
        principal.user_id, request.match_info["group_id"], body.name
    )
    return json_response(GroupInfo.of(group))


async def delete_group(request: web.Request) -> web.Response:
    principal = await authenticate(request)
    await request.app[GROUPS].delete(principal.user_id, request.match_info["group_id"])
    return web.Response(status=204)


async def list_members(request: web.Request) -> web.Response:
    principal = await authenticate(request)
    members = await request.app[GROUPS].members(principal.user_id, request.match_info["group_id"])
    return json_response(MemberList(items=[ListedMemberOut.of_listed(m) for m in members]))


async def add_member(request: web.Request) -> web.Response:
    principal = await authenticate(request)
    body = await read_json(request, AddMember)
    view = await request.app[GROUPS].add_member(
        principal.user_id, request.match_info["group_id"], body.target, Role(body.role)
    )
    return json_response(MemberOut.of(view), status=201)


async def change_role(request: web.Request) -> web.Response:
    principal = await authenticate(request)
    body = await read_json(request, ChangeRole)
    view = await request.app[GROUPS].set_role(
        principal.user_id,
        request.match_info["group_id"],
        request.match_info["user_id"],
        body.as_role,
    )
    return json_response(MemberOut.of(view))


async def remove_member(request: web.Request) -> web.Response:
    principal = await authenticate(request)
    await request.app[GROUPS].remove_member(
        principal.user_id, request.match_info["group_id"], request.match_info["user_id"]
    )
    return web.Response(status=204)


async def transfer_ownership(request: web.Request) -> web.Response:
    principal = await authenticate(request)
    body = await read_json(request, TransferOwnership)
    group = await request.app[GROUPS].transfer_ownership(
        principal.user_id, request.match_info["group_id"], body.user_id
    )
    return json_response(GroupInfo.of(group))


async def invite(request: web.Request) -> web.Response:
    principal = await authenticate(request)
    body = await read_json(request, InviteMember)
    invitation = await request.app[GROUPS].invite(
        principal.user_id, request.match_info["group_id"], body.target
    )
    return json_response(InvitationView.of(invitation), status=201)


async def my_invitations(request: web.Request) -> web.Response:
    principal = await authenticate(request)
    invitations = await request.app[GROUPS].invitations(principal.user_id)
    return json_response(InvitationList(items=[InvitationView.of(i) for i in invitations]))


async def group_invitations(request: web.Request) -> web.Response:
    principal = await authenticate(request)
    invitations = await request.app[GROUPS].group_invitations(
        principal.user_id, request.match_info["group_id"]
    )
    return json_response(InvitationList(items=[InvitationView.of(i) for i in invitations]))


async def accept_invitation(request: web.Request) -> web.Response:
    principal = await authenticate(request)
    view = await request.app[GROUPS].accept(principal.user_id, request.match_info["invitation_id"])
    return json_response(MemberOut.of(view))


async def decline_invitation(request: web.Request) -> web.Response:
    principal = await authenticate(request)
    await request.app[GROUPS].decline(principal.user_id, request.match_info["invitation_id"])
    return web.Response(status=204)


_TAG = "groups"
_GROUP = "/api/v1/groups/{group_id}"
_PAGE = (_LIMIT.parameter, _BEFORE.parameter)

ROUTES = [
    ApiRoute(
        "POST",
        "/api/v1/groups",
        create_group,
        "Create a group",
        _TAG,
        status=201,
        request=CreateGroup,
        response=GroupView,
        errors=(400,),
    ),
    ApiRoute(
        "GET",
        "/api/v1/groups",
        list_groups,
        "My groups with unread counts",
        _TAG,
        response=GroupList,
        query=_PAGE,
        errors=(400,),
    ),
    ApiRoute("GET", _GROUP, get_group, "A group", _TAG, response=GroupView, errors=(404,)),
    ApiRoute(
        "PATCH",
        _GROUP,
        rename_group,
        "Rename a group",
        _TAG,
        request=RenameGroup,
        response=GroupInfo,
        errors=(403, 404),
    ),
    ApiRoute("DELETE", _GROUP, delete_group, "Delete a group", _TAG, status=204, errors=(403, 404)),
    ApiRoute(
        "GET",
        f"{_GROUP}/members",
        list_members,
        "Members of a group",
        _TAG,
        response=MemberList,
        errors=(404,),
    ),
    ApiRoute(
        "POST",
        f"{_GROUP}/members",
        add_member,
        "Add a member (no invitation)",
        _TAG,
        status=201,
        request=AddMember,
        response=MemberOut,
        errors=(403, 404, 409),
    ),
    ApiRoute(
        "PATCH",
        f"{_GROUP}/members/{{user_id}}",
        change_role,
        "Change a member's role",
        _TAG,
        request=ChangeRole,
        response=MemberOut,
        errors=(403, 404, 409),
    ),
    ApiRoute(
        "DELETE",
        f"{_GROUP}/members/{{user_id}}",
        remove_member,
        "Remove a member, or leave",
        _TAG,
        status=204,
        errors=(403, 404, 409),
    ),
    ApiRoute(
        "POST",
        f"{_GROUP}/owner",
        transfer_ownership,
        "Transfer ownership",
        _TAG,
        request=TransferOwnership,
        response=GroupInfo,
        errors=(403, 404),
    ),
    ApiRoute(
        "POST",
        f"{_GROUP}/invitations",
        invite,
        "Invite a user",
        _TAG,
        status=201,
        request=InviteMember,
        response=InvitationView,
        errors=(403, 404, 409),
    ),
    ApiRoute(
        "GET",
        f"{_GROUP}/invitations",
        group_invitations,
        "The group's pending invitations",
        _TAG,
        response=InvitationList,
        errors=(404,),
    ),
    ApiRoute(
        "GET",
        "/api/v1/invitations",
        my_invitations,
        "My pending invitations",
        _TAG,
        response=InvitationList,
    ),
    ApiRoute(
        "POST",
        "/api/v1/invitations/{invitation_id}/accept",
        accept_invitation,
        "Accept an invitation",
        _TAG,
        response=MemberOut,
        errors=(404, 409),
    ),
    ApiRoute(
        "POST",
        "/api/v1/invitations/{invitation_id}/decline",
        decline_invitation,
        "Decline an invitation",
        _TAG,
        status=204,
        errors=(404,),
    ),
]
