"""Sending the firm's Smart Reminders (the schedule itself: reminders/schedule.py).

Each run, for each firm inside its business hours (Monday to Friday, 9:00 to 17:00 in the
firm's time zone), each reminder of its schedule goes to the outstanding links for which it
has fallen due and was never sent. "Fallen due" reaches back ``CATCH_UP_DAYS``: a reminder
missed while the workers were down (or over a weekend) goes out at the next run, once; one
older than that is let go, so that a reminder an admin adds today does not go to every link
of the past year.

A link gets one reminder per run at most: the reminders are tried latest first, and one is
not sent once a later one of the same kind has been (after three days down, a link due for
the "+1 day" and the "+3 days" reminders gets only the latter).

Candidates are chosen by a window of due dates (or of send times, for links without a due
date) on the firm's outstanding links, through an index: the work grows with the reminders
due, not with the firm's links. Each batch writes, in one transaction, the count on the
link (a conditional UPDATE that re-reads the status under the row's lock), the outbox rows
and the ``link_reminders`` rows whose unique key refuses a second copy should two runs race.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast
from zoneinfo import ZoneInfo

import zope.sqlalchemy
from pyramid.request import Request
from sqlalchemy import Select, Table, exists, insert, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from clientpay_connect.accounts.services import audit
from clientpay_connect.admin.models import FirmSettings
from clientpay_connect.links.models import STATUS_OUTSTANDING, PaymentLink
from clientpay_connect.mail.models import KIND_REMINDER, OutboxMessage
from clientpay_connect.mail.outbox import DELIVER_MANY_JOB
from clientpay_connect.reminders.models import LinkReminder
from clientpay_connect.reminders.schedule import RELATIVE_TO_SENT, Reminder, reminders_of
from clientpay_connect.sent.present import zone_named
from clientpay_connect.work import Work

log = logging.getLogger(__name__)

SEND_JOB = "reminders.send"
BUSINESS_DAYS = range(0, 5)
OPENS = dt.time(9, 0)
CLOSES = dt.time(17, 0)
CATCH_UP_DAYS = 7
BATCH = 500
# A batch a racing run got to first is tried again without those links; this many times at
# most, so that a fault that is not a race cannot keep a run going forever.
MAX_RETRIES = 5
OUTBOX = cast(Table, OutboxMessage.__table__)
LINK_REMINDERS = cast(Table, LinkReminder.__table__)


def within_business_hours(local: dt.datetime) -> bool:
    """Whether ``local`` (a time in the firm's zone) is a weekday between 9:00 and 17:00."""
    return local.weekday() in BUSINESS_DAYS and OPENS <= local.time() < CLOSES


@dataclass(frozen=True)
class FirmRun:
    """One firm's part of a run: its schedule, its zone, and the moment of the run."""

    firm_id: int
    reminders: list[Reminder]
    zone: ZoneInfo
    now: dt.datetime

    @property
    def today(self) -> dt.date:
        return self.now.astimezone(self.zone).date()

    def day_starts(self, day: dt.date) -> dt.datetime:
        """When the firm's ``day`` begins, in UTC."""
        return dt.datetime.combine(day, dt.time(0), tzinfo=self.zone).astimezone(dt.UTC)

    def later_keys(self, reminder: Reminder) -> list[str]:
        """This reminder and the later ones of its kind: sent any of them, it is too late
        for this one."""
        return [
            r.key
            for r in self.reminders
            if r.relative_to == reminder.relative_to and r.days >= reminder.days
        ]


def send_due_reminders(work: Work, now: dt.datetime) -> int:
    """Send every reminder due at ``now``; the number sent."""
    sent = 0
    for run in firms_to_remind(work.dbsession, now):
        sent += send_firm_reminders(work, run)
    return sent


def firms_to_remind(dbsession: Session, now: dt.datetime) -> list[FirmRun]:
    """The firms with a schedule that are inside their business hours at ``now``. One row per
    firm: read them all (a few hundred at most) rather than query JSON two databases spell
    differently."""
    rows = dbsession.execute(
        select(FirmSettings.firm_id, FirmSettings.time_zone, FirmSettings.reminders)
    ).all()
    runs = []
    for firm_id, zone_name, stored in rows:
        zone = zone_named(zone_name)
        if stored and within_business_hours(now.astimezone(zone)):
            runs.append(FirmRun(firm_id, reminders_of(stored), zone, now))
    return runs


def send_firm_reminders(work: Work, run: FirmRun) -> int:
    sent = 0
    for reminder in sorted(run.reminders, key=lambda r: r.days, reverse=True):
        sent += _send_reminder(work, run, reminder)
    return sent


def _send_reminder(work: Work, run: FirmRun, reminder: Reminder) -> int:
    """Send ``reminder`` to every link it is due for, a batch per transaction. The candidates
    are read once (one pass over the index's window), then written a batch at a time."""
    rows = work.dbsession.execute(candidates(run, reminder)).all()
    due = _due_rows(run, reminder, rows)
    sent = 0
    for start in range(0, len(due), BATCH):
        sent += _send_batch(work, run, reminder, due[start : start + BATCH])
    return sent


def _send_batch(
    work: Work, run: FirmRun, reminder: Reminder, batch: list[tuple[int, list[str], dt.date]]
) -> int:
    for _attempt in range(MAX_RETRIES):
        try:
            sent = _write_batch(work, run, reminder, batch)
        except IntegrityError:
            # Another run sent some of these first (the unique key waited for its commit):
            # try again without them.
            work.rollback_and_begin()
            log.info("reminders: another run sent part of a batch first; trying the rest")
            batch = _not_yet_reminded(work.dbsession, run, reminder, batch)
            continue
        work.checkpoint()
        return sent
    raise RuntimeError(f"reminders: batch refused {MAX_RETRIES} times, not for a race")


def _not_yet_reminded(
    dbsession: Session,
    run: FirmRun,
    reminder: Reminder,
    batch: list[tuple[int, list[str], dt.date]],
) -> list[tuple[int, list[str], dt.date]]:
    reminded = set(
        dbsession.execute(
            select(LinkReminder.link_id).where(
                LinkReminder.firm_id == run.firm_id,
                LinkReminder.link_id.in_([link_id for link_id, _emails, _due_on in batch]),
                LinkReminder.reminder_key.in_(run.later_keys(reminder)),
            )
        ).scalars()
    )
    return [row for row in batch if row[0] not in reminded]


def candidates(run: FirmRun, reminder: Reminder) -> Select[Any]:
    """The firm's outstanding links for which ``reminder`` fell due within the catch-up
    window and neither it nor a later one was sent: ``id``, ``emails``, the anchor (due date,
    or send time for links without one) and the send time."""
    first = run.today - dt.timedelta(days=CATCH_UP_DAYS)
    low, high = reminder.anchors_due(first, run.today)
    link = PaymentLink
    if reminder.relative_to == RELATIVE_TO_SENT:
        anchor: Any = link.sent_at
        window = [
            link.due_date.is_(None),
            link.sent_at >= run.day_starts(low),
            link.sent_at < run.day_starts(high + dt.timedelta(days=1)),
        ]
    else:
        anchor = link.due_date
        window = [link.due_date >= low, link.due_date <= high, link.sent_at.is_not(None)]
    already = exists().where(
        LinkReminder.link_id == link.id, LinkReminder.reminder_key.in_(run.later_keys(reminder))
    )
    return (
        select(link.id, link.emails, anchor, link.sent_at)
        .where(
            link.firm_id == run.firm_id,
            link.status == STATUS_OUTSTANDING,
            *window,
            link.reminders_off.is_(False),
            or_(link.expires_at.is_(None), link.expires_at > run.now),
            ~already,
        )
        .order_by(link.id)
    )


def _due_rows(
    run: FirmRun, reminder: Reminder, rows: Sequence[Any]
) -> list[tuple[int, list[str], dt.date]]:
    """The rows the reminder is really for: with somewhere to send it, and due on a day after
    the link was sent (a link sent today, already past its due date, is not reminded today)."""
    due = []
    for link_id, emails, anchor, sent_at in rows:
        sent_on = sent_at.astimezone(run.zone).date()
        anchor_day = sent_on if reminder.relative_to == RELATIVE_TO_SENT else anchor
        due_on = reminder.due_on(anchor_day)
        if emails and sent_on < due_on <= run.today:
            due.append((link_id, list(emails), due_on))
    return due


def _write_batch(
    work: Work, run: FirmRun, reminder: Reminder, due: list[tuple[int, list[str], dt.date]]
) -> int:
    if not due:
        return 0
    dbsession = work.dbsession
    claimed = set(
        dbsession.execute(
            update(PaymentLink)
            .where(
                PaymentLink.id.in_([link_id for link_id, _emails, _due_on in due]),
                PaymentLink.firm_id == run.firm_id,
                PaymentLink.status == STATUS_OUTSTANDING,
                PaymentLink.reminders_off.is_(False),
            )
            .values(reminders_sent=PaymentLink.reminders_sent + 1)
            .returning(PaymentLink.id)
            .execution_options(synchronize_session=False)
        ).scalars()
    )
    chosen = [row for row in due if row[0] in claimed]
    if not chosen:
        return 0
    params = {"reminder": reminder.position, "message": reminder.message}
    # Mapped back by link (one row per link here): cheaper than asking RETURNING to keep the
    # rows' order.
    written = dbsession.execute(
        insert(OUTBOX).returning(OUTBOX.c.link_id, OUTBOX.c.id),
        [
            {
                "firm_id": run.firm_id,
                "kind": KIND_REMINDER,
                "link_id": link_id,
                "recipients": emails,
                "params": params,
                "next_attempt_at": run.now,
                "created_at": run.now,
            }
            for link_id, emails, _due_on in chosen
        ],
    )
    outbox_ids = {link_id: outbox_id for link_id, outbox_id in written}
    dbsession.execute(
        insert(LINK_REMINDERS),
        [
            {
                "firm_id": run.firm_id,
                "link_id": link_id,
                "reminder_key": reminder.key,
                "position": reminder.position,
                "days": reminder.days,
                "relative_to": reminder.relative_to,
                "due_on": due_on,
                "sent_at": run.now,
                "outbox_message_id": outbox_ids[link_id],
            }
            for link_id, _emails, due_on in chosen
        ],
    )
    # Core statements go unseen by zope.sqlalchemy: without this the commit would roll back.
    zope.sqlalchemy.mark_changed(dbsession)
    work.enqueue_after_commit(DELIVER_MANY_JOB, sorted(outbox_ids.values()))
    return len(chosen)


@dataclass(frozen=True)
class SentReminder:
    """A reminder a link was sent, as its page shows it."""

    position: int
    days: int
    relative_to: str
    due_on: dt.date
    sent_at: dt.datetime
    # The email's state in the outbox (pending, sent, failed, withheld); "" if it is gone.
    email_status: str

    @property
    def describe(self) -> str:
        """ "3 days after the due date", in the words of the settings page."""
        count = abs(self.days)
        days = f"{count} day{'' if count == 1 else 's'}"
        if self.relative_to == RELATIVE_TO_SENT:
            return f"{days} after sending"
        if self.days == 0:
            return "on the due date"
        return f"{days} {'before' if self.days < 0 else 'after'} the due date"


def switch_reminders(request: Request, link: PaymentLink, *, off: bool) -> None:
    """Staff's switch: no reminders for this link (or the firm's schedule again)."""
    if link.reminders_off != off:
        link.reminders_off = off
        audit(request, "link.reminders_off" if off else "link.reminders_on", link)


def sent_reminders(dbsession: Session, firm_id: int, link_id: int) -> list[SentReminder]:
    """What reminders a link was sent, the first first (for its page)."""
    rows = dbsession.execute(
        select(LinkReminder, OutboxMessage.status)
        .outerjoin(OutboxMessage, OutboxMessage.id == LinkReminder.outbox_message_id)
        .where(LinkReminder.firm_id == firm_id, LinkReminder.link_id == link_id)
        .order_by(LinkReminder.sent_at, LinkReminder.id)
    ).all()
    return [
        SentReminder(r.position, r.days, r.relative_to, r.due_on, r.sent_at, status or "")
        for r, status in rows
    ]
