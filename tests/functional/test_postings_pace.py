"""The pace: postings written to a fake MyCase that allows 20 calls a second, with
``clientpay.mycase.rate_limit = 20/second``, are never refused for going too fast; and one
429 (a limit lower than the setting says) pauses the connection for every caller."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from pyramid.router import Router
from sqlalchemy.orm import Session

from clientpay_connect.connect.models import Connection
from tests.factories import MerchantAccountFactory
from tests.fakes.httpserver import running
from tests.fakes.mycase import FakeMyCase
from tests.support.postings_load import (
    drain,
    fake_connection,
    postings_app,
    queued_postings,
    seed_invoices,
    written_once,
)

LIMIT = (20, 1.0)


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeMyCase]:
    with running(FakeMyCase(rate_limit=LIMIT)) as server:
        yield server


@pytest.fixture(autouse=True)
def loopback_oauth(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OAUTHLIB_INSECURE_TRANSPORT", "1")


@pytest.fixture(scope="module")
def app(app_settings: dict[str, Any], fake: FakeMyCase) -> Iterator[Router]:
    with postings_app(
        app_settings, fake, **{"clientpay.mycase.rate_limit": "20/second"}
    ) as application:
        yield application


@pytest.fixture
def connection(app: Router, dbsession: Session, firm: Any, fake: FakeMyCase) -> Connection:
    return fake_connection(app, dbsession, firm.id, fake)


def test_postings_paced_at_the_vendors_limit_are_never_refused(
    app: Router, dbsession: Session, firm: Any, connection: Connection, fake: FakeMyCase
) -> None:
    invoices = seed_invoices(fake, 3)
    account = MerchantAccountFactory(firm=firm)
    plans = [[(invoices[n % 3], 100 + n)] for n in range(25)]
    ids = queued_postings(dbsession, firm.id, account.id, connection.id, plans)
    mark = len(fake.requests)
    drain(app, dbsession, ids)
    seen = [r.status for r in fake.requests[mark:]]
    # About a hundred calls at up to 20 a second: more than a second's allowance, none refused.
    assert len(seen) > 2 * LIMIT[0]
    assert seen.count(429) == 0
    assert written_once(fake, dbsession, ids) == []


def test_a_429_pauses_the_connection_for_every_caller_until_retry_after(
    app: Router, dbsession: Session, firm: Any, connection: Connection, fake: FakeMyCase
) -> None:
    invoices = seed_invoices(fake, 3)
    account = MerchantAccountFactory(firm=firm)
    plans = [[(invoices[n % 3], 100 + n)] for n in range(6)]
    ids = queued_postings(dbsession, firm.id, account.id, connection.id, plans)
    mark = len(fake.requests)
    fake.throttle_next(1, retry_after=2)
    drain(app, dbsession, ids)
    seen = fake.requests[mark:]
    assert [r.status for r in seen].count(429) == 1
    refused = next(r for r in seen if r.status == 429)
    after = [r for r in seen if r.at > refused.at]
    # Nobody called MyCase again before its Retry-After was over.
    assert after and min(r.at for r in after) - refused.at >= 1.0
    assert written_once(fake, dbsession, ids) == []
