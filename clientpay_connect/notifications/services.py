"""Telling the firm's staff what happened: a notice per event, to whoever chose the event.

``notify`` is the one way in for every feature: it is called in the transaction of the event
itself, addresses the notice to the event's subscribers in that firm at once, and writes it
to the outbox (nothing at all when no one subscribes), so that the notice goes out exactly
when the event commits.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from clientpay_connect.links.models import PaymentLink
from clientpay_connect.mail.models import OutboxMessage
from clientpay_connect.mail.outbox import queue_firm_notice
from clientpay_connect.money import display_amount
from clientpay_connect.pay.models import Payment
from clientpay_connect.sent.present import firm_zone, local_timestamp
from clientpay_connect.work import Work

LINK_EXPIRED = "link_expired"
PAYMENT_FAILED = "payment_failed"
REMINDER_FAILED = "reminder_failed"
# The links a link-expired notice names one by one; the rest it counts.
EXPIRED_LISTED = 20


def notify(
    work: Work,
    *,
    firm_id: int,
    event: str,
    subject: str,
    lines: Sequence[str],
    path: str,
    link_id: int | None = None,
) -> OutboxMessage | None:
    """An email about ``event`` to the firm's recipients who chose it, with ``lines`` as its
    text and a link to ``path`` in the app; None (and nothing written) when no one chose it.

    ``subject`` and ``lines`` are stored in the outbox row: they must name things (people,
    invoices, amounts in their currency), and hold nothing secret.
    """
    return queue_firm_notice(
        work,
        firm_id=firm_id,
        event=event,
        subject=subject,
        lines=list(lines),
        path=path,
        link_id=link_id,
    )


@dataclass(frozen=True)
class LinkFacts:
    """What a notice says of one link: names and money, never its secret."""

    id: int
    firm_id: int
    invoice_number: str
    recipient_name: str
    amount_minor: int
    currency: str
    expires_at: dt.datetime | None = None

    @property
    def title(self) -> str:
        """ "Invoice INV-7, Ana Client: $1,234.50" """
        invoice = f"Invoice {self.invoice_number}" if self.invoice_number else "No invoice number"
        who = self.recipient_name or "no recipient name"
        return f"{invoice}, {who}: {display_amount(self.amount_minor, self.currency)}"

    def expired_line(self, zone: ZoneInfo) -> str:
        return f"{self.title} (expired {local_timestamp(self.expires_at, zone)})"


def link_facts(link: PaymentLink) -> LinkFacts:
    return LinkFacts(
        link.id,
        link.firm_id,
        link.invoice_number,
        link.recipient_name,
        link.amount_minor,
        link.currency,
        link.expires_at,
    )


def notify_links_expired(work: Work, expired: Sequence[LinkFacts]) -> int:
    """One notice per firm for the links one run of the expiry job expired (after downtime a
    run may expire hundreds: one email that counts them, not hundreds of emails). The number
    of notices written."""
    by_firm: dict[int, list[LinkFacts]] = {}
    for link in expired:
        by_firm.setdefault(link.firm_id, []).append(link)
    written = 0
    for firm_id, links in sorted(by_firm.items()):
        links.sort(
            key=lambda link: (link.expires_at or dt.datetime.min.replace(tzinfo=dt.UTC), link.id)
        )
        zone = firm_zone(work.dbsession, firm_id)
        count = len(links)
        lines = [f"{count} payment link{'s' if count != 1 else ''} expired unpaid:"]
        lines += [link.expired_line(zone) for link in links[:EXPIRED_LISTED]]
        if count > EXPIRED_LISTED:
            lines.append(f"…and {count - EXPIRED_LISTED} more.")
        lines.append("Make a new link if the client still owes the amount.")
        single = links[0] if count == 1 else None
        subject = f"Payment link expired: {single.title}" if single else ""
        notice = notify(
            work,
            firm_id=firm_id,
            event=LINK_EXPIRED,
            subject=subject or f"{count} payment links expired",
            lines=lines,
            path=f"/links/{single.id}" if single else "/sent?status=expired",
            link_id=single.id if single else None,
        )
        written += notice is not None
    return written


def notify_about_link(
    work: Work, link: LinkFacts, event: str, subject: str, lines: Sequence[str]
) -> None:
    """A notice about one link: its subject names the invoice, its text the link's invoice,
    client and amount after ``lines``' first, and it opens on the link's page."""
    invoice = f" for invoice {link.invoice_number}" if link.invoice_number else ""
    notify(
        work,
        firm_id=link.firm_id,
        event=event,
        subject=subject + invoice,
        lines=[lines[0], link.title, *lines[1:]],
        path=f"/links/{link.id}",
        link_id=link.id,
    )


def notify_reminder_failed(work: Work, row: OutboxMessage, link: LinkFacts, error: str) -> None:
    """A Smart Reminder's email was given up on: the client was not reminded."""
    attempts = f"{row.attempts} attempt{'s' if row.attempts != 1 else ''}"
    notify_about_link(
        work,
        link,
        REMINDER_FAILED,
        "Payment reminder not delivered",
        [
            f"A payment reminder could not be delivered after {attempts}.",
            f"To: {', '.join(row.recipients)}",
            f"The mail server said: {error or 'nothing'}",
            "Check the addresses on the link's page; the link itself still works.",
        ],
    )


def notify_payment_failed(work: Work, payment: Payment, link: LinkFacts) -> None:
    """A payer tried to pay and the processor refused (the link can still be paid)."""
    amount = display_amount(payment.amount_minor, payment.currency)
    payer = payment.payer_name or "The payer"
    email = f" <{payment.payer_email}>" if payment.payer_email else ""
    notify_about_link(
        work,
        link,
        PAYMENT_FAILED,
        f"Payment failed: {amount}",
        [
            f"{payer}{email} tried to pay {amount} and the payment was refused.",
            f"Reason: {payment.failure_message or payment.failure_code}",
            "Nothing was charged; the link can still be paid.",
        ],
    )
