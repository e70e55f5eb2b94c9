"""Every main screen of the web client, at a desktop's 1280×800 and a phone's
390×844: a screenshot of each under build/screenshots/<size>/, no sideways
scrolling, no serious axe-core violation; on the phone, the conversations
are a drawer that opens, closes on a choice and on Esc, and nothing a
person needs is pushed off the screen.

The screens are reached as a person reaches them (tabs, buttons, labels);
only the data behind them (a group with a member, a file) is made through
the API, from the page itself with its session.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.browser import chromium
from tests.e2e.server_process import ServerProcess, start_server
from tests.e2e.test_web_call import CALL_ARGS
from tests.e2e.web import (
    Person,
    assert_no_sideways_scroll,
    check_screen,
    create_group,
    expect,
    open_page,
    sign_up,
)
from tests.media_tools import ffmpeg_publish, require_tool

LONG_LINK = "https://example.com/" + "a-very-long-path-segment-" * 8
A_NOTE = "Shopping list: apples, pears and quinces for the harvest supper."


async def call_api(person: Person, method: str, path: str, body: Any = None) -> Any:
    """The JSON API from the person's page, with their session cookie."""
    return await person.page.evaluate(
        """async ([method, path, body]) => {
            const options = { method, headers: {} };
            if (body !== null) {
                options.headers['Content-Type'] = 'application/json';
                options.body = JSON.stringify(body);
            }
            const response = await fetch(path, options);
            if (!response.ok) throw new Error(`${method} ${path}: ${response.status}`);
            const text = await response.text();
            return text ? JSON.parse(text) : null;
        }""",
        [method, path, body],
    )


async def upload_note(person: Person, name: str, text: str) -> None:
    await person.page.evaluate(
        """async ([name, text]) => {
            const form = new FormData();
            form.append('file', new File([text], name, { type: 'text/plain' }));
            const response = await fetch('/api/v1/files', { method: 'POST', body: form });
            if (!response.ok) throw new Error(`upload: ${response.status}`);
        }""",
        [name, text],
    )


async def show_conversations(person: Person) -> None:
    """On a phone, open the drawer (the list is always there on a desktop)."""
    toggle = person.page.get_by_role("button", name="Conversations", exact=True)
    if await toggle.is_visible():
        await toggle.click()
        await expect(toggle).to_have_attribute("aria-expanded", "true")
        await expect(person.page.locator("#conversations")).to_be_in_viewport(ratio=1)


class Screens:
    """check_screen on each screen, every fault gathered: one run names all
    the screens that fail, not only the first."""

    def __init__(self) -> None:
        self.faults: list[str] = []

    async def check(self, person: Person, name: str, *, dark: bool = False) -> None:
        try:
            await check_screen(person, name)
        except AssertionError as fault:
            self.faults.append(str(fault))
        if dark:  # the same screen in the dark scheme too
            await person.page.emulate_media(color_scheme="dark")
            try:
                await check_screen(person, f"{name}-dark")
            except AssertionError as fault:
                self.faults.append(str(fault))
            await person.page.emulate_media(color_scheme="light")


async def open_tab(person: Person, name: str) -> None:
    await person.page.get_by_role("navigation", name="Views").get_by_role("link", name=name).click()


@pytest.mark.parametrize("size", ["desktop", "phone"])
async def test_every_main_screen_fits(server: ServerProcess, browser: Any, size: str) -> None:
    screens = Screens()
    visitor = await open_page(browser, server.url, "visitor", size)
    await expect(visitor.page.locator("#sign-in-form")).to_be_visible()
    await screens.check(visitor, "sign-in")
    await visitor.page.get_by_role("link", name="Create an account").click()
    await expect(visitor.page.locator("#register-form")).to_be_visible()
    await screens.check(visitor, "sign-up")
    await visitor.context.close()

    bob = await sign_up(browser, server.url, "bob", size)
    alice = await sign_up(browser, server.url, "alice", size)
    page = alice.page
    await screens.check(alice, "chat-empty")

    await show_conversations(alice)
    await create_group(alice, "A rather long group name for the harvest supper planning")
    group_id = (await call_api(alice, "GET", "/api/v1/groups"))["items"][0]["id"]
    await call_api(alice, "POST", f"/api/v1/groups/{group_id}/members", {"username": "bob"})

    # A phone shows the conversation, not the drawer, once one is chosen;
    # its title is readable and the header's buttons are on the screen.
    if size == "phone":
        await expect(page.locator("#conversations")).not_to_be_in_viewport()
    title = page.locator("#conversation-title")
    assert (await title.bounding_box() or {"width": 0})["width"] > 100
    for name in ("Members",):
        await expect(page.get_by_role("button", name=name, exact=True)).to_be_in_viewport()

    await alice.send("Hello everyone, the plan is in the files.")
    await alice.send(LONG_LINK)
    await bob.page.reload()
    await expect(bob.message(LONG_LINK)).to_have_count(1)
    await bob.send("Thanks, I will bring the pears.")
    await expect(alice.message("Thanks, I will bring the pears.")).to_have_count(1)
    composer = alice.composer
    box = await composer.bounding_box()
    assert box is not None and box["width"] > (220 if size == "phone" else 500), box
    await screens.check(alice, "chat", dark=True)

    if size == "phone":
        await show_conversations(alice)
        await screens.check(alice, "conversations")
        await page.keyboard.press("Escape")
        await expect(page.locator("#conversations")).not_to_be_in_viewport()
        await expect(page.get_by_role("button", name="Conversations", exact=True)).to_be_focused()

    members = page.locator("#members-panel")
    if not await members.is_visible():  # a desktop shows it beside the messages
        await page.get_by_role("button", name="Members", exact=True).click()
    await expect(members).to_be_visible()
    await expect(members.get_by_text("@bob")).to_be_visible()
    await screens.check(alice, "members", dark=True)
    if size == "phone":
        await page.keyboard.press("Escape")
        await expect(members).not_to_be_in_viewport()

    await upload_note(alice, "harvest.txt", A_NOTE)
    await open_tab(alice, "Files")
    await expect(page.locator("#files-view")).to_be_visible()
    await expect(page.locator("#files-view").get_by_text("harvest.txt").first).to_be_visible()
    await screens.check(alice, "files", dark=True)

    search = page.get_by_role("combobox", name="Search")
    await search.fill("quinces")
    await expect(page.locator("#search-results mark").first).to_be_visible()
    await screens.check(alice, "search", dark=True)
    await search.press("Escape")

    await open_tab(alice, "Profile")
    await expect(page.locator("#profile-form")).to_be_visible()
    await screens.check(alice, "profile", dark=True)

    # The account's menu: on a phone behind the avatar, Sign out in it.
    if size == "phone":
        await expect(page.get_by_role("button", name="Sign out")).to_be_hidden()
        await page.get_by_role("button", name="Account").click()
        await expect(page.get_by_role("button", name="Sign out")).to_be_in_viewport()
        await screens.check(alice, "account-menu")
    await page.get_by_role("button", name="Sign out").click()
    await expect(page.locator("#sign-in-form")).to_be_visible()

    assert screens.faults == [], "\n".join(screens.faults)
    for person in (alice, bob):
        assert person.problems == [], person.problems


@pytest.fixture
async def live_server(tmp_path: Path) -> AsyncIterator[ServerProcess]:
    require_tool("ffmpeg")
    running = await start_server(
        tmp_path / "data",
        GORTC_AUTH_BCRYPT_ROUNDS="4",
        GORTC_LIMITS_ENABLED="false",
        GORTC_LIVE_SEGMENT_SECONDS="1",
    )
    yield running
    await running.stop()


@pytest.fixture
async def call_browser() -> AsyncIterator[Any]:
    async with chromium(*CALL_ARGS) as launched:
        yield launched


async def wait_until_playing(person: Person, timeout: float = 20) -> None:
    video = person.page.locator("#live-video")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await video.evaluate("(v) => v.videoWidth > 0 && v.currentTime > 0"):
            return
        await asyncio.sleep(0.25)
    raise AssertionError("the live video never played")


@pytest.mark.parametrize("size", ["desktop", "phone"])
async def test_the_live_room_and_call_screens_fit(
    live_server: ServerProcess, call_browser: Any, size: str
) -> None:
    screens = Screens()
    ann = await sign_up(call_browser, live_server.url, "ann")
    bob = await sign_up(call_browser, live_server.url, "bob", size)
    page = bob.page

    # Ann streams; Bob watches her room.
    key = await call_api(ann, "GET", "/api/v1/live/key")
    publisher = await ffmpeg_publish(key["rtmp_url"], seconds=40)
    try:
        await show_conversations(bob)
        room = page.locator("#live-list .live-link", has_text="ann")
        await expect(room).to_be_visible(timeout=15000)
        await room.click()
        if size == "phone":
            await expect(page.locator("#conversations")).not_to_be_in_viewport()
        await wait_until_playing(bob)
        video = await page.locator("#live-video").bounding_box()
        assert video is not None
        if size == "phone":  # the player takes the width, at 16:9
            assert video["width"] >= 385, video
            assert abs(video["width"] / video["height"] - 16 / 9) < 0.05, video
        await screens.check(bob, "live-room")
        await page.get_by_role("button", name="Leave", exact=True).click()
    finally:
        if publisher.returncode is None:
            publisher.kill()
        await publisher.wait()

    # A call between them, in a group.
    await create_group(ann, "Standup")
    group_id = (await call_api(ann, "GET", "/api/v1/groups"))["items"][0]["id"]
    await call_api(ann, "POST", f"/api/v1/groups/{group_id}/members", {"username": "bob"})
    await ann.page.get_by_role("button", name="Join call").click()
    await show_conversations(bob)
    await bob.conversation("Standup").click()
    await page.get_by_role("button", name="Join call").click()
    await expect(page.locator("#call-grid > li")).to_have_count(2, timeout=15000)
    await expect(page.locator("#call-grid video").first).to_be_visible()
    await screens.check(bob, "call")
    await page.get_by_role("button", name="Leave call").click()
    await ann.page.get_by_role("button", name="Leave call").click()

    assert screens.faults == [], "\n".join(screens.faults)
    for person in (ann, bob):
        # The playlist is asked for until its first segment is there.
        problems = [p for p in person.problems if not ("status of 404" in p and ".m3u8" in p)]
        assert problems == [], problems


async def test_no_width_in_between_scrolls_sideways(
    server: ServerProcess,
    browser: Any,
) -> None:
    """Small tablets and narrow windows, at and around each layout's edge."""
    eve = await sign_up(browser, server.url, "evelyn-with-a-long-name")
    page = eve.page
    await create_group(eve, "Widths")
    await eve.send(LONG_LINK)
    for width in (320, 360, 700, 701, 768, 900, 901, 1024):
        await page.set_viewport_size({"width": width, "height": 800})
        for view in ("Chat", "Files", "Profile"):
            await open_tab(eve, view)
            await expect(page.locator(f"#{view.lower()}-view")).to_be_visible()
            await assert_no_sideways_scroll(eve, f"{view} at {width}px")
    assert eve.problems == [], eve.problems
