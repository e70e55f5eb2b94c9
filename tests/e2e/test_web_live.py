"""Live streaming in the web client, in real headless Chromiums against the
real server: Bob finds his stream key on his profile (and replaces it), a
real ffmpeg publishes with it as OBS would, Ann sees his room appear in the
Live list without reloading, opens it and watches with the browser's own HLS
player, Cid with the vendored hls.js, both a few seconds behind; they chat
in the room (Cid's connection drops and he is back in the chat by himself;
too many lines are refused plainly); when the stream stops they are told
and the room leaves the list. Everything runs over 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.e2e.browser import require_chromium
from tests.e2e.server_process import ServerProcess, start_server
from tests.e2e.web import Person, sign_up
from tests.media_tools import ffmpeg_publish, require_tool

playwright_api = pytest.importorskip("playwright.async_api")

CHROMIUM = require_chromium()
expect = playwright_api.expect

# The client plays with hls.js wherever Media Source Extensions exist (it
# keeps closer to the live edge than a browser's own player), and falls
# back on the browser's own HLS where they do not (iPhones before iOS 17.1):
# this makes a page look like such a browser.
NO_MEDIA_SOURCE = """
(() => {
  delete window.MediaSource;
  delete window.ManagedMediaSource;
})();
"""

# Whether the <video> shows moving pictures, and how far behind the newest
# media it has (the live edge) it plays.
VIDEO_PLAYS = """
async (video) => {
  const before = video.currentTime;
  await new Promise((resolve) => setTimeout(resolve, 500));
  const edge = video.seekable.length ? video.seekable.end(video.seekable.length - 1) : null;
  return {
    width: video.videoWidth, paused: video.paused, advanced: video.currentTime - before,
    behind: edge === null ? null : edge - video.currentTime, engine: video.dataset.engine || null,
  };
}
"""


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[ServerProcess]:
    require_tool("ffmpeg")
    running = await start_server(
        tmp_path / "data",
        GORTC_AUTH_BCRYPT_ROUNDS="4",
        # A free port for the RTMP ingest; /healthz says which.
        GORTC_LIVE_RTMP_PORT="0",
        GORTC_LIVE_SEGMENT_SECONDS="1",
    )
    yield running
    await running.stop()


def waiting_for_playlist(problem: str) -> bool:
    """The playlist's 404 while the stream is live but has no segment yet
    (the client asks again until it has): Chromium logs each one."""
    return "status of 404" in problem and "/index.m3u8" in problem


async def rtmp_port(server: ServerProcess) -> int:
    """The ingest's port, as /healthz reports it ("ok, port N, …")."""
    async with aiohttp.ClientSession() as session, session.get(f"{server.url}/healthz") as answer:
        check = (await answer.json())["checks"]["rtmp"]
    match = re.match(r"ok, port (\d+)", check)
    assert match, check
    return int(match.group(1))


def live_room(person: Person, name: str) -> Any:
    return person.page.locator("#live-list .live-link", has_text=name)


def chat_line(person: Person, text: str) -> Any:
    """A settled (sent back by the server) line of the live room's chat."""
    return person.page.locator("#live-chat-lines li.live-line:not(.pending)").filter(
        has=person.page.locator(".body", has_text=re.compile(f"^{re.escape(text)}$"))
    )


def chat_box(person: Person) -> Any:
    return person.page.get_by_role("textbox", name="Chat in the live room")


async def say(person: Person, text: str) -> None:
    box = chat_box(person)
    await box.fill(text)
    await box.press("Enter")


async def wait_for_video(person: Person, timeout: float = 15) -> dict[str, Any]:
    """What the room's <video> shows once it plays; fails after timeout."""
    video = person.page.locator("#live-video")
    deadline = time.monotonic() + timeout
    shown: dict[str, Any] = {}
    while time.monotonic() < deadline:
        shown = await video.evaluate(VIDEO_PLAYS)
        if shown["width"] > 0 and shown["advanced"] > 0.2 and not shown["paused"]:
            return shown
        await person.page.wait_for_timeout(200)
    status = await person.page.locator("#live-status").text_content()
    raise AssertionError(f"the stream does not play: {shown}; status {status!r}")


async def stream_kinds(url: str) -> dict[str, str]:
    """What ffprobe finds at a URL, as a plain player would open it."""
    process = await asyncio.create_subprocess_exec(
        require_tool("ffprobe"), "-v", "error", "-show_entries", "stream=codec_name,codec_type",
        "-of", "json", url,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    async with asyncio.timeout(20):
        out, err = await process.communicate()
    assert process.returncode == 0, err.decode()
    return {s["codec_type"]: s["codec_name"] for s in json.loads(out)["streams"]}


async def test_a_stream_goes_live_plays_with_chat_and_ends(
    server: ServerProcess, browser: Any
) -> None:
    began = time.monotonic()
    bob = await sign_up(browser, server.url, "bob")
    ann = await sign_up(browser, server.url, "ann")
    cid = await sign_up(browser, server.url, "cid")
    await cid.context.add_init_script(NO_MEDIA_SOURCE)
    # Cid's socket runs through the test, which drops it once.
    cid_sockets: list[Any] = []

    def pass_through(route: Any) -> None:
        cid_sockets.append(route)
        route.connect_to_server()

    await cid.page.route_web_socket(re.compile(r"/api/v1/ws$"), pass_through)
    await cid.page.reload()

    # Bob's profile: the server URL, his key (hidden until asked), a title.
    await bob.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=server.url)
    await bob.page.get_by_role("link", name="Profile").click()
    card = bob.page.locator("#live-settings")
    key_field = card.get_by_label("Stream key", exact=True)
    await expect(key_field).to_have_attribute("type", "password")
    await expect(key_field).not_to_have_value("")
    # (With rtmp_port 0 it shows port 0, not the one taken: the publisher
    # below asks /healthz.)
    server_url = card.get_by_label("Server", exact=True)
    await expect(server_url).to_have_value(re.compile(r"^rtmp://127\.0\.0\.1:\d+/live$"))
    # A key that got out is replaced, after a warning.
    first_key = await key_field.input_value()
    await card.get_by_role("button", name="Reset key").click()
    await expect(card).to_contain_text("The old key stops working at once")
    await card.get_by_role("button", name="Reset the key").click()
    await expect(key_field).not_to_have_value(first_key)
    await card.get_by_role("button", name="Show").click()
    await expect(key_field).to_have_attribute("type", "text")
    key = await key_field.input_value()
    await card.get_by_role("button", name="Copy the stream key").click()
    assert await bob.page.evaluate("navigator.clipboard.readText()") == key
    await card.get_by_label("Room title").fill("Friday build")
    await card.get_by_role("button", name="Save").click()
    await expect(card.get_by_role("status").filter(has_text="Title saved")).to_be_visible()
    # A public room is a choice that stays (the server has it, not the page).
    public = card.get_by_label("Public room")
    await public.check()
    await expect(card.get_by_role("status").filter(has_text="Your room is public")).to_be_visible()
    await bob.page.reload()
    await expect(public).to_be_checked()
    await public.uncheck()
    await expect(card.get_by_role("status").filter(has_text="private again")).to_be_visible()

    await expect(ann.page.locator("#no-live")).to_have_text("Nobody is live right now.")
    publisher = await ffmpeg_publish(
        f"rtmp://127.0.0.1:{await rtmp_port(server)}/live/{key}", seconds=40
    )
    published = time.monotonic()
    try:
        # Live for everyone within seconds, without a reload.
        for person in (ann, cid):
            room = live_room(person, "bob")
            await expect(room).to_contain_text("Friday build", timeout=10_000)
            await expect(room).to_contain_text("watching")
        await expect(ann.page.locator("#no-live")).to_be_hidden()

        clicked = time.monotonic()
        await live_room(ann, "bob").click()
        await live_room(cid, "bob").click()
        await expect(ann.page.locator("#live-room-title")).to_have_text("Friday build")
        await expect(ann.page.locator("#live-room-streamer")).to_have_text("bob (@bob)")
        ann_sees = await wait_for_video(ann)
        cid_sees = await wait_for_video(cid)
        print(f"playing {time.monotonic() - clicked:.1f} s after the click; {ann_sees}, {cid_sees}")
        assert ann_sees["engine"] == "hls.js"
        assert cid_sees["engine"] == "native"
        # The link for other players (VLC, OBS…), as a viewer copies it from
        # the room: ffprobe, which sends no cookie, reads the stream with it.
        await ann.context.grant_permissions(
            ["clipboard-read", "clipboard-write"], origin=server.url
        )
        await ann.page.get_by_role("button", name="Copy player link").click()
        await expect(
            ann.page.get_by_role("status").filter(has_text="Player link copied")
        ).to_be_visible()
        link = await ann.page.evaluate("navigator.clipboard.readText()")
        assert link.startswith(f"{server.url}/live/") and "vt=" in link, link
        assert await stream_kinds(link) == {"video": "h264", "audio": "aac"}
        # A few seconds behind the streamer at most. The media clock starts
        # with the stream, which ffmpeg started in real time (-re) a little
        # after `published`: the estimate errs on the long side.
        for person, sees in ((ann, ann_sees), (cid, cid_sees)):
            position = await person.page.locator("#live-video").evaluate("(v) => v.currentTime")
            behind = time.monotonic() - published - position
            print(f"{sees['engine']}: about {behind:.1f} s behind the streamer")
            assert behind < 6
        # hls.js transmuxed in its worker, loaded from this server (a blob:
        # worker would be a CSP violation, which Person.problems records).
        loaded = await ann.page.evaluate(
            "performance.getEntriesByType('resource').map((e) => e.name)"
        )
        assert any(name.endswith("/static/vendor/hls.worker.js") for name in loaded), loaded
        # hls.js keeps about two 1 s segments behind the newest one.
        assert ann_sees["behind"] is not None and ann_sees["behind"] < 5, ann_sees

        # The room's chat: a line reaches everyone watching, the sender too.
        await say(ann, "hi bob, looks great")
        for person in (ann, cid):
            line = chat_line(person, "hi bob, looks great")
            await expect(line).to_have_count(1)
            await expect(line.locator(".sender")).to_have_text("ann")
        # Cid's connection drops and comes back: his client watches the
        # room again by itself, and the chat reaches him as before.
        await cid_sockets[-1].close(code=1001, reason="server shutting down")
        async with asyncio.timeout(5):
            while len(cid_sockets) < 2:
                await asyncio.sleep(0.05)
        await expect(cid.page.locator("#live-chat-state")).to_be_hidden()
        await say(ann, "welcome back")
        await expect(chat_line(cid, "welcome back")).to_have_count(1)
        # Too many lines at once: the excess is refused, plainly.
        for n in range(7):
            await say(cid, f"spam {n}")
        await expect(cid.page.locator("#live-chat-lines li.failed").first).to_contain_text(
            "sending too fast"
        )
        await expect(chat_line(ann, "spam 0")).to_have_count(1)
    finally:
        if publisher.returncode is None:
            publisher.terminate()  # as OBS's Stop Streaming: a clean end
        async with asyncio.timeout(10):
            await publisher.wait()

    # Bob stopped: the viewers are told, the player stops, the room goes.
    for person in (ann, cid):
        await expect(person.page.locator("#live-status")).to_have_text(
            "The stream has ended.", timeout=10_000
        )
        await expect(live_room(person, "bob")).to_have_count(0)
        await expect(person.page.locator("#no-live")).to_be_visible()
        await expect(chat_box(person)).to_be_disabled()
        assert await person.page.locator("#live-video").evaluate("(v) => v.paused && !v.src")
    await ann.page.get_by_role("button", name="Leave", exact=True).click()
    await expect(ann.page.locator("#live-view")).to_be_hidden()
    await expect(ann.page.locator("#conversation-empty")).to_be_visible()

    for person in (bob, ann, cid):
        assert [p for p in person.problems if not waiting_for_playlist(p)] == []
    print(f"the whole scenario took {time.monotonic() - began:.1f} s")
