"""My sessions in the web client: Alice, signed in on a laptop and a phone,
sees both in her profile (this device marked), signs the phone out from the
laptop, and the phone is back at the sign-in page at once."""

from __future__ import annotations

from typing import Any

from tests.e2e.server_process import ServerProcess
from tests.e2e.web import PASSWORD, Person, check_screen, expect, open_page, sign_up


async def _sign_in(browser: Any, url: str, username: str, size: str) -> Person:
    person = await open_page(browser, url, username, size)
    form = person.page.locator("#sign-in-form")
    await form.get_by_label("Username or email").fill(username)
    await form.get_by_label("Password").fill(PASSWORD)
    await form.get_by_role("button", name="Sign in").click()
    await expect(person.page.locator("#signed-in")).to_be_visible()
    return person


async def _open_profile(person: Person) -> Any:
    await person.page.goto(person.page.url.split("#")[0] + "#profile")
    card = person.page.locator("#sessions")
    await expect(card.get_by_role("heading", name="Where you're signed in")).to_be_visible()
    return card


async def test_signing_out_another_device_from_the_profile(
    server: ServerProcess, browser: Any
) -> None:
    laptop = await sign_up(browser, server.url, "alice", "desktop")
    phone = await _sign_in(browser, server.url, "alice", "phone")

    # The phone sees both sign-ins, itself marked.
    phone_card = await _open_profile(phone)
    await expect(phone_card.locator("#session-list li")).to_have_count(2)
    first = phone_card.locator("#session-list li").first
    await expect(first).to_contain_text("This device")
    await expect(first).to_contain_text("Chrome on Linux")
    await expect(first).to_contain_text("127.0.0.1")
    await expect(first.get_by_role("button")).to_have_count(0)
    await phone_card.scroll_into_view_if_needed()
    await check_screen(phone, "sessions")

    laptop_card = await _open_profile(laptop)
    rows = laptop_card.locator("#session-list li")
    await expect(rows).to_have_count(2)
    await expect(rows.filter(has_text="This device")).to_have_count(1)
    other = rows.filter(has_not_text="This device")
    await laptop_card.scroll_into_view_if_needed()
    await check_screen(laptop, "sessions")

    await other.get_by_role("button", name="Sign out").click()
    await expect(laptop_card.get_by_role("status")).to_contain_text("is signed out")
    await expect(rows).to_have_count(1)

    # The phone's socket is closed by the server: it is at the sign-in page
    # without touching anything, and stays signed out after a reload.
    await expect(phone.page.locator("#sign-in-form")).to_be_visible(timeout=10_000)
    await expect(phone.page.locator("#signed-in")).to_be_hidden()
    await phone.page.reload()
    await expect(phone.page.locator("#sign-in-form")).to_be_visible()

    # The laptop keeps working.
    await laptop.page.reload()
    await expect(laptop.page.locator("#signed-in")).to_be_visible()
    await expect((await _open_profile(laptop)).locator("#session-list li")).to_have_count(1)
    # Chromium logs the phone's refused requests (401) after it was signed out.
    assert [p for p in laptop.problems] == []
    assert [p for p in phone.problems if "401" not in p] == []
