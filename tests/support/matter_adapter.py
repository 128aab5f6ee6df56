"""A small third-party-style adapter over an in-memory matter system, registered by a test
distribution (see ``registered_test_adapter``): how another package adds an adapter."""

from __future__ import annotations

import datetime as dt
import sys
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from urllib.parse import urlencode

from zope.interface import implementer

from clientpay_connect.connect.interfaces import (
    AdapterConfig,
    Allocation,
    Capabilities,
    Client,
    Conflict,
    IMatterAdapter,
    Invoice,
    IOAuthMatterAdapter,
    Matter,
    Permanent,
    PostingRequest,
    PostResult,
    SearchResult,
    TokenSet,
    Transient,
)
from clientpay_connect.connect.services import pkce_challenge

DISTRIBUTION = "clientpay_test_adapters-0.1.dist-info"


@dataclass
class Ledger:
    clients: dict[str, Client] = field(default_factory=dict)
    matters: dict[str, Matter] = field(default_factory=dict)
    invoices: dict[str, Invoice] = field(default_factory=dict)
    payments: dict[str, dict[str, str]] = field(default_factory=dict)
    down: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add_invoice(self, invoice: Invoice) -> Invoice:
        self.invoices[invoice.id] = invoice
        return invoice


LEDGERS: dict[str, Ledger] = {}


def sample_ledger(today: dt.date) -> Ledger:
    """Two clients: Jane Marlowe (two operating invoices, one past due, and a trust one) and
    Acme Holdings (one invoice); each invoice was 100.00 paid."""
    book = Ledger()
    book.clients["c1"] = Client("c1", "Jane Marlowe", "jane@example.com")
    book.clients["c2"] = Client("c2", "Acme Holdings", "ap@acme.example")
    book.matters["m1"] = Matter("m1", "2024-0017", "Marlowe divorce", "c1")
    book.matters["m2"] = Matter("m2", "2024-0031", "Acme v. Road Co", "c2")
    for key, matter, client, balance, due, account in (
        ("101", "m1", "c1", 500_00, -10, "operating"),
        ("102", "m1", "c1", 250_00, 5, "operating"),
        ("103", "m1", "c1", 90_00, 20, "trust"),
        ("201", "m2", "c2", 1_000_00, 1, "operating"),
    ):
        book.add_invoice(
            Invoice(
                id=key,
                number=f"INV-{key}",
                client_id=client,
                matter_id=matter,
                issued_on=today - dt.timedelta(days=60),
                due_on=today + dt.timedelta(days=due),
                currency="USD",
                total=balance + 100_00,
                paid=100_00,
                balance=balance,
                account=account,  # type: ignore[arg-type]
            )
        )
    return book


@contextmanager
def registered_ledger(book: Ledger) -> Iterator[str]:
    """``book`` under a fresh name (a connection's ``ledger`` setting), for the block."""
    name = uuid.uuid4().hex
    LEDGERS[name] = book
    try:
        yield name
    finally:
        del LEDGERS[name]


@implementer(IMatterAdapter)
class MemoryMatterAdapter:
    name = "memory"
    capabilities = Capabilities(search=True, post="api", multi_invoice=True, trust=True)

    def __init__(self, config: AdapterConfig):
        self.ledger = LEDGERS[str(config.settings["ledger"])]

    def _check(self) -> None:
        if self.ledger.down:
            raise Transient("the test matter system is down")

    def search(
        self, q: str, client_id: str | None = None, matter_id: str | None = None
    ) -> SearchResult:
        self._check()
        needle = q.lower()
        clients = [
            c
            for c in self.ledger.clients.values()
            if (client_id is None or c.id == client_id) and needle in c.name.lower()
        ]
        matters = [
            m
            for m in self.ledger.matters.values()
            if (matter_id is None or m.id == matter_id)
            and (client_id is None or m.client_id == client_id)
            and (
                needle in m.number.lower()
                or needle in m.name.lower()
                or m.client_id in {c.id for c in clients}
            )
        ]
        matter_ids = {m.id for m in matters}
        invoices = sorted(
            (
                i
                for i in self.ledger.invoices.values()
                if i.balance > 0
                and i.state == "open"
                and (i.matter_id in matter_ids or (needle and needle in i.number.lower()))
                and (client_id is None or i.client_id == client_id)
            ),
            key=lambda i: (i.due_on or dt.date.max, i.id),
        )
        return SearchResult(clients, matters, invoices)

    def get_invoices(self, invoice_ids: list[str]) -> list[Invoice]:
        self._check()
        return [self.ledger.invoices[i] for i in invoice_ids if i in self.ledger.invoices]

    def record_payment(self, posting: PostingRequest) -> PostResult:
        self._check()
        with self.ledger.lock:
            done = self.ledger.payments.setdefault(posting.key, {})
            earlier = {a.invoice_id: a.external_id for a in posting.allocations if a.external_id}
            due = [a for a in posting.allocations if a.invoice_id not in done and not a.external_id]
            # Every allocation checked before any is written: a conflict writes nothing.
            for allocation in due:
                self._check_payable(allocation)
            for allocation in due:
                invoice = self.ledger.invoices[allocation.invoice_id]
                self.ledger.invoices[invoice.id] = replace(
                    invoice,
                    paid=invoice.paid + allocation.amount,
                    balance=invoice.balance - allocation.amount,
                )
                done[allocation.invoice_id] = f"pay-{posting.key}-{allocation.invoice_id}"
            return PostResult("posted", external_ids={**earlier, **done})

    def _check_payable(self, allocation: Allocation) -> None:
        invoice = self.ledger.invoices.get(allocation.invoice_id)
        if invoice is None or invoice.state != "open":
            raise Conflict(f"Invoice {allocation.invoice_number} is not open any more")
        if invoice.balance < allocation.amount:
            raise Conflict(f"Invoice {allocation.invoice_number} owes less than the payment")

    def find_payment(self, posting: PostingRequest) -> dict[str, str]:
        self._check()
        return dict(self.ledger.payments.get(posting.key, {}))

    def close(self) -> None:
        return None


# The provider of MemoryOAuthAdapter: the codes it issued (code -> PKCE challenge) and the
# access tokens revoked, as a test reads them.
PROVIDER_URL = "https://provider.test/authorize"
ISSUED_CODES: dict[str, str] = {}
REVOKED: list[str] = []


def issue_code(code_challenge: str) -> str:
    """What the provider does when the admin allows access: a code bound to the challenge."""
    code = uuid.uuid4().hex
    ISSUED_CODES[code] = code_challenge
    return code


@implementer(IOAuthMatterAdapter)
class MemoryOAuthAdapter(MemoryMatterAdapter):
    """The memory adapter behind an OAuth grant (its "provider" is the dictionaries above)."""

    name = "memory_oauth"
    capabilities = Capabilities(
        search=True, post="manual", multi_invoice=True, trust=False, oauth=True
    )

    def __init__(self, config: AdapterConfig):
        self.config = config
        self.ledger = LEDGERS.get(str(config.settings.get("ledger", "")), Ledger())

    def authorize_url(self, state: str, code_challenge: str) -> str:
        query = {
            "state": state,
            "code_challenge": code_challenge,
            "redirect_uri": self.config.redirect_uri,
        }
        return f"{PROVIDER_URL}?{urlencode(query)}"

    def exchange_code(self, code: str, code_verifier: str) -> TokenSet:
        if ISSUED_CODES.pop(code, None) != pkce_challenge(code_verifier):
            raise Permanent("invalid_grant: the code is unknown, used, or for another verifier")
        return self._tokens()

    def refresh(self, refresh_token: str | None) -> TokenSet:
        return self._tokens()

    def revoke(self, tokens: TokenSet) -> None:
        REVOKED.append(tokens.access_token)

    def _tokens(self) -> TokenSet:
        expires = dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)
        return TokenSet(f"access-{uuid.uuid4().hex}", f"refresh-{uuid.uuid4().hex}", expires)


@contextmanager
def registered_test_adapter(folder: Path) -> Iterator[None]:
    """Install a distribution (metadata only) that registers MemoryMatterAdapter as
    ``memory`` and MemoryOAuthAdapter as ``memory_oauth`` in the ``clientpay_connect.adapters``
    group, as a third party's would."""
    dist = folder / DISTRIBUTION
    dist.mkdir(parents=True, exist_ok=True)
    (dist / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: clientpay-test-adapters\nVersion: 0.1\n"
    )
    (dist / "entry_points.txt").write_text(
        "[clientpay_connect.adapters]\n"
        "memory = tests.support.matter_adapter:MemoryMatterAdapter\n"
        "memory_oauth = tests.support.matter_adapter:MemoryOAuthAdapter\n"
    )
    sys.path.insert(0, str(folder))
    try:
        yield
    finally:
        sys.path.remove(str(folder))
