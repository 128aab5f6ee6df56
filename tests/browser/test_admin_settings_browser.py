"""The acceptance story: the demo admin changes the payment-page disclaimer; the demo staff
user can do neither through the page nor through the API."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import select

from clientpay_connect.accounts.models import Firm
from clientpay_connect.admin.models import FirmSettings
from clientpay_connect.demo import DEMO_SLUG
from tests.browser.accessibility import assert_accessible
from tests.support.live_server import LiveServer, Login

pytestmark = pytest.mark.browser

SignIn = Callable[[Login], None]
DISCLAIMER_LABEL = "Payment-page disclaimer"


def stored_disclaimer(live_server: LiveServer) -> str:
    with live_server.dbsession() as session:
        firm = session.execute(select(Firm).where(Firm.slug == DEMO_SLUG)).scalar_one()
        return session.get_one(FirmSettings, firm.id).disclaimer


def open_settings(page: Page) -> None:
    """From anywhere, the way an admin gets there: the header's Admin, then Settings."""
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Admin").click()
    page.get_by_role("navigation", name="Admin sections").get_by_role(
        "link", name="Settings", exact=True
    ).click()
    expect(page).to_have_url(re.compile(r"/admin/settings$"))


def test_admin_changes_the_disclaimer_and_staff_cannot(
    page: Page, sign_in: SignIn, live_server: LiveServer
) -> None:
    disclaimer = f"Payments are processed securely. Reference {uuid.uuid4().hex[:8]}."

    # The admin changes it.
    sign_in(live_server.admin)
    open_settings(page)
    field = page.get_by_label(DISCLAIMER_LABEL, exact=True)
    field.fill(disclaimer)
    page.get_by_role("button", name="Save settings").click()
    expect(page.get_by_text("Settings saved.")).to_be_visible()
    expect(page.get_by_label(DISCLAIMER_LABEL, exact=True)).to_have_value(disclaimer)

    # Kept: a fresh load of the page shows it, and so does the database.
    page.reload()
    expect(page.get_by_label(DISCLAIMER_LABEL, exact=True)).to_have_value(disclaimer)
    expect(page.get_by_text("Settings saved.")).to_have_count(0)
    assert stored_disclaimer(live_server) == disclaimer

    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", name="Sign in", level=1)).to_be_visible()

    # The staff user is not offered Settings, and typing its address gets a clear refusal.
    sign_in(live_server.staff)
    main_nav = page.get_by_role("navigation", name="Main")
    expect(main_nav.get_by_role("link", name="Home")).to_be_visible()
    expect(main_nav.get_by_role("link", name="Admin")).to_have_count(0)
    answer = page.goto("/admin/settings")
    assert answer is not None and answer.status == 403
    expect(page.get_by_role("heading", name="Not allowed", level=1)).to_be_visible()
    expect(page.get_by_label(DISCLAIMER_LABEL, exact=True)).to_have_count(0)

    # Nor through the API from a signed-in page. The request carries the page's CSRF token,
    # so the refusal is the permission's ("forbidden"), not the CSRF check's ("csrf").
    page.goto("/")
    result: dict[str, Any] = page.evaluate(
        """() => clientpay.fetchJSON("/api/v1/settings", {
               method: "PUT", body: {disclaimer: "Changed by staff"}})
             .then(r => ({status: r.status, data: r.data}))"""
    )
    assert result["status"] == 403, result
    assert result["data"]["error"] == "forbidden", result
    assert stored_disclaimer(live_server) == disclaimer


def test_the_settings_page_is_accessible(
    page: Page, sign_in: SignIn, live_server: LiveServer
) -> None:
    sign_in(live_server.admin)
    page.goto("/admin/settings")
    expect(page.get_by_role("heading", name="Settings", level=1)).to_be_visible()
    assert_accessible(page)


def test_the_not_allowed_page_is_accessible(
    page: Page, sign_in: SignIn, live_server: LiveServer
) -> None:
    sign_in(live_server.staff)
    answer = page.goto("/admin/settings")
    assert answer is not None and answer.status == 403
    expect(page.get_by_role("link", name="Back to the start page")).to_be_visible()
    assert_accessible(page)
