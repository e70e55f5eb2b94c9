"""Screen sharing, device pickers, the active speaker and avatar tiles in the
web client, in real headless Chromiums through the real server's SFU (media
on 127.0.0.1 only). Chromium's fake devices stand in for the camera (a
moving pattern, two of them), the microphone (a beep) and the screen (a
moving pattern too, granted without a picker)."""

from __future__ import annotations

import asyncio
import re
import struct
import time
import zlib
from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.e2e.browser import chromium
from tests.e2e.server_process import ServerProcess
from tests.e2e.test_web_call import CALL_ARGS, RECORD_MEDIA, VIDEO_PLAYS
from tests.e2e.web import Person, check_screen, create_group, expect, sign_up

# Two fake cameras (and microphones), so that there is something to switch to.
SCREEN_SHARE_ARGS = [
    *[a for a in CALL_ARGS if a != "--use-fake-device-for-media-stream"],
    "--use-fake-device-for-media-stream=device-count=2",
]

# The screens the page shared, within the test's reach.
RECORD_SCREENS = """
(() => {
  window.__screens = [];
  const media = navigator.mediaDevices;
  if (media && media.getDisplayMedia) {
    const getDisplayMedia = media.getDisplayMedia.bind(media);
    media.getDisplayMedia = async (constraints) => {
      const stream = await getDisplayMedia(constraints);
      window.__screens.push(stream);
      return stream;
    };
  }
})();
"""

# What the page's connection sends as its camera and its screen now.
SENDING = """
() => window.__peers.at(-1).getSenders().map((s) => s.track)
  .filter((t) => t && t.kind === "video").map((t) => ({ label: t.label, state: t.readyState }))
"""


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    async with chromium(*SCREEN_SHARE_ARGS) as launched:
        yield launched


def png(width: int, height: int, rgb: tuple[int, int, int]) -> bytes:
    """A plain-colour PNG, for an avatar."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    rows = b"".join(b"\x00" + bytes(rgb) * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


async def caller(browser: Any, url: str, username: str, size: str = "desktop") -> Person:
    person = await sign_up(browser, url, username, size)
    await person.context.add_init_script(RECORD_MEDIA)
    await person.context.add_init_script(RECORD_SCREENS)
    await person.page.reload()  # the recorders are in place from the first script on
    await expect(person.page.locator("#chat-view")).to_be_visible()
    return person


async def fetch(person: Person, method: str, path: str, body: Any = None) -> Any:
    return await person.page.evaluate(
        """async ([method, path, body]) => {
            const options = { method, headers: {} };
            if (body !== null) {
              options.headers["Content-Type"] = "application/json";
              options.body = JSON.stringify(body);
            }
            const response = await fetch(path, options);
            return { status: response.status, body: await response.text() };
        }""",
        [method, path, body],
    )


async def set_avatar(person: Person) -> None:
    status = await person.page.evaluate(
        """async (bytes) => {
            const response = await fetch("/api/v1/users/me/avatar", {
              method: "PUT", headers: { "Content-Type": "image/png" },
              body: new Uint8Array(bytes),
            });
            return response.status;
        }""",
        list(png(64, 64, (200, 60, 140))),
    )
    assert status == 200


async def in_group_call(alice: Person, bob: Person, name: str) -> None:
    """Alice makes the group, adds bob (through the API: the member
    dialogs are not what this tests), both open it and join its call."""
    if alice.page.viewport_size["width"] < 600:
        await alice.page.locator("#drawer-toggle").click()
    await create_group(alice, name)
    group_id = await alice.conversation(name).get_attribute("data-id")
    added = await fetch(alice, "POST", f"/api/v1/groups/{group_id}/members", {"username": "bob"})
    assert added["status"] == 201, added
    # The group is open on alice's page; bob opens it (from the drawer, on a phone).
    if bob.page.viewport_size["width"] < 600:
        await bob.page.locator("#drawer-toggle").click()
    await bob.conversation(name).click()
    await expect(bob.page.locator("#conversation-title")).to_have_text(name)
    for person in (alice, bob):
        await person.page.get_by_role("button", name="Join call").click()
        await expect(person.page.locator("#call-panel")).to_be_visible()


def face(person: Person, display_name: str) -> Any:
    return person.page.locator("#call-grid .call-tile.remote", has_text=display_name)


def screen_tile(person: Person, display_name: str) -> Any:
    return person.page.locator("#call-screens .call-tile.screen", has_text=display_name)


async def wait_until_playing(person: Person, video: Any, what: str, timeout: float = 10) -> None:
    """The <video> shows moving pictures: decoded frames, a clock that runs."""
    deadline = time.monotonic() + timeout
    shown: dict[str, Any] = {}
    while time.monotonic() < deadline:
        if await video.count() == 1:
            shown = await video.evaluate(VIDEO_PLAYS)
            if shown["width"] > 0 and shown["advanced"] > 0.2 and not shown["paused"]:
                return
        await person.page.wait_for_timeout(100)
    state = await person.page.locator("#call-state").text_content()
    raise AssertionError(f"{what} does not play: {shown}; call state {state!r}")


async def test_a_shared_screen_is_shown_large_and_goes_when_stopped(
    server: ServerProcess, browser: Any
) -> None:
    bob = await caller(browser, server.url, "bob")
    await set_avatar(bob)
    alice = await caller(browser, server.url, "alice")
    await in_group_call(alice, bob, "Design")
    await wait_until_playing(bob, face(bob, "alice").locator("video"), "alice's camera")
    await wait_until_playing(alice, face(alice, "bob").locator("video"), "bob's camera")

    # Nothing shared yet: no stage.
    await expect(bob.page.locator("#call-screens")).to_be_hidden()
    share = alice.page.get_by_role("button", name="Share screen")
    await expect(share).to_have_attribute("aria-pressed", "false")

    # Alice shares: she is told so; bob sees her screen, large, and playing,
    # while her camera goes on beside it.
    await share.click()
    await expect(share).to_have_attribute("aria-pressed", "true")
    await expect(alice.page.locator("#call-sharing")).to_contain_text("You are sharing your screen")
    shared = screen_tile(bob, "alice")
    await expect(shared).to_have_count(1)
    await expect(shared).to_have_attribute("aria-label", "alice's screen")
    await wait_until_playing(bob, shared.locator("video"), "alice's screen")
    await wait_until_playing(bob, face(bob, "alice").locator("video"), "alice's camera")
    screen_box = await shared.bounding_box()
    face_box = await face(bob, "alice").bounding_box()
    assert screen_box and face_box
    area = screen_box["width"] * screen_box["height"]
    assert area > 4 * face_box["width"] * face_box["height"], (screen_box, face_box)
    picture = await shared.locator("video").evaluate(
        "(v) => [v.videoWidth, v.videoHeight, v.srcObject.getTracks().length]"
    )
    assert picture[0] >= 640 and picture[2] == 1, picture  # the screen alone, not the camera
    await check_screen(bob, "call-screen-shared")
    await check_screen(alice, "call-sharing")

    # She stops: the screen leaves bob's page, the note leaves hers.
    await alice.page.get_by_role("button", name="Stop sharing").click()
    await expect(shared).to_have_count(0)
    await expect(bob.page.locator("#call-screens")).to_be_hidden()
    await expect(alice.page.locator("#call-sharing")).to_be_hidden()
    await expect(share).to_have_attribute("aria-pressed", "false")
    assert (
        await alice.page.evaluate("window.__screens.at(-1).getVideoTracks()[0].readyState")
        == "ended"
    )

    # Shared again, then ended from the browser's own "Stop sharing" (the
    # track ends): the same.
    await share.click()
    await wait_until_playing(bob, shared.locator("video"), "alice's screen, again")
    await alice.page.evaluate(
        "window.__screens.at(-1).getVideoTracks()[0].dispatchEvent(new Event('ended'))"
    )
    await expect(shared).to_have_count(0)
    await expect(alice.page.locator("#call-sharing")).to_be_hidden()
    await expect(share).to_have_attribute("aria-pressed", "false")

    # Bob turns his camera off: alice sees his picture in its place.
    await bob.page.get_by_role("button", name="Stop camera").click()
    placeholder = face(alice, "bob").locator(".call-placeholder")
    await expect(placeholder).to_be_visible()
    await expect(placeholder.locator("img")).to_have_attribute("src", re.compile("avatar"))
    await check_screen(alice, "call-camera-off")
    assert alice.problems == []
    assert bob.problems == []


async def test_device_pickers_switch_the_camera_and_the_speaker_is_outlined(
    server: ServerProcess, browser: Any
) -> None:
    bob = await caller(browser, server.url, "bob")
    alice = await caller(browser, server.url, "alice")
    await in_group_call(alice, bob, "Devices")
    await wait_until_playing(bob, face(bob, "alice").locator("video"), "alice's camera")

    # The pickers list the fake devices, the ones in use selected.
    camera = alice.page.get_by_label("Camera", exact=True)
    microphone = alice.page.get_by_label("Microphone", exact=True)
    await expect(camera.locator("option")).to_have_count(2)
    assert await microphone.locator("option").count() >= 2
    first = await camera.input_value()
    labels = await camera.locator("option").all_text_contents()
    assert all(labels), labels  # named, not blank
    before = await alice.page.evaluate(SENDING)

    # Alice picks the other camera: the connection sends it (no new
    # offer), bob keeps seeing her, and the choice is remembered.
    other = next(
        value
        for value in await camera.locator("option").evaluate_all("(os) => os.map((o) => o.value)")
        if value != first
    )
    local_sdp = "window.__peers.at(-1).localDescription.sdp"
    sdp_before = await alice.page.evaluate(local_sdp)
    await camera.select_option(other)
    await expect(camera).to_have_value(other)
    await alice.page.wait_for_function(
        f"(label) => ({SENDING})().some((t) => t.label !== label)",
        arg=before[0]["label"],
        timeout=5000,
    )
    after = await alice.page.evaluate(SENDING)
    assert [t["label"] for t in after] != [t["label"] for t in before], (before, after)
    assert all(t["state"] == "live" for t in after), after
    assert await alice.page.evaluate(local_sdp) == sdp_before  # not renegotiated
    await wait_until_playing(bob, face(bob, "alice").locator("video"), "alice's other camera")
    assert (await alice.page.evaluate("localStorage.getItem('gortc.call.camera')")) == other
    # The old camera is let go (the call's stream now holds the new one).
    live = await alice.page.evaluate(
        "[...new Set(window.__captured.flatMap((s) => s.getTracks()))]"
        ".filter((t) => t.kind === 'video' && t.readyState === 'live').map((t) => t.label)"
    )
    assert live == [after[0]["label"]], (live, after)

    # The fake microphone beeps: whoever hears alice sees her outlined.
    await expect(face(bob, "alice")).to_have_class(re.compile(r"\bspeaking\b"), timeout=8000)
    # Muted, she stops being outlined.
    await alice.page.get_by_role("button", name="Mute", exact=True).click()
    await expect(face(bob, "alice")).not_to_have_class(re.compile(r"\bspeaking\b"), timeout=8000)
    await check_screen(bob, "call")
    assert alice.problems == []
    assert bob.problems == []


async def test_a_call_with_a_shared_screen_fits_a_phone(
    server: ServerProcess, browser: Any
) -> None:
    bob = await caller(browser, server.url, "bob", "phone")
    alice = await caller(browser, server.url, "alice", "phone")
    await in_group_call(alice, bob, "Phones")
    await wait_until_playing(bob, face(bob, "alice").locator("video"), "alice's camera")
    await check_screen(bob, "call")

    # The tiles and every control are on screen, none past the edge.
    tiles = bob.page.locator("#call-grid .call-tile")
    await expect(tiles).to_have_count(2)
    for index in range(2):
        box = await tiles.nth(index).bounding_box()
        assert box and box["x"] >= 0 and box["x"] + box["width"] <= 390, box
    for name in ("Mute", "Stop camera", "Share screen", "Leave call"):
        box = await bob.page.get_by_role("button", name=name, exact=True).bounding_box()
        assert box and box["x"] >= 0 and box["x"] + box["width"] <= 390, (name, box)

    # Phones cannot share their screens, but alice's phone here can (it is
    # Chromium): bob's sees it full width, and still no sideways scrolling.
    await alice.page.get_by_role("button", name="Share screen").click()
    shared = screen_tile(bob, "alice")
    await wait_until_playing(bob, shared.locator("video"), "alice's screen")
    box = await shared.bounding_box()
    assert box and box["width"] > 300 and box["x"] + box["width"] <= 390, box
    await check_screen(bob, "call-screen-shared")
    await check_screen(alice, "call-sharing")

    # Bob leaves and joins again while she shares: her screen is there at
    # once (the server asks her browser for a keyframe of the screen).
    await bob.page.get_by_role("button", name="Leave call").click()
    await expect(bob.page.locator("#call-panel")).to_be_hidden()
    await bob.page.get_by_role("button", name="Join call").click()
    started = time.monotonic()
    await wait_until_playing(bob, shared.locator("video"), "alice's screen, joining late")
    assert time.monotonic() - started < 5
    assert alice.problems == []
    assert bob.problems == []


async def test_a_share_goes_on_after_the_sharers_connection_comes_back(
    server: ServerProcess, browser: Any
) -> None:
    bob = await caller(browser, server.url, "bob")
    alice = await caller(browser, server.url, "alice")
    # Alice's socket runs through a switch the test holds.
    sockets: list[Any] = []
    cut = asyncio.Event()

    def through_switch(route: Any) -> None:
        sockets.append(route)
        if not cut.is_set():  # else a socket that opens and never says "ready"
            route.connect_to_server()

    await alice.page.route_web_socket(re.compile(r"/api/v1/ws$"), through_switch)
    await alice.page.reload()
    await expect(alice.page.locator("#chat-view")).to_be_visible()
    await in_group_call(alice, bob, "Review")
    await alice.page.get_by_role("button", name="Share screen").click()
    shared = screen_tile(bob, "alice")
    await wait_until_playing(bob, shared.locator("video"), "alice's screen")

    # Her link drops: the server ends her part, and bob's page lets go of
    # her screen; she keeps sharing meanwhile.
    cut.set()
    await sockets[-1].close(code=1001, reason="server shutting down")
    await expect(face(bob, "alice")).to_have_count(0)
    await expect(shared).to_have_count(0)
    await expect(alice.page.locator("#call-sharing")).to_be_visible()

    # It is back: she rejoins by herself, still sharing, and bob sees it.
    cut.clear()
    await sockets[-1].close(code=1001, reason="server shutting down")
    await expect(face(bob, "alice")).to_have_count(1, timeout=10_000)
    await wait_until_playing(bob, shared.locator("video"), "alice's screen, after her rejoin")
    await expect(alice.page.get_by_role("button", name="Share screen")).to_have_attribute(
        "aria-pressed", "true"
    )
    assert alice.problems == []
    assert bob.problems == []
