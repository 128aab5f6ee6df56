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
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, cast
from zoneinfo import ZoneInfo

from pyramid.request import Request
from sqlalchemy import (
    BindParameter,
    Integer,
    Select,
    Table,
    bindparam,
    exists,
    func,
    insert,
    literal,
    or_,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from clientpay_connect.accounts.services import audit
from clientpay_connect.admin.models import FirmSettings
from clientpay_connect.links.models import STATUS_OUTSTANDING, PaymentLink
from clientpay_connect.mail.models import KIND_REMINDER, OutboxMessage
from clientpay_connect.mail.outbox import deliver_after_commit, write_link_emails
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
# Links per transaction: a few thousand keeps the commits (and their waits for the disk) few,
# and a crash loses no more than one batch's work, which the next run does again.
BATCH = 2000
# A batch a racing run got to first is tried again without those links; this many times at
# most, so that a fault that is not a race cannot keep a run going forever.
MAX_RETRIES = 5
OUTBOX = cast(Table, OutboxMessage.__table__)
LINK_REMINDERS = cast(Table, LinkReminder.__table__)
RECORD_COLUMNS = [
    "firm_id", "link_id", "reminder_key", "position", "days", "relative_to", "due_on",
    "sent_at", "outbox_message_id",
]  # fmt: skip


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


def send_due_reminders(work: Work, now: dt.datetime, batch_size: int = BATCH) -> int:
    """Send every reminder due at ``now``, ``batch_size`` links to a transaction; the number
    sent."""
    sent = 0
    for run in firms_to_remind(work.dbsession, now):
        sent += send_firm_reminders(work, run, batch_size)
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


def send_firm_reminders(work: Work, run: FirmRun, batch_size: int = BATCH) -> int:
    sent = 0
    for reminder in sorted(run.reminders, key=lambda r: r.days, reverse=True):
        sent += _send_reminder(work, run, reminder, batch_size)
    return sent


@dataclass(frozen=True)
class Batch:
    """Links to send a reminder in one transaction, all due on the same day (so that the
    day is one value of the INSERT … SELECT that records them)."""

    due_on: dt.date
    link_ids: list[int]


def _send_reminder(work: Work, run: FirmRun, reminder: Reminder, batch_size: int) -> int:
    """Send ``reminder`` to every link it is due for, a batch per transaction. The candidates
    are read once (one pass over the index's window), then written a batch at a time: a
    crash loses only the batch in hand, and the next run's candidates leave out the links
    the committed batches reminded."""
    # Plain rows through the connection: the ORM's row handling cost more than the query.
    rows = work.dbsession.connection().execute(candidates(run, reminder)).all()
    sent = 0
    for batch in _batches(_due_links(run, reminder, rows), batch_size):
        sent += _send_batch(work, run, reminder, batch)
    return sent


def _batches(due: dict[dt.date, list[int]], size: int) -> Iterator[Batch]:
    for day in sorted(due):
        link_ids = due[day]
        for start in range(0, len(link_ids), size):
            yield Batch(day, link_ids[start : start + size])


def _send_batch(work: Work, run: FirmRun, reminder: Reminder, batch: Batch) -> int:
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


def _not_yet_reminded(dbsession: Session, run: FirmRun, reminder: Reminder, batch: Batch) -> Batch:
    reminded = set(
        dbsession.execute(
            select(LinkReminder.link_id).where(
                LinkReminder.firm_id == run.firm_id,
                LinkReminder.link_id.in_(_listed(batch.link_ids)),
                LinkReminder.reminder_key.in_(run.later_keys(reminder)),
            )
        ).scalars()
    )
    return Batch(batch.due_on, [i for i in batch.link_ids if i not in reminded])


def _listed(ids: list[int]) -> BindParameter[Any]:
    """``ids`` for an ``IN``, written into the statement: integers only, so nothing to
    escape, and the driver then has a handful of parameters to place rather than thousands
    (placing them cost more than the database's work)."""
    return bindparam("ids", ids, type_=Integer, expanding=True, literal_execute=True)


def candidates(run: FirmRun, reminder: Reminder) -> Select[Any]:
    """The firm's outstanding links with somewhere to send it for which ``reminder`` fell
    due within the catch-up window and neither it nor a later one was sent: ``id``, the
    anchor (due date, or send time for links without one) and the send time. The addresses
    are counted in the database (``json_array_length`` on both databases), not fetched:
    decoding tens of thousands of JSON lists cost more than the query."""
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
        select(link.id, anchor, link.sent_at)
        .where(
            link.firm_id == run.firm_id,
            link.status == STATUS_OUTSTANDING,
            *window,
            link.reminders_off.is_(False),
            func.json_array_length(link.emails) > 0,
            or_(link.expires_at.is_(None), link.expires_at > run.now),
            ~already,
        )
        .order_by(link.id)
    )


def _due_links(run: FirmRun, reminder: Reminder, rows: Sequence[Any]) -> dict[dt.date, list[int]]:
    """The links the reminder is really for, by the day it fell due: those due on a day
    after the link was sent (a link sent today, already past its due date, is not reminded
    today)."""
    due: dict[dt.date, list[int]] = {}
    for link_id, anchor, sent_at in rows:
        sent_on = sent_at.astimezone(run.zone).date()
        anchor_day = sent_on if reminder.relative_to == RELATIVE_TO_SENT else anchor
        due_on = reminder.due_on(anchor_day)
        if sent_on < due_on <= run.today:
            due.setdefault(due_on, []).append(link_id)
    return due


def _write_batch(work: Work, run: FirmRun, reminder: Reminder, batch: Batch) -> int:
    """Count the reminder on each link still outstanding (its row lock makes a racing run
    wait), write its email to the outbox and record it, each step one statement for the
    whole batch; the deliveries are enqueued once the transaction commits."""
    if not batch.link_ids:
        return 0
    dbsession = work.dbsession
    claimed = list(
        dbsession.execute(
            update(PaymentLink)
            .where(
                PaymentLink.id.in_(_listed(batch.link_ids)),
                PaymentLink.firm_id == run.firm_id,
                PaymentLink.status == STATUS_OUTSTANDING,
                PaymentLink.reminders_off.is_(False),
            )
            .values(reminders_sent=PaymentLink.reminders_sent + 1)
            .returning(PaymentLink.id)
            .execution_options(synchronize_session=False)
        ).scalars()
    )
    if not claimed:
        return 0
    outbox_ids = write_link_emails(
        work,
        firm_id=run.firm_id,
        kind=KIND_REMINDER,
        links=select(PaymentLink.id, PaymentLink.emails).where(
            PaymentLink.id.in_(_listed(claimed))
        ),
        params={"reminder": reminder.position, "message": reminder.message},
        now=run.now,
    )
    dbsession.connection().execute(
        insert(LINK_REMINDERS).from_select(
            RECORD_COLUMNS,
            select(
                OUTBOX.c.firm_id,
                OUTBOX.c.link_id,
                literal(reminder.key, LINK_REMINDERS.c.reminder_key.type),
                literal(reminder.position, LINK_REMINDERS.c.position.type),
                literal(reminder.days, LINK_REMINDERS.c.days.type),
                literal(reminder.relative_to, LINK_REMINDERS.c.relative_to.type),
                literal(batch.due_on, LINK_REMINDERS.c.due_on.type),
                literal(run.now, LINK_REMINDERS.c.sent_at.type),
                OUTBOX.c.id,
            ).where(OUTBOX.c.id.in_(_listed(outbox_ids))),
        )
    )
    deliver_after_commit(work, outbox_ids)
    return len(outbox_ids)


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
