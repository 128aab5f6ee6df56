"""A read request does not write in its read transaction: paging through the API with a
Bearer token while a job holds write transactions answers every page (the token's
last_used_at is recorded in a short write of its own, at most once a minute).

On SQLite a read transaction begins DEFERRED; one that then writes must upgrade to a writer,
which SQLite refuses ("database is locked") once another writer has committed since it began.
Served by waitress on a fresh, committed database; SQLite, and PostgreSQL when
CLIENTPAY_TEST_DATABASE_URL is set.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
import requests
import transaction
from pyramid.router import Router
from sqlalchemy import text, update

from clientpay_connect import main
from clientpay_connect.accounts.models import ApiToken
from clientpay_connect.accounts.services import create_api_token, create_firm, create_user
from clientpay_connect.admin.models import MerchantAccount
from clientpay_connect.db import get_tm_session
from clientpay_connect.links.services import NewLink, create_link
from tests.support import databases
from tests.support.live_server import serving

LINKS = 60
PAGE = 10
ROUNDS = 4
TIMEOUT = 60


@pytest.fixture(scope="module")
def served(
    base_settings: dict[str, Any], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, Router]]:
    with databases.fresh_database(tmp_path_factory.mktemp("reads")) as database_url:
        databases.migrate(database_url)
        app = main({}, **{**base_settings, "sqlalchemy.url": database_url})
        try:
            with serving(app, threads=4) as url:
                yield url, app
        finally:
            app.registry["dbengine"].dispose()


def _firm_with_links(app: Router) -> tuple[int, int, str]:
    """A committed firm with LINKS links and a staff member's API token."""
    tm = transaction.TransactionManager(explicit=True)
    with tm:
        session = get_tm_session(app.registry["dbsession_factory"], tm)
        firm = create_firm(session, "Paging LLP", "paging-" + uuid.uuid4().hex[:8])
        account = MerchantAccount(firm_id=firm.id, name="Operating", kind="operating")
        session.add(account)
        user = create_user(session, firm, f"staff-{uuid.uuid4().hex[:8]}@example.test", "staff")
        session.flush()
        for n in range(LINKS):
            create_link(
                session,
                app.registry["clientpay.encryptor"],
                user,
                NewLink(merchant_account=account, amount_minor=1_000 + n),
            )
        row, token = create_api_token(session, user, "paging")
        return firm.id, row.id, token


class Writer(threading.Thread):
    """What a job does to the database: write transactions, one after another, each held
    open for a while (on SQLite, the database's one write lock)."""

    def __init__(self, app: Router, firm_id: int):
        super().__init__(daemon=True)
        self.engine = app.registry["dbengine"]
        self.firm_id = firm_id
        self.stop = threading.Event()
        self.transactions = 0

    def run(self) -> None:
        while not self.stop.is_set():
            with self.engine.begin() as conn:
                conn.execute(
                    text("UPDATE firms SET name = name WHERE id = :id"), {"id": self.firm_id}
                )
                time.sleep(0.1)
            self.transactions += 1
            time.sleep(0.005)


def _walk(url: str, token: str) -> list[int]:
    """Every page of GET /links, following next_cursor; the status of each answer."""
    statuses = []
    cursor: str | None = None
    with requests.Session() as http:
        while True:
            params = {"limit": str(PAGE), **({"cursor": cursor} if cursor else {})}
            response = http.get(
                f"{url}/api/v1/links",
                params=params,
                headers={"Authorization": f"Bearer {token}"},
                timeout=TIMEOUT,
            )
            statuses.append(response.status_code)
            if response.status_code != 200:
                return statuses
            cursor = response.json()["next_cursor"]
            if cursor is None:
                return statuses


def test_paging_with_a_token_while_a_job_writes_answers_every_page(served):
    url, app = served
    firm_id, token_id, token = _firm_with_links(app)
    writer = Writer(app, firm_id)
    writer.start()
    try:
        # The pages are read while the writer is at work: from its first transaction on.
        deadline = time.monotonic() + TIMEOUT
        while writer.transactions == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        before = writer.transactions
        statuses = Counter(status for _ in range(ROUNDS) for status in _walk(url, token))
        during = writer.transactions - before
    finally:
        writer.stop.set()
        writer.join(timeout=TIMEOUT)
    assert statuses == {200: ROUNDS * (LINKS // PAGE)}, statuses
    # However fast the paging, the writer committed while it went on (and held its lock
    # for a tenth of a second each time): the reads did meet the writes.
    assert before >= 1 and during >= 1, (before, during)
    tm = transaction.TransactionManager(explicit=True)
    with tm:
        session = get_tm_session(app.registry["dbsession_factory"], tm)
        assert session.get(ApiToken, token_id).last_used_at is not None


def test_a_tokens_use_is_recorded_at_most_once_a_minute(testapp, dbsession, staff):
    row, token = create_api_token(dbsession, staff, "coarse")
    auth = {"Authorization": f"Bearer {token}"}

    def last_used() -> Any:
        dbsession.expire_all()
        return dbsession.get(ApiToken, row.id).last_used_at

    testapp.get("/api/v1/merchant-accounts", headers=auth, status=200)
    first = last_used()
    assert first is not None
    testapp.get("/api/v1/merchant-accounts", headers=auth, status=200)
    assert last_used() == first

    earlier = first - dt.timedelta(minutes=2)
    dbsession.execute(update(ApiToken).where(ApiToken.id == row.id).values(last_used_at=earlier))
    dbsession.flush()
    testapp.get("/api/v1/merchant-accounts", headers=auth, status=200)
    assert last_used() > earlier
