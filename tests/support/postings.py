"""Postings in tests: a matter system (the test distribution's ``memory`` adapter) with a
client's open invoices, a connection to it, a Connect link paid through the real pay API,
and the sync job run in-process."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import webtest
from pyramid.registry import Registry
from sqlalchemy import select
from sqlalchemy.orm import Session

from clientpay_connect.connect.interfaces import Client, Invoice, Matter
from clientpay_connect.postings.models import Posting
from clientpay_connect.postings.sync import sync_posting
from clientpay_connect.work import Work
from tests.support.matter_adapter import LEDGERS, Ledger
from tests.support.payments import card, pay, submission, tokenize

# The link's invoices: (id, amount asked) of INV-101 (owes 500.00) and INV-102 (owes 250.00).
TWO_INVOICES = (("101", "500.00"), ("102", "200.00"))


def marlowe_ledger(today: dt.date) -> Ledger:
    """Jane Marlowe's matter with INV-101 (500.00, past due) and INV-102 (250.00)."""
    book = Ledger()
    book.clients["c1"] = Client("c1", "Jane Marlowe", "jane@example.com")
    book.matters["m1"] = Matter("m1", "2024-0017", "Marlowe divorce", "c1")
    for key, balance, due in (("101", 500_00, -10), ("102", 250_00, 5)):
        book.add_invoice(
            Invoice(
                id=key,
                number=f"INV-{key}",
                client_id="c1",
                matter_id="m1",
                issued_on=today - dt.timedelta(days=60),
                due_on=today + dt.timedelta(days=due),
                currency="USD",
                total=balance,
                paid=0,
                balance=balance,
            )
        )
    return book


@contextmanager
def registered(book: Ledger) -> Iterator[str]:
    """``book`` under a fresh name (a connection's ``ledger`` setting), for the block."""
    name = uuid.uuid4().hex
    LEDGERS[name] = book
    try:
        yield name
    finally:
        del LEDGERS[name]


def add_connection(
    testapp: webtest.TestApp, admin_auth: dict[str, str], ledger_name: str, name: str
) -> dict[str, Any]:
    answer = testapp.post_json(
        "/api/v1/connections",
        {"adapter": "memory", "name": name, "settings": {"ledger": ledger_name}},
        headers=admin_auth,
        status=201,
    )
    return dict(answer.json)


def paid_connect_link(
    testapp: webtest.TestApp,
    staff_auth: dict[str, str],
    connection: dict[str, Any],
    account: Any,
    amount: str,
    invoices: tuple[tuple[str, str], ...] = TWO_INVOICES,
    payer_name: str = "Pat Payer",
) -> dict[str, Any]:
    """A Connect link for ``invoices`` (id, amount), paid ``amount`` by card."""
    link = testapp.post_json(
        "/api/v1/connect/links",
        {
            "connection_id": connection["id"],
            "merchant_account_id": account.id,
            "invoices": [{"id": i, "amount": a} for i, a in invoices],
        },
        headers=staff_auth,
        status=201,
    ).json
    token = link["url"].rsplit("/", 1)[1]
    paid = submission(tokenize(testapp, card()), amount=amount, payer_name=payer_name)
    pay(testapp, token, paid, status=201)
    return dict(link)


def posting_of(dbsession: Session, link: dict[str, Any]) -> Posting:
    dbsession.expire_all()
    return dbsession.execute(select(Posting).where(Posting.link_id == link["id"])).scalar_one()


def run_sync(registry: Registry, posting_id: int) -> str:
    """The sync job's work on one posting, in a transaction of its own, as a worker does."""
    with Work.fresh(registry) as work:
        return sync_posting(work, posting_id)
