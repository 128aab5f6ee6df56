"""What every signed-in page shares: the header that folds into a menu in a narrow panel,
the skip link, the CSRF header on script requests, and the copy buttons of app.js."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from playwright.sync_api import BrowserContext, Dialog, Page, ViewportSize, expect

from tests.browser.conftest import NARROW
from tests.support.live_server import LiveServer, Login

pytestmark = pytest.mark.browser

SignIn = Callable[[Login], None]


def assert_signed_out(page: Page) -> None:
    page.goto("/")
    expect(page).to_have_url(re.compile(r"/login\?next=%2F$"))


def test_a_wide_panel_shows_the_menu_without_a_toggle(
    page: Page, sign_in: SignIn, live_server: LiveServer
) -> None:
    sign_in(live_server.admin)
    nav = page.get_by_role("navigation", name="Main")
    expect(nav.get_by_role("link", name="Admin")).to_be_visible()
    expect(page.get_by_role("button", name="Menu")).to_be_hidden()
    expect(nav.get_by_role("link", name="Home")).to_have_attribute("aria-current", "page")


@pytest.mark.parametrize("viewport", [NARROW], ids=["narrow"])
def test_a_narrow_panel_folds_the_menu_behind_a_button(
    page: Page, sign_in: SignIn, live_server: LiveServer, viewport: ViewportSize
) -> None:
    sign_in(live_server.admin)
    toggle = page.get_by_role("button", name="Menu")
    admin_link = page.get_by_role("navigation", name="Main").get_by_role("link", name="Admin")
    expect(toggle).to_have_attribute("aria-expanded", "false")
    expect(admin_link).to_be_hidden()

    toggle.focus()
    page.keyboard.press("Enter")
    expect(toggle).to_have_attribute("aria-expanded", "true")
    expect(admin_link).to_be_visible()
    # Nothing of the open menu sticks out of the panel.
    assert page.evaluate("document.documentElement.scrollWidth") <= viewport["width"]

    page.keyboard.press("Tab")
    page.keyboard.press("Escape")
    expect(toggle).to_have_attribute("aria-expanded", "false")
    expect(toggle).to_be_focused()
    expect(admin_link).to_be_hidden()


def test_the_skip_link_is_first_and_moves_to_the_content(
    page: Page, sign_in: SignIn, live_server: LiveServer
) -> None:
    sign_in(live_server.admin)
    page.keyboard.press("Tab")
    skip = page.get_by_role("link", name="Skip to main content")
    expect(skip).to_be_focused()
    box = skip.bounding_box()
    assert box is not None and box["y"] >= 0, "the focused skip link is off screen"

    page.keyboard.press("Enter")
    expect(page.locator("main")).to_be_focused()
    page.keyboard.press("Tab")
    # The next stop is inside the content, past the whole header.
    assert page.evaluate("document.querySelector('main').contains(document.activeElement)")


def test_fetch_json_sends_the_csrf_token_and_plain_fetch_is_refused(
    page: Page, sign_in: SignIn, live_server: LiveServer
) -> None:
    sign_in(live_server.staff)
    plain = page.evaluate("() => fetch('/logout', {method: 'POST'}).then(r => r.status)")
    assert plain == 403, "a POST without the token must be refused"
    page.goto("/")
    expect(page.get_by_role("heading", name="Demo Law LLP", level=1)).to_be_visible()

    result: dict[str, Any] = page.evaluate(
        "() => clientpay.fetchJSON('/logout', {method: 'POST'}).then(r => ({status: r.status}))"
    )
    assert result["status"] == 200  # the sign-in page, after the 303
    assert_signed_out(page)


def test_htmx_requests_carry_the_csrf_token(
    page: Page, sign_in: SignIn, live_server: LiveServer
) -> None:
    sign_in(live_server.staff)
    page.evaluate("() => htmx.ajax('POST', '/logout', {swap: 'none'})")
    assert_signed_out(page)


def test_a_copy_button_copies_and_says_so(
    context: BrowserContext, page: Page, sign_in: SignIn, live_server: LiveServer
) -> None:
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live_server.url)
    sign_in(live_server.admin)
    # No page has a copy button yet; build two the way a template would write them.
    page.evaluate(
        """() => {
            const main = document.querySelector('main');
            main.insertAdjacentHTML('beforeend',
              '<label for="link-url">Payment link</label>' +
              '<input id="link-url" readonly value="https://pay.example/p/abc123">' +
              '<button type="button" data-copy-target="#link-url">Copy link</button>' +
              '<button type="button" data-copy-text="INV-42">Copy invoice number</button>');
        }"""
    )
    announcer = page.locator("#announcer")
    expect(announcer).to_have_attribute("aria-live", "polite")

    page.get_by_role("button", name="Copy link").click()
    expect(announcer).to_have_text("Copied")
    assert page.evaluate("navigator.clipboard.readText()") == "https://pay.example/p/abc123"

    # Emptied so that the next "Copied" can only come from the second button.
    announcer.evaluate("el => { el.textContent = '' }")
    page.get_by_role("button", name="Copy invoice number").click()
    expect(announcer).to_have_text("Copied")
    assert page.evaluate("navigator.clipboard.readText()") == "INV-42"


def test_data_confirm_asks_before_a_form_goes(
    page: Page, sign_in: SignIn, live_server: LiveServer
) -> None:
    sign_in(live_server.staff)
    # The header's sign-out form stands in for a destructive form of a later page.
    page.locator("form.inline-form").evaluate("f => f.setAttribute('data-confirm', 'Sign out?')")
    questions: list[str] = []

    def say_no(dialog: Dialog) -> None:
        questions.append(dialog.message)
        dialog.dismiss()

    page.once("dialog", say_no)
    page.get_by_role("button", name="Sign out").click()
    assert questions == ["Sign out?"]
    expect(page.get_by_role("heading", name="Demo Law LLP", level=1)).to_be_visible()

    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", name="Sign in", level=1)).to_be_visible()
    assert_signed_out(page)
