"""Members and rights in the web client, in real Chromium pages against a
real server: what each role is offered comes from the server's rights (the
group's permissions), a role change reaches the member's own page live, a
removed member's page drops the group with a notice, invitations go out
through people search and every member sees them pending, and ownership,
renaming and deleting work from the member panel."""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.server_process import ServerProcess
from tests.e2e.test_web_people import SIZES, add_by_search, open_members, open_sidebar
from tests.e2e.web import (
    Person,
    check_screen,
    create_group,
    expect,
    sign_up,
)


def member_row(person: Person, username: str) -> Any:
    return person.page.locator("#member-list li", has_text=f"@{username}")


def manage_button(person: Person, display_name: str) -> Any:
    return person.page.get_by_role("button", name=f"Manage {display_name}", exact=True)


async def manage(person: Person, display_name: str, action: str) -> None:
    """Opens the member's manage menu and picks an action (no confirmation)."""
    await manage_button(person, display_name).click()
    await person.page.locator(".member-menu").get_by_role("button", name=action).click()


async def join_group(person: Person, name: str) -> None:
    await open_sidebar(person)
    await person.conversation(name).click()
    await expect(person.page.locator("#conversation-title")).to_have_text(name)


@pytest.mark.parametrize("size", SIZES)
async def test_an_owner_changes_a_role_and_removes_a_member_and_their_pages_follow(
    server: ServerProcess,
    browser: Any,
    size: str,
) -> None:
    bob = await sign_up(browser, server.url, "bob", size)
    carol = await sign_up(browser, server.url, "carol", size)
    alice = await sign_up(browser, server.url, "alice", size)
    await open_sidebar(alice)
    await create_group(alice, "Team")
    await open_members(alice)
    await add_by_search(alice, "bo", "bob")
    await expect(member_row(alice, "bob")).to_be_visible()
    await add_by_search(alice, "car", "carol")
    await expect(member_row(alice, "carol")).to_be_visible()

    # A plain member is offered nothing to manage: no menus, no adding, no
    # renaming or deleting; only leaving.
    await join_group(bob, "Team")
    await open_members(bob)
    await expect(member_row(bob, "carol")).to_be_visible()
    await expect(bob.page.locator("#member-list .member-manage")).to_have_count(0)
    await expect(bob.page.get_by_role("combobox", name="Add member or invite")).to_be_hidden()
    await expect(bob.page.get_by_role("button", name="Rename group")).to_have_count(0)
    await expect(bob.page.get_by_role("button", name="Delete group")).to_have_count(0)
    await expect(bob.page.get_by_role("button", name="Leave group")).to_be_visible()

    # The owner manages everyone but herself.
    await expect(manage_button(alice, "alice")).to_have_count(0)
    await manage_button(alice, "bob").click()
    await expect(manage_button(alice, "bob")).to_have_attribute("aria-expanded", "true")
    menu = alice.page.locator(".member-menu")
    await expect(menu.get_by_role("button")).to_have_text(
        ["Make admin", "Make owner", "Remove from group"]
    )
    await check_screen(alice, "members")
    await menu.get_by_role("button", name="Make admin").click()
    await expect(member_row(alice, "bob").locator(".role")).to_have_text("admin")

    # Bob's own page follows at once: his badge, and what an admin may do
    # (add and invite, rename, remove a plain member; not change roles).
    await expect(member_row(bob, "bob").locator(".role")).to_have_text("admin")
    await expect(bob.page.get_by_role("combobox", name="Add member or invite")).to_be_visible()
    await expect(bob.page.get_by_role("button", name="Rename group")).to_be_visible()
    await expect(bob.page.get_by_role("button", name="Delete group")).to_have_count(0)
    await expect(manage_button(bob, "alice")).to_have_count(0)
    await manage_button(bob, "carol").click()
    await expect(bob.page.locator(".member-menu").get_by_role("button")).to_have_text(
        ["Remove from group"]
    )
    await bob.page.keyboard.press("Escape")  # closes the menu, and only the menu
    await expect(bob.page.locator(".member-menu")).to_have_count(0)
    await expect(manage_button(bob, "carol")).to_be_focused()
    await expect(bob.page.locator("#members-panel")).to_be_visible()

    # Carol, watching the group, is removed by the owner (after a confirm).
    await join_group(carol, "Team")
    await manage(alice, "carol", "Remove from group")
    await expect(alice.page.locator(".member-menu")).to_contain_text("Remove carol from the group?")
    await alice.page.get_by_role("button", name="Yes, remove from group").click()
    await expect(member_row(alice, "carol")).to_have_count(0)
    await expect(member_row(bob, "carol")).to_have_count(0)
    # Her page drops the group, says so, and shows no conversation.
    await expect(carol.page.locator("#notice")).to_contain_text("You are no longer in “Team”")
    await expect(carol.page.locator("#conversation-main")).to_be_hidden()
    await open_sidebar(carol)
    await expect(carol.conversation("Team")).to_have_count(0)

    # Back to member: bob's extra buttons go as they came.
    await manage(alice, "bob", "Make member")
    await expect(member_row(bob, "bob").locator(".role")).to_have_count(0)
    await expect(bob.page.get_by_role("combobox", name="Add member or invite")).to_be_hidden()
    await expect(bob.page.get_by_role("button", name="Rename group")).to_have_count(0)

    for person in (alice, bob, carol):
        assert person.problems == []


async def test_an_invitation_goes_out_through_people_search_and_members_see_it_pending(
    server: ServerProcess,
    browser: Any,
) -> None:
    bob = await sign_up(browser, server.url, "bob")
    carol = await sign_up(browser, server.url, "carol")
    alice = await sign_up(browser, server.url, "alice")
    await create_group(alice, "Club")
    await add_by_search(alice, "car", "carol")
    await expect(member_row(alice, "carol")).to_be_visible()
    # Carol, a plain member, has the group open from here on.
    await join_group(carol, "Club")

    async def invite_bob() -> None:
        # Members are not suggested again; "bo" suggests bob.
        field = alice.page.get_by_role("combobox", name="Add member or invite")
        await field.fill("carol")
        await expect(alice.page.get_by_role("option")).to_have_text("Nobody found for “carol”")
        await field.fill("")
        await field.press_sequentially("bo")
        option = alice.page.get_by_role("option", name="@bob")
        await expect(option).to_be_visible()
        await field.press("ArrowDown")
        await field.press("ArrowUp")
        await expect(option).to_have_attribute("aria-selected", "true")
        await field.press("Enter")
        await expect(field).to_have_value("@bob")
        await alice.page.locator("#add-member-form").get_by_role("button", name="Invite").click()
        await expect(field).to_have_value("")

    # Pending, for the inviter and live for every member watching.
    await invite_bob()
    for person in (alice, carol):
        invited = person.page.get_by_role("region", name="Invited")
        await expect(invited).to_contain_text("bob")
        await expect(invited).to_contain_text("invited by alice")

    # Bob is told live. Declined, it is pending no more, for everyone.
    invitation = bob.page.locator("#invitation-list li", has_text="Club")
    await expect(invitation).to_contain_text("from alice")
    await invitation.get_by_role("button", name="Decline").click()
    await expect(invitation).to_have_count(0)
    for person in (alice, carol):
        await expect(person.page.get_by_role("region", name="Invited")).to_be_hidden()

    # Invited again, he accepts: a member, no longer pending.
    await invite_bob()
    await expect(carol.page.get_by_role("region", name="Invited")).to_contain_text("bob")
    await invitation.get_by_role("button", name="Accept").click()
    await expect(bob.page.locator("#conversation-title")).to_have_text("Club")
    for person in (alice, carol):
        await expect(member_row(person, "bob")).to_be_visible()
        await expect(person.page.get_by_role("region", name="Invited")).to_be_hidden()

    for person in (alice, bob, carol):
        assert person.problems == []


async def test_ownership_moves_with_a_confirm_and_the_new_owner_renames_and_deletes(
    server: ServerProcess,
    browser: Any,
) -> None:
    bob = await sign_up(browser, server.url, "bob")
    alice = await sign_up(browser, server.url, "alice")
    await create_group(alice, "Band")
    await add_by_search(alice, "bo", "bob")
    await expect(member_row(alice, "bob")).to_be_visible()
    await join_group(bob, "Band")

    await manage(alice, "bob", "Make owner")
    await expect(alice.page.locator(".member-menu")).to_contain_text("Make bob the owner?")
    await alice.page.get_by_role("button", name="Yes, make owner").click()
    await expect(member_row(alice, "bob").locator(".role")).to_have_text("owner")
    await expect(member_row(alice, "alice").locator(".role")).to_have_text("admin")
    # Alice is an admin now: no deleting, no managing the owner.
    await expect(alice.page.get_by_role("button", name="Delete group")).to_have_count(0)
    await expect(manage_button(alice, "bob")).to_have_count(0)
    await expect(alice.page.get_by_role("button", name="Leave group")).to_be_visible()

    # Bob, the owner, may rename and delete; he cannot leave.
    await expect(bob.page.get_by_role("button", name="Delete group")).to_be_visible()
    await expect(bob.page.get_by_role("button", name="Leave group")).to_be_hidden()
    await bob.page.get_by_role("button", name="Rename group").click()
    name = bob.page.get_by_role("textbox", name="Group name", exact=True)
    await expect(name).to_be_focused()
    # Too long: the server says why, and what was typed stays to be fixed.
    await name.fill("x" * 101)
    await bob.page.get_by_role("button", name="Save").click()
    await expect(bob.page.locator("#notice")).to_contain_text("100")
    await expect(name).to_have_value("x" * 101)
    # That refusal is the one failed request the page may log.
    [refusal] = [problem for problem in bob.problems if "status of 400" in problem]
    bob.problems.remove(refusal)
    await name.fill("The Band")
    await bob.page.get_by_role("button", name="Save").click()
    await expect(alice.page.locator("#conversation-title")).to_have_text("The Band")
    await expect(bob.page.locator("#conversation-title")).to_have_text("The Band")

    await bob.page.get_by_role("button", name="Delete group").click()
    await bob.page.get_by_role("button", name="Yes, delete it").click()
    await expect(bob.page.locator("#conversation-main")).to_be_hidden()
    await expect(alice.page.locator("#notice")).to_contain_text("You are no longer in “The Band”")
    await expect(alice.conversation("The Band")).to_have_count(0)

    for person in (alice, bob):
        assert person.problems == []
