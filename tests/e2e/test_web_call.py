"""Group calls in the web client, in real headless Chromiums (one context per
person, a synthetic camera and microphone each) through the real server's
SFU: people see each other's video play and receive the audio, a mute shows
as a badge, a leave removes the tile and turns the camera off, a late joiner
sees video at once, a dropped browser leaves and a dropped socket rejoins,
and what cannot work (no devices, a full call) is said in plain words.
Everything, the media included, runs over 127.0.0.1."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.browser import chromium, require_chromium
from tests.e2e.server_process import ServerProcess, start_server
from tests.e2e.web import Person, add_member, create_group, sign_up

playwright_api = pytest.importorskip("playwright.async_api")

CHROMIUM = require_chromium()
expect = playwright_api.expect

# What a call needs from this Chromium, on a machine without camera,
# microphone or anyone to click "Allow":
CALL_ARGS = [
    # A synthetic camera (a moving test pattern) and microphone (a beep).
    "--use-fake-device-for-media-stream",
    # Camera and microphone permission granted without the prompt.
    "--use-fake-ui-for-media-stream",
    # Chromium leaves loopback out of its ICE candidates unless told; the
    # server gathers on 127.0.0.1 only, so that is the one route there is.
    "--allow-loopback-in-peer-connection",
    # Host candidates as addresses rather than random mDNS .local names,
    # which the server cannot resolve (it would never reach us).
    "--disable-features=WebRtcHideLocalIpsWithMdns",
]

# Keeps a page's peer connections and camera/microphone streams within
# reach of the test (the client's modules keep them to themselves).
RECORD_MEDIA = """
(() => {
  const Native = window.RTCPeerConnection;
  window.__peers = [];
  window.RTCPeerConnection = class extends Native {
    constructor(...args) { super(...args); window.__peers.push(this); }
  };
  window.__captured = [];
  const media = navigator.mediaDevices;
  if (media) {
    const getUserMedia = media.getUserMedia.bind(media);
    media.getUserMedia = async (constraints) => {
      const stream = await getUserMedia(constraints);
      window.__captured.push(stream);
      return stream;
    };
  }
})();
"""

# Whether a <video> shows moving pictures: decoded frames and a clock that
# advances while we watch.
VIDEO_PLAYS = """
async (video) => {
  const before = video.currentTime;
  await new Promise((resolve) => setTimeout(resolve, 600));
  return {
    width: video.videoWidth, height: video.videoHeight, paused: video.paused,
    advanced: video.currentTime - before,
    tracks: video.srcObject ? video.srcObject.getTracks().map((t) => t.kind).sort() : [],
  };
}
"""

# The ICE route the page's newest peer connection took, every candidate it
# offered and was offered, and what its inbound streams received so far.
CONNECTION = """
async () => {
  const pc = window.__peers[window.__peers.length - 1];
  const stats = await pc.getStats();
  let route = null;
  const received = {audio: 0, video: 0};
  for (const report of stats.values()) {
    if (report.type === "transport" && report.selectedCandidatePairId) {
      const pair = stats.get(report.selectedCandidatePairId);
      const local = stats.get(pair.localCandidateId);
      const remote = stats.get(pair.remoteCandidateId);
      route = {local: local.address, remote: remote.address, protocol: local.protocol};
    }
    if (report.type === "inbound-rtp") received[report.kind] += report.packetsReceived;
  }
  const candidates = (sdp) => sdp.split("\\r\\n")
    .filter((line) => line.startsWith("a=candidate:")).map((line) => line.split(" ")[4]);
  return {
    state: pc.connectionState, route, received,
    offered: candidates(pc.localDescription.sdp),
    answered: candidates(pc.remoteDescription.sdp),
  };
}
"""


@pytest.fixture
async def small_server(tmp_path: Path) -> AsyncIterator[ServerProcess]:
    """Calls of two people at most."""
    running = await start_server(
        tmp_path / "data",
        GORTC_AUTH_BCRYPT_ROUNDS="4",
        GORTC_LIMITS_ENABLED="false",
        GORTC_RTC_HOST_ADDRESSES="127.0.0.1",
        GORTC_RTC_MAX_PARTICIPANTS="2",
    )
    yield running
    await running.stop()


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    async with chromium(*CALL_ARGS) as launched:
        yield launched


async def open_caller(browser: Any, url: str, username: str) -> Person:
    person = await sign_up(browser, url, username)
    await person.context.add_init_script(RECORD_MEDIA)
    await person.page.reload()  # the recorder is in place from the first script on
    await expect(person.page.locator("#chat-view")).to_be_visible()
    return person


def tile(person: Person, display_name: str) -> Any:
    return person.page.locator("#call-grid .call-tile.remote", has_text=display_name)


async def wait_for_video(person: Person, display_name: str, timeout: float = 10) -> float:
    """Seconds until the tile's <video> plays the other's camera."""
    video = tile(person, display_name).locator("video")
    started = time.monotonic()
    deadline = started + timeout
    shown: dict[str, Any] = {}
    while True:
        if await video.count() == 1:
            shown = await video.evaluate(VIDEO_PLAYS)
            if shown["width"] > 0 and shown["advanced"] > 0.2 and not shown["paused"]:
                assert shown["tracks"] == ["audio", "video"], shown
                return time.monotonic() - started
        if time.monotonic() > deadline:
            # What the page told its user says why, as a rule.
            notice = await person.page.locator("#notice").text_content()
            state = await person.page.locator("#call-state").text_content()
            raise AssertionError(
                f"no video of {display_name}: {shown}; notice {notice!r}; call state {state!r}"
            )
        await person.page.wait_for_timeout(100)


async def connection(person: Person) -> dict[str, Any]:
    return await person.page.evaluate(CONNECTION)


async def live_tracks(person: Person) -> int:
    """Camera and microphone tracks the page still holds open."""
    return await person.page.evaluate(
        "window.__captured.flatMap((s) => s.getTracks())"
        ".filter((t) => t.readyState === 'live').length"
    )


async def test_two_people_see_and_hear_each_other_mute_and_leave(
    server: ServerProcess, browser: Any
) -> None:
    bob = await open_caller(browser, server.url, "bob")
    alice = await open_caller(browser, server.url, "alice")
    await create_group(alice, "Standup")
    await add_member(alice, "bob")
    await bob.conversation("Standup").click()
    await expect(bob.page.locator("#conversation-title")).to_have_text("Standup")
    await expect(bob.page.get_by_role("button", name="Join call")).to_be_visible()
    await expect(bob.page.locator("#call-status")).to_be_hidden()

    # Alice starts the call: bob, not in it, sees it in the header and the list.
    await alice.page.get_by_role("button", name="Join call").click()
    await expect(alice.page.locator("#call-panel")).to_be_visible()
    await expect(alice.page.locator("#call-title")).to_have_text("Call in #Standup")
    await expect(alice.page.locator("#call-grid .call-tile.local")).to_have_count(1)
    await expect(bob.page.locator("#call-status")).to_have_text("Call in progress · 1")
    await expect(bob.conversation("Standup").locator(".call-pill")).to_have_text("1")

    # Bob joins: each sees the other, within a second or two.
    joined = time.monotonic()
    await bob.page.get_by_role("button", name="Join call").click()
    await expect(tile(alice, "bob")).to_have_count(1)
    await expect(tile(bob, "alice")).to_have_count(1)
    bob_sees_alice = await wait_for_video(bob, "alice")
    alice_sees_bob = await wait_for_video(alice, "bob")
    print(f"bob saw alice {time.monotonic() - joined:.2f} s after clicking Join call")
    assert bob_sees_alice < 5 and alice_sees_bob < 5
    await expect(alice.page.locator("#call-status")).to_have_text("In the call · 2")
    await expect(bob.page.get_by_role("button", name="Join call")).to_be_hidden()

    # The media reached the server at 127.0.0.1, its only candidate, and the
    # audio arrives too. Chromium's end of the route may be another address
    # of this machine (it gathers on every interface and ranks loopback
    # below Ethernet; no flag limits it to loopback): packets between two
    # local addresses go through the loopback device all the same.
    for person in (alice, bob):
        link = await connection(person)
        assert link["state"] == "connected" and link["route"], link
        assert set(link["answered"]) == {"127.0.0.1"}, link
        assert link["route"]["remote"] == "127.0.0.1", link
        assert link["route"]["local"] in link["offered"], link
        assert link["received"]["audio"] > 0 and link["received"]["video"] > 0, link

    # Alice mutes her microphone, then turns her camera off: bob sees both.
    alice_on_bob = tile(bob, "alice")
    await expect(alice_on_bob.locator(".call-muted")).to_be_hidden()
    await alice.page.get_by_role("button", name="Mute", exact=True).click()
    await expect(alice.page.get_by_role("button", name="Unmute")).to_be_visible()
    await expect(alice_on_bob.locator(".call-muted")).to_be_visible()
    await expect(alice.page.locator("#call-grid .call-tile.local .call-muted")).to_be_visible()
    await alice.page.get_by_role("button", name="Stop camera").click()
    await expect(alice_on_bob.locator(".call-placeholder")).to_be_visible()
    await expect(alice_on_bob.locator(".call-placeholder")).to_have_text("A")
    await alice.page.get_by_role("button", name="Start camera").click()
    await alice.page.get_by_role("button", name="Unmute").click()
    await expect(alice_on_bob.locator(".call-placeholder")).to_be_hidden()
    await expect(alice_on_bob.locator(".call-muted")).to_be_hidden()

    # Bob leaves: his tile goes from alice's grid, his camera goes off.
    await bob.page.get_by_role("button", name="Leave call").click()
    await expect(bob.page.locator("#call-panel")).to_be_hidden()
    await expect(tile(alice, "bob")).to_have_count(0)
    await expect(alice.page.locator("#call-status")).to_have_text("In the call · 1")
    await expect(bob.page.locator("#call-status")).to_have_text("Call in progress · 1")
    await expect(bob.page.get_by_role("button", name="Join call")).to_be_visible()
    assert await live_tracks(bob) == 0
    assert await bob.page.evaluate("window.__peers.at(-1).connectionState") == "closed"

    # Alice leaves too: the call is over for everyone.
    await alice.page.get_by_role("button", name="Leave call").click()
    await expect(bob.page.locator("#call-status")).to_be_hidden()
    await expect(bob.conversation("Standup").locator(".call-pill")).to_have_count(0)
    assert alice.problems == []
    assert bob.problems == []


async def test_a_late_joiner_sees_video_at_once_and_a_dropped_one_leaves(
    server: ServerProcess, browser: Any
) -> None:
    people = {name: await open_caller(browser, server.url, name) for name in ("bob", "carol")}
    alice = await open_caller(browser, server.url, "alice")
    await create_group(alice, "Team")
    for name, person in people.items():
        await add_member(alice, name)
        await person.conversation("Team").click()
    bob, carol = people["bob"], people["carol"]

    await alice.page.get_by_role("button", name="Join call").click()
    await bob.page.get_by_role("button", name="Join call").click()
    await wait_for_video(alice, "bob")
    await wait_for_video(bob, "alice")

    # Carol joins late: she sees both at once, and they see her.
    await expect(carol.page.locator("#call-status")).to_have_text("Call in progress · 2")
    await carol.page.get_by_role("button", name="Join call").click()
    for other in ("alice", "bob"):
        assert await wait_for_video(carol, other) < 5
    await wait_for_video(alice, "carol")
    await wait_for_video(bob, "carol")

    # Bob's browser goes away without a word: the others carry on without him.
    await bob.context.close()
    for person in (alice, carol):
        await expect(tile(person, "bob")).to_have_count(0, timeout=10_000)
        await expect(person.page.locator("#call-status")).to_have_text("In the call · 2")
    await wait_for_video(alice, "carol")
    await wait_for_video(carol, "alice")
    assert alice.problems == []
    assert carol.problems == []


async def test_a_call_without_camera_or_microphone_says_so_and_still_receives(
    server: ServerProcess, browser: Any
) -> None:
    alice = await open_caller(browser, server.url, "alice")
    bob = await open_caller(browser, server.url, "bob")
    await create_group(alice, "Watchers")
    await add_member(alice, "bob")
    await bob.conversation("Watchers").click()
    await alice.page.get_by_role("button", name="Join call").click()

    # Bob's browser refuses him both devices (as a blocked site would).
    await bob.page.evaluate(
        """() => {
          navigator.mediaDevices.getUserMedia = async () => {
            throw new DOMException("Permission denied", "NotAllowedError");
          };
        }"""
    )
    await bob.page.get_by_role("button", name="Join call").click()
    await expect(bob.page.locator("#notice")).to_contain_text("blocked the camera and microphone")
    await wait_for_video(bob, "alice")
    await expect(bob.page.get_by_role("button", name="Mute")).to_be_disabled()
    await expect(bob.page.get_by_role("button", name="Stop camera")).to_be_disabled()
    # Alice sees him in the call, without a camera and muted.
    bob_on_alice = tile(alice, "bob")
    await expect(bob_on_alice.locator(".call-placeholder")).to_be_visible()
    await expect(bob_on_alice.locator(".call-muted")).to_be_visible()
    await expect(alice.page.locator("#call-status")).to_have_text("In the call · 2")
    assert alice.problems == []
    assert bob.problems == []


async def test_a_dropped_connection_rejoins_the_call_by_itself(
    server: ServerProcess, browser: Any
) -> None:
    alice = await open_caller(browser, server.url, "alice")
    bob = await open_caller(browser, server.url, "bob")
    await create_group(alice, "Ops")
    await add_member(alice, "bob")
    await bob.conversation("Ops").click()

    # Bob's socket runs through a switch the test holds.
    sockets: list[Any] = []
    cut = asyncio.Event()

    def through_switch(route: Any) -> None:
        sockets.append(route)
        if not cut.is_set():  # else a socket that opens and never says "ready"
            route.connect_to_server()

    await bob.page.route_web_socket(re.compile(r"/api/v1/ws$"), through_switch)
    await bob.page.reload()
    await bob.conversation("Ops").click()
    await alice.page.get_by_role("button", name="Join call").click()
    await bob.page.get_by_role("button", name="Join call").click()
    await wait_for_video(alice, "bob")

    # The link drops: the server ends bob's part (alice sees him go) and
    # bob's client says it will rejoin, keeping his camera on meanwhile.
    cut.set()
    await sockets[-1].close(code=1001, reason="server shutting down")
    await expect(tile(alice, "bob")).to_have_count(0)
    await expect(bob.page.locator("#call-state")).to_contain_text("Rejoining when it is back")
    await expect(bob.page.locator("#call-grid .call-tile.local .call-placeholder")).to_be_hidden()

    # It is back: bob is in the call again, without a click.
    cut.clear()
    await sockets[-1].close(code=1001, reason="server shutting down")
    await expect(bob.page.locator("#connection-banner")).to_be_hidden()
    await expect(tile(alice, "bob")).to_have_count(1)
    await wait_for_video(alice, "bob")
    await wait_for_video(bob, "alice")
    assert alice.problems == []
    assert bob.problems == []


async def test_a_full_call_says_so_and_lets_the_camera_go(
    small_server: ServerProcess, browser: Any
) -> None:
    people = {name: await open_caller(browser, small_server.url, name) for name in ("bob", "carol")}
    alice = await open_caller(browser, small_server.url, "alice")
    await create_group(alice, "Pair")
    for name, person in people.items():
        await add_member(alice, name)
        await person.conversation("Pair").click()
    bob, carol = people["bob"], people["carol"]
    await alice.page.get_by_role("button", name="Join call").click()
    await bob.page.get_by_role("button", name="Join call").click()
    await wait_for_video(alice, "bob")

    await expect(carol.page.locator("#call-status")).to_have_text("Call in progress · 2")
    await carol.page.get_by_role("button", name="Join call").click()
    await expect(carol.page.locator("#notice")).to_have_text(
        "This call is full: nobody else can join it right now."
    )
    await expect(carol.page.locator("#call-panel")).to_be_hidden()
    await expect(carol.page.get_by_role("button", name="Join call")).to_be_visible()
    assert await live_tracks(carol) == 0  # the camera light is off
    await expect(tile(alice, "carol")).to_have_count(0)
    assert carol.problems == []
