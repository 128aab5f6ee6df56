"""Signing in and out in a real browser: the pages pass axe, errors are shown, and the
keyboard alone is enough."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from playwright.sync_api import Locator, Page, ViewportSize, expect

from tests.browser.accessibility import assert_accessible
from tests.browser.conftest import NARROW, WIDE
from tests.support.live_server import LiveServer, Login

pytestmark = pytest.mark.browser

SignIn = Callable[[Login], None]


def focus_ring(locator: Locator) -> tuple[str, float]:
    """The focused element's outline style and width in px, as the browser draws it."""
    style, width = locator.evaluate(
        "el => [getComputedStyle(el).outlineStyle, parseFloat(getComputedStyle(el).outlineWidth)]"
    )
    return str(style), float(width)


def tab_to(page: Page, target: Locator, limit: int = 40) -> None:
    """Press Tab until ``target`` has the focus, as a keyboard user would."""
    for _ in range(limit):
        page.keyboard.press("Tab")
        if target.evaluate("el => el === document.activeElement"):
            return
    raise AssertionError(f"{target} never received the focus after {limit} presses of Tab")


def test_the_sign_in_page_is_accessible(page: Page) -> None:
    page.goto("/login")
    expect(page.get_by_role("heading", name="Sign in", level=1)).to_be_visible()
    assert_accessible(page)


@pytest.mark.parametrize("viewport", [WIDE, NARROW], ids=["wide", "narrow"])
def test_the_home_page_is_accessible(
    page: Page, sign_in: SignIn, live_server: LiveServer, viewport: ViewportSize
) -> None:
    sign_in(live_server.admin)
    expect(page.get_by_role("heading", name="Demo Law LLP", level=1)).to_be_visible()
    assert_accessible(page)
    if viewport == NARROW:
        # The folded menu is a different page state: check it open as well.
        page.get_by_role("button", name="Menu").click()
        expect(page.get_by_role("button", name="Sign out")).to_be_visible()
        assert_accessible(page)


def test_a_wrong_password_is_refused_with_a_message(page: Page, live_server: LiveServer) -> None:
    page.goto("/login")
    page.get_by_label("Email").fill(live_server.staff.email)
    page.get_by_label("Password").fill(live_server.staff.password + "-wrong")
    with page.expect_response(re.compile(r"/login$")) as answer:
        page.get_by_role("button", name="Sign in").click()
    assert answer.value.status == 400

    expect(page.get_by_role("alert")).to_have_text("That email and password do not match.")
    email = page.get_by_label("Email")
    expect(email).to_have_value(live_server.staff.email)
    expect(email).to_have_attribute("aria-invalid", "true")
    # The field points at the message, so a screen reader reads it with the field.
    expect(email).to_have_accessible_description("That email and password do not match.")
    expect(page.get_by_label("Password")).to_have_value("")
    assert_accessible(page)

    # And nobody is signed in: the start page still sends us to the form.
    page.goto("/")
    expect(page).to_have_url(re.compile(r"/login\?next=%2F$"))


def test_sign_in_and_out_with_the_keyboard_only(page: Page, live_server: LiveServer) -> None:
    page.goto("/login")
    email = page.get_by_label("Email")
    # The form takes the focus itself: typing can start at once.
    expect(email).to_be_focused()
    page.keyboard.type(live_server.staff.email)
    page.keyboard.press("Tab")
    expect(page.get_by_label("Password")).to_be_focused()
    page.keyboard.type(live_server.staff.password)
    page.keyboard.press("Enter")

    expect(page.get_by_role("heading", name="Demo Law LLP", level=1)).to_be_visible()
    expect(page).to_have_url(live_server.url + "/")

    sign_out = page.get_by_role("button", name="Sign out")
    tab_to(page, sign_out)
    style, width = focus_ring(sign_out)
    assert style != "none" and width >= 2, f"the focused button shows no ring ({style} {width}px)"
    page.keyboard.press("Enter")

    expect(page.get_by_role("heading", name="Sign in", level=1)).to_be_visible()
    page.goto("/")
    expect(page).to_have_url(re.compile(r"/login\?next=%2F$"))


def test_sign_in_keeps_the_page_asked_for(page: Page, live_server: LiveServer) -> None:
    page.goto("/admin")
    expect(page).to_have_url(re.compile(r"/login\?next=%2Fadmin$"))
    page.get_by_label("Email").fill(live_server.admin.email)
    page.get_by_label("Password").fill(live_server.admin.password)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(live_server.url + "/admin")


def test_forgot_password_is_reached_from_sign_in_and_is_accessible(page: Page) -> None:
    page.goto("/login")
    page.get_by_role("link", name="Forgot your password?").click()
    expect(page.get_by_role("heading", name="Forgot your password?", level=1)).to_be_visible()
    assert_accessible(page)
    page.get_by_label("Email").fill("nobody-browser@example.test")
    page.get_by_role("button", name="Email me a reset link").click()
    expect(page.get_by_role("status")).to_contain_text("we have emailed it a link")
    assert_accessible(page)


def test_change_password_is_on_the_account_page_and_explains_a_mistake(
    page: Page, sign_in: SignIn, live_server: LiveServer
) -> None:
    sign_in(live_server.staff)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Account").click()
    page.get_by_role("button", name="Change your password").click()
    expect(page.get_by_role("heading", name="Change your password", level=1)).to_be_visible()
    assert_accessible(page)
    # A wrong current password changes nothing (the shared staff login must keep working).
    page.get_by_label("Current password").fill("not the password")
    page.get_by_label("New password", exact=True).fill("a new long passphrase")
    page.get_by_label("New password again").fill("a new long passphrase")
    page.get_by_role("button", name="Change password").click()
    current = page.get_by_label("Current password")
    expect(current).to_have_attribute("aria-invalid", "true")
    expect(current).to_have_accessible_description("That is not your current password.")
    assert_accessible(page)
