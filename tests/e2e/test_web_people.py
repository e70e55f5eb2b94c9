"""People in the web client, in real Chromium pages against a real server:
starting a direct message from people search (a typo forgiven), the other
person seeing it arrive live, and profile cards opened from a message's
author and from the member list, whose "Message" opens the conversation.
Each flow runs at desktop and phone size."""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.server_process import ServerProcess
from tests.e2e.web import (
    Person,
    check_screen,
    create_group,
    expect,
    sign_up,
)

SIZES = ["desktop", "phone"]


def phone(person: Person) -> bool:
    return bool(person.page.viewport_size["width"] < 600)


async def open_sidebar(person: Person) -> None:
    """The conversation list: beside everything on a desktop, a drawer on a phone."""
    if phone(person):
        await person.page.get_by_role("button", name="Conversations", exact=True).click()
    await expect(person.page.locator("#conversations")).to_be_visible()


async def open_members(person: Person) -> None:
    """The member list: beside the messages on a desktop, over them on a phone."""
    if phone(person):
        await person.page.locator("#members-toggle").click()
    await expect(person.page.locator("#members-panel")).to_be_visible()


async def add_by_search(person: Person, typed: str, username: str, button: str = "Add") -> None:
    """Types part of a name into the member panel's people search, picks the
    suggestion for that username, and adds or invites them."""
    page = person.page
    field = page.get_by_role("combobox", name="Add member or invite")
    await field.fill(typed)
    option = page.get_by_role("option", name=f"@{username}")
    await expect(option).to_be_visible()
    await option.click()
    await expect(field).to_have_value(f"@{username}")
    await page.locator("#add-member-form").get_by_role("button", name=button, exact=True).click()


@pytest.mark.parametrize("size", SIZES)
async def test_a_direct_message_starts_from_people_search_with_a_typo(
    server: ServerProcess,
    browser: Any,
    size: str,
) -> None:
    bob = await sign_up(browser, server.url, "bob", size)
    alice = await sign_up(browser, server.url, "alice", size)
    # The heading shows before there is any direct conversation: the way in.
    await open_sidebar(alice)
    await expect(alice.page.get_by_role("heading", name="Direct messages")).to_be_visible()
    await alice.page.get_by_role("button", name="New message").click()

    dialog = alice.page.get_by_role("dialog", name="New message")
    await expect(dialog).to_be_visible()
    to = dialog.get_by_role("combobox", name="To")
    await expect(to).to_be_focused()
    # "bobb": one letter too many, and still bob, with his picture and names.
    await to.press_sequentially("bobb")
    option = dialog.get_by_role("option", name="@bob")
    await expect(option).to_be_visible()
    await expect(option).to_have_attribute("aria-selected", "true")
    await expect(option.locator(".avatar")).to_have_count(1)
    await check_screen(alice, "new-message")
    # Alice herself is never offered.
    await to.fill("alice")
    await expect(dialog.get_by_role("option")).to_have_text("Nobody found for “alice”")
    await to.fill("")
    await to.press_sequentially("bobb")
    await expect(option).to_be_visible()
    await to.press("Enter")

    # No conversation yet: a box for the first message, addressed to bob.
    first = dialog.get_by_role("textbox", name="First message to bob")
    await expect(first).to_be_focused()
    await first.fill("hello bob, this is alice")
    await dialog.get_by_role("button", name="Send").click()
    await expect(dialog).to_be_hidden()
    await expect(alice.page.locator("#conversation-title")).to_have_text("bob")
    await expect(alice.message("hello bob, this is alice")).to_be_visible()

    # Bob is told live: the conversation appears in his list, unread.
    await open_sidebar(bob)
    link = bob.conversation("alice")
    await expect(link).to_be_visible()
    await expect(link.locator(".badge")).to_have_text("1")
    await expect(link.locator(".avatar")).to_have_count(1)
    await link.click()
    await expect(bob.page.locator("#conversation-title")).to_have_text("alice")
    await expect(bob.message("hello bob, this is alice")).to_be_visible()
    await check_screen(bob, "direct-message")

    # Asked again, New message opens the conversation there is.
    await open_sidebar(alice)
    await alice.page.get_by_role("button", name="New message").click()
    await alice.page.get_by_role("combobox", name="To").press_sequentially("bob")
    await alice.page.get_by_role("option", name="@bob").click()
    await expect(alice.page.get_by_role("dialog", name="New message")).to_be_hidden()
    await expect(alice.page.locator("#conversation-title")).to_have_text("bob")
    await expect(alice.message("hello bob, this is alice")).to_be_visible()

    assert alice.problems == []
    assert bob.problems == []


@pytest.mark.parametrize("size", SIZES)
async def test_profile_cards_open_from_an_author_and_a_member_and_message_them(
    server: ServerProcess,
    browser: Any,
    size: str,
) -> None:
    bob = await sign_up(browser, server.url, "bob", size)
    alice = await sign_up(browser, server.url, "alice", size)
    await open_sidebar(alice)
    await create_group(alice, "Crew")
    await open_members(alice)
    await add_by_search(alice, "bo", "bob")
    await expect(alice.page.locator("#member-list")).to_contain_text("@bob")
    await alice.send("welcome to the crew")

    await open_sidebar(bob)
    await bob.conversation("Crew").click()
    said = bob.message("welcome to the crew")
    await expect(said).to_be_visible()

    # The author's name opens their card: picture, names, online, Message.
    await said.locator(".sender").click()
    card = bob.page.get_by_role("dialog", name="Profile")
    await expect(card).to_be_visible()
    await expect(card.get_by_role("heading")).to_have_text("alice")
    await expect(card).to_contain_text("@alice")
    await expect(card).to_contain_text("Online")
    await expect(card.locator(".avatar")).to_have_count(1)
    await expect(card.get_by_role("button", name="Message")).to_be_focused()
    await check_screen(bob, "profile-card")
    await bob.page.keyboard.press("Escape")
    await expect(card).to_be_hidden()
    # Her picture beside the message opens the same card, once.
    await said.locator(".avatar").first.click()
    await expect(bob.page.get_by_role("dialog")).to_have_count(1)
    await expect(card).to_contain_text("@alice")
    await bob.page.keyboard.press("Escape")
    await expect(card).to_be_hidden()

    # So does her row in the member list; no conversation with her yet, so
    # "Message" asks for the first message.
    await open_members(bob)
    await bob.page.locator("#member-list li", has_text="@alice").locator(".member-open").click()
    await expect(card).to_be_visible()
    await card.get_by_role("button", name="Message").click()
    await expect(card).to_be_hidden()
    dialog = bob.page.get_by_role("dialog", name="New message")
    first = dialog.get_by_role("textbox", name="First message to alice")
    await expect(first).to_be_focused()
    await first.fill("hi alice, about the crew")
    await first.press("Enter")
    await expect(dialog).to_be_hidden()
    await expect(bob.page.locator("#conversation-title")).to_have_text("alice")
    await expect(bob.message("hi alice, about the crew")).to_be_visible()

    # Alice, from bob's card in the member list: the conversation now exists.
    await alice.page.locator("#member-list li", has_text="@bob").locator(".member-open").click()
    card = alice.page.get_by_role("dialog", name="Profile")
    await expect(card).to_contain_text("@bob")
    await card.get_by_role("button", name="Message").click()
    await expect(alice.page.locator("#conversation-title")).to_have_text("bob")
    await expect(alice.message("hi alice, about the crew")).to_be_visible()

    # Her own card says it is her, with nothing to send.
    await alice.send("a note to check my own card")
    await alice.message("a note to check my own card").locator(".sender").click()
    own = alice.page.get_by_role("dialog", name="Profile")
    await expect(own).to_contain_text("This is you.")
    await expect(own.get_by_role("button", name="Message")).to_have_count(0)
    await own.get_by_role("button", name="Close").click()
    await expect(own).to_be_hidden()

    assert alice.problems == []
    assert bob.problems == []
