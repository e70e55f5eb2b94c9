"""The web client's Files view in real Chromium against a real server with a
small per-file limit (2,000 bytes): uploading by drag-and-drop and by the
button (several at once, one progress bar each), the server's "too large"
beside the file it refused, the quota bar moving, the not-searchable badge
on a binary file, renaming (saved, cancelled with Esc, refused with the
server's reason), the text preview that Esc closes, deleting after a
confirm, and the same view at phone size."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.server_process import ServerProcess, start_server
from tests.e2e.web import Person, check_screen, expect, sign_up

MAX_FILE_BYTES = 2000
QUOTA_BYTES = 5000
NOTES = "Minutes of the zebra meeting.\nThe quarterly budget is approved.\n"
# NUL bytes: binary whatever the name says.
PHOTO = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256))


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[ServerProcess]:
    running = await start_server(
        tmp_path / "data",
        GORTC_AUTH_BCRYPT_ROUNDS="4",
        GORTC_LIMITS_ENABLED="false",
        GORTC_FILES_MAX_FILE_BYTES=str(MAX_FILE_BYTES),
        GORTC_FILES_QUOTA_BYTES=str(QUOTA_BYTES),
    )
    yield running
    await running.stop()


def row(person: Person, name: str) -> Any:
    """The file's row in the list, by its exact name."""
    return person.page.locator("#file-list li.file-row").filter(
        has=person.page.locator(".file-name", has_text=re.compile(f"^{re.escape(name)}$"))
    )


def upload(person: Person, name: str) -> Any:
    return person.page.locator(".upload-list li.upload").filter(has_text=name)


async def open_files(person: Person) -> None:
    await person.page.get_by_role("link", name="Files").click()
    await expect(person.page.get_by_role("heading", name="Files", exact=True)).to_be_visible()


async def drop_file(person: Person, name: str, text: str) -> None:
    """Drags a file made in the page over the Files view and drops it,
    checking the drop zone lights up while the file is held over it."""
    page = person.page
    transfer = await page.evaluate_handle(
        """([name, text]) => {
            const transfer = new DataTransfer();
            transfer.items.add(new File([text], name, { type: "text/plain" }));
            return transfer;
        }""",
        [name, text],
    )
    view = page.locator("#files-view")
    await view.dispatch_event("dragenter", {"dataTransfer": transfer})
    await expect(page.locator(".drop-overlay")).to_be_visible()
    await view.dispatch_event("dragover", {"dataTransfer": transfer})
    await view.dispatch_event("drop", {"dataTransfer": transfer})
    await expect(page.locator(".drop-overlay")).to_be_hidden()


def unexpected(person: Person) -> list[str]:
    # The refused upload and the refused rename are answered 413 and 400:
    # Chromium logs every such answer, though the page handles them.
    return [p for p in person.problems if not re.search(r"status of (413|400)", p)]


async def test_upload_list_rename_preview_delete(server: ServerProcess, browser: Any) -> None:
    alice = await sign_up(browser, server.url, "alice")
    page = alice.page

    # The list is slow to come this time: a file dropped meanwhile must
    # stay listed when the (older) list arrives.
    async def slow(route: Any) -> None:
        answer = await route.fetch()  # asked now, answered late
        await asyncio.sleep(1.5)
        await route.fulfill(response=answer)

    listing = re.compile(r"/api/v1/files\?limit=")
    await page.route(listing, slow)
    async with page.expect_response(listing) as listed:
        await open_files(alice)
        quota = page.locator("#files-quota-text")
        await expect(quota).to_contain_text("0 bytes of")
        await expect(quota).to_contain_text("0 files")
        # Dropped on the page: one upload, its progress full, then listed.
        await drop_file(alice, "notes.txt", NOTES)
        await expect(upload(alice, "notes.txt").locator(".upload-status")).to_have_text("Uploaded")
        await expect(upload(alice, "notes.txt").locator("progress")).to_have_js_property("value", 1)
        await expect(row(alice, "notes.txt")).to_be_visible()
    await listed.value
    await page.unroute(listing)
    # The page has read that answer by the next frame or so.
    await page.evaluate("() => new Promise((r) => requestAnimationFrame(() => setTimeout(r, 200)))")
    await expect(row(alice, "notes.txt")).to_be_visible()
    await expect(page.get_by_text("No files yet")).to_be_hidden()
    await expect(quota).to_contain_text(f"{len(NOTES)} bytes of")
    await expect(quota).to_contain_text("1 file")
    assert await page.locator("#files-quota").evaluate("m => m.value") == len(NOTES)

    # Three at once by the button: two stored, one refused beside its name.
    await page.locator("#files-input").set_input_files(
        [
            {"name": "plan.md", "mimeType": "text/markdown", "buffer": b"# Plan\nbuy a drum\n"},
            {"name": "photo.png", "mimeType": "image/png", "buffer": PHOTO},
            {"name": "big.txt", "mimeType": "text/plain", "buffer": b"x" * (MAX_FILE_BYTES + 500)},
        ]
    )
    await expect(upload(alice, "plan.md").locator(".upload-status")).to_have_text("Uploaded")
    await expect(upload(alice, "photo.png").locator(".upload-status")).to_have_text("Uploaded")
    refused = upload(alice, "big.txt").locator(".upload-status")
    await expect(refused).to_contain_text(f"larger than {MAX_FILE_BYTES} bytes")
    await expect(refused).to_have_attribute("role", "alert")
    await expect(row(alice, "plan.md")).to_be_visible()
    await expect(row(alice, "big.txt")).to_have_count(0)
    await expect(quota).to_contain_text("3 files")
    # Newest first; the binary one says it cannot be searched, and why.
    await expect(page.locator("#file-list .file-name").first).not_to_have_text("notes.txt")
    photo = row(alice, "photo.png")
    await expect(photo.locator(".file-badge")).to_have_text("Not searchable")
    await expect(photo.locator(".file-reason")).not_to_be_empty()
    await expect(row(alice, "notes.txt").locator(".file-badge")).to_have_count(0)
    await expect(photo.get_by_role("link", name="Download photo.png")).to_have_attribute(
        "href", re.compile(r"^/api/v1/files/\w+/content$")
    )
    await check_screen(alice, "files")

    # Renaming: Esc cancels, Enter saves, a blank name gets the server's reason.
    # Held by its id: while renamed, the row shows a field instead of the name.
    notes_id = await row(alice, "notes.txt").get_attribute("data-id")
    notes = page.locator(f'#file-list li.file-row[data-id="{notes_id}"]')
    await notes.get_by_role("button", name="Rename notes.txt").click()
    field = page.get_by_label("New name for notes.txt")
    await expect(field).to_be_focused()
    await field.fill("gone.txt")
    await field.press("Escape")
    await expect(row(alice, "notes.txt")).to_be_visible()
    await expect(row(alice, "gone.txt")).to_have_count(0)
    await notes.get_by_role("button", name="Rename notes.txt").click()
    await field.fill("   ")
    await field.press("Enter")
    await expect(notes.locator(".row-problem")).to_be_visible()
    await expect(notes.locator(".row-problem")).not_to_be_empty()
    await expect(field).to_have_value("   ")  # what they typed stays
    await field.fill("zebra minutes.txt")
    await field.press("Enter")
    renamed = row(alice, "zebra minutes.txt")
    await expect(renamed).to_be_visible()
    await expect(renamed.locator(".row-problem")).to_be_hidden()

    # The preview shows the text; Esc closes it.
    await renamed.get_by_role("button", name="zebra minutes.txt", exact=True).click()
    dialog = page.get_by_role("dialog", name="zebra minutes.txt")
    await expect(dialog).to_be_visible()
    await expect(dialog.locator("pre")).to_have_text(NOTES)
    await check_screen(alice, "files-preview")
    await page.keyboard.press("Escape")
    await expect(dialog).to_be_hidden()

    # A .txt in Windows-1252 (not UTF-8) is previewed in its own charset.
    await page.locator("#files-input").set_input_files(
        [{"name": "menu.txt", "mimeType": "text/plain", "buffer": "Crème brûlée".encode("cp1252")}]
    )
    await row(alice, "menu.txt").get_by_role("button", name="menu.txt", exact=True).click()
    await expect(page.get_by_role("dialog", name="menu.txt").locator("pre")).to_have_text(
        "Crème brûlée"
    )
    await page.keyboard.press("Escape")
    await row(alice, "menu.txt").get_by_role("button", name="Delete menu.txt").click()
    await row(alice, "menu.txt").get_by_role("button", name="Delete", exact=True).click()
    await expect(row(alice, "menu.txt")).to_have_count(0)

    # Deleting asks first; cancelled, the file stays; confirmed, it goes.
    plan = row(alice, "plan.md")
    await plan.get_by_role("button", name="Delete plan.md").click()
    await plan.get_by_role("button", name="Cancel").click()
    await expect(plan).to_be_visible()
    await plan.get_by_role("button", name="Delete plan.md").click()
    confirm = plan.get_by_role("group", name="Delete plan.md")
    await confirm.get_by_role("button", name="Delete").click()
    await expect(row(alice, "plan.md")).to_have_count(0)
    # The focus moves on to a neighbouring file, not lost on the page.
    await expect(page.locator("#file-list .file-name:focus")).to_have_count(1)
    await expect(quota).to_contain_text("2 files")

    # The list is the server's: a reload shows the same files, a page at a
    # time (50) with "Load more" for the rest.
    await page.evaluate(
        """async () => {
            const form = new FormData();
            for (let i = 0; i < 50; i += 1) form.append("file", new File([`n${i}`], `n${i}.txt`));
            const answer = await fetch("/api/v1/files", { method: "POST", body: form });
            if (answer.status !== 201) throw new Error(await answer.text());
        }"""
    )
    await page.reload()
    rows = page.locator("#file-list li.file-row")
    await expect(rows).to_have_count(50)
    await expect(row(alice, "zebra minutes.txt")).to_have_count(0)
    await expect(quota).to_contain_text("52 files")
    await page.get_by_role("button", name="Load more").click()
    await expect(rows).to_have_count(52)
    await expect(row(alice, "zebra minutes.txt")).to_be_visible()
    await expect(page.get_by_role("button", name="Load more")).to_be_hidden()
    assert unexpected(alice) == []


async def test_files_on_a_phone(server: ServerProcess, browser: Any) -> None:
    alice = await sign_up(browser, server.url, "alice", size="phone")
    page = alice.page
    await page.goto(f"{server.url}/#files")
    await expect(page.get_by_role("heading", name="Files", exact=True)).to_be_visible()
    await expect(page.get_by_text("No files yet")).to_be_visible()
    await check_screen(alice, "files-empty")
    long_name = "a-rather-long-file-name-for-a-phone-screen-quarterly-report-final-v2.txt"
    await page.locator("#files-input").set_input_files(
        [
            {"name": long_name, "mimeType": "text/plain", "buffer": NOTES.encode()},
            {"name": "photo.png", "mimeType": "image/png", "buffer": PHOTO},
        ]
    )
    await expect(row(alice, long_name)).to_be_visible()
    await expect(row(alice, "photo.png").locator(".file-badge")).to_have_text("Not searchable")
    # Every action is on screen without hovering.
    photo = row(alice, "photo.png")
    for role, action in (("link", "Download"), ("button", "Rename"), ("button", "Delete")):
        await expect(photo.get_by_role(role, name=f"{action} photo.png")).to_be_in_viewport()
    await check_screen(alice, "files")

    # Past the quota: the upload that does not fit says so, the rest are kept.
    await page.locator("#files-input").set_input_files(
        [
            {"name": f"part{i}.txt", "mimeType": "text/plain", "buffer": b"y" * 1900}
            for i in (1, 2, 3)
        ]
    )
    await expect(row(alice, "part1.txt")).to_be_visible()
    await expect(row(alice, "part2.txt")).to_be_visible()
    refused = upload(alice, "part3.txt").locator(".upload-status")
    await expect(refused).to_contain_text(f"quota of {QUOTA_BYTES} bytes")
    await expect(row(alice, "part3.txt")).to_have_count(0)
    await expect(page.locator("#files-quota-text")).to_have_text("4.1 KB of 5.0 KB · 4 files")
    await check_screen(alice, "files-full")
    await row(alice, long_name).get_by_role("button", name=long_name, exact=True).click()
    dialog = page.get_by_role("dialog")
    await expect(dialog.locator("pre")).to_have_text(NOTES)
    await check_screen(alice, "files-preview")
    await page.keyboard.press("Escape")
    await expect(dialog).to_be_hidden()
    assert unexpected(alice) == []
