"""The web client's chat, in two real headless Chromium contexts (alice and
bob) against one real server: live messages, unread badges, edits and
deletions, presence, typing, reconnecting, and that bodies stay text."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

from tests.e2e.server_process import ServerProcess
from tests.e2e.web import (
    Person,
    add_member,
    create_group,
    expect,
    sign_up,
)

# Every wait is bounded by expect's default of 5 s: a live update takes
# milliseconds, so a miss fails quickly instead of hanging.
XSS = '<img src=x onerror="window.pwned=1">'


def presence_dot(person: Person, display_name: str):  # type: ignore[no-untyped-def]
    return person.page.locator("#member-list li", has_text=display_name).locator(".dot")


async def test_two_people_chat_live(server: ServerProcess, browser, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    bob = await sign_up(browser, server.url, "bob")
    alice = await sign_up(browser, server.url, "alice")
    await expect(bob.page.locator("#no-groups")).to_be_visible()

    await create_group(alice, "Project")
    await add_member(alice, "bob")
    # Bob, connected already, joined: the group is told he is online.
    await expect(presence_dot(alice, "bob")).to_have_class(re.compile(r"\bonline\b"))
    # Bob is told over his socket: the group appears without a reload.
    await expect(bob.conversation("Project")).to_be_visible()
    await bob.conversation("Project").click()
    await expect(bob.page.locator("#conversation-title")).to_have_text("Project")
    await expect(bob.page.locator("#member-list")).to_contain_text("@alice")
    # A fresh page hears of no arrival: the member list says who is online.
    await bob.page.reload()
    await bob.conversation("Project").click()
    await expect(bob.page.locator("#member-list")).to_contain_text("@alice")
    await expect(presence_dot(bob, "alice")).to_have_class(re.compile(r"\bonline\b"))

    await alice.send("hello bob")
    received = bob.message("hello bob")
    await expect(received).to_be_visible()
    await expect(received.locator(".sender")).to_have_text("alice")
    # Initials, name, time, body and what bob may do: nothing else (no stray
    # "null" for missing buttons).
    shown = re.compile(r"^Aalice\s*\d{1,2}:\d{2}(\s*[AP]M)?\s*hello bob\s*Reply\s*React$")
    await expect(received).to_have_text(shown)

    await bob.page.get_by_role("textbox", name="Message", exact=True).fill("hi alice")
    await expect(alice.page.locator("#typing-indicator")).to_have_text("bob is typing…")
    await bob.page.get_by_role("textbox", name="Message", exact=True).press("Enter")
    await expect(alice.message("hi alice")).to_be_visible()
    await expect(alice.message("hi alice").locator(".sender")).to_have_text("bob")
    await expect(alice.page.locator("#typing-indicator")).to_have_text("")
    await expect(presence_dot(alice, "bob")).to_have_class(re.compile(r"\bonline\b"))

    # Messages to a group bob does not have open count on its badge.
    await create_group(bob, "Notes")
    await alice.send("one")
    await alice.send("two")
    await expect(bob.conversation("Project").locator(".badge")).to_have_text("2")
    await expect(bob.page).to_have_title("(2) gortc")
    await bob.conversation("Project").click()
    await expect(bob.message("two")).to_be_visible()
    await expect(bob.conversation("Project").locator(".badge")).to_have_count(0)
    await expect(bob.page).to_have_title("gortc")

    # Alice edits one message and deletes another; bob sees both.
    mine = alice.page.locator(
        f'li[data-id="{await alice.message("one").get_attribute("data-id")}"]'
    )
    await mine.hover()
    await mine.get_by_role("button", name="Edit").click()
    editor = mine.get_by_role("textbox", name="Edit message")
    await editor.fill("one, edited")
    await editor.press("Enter")
    await expect(alice.message("one, edited").locator(".edited")).to_have_text("(edited)")
    await expect(bob.message("one, edited").locator(".edited")).to_have_text("(edited)")
    await expect(bob.message("one")).to_have_count(0)

    doomed = alice.page.locator(
        f'li[data-id="{await alice.message("two").get_attribute("data-id")}"]'
    )
    await doomed.hover()
    await doomed.get_by_role("button", name="Delete").click()
    await doomed.get_by_role("button", name="Yes, delete").click()
    await expect(alice.message("two")).to_have_count(0)
    await expect(bob.message("two")).to_have_count(0)
    # Bob is not an admin: he may delete nobody's message but his own.
    await expect(bob.message("hello bob").get_by_role("button", name="Delete")).to_have_count(0)
    await expect(bob.message("hi alice").get_by_role("button", name="Delete")).to_have_count(1)

    # A body is text, never markup.
    await alice.send(XSS)
    await expect(bob.message(XSS)).to_be_visible()
    assert await bob.page.locator("#message-list img").count() == 0
    assert await bob.page.evaluate("window.pwned") is None
    assert await alice.page.evaluate("window.pwned") is None

    screenshot = tmp_path / "chat.png"
    await alice.page.screenshot(path=str(screenshot))
    assert screenshot.stat().st_size > 10_000

    # Bob's last connection goes: alice sees him offline.
    await bob.context.close()
    await expect(presence_dot(alice, "bob")).to_have_class(re.compile(r"\boffline\b"))
    assert alice.problems == []
    assert bob.problems == []


async def test_a_dropped_connection_catches_up_and_a_sign_out_ends_other_tabs(
    server: ServerProcess, browser
) -> None:  # type: ignore[no-untyped-def]
    bob = await sign_up(browser, server.url, "bob")
    alice = await sign_up(browser, server.url, "alice")
    await create_group(alice, "Project")
    await add_member(alice, "bob")
    await bob.conversation("Project").click()
    await alice.send("before")
    await expect(bob.message("before")).to_be_visible()

    # From now on bob's socket runs through a switch the test holds.
    routes: list[object] = []
    cut = asyncio.Event()
    ready = asyncio.Event()

    def through_switch(route) -> None:  # type: ignore[no-untyped-def]
        routes.append(route)
        if cut.is_set():
            return  # a socket that opens and never says "ready", like a dead link

        def to_page(frame: str | bytes) -> None:
            route.send(frame)
            if isinstance(frame, str) and '"type":"ready"' in frame:
                ready.set()

        route.connect_to_server().on_message(to_page)

    async def wait_for(condition) -> None:  # type: ignore[no-untyped-def]
        async with asyncio.timeout(5):
            while not condition():
                await asyncio.sleep(0.02)

    await bob.page.route_web_socket(re.compile(r"/api/v1/ws$"), through_switch)
    await bob.page.reload()
    await expect(bob.message("before")).to_be_visible()
    await wait_for(ready.is_set)

    cut.set()
    await routes[-1].close(code=1001, reason="server shutting down")
    await wait_for(lambda: len(routes) == 2)  # bob's client tries again, into the dead link
    await expect(bob.page.locator("#connection-banner")).to_contain_text("Reconnecting")
    await alice.send("while you were away")
    await alice.send("and another")
    composer = bob.page.get_by_role("textbox", name="Message", exact=True)
    await composer.fill("written offline")
    await composer.press("Enter")
    await expect(bob.page.locator("#message-list li.pending")).to_contain_text(
        "Waiting for the connection"
    )

    cut.clear()
    await routes[-1].close(code=1001, reason="server shutting down")
    await expect(bob.page.locator("#connection-banner")).to_be_hidden()
    # The sync after reconnecting brings what was missed, in order.
    await expect(bob.page.locator("#message-list .message-body")).to_have_text(
        ["before", "while you were away", "and another", "written offline"]
    )
    await expect(alice.message("written offline")).to_be_visible()

    # Invitations arrive live and are answered from the sidebar.
    for name in ("Side room", "Spam"):
        created = await alice.context.request.post(
            f"{server.url}/api/v1/groups", data={"name": name}, headers={"Origin": server.url}
        )
        invited = await alice.context.request.post(
            f"{server.url}/api/v1/groups/{(await created.json())['id']}/invitations",
            data={"username": "bob"},
            headers={"Origin": server.url},
        )
        assert invited.status == 201
    invitations = bob.page.locator("#invitation-list li")
    await expect(invitations).to_have_count(2)
    await invitations.filter(has_text="Spam").get_by_role("button", name="Decline").click()
    await invitations.filter(has_text="Side room").get_by_role("button", name="Accept").click()
    await expect(invitations).to_have_count(0)
    await expect(bob.page.locator("#invitations")).to_be_hidden()
    await expect(bob.page.locator("#conversation-title")).to_have_text("Side room")
    await expect(bob.conversation("Spam")).to_have_count(0)

    # Signing out in a second tab ends the session: the first tab's socket
    # is closed with 4001 and it returns to the sign-in form.
    second_tab = await alice.context.new_page()
    await second_tab.goto(server.url)
    await second_tab.get_by_role("button", name="Sign out").click()
    await expect(alice.page.locator("#sign-in-form")).to_be_visible()
    await expect(alice.page.locator("#notice")).to_contain_text("sign in again")
    assert alice.problems == []
    assert bob.problems == []
