"""Turning an outbox row into an email at the moment it is sent.

The row holds only references; the link's URL is built here from the decrypted token and
lives only in the returned message, never in the database, the queue or a log.
"""

from __future__ import annotations

import datetime as dt
import re
import zoneinfo
from collections.abc import Callable
from dataclasses import dataclass, field
from email.headerregistry import Address
from email.utils import format_datetime
from secrets import token_hex
from typing import Any

from babel.dates import format_date
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from markupsafe import Markup, escape
from pyramid.config import Configurator
from pyramid_mailer.message import Message
from sqlalchemy.orm import Session

from clientpay_connect.accounts.models import Firm, PasswordReset
from clientpay_connect.accounts.services import is_valid_email
from clientpay_connect.admin.models import DEFAULT_EMAIL_MESSAGE, FirmSettings
from clientpay_connect.connect.linking import link_invoices
from clientpay_connect.crypto import Encryptor
from clientpay_connect.links.models import LOCALES, SOURCE_CONNECT, PaymentLink
from clientpay_connect.links.services import link_token, pay_url, public_base_url
from clientpay_connect.mail.models import (
    KIND_BANK_VERIFICATION,
    KIND_LINK,
    KIND_PASSWORD_RESET,
    KIND_PAYMENT_NOTICE,
    KIND_RECEIPT,
    KIND_REFUND_NOTICE,
    KIND_REMINDER,
    OutboxMessage,
)
from clientpay_connect.mail.outbox import (
    KIND_EMAIL_FAILED,
    KIND_FIRM_NOTICE,
    NOTICE_EVENTS,
    notification_recipients,
)
from clientpay_connect.money import display_amount
from clientpay_connect.pay.models import Payment
from clientpay_connect.refunds.models import Refund

# Staff read the firm's own notices; only what goes to the firm's clients is translated.
STAFF_LOCALE = "en"
# Whatever could end a header line: CR and LF, and the other separators str.splitlines
# honours, which some mail software treats as line breaks too.
_LINE_BREAKS = re.compile(r"[\r\n\x0b\x0c\x1c-\x1e\x85\u2028\u2029]+")


class PermanentMailError(Exception):
    """Trying again cannot help: no valid recipient, or what the message is about is gone."""


@dataclass
class Composed:
    message: Message
    subject: str
    # Text that must never reach a log or the outbox row (the link's token and URL).
    secrets: list[str] = field(default_factory=list)


@dataclass
class _Content:
    template: str
    locale: str
    context: dict[str, Any]
    secrets: list[str] = field(default_factory=list)


def header_safe(value: str) -> str:
    """One line: a value from a form can never start a header of its own."""
    return " ".join(_LINE_BREAKS.sub(" ", value or "").split())


def _paragraphs(value: str) -> Markup:
    """Escape first, then keep the writer's line breaks."""
    lines = (value or "").replace("\r\n", "\n").replace("\r", "\n").split("\n")
    return Markup("<br>\n").join(escape(line) for line in lines)


def mail_environment() -> Environment:
    """Jinja2 for email: HTML templates autoescaped, plain-text ones not (pyramid_jinja2's
    environment escapes everything, which would put "&amp;" into the text part)."""
    environment = Environment(
        loader=PackageLoader("clientpay_connect", "templates/mail"),
        autoescape=select_autoescape(
            enabled_extensions=("html.jinja2",),
            disabled_extensions=("txt.jinja2",),
            default=True,
        ),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    environment.filters["paragraphs"] = _paragraphs
    return environment


@dataclass
class MailComposer:
    """Everything composing needs besides the row: the app's settings, key and templates."""

    settings: dict[str, Any]
    encryptor: Encryptor
    environment: Environment

    def compose(self, dbsession: Session, row: OutboxMessage, now: dt.datetime) -> Composed:
        firm = dbsession.get(Firm, row.firm_id)
        if firm is None:
            raise PermanentMailError("the firm no longer exists")
        firm_settings = dbsession.get(FirmSettings, row.firm_id)
        builder = _BUILDERS.get(row.kind)
        if builder is None:
            raise PermanentMailError(f"unknown message kind {row.kind!r}")
        content = builder(self, dbsession, row, firm_settings)
        content.context.setdefault("firm_name", firm.name)
        recipients = self._recipients(dbsession, row)
        subject, text, html = self._render(content)
        message = Message(
            subject=subject,
            sender=self._sender(firm.name),
            recipients=recipients,
            body=text,
            html=html,
            extra_headers=self._headers(row, firm_settings, now),
        )
        return Composed(message=message, subject=subject, secrets=content.secrets)

    def _render(self, content: _Content) -> tuple[str, str, str]:
        names = [f"{content.template}.{content.locale}", f"{content.template}.{STAFF_LOCALE}"]
        text_template = self.environment.select_template([n + ".txt.jinja2" for n in names])
        module = text_template.make_module({**content.context, "locale": content.locale})
        subject = header_safe(str(getattr(module, "subject", "")))
        html_template = self.environment.select_template([n + ".html.jinja2" for n in names])
        html = html_template.render(
            {**content.context, "locale": content.locale, "subject": subject}
        )
        return subject, str(module), html

    def _recipients(self, dbsession: Session, row: OutboxMessage) -> list[str]:
        event = NOTICE_EVENTS.get(row.kind) or (
            row.params.get("event") if row.kind == KIND_FIRM_NOTICE else None
        )
        if not row.recipients and event:
            # A notice queued without addresses goes to whoever subscribes at send time;
            # the row remembers them so that the Outbox page shows where it went.
            row.recipients = notification_recipients(dbsession, row.firm_id, event)
        valid = [r.strip() for r in row.recipients if is_valid_email(r.strip())]
        if not valid:
            raise PermanentMailError("no valid recipient address")
        return valid

    def _sender(self, firm_name: str) -> str:
        address = self.settings["clientpay.mail.sender"]
        username, _, domain = address.partition("@")
        return str(Address(display_name=header_safe(firm_name), username=username, domain=domain))

    def _headers(
        self, row: OutboxMessage, firm_settings: FirmSettings | None, now: dt.datetime
    ) -> dict[str, str]:
        if not row.message_id:
            domain = self.settings["clientpay.mail.sender"].rpartition("@")[2] or "localhost"
            # Kept on the row: every retry of this row carries the same Message-ID, so a
            # receiver (or a test) can tell a repeat from a second message. Short, so that
            # the header is never folded (make_msgid's often is).
            row.message_id = f"<outbox-{row.id}.{token_hex(8)}@{domain}>"
        headers = {"Message-ID": row.message_id, "Date": format_datetime(now)}
        reply_to = header_safe(
            (firm_settings.reply_to_email if firm_settings else "")
            or self.settings.get("clientpay.mail.reply_to", "")
        )
        if reply_to and is_valid_email(reply_to):
            headers["Reply-To"] = reply_to
        return headers

    # What each kind of message says.

    def link_content(
        self, dbsession: Session, row: OutboxMessage, firm_settings: FirmSettings | None
    ) -> _Content:
        link = _firm_link(dbsession, row)
        token = link_token(self.encryptor, link)
        url = pay_url(public_base_url(self.settings), token)
        locale = link.locale if link.locale in LOCALES else STAFF_LOCALE
        zone = _zone(firm_settings)
        default_message = firm_settings.default_email_message if firm_settings else ""
        context = {
            "recipient_name": link.recipient_name,
            "message": link.message or default_message or DEFAULT_EMAIL_MESSAGE,
            "amount": display_amount(link.amount_due_minor, link.currency),
            "invoice_number": link.invoice_number,
            "due_date": _date(link.due_date, locale),
            "expires_on": _date(_local_date(link.expires_at, zone), locale),
            "pay_url": url,
            "reminder": bool(row.params.get("reminder")),
            "invoices": _link_invoice_lines(dbsession, link, locale),
        }
        return _Content(KIND_LINK, locale, context, secrets=[token, url])

    def reminder_content(
        self, dbsession: Session, row: OutboxMessage, firm_settings: FirmSettings | None
    ) -> _Content:
        """The payment-link email again, the same link, with the reminder's own message."""
        content = self.link_content(dbsession, row, firm_settings)
        content.context["reminder"] = True
        content.context["message"] = str(row.params.get("message") or content.context["message"])
        return content

    def receipt_content(
        self, dbsession: Session, row: OutboxMessage, firm_settings: FirmSettings | None
    ) -> _Content:
        payment = _firm_payment(dbsession, row)
        locale = payment.link.locale if payment.link.locale in LOCALES else STAFF_LOCALE
        return _Content(KIND_RECEIPT, locale, _payment_context(payment, firm_settings, locale))

    def notice_content(
        self, dbsession: Session, row: OutboxMessage, firm_settings: FirmSettings | None
    ) -> _Content:
        payment = _firm_payment(dbsession, row)
        context = _payment_context(payment, firm_settings, STAFF_LOCALE)
        return _Content(KIND_PAYMENT_NOTICE, STAFF_LOCALE, context)

    def email_failed_content(
        self, dbsession: Session, row: OutboxMessage, firm_settings: FirmSettings | None
    ) -> _Content:
        link = _firm_link(dbsession, row)
        context = {
            "invoice_number": link.invoice_number,
            "recipient_name": link.recipient_name,
            "amount": display_amount(link.amount_due_minor, link.currency),
            "failed_recipients": ", ".join(row.params.get("failed_recipients", [])),
            "attempts": int(row.params.get("attempts", 0)),
            "error": str(row.params.get("error", "")),
            "bounced": bool(row.params.get("bounced", False)),
        }
        return _Content(KIND_EMAIL_FAILED, STAFF_LOCALE, context)

    def firm_notice_content(
        self, dbsession: Session, row: OutboxMessage, firm_settings: FirmSettings | None
    ) -> _Content:
        context = {
            "notice_subject": str(row.params.get("subject", "")),
            "lines": [str(line) for line in row.params.get("lines", [])],
            "action_url": public_base_url(self.settings) + str(row.params.get("path", "/")),
        }
        return _Content(KIND_FIRM_NOTICE, STAFF_LOCALE, context)

    def refund_notice_content(
        self, dbsession: Session, row: OutboxMessage, firm_settings: FirmSettings | None
    ) -> _Content:
        """The payer's notice of a refund: how much came back, of which payment."""
        refund = dbsession.get(Refund, row.params.get("refund_id"))
        if refund is None or refund.firm_id != row.firm_id:
            raise PermanentMailError("the refund no longer exists")
        payment = _firm_payment(dbsession, row)
        locale = payment.link.locale if payment.link.locale in LOCALES else STAFF_LOCALE
        context = _payment_context(payment, firm_settings, locale)
        context.update(
            refund_amount=display_amount(refund.amount_minor, refund.currency),
            refunded_on=_date(_local_date(refund.completed_at, _zone(firm_settings)), locale),
            whole=refund.amount_minor >= payment.amount_minor,
        )
        return _Content(KIND_REFUND_NOTICE, locale, context)

    def bank_verification_content(
        self, dbsession: Session, row: OutboxMessage, firm_settings: FirmSettings | None
    ) -> _Content:
        """The payer's link to Stripe's page where they confirm the micro-deposits: their bank
        payment waits on it. The link is Stripe's, for this payment only: kept out of logs."""
        payment = _firm_payment(dbsession, row)
        if not payment.verification_url:
            raise PermanentMailError("the payment awaits no verification")
        locale = payment.link.locale if payment.link.locale in LOCALES else STAFF_LOCALE
        context = _payment_context(payment, firm_settings, locale)
        context.update(
            verification_url=payment.verification_url,
            arrives_on=_date(
                _local_date(payment.verification_arrives_at, _zone(firm_settings)), locale
            ),
        )
        return _Content(KIND_BANK_VERIFICATION, locale, context, secrets=[payment.verification_url])

    def password_reset_content(
        self, dbsession: Session, row: OutboxMessage, firm_settings: FirmSettings | None
    ) -> _Content:
        reset = dbsession.get(PasswordReset, row.params.get("reset_id"))
        if reset is None or reset.firm_id != row.firm_id or not reset.token_encrypted:
            raise PermanentMailError("the password reset was used or replaced")
        token = self.encryptor.decrypt(reset.token_encrypted)
        url = f"{public_base_url(self.settings)}/reset-password/{token}"
        context = {
            "user_email": reset.user.email,
            "reset_url": url,
            "minutes": int((reset.expires_at - reset.created_at).total_seconds() // 60),
        }
        return _Content(KIND_PASSWORD_RESET, STAFF_LOCALE, context, secrets=[token, url])


_Builder = Callable[[MailComposer, Session, OutboxMessage, FirmSettings | None], _Content]
_BUILDERS: dict[str, _Builder] = {
    KIND_LINK: MailComposer.link_content,
    KIND_REMINDER: MailComposer.reminder_content,
    KIND_RECEIPT: MailComposer.receipt_content,
    KIND_PAYMENT_NOTICE: MailComposer.notice_content,
    KIND_EMAIL_FAILED: MailComposer.email_failed_content,
    KIND_FIRM_NOTICE: MailComposer.firm_notice_content,
    KIND_PASSWORD_RESET: MailComposer.password_reset_content,
    KIND_REFUND_NOTICE: MailComposer.refund_notice_content,
    KIND_BANK_VERIFICATION: MailComposer.bank_verification_content,
}


def _firm_link(dbsession: Session, row: OutboxMessage) -> PaymentLink:
    link = dbsession.get(PaymentLink, row.link_id) if row.link_id is not None else None
    if link is None or link.firm_id != row.firm_id:
        raise PermanentMailError("the payment link no longer exists")
    return link


def _link_invoice_lines(dbsession: Session, link: PaymentLink, locale: str) -> list[dict[str, str]]:
    """A Connect link's invoices, each with the amount it asks for (other links have none)."""
    if link.source != SOURCE_CONNECT:
        return []
    return [
        {
            "number": row.invoice_number,
            "matter": row.matter_name,
            "due_date": _date(row.due_on, locale),
            "amount": display_amount(row.amount_minor, link.currency),
        }
        for row in link_invoices(dbsession, link.id)
    ]


def _firm_payment(dbsession: Session, row: OutboxMessage) -> Payment:
    payment = dbsession.get(Payment, row.payment_id) if row.payment_id is not None else None
    if payment is None or payment.firm_id != row.firm_id:
        raise PermanentMailError("the payment no longer exists")
    return payment


def _payment_context(
    payment: Payment, firm_settings: FirmSettings | None, locale: str
) -> dict[str, Any]:
    link = payment.link
    paid_at = payment.completed_at or payment.created_at
    # What a partial payment left unpaid: the payer must know the link cannot take it.
    balance_minor = max(link.amount_minor - payment.amount_minor, 0)
    return {
        "amount_due": display_amount(link.amount_minor, link.currency),
        "balance": display_amount(balance_minor, link.currency) if balance_minor else "",
        "payer_name": payment.payer_name,
        "payer_email": payment.payer_email,
        "recipient_name": link.recipient_name,
        "receipt_number": payment.receipt_number or "",
        "amount": display_amount(payment.amount_minor, payment.currency),
        "method": payment.method,
        "brand": payment.brand,
        "last4": payment.last4,
        "invoice_number": link.invoice_number,
        "paid_on": _date(_local_date(paid_at, _zone(firm_settings)), locale),
    }


def _zone(firm_settings: FirmSettings | None) -> dt.tzinfo:
    name = firm_settings.time_zone if firm_settings else ""
    try:
        return zoneinfo.ZoneInfo(name) if name else dt.UTC
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return dt.UTC


def _local_date(moment: dt.datetime | None, zone: dt.tzinfo) -> dt.date | None:
    return moment.astimezone(zone).date() if moment is not None else None


def _date(value: dt.date | None, locale: str) -> str:
    return format_date(value, format="long", locale=locale) if value is not None else ""


def includeme(config: Configurator) -> None:
    """One composer for the app, found as ``find_service(MailComposer)``: its templates are
    compiled once, not once per message."""
    composer = MailComposer(
        settings=config.registry.settings,
        encryptor=config.registry["clientpay.encryptor"],
        environment=mail_environment(),
    )
    config.register_service(composer, MailComposer)
