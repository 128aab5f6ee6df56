"""The "links.expire" job: outstanding links past their time become expired, nothing else."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from sqlalchemy.orm import Session

from clientpay_connect.links.models import (
    STATUS_CANCELLED,
    STATUS_EXPIRED,
    STATUS_OUTSTANDING,
    STATUS_PAID,
    STATUS_PARTIALLY_PAID,
    STATUS_PROCESSING,
    PaymentLink,
)
from clientpay_connect.links.services import NewLink, claim, create_link
from clientpay_connect.links.tasks import EXPIRE_JOB
from tests.factories import MerchantAccountFactory

NOW = dt.datetime(2030, 6, 1, 12, 0, tzinfo=dt.UTC)


@pytest.fixture
def account(firm: Any) -> Any:
    return MerchantAccountFactory(firm=firm)


def link_expiring(
    dbsession: Session, app: Any, account: Any, expires_at: dt.datetime | None
) -> PaymentLink:
    link, _token = create_link(
        dbsession,
        app.registry["clientpay.encryptor"],
        None,
        NewLink(merchant_account=account, amount_minor=1_000),
    )
    link.expires_at = expires_at
    dbsession.flush()
    return link


def run_expiry(app: Any, now: dt.datetime) -> int:
    count: int = app.registry["clientpay.jobs"].run_now(EXPIRE_JOB, now)
    return count


def status_of(dbsession: Session, link: PaymentLink) -> str:
    dbsession.expire_all()
    fresh = dbsession.get(PaymentLink, link.id)
    assert fresh is not None
    return fresh.status


def test_outstanding_links_past_their_time_expire(dbsession, app, account):
    overdue = link_expiring(dbsession, app, account, NOW - dt.timedelta(minutes=1))
    on_the_dot = link_expiring(dbsession, app, account, NOW)
    later = link_expiring(dbsession, app, account, NOW + dt.timedelta(minutes=1))
    never = link_expiring(dbsession, app, account, None)

    assert run_expiry(app, NOW) == 2

    assert status_of(dbsession, overdue) == STATUS_EXPIRED
    assert status_of(dbsession, on_the_dot) == STATUS_EXPIRED
    assert status_of(dbsession, later) == STATUS_OUTSTANDING
    assert status_of(dbsession, never) == STATUS_OUTSTANDING


def test_a_link_being_paid_or_finished_is_left_alone(dbsession, app, account):
    past = NOW - dt.timedelta(days=1)
    being_paid = link_expiring(dbsession, app, account, past)
    assert claim(dbsession, being_paid.id)
    paid = link_expiring(dbsession, app, account, past)
    paid.status = STATUS_PAID
    partial = link_expiring(dbsession, app, account, past)
    partial.status, partial.amount_paid_minor = STATUS_PARTIALLY_PAID, 400
    cancelled = link_expiring(dbsession, app, account, past)
    cancelled.status = STATUS_CANCELLED
    dbsession.flush()

    assert run_expiry(app, NOW) == 0

    assert status_of(dbsession, being_paid) == STATUS_PROCESSING
    assert status_of(dbsession, paid) == STATUS_PAID
    assert status_of(dbsession, partial) == STATUS_PARTIALLY_PAID
    assert status_of(dbsession, cancelled) == STATUS_CANCELLED


def test_running_twice_changes_nothing_more(dbsession, app, account):
    link_expiring(dbsession, app, account, NOW - dt.timedelta(hours=1))
    assert run_expiry(app, NOW) == 1
    assert run_expiry(app, NOW) == 0


def test_the_job_runs_every_five_minutes(app):
    huey = app.registry["clientpay.jobs"].huey
    due = {task.name for task in huey.read_periodic(dt.datetime(2030, 6, 1, 12, 5))}
    not_due = {task.name for task in huey.read_periodic(dt.datetime(2030, 6, 1, 12, 7))}
    assert EXPIRE_JOB in due
    assert EXPIRE_JOB not in not_due
