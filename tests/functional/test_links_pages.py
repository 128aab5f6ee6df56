"""The Quick Link page and a link's page, through WebTest as a signed-in person uses them."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
import webtest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from clientpay_connect.links.models import STATUS_PAID, STATUS_PARTIALLY_PAID, PaymentLink
from clientpay_connect.links.services import NewLink, create_link, find_by_token
from clientpay_connect.mail.models import OutboxMessage
from clientpay_connect.pay.models import PAYMENT_SUCCEEDED, Payment
from tests.conftest import login
from tests.factories import FirmFactory, MerchantAccountFactory

FORM = "quick-link-form"


@pytest.fixture
def account(staff: Any) -> Any:
    return MerchantAccountFactory(firm=staff.firm, name="Operating")


@pytest.fixture
def signed_in(testapp: webtest.TestApp, staff: Any, account: Any) -> webtest.TestApp:
    login(testapp, staff)
    return testapp


def quick_form(app: webtest.TestApp) -> webtest.Form:
    return app.get("/links/quick").forms[FORM]


def links_count(dbsession: Session) -> int:
    return int(dbsession.execute(select(func.count()).select_from(PaymentLink)).scalar_one())


def outbox_count(dbsession: Session) -> int:
    return int(dbsession.execute(select(func.count()).select_from(OutboxMessage)).scalar_one())


def make_link(dbsession: Session, app: Any, account: Any, **fields: Any) -> PaymentLink:
    link, _token = create_link(
        dbsession,
        app.registry["clientpay.encryptor"],
        None,
        NewLink(merchant_account=account, **{"amount_minor": 10_000, **fields}),
    )
    dbsession.flush()
    return link


# --- Quick Link ----------------------------------------------------------------------------


def test_the_menu_leads_to_quick_link(signed_in):
    home = signed_in.get("/")
    assert home.html.find("a", string="Quick Link")["href"].endswith("/links/quick")


def test_the_only_account_is_chosen_already(signed_in, account):
    form = quick_form(signed_in)
    assert form["merchant_account_id"].value == str(account.id)


def test_with_several_accounts_one_must_be_chosen(signed_in, staff, account):
    MerchantAccountFactory(firm=staff.firm, name="Trust", kind="trust")
    form = quick_form(signed_in)
    assert form["merchant_account_id"].value == ""


def test_the_message_placeholder_is_the_firms_default(signed_in):
    page = signed_in.get("/links/quick")
    assert page.html.find("textarea", id="message")["placeholder"].startswith("Thank you")


def test_errors_sit_beside_their_fields_and_the_form_keeps_what_was_typed(signed_in, dbsession):
    form = quick_form(signed_in)
    form["amount"] = "12.345"
    form["invoice_number"] = "INV-9"
    form["recipient_name"] = "Dana Client"
    form.set("emails", "dana@example.test; nope@", index=0)
    page = form.submit("action", value="send", status=422)

    amount = page.html.find("input", id="amount")
    assert amount["value"] == "12.345"
    assert amount["aria-invalid"] == "true"
    amount_error = page.html.find(id="amount-error")
    assert amount_error.get_text(strip=True) == "An amount in USD has at most 2 decimals."
    assert "amount-error" in amount["aria-describedby"].split()

    email = page.html.find("input", id="email-0")
    assert email["value"] == "dana@example.test; nope@"
    assert "“nope@” is not a valid email address." in page.html.find(id="email-0-error").text
    assert "email-0-error" in email["aria-describedby"].split()

    assert page.html.find("input", id="invoice_number")["value"] == "INV-9"
    assert page.html.find("input", id="recipient_name")["value"] == "Dana Client"
    summary = page.html.find(id="form-errors")
    assert [a["href"] for a in summary.find_all("a")] == ["#amount", "#email-0"]
    assert links_count(dbsession) == 0
    assert outbox_count(dbsession) == 0


def test_generate_link_shows_a_url_that_finds_the_link(signed_in, dbsession):
    form = quick_form(signed_in)
    form["amount"] = "$1,500"
    form["invoice_number"] = "INV-42"
    form["send_email"] = "no"
    done = form.submit("action", value="generate", status=303).follow()

    url_field = done.html.find("input", id="link-url")
    assert url_field.has_attr("readonly")
    copy = done.html.find("button", attrs={"data-copy-target": "#link-url"})
    assert copy.get_text(strip=True) == "Copy"
    token = url_field["value"].rsplit("/pay/", 1)[1]
    link = find_by_token(dbsession, token)
    assert link is not None
    assert (link.amount_minor, link.invoice_number, link.emails) == (150_000, "INV-42", [])
    assert outbox_count(dbsession) == 0


def test_generate_link_ignores_the_email_half(signed_in, dbsession):
    # Without scripts both halves show; what was typed in the other half is not used.
    form = quick_form(signed_in)
    form["amount"] = "10"
    form.set("emails", "not an address", index=0)
    form.submit("action", value="generate", status=303)
    link = dbsession.execute(select(PaymentLink)).scalar_one()
    assert link.emails == []


def test_send_link_queues_the_email_and_confirms_the_recipients(signed_in, dbsession):
    form = quick_form(signed_in)
    form["amount"] = "250.00"
    form["recipient_name"] = "Dana Client"
    form.set("emails", "Dana@Example.test, accounts@example.test", index=0)
    done = form.submit("action", value="send", status=303).follow()

    recipients = [li.get_text(strip=True) for li in done.html.select("[data-recipients] li")]
    assert recipients == ["dana@example.test", "accounts@example.test"]
    link = dbsession.execute(select(PaymentLink)).scalar_one()
    detail = done.html.find("a", string="View the link's page")
    assert detail["href"].endswith(f"/links/{link.id}")
    message = dbsession.execute(
        select(OutboxMessage).where(OutboxMessage.link_id == link.id)
    ).scalar_one()
    assert message.recipients == ["dana@example.test", "accounts@example.test"]
    assert link.recipient_name == "Dana Client"


def test_send_link_without_an_address_is_an_error(signed_in, dbsession):
    form = quick_form(signed_in)
    form["amount"] = "10"
    page = form.submit("action", value="send", status=422)
    error = page.html.find(id="email-0-error").get_text(strip=True)
    assert error == "Enter at least one email address to send the link to."
    assert links_count(dbsession) == 0


def test_add_another_address_works_without_scripts(signed_in, dbsession):
    form = quick_form(signed_in)
    form["amount"] = "10"
    form.set("emails", "first@example.test", index=0)
    page = form.submit("action", value="add_email", status=200)
    assert page.html.find("input", id="email-0")["value"] == "first@example.test"
    assert page.html.find("input", id="email-1")["value"] == ""
    assert page.html.find("label", attrs={"for": "email-1"}).get_text(strip=True) == (
        "Email address 2"
    )
    assert links_count(dbsession) == 0

    form = page.forms[FORM]
    form.set("emails", "second@example.test", index=1)
    form.submit("action", value="send", status=303)
    link = dbsession.execute(select(PaymentLink)).scalar_one()
    assert link.emails == ["first@example.test", "second@example.test"]


def test_pressing_enter_follows_the_yes_no_choice(signed_in, dbsession):
    form = quick_form(signed_in)
    form["amount"] = "10"
    form["send_email"] = "no"
    form.submit(status=303)  # no button: what Enter in a field sends
    link = dbsession.execute(select(PaymentLink)).scalar_one()
    assert link.email_status == "not_sent"


def test_another_firms_account_cannot_be_posted(signed_in, dbsession):
    theirs = MerchantAccountFactory(firm=FirmFactory())
    form = quick_form(signed_in)
    form["amount"] = "10"
    form["merchant_account_id"].force_value(str(theirs.id))
    page = form.submit("action", value="generate", status=422)
    assert page.html.find(id="merchant_account_id-error") is not None
    assert links_count(dbsession) == 0


def test_a_firm_without_accounts_is_told_so(testapp, staff):
    login(testapp, staff)
    page = testapp.get("/links/quick")
    assert "no active merchant account" in page.text
    assert FORM not in page.forms


def test_the_page_needs_a_sign_in(testapp):
    response = testapp.get("/links/quick", status=302)
    assert "/login" in response.location


def test_a_forged_post_is_refused(signed_in, dbsession, account):
    page = signed_in.post(
        "/links/quick", {"amount": "10", "merchant_account_id": account.id}, status=403
    )
    assert "form has expired" in page.text
    assert links_count(dbsession) == 0


# --- A link's page -------------------------------------------------------------------------


def test_a_link_page_shows_the_link(signed_in, dbsession, app, account):
    link = make_link(
        dbsession,
        app,
        account,
        invoice_number="INV-5",
        emails=["dana@example.test"],
        recipient_name="Dana",
    )
    page = signed_in.get(f"/links/{link.id}")
    assert page.html.select_one("[data-link-status]").get_text(strip=True) == "Outstanding"
    assert page.html.select_one("[data-email-status]").get_text(strip=True) == "Not emailed"
    url = page.html.find("input", id="link-url")["value"]
    assert find_by_token(dbsession, url.rsplit("/pay/", 1)[1]) is link
    assert "INV-5" in page.text and "dana@example.test" in page.text
    assert page.html.find("button", string="Cancel link") is not None
    assert page.html.find("button", string="Create balance link") is None


def test_another_firms_link_page_is_not_found(signed_in, dbsession, app):
    theirs = make_link(dbsession, app, MerchantAccountFactory(firm=FirmFactory()))
    signed_in.get(f"/links/{theirs.id}", status=404)
    signed_in.get("/links/999999999", status=404)
    signed_in.get("/links/99999999999999999999", status=404)


def test_cancelling_from_the_link_page(signed_in, dbsession, app, account):
    link = make_link(dbsession, app, account)
    page = signed_in.get(f"/links/{link.id}")
    form = next(f for f in page.forms.values() if f.action.endswith("/cancel"))
    after = form.submit(status=303).follow()
    assert after.html.select_one("[data-link-status]").get_text(strip=True) == "Cancelled"
    assert "can no longer be paid" in after.text
    assert after.html.find("button", string="Cancel link") is None


def test_a_partly_paid_link_offers_a_balance_link(signed_in, dbsession, app, account):
    link = make_link(dbsession, app, account, amount_minor=10_000, emails=["d@example.test"])
    link.status = STATUS_PARTIALLY_PAID
    link.amount_paid_minor = 4_000
    dbsession.flush()

    page = signed_in.get(f"/links/{link.id}")
    assert page.html.select_one("[data-link-status]").get_text(strip=True) == "Partially Paid"
    assert "Unpaid balance: $60.00" in page.text
    form = next(f for f in page.forms.values() if f.action.endswith("/balance-link"))
    balance_page = form.submit(status=303).follow()

    balance = dbsession.execute(
        select(PaymentLink).where(PaymentLink.parent_link_id == link.id)
    ).scalar_one()
    assert balance_page.request.path == f"/links/{balance.id}"
    assert balance.amount_minor == 6_000
    assert "Created a balance link for $60.00." in balance_page.text
    # The original now points at it instead of offering another.
    again = signed_in.get(f"/links/{link.id}")
    assert again.html.find("button", string="Create balance link") is None
    assert again.html.select_one(f'a[href$="/links/{balance.id}"]') is not None


def test_a_fully_paid_link_offers_no_balance_link(signed_in, dbsession, app, account):
    link = make_link(dbsession, app, account, amount_minor=10_000)
    link.status = STATUS_PAID
    link.amount_paid_minor = 10_000
    dbsession.flush()

    page = signed_in.get(f"/links/{link.id}")
    assert page.html.select_one("[data-link-status]").get_text(strip=True) == "Payment Received"
    assert "Unpaid balance" not in page.text
    assert page.html.find("button", string="Create balance link") is None
    assert page.html.find("button", string="Cancel link") is None


def test_a_link_paid_meanwhile_is_not_cancelled(signed_in, dbsession, app, account):
    link = make_link(dbsession, app, account)
    page = signed_in.get(f"/links/{link.id}")
    form = next(f for f in page.forms.values() if f.action.endswith("/cancel"))
    link.status = STATUS_PAID  # the payer was quicker than the click
    link.amount_paid_minor = link.amount_minor
    dbsession.flush()

    after = form.submit(status=303).follow()
    assert "this one is “payment received”" in after.html.find(role="alert").text
    assert after.html.select_one("[data-link-status]").get_text(strip=True) == "Payment Received"
    dbsession.expire_all()
    assert dbsession.get(PaymentLink, link.id).status == STATUS_PAID


def test_a_balance_link_can_be_emailed_from_the_page(signed_in, dbsession, app, account):
    form = quick_form(signed_in)
    form["amount"] = "100"
    form.set("emails", "dana@example.test", index=0)
    form.submit("action", value="send", status=303)
    link = dbsession.execute(select(PaymentLink)).scalar_one()
    link.status = STATUS_PARTIALLY_PAID
    link.amount_paid_minor = 7_500
    dbsession.flush()

    page = signed_in.get(f"/links/{link.id}")
    form = next(f for f in page.forms.values() if f.action.endswith("/balance-link"))
    form["send_email"] = True
    page = form.submit(status=303).follow()
    assert "Created a balance link for $25.00 and emailed it." in page.text
    balance = dbsession.execute(
        select(PaymentLink).where(PaymentLink.parent_link_id == link.id)
    ).scalar_one()
    message = dbsession.execute(
        select(OutboxMessage).where(OutboxMessage.link_id == balance.id)
    ).scalar_one()
    assert message.recipients == ["dana@example.test"]


def test_a_link_page_is_named_for_its_client_and_invoice_with_dates_and_card_as_people_say_them(
    signed_in, dbsession, app, account
):
    link = make_link(
        dbsession,
        app,
        account,
        amount_minor=125_000,
        invoice_number="INV-1001",
        recipient_name="Jane Client",
        invoice_date=dt.date(2026, 3, 1),
        due_date=dt.date(2026, 3, 15),
    )
    link.status = STATUS_PAID
    link.amount_paid_minor = 125_000
    dbsession.add(
        Payment(
            firm_id=link.firm_id,
            link_id=link.id,
            status=PAYMENT_SUCCEEDED,
            amount_minor=125_000,
            currency="USD",
            method="card",
            brand="visa",
            last4="4242",
            idempotency_key="k-1",
            processor_key="p-1",
            receipt_number="R-1",
            completed_at=dt.datetime(2026, 3, 2, 15, 4, tzinfo=dt.UTC),
        )
    )
    dbsession.flush()
    page = signed_in.get(f"/links/{link.id}")
    assert page.html.h1.get_text(strip=True) == "Link for Jane Client — INV-1001"
    assert page.html.title.get_text(strip=True).startswith("Link for Jane Client — INV-1001")
    rows = {
        th.get_text(strip=True): th.find_next_sibling("td").get_text(" ", strip=True)
        for th in page.html.select("th[scope=row]")
    }
    # One way of writing a day across the pages: "Mar 15, 2026", never "2026-03-15".
    assert (rows["Invoice date"], rows["Due date"]) == ("Mar 1, 2026", "Mar 15, 2026")
    assert "Visa ending in 4242" in page.text
    # The link page belongs to Sent Pages: the menu marks that, not Quick Link.
    assert [a.get_text(strip=True) for a in page.html.select('nav a[aria-current="page"]')] == [
        "Sent Pages"
    ]


def test_a_link_without_a_recipient_is_named_by_its_invoice_or_amount(
    signed_in, dbsession, app, account
):
    by_invoice = make_link(dbsession, app, account, invoice_number="INV-7")
    by_amount = make_link(dbsession, app, account, amount_minor=5_000)
    assert signed_in.get(f"/links/{by_invoice.id}").html.h1.get_text(strip=True) == (
        "Link for invoice INV-7"
    )
    assert signed_in.get(f"/links/{by_amount.id}").html.h1.get_text(strip=True) == (
        "Link for $50.00"
    )
