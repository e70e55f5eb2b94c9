"""Who may do what in a group: the one table every decision comes from."""

from __future__ import annotations

import enum

from gortc.entities.groups import Role


class Action(enum.StrEnum):
    READ = "read"  # history, members, events
    POST = "post"
    EDIT_OWN_MESSAGE = "edit_own_message"
    DELETE_OWN_MESSAGE = "delete_own_message"
    DELETE_OTHERS_MESSAGE = "delete_others_message"
    ADD_MEMBER = "add_member"  # direct add, and invitations
    REMOVE_MEMBER = "remove_member"  # a plain member; admins are removed by the owner
    REMOVE_ADMIN = "remove_admin"
    CHANGE_ROLE = "change_role"
    RENAME = "rename"
    DELETE_GROUP = "delete_group"
    TRANSFER_OWNERSHIP = "transfer_ownership"
    START_CALL = "start_call"
    REACT = "react"  # put an emoji on a message, or take one's own off


_EVERYONE = frozenset(Role)
_MANAGERS = frozenset({Role.OWNER, Role.ADMIN})
_OWNER = frozenset({Role.OWNER})

RIGHTS: dict[Action, frozenset[Role]] = {
    Action.READ: _EVERYONE,
    Action.POST: _EVERYONE,
    Action.EDIT_OWN_MESSAGE: _EVERYONE,
    Action.DELETE_OWN_MESSAGE: _EVERYONE,
    Action.DELETE_OTHERS_MESSAGE: _MANAGERS,
    Action.ADD_MEMBER: _MANAGERS,
    Action.REMOVE_MEMBER: _MANAGERS,
    Action.REMOVE_ADMIN: _OWNER,
    Action.CHANGE_ROLE: _OWNER,
    Action.RENAME: _MANAGERS,
    Action.DELETE_GROUP: _OWNER,
    Action.TRANSFER_OWNERSHIP: _OWNER,
    Action.START_CALL: _EVERYONE,
    Action.REACT: _EVERYONE,
}

# A direct conversation has no roles to manage: both people may talk, call,
# react, and handle their own messages; nothing else.
DIRECT_ACTIONS = frozenset(
    {
        Action.READ,
        Action.POST,
        Action.EDIT_OWN_MESSAGE,
        Action.DELETE_OWN_MESSAGE,
        Action.START_CALL,
        Action.REACT,
    }
)


def may(role: Role, action: Action, *, direct: bool = False) -> bool:
    if direct and action not in DIRECT_ACTIONS:
        return False
    return role in RIGHTS[action]


def allowed_actions(role: Role, *, direct: bool = False) -> tuple[Action, ...]:
    """Every action ``role`` may take, sorted by value: what clients are
    shown, so they never keep a copy of this table."""
    return tuple(sorted((action for action in Action if may(role, action, direct=direct)), key=str))
