"""The links API: Quick Link, one link, cancel, balance links; through WebTest, checked in
the database."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from clientpay_connect.accounts.models import AuditEvent
from clientpay_connect.admin.models import FirmSettings
from clientpay_connect.crypto import sha256_hex
from clientpay_connect.db import utcnow
from clientpay_connect.links.models import (
    STATUS_CANCELLED,
    STATUS_OUTSTANDING,
    STATUS_PAID,
    STATUS_PARTIALLY_PAID,
    STATUS_PROCESSING,
    PaymentLink,
)
from clientpay_connect.links.services import NewLink, claim, create_link, find_by_token
from clientpay_connect.mail.models import KIND_LINK, OutboxMessage
from tests.conftest import bearer
from tests.factories import FirmFactory, MerchantAccountFactory, UserFactory

# What API.md promises in every link object.
CONTRACT_FIELDS = {
    "id",
    "url",
    "status",
    "source",
    "merchant_account_id",
    "amount",
    "amount_paid",
    "currency",
    "invoice_number",
    "invoice_date",
    "due_date",
    "recipient_name",
    "emails",
    "message",
    "created_at",
    "sent_at",
    "expires_at",
    "paid_at",
    "cancelled_at",
    "created_by",
    "reminders_sent",
}


@pytest.fixture
def account(staff: Any) -> Any:
    return MerchantAccountFactory(firm=staff.firm, name="Operating")


@pytest.fixture
def other_firm_user() -> Any:
    return UserFactory(firm=FirmFactory())


def make_link(
    dbsession: Session, app: Any, account: Any, amount_minor: int = 50_000, **fields: Any
) -> tuple[PaymentLink, str]:
    link, token = create_link(
        dbsession,
        app.registry["clientpay.encryptor"],
        None,
        NewLink(merchant_account=account, amount_minor=amount_minor, **fields),
    )
    dbsession.flush()
    return link, token


def mark_paid(dbsession: Session, link: PaymentLink, paid_minor: int) -> None:
    """What the payment backend leaves behind after a (partial) payment."""
    link.status = STATUS_PAID if paid_minor >= link.amount_minor else STATUS_PARTIALLY_PAID
    link.amount_paid_minor = paid_minor
    link.paid_at = utcnow()
    dbsession.flush()


def outbox_for(dbsession: Session, link_id: int) -> list[OutboxMessage]:
    return list(
        dbsession.execute(select(OutboxMessage).where(OutboxMessage.link_id == link_id)).scalars()
    )


def count(dbsession: Session, model: Any) -> int:
    return int(dbsession.execute(select(func.count()).select_from(model)).scalar_one())


def reload(dbsession: Session, link_id: int) -> PaymentLink:
    dbsession.expire_all()
    link = dbsession.get(PaymentLink, link_id)
    assert link is not None
    return link


# --- POST /links -----------------------------------------------------------------------


def test_quick_link_answers_with_the_whole_link_object(
    testapp, dbsession, staff, staff_auth, account
):
    body = {
        "merchant_account_id": account.id,
        "amount": "$1,234.50",
        "invoice_number": "INV-1001",
        "invoice_date": "2025-03-01",
        "due_date": "2025-03-31",
        "recipient_name": "Dana Client",
        "message": "Thanks for your business.",
        "emails": ["Dana@Example.test"],
        "send_email": True,
    }
    response = testapp.post_json("/api/v1/links", body, headers=staff_auth, status=201)
    link = response.json

    assert set(link) >= CONTRACT_FIELDS
    assert link["status"] == "outstanding"
    assert link["source"] == "quick_link"
    assert link["merchant_account_id"] == account.id
    assert (link["amount"], link["amount_paid"], link["currency"]) == ("1234.50", "0.00", "USD")
    assert (link["invoice_date"], link["due_date"]) == ("2025-03-01", "2025-03-31")
    assert link["emails"] == ["dana@example.test"]
    assert link["message"] == "Thanks for your business."
    assert link["created_by"] == staff.name
    assert link["email_status"] == "queued"
    assert link["reminders_sent"] == 0
    assert link["paid_at"] is None and link["cancelled_at"] is None
    created = dt.datetime.fromisoformat(link["created_at"])
    expires = dt.datetime.fromisoformat(link["expires_at"])
    assert expires - created == dt.timedelta(days=30)  # the firm's default expiry

    assert link["url"].startswith("http://localhost/pay/")
    token = link["url"].rsplit("/", 1)[1]
    found = find_by_token(dbsession, token)
    assert found is not None and found.id == link["id"]
    assert found.amount_minor == 123_450


def test_quick_link_writes_an_audit_event_without_the_secret(
    testapp, dbsession, staff_auth, account
):
    body = {"merchant_account_id": account.id, "amount": "10"}
    link = testapp.post_json("/api/v1/links", body, headers=staff_auth, status=201).json
    events = dbsession.execute(
        select(AuditEvent).where(AuditEvent.action == "link.created")
    ).scalars()
    (event,) = [e for e in events if e.target_id == str(link["id"])]
    assert event.details["amount"] == "10.00"
    token = link["url"].rsplit("/", 1)[1]
    assert token not in str(event.details)


def test_a_blank_message_becomes_the_firms_default(testapp, dbsession, staff, staff_auth, account):
    settings = dbsession.get(FirmSettings, staff.firm_id)
    settings.default_email_message = "Pay us at your convenience."
    dbsession.flush()
    body = {"merchant_account_id": account.id, "amount": "10", "message": "  "}
    link = testapp.post_json("/api/v1/links", body, headers=staff_auth, status=201).json
    assert link["message"] == "Pay us at your convenience."


def test_every_wrong_field_is_reported_at_once(
    testapp, dbsession, staff_auth, other_firm_user, account
):
    someone_elses = MerchantAccountFactory(firm=other_firm_user.firm)
    links_before = count(dbsession, PaymentLink)
    body = {
        "merchant_account_id": someone_elses.id,
        "amount": "-5",
        "invoice_number": "X" * 101,
        "invoice_date": "2025-02-30",
        "due_date": "next week",
        "recipient_name": "R" * 201,
        "emails": ["good@example.test", "not-an-address", "a@b.test; bad@"],
        "send_email": True,
        "locale": "fr",
    }
    response = testapp.post_json("/api/v1/links", body, headers=staff_auth, status=422)
    errors = {e["field"]: e["message"] for e in response.json["errors"]}

    assert set(errors) == {
        "merchant_account_id",
        "amount",
        "invoice_number",
        "invoice_date",
        "due_date",
        "recipient_name",
        "emails.1",
        "emails.2",
        "locale",
    }
    assert response.json["error"] == "validation_error"
    assert "not-an-address" in errors["emails.1"]
    assert "bad@" in errors["emails.2"] and "a@b.test" not in errors["emails.2"]
    assert "more than zero" in errors["amount"]
    assert count(dbsession, PaymentLink) == links_before
    assert count(dbsession, OutboxMessage) == 0


def test_missing_required_fields_are_reported_together(testapp, staff_auth):
    response = testapp.post_json("/api/v1/links", {}, headers=staff_auth, status=422)
    assert {e["field"] for e in response.json["errors"]} == {"merchant_account_id", "amount"}


def test_an_amount_with_too_many_decimals_is_refused(testapp, staff_auth, account):
    body = {"merchant_account_id": account.id, "amount": "10.005"}
    response = testapp.post_json("/api/v1/links", body, headers=staff_auth, status=422)
    assert response.json["errors"] == [
        {"field": "amount", "message": "An amount in USD has at most 2 decimals."}
    ]


def test_a_due_date_before_the_invoice_date_is_refused(testapp, staff_auth, account):
    body = {
        "merchant_account_id": account.id,
        "amount": "10",
        "invoice_date": "2025-03-10",
        "due_date": "2025-03-01",
    }
    response = testapp.post_json("/api/v1/links", body, headers=staff_auth, status=422)
    assert [e["field"] for e in response.json["errors"]] == ["due_date"]


def test_another_firms_merchant_account_is_a_field_error(
    testapp, staff_auth, other_firm_user, account
):
    theirs = MerchantAccountFactory(firm=other_firm_user.firm)
    body = {"merchant_account_id": theirs.id, "amount": "10"}
    response = testapp.post_json("/api/v1/links", body, headers=staff_auth, status=422)
    assert [e["field"] for e in response.json["errors"]] == ["merchant_account_id"]


@pytest.mark.parametrize("account_id", [0, 2**31, 10**20])
def test_an_impossible_merchant_account_is_a_field_error(testapp, staff_auth, account_id):
    body = {"merchant_account_id": account_id, "amount": "10"}
    response = testapp.post_json("/api/v1/links", body, headers=staff_auth, status=422)
    assert [e["field"] for e in response.json["errors"]] == ["merchant_account_id"]


def test_an_inactive_merchant_account_is_a_field_error(testapp, staff, staff_auth):
    closed = MerchantAccountFactory(firm=staff.firm, active=False)
    body = {"merchant_account_id": closed.id, "amount": "10"}
    response = testapp.post_json("/api/v1/links", body, headers=staff_auth, status=422)
    assert [e["field"] for e in response.json["errors"]] == ["merchant_account_id"]


def test_send_email_needs_an_address(testapp, dbsession, staff_auth, account):
    body = {"merchant_account_id": account.id, "amount": "10", "send_email": True, "emails": []}
    response = testapp.post_json("/api/v1/links", body, headers=staff_auth, status=422)
    assert [e["field"] for e in response.json["errors"]] == ["emails"]
    assert count(dbsession, OutboxMessage) == 0


def test_a_type_mismatch_is_refused_by_the_schema(testapp, staff_auth, account):
    body = {"merchant_account_id": account.id, "amount": 10.5}
    response = testapp.post_json("/api/v1/links", body, headers=staff_auth, status=422)
    assert [e["field"] for e in response.json["errors"]] == ["amount"]


def test_sending_writes_the_outbox_row_with_the_link(testapp, dbsession, staff_auth, account):
    body = {
        "merchant_account_id": account.id,
        "amount": "75",
        "emails": ["a@example.test, b@example.test"],
        "send_email": True,
    }
    link = testapp.post_json("/api/v1/links", body, headers=staff_auth, status=201).json
    (message,) = outbox_for(dbsession, link["id"])
    assert message.kind == KIND_LINK
    assert message.recipients == ["a@example.test", "b@example.test"]
    assert message.firm_id == reload(dbsession, link["id"]).firm_id
    # Only references are queued: the link's secret is rendered at send time.
    token = link["url"].rsplit("/", 1)[1]
    assert token not in str(message.params) and token not in message.subject


def test_not_sending_writes_no_outbox_row(testapp, dbsession, staff_auth, account):
    body = {"merchant_account_id": account.id, "amount": "75", "emails": ["a@example.test"]}
    link = testapp.post_json("/api/v1/links", body, headers=staff_auth, status=201).json
    assert outbox_for(dbsession, link["id"]) == []
    assert link["email_status"] == "not_sent"
    assert link["emails"] == ["a@example.test"]


def test_the_links_secret_is_not_stored_in_plain_text(testapp, dbsession, staff_auth, account):
    body = {"merchant_account_id": account.id, "amount": "75"}
    link = testapp.post_json("/api/v1/links", body, headers=staff_auth, status=201).json
    token = link["url"].rsplit("/", 1)[1]
    row = dbsession.execute(
        select(PaymentLink.__table__).where(PaymentLink.__table__.c.id == link["id"])
    ).one()
    stored = " ".join(str(value) for value in row)
    assert token not in stored
    assert link["url"] not in stored
    assert row.token_hash == sha256_hex(token)


def test_staff_without_credentials_get_401(testapp, account):
    testapp.post_json("/api/v1/links", {"amount": "1"}, status=401)


# --- GET /links/{id} ---------------------------------------------------------------------


def test_get_returns_the_same_link_object(testapp, staff_auth, account):
    body = {"merchant_account_id": account.id, "amount": "99.99", "invoice_number": "A-1"}
    created = testapp.post_json("/api/v1/links", body, headers=staff_auth, status=201).json
    fetched = testapp.get(f"/api/v1/links/{created['id']}", headers=staff_auth).json
    assert fetched == created


def test_another_firms_link_is_not_found(testapp, dbsession, app, staff_auth, other_firm_user):
    theirs, _ = make_link(dbsession, app, MerchantAccountFactory(firm=other_firm_user.firm))
    response = testapp.get(f"/api/v1/links/{theirs.id}", headers=staff_auth, status=404)
    assert response.json["error"] == "not_found"
    assert "amount" not in response.text


@pytest.mark.parametrize("link_id", ["999999999", "99999999999999999", "9" * 30])
def test_an_unknown_link_is_not_found(testapp, staff_auth, link_id):
    response = testapp.get(f"/api/v1/links/{link_id}", headers=staff_auth, status=404)
    assert response.json["error"] == "not_found"


# --- POST /links/cancel ------------------------------------------------------------------


def test_only_outstanding_links_cancel(
    testapp, dbsession, app, staff, staff_auth, account, other_firm_user
):
    outstanding, _ = make_link(dbsession, app, account)
    paid, _ = make_link(dbsession, app, account)
    mark_paid(dbsession, paid, paid.amount_minor)
    partial, _ = make_link(dbsession, app, account)
    mark_paid(dbsession, partial, 100)
    claimed, _ = make_link(dbsession, app, account)
    assert claim(dbsession, claimed.id)
    theirs, _ = make_link(dbsession, app, MerchantAccountFactory(firm=other_firm_user.firm))

    ids = [outstanding.id, paid.id, partial.id, claimed.id, theirs.id, 10**17, 0, outstanding.id]
    result = testapp.post_json("/api/v1/links/cancel", {"ids": ids}, headers=staff_auth).json

    assert result["cancelled"] == [outstanding.id]
    assert result["skipped"] == [
        {"id": paid.id, "reason": "not_outstanding", "status": "paid"},
        {"id": partial.id, "reason": "not_outstanding", "status": "partially_paid"},
        {"id": claimed.id, "reason": "not_outstanding", "status": "processing"},
        {"id": theirs.id, "reason": "not_found"},
        {"id": 10**17, "reason": "not_found"},
        {"id": 0, "reason": "not_found"},
    ]
    assert reload(dbsession, outstanding.id).status == STATUS_CANCELLED
    assert reload(dbsession, outstanding.id).cancelled_at is not None
    assert reload(dbsession, paid.id).status == STATUS_PAID
    assert reload(dbsession, partial.id).status == STATUS_PARTIALLY_PAID
    assert reload(dbsession, claimed.id).status == STATUS_PROCESSING
    assert reload(dbsession, theirs.id).status == STATUS_OUTSTANDING


def test_cancelling_twice_skips_the_second_time(testapp, dbsession, app, staff_auth, account):
    link, _ = make_link(dbsession, app, account)
    testapp.post_json("/api/v1/links/cancel", {"ids": [link.id]}, headers=staff_auth)
    again = testapp.post_json("/api/v1/links/cancel", {"ids": [link.id]}, headers=staff_auth)
    assert again.json == {
        "cancelled": [],
        "skipped": [{"id": link.id, "reason": "not_outstanding", "status": "cancelled"}],
    }


def test_a_cancellation_is_audited(testapp, dbsession, app, staff, staff_auth, account):
    link, _ = make_link(dbsession, app, account)
    testapp.post_json("/api/v1/links/cancel", {"ids": [link.id]}, headers=staff_auth)
    event = dbsession.execute(
        select(AuditEvent).where(
            AuditEvent.action == "link.cancelled", AuditEvent.target_id == str(link.id)
        )
    ).scalar_one()
    assert event.actor_user_id == staff.id


def test_cancel_needs_ids(testapp, staff_auth):
    response = testapp.post_json(
        "/api/v1/links/cancel", {"ids": []}, headers=staff_auth, status=422
    )
    assert response.json["errors"][0]["field"] == "ids"


# --- POST /links/{id}/balance-link -------------------------------------------------------


def test_a_partly_paid_link_gets_a_balance_link(testapp, dbsession, app, staff_auth, account):
    parent, _ = make_link(
        dbsession,
        app,
        account,
        amount_minor=100_000,
        invoice_number="INV-7",
        recipient_name="Dana Client",
        emails=["dana@example.test"],
        message="Please pay.",
        due_date=dt.date(2025, 4, 30),
    )
    mark_paid(dbsession, parent, 40_000)

    url = f"/api/v1/links/{parent.id}/balance-link"
    balance = testapp.post_json(url, {}, headers=staff_auth, status=201).json

    assert balance["amount"] == "600.00"
    assert balance["status"] == "outstanding"
    assert balance["parent_link_id"] == parent.id
    assert balance["invoice_number"] == "INV-7"
    assert balance["due_date"] == "2025-04-30"
    assert balance["recipient_name"] == "Dana Client"
    assert balance["emails"] == ["dana@example.test"]
    assert balance["message"] == "Please pay."
    assert (
        balance["url"] != testapp.get(f"/api/v1/links/{parent.id}", headers=staff_auth).json["url"]
    )
    # Not emailed unless asked.
    assert balance["email_status"] == "not_sent"
    assert outbox_for(dbsession, balance["id"]) == []
    again = testapp.get(f"/api/v1/links/{parent.id}", headers=staff_auth).json
    assert again["balance_link_id"] == balance["id"]


def test_only_one_balance_link_per_link(testapp, dbsession, app, staff_auth, account):
    parent, _ = make_link(dbsession, app, account, amount_minor=10_000)
    mark_paid(dbsession, parent, 2_500)
    url = f"/api/v1/links/{parent.id}/balance-link"
    first = testapp.post_json(url, {}, headers=staff_auth, status=201).json
    second = testapp.post_json(url, {}, headers=staff_auth, status=409).json
    assert second["error"] == "balance_link_exists"
    assert second["balance_link_id"] == first["id"]


def test_the_database_itself_refuses_a_second_balance_link(dbsession, app, account):
    """The backstop under the row lock: whatever path writes it, no link has two."""
    parent, _ = make_link(dbsession, app, account, amount_minor=10_000)
    make_link(dbsession, app, account, amount_minor=5_000, parent_link_id=parent.id)
    with pytest.raises(IntegrityError), dbsession.begin_nested():
        make_link(dbsession, app, account, amount_minor=5_000, parent_link_id=parent.id)


@pytest.mark.parametrize("state", ["fully_paid", "outstanding", "cancelled"])
def test_no_balance_no_balance_link(testapp, dbsession, app, staff_auth, account, state):
    link, _ = make_link(dbsession, app, account, amount_minor=10_000)
    if state == "fully_paid":
        mark_paid(dbsession, link, 10_000)
    elif state == "cancelled":
        link.status = STATUS_CANCELLED
        dbsession.flush()
    url = f"/api/v1/links/{link.id}/balance-link"
    response = testapp.post_json(url, {}, headers=staff_auth, status=409)
    assert response.json["error"] == "no_balance"


def test_a_balance_link_is_emailed_when_asked_and_the_original_was(
    testapp, dbsession, app, staff_auth, account
):
    body = {
        "merchant_account_id": account.id,
        "amount": "200",
        "emails": ["dana@example.test"],
        "send_email": True,
    }
    parent = testapp.post_json("/api/v1/links", body, headers=staff_auth, status=201).json
    mark_paid(dbsession, reload(dbsession, parent["id"]), 5_000)

    url = f"/api/v1/links/{parent['id']}/balance-link"
    balance = testapp.post_json(url, {"send_email": True}, headers=staff_auth, status=201).json

    assert balance["amount"] == "150.00"
    assert balance["email_status"] == "queued"
    (message,) = outbox_for(dbsession, balance["id"])
    assert message.recipients == ["dana@example.test"]


def test_emailing_a_balance_link_needs_an_emailed_original(
    testapp, dbsession, app, staff_auth, account
):
    parent, _ = make_link(dbsession, app, account, amount_minor=10_000)
    mark_paid(dbsession, parent, 1_000)
    url = f"/api/v1/links/{parent.id}/balance-link"
    response = testapp.post_json(url, {"send_email": True}, headers=staff_auth, status=422)
    assert [e["field"] for e in response.json["errors"]] == ["send_email"]
    assert count(dbsession, PaymentLink) == 1


def test_another_firms_link_gets_no_balance_link(
    testapp, dbsession, app, staff_auth, other_firm_user
):
    theirs, _ = make_link(dbsession, app, MerchantAccountFactory(firm=other_firm_user.firm))
    mark_paid(dbsession, theirs, 1_000)
    url = f"/api/v1/links/{theirs.id}/balance-link"
    body = testapp.post_json(url, {"send_email": True}, headers=staff_auth, status=404).json
    assert (body["error"], body["message"]) == ("not_found", "No such link.")
    # Nothing was made, nor anything said of their link beyond "not found".
    assert set(body) == {"error", "message", "errors"}
    assert count(dbsession, PaymentLink) == 1
    assert count(dbsession, OutboxMessage) == 0
    assert reload(dbsession, theirs.id).status == STATUS_PARTIALLY_PAID


def test_a_balance_link_body_is_optional(testapp, dbsession, app, staff_auth, account):
    parent, _ = make_link(dbsession, app, account, amount_minor=10_000)
    mark_paid(dbsession, parent, 1_000)
    response = testapp.post(f"/api/v1/links/{parent.id}/balance-link", headers=staff_auth)
    assert response.status_int == 201
    assert (response.json["amount"], response.json["parent_link_id"]) == ("90.00", parent.id)
    balance = reload(dbsession, response.json["id"])
    assert (balance.parent_link_id, balance.amount_minor, balance.status) == (
        parent.id,
        9_000,
        STATUS_OUTSTANDING,
    )
    # Without a body nothing is emailed.
    assert (balance.email_status, outbox_for(dbsession, balance.id)) == ("not_sent", [])


def test_an_admin_of_the_same_firm_sees_staffs_links(
    testapp, dbsession, admin, staff_auth, account
):
    body = {"merchant_account_id": account.id, "amount": "10"}
    link = testapp.post_json("/api/v1/links", body, headers=staff_auth, status=201).json
    seen = testapp.get(f"/api/v1/links/{link['id']}", headers=bearer(dbsession, admin), status=200)
    assert seen.json == link
    assert reload(dbsession, link["id"]).firm_id == admin.firm_id
