"""The outbox when things break: the mail server down, workers dying, retries running out.
Nothing is lost, nothing is sent twice, and the link's secret never leaks on the way."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterator
from typing import Any

import pytest
from pyramid.router import Router
from sqlalchemy import select

from clientpay_connect.admin.models import MerchantAccount, NotificationRecipient
from clientpay_connect.db import utcnow
from clientpay_connect.links.models import EMAIL_FAILED, EMAIL_SENT, EMAIL_WITHHELD, PaymentLink
from clientpay_connect.links.services import NewLink, cancel_links, create_link, pay_url
from clientpay_connect.mail.models import (
    KIND_LINK,
    OUTBOX_FAILED,
    OUTBOX_PENDING,
    OUTBOX_SENDING,
    OUTBOX_SENT,
    OUTBOX_WITHHELD,
    OutboxMessage,
)
from clientpay_connect.mail.outbox import DELIVER_JOB, KIND_EMAIL_FAILED, SWEEP_JOB, queue_email
from clientpay_connect.mail.tasks import SKIPPED, RetryPolicy, claim, error_text
from clientpay_connect.work import Work
from tests import factories
from tests.support.smtp import SMTPServer, bound_to, send_link, smtp_application

MAX_ATTEMPTS = 4
GRACE = dt.timedelta(seconds=60)
# aiosmtpd, standing in for the recipient's mail server, logs the DATA it receives: the
# message itself, which of course carries the link. Those records are the far side's.
RECEIVING_SERVER_LOGGERS = ("mail.log", "mail.debug")


@pytest.fixture(scope="module")
def smtp_overrides() -> dict[str, str]:
    # A first retry 2.5-5 s away: far enough that the queue holds it (in tests the queue runs
    # due jobs at once), and the sweep's explicit ``now`` stands in for the wait.
    return {
        "clientpay.mail.retry_base_seconds": "5",
        "clientpay.mail.retry_cap_seconds": "60",
        "clientpay.mail.max_attempts": str(MAX_ATTEMPTS),
        "clientpay.mail.sweep_grace_seconds": str(int(GRACE.total_seconds())),
    }


@pytest.fixture
def smtp(smtp_server: SMTPServer) -> Iterator[SMTPServer]:
    """The server, down until a test starts it."""
    smtp_server.stop()
    smtp_server.clear()
    yield smtp_server
    smtp_server.stop()


@pytest.fixture
def mail_app(smtp_app: Router, db_connection: Any) -> Iterator[Router]:
    # Retries another test left in the queue's schedule would refer to rolled-back rows.
    smtp_app.registry["clientpay.jobs"].huey.flush()
    with bound_to(smtp_app, db_connection):
        yield smtp_app


@pytest.fixture
def account(firm: Any) -> MerchantAccount:
    return factories.MerchantAccountFactory(firm=firm)


def outbox_rows(dbsession: Any, ids: list[int]) -> list[OutboxMessage]:
    return list(
        dbsession.execute(
            select(OutboxMessage)
            .where(OutboxMessage.id.in_(ids))
            .order_by(OutboxMessage.id)
            .execution_options(populate_existing=True)
        ).scalars()
    )


def sweep(app: Router, now: dt.datetime) -> int:
    dispatched: int = app.registry["clientpay.jobs"].run_now(SWEEP_JOB, now)
    return dispatched


def past_every_retry(dbsession: Any, ids: list[int]) -> dt.datetime:
    """A moment by which every pending retry of ``ids`` is overdue for the sweep."""
    latest = max(row.next_attempt_at for row in outbox_rows(dbsession, ids))
    return latest + GRACE + dt.timedelta(seconds=1)


def queue_many(app: Router, user: Any, account: MerchantAccount, count: int) -> list[int]:
    """``count`` links, each emailed to its own client, in one transaction."""
    with Work.fresh(app.registry) as work:
        ids = []
        for n in range(count):
            link, _token = create_link(
                work.dbsession,
                app.registry["clientpay.encryptor"],
                None,
                NewLink(
                    merchant_account=work.dbsession.get(MerchantAccount, account.id),
                    amount_minor=1000 + n,
                    emails=[f"client{n}@example.test"],
                    invoice_number=f"INV-{n}",
                ),
            )
            row = queue_email(
                work, firm_id=link.firm_id, kind=KIND_LINK,
                recipients=list(link.emails), link_id=link.id,
            )  # fmt: skip
            ids.append(row.id)
    return ids


def run_the_queues_own_retries(app: Router) -> None:
    """Fire every retry the queue scheduled, as a worker would once their time came."""
    huey = app.registry["clientpay.jobs"].huey
    later = (utcnow() + dt.timedelta(days=1)).replace(tzinfo=None)
    for task in huey.read_schedule(later):
        huey.execute(task, later)


def test_acceptance_smtp_down_while_100_messages_are_queued_none_lost_none_doubled(
    mail_app, smtp, dbsession, staff, account
):
    ids = queue_many(mail_app, staff, account, 100)

    failed_once = outbox_rows(dbsession, ids)
    assert len(failed_once) == 100
    assert {(r.status, r.attempts) for r in failed_once} == {(OUTBOX_PENDING, 1)}
    assert all("ConnectionRefusedError" in r.last_error for r in failed_once)
    assert all(r.next_attempt_at > r.created_at for r in failed_once)
    # The queue holds a retry for each, at its own jittered time.
    assert mail_app.registry["clientpay.jobs"].huey.scheduled_count() == 100
    assert sweep(mail_app, utcnow()) == 0

    # Past the retries, the server still down: each fails a second time and waits longer.
    assert sweep(mail_app, past_every_retry(dbsession, ids)) == 100
    assert {(r.status, r.attempts) for r in outbox_rows(dbsession, ids)} == {(OUTBOX_PENDING, 2)}
    assert smtp.messages == []

    smtp.start()
    for _round in range(MAX_ATTEMPTS):
        if {r.status for r in outbox_rows(dbsession, ids)} == {OUTBOX_SENT}:
            break
        sweep(mail_app, past_every_retry(dbsession, ids))

    rows = outbox_rows(dbsession, ids)
    assert {r.status for r in rows} == {OUTBOX_SENT}
    per_message_id = smtp.count_by_message_id()
    assert len(per_message_id) == 100 and set(per_message_id.values()) == {1}
    assert set(per_message_id) == {r.message_id for r in rows}
    assert sorted(m.rcpt_tos for m in smtp.messages) == sorted(
        (f"client{n}@example.test",) for n in range(100)
    )

    # Late duplicates (the queue's own retries firing, another sweep) change nothing.
    run_the_queues_own_retries(mail_app)
    assert sweep(mail_app, utcnow() + dt.timedelta(days=1)) == 0
    assert len(smtp.messages) == 100
    assert {r.status for r in outbox_rows(dbsession, ids)} == {OUTBOX_SENT}


def test_after_the_last_attempt_the_message_fails_and_the_firm_hears_of_it(
    mail_app, smtp, dbsession, firm, staff, account
):
    dbsession.add(
        NotificationRecipient(firm_id=firm.id, email="ops@firm.test", events=["email_failed"])
    )
    dbsession.flush()
    sent = send_link(mail_app, staff, account, invoice_number="INV-5")
    ids = [sent["outbox_id"]]

    for _attempt in range(2, MAX_ATTEMPTS + 1):
        sweep(mail_app, past_every_retry(dbsession, ids))

    [row] = outbox_rows(dbsession, ids)
    assert (row.status, row.attempts) == (OUTBOX_FAILED, MAX_ATTEMPTS)
    assert row.last_error.startswith("ConnectionRefusedError")
    link = dbsession.get(PaymentLink, sent["link_id"], populate_existing=True)
    assert link.email_status == EMAIL_FAILED
    notice = dbsession.execute(
        select(OutboxMessage).where(OutboxMessage.kind == KIND_EMAIL_FAILED)
        .where(OutboxMessage.link_id == sent["link_id"])
    ).scalar_one()  # fmt: skip
    assert notice.recipients == ["ops@firm.test"]

    # A failed message stays failed; the notice goes out once the server is back.
    smtp.start()
    sweep(mail_app, past_every_retry(dbsession, [notice.id]))
    assert outbox_rows(dbsession, ids)[0].attempts == MAX_ATTEMPTS
    [received] = smtp.messages
    assert received.rcpt_tos == ("ops@firm.test",)
    assert received.message["Subject"] == "Email not delivered: payment link for invoice INV-5"
    assert f"could not be delivered after {MAX_ATTEMPTS} attempts" in received.text
    assert "To: ana@example.test" in received.text


def test_a_claimed_message_is_left_alone_until_its_worker_is_presumed_dead(
    mail_app, smtp, dbsession, staff, account
):
    sent = send_link(mail_app, staff, account)
    ids = [sent["outbox_id"]]
    smtp.start()
    now = past_every_retry(dbsession, ids)

    # Worker A claims the message and then dies without a word.
    lease_until = now + dt.timedelta(minutes=5)
    with Work.fresh(mail_app.registry) as work:
        assert claim(work.dbsession, sent["outbox_id"], now, lease_until)

    # Worker B, handed the same message, and the sweep within the lease: hands off.
    queue = mail_app.registry["clientpay.jobs"]
    assert queue.run_now(DELIVER_JOB, sent["outbox_id"], now.isoformat()) == SKIPPED
    assert sweep(mail_app, now) == 0
    [row] = outbox_rows(dbsession, ids)
    assert (row.status, row.attempts) == (OUTBOX_SENDING, 2)
    assert smtp.messages == []

    # Once the lease is over, the sweep counts the lost attempt and the message goes, once.
    sweep(mail_app, lease_until + dt.timedelta(seconds=1))
    [row] = outbox_rows(dbsession, ids)
    assert (row.status, row.attempts) == (OUTBOX_PENDING, 2)
    assert row.last_error.startswith("Interrupted")
    sweep(mail_app, past_every_retry(dbsession, ids))
    [row] = outbox_rows(dbsession, ids)
    assert (row.status, row.attempts) == (OUTBOX_SENT, 3)
    assert len(smtp.messages) == 1
    link = dbsession.get(PaymentLink, sent["link_id"], populate_existing=True)
    assert link.email_status == EMAIL_SENT


def test_the_link_token_is_in_no_outbox_row_no_queued_job_and_no_log_record(
    mail_app, smtp, dbsession, staff, account, caplog
):
    caplog.set_level(logging.DEBUG)
    sent = send_link(mail_app, staff, account)  # fails: the server is down
    second = send_link(mail_app, staff, account)
    smtp.start()
    sweep(mail_app, past_every_retry(dbsession, [sent["outbox_id"], second["outbox_id"]]))
    tokens = [sent["token"], second["token"]]
    # The scan means something only if the secret did travel: in the emails.
    assert sorted(t for m in smtp.messages for t in tokens if t in m.text) == sorted(tokens)

    for row in dbsession.execute(select(OutboxMessage)).scalars():
        stored = repr([getattr(row, c.key) for c in OutboxMessage.__table__.columns])
        assert not [t for t in tokens if t in stored]

    huey = mail_app.registry["clientpay.jobs"].huey
    queued = [repr((task.name, task.args, task.kwargs)) for task in huey.scheduled()]
    assert queued, "the first message's retry is still scheduled in the queue"
    assert not [t for t in tokens for q in queued if t in q]

    ours = [r for r in caplog.records if not r.name.startswith(RECEIVING_SERVER_LOGGERS)]
    assert any(r.name == "clientpay_connect.mail.tasks" for r in ours)
    for record in ours:
        logged = f"{record.getMessage()} {record.args!r} {record.exc_text or ''}"
        assert not [t for t in tokens if t in logged], record.name


def test_an_error_that_quotes_the_link_is_masked():
    url = pay_url("http://localhost", "s3cr3t-token")
    masked = error_text(ValueError(f"cannot reach {url}\nretry"), ["s3cr3t-token", url])
    assert masked == "ValueError: cannot reach [redacted] retry"


def test_retry_delays_grow_exponentially_with_jitter_up_to_a_cap():
    policy = RetryPolicy(
        base_seconds=30, cap_seconds=3600, max_attempts=8, lease_seconds=300,
        sweep_grace_seconds=60,
    )  # fmt: skip
    for attempts, full in ((1, 30), (2, 60), (3, 120), (7, 1920), (8, 3600), (40, 3600)):
        delays = {policy.delay(attempts).total_seconds() for _ in range(50)}
        assert all(full * 0.5 <= d <= full for d in delays), attempts
        assert len(delays) > 1, "no jitter"


def test_a_new_message_goes_out_even_when_the_workers_clock_is_behind(
    mail_app, smtp, dbsession, firm, staff, account
):
    smtp.start()
    with Work.fresh(mail_app.registry) as work:
        link, _token = create_link(
            work.dbsession,
            mail_app.registry["clientpay.encryptor"],
            None,
            NewLink(
                merchant_account=work.dbsession.get(MerchantAccount, account.id),
                amount_minor=700,
                emails=["ana@example.test"],
            ),
        )
        row = queue_email(
            work, firm_id=firm.id, kind=KIND_LINK,
            recipients=["ana@example.test"], link_id=link.id,
        )  # fmt: skip
        # As if written by a web server whose clock is ahead of the worker's.
        row.next_attempt_at = utcnow() + dt.timedelta(seconds=30)
        outbox_id = row.id

    assert outbox_rows(dbsession, [outbox_id])[0].status == OUTBOX_SENT
    assert len(smtp.messages) == 1


def test_with_a_real_queue_the_retry_is_queued_for_its_time(
    app_settings, smtp_server, db_connection, tmp_path, dbsession, staff, account
):
    """Outside test mode, jobs wait in the queue: the retry is a queued task with an eta."""
    smtp_server.stop()
    queued_mode = {
        "clientpay.jobs.immediate": "false",
        "clientpay.redis_url": "",
        "clientpay.jobs.sqlite_path": str(tmp_path / "jobs.sqlite"),
    }
    with (
        smtp_application(app_settings, smtp_server, **queued_mode) as queued_app,
        bound_to(queued_app, db_connection),
    ):
        huey = queued_app.registry["clientpay.jobs"].huey
        sent = send_link(queued_app, staff, account)
        first = huey.dequeue()
        assert (first.name, first.args, first.eta) == (DELIVER_JOB, (sent["outbox_id"],), None)

        huey.execute(first)  # a worker runs it: the server is down

        [row] = outbox_rows(dbsession, [sent["outbox_id"]])
        assert (row.status, row.attempts) == (OUTBOX_PENDING, 1)
        retry = huey.dequeue()
        assert (retry.name, retry.args) == (DELIVER_JOB, (sent["outbox_id"],))
        assert retry.eta == row.next_attempt_at.astimezone(dt.UTC).replace(tzinfo=None)
        assert huey.dequeue() is None


@pytest.mark.parametrize(
    ("closing", "reason"),
    [
        ("cancel", "cancelled"),
        ("pay", "paid"),
        ("pay part", "paid in part"),
        ("expire", "expired"),
    ],
)
def test_a_link_closed_while_its_email_waited_is_not_emailed_after_all(
    mail_app, smtp, dbsession, staff, account, closing, reason
):
    sent = send_link(mail_app, staff, account)
    [waiting] = outbox_rows(dbsession, [sent["outbox_id"]])
    assert (waiting.status, waiting.attempts) == (OUTBOX_PENDING, 1)  # the server was down
    with Work.fresh(mail_app.registry) as work:
        if closing == "cancel":
            cancel_links(work.dbsession, staff.firm_id, [sent["link_id"]])
        else:
            link = work.dbsession.get(PaymentLink, sent["link_id"])
            if closing == "pay":
                link.status, link.amount_paid_minor, link.paid_at = "paid", 123450, utcnow()
            elif closing == "pay part":
                link.status, link.amount_paid_minor, link.paid_at = "partially_paid", 50, utcnow()
            else:
                link.expires_at = utcnow() - dt.timedelta(minutes=1)
    smtp.start()
    sweep(mail_app, past_every_retry(dbsession, [sent["outbox_id"]]))

    assert smtp.messages == []
    [row] = outbox_rows(dbsession, [sent["outbox_id"]])
    assert row.status == OUTBOX_WITHHELD
    assert f"the link was {reason}" in row.last_error or f"the link {reason}" in row.last_error
    link = dbsession.execute(
        select(PaymentLink)
        .where(PaymentLink.id == sent["link_id"])
        .execution_options(populate_existing=True)
    ).scalar_one()
    assert link.email_status == EMAIL_WITHHELD
    # Nothing brings it back: not the queue's own retry, not another sweep.
    run_the_queues_own_retries(mail_app)
    assert sweep(mail_app, utcnow() + dt.timedelta(days=1)) == 0
    assert smtp.messages == []
