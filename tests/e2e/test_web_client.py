"""The web client in a real headless Chromium, against the real server."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.e2e.browser import CHROMIUM_ARGS, require_chromium
from tests.e2e.server_process import ServerProcess, start_server
from tests.e2e.test_avatar import tiny_png
from tests.integration.test_smtp import body_of
from tests.mail_outbox import outbox_mails

playwright_api = pytest.importorskip("playwright.async_api")

CHROMIUM = require_chromium()


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[ServerProcess]:
    running = await start_server(tmp_path / "data", GORTC_AUTH_BCRYPT_ROUNDS="4")
    yield running
    await running.stop()


@pytest.fixture
async def page(tmp_path: Path) -> AsyncIterator[object]:
    async with playwright_api.async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
        )
        try:
            context = await browser.new_context()
            yield await context.new_page()
        finally:
            await browser.close()


def mailed_token(server: ServerProcess, purpose: str) -> str:
    """The token of the last mail of that kind in the outbox (no SMTP)."""
    bodies = "".join(body_of(mail) for mail in outbox_mails(server.data_dir))
    tokens = re.findall(rf"#{purpose}\?token=([\w-]+)", bodies)
    assert tokens, f"no {purpose} mail in the outbox"
    return tokens[-1]


async def register_in_browser(page, url: str, username: str, email: str) -> None:  # type: ignore[no-untyped-def]
    """What a newcomer does: open the site, follow 'Create an account', fill it in."""
    await page.goto(url)
    await page.get_by_role("link", name="Create an account").click()
    form = page.locator("#register-form")
    await form.get_by_label("Username").fill(username)
    await form.get_by_label("Email").fill(email)
    await form.get_by_label("Password").fill("correct horse battery")
    await form.get_by_role("button", name="Create account").click()


async def test_a_new_user_registers_edits_the_profile_and_signs_out(
    server: ServerProcess, page, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    expect = playwright_api.expect
    await register_in_browser(page, server.url, "Alice", "alice@example.com")

    await expect(page.locator("#whoami")).to_have_text("alice (@alice)")
    await expect(page.locator("#profile-details")).to_contain_text("administrator")
    # This server sends no mail (its mails go to the log): no banner nags,
    # the profile has the place for the code (test_web_account.py).
    await expect(page.locator("#verify-banner")).to_be_hidden()
    await expect(page.locator("#verify-form")).to_be_attached()

    # The confirmation link from the mail (here: the log) confirms the address.
    await page.goto(f"{server.url}/#verify-email?token={mailed_token(server, 'verify-email')}")
    await expect(page.locator("#notice")).to_have_text("Your email address is confirmed.")
    await expect(page.locator("#verify-banner")).to_be_hidden()

    profile = page.locator("#profile-form")
    await profile.get_by_label("Display name").fill("Alice Liddell")
    await profile.get_by_role("button", name="Save").click()
    await expect(page.locator("#whoami")).to_have_text("Alice Liddell (@alice)")

    picture = tmp_path / "me.png"
    picture.write_bytes(tiny_png())
    await page.locator("#avatar-form input[type=file]").set_input_files(str(picture))
    await page.locator("#avatar-form").get_by_role("button", name="Upload").click()
    await expect(page.locator("#avatar")).to_be_visible()

    await page.screenshot(path=str(tmp_path / "profile.png"), full_page=True)
    await page.get_by_role("button", name="Sign out").click()
    await expect(page.locator("#sign-in-form")).to_be_visible()
    await page.reload()
    await expect(page.locator("#sign-in-form")).to_be_visible()


async def test_a_wrong_password_is_explained_and_a_reset_gets_the_user_back_in(
    server: ServerProcess, page
) -> None:  # type: ignore[no-untyped-def]
    expect = playwright_api.expect
    await register_in_browser(page, server.url, "bob", "bob@example.com")
    await page.get_by_role("button", name="Sign out").click()

    sign_in = page.locator("#sign-in-form")
    await sign_in.get_by_label("Username or email").fill("bob")
    await sign_in.get_by_label("Password").fill("not my password")
    await sign_in.get_by_role("button", name="Sign in").click()
    # Said in the form it is about.
    await expect(sign_in.get_by_role("alert")).to_have_text("wrong login or password")

    await page.get_by_role("link", name="Forgot your password?").click()
    await page.locator("#forgot-form").get_by_label("Email").fill("bob@example.com")
    await page.locator("#forgot-form").get_by_role("button").click()
    forgot_notice = page.locator("#forgot-form .form-notice")
    await expect(forgot_notice).to_contain_text("reset link is on its way")

    await page.goto(f"{server.url}/#reset-password?token={mailed_token(server, 'reset-password')}")
    await page.locator("#reset-form").get_by_label("New password").fill("a brand new phrase")
    await page.locator("#reset-form").get_by_role("button").click()
    await expect(page.locator("#notice")).to_contain_text("Your password is set")

    await sign_in.get_by_label("Username or email").fill("bob@example.com")
    await sign_in.get_by_label("Password").fill("a brand new phrase")
    await sign_in.get_by_role("button", name="Sign in").click()
    await expect(page.locator("#whoami")).to_have_text("bob (@bob)")
