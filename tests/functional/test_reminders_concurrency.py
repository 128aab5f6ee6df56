"""Two runs of the reminders job at the same moment send each reminder once.

On a fresh, committed database (not the suite's rolled-back connection), two threads run the
job together, released by a barrier. On PostgreSQL (CLIENTPAY_TEST_DATABASE_URL; CI) their
transactions overlap: both choose the same links, the second one's conditional UPDATE waits
for the first one's row locks, and the unique (link_id, reminder_key) refuses its copy, so it
chooses again without them. On SQLite the job's transactions begin IMMEDIATE and queue.
"""

from __future__ import annotations

import datetime as dt
import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import transaction
from pyramid.router import Router
from sqlalchemy import func, select

from clientpay_connect import main
from clientpay_connect.accounts.services import create_firm
from clientpay_connect.admin.models import FirmSettings, MerchantAccount
from clientpay_connect.db import get_tm_session
from clientpay_connect.links.models import EMAIL_SENT, PaymentLink
from clientpay_connect.mail.models import KIND_REMINDER, OutboxMessage
from clientpay_connect.reminders.models import LinkReminder
from clientpay_connect.reminders.services import BATCH, SEND_JOB
from tests.support import databases

LINKS = 2 * BATCH + 100
NOW = dt.datetime(2030, 6, 10, 15, 0, tzinfo=dt.UTC)  # a Monday, 11:00 in New York


@pytest.fixture(scope="module")
def committed_app(base_settings: dict[str, Any], tmp_path_factory: Any) -> Iterator[Router]:
    folder: Path = tmp_path_factory.mktemp("reminders-race")
    with databases.fresh_database(folder) as database_url:
        databases.migrate(database_url)
        # The deliveries are not what this is about: they stay queued.
        settings = {**base_settings, "sqlalchemy.url": database_url}
        settings["clientpay.jobs.immediate"] = "false"
        settings["clientpay.jobs.sqlite_path"] = str(folder / "jobs.sqlite")
        app = main({}, **settings)
        try:
            yield app
        finally:
            app.registry["dbengine"].dispose()


def _arrange(app: Router) -> int:
    tm = transaction.TransactionManager(explicit=True)
    with tm:
        dbsession = get_tm_session(app.registry["dbsession_factory"], tm)
        firm = create_firm(dbsession, "Race & Race LLP", "race-" + uuid.uuid4().hex[:8])
        settings = dbsession.get(FirmSettings, firm.id)
        settings.time_zone = "America/New_York"
        settings.reminders = [{"days": 1, "relative_to": "due_date", "message": "Due"}]
        account = MerchantAccount(firm_id=firm.id, name="Operating", kind="operating")
        dbsession.add(account)
        dbsession.flush()
        dbsession.add_all(
            PaymentLink(
                firm_id=firm.id,
                merchant_account_id=account.id,
                token_hash=uuid.uuid4().hex,
                token_encrypted="unused",
                amount_minor=1_000,
                due_date=dt.date(2030, 6, 6),
                emails=["client@example.test"],
                sent_at=dt.datetime(2030, 6, 3, 15, 0, tzinfo=dt.UTC),
                email_status=EMAIL_SENT,
            )
            for _ in range(LINKS)
        )
        dbsession.flush()
        return firm.id


def test_two_runs_at_once_send_each_reminder_once(committed_app):
    firm_id = _arrange(committed_app)
    queue = committed_app.registry["clientpay.jobs"]
    barrier = threading.Barrier(2)

    def one_run() -> int:
        barrier.wait()
        count: int = queue.run_now(SEND_JOB, NOW)
        return count

    with ThreadPoolExecutor(max_workers=2) as pool:
        counts = [f.result(timeout=120) for f in [pool.submit(one_run) for _ in range(2)]]

    assert sum(counts) == LINKS
    tm = transaction.TransactionManager(explicit=True)
    with tm:
        dbsession = get_tm_session(committed_app.registry["dbsession_factory"], tm)
        per_link = dbsession.execute(
            select(LinkReminder.link_id, func.count())
            .where(LinkReminder.firm_id == firm_id)
            .group_by(LinkReminder.link_id)
        ).all()
        assert len(per_link) == LINKS
        assert {count for _link, count in per_link} == {1}
        emails = dbsession.execute(
            select(func.count())
            .select_from(OutboxMessage)
            .where(OutboxMessage.firm_id == firm_id, OutboxMessage.kind == KIND_REMINDER)
        ).scalar_one()
        assert emails == LINKS
        counters = dbsession.execute(
            select(PaymentLink.reminders_sent, func.count())
            .where(PaymentLink.firm_id == firm_id)
            .group_by(PaymentLink.reminders_sent)
        ).all()
        assert counters == [(1, LINKS)]
    # A third run finds nothing left to send.
    assert queue.run_now(SEND_JOB, NOW + dt.timedelta(minutes=10)) == 0
