"""A link's page tells its story: each email to the client and how it was delivered (sent,
bounced, failed, not sent), the reminders, the opens, the payment, and the postings with the
way to Manage Postings. The emails go through the real outbox and a real SMTP server; the
page is read through WebTest as staff see it."""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import webtest
from sqlalchemy import select

from clientpay_connect.admin.models import FirmSettings
from clientpay_connect.links.models import PaymentLink
from clientpay_connect.links.services import NewLink, create_link
from clientpay_connect.mail.models import KIND_RECEIPT, OutboxMessage
from clientpay_connect.pay.models import Payment
from clientpay_connect.postings.models import POSTING_FAILED, Posting
from clientpay_connect.reminders.services import SEND_JOB
from tests import factories
from tests.conftest import login
from tests.support.payments import card, pay, submission, tokenize
from tests.support.smtp import send_link

NEW_YORK = ZoneInfo("America/New_York")


@pytest.fixture
def account(firm: Any) -> Any:
    return factories.MerchantAccountFactory(firm=firm)


def rows(page: Any, selector: str) -> list[list[str]]:
    return [
        [cell.get_text(" ", strip=True) for cell in row.find_all("td")]
        for row in page.html.select(selector)
    ]


def test_the_page_shows_each_email_and_its_delivery_the_payment_and_the_posting(
    mail_app, smtp, testapp, dbsession, firm, staff, account
):
    settings = dbsession.get(FirmSettings, firm.id)
    settings.reminders = [{"days": 7, "relative_to": "sent", "message": "A week on."}]
    settings.time_zone = "America/New_York"
    dbsession.flush()
    sent = send_link(mail_app, staff, account, invoice_number="INV-1", amount_minor=20_000)
    link = dbsession.get(PaymentLink, sent["link_id"], populate_existing=True)
    # A week after it was sent, at noon on a weekday in New York: the reminder goes.
    day = link.sent_at.astimezone(NEW_YORK).date() + dt.timedelta(days=7)
    while day.weekday() >= 5:
        day += dt.timedelta(days=1)
    noon = dt.datetime.combine(day, dt.time(12, 0), tzinfo=NEW_YORK).astimezone(dt.UTC)
    assert mail_app.registry["clientpay.jobs"].run_now(SEND_JOB, noon) == 1
    payer = webtest.TestApp(mail_app, extra_environ={"HTTP_HOST": "localhost"})
    pay(payer, sent["token"], submission(tokenize(payer, card()), "$200.00"), status=201)
    payment = dbsession.execute(select(Payment).where(Payment.link_id == link.id)).scalar_one()
    connection = factories.ConnectionFactory(firm=firm)
    posting = Posting(
        firm_id=firm.id,
        connection_id=connection.id,
        link_id=link.id,
        payment_id=payment.id,
        key=f"P-{payment.id}",
        status=POSTING_FAILED,
        amount_minor=20_000,
        currency="USD",
        received_on=dt.date(2030, 6, 3),
        reason="The matter was closed.",
    )
    dbsession.add(posting)
    dbsession.flush()

    login(testapp, staff)
    page = testapp.get(f"/links/{link.id}")

    emails = rows(page, "[data-link-email]")
    assert [(e[0], e[1], e[2]) for e in emails] == [
        ("Payment link", "ana@example.test", "Sent"),
        ("Reminder 1", "ana@example.test", "Sent"),
        ("Receipt", "pat@example.test", "Sent"),
    ]
    assert all(e[3] and not e[3].startswith("Queued") for e in emails)
    assert [r["data-delivery"] for r in page.html.select("[data-link-email]")] == ["sent"] * 3
    # The reminders, and their switch.
    assert len(page.html.select("[data-reminder-sent]")) == 1
    assert page.html.find("button", string="No reminders for this link") is not None
    # The payment: amount, card, receipt, when.
    receipt = payment.receipt_number
    [paid_row] = [r for r in rows(page, "table tr") if r and r[0] == receipt]
    assert paid_row[2] == "$200.00" and "4242" in paid_row[3]
    # The posting, and the way to Manage Postings.
    [posting_row] = rows(page, "[data-link-posting]")
    assert posting_row[1:4] == ["Failed", "$200.00", "2030-06-03"]
    assert posting_row[5] == "The matter was closed."
    hrefs = [a["href"] for a in page.html.select("[data-link-postings] a")]
    assert f"http://localhost/postings/{posting.id}" in hrefs
    assert "http://localhost/postings" in hrefs


def test_a_bounced_email_says_so_and_what_the_server_said(
    mail_app, smtp, testapp, dbsession, firm, staff, account
):
    smtp.refuse("nobody@example.test")
    sent = send_link(mail_app, staff, account, emails=["nobody@example.test"])
    smtp.stop()
    down = send_link(mail_app, staff, account, emails=["ana@example.test"])

    login(testapp, staff)
    bounced = testapp.get(f"/links/{sent['link_id']}")
    [email] = rows(bounced, "[data-link-email]")
    assert email[:3] == ["Payment link", "nobody@example.test", "Bounced"]
    assert "No such user here" in email[4]
    assert email[3].startswith("Queued")
    waiting = testapp.get(f"/links/{down['link_id']}")
    [email] = rows(waiting, "[data-link-email]")
    assert email[2] == "Retrying (1 attempt failed)"
    assert "ConnectionRefusedError" in email[4]


def test_a_link_made_to_be_copied_has_no_emails_and_no_postings(
    app, testapp, dbsession, staff, account
):
    link, _token = create_link(
        dbsession, app.registry["clientpay.encryptor"], None, NewLink(account, amount_minor=1_000)
    )
    dbsession.flush()
    login(testapp, staff)
    page = testapp.get(f"/links/{link.id}")
    assert page.html.select("[data-link-email]") == []
    assert "No emails sent to the client" in page.html.select_one("[data-link-emails]").text
    assert page.html.select("[data-link-postings]") == []


def test_another_firms_emails_are_not_shown(
    mail_app, smtp, testapp, dbsession, firm, staff, account
):
    sent = send_link(mail_app, staff, account)
    other = factories.FirmFactory()
    # A row that claims this link but belongs to another firm is not this link's email.
    dbsession.add(
        OutboxMessage(
            firm_id=other.id,
            kind=KIND_RECEIPT,
            link_id=sent["link_id"],
            recipients=["spy@other.test"],
        )
    )
    dbsession.flush()
    login(testapp, staff)
    page = testapp.get(f"/links/{sent['link_id']}")
    assert [e[1] for e in rows(page, "[data-link-email]")] == ["ana@example.test"]


def test_every_attempt_to_pay_is_shown_with_how_it_ended(app, testapp, dbsession, staff, account):
    link, token = create_link(
        dbsession, app.registry["clientpay.encryptor"], None, NewLink(account, amount_minor=5_000)
    )
    dbsession.flush()
    payer = webtest.TestApp(app, extra_environ={"HTTP_HOST": "localhost"})
    refused = tokenize(payer, card("4000000000009995"))
    pay(payer, token, submission(refused, "50.00", payer_name="Pat Payer"), status=402)
    paid = pay(payer, token, submission(tokenize(payer, card()), "50.00"), status=201).json
    # A stranger's attempt at another firm's link is not this link's.
    other_account = factories.MerchantAccountFactory()
    _, other_token = create_link(
        dbsession,
        app.registry["clientpay.encryptor"],
        None,
        NewLink(other_account, amount_minor=5_000),
    )
    dbsession.flush()
    pay(payer, other_token, submission(tokenize(payer, card()), "50.00"), status=201)

    login(testapp, staff)
    page = testapp.get(f"/links/{link.id}")

    attempts = rows(page, "[data-link-payment]")
    assert [a[5] for a in attempts] == ["Not paid: insufficient funds", "Paid"]
    assert [a[0] for a in attempts] == ["—", paid["receipt_number"]]
    assert attempts[0][4].startswith("Pat Payer")
    assert [r["data-link-payment"] for r in page.html.select("[data-link-payment]")] == [
        "failed",
        "succeeded",
    ]


def test_an_attempt_still_waiting_says_for_what(app, testapp, dbsession, staff, account):
    link, _token = create_link(
        dbsession, app.registry["clientpay.encryptor"], None, NewLink(account, amount_minor=5_000)
    )
    for key, waiting in (
        ("waiting-3ds", {"awaiting_authentication": True}),
        ("waiting-deposits", {"verification_url": "https://verify.example.test/x"}),
        ("clearing", {}),
    ):
        dbsession.add(
            Payment(
                firm_id=link.firm_id,
                link_id=link.id,
                status="processing",
                amount_minor=5_000,
                currency="USD",
                idempotency_key=key,
                processor_key=f"pk_{key}",
                **waiting,
            )
        )
    dbsession.flush()
    login(testapp, staff)
    page = testapp.get(f"/links/{link.id}")
    assert [a[5] for a in rows(page, "[data-link-payment]")] == [
        "Waiting for the payer's bank check (3-D Secure)",
        "Waiting for the payer to verify the bank account",
        "Bank debit clearing",
    ]
