"""What every web-client test needs (with the ``server`` and ``browser``
fixtures of tests/e2e/conftest.py: a real ``gortc serve`` subprocess and
Debian's Chromium): people
signed up in their own Chromium contexts (own cookies), at desktop or phone
size, and the checks a reviewer would make by eye — no sideways scrolling,
no serious accessibility faults (axe-core), a screenshot of each main screen.

Screenshots go to ``build/screenshots/<desktop|phone>/<screen>.png`` under
the repository (``GORTC_SCREENSHOTS`` names another folder), so a reviewer
can look at every main screen after a run.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.browser import require_chromium
from tests.e2e.server_process import REPO

playwright_api = pytest.importorskip("playwright.async_api")
expect = playwright_api.expect

require_chromium()

DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
SIZES = {"desktop": DESKTOP, "phone": PHONE}
PASSWORD = "correct horse battery"
SCREENSHOTS = Path(os.environ.get("GORTC_SCREENSHOTS", REPO / "build" / "screenshots"))
AXE = REPO / "tests" / "vendor" / "axe.min.js"


@dataclass
class Person:
    """One user in their own browser context, with what the page complained
    about: script errors, CSP violations, failed loads."""

    context: Any
    page: Any
    username: str
    problems: list[str] = field(default_factory=list)

    def console(self, message: Any) -> None:
        # Asking who is signed in before anyone is answers 401: expected.
        if message.type == "error" and "status of 401" not in message.text:
            self.problems.append(f"console error: {message.text} {message.location}")

    def message(self, text: str) -> Any:
        """The settled (acknowledged) message whose body reads exactly that."""
        return self.page.locator("#message-list li.message:not(.pending)").filter(
            has=self.page.locator(".message-body", has_text=re.compile(f"^{re.escape(text)}$"))
        )

    def conversation(self, name: str) -> Any:
        return self.page.locator(".conversation-link", has_text=name)

    @property
    def composer(self) -> Any:
        return self.page.get_by_role("textbox", name="Message", exact=True)

    async def send(self, text: str) -> None:
        await self.composer.fill(text)
        await self.composer.press("Enter")
        await expect(self.message(text)).to_have_count(1)
        await expect(self.page.locator("#message-list li.pending")).to_have_count(0)


async def open_page(browser: Any, url: str, username: str, size: str = "desktop") -> Person:
    """A fresh browser context at that size on the server's page, signed out."""
    context = await browser.new_context(viewport=SIZES[size])
    page = await context.new_page()
    person = Person(context, page, username)
    page.on("pageerror", lambda error: person.problems.append(f"page error: {error}"))
    page.on("console", person.console)
    await page.goto(url)
    return person


async def sign_up(browser: Any, url: str, username: str, size: str = "desktop") -> Person:
    """A new account made through the page's own form, left signed in."""
    person = await open_page(browser, url, username, size)
    page = person.page
    await page.get_by_role("link", name="Create an account").click()
    form = page.locator("#register-form")
    await form.get_by_label("Username").fill(username)
    await form.get_by_label("Email").fill(f"{username}@example.com")
    await form.get_by_label("Password").fill(PASSWORD)
    await form.get_by_role("button", name="Create account").click()
    await expect(page.locator("#chat-view")).to_be_visible()
    return person


async def create_group(person: Person, name: str) -> None:
    page = person.page
    await page.get_by_label("New group name").fill(name)
    await page.locator("#new-group-form").get_by_role("button", name="Create").click()
    await expect(page.locator("#conversation-title")).to_have_text(name)
    await expect(person.conversation(name)).to_have_attribute("aria-current", "true")


async def add_member(person: Person, username: str) -> None:
    """The open group's owner adds someone by their exact username."""
    page = person.page
    await page.get_by_label("Add member").fill(username)
    await page.locator("#add-member-form").get_by_role("button", name="Add").click()
    await expect(page.locator("#member-list")).to_contain_text(f"@{username}")


async def assert_no_sideways_scroll(person: Person, screen: str) -> None:
    """Fails when the document is wider than the viewport (the page would
    scroll sideways), naming the widest elements that stick out."""
    width, viewport, culprits = await person.page.evaluate(
        """() => {
            const viewport = window.innerWidth;
            const wide = [...document.querySelectorAll('body *')]
              .filter((n) => n.getBoundingClientRect().right > viewport + 1
                && getComputedStyle(n).position !== 'fixed')
              .slice(0, 5)
              .map((n) => `${n.tagName.toLowerCase()}#${n.id}.${n.className}`);
            return [document.documentElement.scrollWidth, viewport, wide];
        }"""
    )
    assert width <= viewport, (
        f"{screen}: page is {width}px wide in a {viewport}px viewport: {culprits}"
    )


async def assert_accessible(person: Person, screen: str) -> None:
    """axe-core finds no serious or critical violation on what is shown."""
    page = person.page
    if not await page.evaluate("typeof window.axe === 'object'"):
        # Injected by the test (not served): the page's CSP does not apply.
        await page.evaluate(AXE.read_text())
    result = await page.evaluate(
        """async () => {
            const r = await axe.run(document, { resultTypes: ['violations'] });
            return r.violations
              .filter((v) => v.impact === 'serious' || v.impact === 'critical')
              .map((v) => ({ id: v.id, impact: v.impact, help: v.help,
                             nodes: v.nodes.slice(0, 3).map((n) => n.target.join(' ')) }));
        }"""
    )
    assert result == [], f"{screen}: " + json.dumps(result, indent=1)


async def screenshot(person: Person, screen: str) -> Path:
    """Saves what the person sees now as build/screenshots/<size>/<screen>.png."""
    size = "phone" if person.page.viewport_size["width"] < 600 else "desktop"
    path = SCREENSHOTS / size / f"{screen}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    await person.page.screenshot(path=str(path))
    return path


async def check_screen(person: Person, screen: str) -> None:
    """Screenshot, no sideways scrolling, no serious axe violations."""
    await screenshot(person, screen)
    await assert_no_sideways_scroll(person, screen)
    await assert_accessible(person, screen)
