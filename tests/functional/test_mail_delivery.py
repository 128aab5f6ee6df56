"""What the emails say, to whom, and how they travel: through a real SMTP server on loopback."""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import mailbox
import re
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from pyramid.router import Router
from pyramid_mailer.message import Message
from sqlalchemy import func, select
from zope.interface.verify import verifyClass

from clientpay_connect.accounts.models import User
from clientpay_connect.admin.models import FirmSettings, MerchantAccount, NotificationRecipient
from clientpay_connect.links.models import (
    EMAIL_SENT,
    STATUS_PAID,
    STATUS_PARTIALLY_PAID,
    PaymentLink,
)
from clientpay_connect.links.services import NewLink, create_link, find_by_token
from clientpay_connect.mail.compose import header_safe
from clientpay_connect.mail.interfaces import IMailDelivery
from clientpay_connect.mail.models import (
    KIND_LINK,
    KIND_PAYMENT_NOTICE,
    KIND_RECEIPT,
    OUTBOX_SENT,
    OutboxMessage,
)
from clientpay_connect.mail.outbox import queue_email
from clientpay_connect.mail.services import FileMailDelivery, NullMailDelivery, SMTPMailDelivery
from clientpay_connect.pay.models import PAYMENT_SUCCEEDED, Payment
from clientpay_connect.work import Work
from tests import factories
from tests.support.smtp import send_link

SENDER = "payments@clientpay.test"
FALLBACK_REPLY_TO = "billing@clientpay.test"
URL_RE = re.compile(r"http://localhost/pay/([A-Za-z0-9_\-]+)")


@pytest.fixture(scope="module")
def smtp_overrides() -> dict[str, str]:
    return {"clientpay.mail.sender": SENDER, "clientpay.mail.reply_to": FALLBACK_REPLY_TO}


@pytest.fixture
def account(firm: Any) -> MerchantAccount:
    return factories.MerchantAccountFactory(firm=firm)


def fresh(dbsession: Any, model: Any, ident: int) -> Any:
    return dbsession.get(model, ident, populate_existing=True)


def set_reply_to(dbsession: Any, firm: Any, address: str) -> None:
    dbsession.get(FirmSettings, firm.id).reply_to_email = address
    dbsession.flush()


@pytest.mark.parametrize("delivery", [SMTPMailDelivery, FileMailDelivery, NullMailDelivery])
def test_every_delivery_implements_the_interface(delivery):
    assert verifyClass(IMailDelivery, delivery)


def test_payment_link_email_arrives_with_everything_the_client_needs(
    mail_app, smtp, dbsession, firm, staff, account
):
    set_reply_to(dbsession, firm, "accounts@firm.test")
    sent = send_link(
        mail_app,
        staff,
        account,
        recipient_name="Ana Client",
        emails=["ana@example.test", "ana.work@example.test"],
        message="Please pay <b>now</b> & thanks.\nSecond line",
        invoice_number="INV-1001",
        due_date=dt.date(2026, 3, 15),
    )

    [received] = smtp.messages
    msg = received.message
    assert sorted(received.rcpt_tos) == ["ana.work@example.test", "ana@example.test"]
    assert msg.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in msg.iter_parts()] == ["text/plain", "text/html"]
    assert msg["Subject"] == f"Payment request from {firm.name} - invoice INV-1001"
    [sender] = msg["From"].addresses
    assert (sender.display_name, sender.addr_spec) == (firm.name, SENDER)
    assert msg["Reply-To"] == "accounts@firm.test"
    assert msg["Date"] is not None

    text = received.text
    assert "Dear Ana Client," in text
    assert "Please pay <b>now</b> & thanks.\nSecond line" in text
    assert "Amount due: $1,234.50" in text
    assert "Invoice: INV-1001" in text
    assert "Due date: March 15, 2026" in text
    link = fresh(dbsession, PaymentLink, sent["link_id"])
    # The date as the firm's clock shows it (the default time zone), as the email writes it.
    expires_on = link.expires_at.astimezone(ZoneInfo("America/New_York")).date()
    assert f"{expires_on:%B} {expires_on.day}, {expires_on.year}" in text

    [token] = URL_RE.findall(text)
    assert token == sent["token"]
    assert find_by_token(dbsession, token).id == sent["link_id"]

    html = received.html
    assert f'href="http://localhost/pay/{token}"' in html
    assert "Please pay &lt;b&gt;now&lt;/b&gt; &amp; thanks.<br>\nSecond line" in html
    assert "<b>now</b>" not in html

    row = fresh(dbsession, OutboxMessage, sent["outbox_id"])
    assert (row.status, row.attempts, row.subject) == (OUTBOX_SENT, 1, msg["Subject"])
    assert row.message_id == msg["Message-ID"] and row.sent_at is not None
    assert (link.email_status, link.sent_at is not None) == (EMAIL_SENT, True)


def test_the_firms_default_message_and_the_configured_reply_to_fill_in(
    mail_app, smtp, dbsession, firm, staff, account
):
    dbsession.get(FirmSettings, firm.id).default_email_message = "Our usual words."
    set_reply_to(dbsession, firm, "")

    send_link(mail_app, staff, account, message="")

    [received] = smtp.messages
    assert "Our usual words." in received.text
    assert received.message["Reply-To"] == FALLBACK_REPLY_TO
    assert received.text.startswith("Hello,")


def test_nothing_is_sent_or_kept_when_the_transaction_rolls_back(
    mail_app, smtp, dbsession, staff, account
):
    before = dbsession.scalar(select(func.count()).select_from(OutboxMessage))

    with pytest.raises(RuntimeError), Work.fresh(mail_app.registry) as work:
        link, _token = create_link(
            work.dbsession,
            mail_app.registry["clientpay.encryptor"],
            None,
            NewLink(
                merchant_account=work.dbsession.get(MerchantAccount, account.id),
                amount_minor=5000,
                emails=["ana@example.test"],
            ),
        )
        queue_email(
            work, firm_id=link.firm_id, kind=KIND_LINK,
            recipients=["ana@example.test"], link_id=link.id,
        )  # fmt: skip
        raise RuntimeError("the request failed after queueing")

    assert dbsession.scalar(select(func.count()).select_from(OutboxMessage)) == before
    assert smtp.messages == []


def test_nothing_typed_into_a_form_can_add_a_header_or_a_recipient(mail_app, smtp, dbsession):
    attack = "\r\nBcc: attacker@evil.test"
    firm = factories.FirmFactory(name="Evil" + attack + " LLP")
    set_reply_to(dbsession, firm, "billing@firm.test" + attack)
    user = factories.UserFactory(firm=firm)
    account = factories.MerchantAccountFactory(firm=firm)

    send_link(
        mail_app,
        user,
        account,
        invoice_number="INV-1" + attack,
        recipient_name="Ana" + attack,
        message="Hi" + attack + "\r\n\r\n<script>alert(1)</script>",
        emails=["client@example.test"],
        recipients=["client@example.test", "other@example.test" + attack],
    )

    [received] = smtp.messages
    msg = received.message
    assert received.rcpt_tos == ("client@example.test",)
    # An injected header would start a line of its own; folded text starts with a space.
    header_lines = received.raw.split(b"\r\n\r\n", 1)[0].split(b"\r\n")
    assert [line for line in header_lines if line.lower().startswith(b"bcc:")] == []
    assert msg["Bcc"] is None and msg["Cc"] is None
    assert [a.addr_spec for a in msg["To"].addresses] == ["client@example.test"]
    assert [a.addr_spec for a in msg["From"].addresses] == [SENDER]
    # What was typed stays, as harmless text on the one line of its header.
    assert msg["Subject"] == (
        "Payment request from Evil Bcc: attacker@evil.test LLP"
        " - invoice INV-1 Bcc: attacker@evil.test"
    )
    # The firm's reply-to is not an address any more once it is one line: it is left out.
    assert msg["Reply-To"] is None
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in received.html
    assert "<script>" not in received.html


def test_header_values_lose_every_kind_of_line_break():
    assert header_safe("a\rb\nc\r\nd\u2028e\x85f\x0bg  h") == "a b c d e f g h"


def test_a_spanish_link_gets_the_spanish_email(mail_app, smtp, dbsession):
    firm = factories.FirmFactory(name="Bufete García & Asociados")
    user = factories.UserFactory(firm=firm)
    account = factories.MerchantAccountFactory(firm=firm)

    sent = send_link(
        mail_app,
        user,
        account,
        locale="es",
        recipient_name="José Pérez",
        message="Gracias por su confianza.",
        invoice_number="F-7",
        due_date=dt.date(2026, 3, 15),
        amount_minor=99900,
    )

    [received] = smtp.messages
    msg = received.message
    assert msg["Subject"] == "Solicitud de pago de Bufete García & Asociados - factura F-7"
    assert msg["From"].addresses[0].display_name == "Bufete García & Asociados"
    text = received.text
    assert "Estimado/a José Pérez:" in text
    assert "Importe a pagar: $999.00" in text
    assert "Fecha de vencimiento: 15 de marzo de 2026" in text
    assert "Este enlace sirve para un solo pago y vence el" in text
    assert URL_RE.findall(text) == [sent["token"]]
    assert "Pagar $999.00" in received.html
    assert "Bufete García &amp; Asociados" in received.html
    assert '<html lang="es">' in received.html


def make_payment(
    dbsession: Any,
    app: Router,
    user: User,
    account: MerchantAccount,
    link_minor: int = 25000,
    locale: str = "en",
) -> Payment:
    link, _token = create_link(
        dbsession,
        app.registry["clientpay.encryptor"],
        user,
        NewLink(
            merchant_account=account, amount_minor=link_minor, invoice_number="INV-9", locale=locale
        ),
    )
    link.status = STATUS_PAID if link_minor <= 25000 else STATUS_PARTIALLY_PAID
    link.amount_paid_minor = 25000
    payment = Payment(
        firm_id=link.firm_id,
        link_id=link.id,
        status=PAYMENT_SUCCEEDED,
        amount_minor=25000,
        currency="USD",
        method="card",
        brand="visa",
        last4="4242",
        payer_name="Pat Payer",
        payer_email="pat@example.test",
        idempotency_key="key-1",
        processor_key=f"proc-{link.id}",
        receipt_number=f"R-{link.id}",
        # Late evening in New York (the firm's zone) is already the next day in UTC.
        completed_at=dt.datetime(2026, 3, 16, 2, 30, tzinfo=dt.UTC),
    )
    dbsession.add(payment)
    dbsession.flush()
    return payment


def test_the_payer_gets_a_receipt_and_subscribed_staff_a_notice(
    mail_app, smtp, dbsession, firm, staff, account
):
    payment = make_payment(dbsession, mail_app, staff, account)
    dbsession.add_all(
        [
            NotificationRecipient(
                firm_id=firm.id, email="boss@firm.test", events=["payment_received"]
            ),
            NotificationRecipient(
                firm_id=firm.id, email="other@firm.test", events=["link_expired"]
            ),
        ]
    )
    dbsession.flush()

    with Work.fresh(mail_app.registry) as work:
        for kind, recipients in ((KIND_RECEIPT, [payment.payer_email]), (KIND_PAYMENT_NOTICE, [])):
            queue_email(
                work, firm_id=firm.id, kind=kind, recipients=recipients,
                link_id=payment.link_id, payment_id=payment.id,
            )  # fmt: skip

    assert len(smtp.messages) == 2
    by_recipient = {m.rcpt_tos: m for m in smtp.messages}
    receipt = by_recipient[("pat@example.test",)]
    assert (
        receipt.message["Subject"] == f"Receipt R-{payment.link_id} - your payment to {firm.name}"
    )
    assert "Dear Pat Payer," in receipt.text
    facts = [
        f"Receipt number: R-{payment.link_id}",
        "Amount paid: $250.00",
        "Paid with: Visa ending in 4242",
        "Date: March 15, 2026",
        "Invoice: INV-9",
    ]
    assert [f for f in facts if f not in receipt.text] == []
    # Paid in full: there is no balance to speak of.
    assert "balance" not in receipt.text.lower()
    notice = by_recipient[("boss@firm.test",)]
    assert notice.message["Subject"] == "Payment received: $250.00 for invoice INV-9"
    assert "Paid by: Pat Payer <pat@example.test>" in notice.text
    notice_row = dbsession.execute(
        select(OutboxMessage).where(OutboxMessage.kind == KIND_PAYMENT_NOTICE)
        .where(OutboxMessage.payment_id == payment.id)
    ).scalar_one()  # fmt: skip
    assert notice_row.recipients == ["boss@firm.test"]


@pytest.mark.parametrize(
    ("locale", "balance", "advice"),
    [
        (
            "en",
            "Balance remaining: $1,000.00",
            "This payment used up the link: for the remaining $1,000.00, please ask",
        ),
        (
            "es",
            "Saldo pendiente: $1,000.00",
            "Este pago agotó el enlace: para los $1,000.00 restantes, pida",
        ),
    ],
)
def test_a_partial_payments_receipt_tells_the_balance(
    mail_app, smtp, dbsession, firm, staff, account, locale, balance, advice
):
    payment = make_payment(dbsession, mail_app, staff, account, link_minor=125000, locale=locale)
    dbsession.add(
        NotificationRecipient(firm_id=firm.id, email="boss@firm.test", events=["payment_received"])
    )
    dbsession.flush()

    with Work.fresh(mail_app.registry) as work:
        for kind, recipients in ((KIND_RECEIPT, [payment.payer_email]), (KIND_PAYMENT_NOTICE, [])):
            queue_email(
                work, firm_id=firm.id, kind=kind, recipients=recipients,
                link_id=payment.link_id, payment_id=payment.id,
            )  # fmt: skip

    by_recipient = {m.rcpt_tos: m for m in smtp.messages}
    receipt = by_recipient[("pat@example.test",)]
    assert balance in receipt.text
    assert advice in " ".join(receipt.text.split())
    assert "$1,000.00" in receipt.html
    notice = by_recipient[("boss@firm.test",)]
    assert "Partially paid: $1,000.00 of $1,250.00 remains unpaid." in notice.text


def test_file_delivery_writes_the_same_message_into_the_maildir(tmp_path):
    message = Message(
        subject="Hello",
        sender=SENDER,
        recipients=["ana@example.test"],
        body="text",
        html="<p>html</p>",
        extra_headers={"Message-ID": "<one@clientpay.test>"},
    )
    FileMailDelivery(str(tmp_path / "mail")).send(message)

    [stored] = list(mailbox.Maildir(str(tmp_path / "mail"), create=False))
    parsed = email.message_from_bytes(stored.as_bytes(), policy=email.policy.default)
    assert (parsed["Message-ID"], parsed["Subject"], parsed["To"]) == (
        "<one@clientpay.test>",
        "Hello",
        "ana@example.test",
    )
    assert parsed.get_body(preferencelist=("html",)).get_content().strip() == "<p>html</p>"


def test_with_the_default_settings_mail_lands_in_the_maildir(
    app, app_settings, dbsession, staff, account
):
    maildir = mailbox.Maildir(app_settings["clientpay.mail.maildir"], create=True)
    before = set(maildir.keys())

    sent = send_link(app, staff, account, emails=["file@example.test"])

    [key] = [k for k in maildir.iterkeys() if k not in before]
    parsed = email.message_from_bytes(maildir[key].as_bytes(), policy=email.policy.default)
    assert parsed["To"] == "file@example.test"
    text = parsed.get_body(preferencelist=("plain",)).get_content()
    assert URL_RE.findall(text) == [sent["token"]]
    row = fresh(dbsession, OutboxMessage, sent["outbox_id"])
    assert (row.status, row.message_id) == (OUTBOX_SENT, parsed["Message-ID"])
