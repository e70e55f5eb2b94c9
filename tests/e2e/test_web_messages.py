"""Messages and the composer in Chromium, two people in one group: files
attached and opened, reactions and replies seen live, markdown that stays
safe, the length limit that sends nothing, mentions with their badge, Up to
edit, and one name over consecutive messages. Desktop and phone."""

from __future__ import annotations

import base64
import json
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.server_process import ServerProcess, start_server
from tests.e2e.web import (
    Person,
    check_screen,
    expect,
    sign_up,
)

# A 1×1 red PNG.
PIXEL = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg=="
)
NOTES = b"Quarterly notes\nthe budget is approved\n"


async def call_api(person: Person, method: str, path: str, body: Any = None) -> Any:
    """The JSON API as the person's page calls it (their cookie)."""
    return await person.page.evaluate(
        """async ([method, path, body]) => {
            const options = { method, headers: {} };
            if (body !== null) {
                options.headers['Content-Type'] = 'application/json';
                options.body = JSON.stringify(body);
            }
            const response = await fetch(path, options);
            const text = await response.text();
            return { status: response.status, body: text ? JSON.parse(text) : null };
        }""",
        [method, path, body],
    )


async def two_in_a_group(
    launched: Any, running: ServerProcess, size: str = "desktop", name: str = "team"
) -> tuple[Person, Person, str]:
    """alice's group with bob in it, open on both pages."""
    alice = await sign_up(launched, running.url, "alice", size)
    bob = await sign_up(launched, running.url, "bob", size)
    made = await call_api(alice, "POST", "/api/v1/groups", {"name": name})
    assert made["status"] == 201, made
    group_id = made["body"]["id"]
    added = await call_api(alice, "POST", f"/api/v1/groups/{group_id}/members", {"username": "bob"})
    assert added["status"] == 201, added
    for person in (alice, bob):
        await person.page.reload()
        await expect(person.page.locator("#conversation-title")).to_have_text(name)
        await expect(person.composer).to_be_visible()
    return alice, bob, group_id


def row(person: Person, body_text: str) -> Any:
    """The settled message whose body contains that text."""
    return person.page.locator("#message-list li.message:not(.pending)").filter(
        has=person.page.locator(".message-body", has_text=body_text)
    )


async def drop_files(person: Person, selector: str, files: list[tuple[str, str, bytes]]) -> None:
    """Drops files on an element as a person dragging them from their desktop would."""
    payload = [[name, kind, base64.b64encode(data).decode()] for name, kind, data in files]
    await person.page.evaluate(
        """([selector, files]) => {
            const target = document.querySelector(selector);
            const transfer = new DataTransfer();
            for (const [name, type, data] of files) {
                const bytes = Uint8Array.from(atob(data), (c) => c.charCodeAt(0));
                transfer.items.add(new File([bytes], name, { type }));
            }
            for (const type of ['dragenter', 'dragover', 'drop']) {
                target.dispatchEvent(new DragEvent(type, {
                    bubbles: true, cancelable: true, dataTransfer: transfer,
                }));
            }
        }""",
        [selector, payload],
    )


async def messages_on_server(person: Person, group_id: str) -> list[dict[str, Any]]:
    answer = await call_api(person, "GET", f"/api/v1/groups/{group_id}/messages?limit=200", None)
    assert answer["status"] == 200, answer
    items: list[dict[str, Any]] = answer["body"]["items"]
    return items


@pytest.mark.parametrize("size", ["desktop", "phone"])
async def test_attachments_reactions_replies_and_markdown(
    browser: Any,
    server: ServerProcess,
    size: str,
) -> None:
    alice, bob, group_id = await two_in_a_group(browser, server, size)
    page = alice.page

    # A file by the button, an image dropped on the composer: both chips
    # finish uploading, then go with the message.
    await page.get_by_role("button", name="Attach", exact=True).click()
    async with page.expect_file_chooser() as choosing:
        await page.get_by_role("button", name="Upload from this device").click()
    chooser = await choosing.value
    assert chooser.is_multiple()
    await chooser.set_files([{"name": "notes.txt", "mimeType": "text/plain", "buffer": NOTES}])
    await expect(page.get_by_role("button", name="Upload from this device")).to_be_hidden()
    await drop_files(alice, "#composer", [("pixel.png", "image/png", PIXEL)])
    chips = page.locator("#composer-files li.file-chip")
    await expect(chips).to_have_count(2)
    await expect(page.locator("#composer-files li.file-chip.ready")).to_have_count(2)
    await alice.composer.fill("the **notes** and https://example.org")
    await check_screen(alice, "chat-attaching")
    await alice.composer.press("Enter")
    await expect(chips).to_have_count(0)

    sent = row(bob, "the notes and https://example.org")
    await expect(sent).to_have_count(1)
    files = sent.locator(".attachments li.attachment")
    await expect(files).to_have_count(2)
    notes = files.filter(has_text="notes.txt")
    await expect(notes).to_contain_text(f"{len(NOTES)} bytes")
    href = await notes.get_by_role("link", name="notes.txt").get_attribute("href")
    assert href is not None
    opened = await bob.page.request.get(server.url.rstrip("/") + href)
    assert opened.status == 200
    assert await opened.body() == NOTES
    await notes.get_by_role("button", name="Show preview").click()
    await expect(notes.locator(".file-preview")).to_contain_text("the budget is approved")
    image = files.filter(has_text="pixel.png").get_by_role("img", name="pixel.png")
    await expect(image).to_be_visible()
    assert await image.evaluate("(img) => img.complete && img.naturalWidth === 1")

    # Markdown: bold, and a link that opens elsewhere without telling where from.
    await expect(sent.locator(".message-body strong")).to_have_text("notes")
    link = sent.locator('.message-body a[href="https://example.org"]')
    await expect(link).to_have_attribute("rel", "noopener noreferrer")
    await expect(link).to_have_attribute("target", "_blank")

    # alice reacts 👍: bob sees it at once, and adds his own.
    mine = row(alice, "the notes and https://example.org")
    await mine.get_by_role("button", name="React", exact=True).click()
    await page.get_by_role("button", name="React with thumbs up").click()
    await expect(mine.get_by_role("button", name="👍 1")).to_have_attribute("aria-pressed", "true")
    thumbs = sent.get_by_role("button", name="👍 1")
    await expect(thumbs).to_have_attribute("aria-pressed", "false")
    await thumbs.click()
    await expect(sent.get_by_role("button", name="👍 2")).to_have_attribute("aria-pressed", "true")
    # Brought up to date in place: the focus stays on the button pressed.
    await expect(sent.get_by_role("button", name="👍 2")).to_be_focused()
    await expect(mine.get_by_role("button", name="👍 2")).to_have_attribute(
        "title", re.compile("alice, bob")
    )
    # The picker closes with Esc, and gives the focus back.
    await sent.get_by_role("button", name="React", exact=True).click()
    await expect(bob.page.locator(".reaction-picker")).to_be_visible()
    await check_screen(bob, "chat-react")
    await bob.page.keyboard.press("Escape")
    await expect(bob.page.locator(".reaction-picker")).to_have_count(0)
    await expect(sent.get_by_role("button", name="React", exact=True)).to_be_focused()

    # bob replies: alice sees the quote live; it leads back to her message.
    await sent.get_by_role("button", name="Reply").click()
    await expect(bob.page.locator("#reply-bar")).to_contain_text("Replying to alice")
    await bob.composer.fill("looks good")
    await check_screen(bob, "chat-replying")
    await bob.composer.press("Enter")
    await expect(bob.page.locator("#reply-bar")).to_be_hidden()
    reply = row(alice, "looks good")
    quote = reply.locator(".reply-quote")
    await expect(quote).to_contain_text("alice")
    await expect(quote).to_contain_text("the notes and https://example.org")
    await quote.click()
    await expect(mine).to_have_class(re.compile(r"\bhighlight\b"))
    stored = await messages_on_server(alice, group_id)
    assert [m["reply_to"]["id"] if m["reply_to"] else None for m in stored] == [
        stored[1]["id"],
        None,
    ]

    # Raw HTML stays text: no element made, nothing run.
    dialogs: list[str] = []
    bob.page.on("dialog", lambda dialog: dialogs.append(dialog.message))
    await alice.send("<img src=x onerror=alert(1)>")
    await expect(bob.message("<img src=x onerror=alert(1)>")).to_be_visible()
    assert await bob.page.locator("#message-list .message-body img").count() == 0
    assert dialogs == []

    # Lists, a quote and a code block too wide for a phone: it scrolls
    # inside itself, the page does not (check_screen).
    code = "const aLineLongerThanAnyPhoneIsWide = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12];"
    await alice.composer.fill(f"- one\n- two\n\n> quoted **well**\n\n```\n{code}\n```")
    await alice.composer.press("Enter")
    rich = row(bob, "quoted")
    await expect(rich.locator(".message-body ul li")).to_have_count(2)
    await expect(rich.locator(".message-body blockquote strong")).to_have_text("well")
    await expect(rich.locator(".message-body pre code")).to_have_text(code)

    await check_screen(alice, "chat")
    await check_screen(bob, "chat-reply")
    await alice.page.emulate_media(color_scheme="dark")
    await check_screen(alice, "chat-dark")
    assert alice.problems == []
    assert bob.problems == []


async def test_too_long_message_sends_nothing(browser: Any, server: ServerProcess) -> None:
    alice, bob, group_id = await two_in_a_group(browser, server)
    page = alice.page
    long = "x" * 5000
    await alice.composer.fill(long)
    problem = page.locator("#composer-problem")
    await expect(problem).to_have_text(
        "This message is 1,000 characters over the 4,000-character limit."
    )
    await expect(page.locator("#composer-counter")).to_have_text("5,000 / 4,000")
    await alice.composer.press("Enter")
    await page.locator("#composer").get_by_role("button", name="Send").click()
    # Nothing sent, nothing cut: the text is still all there to be shortened.
    await expect(page.locator("#message-list li.message")).to_have_count(0)
    assert await alice.composer.input_value() == long
    assert await messages_on_server(alice, group_id) == []
    await expect(bob.page.locator("#message-list li.message")).to_have_count(0)
    # Shortened to the limit, it goes.
    await alice.composer.fill("y" * 4000)
    await expect(problem).to_be_hidden()
    await alice.composer.press("Enter")
    await expect(bob.page.locator("#message-list li.message")).to_have_count(1)

    # The edit box has the same limit and says so the same way.
    await alice.send("short")
    await alice.composer.press("ArrowUp")
    editor = page.get_by_role("textbox", name="Edit message")
    await expect(editor).to_have_value("short")
    await editor.fill("z" * 4002)
    await expect(page.locator(".edit-form .length-problem")).to_have_text(
        "This message is 2 characters over the 4,000-character limit."
    )
    await editor.press("Enter")
    await expect(editor).to_be_visible()
    newest = (await messages_on_server(alice, group_id))[0]
    assert newest["body"] == "short"
    await editor.press("Escape")
    await expect(alice.message("short")).to_be_visible()
    assert alice.problems == []
    assert bob.problems == []


async def test_mentions_grouping_and_up_to_edit(browser: Any, server: ServerProcess) -> None:
    alice, bob, group_id = await two_in_a_group(browser, server)
    # bob looks at another conversation while alice mentions him.
    made = await call_api(bob, "POST", "/api/v1/groups", {"name": "elsewhere"})
    assert made["status"] == 201
    await bob.page.reload()
    await expect(bob.page.locator("#conversation-title")).to_have_text("team")
    # What he had begun to write waits for him there.
    await bob.composer.fill("half a thought")
    await bob.conversation("elsewhere").click()
    await expect(bob.page.locator("#conversation-title")).to_have_text("elsewhere")
    await expect(bob.composer).to_have_value("")

    await alice.send("morning")
    # After an @, the conversation's members are offered; Enter takes one.
    await alice.composer.fill("")
    await alice.composer.press_sequentially("@b")
    offered = alice.page.get_by_role("listbox", name="People to mention")
    await expect(offered.get_by_role("option")).to_have_text(["bob @bob"])
    await check_screen(alice, "chat-mention")
    await alice.composer.press("Enter")
    await expect(offered).to_be_hidden()
    await expect(alice.composer).to_have_value("@bob ")
    await alice.composer.press_sequentially("can you check `@alice` in code?")
    await alice.composer.press("Enter")
    team = bob.conversation("team")
    await expect(team.locator(".mention-badge")).to_have_text("@1")
    await team.click()
    await expect(bob.composer).to_have_value("half a thought")
    # What came while he was away is under a "New messages" divider.
    divider = bob.page.locator("#message-list li.separator.new-messages")
    await expect(divider).to_have_text("New messages")
    assert await divider.evaluate("(d) => d.nextElementSibling.textContent.includes('morning')")
    await expect(bob.page.locator("#message-list")).to_have_attribute("aria-live", "polite")
    mentioned = row(bob, "can you check")
    await expect(mentioned.locator(".mention.me")).to_have_text("@bob")
    # In code, an @ is just an @.
    await expect(mentioned.locator("code")).to_have_text("@alice")
    await expect(mentioned.locator(".mention")).to_have_count(1)
    await expect(team.locator(".mention-badge")).to_have_count(0)
    theirs = row(alice, "can you check").locator(".mention")
    await expect(theirs).not_to_have_class(re.compile(r"\bme\b"))

    # Two messages of alice in a row: one name over both.
    names = bob.page.locator("#message-list li.message .sender")
    await expect(names.filter(visible=True)).to_have_count(1)
    await expect(bob.page.locator("#message-list li.separator.day")).to_have_text("Today")
    # The author's name opens their card, with a way to write to them.
    await row(bob, "morning").get_by_role("button", name="alice").click()
    card = bob.page.get_by_role("dialog")
    await expect(card).to_contain_text("@alice")
    await expect(card.get_by_role("button", name="Message")).to_be_visible()
    await bob.page.keyboard.press("Escape")
    await expect(card).to_have_count(0)

    # Up in the empty composer edits alice's last message; Esc would cancel.
    await alice.composer.press("ArrowUp")
    editor = alice.page.get_by_role("textbox", name="Edit message")
    await expect(editor).to_have_value("@bob can you check `@alice` in code?")
    await editor.fill("@bob can you check it now?")
    await editor.press("Enter")
    await expect(row(bob, "can you check it now?").locator(".edited")).to_be_visible()
    bodies = [m["body"] for m in await messages_on_server(bob, group_id)]
    assert bodies == ["@bob can you check it now?", "morning"]
    assert alice.problems == []
    assert bob.problems == []


async def test_attach_from_my_files_and_deleted_message_takes_it_away(
    browser: Any,
    server: ServerProcess,
) -> None:
    alice, bob, _ = await two_in_a_group(browser, server)
    page = alice.page
    stored = await page.evaluate(
        """async () => {
            const form = new FormData();
            form.append('file', new File(['plan: ship it'], 'plan.txt', { type: 'text/plain' }));
            const response = await fetch('/api/v1/files', { method: 'POST', body: form });
            return response.json();
        }"""
    )
    await page.get_by_role("button", name="Attach", exact=True).click()
    await page.get_by_role("button", name="Choose from my files").click()
    picker = page.get_by_role("dialog", name="Choose from my files")
    await expect(picker).to_be_visible()
    await picker.get_by_role("button", name=re.compile("plan.txt")).click()
    await expect(picker).to_be_hidden()
    await expect(page.locator("#composer-files")).to_contain_text("plan.txt")
    await alice.composer.fill("the plan")
    await alice.composer.press("Enter")
    seen = bob.message("the plan")
    await expect(seen.get_by_role("link", name="plan.txt")).to_have_attribute(
        "href", f"/api/v1/files/{stored['id']}/content"
    )
    # Deleted, the message takes its attachment with it.
    await alice.message("the plan").get_by_role("button", name="Delete").click()
    await alice.message("the plan").get_by_role("button", name="Yes, delete").click()
    await expect(bob.page.get_by_role("link", name="plan.txt")).to_have_count(0)
    content = f"{server.url.rstrip('/')}/api/v1/files/{stored['id']}/content"
    answer = await bob.page.request.get(content)
    assert answer.status == 404
    assert json.loads(await answer.text())["error"]["code"] == "file_not_found"
    assert alice.problems == []
    assert bob.problems == []


async def test_a_quote_leads_to_a_message_further_back(
    browser: Any,
    server: ServerProcess,
) -> None:
    alice, bob, group_id = await two_in_a_group(browser, server)
    # 70 messages: the first is not on the first page bob reads.
    await alice.page.evaluate(
        """async (groupId) => {
            for (let i = 1; i <= 70; i += 1) {
                await fetch(`/api/v1/groups/${groupId}/messages`, {
                    method: 'POST', headers: { 'Content-Type': 'application/json' },
                    body: JSON.stringify({ body: `number ${i}` }),
                });
            }
        }""",
        group_id,
    )
    first = (await messages_on_server(alice, group_id))[-1]
    assert first["body"] == "number 1"
    answered = await call_api(
        alice,
        "POST",
        f"/api/v1/groups/{group_id}/messages",
        {"body": "about the first one", "reply_to": first["id"]},
    )
    assert answered["status"] == 201, answered
    await bob.page.reload()
    await expect(bob.message("about the first one")).to_be_visible()
    await expect(bob.message("number 1")).to_have_count(0)
    await bob.message("about the first one").locator(".reply-quote").click()
    found = bob.message("number 1")
    await expect(found).to_be_in_viewport()
    await expect(found).to_have_class(re.compile(r"\bhighlight\b"))
    # Every message between is there, in order: no gap was left.
    bodies = await bob.page.locator("#message-list li.message .message-body").all_text_contents()
    assert bodies == [f"number {i}" for i in range(1, 71)] + ["about the first one"]
    assert bob.problems == []


async def test_desktop_notifications_for_direct_messages_and_mentions(
    browser: Any,
    server: ServerProcess,
) -> None:
    alice, bob, _ = await two_in_a_group(browser, server)
    # The browser's notifications, recorded; the tab, hidden.
    await bob.page.evaluate(
        """() => {
            window.shown = [];
            class FakeNotification {
                static permission = 'default';
                static async requestPermission() {
                    FakeNotification.permission = 'granted';
                    return 'granted';
                }
                constructor(title, options) {
                    this.title = title;
                    this.body = options.body;
                    window.shown.push(this);
                }
                close() {}
            }
            window.Notification = FakeNotification;
            Object.defineProperty(document, 'visibilityState', {
                get: () => 'hidden', configurable: true,
            });
        }"""
    )
    toggle = bob.page.get_by_role("button", name="Turn on desktop notifications")
    await toggle.click()
    turn_off = bob.page.get_by_role("button", name="Turn off desktop notifications")
    await expect(turn_off).to_be_visible()

    await alice.send("just chatting")
    await alice.send("@bob are you there?")
    bob_id = (await call_api(bob, "GET", "/api/v1/users/me"))["body"]["id"]
    direct = await call_api(alice, "POST", f"/api/v1/direct/{bob_id}/messages", {"body": "psst"})
    assert direct["status"] == 201, direct
    await expect(bob.conversation("alice")).to_be_visible()
    shown = await bob.page.evaluate("() => window.shown.map((n) => [n.title, n.body])")
    assert shown == [["alice in #team", "@bob are you there?"], ["alice", "psst"]]
    # A click on one brings that conversation up.
    await bob.page.evaluate("() => window.shown[1].onclick()")
    await expect(bob.page.locator("#conversation-title")).to_have_text("alice")
    await expect(bob.message("psst")).to_be_visible()
    assert bob.problems == []


async def test_a_refused_message_comes_back_to_the_composer(
    browser: Any,
    server: ServerProcess,
) -> None:
    alice, bob, group_id = await two_in_a_group(browser, server)
    await bob.send("delete me soon")
    await alice.message("delete me soon").get_by_role("button", name="Reply").click()
    # The message answered goes while alice is typing her answer.
    doomed = bob.message("delete me soon")
    await doomed.get_by_role("button", name="Delete").click()
    await doomed.get_by_role("button", name="Yes, delete").click()
    await expect(alice.message("delete me soon")).to_have_count(0)
    await alice.composer.fill("my answer")
    await alice.composer.press("Enter")
    # Refused: back in the composer as typed, with the server's reason.
    problem = alice.page.locator("#composer-problem")
    await expect(problem).to_contain_text("reply_to must be a message")
    await expect(alice.composer).to_have_value("my answer")
    await expect(alice.page.locator("#reply-bar")).to_be_visible()
    await expect(alice.page.locator("#message-list li.pending")).to_have_count(0)
    assert await messages_on_server(alice, group_id) == []
    # Without the reply it goes.
    await alice.page.get_by_role("button", name="Cancel the reply").click()
    await alice.composer.press("Enter")
    await expect(bob.message("my answer")).to_be_visible()
    await expect(alice.page.locator("#composer-problem")).to_be_hidden()
    assert alice.problems == []
    assert bob.problems == []


@pytest.fixture
async def small_server(tmp_path: Path) -> AsyncIterator[ServerProcess]:
    """A server that takes files of at most 1,000 bytes."""
    running = await start_server(
        tmp_path / "data",
        GORTC_AUTH_BCRYPT_ROUNDS="4",
        GORTC_LIMITS_ENABLED="false",
        GORTC_FILES_MAX_FILE_BYTES="1000",
    )
    yield running
    await running.stop()


async def test_a_file_too_large_says_so_and_holds_the_message(
    browser: Any,
    small_server: ServerProcess,
) -> None:
    alice, bob, group_id = await two_in_a_group(browser, small_server)
    page = alice.page
    await drop_files(
        alice,
        "#message-scroller",
        [("big.bin", "application/octet-stream", b"x" * 2000), ("small.txt", "text/plain", b"ok")],
    )
    big = page.locator("#composer-files li.file-chip", has_text="big.bin")
    await expect(big).to_have_class(re.compile(r"\bfailed\b"))
    await expect(big.get_by_role("alert")).to_contain_text("larger than 1000 bytes")
    await expect(page.locator("#composer-files li.file-chip.ready")).to_have_count(1)
    await alice.composer.fill("two files")
    await alice.composer.press("Enter")
    await expect(page.locator("#composer-problem")).to_contain_text("could not be uploaded")
    assert await messages_on_server(alice, group_id) == []
    await big.get_by_role("button", name="Remove big.bin").click()
    await alice.composer.press("Enter")
    sent = bob.message("two files")
    await expect(sent.locator(".attachment")).to_have_count(1)
    await expect(sent.get_by_role("link", name="small.txt")).to_be_visible()
    # The refused upload's 413 is the browser's only complaint.
    assert [p for p in alice.problems if "status of 413" not in p] == []
    assert bob.problems == []


async def test_what_may_be_done_to_a_message_follows_the_role(
    browser: Any,
    server: ServerProcess,
) -> None:
    alice, bob, group_id = await two_in_a_group(browser, server)
    await alice.send("owner's words")
    theirs = bob.message("owner's words")
    await expect(theirs.get_by_role("button", name="Reply")).to_be_visible()
    await expect(theirs.get_by_role("button", name="Delete")).to_have_count(0)
    bob_id = (await call_api(bob, "GET", "/api/v1/users/me"))["body"]["id"]
    path = f"/api/v1/groups/{group_id}/members/{bob_id}"
    promoted = await call_api(alice, "PATCH", path, {"role": "admin"})
    assert promoted["status"] == 200, promoted
    # An admin may delete others' messages: the button comes without a reload.
    await expect(theirs.get_by_role("button", name="Delete")).to_be_visible()
    demoted = await call_api(alice, "PATCH", path, {"role": "member"})
    assert demoted["status"] == 200, demoted
    await expect(theirs.get_by_role("button", name="Delete")).to_have_count(0)
    assert alice.problems == []
    assert bob.problems == []
