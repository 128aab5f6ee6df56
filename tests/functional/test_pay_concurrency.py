"""The acceptance test of "a link is charged once": fifty payers submit at the same instant.

The app runs on a fresh, committed database (not the suite's rolled-back connection), served
by waitress on loopback with a thread per payer, and is hit over real HTTP from fifty threads
released together by a barrier. The sandbox takes 200 ms per charge to widen the race window.

What decides the race is the conditional claim (links.services.claim): of the payers who all
read the link as outstanding, only one may move it to processing. On SQLite a request that
writes begins its transaction IMMEDIATE, so payers queue *before* reading the link: in one
transaction (read, then claim) they never overlap, and the plain race could not fail there
whatever the claim did. So:

- the plain race runs on PostgreSQL only, where the payers' transactions do overlap (CI runs
  it: .ci/run sets CLIENTPAY_TEST_DATABASE_URL and runs the whole suite);
- the race with reCAPTCHA on runs on both: the payer's request then commits after reading the
  link, asks Google (a fake siteverify over real HTTP), and claims in a second transaction,
  so on SQLite too many payers reach the claim having read "outstanding", and the test checks
  that they did.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
import transaction
from pyramid.router import Router
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from clientpay_connect import main
from clientpay_connect.accounts.services import create_firm
from clientpay_connect.admin.models import FirmSettings, MerchantAccount
from clientpay_connect.db import get_tm_session
from clientpay_connect.links.models import PaymentLink
from clientpay_connect.links.services import NewLink, create_link
from clientpay_connect.pay.models import Payment, SandboxCharge
from tests.fakes.siteverify import GOOD_RESPONSE, SECRET, FakeSiteverify, running_siteverify
from tests.support import databases
from tests.support.live_server import serving
from tests.support.localstripe import TEST_PUBLISHABLE_KEY, TEST_SECRET_KEY, LocalStripe
from tests.support.payments import SUCCEEDS, card, submission

PAYERS = 50
READ_AS_OUTSTANDING = 10
TIMEOUT = 120


@dataclass
class Served:
    url: str
    app: Router

    def dbsession(self) -> Any:
        return _committed_session(self.app)


class _committed_session:
    """A session on the served database, committed on leaving the block."""

    def __init__(self, app: Router):
        self.app = app
        self.tm = transaction.TransactionManager(explicit=True)

    def __enter__(self) -> Session:
        self.tm.begin()
        return get_tm_session(self.app.registry["dbsession_factory"], self.tm)

    def __exit__(self, *exc: Any) -> None:
        if exc[0] is None:
            self.tm.commit()
        else:
            self.tm.abort()


@pytest.fixture(scope="module")
def siteverify() -> Iterator[FakeSiteverify]:
    with running_siteverify() as fake:
        yield fake


@pytest.fixture(scope="module")
def served(
    base_settings: dict[str, Any],
    tmp_path_factory: pytest.TempPathFactory,
    siteverify: FakeSiteverify,
) -> Iterator[Served]:
    folder: Path = tmp_path_factory.mktemp("race")
    with databases.fresh_database(folder) as database_url:
        databases.migrate(database_url)
        settings = {
            **base_settings,
            "sqlalchemy.url": database_url,
            "clientpay.sandbox.delay_ms": "200",
            # Every payer here is 127.0.0.1: the limits have their own tests.
            "clientpay.limits.pay_attempts": "none",
            "clientpay.limits.sandbox_tokens": "none",
            "clientpay.limits.key_prefix": "clientpay-race-" + uuid.uuid4().hex[:8],
            "clientpay.captcha.verify_url": siteverify.url,
        }
        app = main({}, **settings)
        try:
            with serving(app, threads=PAYERS) as url:
                yield Served(url, app)
        finally:
            app.registry["dbengine"].dispose()


def _new_link(served: Served, amount_minor: int, recaptcha: bool = False) -> tuple[int, str]:
    with served.dbsession() as dbsession:
        firm = create_firm(dbsession, "Race & Race LLP", "race-" + uuid.uuid4().hex[:8])
        account = MerchantAccount(firm_id=firm.id, name="Operating", kind="operating")
        dbsession.add(account)
        if recaptcha:
            settings = dbsession.get(FirmSettings, firm.id)
            settings.recaptcha_enabled = True
            settings.recaptcha_site_key = "site-key"
            encryptor = served.app.registry["clientpay.encryptor"]
            settings.recaptcha_secret_encrypted = encryptor.encrypt(SECRET)
        dbsession.flush()
        new = NewLink(merchant_account=account, amount_minor=amount_minor)
        link, token = create_link(dbsession, served.app.registry["clientpay.encryptor"], None, new)
        return link.id, token


def _tokens(served: Served, count: int) -> list[str]:
    with requests.Session() as http:
        answers = [
            http.post(f"{served.url}/sandbox/tokens", json=card(), timeout=TIMEOUT)
            for _ in range(count)
        ]
    assert {a.status_code for a in answers} == {200}
    return [a.json()["token"] for a in answers]


@dataclass(frozen=True)
class Answer:
    status: int
    body: dict[str, Any]
    seconds: float


def _race(
    served: Served, link_token: str, bodies: list[dict[str, Any]], keys: list[str]
) -> list[Answer]:
    """Every body posted at once, each from its own thread."""
    barrier = threading.Barrier(len(bodies))

    def submit(body: dict[str, Any], key: str) -> Answer:
        with requests.Session() as http:
            barrier.wait(timeout=TIMEOUT)
            started = time.monotonic()
            response = http.post(
                f"{served.url}/api/v1/pay/{link_token}",
                json=body,
                headers={"Idempotency-Key": key},
                timeout=TIMEOUT,
            )
            return Answer(response.status_code, response.json(), time.monotonic() - started)

    with ThreadPoolExecutor(max_workers=len(bodies)) as pool:
        return list(pool.map(submit, bodies, keys))


def _report(label: str, answers: list[Answer], wall: float) -> None:
    slowest = max(a.seconds for a in answers)
    winner = [a.seconds for a in answers if a.status == 201]
    database = "postgresql" if databases.using_postgresql() else "sqlite"
    print(
        f"\n{label} [{database}]: "
        f"{len(answers)} payers in {wall:.2f}s; slowest answer {slowest:.2f}s; "
        f"the payment's answer {winner[0] if winner else float('nan'):.2f}s; "
        f"statuses {dict(Counter(a.status for a in answers))}"
    )


@pytest.mark.skipif(
    not databases.using_postgresql(),
    reason="SQLite queues the payers before they read the link (see the module's docstring); "
    "the reCAPTCHA race below is the one that races there",
)
def test_fifty_payers_at_once_charge_the_link_once(served: Served) -> None:
    link_id, link_token = _new_link(served, 25_000)
    tokens = _tokens(served, PAYERS)
    bodies = [submission(token, "250.00") for token in tokens]
    keys = [uuid.uuid4().hex for _ in tokens]

    started = time.monotonic()
    answers = _race(served, link_token, bodies, keys)
    _report("fifty payers, fifty keys", answers, time.monotonic() - started)

    _assert_charged_once(served, answers, link_id, tokens)


def test_fifty_payers_who_all_read_the_link_as_outstanding_charge_it_once(
    served: Served, siteverify: FakeSiteverify
) -> None:
    link_id, link_token = _new_link(served, 25_000, recaptcha=True)
    tokens = _tokens(served, PAYERS)
    bodies = [submission(token, "250.00", recaptcha_token=GOOD_RESPONSE) for token in tokens]
    keys = [uuid.uuid4().hex for _ in tokens]
    asked_before = len(siteverify.requests)
    # Google answers no one before this many have asked: however the machine schedules the
    # payers' threads, the first of them cannot claim the link before the others have read it.
    siteverify.hold_answers_until(asked_before + READ_AS_OUTSTANDING)

    started = time.monotonic()
    answers = _race(served, link_token, bodies, keys)
    _report("fifty payers past reCAPTCHA", answers, time.monotonic() - started)

    # Google is asked only after the link was read as outstanding: these many payers went on
    # to claim it with that read in hand, and the claim alone decided between them.
    assert len(siteverify.requests) - asked_before >= READ_AS_OUTSTANDING
    _assert_charged_once(served, answers, link_id, tokens)


def _assert_charged_once(
    served: Served, answers: list[Answer], link_id: int, tokens: list[str]
) -> None:
    statuses = Counter(a.status for a in answers)
    assert statuses == {201: 1, 409: PAYERS - 1}, statuses
    refusals = [a.body for a in answers if a.status == 409]
    assert {(b["error"], b["link_status"] in ("processing", "paid")) for b in refusals} == {
        ("link_not_payable", True)
    }
    [paid] = [a.body for a in answers if a.status == 201]
    with served.dbsession() as dbsession:
        charges = dbsession.scalars(select(SandboxCharge).where(SandboxCharge.token.in_(tokens)))
        assert len(charges.all()) == 1
        payments = dbsession.scalars(select(Payment).where(Payment.link_id == link_id)).all()
        assert [(p.id, p.status) for p in payments] == [(paid["payment_id"], "succeeded")]
        link = dbsession.get(PaymentLink, link_id)
        assert (link.status, link.amount_paid_minor) == ("paid", 25_000)


def test_one_payer_sending_the_same_key_many_times_at_once_is_charged_once(served: Served) -> None:
    link_id, link_token = _new_link(served, 9_900)
    [token] = _tokens(served, 1)
    copies = 20

    started = time.monotonic()
    answers = _race(served, link_token, [submission(token, "99")] * copies, ["one-key"] * copies)
    _report("one payer, one key, twenty copies", answers, time.monotonic() - started)

    assert all(a.status in (201, 409) for a in answers), Counter(a.status for a in answers)
    assert {a.body.get("error") for a in answers if a.status == 409} <= {"payment_in_progress"}
    with served.dbsession() as dbsession:
        count = select(func.count()).select_from(SandboxCharge).where(SandboxCharge.token == token)
        assert dbsession.scalar(count) == 1
        payments = dbsession.scalars(select(Payment).where(Payment.link_id == link_id)).all()
        assert [p.status for p in payments] == ["succeeded"]
    # Once settled, the key's answer is the payment's, for everyone who asks again.
    with requests.Session() as http:
        again = http.post(
            f"{served.url}/api/v1/pay/{link_token}",
            json=submission(token, "99"),
            headers={"Idempotency-Key": "one-key"},
            timeout=TIMEOUT,
        )
    assert (again.status_code, again.json()["payment_id"]) == (201, payments[0].id)


# --- The same race with Stripe (localstripe) as the processor --------------------------------
# localstripe ignores Idempotency-Key, so nothing at Stripe's end would stop a second charge:
# only our claim does.


@pytest.fixture(scope="module")
def served_stripe(
    stripe_settings: dict[str, Any], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Served]:
    folder: Path = tmp_path_factory.mktemp("stripe-race")
    with databases.fresh_database(folder) as database_url:
        databases.migrate(database_url)
        settings = {
            **stripe_settings,
            "sqlalchemy.url": database_url,
            "clientpay.limits.pay_attempts": "none",
            "clientpay.limits.key_prefix": "clientpay-stripe-race-" + uuid.uuid4().hex[:8],
        }
        app = main({}, **settings)
        try:
            with serving(app, threads=PAYERS) as url:
                yield Served(url, app)
        finally:
            app.registry["dbengine"].dispose()


def _new_stripe_link(served: Served, amount_minor: int) -> tuple[int, str]:
    encryptor = served.app.registry["clientpay.encryptor"]
    with served.dbsession() as dbsession:
        firm = create_firm(dbsession, "Stripe & Race LLP", "stripe-race-" + uuid.uuid4().hex[:8])
        account = MerchantAccount(
            firm_id=firm.id,
            name="Operating",
            kind="operating",
            processor="stripe",
            stripe_secret_key_encrypted=encryptor.encrypt(TEST_SECRET_KEY),
            stripe_publishable_key=TEST_PUBLISHABLE_KEY,
        )
        dbsession.add(account)
        dbsession.flush()
        new = NewLink(merchant_account=account, amount_minor=amount_minor)
        link, token = create_link(dbsession, encryptor, None, new)
        return link.id, token


@pytest.mark.skipif(
    not databases.using_postgresql(),
    reason="SQLite queues the payers before they read the link (see the module's docstring)",
)
def test_fifty_payers_at_once_with_stripe_make_one_succeeded_payment_intent(
    served_stripe: Served, localstripe: LocalStripe
) -> None:
    localstripe.forget_everything()
    link_id, link_token = _new_stripe_link(served_stripe, 25_000)
    methods = [localstripe.payment_method(SUCCEEDS) for _ in range(PAYERS)]
    bodies = [submission(method, "250.00") for method in methods]
    keys = [uuid.uuid4().hex for _ in methods]

    started = time.monotonic()
    answers = _race(served_stripe, link_token, bodies, keys)
    _report("fifty payers with Stripe", answers, time.monotonic() - started)

    statuses = Counter(a.status for a in answers)
    assert statuses == {201: 1, 409: PAYERS - 1}, statuses
    [paid] = [a.body for a in answers if a.status == 201]
    [intent] = localstripe.payment_intents(link=str(link_id))
    assert (intent.status, intent.amount) == ("succeeded", 25_000)
    succeeded = [i for i in localstripe.payment_intents() if i.status == "succeeded"]
    assert [i.id for i in succeeded] == [intent.id]
    with served_stripe.dbsession() as dbsession:
        payments = dbsession.scalars(select(Payment).where(Payment.link_id == link_id)).all()
        assert [(p.id, p.status, p.processor_ref) for p in payments] == [
            (paid["payment_id"], "succeeded", intent.id)
        ]
        link = dbsession.get(PaymentLink, link_id)
        assert (link.status, link.amount_paid_minor) == ("paid", 25_000)
