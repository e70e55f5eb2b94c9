"""The rights matrix, cell by cell.

The table below is written out by hand on purpose: changing who may do what
in ``gortc/entities/rights.py`` has to be done a second time here, knowingly.
"""

from __future__ import annotations

import pytest

from gortc.entities.groups import Role
from gortc.entities.rights import RIGHTS, Action, allowed_actions, may

Y, N = True, False

# fmt: off
#                                   in a group             in a direct conversation
#  action                           owner  admin  member   owner  admin  member
EXPECTED: dict[Action, tuple[bool, bool, bool, bool, bool, bool]] = {
    Action.READ:                   (Y,     Y,     Y,       Y,     Y,     Y),
    Action.POST:                   (Y,     Y,     Y,       Y,     Y,     Y),
    Action.EDIT_OWN_MESSAGE:       (Y,     Y,     Y,       Y,     Y,     Y),
    Action.DELETE_OWN_MESSAGE:     (Y,     Y,     Y,       Y,     Y,     Y),
    Action.DELETE_OTHERS_MESSAGE:  (Y,     Y,     N,       N,     N,     N),
    Action.ADD_MEMBER:             (Y,     Y,     N,       N,     N,     N),
    Action.REMOVE_MEMBER:          (Y,     Y,     N,       N,     N,     N),
    Action.REMOVE_ADMIN:           (Y,     N,     N,       N,     N,     N),
    Action.CHANGE_ROLE:            (Y,     N,     N,       N,     N,     N),
    Action.RENAME:                 (Y,     Y,     N,       N,     N,     N),
    Action.DELETE_GROUP:           (Y,     N,     N,       N,     N,     N),
    Action.TRANSFER_OWNERSHIP:     (Y,     N,     N,       N,     N,     N),
    Action.START_CALL:             (Y,     Y,     Y,       Y,     Y,     Y),
    Action.REACT:                  (Y,     Y,     Y,       Y,     Y,     Y),
}
# fmt: on

COLUMNS = [
    (Role.OWNER, False),
    (Role.ADMIN, False),
    (Role.MEMBER, False),
    (Role.OWNER, True),
    (Role.ADMIN, True),
    (Role.MEMBER, True),
]

CELLS = [
    pytest.param(
        action,
        role,
        direct,
        allowed,
        id=f"{action.value}-{role.value}-{'direct' if direct else 'group'}",
    )
    for action, row in EXPECTED.items()
    for (role, direct), allowed in zip(COLUMNS, row, strict=True)
]


@pytest.mark.parametrize(("action", "role", "direct", "allowed"), CELLS)
def test_every_cell_of_the_matrix(action: Action, role: Role, direct: bool, allowed: bool) -> None:
    assert may(role, action, direct=direct) is allowed


def test_the_table_above_covers_every_action() -> None:
    assert set(EXPECTED) == set(Action)


def test_every_action_has_a_row_in_rights() -> None:
    assert set(RIGHTS) == set(Action)
    for action in Action:
        assert RIGHTS[action] <= set(Role), action


def test_direct_is_the_default_off() -> None:
    # Calling may() without direct= means "in a group".
    for action in Action:
        for role in Role:
            assert may(role, action) is may(role, action, direct=False)


@pytest.mark.parametrize(("role", "direct"), COLUMNS)
def test_allowed_actions_are_the_cells_of_its_column_sorted(role: Role, direct: bool) -> None:
    column = COLUMNS.index((role, direct))
    expected = sorted(action.value for action, row in EXPECTED.items() if row[column])
    assert [action.value for action in allowed_actions(role, direct=direct)] == expected
