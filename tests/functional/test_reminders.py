"""Smart Reminders with a controlled clock: the job is run as the workers would run it, at
moments the test chooses (``now`` is the job's argument), on real links, settings and outbox.

The calendar: 2030-06-03 is a Monday; 06-08/09 and 06-15/16 are weekends.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import transaction
import webtest
from sqlalchemy import event, func, select
from sqlalchemy.orm import Session

from clientpay_connect.admin.models import FirmSettings
from clientpay_connect.links.models import (
    EMAIL_SENT,
    STATUS_CANCELLED,
    STATUS_EXPIRED,
    STATUS_PAID,
    STATUS_PARTIALLY_PAID,
    STATUS_PROCESSING,
    PaymentLink,
)
from clientpay_connect.links.services import NewLink, create_link
from clientpay_connect.mail.compose import MailComposer
from clientpay_connect.mail.models import KIND_REMINDER, OUTBOX_SENT, OutboxMessage
from clientpay_connect.reminders.models import LinkReminder
from clientpay_connect.reminders.services import SEND_JOB
from clientpay_connect.work import Work
from tests.conftest import csrf_token, login
from tests.factories import FirmFactory, MerchantAccountFactory
from tests.support.clock import every

NEW_YORK = ZoneInfo("America/New_York")
LOS_ANGELES = ZoneInfo("America/Los_Angeles")


def local(day: int, hour: int, minute: int = 0, zone: ZoneInfo = NEW_YORK) -> dt.datetime:
    """A moment of June 2030 in ``zone``."""
    return dt.datetime(2030, 6, day, hour, minute, tzinfo=zone)


# When the links here were emailed, unless a test says otherwise.
MONDAY_MORNING = local(3, 10)


def schedule(dbsession: Session, firm: Any, *reminders: tuple[int, str], zone: str = "") -> None:
    settings = dbsession.get(FirmSettings, firm.id)
    assert settings is not None
    settings.reminders = [
        {"days": days, "relative_to": relative_to, "message": f"Reminder {relative_to}{days:+d}"}
        for days, relative_to in reminders
    ]
    settings.time_zone = zone or "America/New_York"
    dbsession.flush()


def sent_link(
    dbsession: Session,
    app: Any,
    account: Any,
    *,
    due: dt.date | None,
    sent: dt.datetime = MONDAY_MORNING,
    emails: tuple[str, ...] = ("client@example.test",),
    locale: str = "en",
) -> PaymentLink:
    """A link emailed at ``sent``, never expiring (the clock here is not the machine's)."""
    new = NewLink(
        merchant_account=account,
        amount_minor=10_000,
        due_date=due,
        emails=list(emails),
        locale=locale,
    )
    link, _token = create_link(dbsession, app.registry["clientpay.encryptor"], None, new)
    link.sent_at, link.email_status, link.expires_at = sent, EMAIL_SENT, None
    dbsession.flush()
    return link


def run(app: Any, now: dt.datetime) -> int:
    count: int = app.registry["clientpay.jobs"].run_now(SEND_JOB, now.astimezone(dt.UTC))
    return count


def reminders_of(dbsession: Session, link: PaymentLink) -> list[LinkReminder]:
    dbsession.expire_all()
    return list(
        dbsession.execute(
            select(LinkReminder).where(LinkReminder.link_id == link.id).order_by(LinkReminder.id)
        ).scalars()
    )


def reminder_emails(dbsession: Session, link: PaymentLink) -> list[OutboxMessage]:
    return list(
        dbsession.execute(
            select(OutboxMessage).where(
                OutboxMessage.link_id == link.id, OutboxMessage.kind == KIND_REMINDER
            )
        ).scalars()
    )


def sent_days(dbsession: Session, link: PaymentLink, zone: ZoneInfo = NEW_YORK) -> list[str]:
    """Each reminder sent: its key and the firm's day and hour it went out."""
    return [
        f"{r.reminder_key} {r.sent_at.astimezone(zone):%m-%d %H:%M}"
        for r in reminders_of(dbsession, link)
    ]


@pytest.fixture
def account(firm: Any) -> Any:
    return MerchantAccountFactory(firm=firm)


def test_reminders_go_on_their_days_once_each(dbsession, app, firm, account):
    schedule(dbsession, firm, (-3, "due_date"), (1, "due_date"), (7, "sent"))
    thursday = sent_link(dbsession, app, account, due=dt.date(2030, 6, 13))
    # Three days before a Tuesday is a Saturday: that one goes on the Monday.
    tuesday = sent_link(dbsession, app, account, due=dt.date(2030, 6, 11))
    no_due_date = sent_link(dbsession, app, account, due=None)

    # The workers run every two hours, round the clock, for three weeks.
    for moment in every(local(3, 0), local(24, 0), dt.timedelta(hours=2)):
        run(app, moment)

    assert sent_days(dbsession, thursday) == ["due_date-3 06-10 10:00", "due_date+1 06-14 10:00"]
    assert sent_days(dbsession, tuesday) == ["due_date-3 06-10 10:00", "due_date+1 06-12 10:00"]
    # A "sent" reminder is for links without a due date, and only for them.
    assert sent_days(dbsession, no_due_date) == ["sent+7 06-10 10:00"]
    assert [r.due_on for r in reminders_of(dbsession, tuesday)] == [
        dt.date(2030, 6, 8),
        dt.date(2030, 6, 12),
    ]
    for link, count in ((thursday, 2), (tuesday, 2), (no_due_date, 1)):
        assert len(reminder_emails(dbsession, link)) == count
        assert dbsession.get(PaymentLink, link.id).reminders_sent == count
    # The reminder's own message travels with its email.
    messages = sorted(m.params["message"] for m in reminder_emails(dbsession, thursday))
    assert messages == ["Reminder due_date+1", "Reminder due_date-3"]


def test_three_days_of_downtime_send_one_catch_up(dbsession, app, firm, account):
    schedule(dbsession, firm, (1, "due_date"))
    link = sent_link(dbsession, app, account, due=dt.date(2030, 6, 4))
    ten_minutes = dt.timedelta(minutes=10)
    for moment in every(local(4, 9), local(4, 17), ten_minutes):
        run(app, moment)
    assert reminders_of(dbsession, link) == []

    # Down on Wednesday (when it fell due), Thursday and Friday; back on Monday.
    results = [run(app, m) for m in every(local(10, 8), local(12, 17), ten_minutes)]

    assert sum(results) == 1
    assert sent_days(dbsession, link) == ["due_date+1 06-10 09:00"]
    assert reminders_of(dbsession, link)[0].due_on == dt.date(2030, 6, 5)
    assert len(reminder_emails(dbsession, link)) == 1


def test_after_downtime_a_link_gets_the_latest_reminder_due_not_all_of_them(
    dbsession, app, firm, account
):
    schedule(dbsession, firm, (1, "due_date"), (3, "due_date"))
    link = sent_link(dbsession, app, account, due=dt.date(2030, 6, 4))

    # Both fell due while the workers were down (Wednesday and Friday).
    results = [run(app, m) for m in every(local(10, 9), local(14, 17), dt.timedelta(hours=1))]

    assert sum(results) == 1
    assert sent_days(dbsession, link) == ["due_date+3 06-10 09:00"]
    assert dbsession.get(PaymentLink, link.id).reminders_sent == 1


def test_a_reminder_too_old_to_catch_up_is_let_go(dbsession, app, firm, account):
    # Added to the schedule long after it would have fallen due for this link.
    schedule(dbsession, firm, (1, "due_date"))
    link = sent_link(
        dbsession, app, account, due=dt.date(2030, 5, 1), sent=local(3, 10) - dt.timedelta(days=40)
    )
    assert run(app, local(10, 10)) == 0
    assert reminders_of(dbsession, link) == []


def test_only_outstanding_links_that_may_be_reminded_get_reminders(dbsession, app, firm, account):
    schedule(dbsession, firm, (1, "due_date"))
    due = dt.date(2030, 6, 6)
    outstanding = sent_link(dbsession, app, account, due=due)
    skipped = {}
    for status in (
        STATUS_PAID,
        STATUS_PARTIALLY_PAID,
        STATUS_CANCELLED,
        STATUS_EXPIRED,
        STATUS_PROCESSING,
    ):
        skipped[status] = sent_link(dbsession, app, account, due=due)
        skipped[status].status = status
    skipped["switched off"] = sent_link(dbsession, app, account, due=due)
    skipped["switched off"].reminders_off = True
    skipped["past its expiry"] = sent_link(dbsession, app, account, due=due)
    skipped["past its expiry"].expires_at = local(7, 12)
    skipped["never emailed"] = sent_link(dbsession, app, account, due=due, emails=())
    unsent = sent_link(dbsession, app, account, due=due)
    unsent.sent_at = None
    skipped["never sent"] = unsent
    skipped["sent on the day it fell due"] = sent_link(
        dbsession, app, account, due=due, sent=local(7, 9)
    )
    dbsession.flush()

    assert run(app, local(10, 10)) == 1

    assert len(reminders_of(dbsession, outstanding)) == 1
    for why, link in skipped.items():
        assert reminders_of(dbsession, link) == [], why
        assert reminder_emails(dbsession, link) == [], why
        assert dbsession.get(PaymentLink, link.id).reminders_sent == 0, why


def test_another_firms_schedule_reminds_only_its_own_links(dbsession, app, firm, account):
    schedule(dbsession, firm, (1, "due_date"))
    other_firm = FirmFactory()
    other = sent_link(
        dbsession, app, MerchantAccountFactory(firm=other_firm), due=dt.date(2030, 6, 6)
    )
    ours = sent_link(dbsession, app, account, due=dt.date(2030, 6, 6))
    assert run(app, local(10, 10)) == 1
    assert len(reminders_of(dbsession, ours)) == 1
    assert reminders_of(dbsession, other) == []


def test_never_outside_business_hours_in_the_firms_zone(dbsession, app, firm, account):
    schedule(dbsession, firm, (1, "due_date"), zone="America/Los_Angeles")
    link = sent_link(dbsession, app, account, due=dt.date(2030, 6, 6))
    new_york = FirmFactory()
    schedule(dbsession, new_york, (1, "due_date"))
    theirs = sent_link(
        dbsession, app, MerchantAccountFactory(firm=new_york), due=dt.date(2030, 6, 6)
    )

    # 8:30 in Los Angeles is 11:30 in New York: the New York firm's reminder goes, ours waits.
    assert run(app, local(7, 8, 30, LOS_ANGELES)) == 1
    assert len(reminders_of(dbsession, theirs)) == 1
    assert reminders_of(dbsession, link) == []
    # 17:00 is closed; so are Saturday and Sunday.
    assert run(app, local(7, 17, 0, LOS_ANGELES)) == 0
    assert run(app, local(8, 12, 0, LOS_ANGELES)) == 0
    assert run(app, local(9, 12, 0, LOS_ANGELES)) == 0
    assert reminders_of(dbsession, link) == []

    assert run(app, local(10, 9, 30, LOS_ANGELES)) == 1
    assert sent_days(dbsession, link, LOS_ANGELES) == ["due_date+1 06-10 09:30"]


def test_the_reminder_email_is_the_link_email_with_the_reminders_message(
    dbsession, app, firm, account
):
    schedule(dbsession, firm, (1, "due_date"))
    new = NewLink(
        merchant_account=account,
        amount_minor=10_000,
        due_date=dt.date(2030, 6, 6),
        emails=["cliente@example.test"],
        locale="es",
        message="Original words",
    )
    link, token = create_link(dbsession, app.registry["clientpay.encryptor"], None, new)
    link.sent_at, link.email_status, link.expires_at = local(3, 10), EMAIL_SENT, None
    dbsession.flush()
    assert run(app, local(10, 10)) == 1

    (row,) = reminder_emails(dbsession, link)
    assert row.recipients == ["cliente@example.test"]
    composer = Work(app.registry, dbsession, transaction.TransactionManager()).find_service(
        MailComposer
    )
    composed = composer.compose(dbsession, row, local(10, 10))
    assert composed.subject.startswith("Recordatorio: Solicitud de pago")
    body = composed.message.body
    assert "Reminder due_date+1" in body
    assert "Original words" not in body
    # The same link the client was sent first.
    assert f"/pay/{token}" in body
    # The link's own email stays as it was: sent, at the time it was sent.
    dbsession.expire_all()
    fresh = dbsession.get(PaymentLink, link.id)
    assert (fresh.email_status, fresh.sent_at) == (EMAIL_SENT, local(3, 10))


# ----------------------------------------------------------------------------- the link's page


@pytest.fixture
def staff_page(testapp: webtest.TestApp, staff: Any) -> webtest.TestApp:
    login(testapp, staff)
    return testapp


def test_the_links_page_shows_what_was_sent_when_and_switches_reminders_off(
    staff_page, dbsession, app, staff
):
    account = MerchantAccountFactory(firm=staff.firm)
    schedule(dbsession, staff.firm, (1, "due_date"), (3, "due_date"))
    link = sent_link(dbsession, app, account, due=dt.date(2030, 6, 6))
    assert run(app, local(7, 11)) == 1

    page = staff_page.get(f"/links/{link.id}")
    rows = page.html.select("[data-reminder-sent]")
    assert [r.find_all("td")[0].text for r in rows] == ["1: 1 day after the due date"]
    assert "Jun 7, 2030, 11:00 AM EDT" in rows[0].text
    assert staff_page.get(f"/api/v1/links/{link.id}").json["reminders_sent"] == 1

    (switch,) = [f for f in page.forms.values() if f.action.endswith(f"/links/{link.id}/reminders")]
    answer = switch.submit().follow()
    assert "No reminders will be sent for this link." in answer.text
    assert answer.html.select_one("[data-reminders-off]") is not None
    dbsession.expire_all()
    assert dbsession.get(PaymentLink, link.id).reminders_off is True
    assert staff_page.get(f"/api/v1/links/{link.id}").json["reminders_off"] is True

    assert run(app, local(10, 11)) == 0
    assert len(reminders_of(dbsession, link)) == 1


def test_the_switch_is_for_the_firms_own_links_only(staff_page, dbsession, app):
    other = sent_link(dbsession, app, MerchantAccountFactory(firm=FirmFactory()), due=None)
    staff_page.post(
        f"/links/{other.id}/reminders",
        {"reminders": "off", "csrf_token": csrf_token(staff_page)},
        status=404,
    )
    dbsession.expire_all()
    assert dbsession.get(PaymentLink, other.id).reminders_off is False


def test_the_switch_needs_the_csrf_token(staff_page, dbsession, app, staff):
    link = sent_link(dbsession, app, MerchantAccountFactory(firm=staff.firm), due=None)
    staff_page.post(f"/links/{link.id}/reminders", {"reminders": "off"}, status=403)
    dbsession.expire_all()
    assert dbsession.get(PaymentLink, link.id).reminders_off is False


def test_counts_of_reminders_stay_per_link(dbsession, app, firm, account):
    schedule(dbsession, firm, (1, "sent"))
    links = [sent_link(dbsession, app, account, due=None) for _ in range(3)]
    assert run(app, local(4, 10)) == 3
    assert run(app, local(4, 11)) == 0
    total = dbsession.execute(select(func.sum(PaymentLink.reminders_sent))).scalar_one()
    assert total == 3
    assert {len(reminders_of(dbsession, link)) for link in links} == {1}


def test_the_api_switches_a_links_reminders_off_and_on(testapp, dbsession, app, staff, staff_auth):
    account = MerchantAccountFactory(firm=staff.firm)
    schedule(dbsession, staff.firm, (1, "due_date"))
    link = sent_link(dbsession, app, account, due=dt.date(2030, 6, 6))

    body = testapp.patch_json(
        f"/api/v1/links/{link.id}", {"reminders_off": True}, headers=staff_auth
    ).json
    assert (body["id"], body["reminders_off"]) == (link.id, True)
    assert run(app, local(10, 11)) == 0

    body = testapp.patch_json(
        f"/api/v1/links/{link.id}", {"reminders_off": False}, headers=staff_auth
    ).json
    assert body["reminders_off"] is False
    assert run(app, local(10, 11)) == 1
    assert testapp.get(f"/api/v1/links/{link.id}", headers=staff_auth).json["reminders_sent"] == 1


def test_the_api_switch_is_for_the_firms_own_links_and_takes_only_the_switch(
    testapp, dbsession, app, staff, staff_auth
):
    other = sent_link(dbsession, app, MerchantAccountFactory(firm=FirmFactory()), due=None)
    testapp.patch_json(
        f"/api/v1/links/{other.id}", {"reminders_off": True}, headers=staff_auth, status=404
    )
    dbsession.expire_all()
    assert dbsession.get(PaymentLink, other.id).reminders_off is False

    ours = sent_link(dbsession, app, MerchantAccountFactory(firm=staff.firm), due=None)
    for body in ({"reminders_off": "yes"}, {"status": "paid"}, {}):
        testapp.patch_json(f"/api/v1/links/{ours.id}", body, headers=staff_auth, status=422)
    dbsession.expire_all()
    fresh = dbsession.get(PaymentLink, ours.id)
    assert (fresh.reminders_off, fresh.status) == (False, "outstanding")


class WorkerDied(Exception):
    """What the fault below raises: the worker gone in the middle of a batch."""


@contextmanager
def dying_at(statement_start: str, occurrence: int, connection: Any) -> Iterator[None]:
    """The database connection fails at the ``occurrence``-th statement beginning with
    ``statement_start``: the worker dies there, its transaction unfinished."""
    seen = 0

    def fail(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        nonlocal seen
        if statement.lstrip().startswith(statement_start):
            seen += 1
            if seen == occurrence:
                raise WorkerDied(statement_start)

    event.listen(connection, "before_cursor_execute", fail)
    try:
        yield
    finally:
        event.remove(connection, "before_cursor_execute", fail)


def test_a_run_that_dies_between_batches_loses_nothing_and_sends_nothing_twice(
    dbsession, app, firm, account, db_connection
):
    schedule(dbsession, firm, (1, "due_date"))
    links = [sent_link(dbsession, app, account, due=dt.date(2030, 6, 6)) for _ in range(5)]
    queue = app.registry["clientpay.jobs"]

    # Two links to a batch; the second batch dies after its outbox rows, before its records.
    with dying_at("INSERT INTO link_reminders", 2, db_connection), pytest.raises(WorkerDied):
        queue.run_now(SEND_JOB, local(10, 10).astimezone(dt.UTC), 2)

    reminded = [link for link in links if reminders_of(dbsession, link)]
    assert reminded == links[:2]
    for link in links:
        count = 1 if link in reminded else 0
        assert len(reminder_emails(dbsession, link)) == count
        assert dbsession.get(PaymentLink, link.id).reminders_sent == count

    # The next run sends the rest, once each; the one after finds nothing left.
    assert run(app, local(10, 10, 10)) == 3
    assert run(app, local(10, 10, 20)) == 0
    for link in links:
        assert len(reminders_of(dbsession, link)) == 1
        emails = reminder_emails(dbsession, link)
        assert len(emails) == 1
        # Each committed batch's deliveries went out after its commit.
        assert emails[0].status == OUTBOX_SENT
        assert reminders_of(dbsession, link)[0].outbox_message_id == emails[0].id
        assert dbsession.get(PaymentLink, link.id).reminders_sent == 1


def test_a_catch_up_over_several_days_records_each_links_own_day(dbsession, app, firm, account):
    schedule(dbsession, firm, (1, "due_date"))
    # Due Tuesday to Thursday: their "+1" fell due Wednesday to Friday, while workers were
    # down; the links are written a batch per day, two at most to a batch.
    due_days = [dt.date(2030, 6, 4), dt.date(2030, 6, 5), dt.date(2030, 6, 5), dt.date(2030, 6, 6)]
    links = [sent_link(dbsession, app, account, due=day) for day in due_days]
    queue = app.registry["clientpay.jobs"]

    assert queue.run_now(SEND_JOB, local(10, 10).astimezone(dt.UTC), 2) == 4

    for link, due in zip(links, due_days, strict=True):
        (reminder,) = reminders_of(dbsession, link)
        assert reminder.due_on == due + dt.timedelta(days=1)
        assert reminder.reminder_key == "due_date+1"
