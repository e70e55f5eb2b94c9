"""The web client catching up after a dropped connection, in real headless
Chromium against a real server: edits and deletions of messages already on
screen arrive (sync by change), and a message whose answer was lost is sent
again without appearing twice (client_id)."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from typing import Any

import pytest

from tests.e2e.browser import require_chromium
from tests.e2e.server_process import ServerProcess
from tests.e2e.web import Person, add_member, create_group, sign_up

playwright_api = pytest.importorskip("playwright.async_api")
expect = playwright_api.expect
CHROMIUM = require_chromium()


class Switch:
    """Bob's socket, through a switch the test holds: it can drop what the
    server says of new messages, and cut the link."""

    def __init__(self) -> None:
        self.routes: list[Any] = []
        self.ready = asyncio.Event()
        self.swallow_messages = False

    def route(self, route) -> None:  # type: ignore[no-untyped-def]
        self.routes.append(route)

        def to_page(frame: str | bytes) -> None:
            if self.swallow_messages and isinstance(frame, str) and '"type":"message.' in frame:
                return
            route.send(frame)
            if isinstance(frame, str) and '"type":"ready"' in frame:
                self.ready.set()

        route.connect_to_server().on_message(to_page)

    async def reconnect(self) -> None:
        """Closes the socket as a restarting server would; the client's next
        attempt goes through the switch again."""
        self.ready.clear()
        count = len(self.routes)
        await self.routes[-1].close(code=1001, reason="server shutting down")
        await wait_for(lambda: len(self.routes) > count)
        async with asyncio.timeout(10):
            await self.ready.wait()


async def wait_for(condition: Callable[[], bool]) -> None:
    async with asyncio.timeout(10):
        while not condition():
            await asyncio.sleep(0.02)


async def call(person: Person, server: ServerProcess, method: str, path: str, **body: Any) -> Any:
    response = await person.context.request.fetch(  # type: ignore[attr-defined]
        f"{server.url}{path}",
        method=method,
        data=body or None,
        headers={"Origin": server.url},
    )
    assert response.ok, await response.text()
    return await response.json() if response.status != 204 else None


async def test_edits_and_deletions_made_while_away_reach_the_screen(
    server: ServerProcess,
    browser,
) -> None:  # type: ignore[no-untyped-def]
    bob = await sign_up(browser, server.url, "bob")
    alice = await sign_up(browser, server.url, "alice")
    await create_group(alice, "Project")
    await add_member(alice, "bob")
    for text in ("keep me", "fix me", "drop me"):
        await alice.send(text)
    switch = Switch()
    await bob.page.route_web_socket(re.compile(r"/api/v1/ws$"), switch.route)
    await bob.page.reload()
    await bob.conversation("Project").click()
    await expect(bob.message("drop me")).to_be_visible()
    await wait_for(switch.ready.is_set)

    # Bob hears nothing of messages for a while (his link is as good as down).
    switch.swallow_messages = True
    groups = await call(alice, server, "GET", "/api/v1/groups")
    group_id = groups["items"][0]["id"]
    page = await call(alice, server, "GET", f"/api/v1/groups/{group_id}/messages")
    ids = {message["body"]: message["id"] for message in page["items"]}
    messages = f"/api/v1/groups/{group_id}/messages"
    await call(alice, server, "PATCH", f"{messages}/{ids['fix me']}", body="fixed")
    await call(alice, server, "DELETE", f"{messages}/{ids['drop me']}")
    await alice.send("new one")
    await expect(bob.page.locator("#message-list .message-body")).to_have_text(
        ["keep me", "fix me", "drop me"]
    )

    switch.swallow_messages = False
    await switch.reconnect()

    await expect(bob.page.locator("#message-list .message-body")).to_have_text(
        ["keep me", "fixed", "new one"]
    )
    await expect(bob.message("fixed").locator(".edited")).to_be_visible()
    assert alice.problems == []
    assert bob.problems == []


async def test_a_message_whose_answer_was_lost_is_sent_again_and_shown_once(
    server: ServerProcess,
    browser,
) -> None:  # type: ignore[no-untyped-def]
    bob = await sign_up(browser, server.url, "bob")
    alice = await sign_up(browser, server.url, "alice")
    await create_group(alice, "Project")
    await add_member(alice, "bob")
    await alice.send("hello")
    switch = Switch()
    await bob.page.route_web_socket(re.compile(r"/api/v1/ws$"), switch.route)
    await bob.page.reload()
    await bob.conversation("Project").click()
    await expect(bob.message("hello")).to_be_visible()
    await wait_for(switch.ready.is_set)

    # Bob's message is stored, but neither its ack nor its message.created
    # reaches him before the connection drops.
    switch.swallow_messages = True
    composer = bob.page.get_by_role("textbox", name="Message", exact=True)
    await composer.fill("only once")
    await composer.press("Enter")
    await expect(alice.message("only once")).to_be_visible()
    await expect(bob.page.locator("#message-list li.pending")).to_contain_text("Sending")

    switch.swallow_messages = False
    await switch.reconnect()

    # Sent again with the same client_id: the server answers with the stored one.
    await expect(bob.page.locator("#message-list li.pending")).to_have_count(0)
    await expect(bob.page.locator("#message-list .message-body")).to_have_text(
        ["hello", "only once"]
    )
    await expect(alice.page.locator("#message-list .message-body")).to_have_text(
        ["hello", "only once"]
    )
    groups = await call(alice, server, "GET", "/api/v1/groups")
    history = await call(
        alice, server, "GET", f"/api/v1/groups/{groups['items'][0]['id']}/messages"
    )
    assert [message["body"] for message in history["items"]] == ["only once", "hello"]
    assert alice.problems == []
    assert bob.problems == []
