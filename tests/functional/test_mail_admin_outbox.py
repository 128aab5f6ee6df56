"""The admin Outbox page: what was sent, what waits, what failed, and "Retry now"."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
import webtest
from pyramid.router import Router
from sqlalchemy import select

from clientpay_connect.accounts.models import AuditEvent
from clientpay_connect.admin.models import MerchantAccount
from clientpay_connect.db import utcnow
from clientpay_connect.links.models import EMAIL_FAILED, EMAIL_SENT, PaymentLink
from clientpay_connect.mail.models import (
    KIND_LINK,
    KIND_RECEIPT,
    OUTBOX_FAILED,
    OUTBOX_PENDING,
    OUTBOX_SENDING,
    OUTBOX_SENT,
    OutboxMessage,
)
from tests import factories
from tests.conftest import login
from tests.support.smtp import send_link


@pytest.fixture
def browser(mail_app: Router, client_ip: str) -> webtest.TestApp:
    return webtest.TestApp(
        mail_app, extra_environ={"REMOTE_ADDR": client_ip, "HTTP_HOST": "localhost"}
    )


@pytest.fixture
def account(firm: Any) -> MerchantAccount:
    return factories.MerchantAccountFactory(firm=firm)


def failed_link_email(dbsession: Any, sent: dict[str, Any]) -> OutboxMessage:
    """Turn a delivered link email into one that ran out of attempts."""
    row = dbsession.get(OutboxMessage, sent["outbox_id"], populate_existing=True)
    row.status, row.attempts, row.last_error = OUTBOX_FAILED, 8, "ConnectionRefusedError: down"
    dbsession.get(PaymentLink, sent["link_id"]).email_status = EMAIL_FAILED
    dbsession.flush()
    return row


def outbox_table(page: webtest.TestResponse) -> list[dict[str, Any]]:
    return [
        {
            "id": int(tr["data-outbox-id"]),
            "cells": [td.get_text(" ", strip=True) for td in tr.find_all("td")],
            "retry": tr.find("button", string="Retry now") is not None,
        }
        for tr in page.html.select("table.outbox tbody tr")
    ]


def test_admins_see_every_message_newest_first_with_its_state(
    browser, mail_app, smtp, dbsession, firm, admin, staff, account
):
    first = send_link(mail_app, staff, account, emails=["one@example.test"], invoice_number="A-1")
    second = send_link(mail_app, staff, account, emails=["two@example.test"], invoice_number="B-2")
    failed_link_email(dbsession, second)
    waiting = OutboxMessage(
        firm_id=firm.id, kind=KIND_RECEIPT, recipients=["pat@example.test"],
        status=OUTBOX_PENDING, attempts=2, last_error="SMTPServerDisconnected: gone",
        next_attempt_at=utcnow() + dt.timedelta(minutes=5),
    )  # fmt: skip
    other_firm = factories.FirmFactory()
    dbsession.add_all(
        [waiting, OutboxMessage(firm_id=other_firm.id, kind=KIND_LINK, recipients=["x@other.test"])]
    )
    dbsession.flush()

    login(browser, admin)
    rows = outbox_table(browser.get("/admin/outbox"))

    assert [r["id"] for r in rows] == [waiting.id, second["outbox_id"], first["outbox_id"]]
    newest, failed, sent = rows
    assert newest["cells"][1:3] == ["Receipt", "pat@example.test"]
    assert newest["cells"][4].startswith("pending") and newest["cells"][5] == "2"
    assert newest["cells"][6] == "SMTPServerDisconnected: gone" and newest["retry"]
    assert failed["cells"][1:3] == ["Payment link", "two@example.test"]
    assert failed["cells"][3] == f"Payment request from {firm.name} - invoice B-2"
    assert (failed["cells"][4], failed["cells"][5], failed["retry"]) == ("failed", "8", True)
    assert failed["cells"][6] == "ConnectionRefusedError: down"
    assert sent["cells"][4].startswith("sent") and not sent["retry"]


def test_retry_now_sends_a_failed_message_and_clears_the_links_failure(
    browser, mail_app, smtp, dbsession, admin, staff, account
):
    sent = send_link(mail_app, staff, account, emails=["late@example.test"])
    failed_link_email(dbsession, sent)
    smtp.clear()
    login(browser, admin)

    page = browser.get("/admin/outbox")
    form = page.forms[f"retry-{sent['outbox_id']}"]
    answer = form.submit(status=303).follow()

    assert f"Message {sent['outbox_id']} is being sent again." in answer.text
    [received] = smtp.messages
    assert received.rcpt_tos == ("late@example.test",)
    row = dbsession.get(OutboxMessage, sent["outbox_id"], populate_existing=True)
    assert (row.status, row.attempts, row.last_error) == (OUTBOX_SENT, 9, "")
    link = dbsession.get(PaymentLink, sent["link_id"], populate_existing=True)
    assert link.email_status == EMAIL_SENT
    [event] = dbsession.execute(
        select(AuditEvent).where(AuditEvent.action == "mail.retried")
    ).scalars()
    assert (event.target_id, event.actor_user_id) == (str(row.id), admin.id)


def test_retry_needs_the_forms_csrf_token(
    browser, mail_app, smtp, dbsession, admin, staff, account
):
    sent = send_link(mail_app, staff, account)
    failed_link_email(dbsession, sent)
    smtp.clear()
    login(browser, admin)

    browser.post(f"/admin/outbox/{sent['outbox_id']}/retry", status=403)

    assert smtp.messages == []
    row = dbsession.get(OutboxMessage, sent["outbox_id"], populate_existing=True)
    assert row.status == OUTBOX_FAILED


def test_another_firms_message_cannot_be_retried(browser, mail_app, smtp, dbsession, admin):
    theirs = OutboxMessage(
        firm_id=factories.FirmFactory().id, kind=KIND_LINK, recipients=["x@other.test"],
        status=OUTBOX_FAILED,
    )  # fmt: skip
    dbsession.add(theirs)
    dbsession.flush()
    login(browser, admin)
    token = browser.get("/admin/outbox").html.find("meta", {"name": "csrf-token"})["content"]

    browser.post(f"/admin/outbox/{theirs.id}/retry", {"csrf_token": token}, status=404)

    assert dbsession.get(OutboxMessage, theirs.id, populate_existing=True).status == OUTBOX_FAILED


def test_staff_cannot_open_the_outbox(browser, staff):
    login(browser, staff)
    browser.get("/admin/outbox", status=403)


def test_signed_out_people_are_sent_to_sign_in(browser):
    answer = browser.get("/admin/outbox", status=302)
    assert "/login" in answer.location


@pytest.mark.parametrize("status", [OUTBOX_SENT, OUTBOX_SENDING])
def test_a_message_that_is_sent_or_being_sent_is_not_retried(
    browser, mail_app, smtp, dbsession, admin, staff, account, status
):
    sent = send_link(mail_app, staff, account)
    row = dbsession.get(OutboxMessage, sent["outbox_id"], populate_existing=True)
    row.status = status
    dbsession.flush()
    smtp.clear()
    login(browser, admin)
    token = browser.get("/admin/outbox").html.find("meta", {"name": "csrf-token"})["content"]

    answer = browser.post(f"/admin/outbox/{row.id}/retry", {"csrf_token": token}, status=303)

    assert f"is {status}; nothing to retry" in answer.follow().text
    assert smtp.messages == []
    assert dbsession.get(OutboxMessage, row.id, populate_existing=True).status == status
