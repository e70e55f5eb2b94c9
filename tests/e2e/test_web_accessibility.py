"""The accessible basics of the web client, by keyboard as a person without a
mouse would: a skip link, a visible focus, Esc closing what floats over
the page (the drawer, the account menu, the member list), Ctrl+K for
search, Up to edit one's last message, new messages read out politely; and
no serious axe-core fault in the dark scheme either."""

from __future__ import annotations

from typing import Any

from tests.e2e.server_process import ServerProcess
from tests.e2e.web import (
    assert_accessible,
    create_group,
    expect,
    open_page,
    sign_up,
)


async def focus_ring(page: Any) -> dict[str, str]:
    """How the focused element's outline is drawn."""
    result: dict[str, str] = await page.evaluate(
        """() => {
            const style = getComputedStyle(document.activeElement);
            return { style: style.outlineStyle, width: style.outlineWidth,
                     label: document.activeElement.textContent.trim() };
        }"""
    )
    return result


async def test_a_keyboard_reaches_everything_and_sees_where_it_is(
    server: ServerProcess,
    browser: Any,
) -> None:
    ann = await sign_up(browser, server.url, "ann")
    page = ann.page
    await create_group(ann, "Quiet room")
    await ann.send("First words")

    # The first Tab stop skips the header (here on the profile, where
    # nothing takes the focus by itself).
    await page.goto(f"{server.url}/#profile")
    await page.reload()
    await expect(page.locator("#profile-form")).to_be_visible()
    await page.keyboard.press("Tab")
    skip = page.get_by_role("link", name="Skip to the main content")
    await expect(skip).to_be_focused()
    await expect(skip).to_be_in_viewport()
    await page.keyboard.press("Enter")
    await expect(page.get_by_role("main")).to_be_focused()
    assert page.url.endswith("#profile"), page.url  # the view stays
    await page.keyboard.press("Tab")
    await expect(page.locator("#verify-form").get_by_label("Code from the mail")).to_be_focused()

    # In a conversation, it leads to the composer.
    await page.get_by_role("link", name="Chat").click()
    await expect(ann.message("First words")).to_have_count(1)
    await expect(ann.composer).to_be_editable()
    await skip.focus()
    await page.keyboard.press("Enter")
    await expect(ann.composer).to_be_focused()

    # The focus is drawn wherever it goes.
    await page.keyboard.press("Shift+Tab")
    ring = await focus_ring(page)
    assert ring["style"] != "none" and ring["width"] != "0px", ring

    # Ctrl+K searches; Esc leaves it.
    await page.keyboard.press("Control+k")
    await expect(page.get_by_role("combobox", name="Search")).to_be_focused()
    await page.keyboard.press("Escape")

    # Up in an empty composer edits my last message.
    await ann.composer.focus()
    await page.keyboard.press("ArrowUp")
    editor = page.locator("#message-list").get_by_role("textbox")
    await expect(editor).to_be_focused()
    await expect(editor).to_have_value("First words")
    await page.keyboard.press("Escape")
    await expect(editor).to_have_count(0)

    # New messages are read out, politely.
    await expect(page.locator("#message-list")).to_have_attribute("aria-live", "polite")
    assert ann.problems == [], ann.problems


async def test_esc_closes_what_floats_over_a_phone_screen(
    server: ServerProcess,
    browser: Any,
) -> None:
    bobo = await sign_up(browser, server.url, "bobo", size="phone")
    page = bobo.page
    drawer = page.locator("#conversations")
    toggle = page.get_by_role("button", name="Conversations", exact=True)

    # A newcomer is shown where the conversations are.
    await expect(drawer).not_to_be_in_viewport()
    await page.get_by_role("button", name="Show the conversations").click()
    await expect(drawer).to_be_in_viewport(ratio=1)
    await expect(toggle).to_have_attribute("aria-expanded", "true")
    await page.keyboard.press("Escape")
    await expect(drawer).not_to_be_in_viewport()
    await expect(toggle).to_have_attribute("aria-expanded", "false")

    # Its Close button, and a tap beside it, close it too.
    await toggle.click()
    await drawer.get_by_role("button", name="Close the conversations").click()
    await expect(drawer).not_to_be_in_viewport()
    await toggle.click()
    await expect(drawer).to_be_in_viewport(ratio=1)
    await page.mouse.click(370, 400)
    await expect(drawer).not_to_be_in_viewport()

    # Creating a group in the drawer shows the group.
    await toggle.click()
    await create_group(bobo, "Pocket")
    await expect(drawer).not_to_be_in_viewport()
    await expect(page.locator("#conversation-title")).to_be_in_viewport()

    # The member list slides over the messages; Esc sends it away.
    await page.get_by_role("button", name="Members", exact=True).click()
    members = page.locator("#members-panel")
    await expect(members).to_be_in_viewport()
    await page.keyboard.press("Escape")
    await expect(members).not_to_be_in_viewport()

    # The account menu, behind the avatar.
    account = page.get_by_role("button", name="Account")
    await account.click()
    await expect(account).to_have_attribute("aria-expanded", "true")
    await expect(page.get_by_role("button", name="Sign out")).to_be_focused()
    await page.keyboard.press("Escape")
    await expect(page.get_by_role("button", name="Sign out")).to_be_hidden()
    await expect(account).to_be_focused()
    assert bobo.problems == [], bobo.problems


async def test_the_dark_scheme_keeps_every_text_readable(
    server: ServerProcess,
    browser: Any,
) -> None:
    visitor = await open_page(browser, server.url, "visitor")
    await visitor.page.emulate_media(color_scheme="dark")
    background = await visitor.page.evaluate(
        "getComputedStyle(document.documentElement).backgroundColor"
    )
    assert background != "rgb(245, 246, 248)", "the page stayed light"
    await assert_accessible(visitor, "sign-in, dark")

    cyra = await sign_up(browser, server.url, "cyra")
    await cyra.page.emulate_media(color_scheme="dark")
    await create_group(cyra, "Night shift")
    await cyra.send("Still up?")
    await assert_accessible(cyra, "chat, dark")
    await cyra.page.get_by_role("link", name="Profile").click()
    await assert_accessible(cyra, "profile, dark")
    assert cyra.problems == [], cyra.problems
