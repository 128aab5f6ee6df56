"""Notifications: each event emails exactly the firm's recipients who chose it (addresses, and
users at their current address while active), through the real outbox and a real SMTP server
on loopback; the daily digest with a controlled clock (``now`` is the job's argument).

The calendar: 2030-06-03 is a Monday.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import webtest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from clientpay_connect.accounts.models import User
from clientpay_connect.admin.models import FirmSettings, NotificationRecipient
from clientpay_connect.links.models import EMAIL_SENT, STATUS_PAID, PaymentLink
from clientpay_connect.links.services import NewLink, create_link
from clientpay_connect.links.tasks import EXPIRE_JOB
from clientpay_connect.mail.models import KIND_REMINDER, OUTBOX_FAILED, OutboxMessage
from clientpay_connect.notifications.digest import DIGEST_JOB
from clientpay_connect.notifications.models import NotificationDigest
from clientpay_connect.pay.models import PAYMENT_SUCCEEDED, Payment
from clientpay_connect.reminders.services import SEND_JOB
from tests import factories
from tests.support.clock import every
from tests.support.payments import SUCCEEDS, card, new_link, pay, submission, tokenize
from tests.support.smtp import send_link

NEW_YORK = ZoneInfo("America/New_York")
DECLINED = "4000000000000002"
EVERY_EVENT = (
    "payment_received",
    "payment_failed",
    "email_failed",
    "link_expired",
    "reminder_failed",
    "daily_digest",
    "posting_failed",
)


def local(day: int, hour: int, minute: int = 0) -> dt.datetime:
    """A moment of June 2030 in New York (the firms' zone here)."""
    return dt.datetime(2030, 6, day, hour, minute, tzinfo=NEW_YORK)


@pytest.fixture
def account(firm: Any) -> Any:
    return factories.MerchantAccountFactory(firm=firm)


@pytest.fixture
def other_firm(dbsession: Any) -> Any:
    return factories.FirmFactory()


def subscribe(dbsession: Any, firm: Any, event: str) -> set[str]:
    """The firm's recipients in every shape, and another firm's: the addresses that must
    receive ``event`` in ``firm``, and only they."""
    active_user = factories.UserFactory(firm=firm)
    gone_user = factories.UserFactory(firm=firm, active=False)
    other = factories.FirmFactory()
    outsider = factories.UserFactory(firm=other)
    others = [e for e in EVERY_EVENT if e != event]
    dbsession.add_all(
        [
            NotificationRecipient(firm_id=firm.id, email="books@firm.test", events=[event]),
            # One of the firm's users, at the address the user has now (not the one chosen).
            NotificationRecipient(
                firm_id=firm.id, email="old@firm.test", user_id=active_user.id, events=[event]
            ),
            # A deactivated user is not emailed.
            NotificationRecipient(
                firm_id=firm.id, email=gone_user.email, user_id=gone_user.id, events=[event]
            ),
            # Everything but this event.
            NotificationRecipient(firm_id=firm.id, email="busy@firm.test", events=others),
            # Another firm's, for this event; and a row naming another firm's user.
            NotificationRecipient(firm_id=other.id, email="them@other.test", events=[event]),
            NotificationRecipient(
                firm_id=firm.id, email=outsider.email, user_id=outsider.id, events=[event]
            ),
        ]
    )
    dbsession.flush()
    return {"books@firm.test", active_user.email}


def subscribe_their(dbsession: Any, other_firm: Any, event: str) -> None:
    """The other firm's one recipient of ``event``: their@other.test."""
    dbsession.add(
        NotificationRecipient(firm_id=other_firm.id, email="their@other.test", events=[event])
    )
    dbsession.flush()


def received_by(smtp: Any, subject_start: str) -> list[Any]:
    return [m for m in smtp.messages if str(m.message["Subject"]).startswith(subject_start)]


def addressees(messages: list[Any]) -> set[str]:
    return {address for m in messages for address in m.rcpt_tos}


def run(mail_app: Any, job: str, now: dt.datetime) -> Any:
    return mail_app.registry["clientpay.jobs"].run_now(job, now.astimezone(dt.UTC))


# The events.


def pay_a_link(
    mail_app: Any, dbsession: Any, account: Any, invoice: str, card_number: str, status: int
) -> None:
    """A $450.00 link for ``invoice`` paid in full through the payment API, by ``card_number``."""
    _link, token = new_link(
        dbsession, mail_app.registry, account, 45_000, invoice_number=invoice, recipient_name="Ana"
    )
    payer = webtest.TestApp(mail_app, extra_environ={"HTTP_HOST": "localhost"})
    pay(payer, token, submission(tokenize(payer, card(card_number)), "$450.00"), status=status)


def test_a_payment_emails_the_recipients_who_chose_payment_received(
    mail_app, smtp, dbsession, firm, account
):
    expected = subscribe(dbsession, firm, "payment_received")

    pay_a_link(mail_app, dbsession, account, "INV-7", SUCCEEDS, 201)

    [notice] = received_by(smtp, "Payment received")
    assert set(notice.rcpt_tos) == expected
    assert notice.message["Subject"] == "Payment received: $450.00 for invoice INV-7"
    assert "Paid by: Pat Payer <pat@example.test>" in notice.text
    assert "Paid with: Visa ending in 4242" in notice.text


def test_a_refused_payment_emails_the_recipients_who_chose_payment_failed(
    mail_app, smtp, dbsession, firm, account
):
    expected = subscribe(dbsession, firm, "payment_failed")

    pay_a_link(mail_app, dbsession, account, "INV-9", DECLINED, 402)

    [notice] = received_by(smtp, "Payment failed")
    assert set(notice.rcpt_tos) == expected
    assert notice.message["Subject"] == "Payment failed: $450.00 for invoice INV-9"
    assert "Pat Payer <pat@example.test> tried to pay $450.00" in notice.text
    assert "Invoice INV-9, Ana: $450.00" in notice.text
    assert len(smtp.messages) == 1


def test_expired_links_email_the_recipients_who_chose_link_expired(
    mail_app, smtp, dbsession, firm, other_firm, account
):
    expected = subscribe(dbsession, firm, "link_expired")
    subscribe_their(dbsession, other_firm, "link_expired")
    now = dt.datetime(2030, 6, 3, 15, 0, tzinfo=dt.UTC)
    past = now - dt.timedelta(hours=1)
    mine = [
        expiring_link(dbsession, mail_app, account, past, "INV-1", "Ana Client", 123_450),
        expiring_link(dbsession, mail_app, account, past, "INV-2", "Bo Client", 5_000),
    ]
    not_yet = expiring_link(dbsession, mail_app, account, now + dt.timedelta(days=1), "INV-3")
    theirs = expiring_link(
        dbsession,
        mail_app,
        factories.MerchantAccountFactory(firm=other_firm),
        past,
        "THEIRS-1",
    )

    assert run(mail_app, EXPIRE_JOB, now) == 3

    [notice] = received_by(smtp, "2 payment links expired")
    assert set(notice.rcpt_tos) == expected
    assert "2 payment links expired unpaid:" in notice.text
    assert "Invoice INV-1, Ana Client: $1,234.50 (expired Jun 3, 2030, 10:00 AM EDT)" in notice.text
    assert "Invoice INV-2, Bo Client: $50.00" in notice.text
    assert "INV-3" not in notice.text and "THEIRS" not in notice.text
    # The other firm hears of its own link only, in an email of its own.
    [their_notice] = received_by(smtp, "Payment link expired: Invoice THEIRS-1")
    assert their_notice.rcpt_tos == ("their@other.test",)
    assert f"/links/{theirs.id}" in their_notice.text
    # Expiring again expires nothing and tells no one.
    assert run(mail_app, EXPIRE_JOB, now + dt.timedelta(minutes=5)) == 0
    assert len(smtp.messages) == 2
    assert dbsession.get(PaymentLink, not_yet.id, populate_existing=True).status == "outstanding"
    dbsession.expire_all()
    assert {dbsession.get(PaymentLink, link.id).status for link in mine} == {"expired"}


def expiring_link(
    dbsession: Any,
    app: Any,
    account: Any,
    expires_at: dt.datetime,
    invoice_number: str,
    recipient_name: str = "",
    amount_minor: int = 10_000,
) -> PaymentLink:
    link, _token = create_link(
        dbsession,
        app.registry["clientpay.encryptor"],
        None,
        NewLink(
            merchant_account=account,
            amount_minor=amount_minor,
            invoice_number=invoice_number,
            recipient_name=recipient_name,
        ),
    )
    link.expires_at = expires_at
    dbsession.flush()
    return link


def test_a_bounced_link_email_emails_the_recipients_who_chose_email_failed(
    mail_app, smtp, dbsession, firm, staff, account
):
    expected = subscribe(dbsession, firm, "email_failed")
    smtp.refuse("nobody@example.test")

    sent = send_link(
        mail_app, staff, account, invoice_number="INV-5", emails=["nobody@example.test"]
    )

    row = dbsession.get(OutboxMessage, sent["outbox_id"], populate_existing=True)
    # Refused outright: no point trying again.
    assert (row.status, row.attempts) == (OUTBOX_FAILED, 1)
    [notice] = received_by(smtp, "Email bounced")
    assert set(notice.rcpt_tos) == expected
    assert notice.message["Subject"] == "Email bounced: payment link for invoice INV-5"
    assert "the receiving mail server refused it" in notice.text
    assert "To: nobody@example.test" in notice.text
    assert "No such user here" in notice.text
    assert "Amount: $1,234.50" in notice.text


def test_a_failed_reminder_emails_the_recipients_who_chose_reminder_failed(
    mail_app, smtp, dbsession, firm, account
):
    expected = subscribe(dbsession, firm, "reminder_failed")
    settings = dbsession.get(FirmSettings, firm.id)
    settings.time_zone = "America/New_York"
    settings.reminders = [{"days": 1, "relative_to": "due_date", "message": "Please pay."}]
    link, _token = create_link(
        dbsession,
        mail_app.registry["clientpay.encryptor"],
        None,
        NewLink(
            merchant_account=account,
            amount_minor=77_700,
            invoice_number="INV-8",
            recipient_name="Cy Client",
            due_date=dt.date(2030, 6, 4),
            emails=["gone@example.test"],
        ),
    )
    link.sent_at, link.email_status, link.expires_at = local(3, 10), EMAIL_SENT, None
    dbsession.flush()
    smtp.refuse("gone@example.test")

    assert run(mail_app, SEND_JOB, local(5, 10)) == 1

    reminder = dbsession.execute(
        select(OutboxMessage).where(
            OutboxMessage.link_id == link.id, OutboxMessage.kind == KIND_REMINDER
        )
    ).scalar_one()
    assert reminder.status == OUTBOX_FAILED
    [notice] = received_by(smtp, "Payment reminder not delivered")
    assert set(notice.rcpt_tos) == expected
    assert notice.message["Subject"] == "Payment reminder not delivered for invoice INV-8"
    assert "Invoice INV-8, Cy Client: $777.00" in notice.text
    assert "To: gone@example.test" in notice.text
    assert f"/links/{link.id}" in notice.text
    # The link's first email is not what failed: its state is left alone.
    assert dbsession.get(PaymentLink, link.id, populate_existing=True).email_status == EMAIL_SENT


def test_no_subscriber_no_notice_row(mail_app, smtp, dbsession, firm, account):
    dbsession.add(
        NotificationRecipient(firm_id=firm.id, email="books@firm.test", events=["payment_received"])
    )
    now = dt.datetime(2030, 6, 3, 15, 0, tzinfo=dt.UTC)
    link = expiring_link(dbsession, mail_app, account, now - dt.timedelta(hours=1), "INV-1")

    assert run(mail_app, EXPIRE_JOB, now) == 1

    assert smtp.messages == []
    rows = dbsession.execute(select(OutboxMessage).where(OutboxMessage.firm_id == firm.id))
    assert rows.scalars().all() == []
    assert dbsession.get(PaymentLink, link.id, populate_existing=True).status == "expired"


def test_a_user_recipient_follows_the_users_address_and_stops_when_deactivated(
    mail_app, smtp, dbsession, firm, account
):
    user = factories.UserFactory(firm=firm, email=f"first-{uuid.uuid4().hex[:6]}@firm.test")
    dbsession.add(
        NotificationRecipient(
            firm_id=firm.id, email=user.email, user_id=user.id, events=["link_expired"]
        )
    )
    now = dt.datetime(2030, 6, 3, 15, 0, tzinfo=dt.UTC)
    expiring_link(dbsession, mail_app, account, now - dt.timedelta(hours=2), "INV-1")
    user.email = f"renamed-{uuid.uuid4().hex[:6]}@firm.test"
    dbsession.flush()
    run(mail_app, EXPIRE_JOB, now)
    assert addressees(smtp.messages) == {user.email}

    dbsession.get(User, user.id).active = False
    expiring_link(dbsession, mail_app, account, now, "INV-2")
    dbsession.flush()
    run(mail_app, EXPIRE_JOB, now + dt.timedelta(minutes=5))
    assert len(smtp.messages) == 1


# The daily digest.


def paid(
    dbsession: Any,
    app: Any,
    account: Any,
    at: dt.datetime,
    amount_minor: int,
    invoice_number: str,
    payer_name: str = "Pat Payer",
) -> Payment:
    """A link paid in full at ``at``, as the payment service leaves it."""
    link, _token = create_link(
        dbsession,
        app.registry["clientpay.encryptor"],
        None,
        NewLink(merchant_account=account, amount_minor=amount_minor, invoice_number=invoice_number),
    )
    link.status, link.amount_paid_minor, link.paid_at = STATUS_PAID, amount_minor, at
    key = uuid.uuid4().hex
    payment = Payment(
        firm_id=link.firm_id,
        link_id=link.id,
        status=PAYMENT_SUCCEEDED,
        amount_minor=amount_minor,
        currency=link.currency,
        method="card",
        brand="visa",
        last4="4242",
        payer_name=payer_name,
        payer_email="pat@example.test",
        idempotency_key=key,
        processor_key=key,
        receipt_number=f"R-{key[:10]}",
        created_at=at,
        completed_at=at,
    )
    dbsession.add(payment)
    dbsession.flush()
    return payment


def in_new_york(dbsession: Any, *firms: Any) -> None:
    for firm in firms:
        dbsession.get(FirmSettings, firm.id).time_zone = "America/New_York"
    dbsession.flush()


def digests(dbsession: Any, firm: Any) -> list[tuple[str, str, int, bool]]:
    dbsession.expire_all()
    rows = dbsession.execute(
        select(NotificationDigest)
        .where(NotificationDigest.firm_id == firm.id)
        .order_by(NotificationDigest.day)
    ).scalars()
    return [
        (f"{r.first_day:%m-%d}", f"{r.day:%m-%d}", r.payments, r.outbox_message_id is not None)
        for r in rows
    ]


TEN_MINUTES = dt.timedelta(minutes=10)


def test_the_digest_goes_each_morning_once_to_its_subscribers_of_that_firm(
    mail_app, smtp, dbsession, firm, other_firm, account
):
    expected = subscribe(dbsession, firm, "daily_digest")
    subscribe_their(dbsession, other_firm, "daily_digest")
    in_new_york(dbsession, firm, other_firm)
    theirs = factories.MerchantAccountFactory(firm=other_firm)
    paid(dbsession, mail_app, account, local(3, 10, 5), 10_000, "INV-1", "Pat Payer")
    # Late evening in New York is already Tuesday in UTC: still Monday's payment.
    paid(dbsession, mail_app, account, local(3, 23, 30), 5_050, "INV-2", "Quinn Payer")
    paid(dbsession, mail_app, theirs, local(4, 9), 2_500, "THEIRS-1")

    # The workers run every ten minutes from Monday 00:00 to Wednesday noon.
    results = [run(mail_app, DIGEST_JOB, m) for m in every(local(3, 0), local(5, 12), TEN_MINUTES)]

    # Firm: Monday's digest (Tuesday 7:00); Tuesday had no payments, so no email.
    # The other firm: its Tuesday's digest on Wednesday.
    assert sum(results) == 2
    [digest] = received_by(smtp, "Daily digest: 2 payments")
    assert set(digest.rcpt_tos) == expected
    assert digest.message["Subject"] == "Daily digest: 2 payments, $150.50, Monday, June 3, 2030"
    lines = [
        "Payments received Monday, June 3, 2030: 2 payments, $150.50 in all.",
        "Jun 3, 2030, 10:05 AM EDT: $100.00 from Pat Payer, invoice INV-1 (Visa ending in 4242)",
        "Jun 3, 2030, 11:30 PM EDT: $50.50 from Quinn Payer, invoice INV-2 (Visa ending in 4242)",
    ]
    assert [line for line in lines if line not in digest.text] == []
    assert "THEIRS" not in digest.text
    [their_digest] = received_by(smtp, "Daily digest: 1 payment, $25.00, Tuesday, June 4, 2030")
    assert their_digest.rcpt_tos == ("their@other.test",)
    assert len(smtp.messages) == 2
    # Sent at the first run from 7:00, the firm's time.
    sent_row = dbsession.execute(
        select(NotificationDigest).where(
            NotificationDigest.firm_id == firm.id, NotificationDigest.payments == 2
        )
    ).scalar_one()
    assert sent_row.created_at is not None
    assert digests(dbsession, firm) == [
        ("06-01", "06-01", 0, False),
        ("06-02", "06-02", 0, False),
        ("06-03", "06-03", 2, True),
        ("06-04", "06-04", 0, False),
    ]


def test_after_downtime_one_catch_up_digest_covers_the_missed_days(
    mail_app, smtp, dbsession, firm, account
):
    expected = subscribe(dbsession, firm, "daily_digest")
    in_new_york(dbsession, firm)
    run(mail_app, DIGEST_JOB, local(5, 8))
    assert digests(dbsession, firm) == [("06-04", "06-04", 0, False)]
    paid(dbsession, mail_app, account, local(5, 12), 20_000, "INV-5")
    paid(dbsession, mail_app, account, local(7, 16), 1_000_000, "INV-7")

    # Down from Wednesday 8:10 until Monday 10:00; then every ten minutes for a day.
    results = [
        run(mail_app, DIGEST_JOB, m) for m in every(local(10, 10), local(11, 10), TEN_MINUTES)
    ]

    assert sum(results) == 1
    [digest] = smtp.messages
    assert set(digest.rcpt_tos) == expected
    assert digest.message["Subject"] == (
        "Daily digest: 2 payments, $10,200.00, June 5, 2030 to June 9, 2030"
    )
    assert "$10,000.00 from Pat Payer, invoice INV-7" in digest.text
    assert digests(dbsession, firm)[1:] == [
        ("06-05", "06-09", 2, True),
        ("06-10", "06-10", 0, False),
    ]


def test_a_day_is_reported_once_even_when_runs_race(mail_app, smtp, dbsession, firm, account):
    subscribe(dbsession, firm, "daily_digest")
    in_new_york(dbsession, firm)
    paid(dbsession, mail_app, account, local(3, 12), 10_000, "INV-1")
    dbsession.add(
        NotificationDigest(firm_id=firm.id, day=dt.date(2030, 6, 2), first_day=dt.date(2030, 6, 2))
    )
    dbsession.flush()
    # Another run reported Monday a moment ago: its row is there, this run finds it due no
    # longer; and a row written under it would be refused by the unique key.
    dbsession.add(
        NotificationDigest(firm_id=firm.id, day=dt.date(2030, 6, 3), first_day=dt.date(2030, 6, 3))
    )
    dbsession.flush()

    assert run(mail_app, DIGEST_JOB, local(4, 7, 10)) == 0

    assert smtp.messages == []
    with pytest.raises(IntegrityError), dbsession.begin_nested():
        dbsession.add(
            NotificationDigest(
                firm_id=firm.id, day=dt.date(2030, 6, 3), first_day=dt.date(2030, 6, 3)
            )
        )
        dbsession.flush()
