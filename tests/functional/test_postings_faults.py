"""The sync job against the fake MyCase over real HTTP when MyCase misbehaves: 429 storms,
5xx, answers lost after the payment was recorded, a token expiring and a grant revoked in
the middle of a batch, a multi-invoice payment whose second write fails. Whatever happens,
each allocation ends in MyCase's ledger exactly once.

Postings are run as a worker runs them: each when its time has come (Retry-After, backoff),
in real time, with the backoff and Retry-After kept short by settings.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests
from pyramid.router import Router
from sqlalchemy import select
from sqlalchemy.orm import Session

from clientpay_connect.connect.models import Connection
from clientpay_connect.postings.models import Posting, PostingAttempt
from clientpay_connect.postings.services import SWEEP_JOB
from tests.conftest import csrf_token, login
from tests.factories import MerchantAccountFactory
from tests.fakes.httpserver import running
from tests.fakes.mycase import FakeMyCase
from tests.support.postings_load import (
    drain,
    fake_connection,
    postings_app,
    queued_postings,
    run_sync,
    seed_invoices,
    written_once,
)

CENTS = 125_00


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeMyCase]:
    with running(FakeMyCase(rate_limit=None)) as server:
        yield server


@pytest.fixture(autouse=True)
def loopback_oauth(monkeypatch: pytest.MonkeyPatch) -> None:
    # oauthlib refuses plain HTTP unless told; only the fake speaks it, on 127.0.0.1.
    monkeypatch.setenv("OAUTHLIB_INSECURE_TRANSPORT", "1")


@pytest.fixture(scope="module")
def app(app_settings: dict[str, Any], fake: FakeMyCase) -> Iterator[Router]:
    settings = {
        "clientpay.http_timeout": "2",
        # A job would rather be rescheduled at Retry-After than hold its worker.
        "clientpay.mycase.max_rate_wait": "0",
        "clientpay.mycase.rate_limit": "none",
    }
    with postings_app(app_settings, fake, **settings) as application:
        yield application


@pytest.fixture
def invoices(fake: FakeMyCase) -> list[int]:
    return seed_invoices(fake, 4)


@pytest.fixture
def connection(app: Router, dbsession: Session, firm: Any, fake: FakeMyCase) -> Connection:
    return fake_connection(app, dbsession, firm.id, fake)


def postings(
    dbsession: Session, firm: Any, connection: Connection, invoices: list[int], count: int
) -> list[int]:
    account = MerchantAccountFactory(firm=firm)
    plans = [[(invoices[n % len(invoices)], CENTS + n)] for n in range(count)]
    return queued_postings(dbsession, firm.id, account.id, connection.id, plans)


def statuses(dbsession: Session, ids: list[int]) -> list[str]:
    dbsession.expire_all()
    return list(
        dbsession.execute(
            select(Posting.status).where(Posting.id.in_(ids)).order_by(Posting.id)
        ).scalars()
    )


def outcomes(dbsession: Session, ids: list[int]) -> list[str]:
    return list(
        dbsession.execute(
            select(PostingAttempt.outcome).where(PostingAttempt.posting_id.in_(ids))
        ).scalars()
    )


def test_a_429_storm_waits_without_using_attempts_and_writes_each_once(
    app: Router,
    dbsession: Session,
    firm: Any,
    connection: Connection,
    invoices: list[int],
    fake: FakeMyCase,
) -> None:
    ids = postings(dbsession, firm, connection, invoices, 10)
    before = fake.requests[-1].at if fake.requests else 0.0
    fake.throttle_next(4, retry_after=1)
    drain(app, dbsession, ids)
    assert statuses(dbsession, ids) == ["posted"] * 10
    assert written_once(fake, dbsession, ids) == []
    # Rate limits are the vendor's pace, not failures: one attempt each, the one that wrote.
    assert {p.attempt_count for p in dbsession.query(Posting).filter(Posting.id.in_(ids))} == {1}
    assert "rate_limited" in outcomes(dbsession, ids)
    # While MyCase asked for a pause nobody called it: only the four 429s it gave out.
    answered = [r.status for r in fake.requests if r.at > before]
    assert answered.count(429) == 4


def test_5xx_answers_are_retried_with_backoff_and_write_each_once(
    app: Router,
    dbsession: Session,
    firm: Any,
    connection: Connection,
    invoices: list[int],
    fake: FakeMyCase,
) -> None:
    ids = postings(dbsession, firm, connection, invoices, 8)
    fake.fail_next(6, status=503)
    drain(app, dbsession, ids)
    assert statuses(dbsession, ids) == ["posted"] * 8
    assert written_once(fake, dbsession, ids) == []
    assert "transient" in outcomes(dbsession, ids)


@pytest.mark.parametrize("how", ["drop", "hold"])
def test_a_payment_recorded_whose_answer_was_lost_is_found_not_written_again(
    app: Router,
    dbsession: Session,
    firm: Any,
    connection: Connection,
    invoices: list[int],
    fake: FakeMyCase,
    how: str,
) -> None:
    ids = postings(dbsession, firm, connection, invoices, 4)
    # The connection cut after MyCase recorded it, or its answer later than our timeout.
    fake.lose_next_payment_answers(2, how=how)  # type: ignore[arg-type]
    drain(app, dbsession, ids)
    assert statuses(dbsession, ids) == ["posted"] * 4
    assert written_once(fake, dbsession, ids) == []
    assert outcomes(dbsession, ids).count("transient") == 2


def test_a_token_expiring_mid_batch_is_refreshed_once_and_the_batch_goes_on(
    app: Router,
    dbsession: Session,
    firm: Any,
    connection: Connection,
    invoices: list[int],
    fake: FakeMyCase,
) -> None:
    ids = postings(dbsession, firm, connection, invoices, 10)
    drain(app, dbsession, ids[:5])
    refreshes = fake.oauth.refreshes
    fake.oauth.expire_access_tokens()
    drain(app, dbsession, ids)
    assert statuses(dbsession, ids) == ["posted"] * 10
    assert fake.oauth.refreshes == refreshes + 1
    assert written_once(fake, dbsession, ids) == []


def reconnect(testapp: Any, admin: Any, connection_id: int) -> None:
    """What an admin does on Admin > Connections: authorize again at MyCase."""
    login(testapp, admin)
    started = testapp.post_json(
        f"/api/v1/connections/{connection_id}/authorize",
        {},
        headers={"X-CSRF-Token": csrf_token(testapp)},
    ).json
    answer = requests.get(started["authorize_url"], allow_redirects=False, timeout=10)
    back = urlsplit(answer.headers["Location"])
    testapp.get(f"{back.path}?{back.query}", status=303)


def test_a_grant_revoked_mid_batch_parks_the_rest_until_reconnected_then_they_post(
    app: Router,
    testapp: Any,
    dbsession: Session,
    firm: Any,
    admin: Any,
    connection: Connection,
    invoices: list[int],
    fake: FakeMyCase,
) -> None:
    ids = postings(dbsession, firm, connection, invoices, 10)
    drain(app, dbsession, ids[:3])
    fake.oauth.expire_access_tokens()
    fake.oauth.revoke_refresh_tokens()
    drain(app, dbsession, ids)
    assert statuses(dbsession, ids) == ["posted"] * 3 + ["queued"] * 7
    dbsession.refresh(connection)
    assert connection.status == "needs_reauthorization"
    waiting = list(dbsession.execute(select(Posting).where(Posting.id.in_(ids[3:]))).scalars())
    assert all(p.next_attempt_at is None and p.attempt_count == 0 for p in waiting)
    assert all("connected again" in p.reason for p in waiting)
    queue = app.registry["clientpay.jobs"]
    # The sweep leaves them alone while the connection is down.
    assert queue.run_now(SWEEP_JOB) == 0
    reconnect(testapp, admin, connection.id)
    # The worker's sweep (on its timer) queues them; here the queue runs them at once.
    assert queue.run_now(SWEEP_JOB) == 7
    assert statuses(dbsession, ids) == ["posted"] * 10
    assert written_once(fake, dbsession, ids) == []


def test_a_multi_invoice_payment_whose_second_write_fails_writes_only_the_rest_on_retry(
    app: Router,
    dbsession: Session,
    firm: Any,
    connection: Connection,
    invoices: list[int],
    fake: FakeMyCase,
) -> None:
    first, second = invoices[0], invoices[1]
    account = MerchantAccountFactory(firm=firm)
    [posting_id] = queued_postings(
        dbsession, firm.id, account.id, connection.id, [[(first, 100_00), (second, 200_00)]]
    )
    fake.fail_next(1, status=503, path_prefix=f"/v1/invoices/{second}/payments")
    assert run_sync(app, posting_id) == "retry"
    posting = dbsession.get(Posting, posting_id)
    assert posting is not None
    dbsession.refresh(posting)
    assert posting.status == "queued"
    done = {a["invoice_id"]: a["external_id"] for a in posting.allocations}
    assert done[str(first)] is not None and done[str(second)] is None
    drain(app, dbsession, [posting_id])
    dbsession.refresh(posting)
    assert posting.status == "posted"
    assert fake.counts[f"POST /v1/invoices/{first}/payments"] == 1
    assert fake.counts[f"POST /v1/invoices/{second}/payments"] == 2
    assert written_once(fake, dbsession, [posting_id]) == []


def test_a_payment_to_more_invoices_than_a_lease_can_write_is_written_over_two_attempts(
    app: Router,
    dbsession: Session,
    firm: Any,
    connection: Connection,
    invoices: list[int],
    fake: FakeMyCase,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Each MyCase write may take 2 s (the timeout; no rate waits): a 5 s lease fits two.
    monkeypatch.setitem(app.registry.settings, "clientpay.postings.lease_seconds", "5")
    account = MerchantAccountFactory(firm=firm)
    plan = [(invoices[0], 10_00), (invoices[1], 20_00), (invoices[2], 30_00)]
    [posting_id] = queued_postings(dbsession, firm.id, account.id, connection.id, [plan])
    assert run_sync(app, posting_id) == "retry"
    posting = dbsession.get(Posting, posting_id)
    assert posting is not None
    dbsession.refresh(posting)
    assert [a["external_id"] is not None for a in posting.allocations] == [True, True, False]
    drain(app, dbsession, [posting_id])
    dbsession.refresh(posting)
    assert posting.status == "posted"
    assert [fake.counts[f"POST /v1/invoices/{i}/payments"] for i, _ in plan] == [1, 1, 1]
    assert written_once(fake, dbsession, [posting_id]) == []
