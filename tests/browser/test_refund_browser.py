"""A staff member refunds part of a paid link from its page, confirming in the browser's
dialog; the page then shows the refund and offers only what is left."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable

import pytest
import requests
from playwright.sync_api import Dialog, Page, expect
from sqlalchemy import select

from clientpay_connect.accounts.models import User
from clientpay_connect.admin.models import MerchantAccount
from clientpay_connect.links.services import NewLink, create_link
from tests.browser.accessibility import assert_accessible
from tests.support.live_server import LiveServer, Login
from tests.support.payments import card, submission

pytestmark = pytest.mark.browser

SignIn = Callable[[Login], None]


def _paid_link(live_server: LiveServer, amount_minor: int, paid: str) -> int:
    """A link of the staff member's firm, paid by card through the sandbox over HTTP."""
    with live_server.dbsession() as dbsession:
        staff = dbsession.scalars(select(User).where(User.email == live_server.staff.email)).one()
        account = dbsession.scalars(
            select(MerchantAccount).where(
                MerchantAccount.firm_id == staff.firm_id, MerchantAccount.kind == "operating"
            )
        ).first()
        new = NewLink(
            merchant_account=account,
            amount_minor=amount_minor,
            invoice_number="INV-" + uuid.uuid4().hex[:6].upper(),
        )
        link, token = create_link(
            dbsession, live_server.app.registry["clientpay.encryptor"], staff, new
        )
        link_id = link.id
    with requests.Session() as http:
        card_token = http.post(f"{live_server.url}/sandbox/tokens", json=card(), timeout=30)
        answer = http.post(
            f"{live_server.url}/api/v1/pay/{token}",
            json=submission(card_token.json()["token"], paid),
            headers={"Idempotency-Key": uuid.uuid4().hex},
            timeout=30,
        )
    assert answer.status_code == 201, answer.text
    return link_id


def refund_on_the_page(page: Page, amount: str, reason: str) -> list[str]:
    """Refund ``amount`` with the form of the link's page, saying yes to the browser's
    dialog; what the dialog asked."""
    page.get_by_label(re.compile(r"Amount to refund")).fill(amount)
    page.get_by_label(re.compile(r"Reason")).fill(reason)
    asked: list[str] = []

    def confirm(dialog: Dialog) -> None:
        asked.append(dialog.message)
        dialog.accept()

    page.once("dialog", confirm)
    page.get_by_role("button", name="Refund").click()
    return asked


def test_staff_refund_part_of_a_payment_from_the_links_page(
    page: Page, sign_in: SignIn, live_server: LiveServer
) -> None:
    link_id = _paid_link(live_server, 25_000, "250.00")
    sign_in(live_server.staff)
    page.goto(f"/links/{link_id}")
    amount = page.get_by_label(re.compile(r"Amount to refund"))
    expect(amount).to_have_value("250.00")

    asked = refund_on_the_page(page, "60.00", "Overcharged")

    expect(page.get_by_text("Refunded $60.00")).to_be_visible()
    assert asked and "cannot be undone" in asked[0]
    expect(page.locator("[data-amount-refunded]")).to_have_text("$60.00")
    expect(page.locator("[data-refund]")).to_contain_text("Overcharged")
    expect(page.get_by_label(re.compile(r"Amount to refund"))).to_have_value("190.00")
    assert_accessible(page)
