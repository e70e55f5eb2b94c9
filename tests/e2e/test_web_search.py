"""The web client's search box in real Chromium against a real server: one
box over messages, files and people (Ctrl+K and "/" focus it), the server's
highlighted words shown as <mark> and nothing of the text read as markup, a
message result opening its conversation, a file result its preview, a
person found despite a typo, another person's files never found, the
server's message for a query too long, and the panel at phone size."""

from __future__ import annotations

import asyncio
import re
from typing import Any

from tests.e2e.server_process import ServerProcess
from tests.e2e.web import (
    Person,
    check_screen,
    create_group,
    expect,
    sign_up,
)

SECRET = "Budget notes: the xylophone fund is 300 euros.\n"


def results(person: Person, kind: str) -> Any:
    return person.page.get_by_role("group", name=kind).get_by_role("option")


async def search(person: Person, text: str) -> None:
    box = person.page.get_by_role("combobox", name="Search")
    await box.fill(text)
    await expect(person.page.locator("#search-panel")).to_be_visible()
    await expect(person.page.locator("#search-status")).not_to_have_text("Searching…")


async def upload_text(person: Person, name: str, text: str) -> None:
    page = person.page
    await page.get_by_role("link", name="Files").click()
    await page.locator("#files-input").set_input_files(
        [{"name": name, "mimeType": "text/plain", "buffer": text.encode()}]
    )
    await expect(page.locator("#file-list .file-name", has_text=name)).to_be_visible()


def unexpected(person: Person) -> list[str]:
    # The refused query is answered 400, which Chromium logs.
    return [p for p in person.problems if "status of 400" not in p]


async def test_search_messages_files_and_people(server: ServerProcess, browser: Any) -> None:
    alice = await sign_up(browser, server.url, "alice")
    bob = await sign_up(browser, server.url, "bobby")
    page = alice.page
    await upload_text(alice, "budget.txt", SECRET)
    await page.get_by_role("link", name="Chat").click()
    await create_group(alice, "Orchestra")
    await alice.send("Who tunes the xylophone before <b>Friday</b>?")
    await alice.send("Something else entirely")
    await create_group(alice, "Elsewhere")

    # Ctrl+K from anywhere; results grouped by kind, the words marked.
    await page.keyboard.press("Control+k")
    box = page.get_by_role("combobox", name="Search")
    await expect(box).to_be_focused()
    await search(alice, "xylophone")
    messages = results(alice, "Messages")
    await expect(messages).to_have_count(1)
    await expect(messages.locator("mark")).to_have_text("xylophone")
    # The body is text: its <b> shows as typed, no element is made of it.
    await expect(messages.locator(".search-snippet")).to_contain_text("<b>Friday</b>")
    await expect(messages.locator("b")).to_have_count(0)
    await expect(messages).to_contain_text("in #Orchestra")
    files = results(alice, "Files")
    await expect(files).to_have_count(1)
    await expect(files.locator(".search-snippet mark")).to_have_text("xylophone")
    await expect(files).to_contain_text("budget.txt")
    await check_screen(alice, "search")

    # Arrows and Enter open the message in its conversation.
    await box.press("ArrowDown")
    await expect(messages).to_have_attribute("aria-selected", "true")
    await expect(box).to_have_attribute(
        "aria-activedescendant", re.compile("search-option-message")
    )
    await box.press("Enter")
    await expect(page.locator("#search-panel")).to_be_hidden()
    await expect(page.locator("#conversation-title")).to_have_text("Orchestra")
    await expect(alice.message("Who tunes the xylophone before <b>Friday</b>?")).to_be_visible()

    # "/" focuses the box when not typing; Esc closes the panel.
    await page.locator("#conversation-title").click()
    await page.keyboard.press("/")
    await expect(box).to_be_focused()
    await expect(box).to_have_value("")
    await search(alice, "fund")
    await expect(results(alice, "Files")).to_have_count(1)
    await box.press("Escape")
    await expect(page.locator("#search-panel")).to_be_hidden()
    # Cmd+K too (a Mac's Ctrl+K), from the composer.
    await alice.composer.click()
    await page.keyboard.press("Meta+k")
    await expect(box).to_be_focused()

    # A file result opens the Files view with its preview.
    await box.fill("xylophone")
    await expect(results(alice, "Files")).to_have_count(1)
    await results(alice, "Files").click()
    dialog = page.get_by_role("dialog", name="budget.txt")
    await expect(dialog).to_be_visible()
    await expect(dialog.locator("pre")).to_have_text(SECRET)
    await expect(page.locator("#files-tab")).to_have_attribute("aria-current", "")
    await page.keyboard.press("Escape")
    await expect(dialog).to_be_hidden()

    # Beyond the first page (8 messages), "More messages" loads the rest in place.
    await page.evaluate(
        """async () => {
            const groups = await (await fetch("/api/v1/groups")).json();
            const group = groups.items.find((g) => g.name === "Elsewhere");
            for (let i = 1; i <= 10; i += 1) {
                const answer = await fetch(`/api/v1/groups/${group.id}/messages`, {
                    method: "POST", headers: { "Content-Type": "application/json" },
                    body: JSON.stringify({ body: `marimba practice ${i}` }),
                });
                if (answer.status !== 201) throw new Error(await answer.text());
            }
        }"""
    )
    await search(alice, "marimba")
    messages = results(alice, "Messages")
    more = alice.page.get_by_role("option", name="More messages")
    await expect(messages).to_have_count(9)  # 8 and "More messages"
    await expect(messages.first.locator(".search-snippet")).to_have_text("marimba practice 10")
    for _ in range(9):
        await box.press("ArrowDown")
    await expect(more).to_have_attribute("aria-selected", "true")
    await box.press("Enter")
    await expect(messages).to_have_count(10)
    await expect(more).to_have_count(0)
    await expect(messages.last.locator(".search-snippet")).to_have_text("marimba practice 1")
    await expect(messages.nth(8)).to_have_attribute("aria-selected", "true")
    await box.press("Escape")

    # People: a typo still finds alice; her result opens her card.
    await search(bob, "alcie")
    people = results(bob, "People")
    await expect(people.first).to_contain_text("@alice")
    # Bob is in none of alice's groups and has none of her files.
    await search(bob, "xylophone")
    await expect(bob.page.locator("#search-status")).to_have_text("Nothing found for “xylophone”.")
    await expect(bob.page.get_by_role("option")).to_have_count(0)
    await search(bob, "alice")
    await results(bob, "People").first.click()
    await expect(bob.page.get_by_role("dialog").get_by_text("@alice")).to_be_visible()
    await bob.page.keyboard.press("Escape")

    # A message of a direct conversation says with whom, and opens it.
    await bob.page.evaluate(
        """async () => {
            const found = await (await fetch("/api/v1/users/search?q=alice")).json();
            const answer = await fetch(`/api/v1/direct/${found.items[0].id}/messages`, {
                method: "POST", headers: { "Content-Type": "application/json" },
                body: JSON.stringify({ body: "Your oboe sounds sharp" }),
            });
            if (answer.status !== 201) throw new Error(await answer.text());
        }"""
    )
    await search(bob, "oboe")
    direct = results(bob, "Messages")
    await expect(direct).to_contain_text("with alice")
    await direct.click()
    await expect(bob.page.locator("#conversation-title")).to_have_text("alice")
    await expect(bob.message("Your oboe sounds sharp")).to_be_visible()

    # A query the server refuses: its reason, and no results.
    await search(alice, "x" * 501)
    await expect(page.locator("#search-status")).to_have_text(re.compile("at most 500 characters"))
    assert unexpected(alice) == []
    assert unexpected(bob) == []


async def test_search_on_a_phone(server: ServerProcess, browser: Any) -> None:
    alice = await sign_up(browser, server.url, "alice", size="phone")
    page = alice.page
    await upload_text(alice, "budget.txt", SECRET)
    await search(alice, "xylophone")
    files = results(alice, "Files")
    await expect(files).to_have_count(1)
    await expect(files.locator("mark")).to_have_text(["xylophone"])
    # The panel spans the screen's width.
    box = await page.locator("#search-panel").bounding_box()
    assert box is not None and box["x"] <= 1 and box["width"] >= 388
    await check_screen(alice, "search")
    await files.click()
    await expect(page.get_by_role("dialog", name="budget.txt").locator("pre")).to_have_text(SECRET)
    await page.keyboard.press("Escape")

    # A long text file's preview shows its first 64 KB and says so.
    long_text = ("celesta " * 10_000).encode()  # 80,000 bytes
    await page.get_by_role("link", name="Files").click()
    await page.locator("#files-input").set_input_files(
        [{"name": "long.txt", "mimeType": "text/plain", "buffer": long_text}]
    )
    await expect(page.locator("#file-list .file-name", has_text="long.txt")).to_be_visible()
    await search(alice, "celesta")
    await results(alice, "Files").click()
    dialog = page.get_by_role("dialog", name="long.txt")
    await expect(dialog.locator(".preview-note")).to_have_text(
        "Showing the first 64 KB of 80 KB. Download it for the rest."
    )
    assert len(await dialog.locator("pre").text_content() or "") == 64_000
    await page.keyboard.press("Escape")

    # An answer overtaken by a newer query is dropped, however late it comes.
    async def slow(route: Any) -> None:
        answer = await route.fetch()
        await asyncio.sleep(1.5)
        await route.fulfill(response=answer)

    late = re.compile(r"/api/v1/files/search\?q=budget")
    await page.route(late, slow)
    box = page.get_by_role("combobox", name="Search")
    async with page.expect_response(late) as overtaken:
        await box.fill("budget")
        await expect(page.locator("#search-status")).to_have_text("Searching…")
        await box.fill("fund")
        await expect(files.locator("mark")).to_have_text(["fund"])
    await overtaken.value
    await page.evaluate("() => new Promise((r) => requestAnimationFrame(() => setTimeout(r, 200)))")
    await expect(files.locator("mark")).to_have_text(["fund"])

    # Markers split text into text and <mark>, whatever else the text holds;
    # one left open runs to the end, a stray closing one is dropped.
    html = await page.evaluate(
        """async () => {
            const { highlighted } = await import("/static/search.js");
            const box = document.createElement("div");
            box.append(...highlighted(
                "a \ue000<img src=x onerror=alert(1)>\ue001 b\ue001 \ue000c & d"));
            return box.innerHTML;
        }"""
    )
    assert html == "a <mark>&lt;img src=x onerror=alert(1)&gt;</mark> b <mark>c &amp; d</mark>"
    assert unexpected(alice) == []
