"""The daily digest: one email a day to the firm's recipients who chose it, listing the
payments received on the firm's previous day (its own time zone).

A firm's day is reported from ``SENDS_AT`` the next morning, by the first run of the job
after that. A day missed while the workers were down is caught up by the next run, once: one
digest covering every unreported day (at most ``CATCH_UP_DAYS`` back), not one per day or
per missed run. A day with no payments sends nothing (a digest saying "nothing" every quiet
day trains people to ignore it), but is recorded all the same, so that the next digest
reports from the day after it. The ``notification_digests`` row is written in the same
transaction as the digest's outbox row; its unique key (firm, day) refuses a second digest
for a day should two runs race.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from babel.dates import format_date
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from clientpay_connect.admin.models import FirmSettings, NotificationRecipient
from clientpay_connect.links.models import PaymentLink
from clientpay_connect.money import display_amount
from clientpay_connect.notifications.models import NotificationDigest
from clientpay_connect.notifications.services import notify
from clientpay_connect.pay.models import PAYMENT_SUCCEEDED, Payment
from clientpay_connect.sent.present import local_timestamp, zone_named
from clientpay_connect.work import Work

log = logging.getLogger(__name__)

DIGEST_JOB = "notifications.digest"
DIGEST_EVENT = "daily_digest"
SENDS_AT = dt.time(7, 0)
CATCH_UP_DAYS = 7
# The payments a digest lists one by one; the rest it counts (the totals count them all).
LISTED = 200


@dataclass(frozen=True)
class FirmDay:
    """A firm's digest due at a run: the days it reports, in the firm's zone."""

    firm_id: int
    zone: ZoneInfo
    first_day: dt.date
    day: dt.date

    def starts(self, day: dt.date) -> dt.datetime:
        """When the firm's ``day`` begins, in UTC."""
        return dt.datetime.combine(day, dt.time(0), tzinfo=self.zone).astimezone(dt.UTC)

    @property
    def period(self) -> str:
        """ "Friday, June 7, 2030", or "June 5 to June 7, 2030" after downtime."""
        if self.first_day == self.day:
            return format_date(self.day, format="full", locale="en")
        return (
            f"{format_date(self.first_day, format='long', locale='en')} to "
            f"{format_date(self.day, format='long', locale='en')}"
        )


def last_reportable_day(local: dt.datetime) -> dt.date:
    """The latest day whose digest is due at ``local`` (a time in the firm's zone)."""
    yesterday = local.date() - dt.timedelta(days=1)
    return yesterday if local.time() >= SENDS_AT else yesterday - dt.timedelta(days=1)


def send_due_digests(work: Work, now: dt.datetime) -> int:
    """Send every firm's digest due at ``now``; the number of digest emails written."""
    sent = 0
    for firm_day in digests_due(work.dbsession, now):
        try:
            sent += write_digest(work, firm_day)
        except IntegrityError:
            # Another run wrote this firm's digest first (the unique key waited for its
            # commit): theirs stands.
            work.rollback_and_begin()
            log.info("digest: another run reported firm %s first", firm_day.firm_id)
            continue
        work.checkpoint()
    return sent


def digests_due(dbsession: Session, now: dt.datetime) -> list[FirmDay]:
    """The firms with someone subscribed to the digest whose next day to report has ended
    and reached ``SENDS_AT``. One row per recipient: read them all (a few per firm) rather
    than query JSON that two databases spell differently."""
    subscribed = sorted(
        {
            firm_id
            for firm_id, events in dbsession.execute(
                select(NotificationRecipient.firm_id, NotificationRecipient.events)
            )
            if DIGEST_EVENT in (events or [])
        }
    )
    if not subscribed:
        return []
    zones = dict(
        dbsession.execute(
            select(FirmSettings.firm_id, FirmSettings.time_zone).where(
                FirmSettings.firm_id.in_(subscribed)
            )
        ).all()
    )
    reported = dict(
        dbsession.execute(
            select(NotificationDigest.firm_id, func.max(NotificationDigest.day))
            .where(NotificationDigest.firm_id.in_(subscribed))
            .group_by(NotificationDigest.firm_id)
        ).all()
    )
    due = []
    for firm_id in subscribed:
        zone = zone_named(zones.get(firm_id))
        day = last_reportable_day(now.astimezone(zone))
        last = reported.get(firm_id)
        if last is not None and last >= day:
            continue
        oldest = day - dt.timedelta(days=CATCH_UP_DAYS - 1)
        # A firm's first digest reports one day: not the payments of its whole past.
        first_day = day if last is None else max(last + dt.timedelta(days=1), oldest)
        due.append(FirmDay(firm_id, zone, first_day, day))
    return due


def write_digest(work: Work, firm_day: FirmDay) -> int:
    """Record the firm's digest and write its email (none for days without payments);
    1 if an email was written."""
    payments = _payments(work.dbsession, firm_day)
    notice = None
    if payments:
        subject, lines = digest_text(firm_day, payments)
        notice = notify(
            work,
            firm_id=firm_day.firm_id,
            event=DIGEST_EVENT,
            subject=subject,
            lines=lines,
            path="/sent?status=paid",
        )
    work.dbsession.add(
        NotificationDigest(
            firm_id=firm_day.firm_id,
            day=firm_day.day,
            first_day=firm_day.first_day,
            payments=len(payments),
            outbox_message_id=notice.id if notice is not None else None,
        )
    )
    work.dbsession.flush()
    return int(notice is not None)


def _payments(dbsession: Session, firm_day: FirmDay) -> list[Any]:
    return list(
        dbsession.execute(
            select(
                Payment.completed_at,
                Payment.amount_minor,
                Payment.currency,
                Payment.payer_name,
                Payment.method,
                Payment.brand,
                Payment.last4,
                Payment.receipt_number,
                PaymentLink.invoice_number,
                PaymentLink.recipient_name,
            )
            .join(PaymentLink, PaymentLink.id == Payment.link_id)
            .where(
                Payment.firm_id == firm_day.firm_id,
                PaymentLink.firm_id == firm_day.firm_id,
                Payment.status == PAYMENT_SUCCEEDED,
                Payment.completed_at >= firm_day.starts(firm_day.first_day),
                Payment.completed_at < firm_day.starts(firm_day.day + dt.timedelta(days=1)),
            )
            .order_by(Payment.completed_at, Payment.id)
        ).all()
    )


def digest_text(firm_day: FirmDay, payments: Sequence[Any]) -> tuple[str, list[str]]:
    """The digest's subject and lines: totals per currency first, then each payment."""
    totals: dict[str, int] = {}
    for payment in payments:
        totals[payment.currency] = totals.get(payment.currency, 0) + payment.amount_minor
    total = ", ".join(display_amount(minor, currency) for currency, minor in totals.items())
    count = len(payments)
    plural = "s" if count != 1 else ""
    subject = f"Daily digest: {count} payment{plural}, {total}, {firm_day.period}"
    lines = [f"Payments received {firm_day.period}: {count} payment{plural}, {total} in all."]
    lines += [_payment_line(payment, firm_day.zone) for payment in payments[:LISTED]]
    if count > LISTED:
        lines.append(f"…and {count - LISTED} more (see Sent Pages, Payment Received).")
    return subject, lines


def _payment_line(payment: Any, zone: ZoneInfo) -> str:
    who = payment.payer_name or payment.recipient_name or "a payer"
    invoice = f", invoice {payment.invoice_number}" if payment.invoice_number else ""
    method = _method(payment.method, payment.brand, payment.last4)
    receipt = f", receipt {payment.receipt_number}" if payment.receipt_number else ""
    amount = display_amount(payment.amount_minor, payment.currency)
    return (
        f"{local_timestamp(payment.completed_at, zone)}: {amount} from {who}{invoice} "
        f"({method}){receipt}"
    )


def _method(method: str, brand: str, last4: str) -> str:
    if method == "echeck":
        return f"eCheck ending in {last4}"
    return f"{(brand or 'card').title()} ending in {last4}"
