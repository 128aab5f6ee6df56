"""Postings in numbers, for the fault, chaos and benchmark runs against the fake MyCase.

A firm's MyCase connection (the OAuth dance played against the fake, the tokens stored
encrypted as the callback stores them), invoices in the fake, and paid Connect payments with
their postings queued to those invoices, written straight to the database: what a thousand
payers would have left behind. ``written_once`` reads the fake's ledger back against them.
"""

from __future__ import annotations

import datetime as dt
import re
import time
import uuid
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from decimal import Decimal
from typing import Any

from pyramid.router import Router
from sqlalchemy import select
from sqlalchemy.orm import Session

from adapters.mycase import MyCaseAdapter
from clientpay_connect import main
from clientpay_connect.connect.interfaces import AdapterConfig, TokenSet
from clientpay_connect.connect.models import CONNECTION_CONNECTED, Connection
from clientpay_connect.connect.services import store_tokens
from clientpay_connect.crypto import Encryptor, sha256_hex
from clientpay_connect.db import utcnow
from clientpay_connect.links.models import SOURCE_CONNECT, STATUS_PAID, PaymentLink
from clientpay_connect.pay.models import PAYMENT_SUCCEEDED, Payment
from clientpay_connect.postings.models import POSTING_QUEUED, Posting
from clientpay_connect.postings.sync import sync_posting
from clientpay_connect.work import Work
from tests.fakes.mycase import FakeMyCase
from tests.support.tokens import connect

# (MyCase invoice id, amount in cents) for each invoice a posting pays.
Plan = Sequence[tuple[int, int]]
KEY_IN_NOTES = re.compile(r"\[clientpay:([^\]]+)\]")


@contextmanager
def postings_app(
    app_settings: dict[str, Any], fake: FakeMyCase, **settings: str
) -> Iterator[Router]:
    """The app posting to ``fake``, its jobs' backoff kept short (the tests wait it out in
    real time), with ``settings`` on top."""
    application = main(
        {},
        **{
            **app_settings,
            **fake.settings(),
            "clientpay.postings.backoff_base_seconds": "0.2",
            "clientpay.postings.backoff_cap_seconds": "1",
            **settings,
        },
    )
    try:
        yield application
    finally:
        application.registry["dbengine"].dispose()


def fake_connection(app: Router, dbsession: Session, firm_id: int, fake: FakeMyCase) -> Connection:
    """The firm's connection to ``fake``, authorized."""
    encryptor = app.registry["clientpay.encryptor"]
    return add_mycase_connection(dbsession, encryptor, firm_id, mycase_tokens(fake))


def mycase_tokens(fake: FakeMyCase) -> TokenSet:
    """The tokens an admin's connection would hold after authorizing at the fake."""
    config = AdapterConfig(
        settings={}, app_settings=fake.settings(), redirect_uri="https://clientpay.test/callback"
    )
    adapter = MyCaseAdapter(config)
    try:
        return connect(adapter)
    finally:
        adapter.close()


def add_mycase_connection(
    session: Session, encryptor: Encryptor, firm_id: int, tokens: TokenSet
) -> Connection:
    connection = Connection(
        firm_id=firm_id,
        adapter="mycase",
        name="MyCase",
        status=CONNECTION_CONNECTED,
        settings={},
        connected_at=utcnow(),
        post_automatically=True,
    )
    store_tokens(encryptor, connection, tokens)
    session.add(connection)
    session.flush()
    return connection


def seed_invoices(fake: FakeMyCase, count: int, total: str = "1000000.00") -> list[int]:
    """``count`` open invoices of one client, each large enough for many payments."""
    client = fake.add_client("Load", "Tester", "load@example.test")
    case = fake.add_case("Load v. Test", "2025-0900", [client])
    return [fake.add_invoice(case, f"L-{n:04d}", total) for n in range(count)]


def queued_postings(
    session: Session, firm_id: int, account_id: int, connection_id: int, plans: Sequence[Plan]
) -> list[int]:
    """One paid Connect link, its payment and its queued posting per plan; their ids."""
    run = uuid.uuid4().hex[:10]
    now = utcnow()
    today = dt.date.today()
    postings = []
    for number, plan in enumerate(plans):
        amount = sum(cents for _, cents in plan)
        secret = f"{run}-{number}"
        link = PaymentLink(
            firm_id=firm_id,
            merchant_account_id=account_id,
            source=SOURCE_CONNECT,
            token_hash=sha256_hex(secret),
            token_encrypted="-",
            amount_minor=amount,
            amount_paid_minor=amount,
            status=STATUS_PAID,
            paid_at=now,
            connection_id=connection_id,
        )
        session.add(link)
        session.flush()
        receipt = f"R-{run}-{number}"
        payment = Payment(
            firm_id=firm_id,
            link_id=link.id,
            status=PAYMENT_SUCCEEDED,
            amount_minor=amount,
            currency="USD",
            method="card",
            idempotency_key=secret,
            processor_key=sha256_hex(secret),
            receipt_number=receipt,
            completed_at=now,
        )
        session.add(payment)
        session.flush()
        posting = Posting(
            firm_id=firm_id,
            connection_id=connection_id,
            link_id=link.id,
            payment_id=payment.id,
            key=f"CPC-{receipt}",
            status=POSTING_QUEUED,
            amount_minor=amount,
            currency="USD",
            received_on=today,
            allocations=[
                {
                    "invoice_id": str(invoice_id),
                    "invoice_number": f"#{invoice_id}",
                    "amount": cents,
                    "external_id": None,
                }
                for invoice_id, cents in plan
            ],
            external_ids={},
            next_attempt_at=now,
        )
        postings.append(posting)
    session.add_all(postings)
    session.flush()
    return [posting.id for posting in postings]


def run_sync(app: Router, posting_id: int) -> str:
    with Work.fresh(app.registry) as work:
        return sync_posting(work, posting_id)


def drain(app: Router, dbsession: Session, ids: list[int], seconds: float = 60) -> None:
    """Run each posting whose time has come, as a worker would, until none is left queued
    with a time (those waiting for their connection have none)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        dbsession.expire_all()
        queued = list(
            dbsession.execute(
                select(Posting.id, Posting.next_attempt_at).where(
                    Posting.id.in_(ids),
                    Posting.status == "queued",
                    Posting.next_attempt_at.is_not(None),
                )
            )
        )
        if not queued:
            return
        # The query asked for a time: none is None.
        due = [posting_id for posting_id, at in queued if at is not None and at <= utcnow()]
        for posting_id in due:
            run_sync(app, posting_id)
        if not due:
            time.sleep(0.05)
    raise AssertionError("postings still queued")


def written_once(fake: FakeMyCase, session: Session, posting_ids: Sequence[int]) -> list[str]:
    """What is wrong between the postings and the fake's ledger: every allocation must be
    there exactly once, for its amount, under the id the posting recorded, and nothing else
    under these postings' keys. An empty list when all is well."""
    postings = list(session.execute(select(Posting).where(Posting.id.in_(posting_ids))).scalars())
    expected: dict[tuple[str, str], Any] = {}
    keys = {posting.key for posting in postings}
    for posting in postings:
        for allocation in posting.allocations:
            expected[(posting.key, str(allocation["invoice_id"]))] = allocation
    written: Counter[tuple[str, str]] = Counter()
    problems = []
    for payment in fake.ledger:
        match = KEY_IN_NOTES.search(payment.notes)
        if match is None or match.group(1) not in keys:
            continue
        where = (match.group(1), str(payment.invoice_id))
        written[where] += 1
        asked = expected.get(where)
        if asked is None:
            problems.append(f"{where} was written but no posting asked for it")
            continue
        if payment.amount != Decimal(asked["amount"]) / 100:
            problems.append(f"{where} was written for {payment.amount}")
        if asked.get("external_id") not in (None, str(payment.id)):
            problems.append(f"{where} records {asked['external_id']}, not {payment.id}")
    for where in expected:
        if written[where] != 1:
            problems.append(f"{where} was written {written[where]} times")
    return problems
