"""The account in the web client: the emailed code typed into the profile,
the "not confirmed" banner (dismissable, remembered per person, and absent
when the server sends no mail), and notices shown next to what they are
about (a form's error inside that form, not at the top of the page)."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from tests.e2e.server_process import ServerProcess, start_server
from tests.e2e.web import (
    PASSWORD,
    Person,
    expect,
    sign_up,
)
from tests.integration.test_smtp import Inbox, code_in, free_port
from tests.mail_outbox import outbox_mails


def unexpected(person: Person, *refused: str) -> list[str]:
    """What the page complained of, but for the refusals the test provoked
    (Chromium logs each 4xx answer as a console error)."""
    return [
        problem
        for problem in person.problems
        if not any(
            f"status of {status}" in problem and path in problem
            for status, path in (r.split(" ", 1) for r in refused)
        )
    ]


def outbox_code(running: ServerProcess) -> str:
    """The last verification code the server wrote to its outbox (no SMTP)."""
    mails = outbox_mails(running.data_dir)
    assert mails, "no verification mail in the outbox"
    return code_in(mails[-1])


@pytest.fixture
def inbox() -> Iterator[tuple[int, Inbox]]:
    """An SMTP server on 127.0.0.1 keeping what it is sent."""
    kept = Inbox()
    port = free_port()
    controller = Controller(kept, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield port, kept
    finally:
        controller.stop()


@pytest.fixture
async def mailing_server(tmp_path: Path, inbox: tuple[int, Inbox]) -> AsyncIterator[ServerProcess]:
    running = await start_server(
        tmp_path / "data",
        GORTC_AUTH_BCRYPT_ROUNDS="4",
        GORTC_LIMITS_ENABLED="false",
        GORTC_MAIL_SMTP_HOST="127.0.0.1",
        GORTC_MAIL_SMTP_PORT=str(inbox[0]),
        GORTC_MAIL_SMTP_SECURITY="none",
    )
    yield running
    await running.stop()


async def mailed_code(inbox: Inbox, to: str) -> str:
    """The code of the last mail to that address, waiting for it a while."""
    async with asyncio.timeout(10):
        while True:
            mails = [m for m in inbox.messages if m["To"] == to]
            if mails:
                return code_in(mails[-1])
            await asyncio.sleep(0.1)


async def test_without_mail_there_is_no_banner_and_the_code_is_typed_in_the_profile(
    server: ServerProcess,
    browser: Any,
) -> None:
    ann = await sign_up(browser, server.url, "ann")
    page = ann.page
    # The server sends no mail: a banner asking to confirm would only nag.
    await expect(page.locator("#chat-view")).to_be_visible()
    await expect(page.get_by_role("region", name="Email confirmation")).to_be_hidden()

    await page.get_by_role("link", name="Profile").click()
    card = page.locator("#verify-form")
    await expect(card.get_by_role("heading", name="Confirm your email")).to_be_visible()
    await expect(card).to_contain_text("sends no mail")
    await expect(card.get_by_role("button", name="Send a new code")).to_be_hidden()

    # A wrong code: the server's message, in the card, not at the top of the page.
    code = card.get_by_label("Code from the mail")
    await code.fill("not-the-code")
    await card.get_by_role("button", name="Confirm").click()
    await expect(card.get_by_role("alert")).to_contain_text("link")
    await expect(page.locator("#notice")).to_be_hidden()
    assert await code.input_value() == "not-the-code"  # kept as typed, to correct

    await code.fill(outbox_code(server))
    await card.get_by_role("button", name="Confirm").click()
    await expect(page.locator("#notice")).to_have_text("Your email address is confirmed.")
    await expect(card).to_be_hidden()
    assert unexpected(ann, "400 /api/v1/auth/verify-email") == []


async def test_the_banner_can_be_dismissed_for_good_and_the_mailed_code_confirms(
    mailing_server: ServerProcess,
    inbox: tuple[int, Inbox],
    browser: Any,
) -> None:
    ben = await sign_up(browser, mailing_server.url, "ben")
    page = ben.page
    banner = page.get_by_role("region", name="Email confirmation")
    await expect(banner).to_be_visible()
    await expect(banner).to_contain_text("not confirmed")

    # Asking again says so next to the banner.
    await banner.get_by_role("button", name="Send a new code").click()
    await expect(page.locator("#verify-banner + .form-notice")).to_contain_text(
        "on its way to ben@example.com"
    )

    await banner.get_by_role("button", name="Dismiss").click()
    await expect(banner).to_be_hidden()
    await page.reload()
    await expect(page.locator("#chat-view")).to_be_visible()
    await expect(banner).to_be_hidden()

    # Remembered for ben only: cleo, on the same browser, is reminded.
    await page.get_by_role("button", name="Sign out").click()
    await page.get_by_role("link", name="Create an account").click()
    form = page.locator("#register-form")
    await form.get_by_label("Username").fill("cleo")
    await form.get_by_label("Email").fill("cleo@example.com")
    await form.get_by_label("Password").fill(PASSWORD)
    await form.get_by_role("button", name="Create account").click()
    await expect(banner).to_be_visible()

    # The banner leads to the place for the code; the mailed code confirms.
    await banner.get_by_role("link", name="Enter the code").click()
    card = page.locator("#verify-form")
    code = card.get_by_label("Code from the mail")
    await expect(code).to_be_focused()
    await page.get_by_role("main").click(position={"x": 5, "y": 5})
    await banner.get_by_role("link", name="Enter the code").click()  # already there
    await expect(code).to_be_focused()
    await expect(card).to_contain_text("We mailed a code to cleo@example.com")
    await code.fill(await mailed_code(inbox[1], "cleo@example.com"))
    await card.get_by_role("button", name="Confirm").click()
    await expect(page.locator("#notice")).to_have_text("Your email address is confirmed.")
    await expect(card).to_be_hidden()
    await expect(banner).to_be_hidden()
    assert ben.problems == [], ben.problems


async def test_a_form_error_is_shown_in_that_form(
    server: ServerProcess,
    browser: Any,
) -> None:
    dora = await sign_up(browser, server.url, "dora", size="phone")
    page = dora.page
    await page.get_by_role("link", name="Profile").click()

    # Far down the page on a phone: the answer appears by the button pressed.
    password = page.locator("#password-form")
    await password.get_by_label("Current password").fill("not my password")
    await password.get_by_label("New password").fill("a brand new phrase")
    await password.get_by_role("button", name="Change password").click()
    alert = password.get_by_role("alert")
    await expect(alert).to_have_text(re.compile("password", re.I))
    await expect(alert).to_be_in_viewport()
    await expect(page.locator("#notice")).to_be_hidden()
    await expect(page.locator("#profile-form .form-notice")).to_have_count(0)

    # Fixed and sent again: the error gives way to the confirmation.
    await password.get_by_label("Current password").fill(PASSWORD)
    await password.get_by_role("button", name="Change password").click()
    await expect(password.get_by_role("status")).to_contain_text("Password changed")
    await expect(alert).to_have_count(0)

    # Signed out, a wrong password is explained in the sign-in form.
    await page.get_by_role("button", name="Account").click()
    await page.get_by_role("button", name="Sign out").click()
    await expect(page.locator("#notice")).to_have_text("You are signed out.")
    sign_in = page.locator("#sign-in-form")
    await sign_in.get_by_label("Username or email").fill("dora")
    await sign_in.get_by_label("Password").fill("still not it")
    await sign_in.get_by_role("button", name="Sign in").click()
    await expect(sign_in.get_by_role("alert")).to_have_text("wrong login or password")
    assert unexpected(dora, "403 /api/v1/users/me/password", "401 /api/v1/auth/session") == []
