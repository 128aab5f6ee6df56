"""Every admin page passes axe as the admin first sees it (issue 12, item 25). Settings and
Connections have tests of their own (test_admin_settings_browser, test_connect_browser)."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from playwright.sync_api import Page, expect

from tests.browser.accessibility import assert_accessible
from tests.support.live_server import LiveServer, Login

pytestmark = pytest.mark.browser

SignIn = Callable[[Login], None]

LISTS = [
    "/admin",
    "/admin/users",
    "/admin/notifications",
    "/admin/merchant-accounts",
    "/admin/tokens",
    "/admin/outbox",
]


def test_the_admin_lists_are_accessible(
    page: Page, sign_in: SignIn, live_server: LiveServer
) -> None:
    sign_in(live_server.admin)
    for path in LISTS:
        page.goto(path)
        expect(page.get_by_role("heading", level=1)).to_be_visible()
        assert_accessible(page)


@pytest.mark.parametrize("listing", ["/admin/users", "/admin/merchant-accounts"])
def test_an_admin_detail_page_is_accessible(
    page: Page, sign_in: SignIn, live_server: LiveServer, listing: str
) -> None:
    sign_in(live_server.admin)
    page.goto(listing)
    detail = page.locator(f"main a[href*='{listing}/']").filter(
        has_not_text=re.compile("^(Add|New)")
    )
    detail.first.click()
    expect(page).to_have_url(re.compile(rf"{listing}/\d+$"))
    expect(page.get_by_role("heading", level=1)).to_be_visible()
    assert_accessible(page)
