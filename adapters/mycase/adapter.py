"""The MyCase adapter: MyCase's public REST API (``/v1``) under OAuth2 authorization code.

What MyCase's API offers, and so how each operation is made:
- No text search and no invoice by id: ``/clients`` filters only by whole first name, last
  name or email, ``/cases`` by status, ``/invoices`` by ``updated_after``. Searching a part of
  a name, a case number or an invoice number therefore reads the firm's cases (with their
  clients' names, ``field[client]``) and invoices page by page (``page_size`` up to 1000) and
  matches here (``adapters.mycase.search``).
- An invoice has no client, only a case; its client is the case's billing contact (when a
  person) or first client.
- Searches match a copy of the firm's cases and invoices kept between calls and brought up
  to date with ``filter[updated_after]`` before each use (``adapters.mycase.mirror``).
- One payment per call, ``POST /invoices/{id}/payments``, with no idempotency key: the
  posting's key goes into the payment's notes, and ``find_payment`` looks for it in
  ``/invoice_payments?filter[payable_id]=…``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any, ClassVar
from urllib.parse import urljoin

from zope.interface import implementer

from adapters.mycase import records
from adapters.mycase.mirror import COPIES, BookCopy
from adapters.mycase.records import Json
from adapters.mycase.search import select
from adapters.oauth import OAuthRestAdapter, vendor_message
from clientpay_connect.connect.interfaces import (
    AdapterConfig,
    AdapterError,
    Allocation,
    Capabilities,
    Conflict,
    Invoice,
    IOAuthMatterAdapter,
    Permanent,
    PostingRequest,
    PostResult,
    SearchResult,
    Transient,
)

MAX_PAGE_SIZE = 1000
# MyCase bills in US dollars.
DEFAULT_CURRENCY = "USD"
# The client fields a case's clients carry (by default MyCase sends only their ids).
CLIENT_FIELDS = "id,first_name,middle_name,last_name,email"
# The lists a search reads, and so what the copy of a firm's book holds.
CASES = "cases"
INVOICES = "invoices"
BOOK = (CASES, INVOICES)
# How old a copy may grow before the whole book is read again (deletions and renames show).
DEFAULT_FULL_READ_SECONDS = 300  # as config.py says; adapters built without it too


@implementer(IOAuthMatterAdapter)
class MyCaseAdapter(OAuthRestAdapter):
    name = "mycase"
    capabilities = Capabilities(
        search=True, post="api", multi_invoice=False, trust=True, oauth=True
    )

    vendor: ClassVar[str] = "mycase"
    default_api_url: ClassVar[str] = "https://external-integrations.mycase.com/v1"
    default_auth_url: ClassVar[str] = "https://auth.mycase.com"
    authorize_path: ClassVar[str] = "/login_sessions/new"
    token_path: ClassVar[str] = "/tokens"  # noqa: S105 (a URL path, not a secret)
    # MyCase documents no revocation endpoint: a disconnected grant dies unused (two weeks).
    revoke_path: ClassVar[str | None] = None

    def __init__(self, config: AdapterConfig, *, max_rate_wait: float | None = None):
        super().__init__(config, max_rate_wait=max_rate_wait)
        self.page_size = min(int(self._setting("page_size", MAX_PAGE_SIZE)), MAX_PAGE_SIZE)
        self.currency = str(config.settings.get("currency") or DEFAULT_CURRENCY).upper()
        self.full_read_seconds = float(
            self._setting("full_read_seconds", DEFAULT_FULL_READ_SECONDS)
        )

    # Reading.

    def _pages(self, path: str, params: Mapping[str, Any] | None = None) -> Iterator[Any]:
        """Every record of a list, following ``Link: rel="next"`` (a cursor) to the end."""
        url: str | None = path
        query: Mapping[str, Any] | None = {**(params or {}), "page_size": self.page_size}
        seen: set[str] = set()
        while url is not None:
            response = self._request("GET", url, params=query)
            page = self._json(response)
            if not isinstance(page, list):
                raise Transient(f"MyCase answered {path} with something other than a list")
            yield from page
            following = response.links.get("next", {}).get("url")
            # The next link carries the whole query (page size and filters included); a
            # relative one is resolved against the page it came with.
            url = urljoin(response.url, following) if following else None
            query = None
            if url in seen:
                raise Transient(f"MyCase's paging of {path} went round in a circle")
            if url is not None:
                seen.add(url)

    def _read_list(self, name: str, updated_after: str | None = None) -> Iterator[Json]:
        """Every record of the list ``name``, or those changed since ``updated_after``."""
        params: dict[str, str] = (
            {"field[client]": CLIENT_FIELDS}
            if name == CASES
            # Without this MyCase lists only the invoices that allow online payment.
            else {"only_allowed_online_payments": "false"}
        )
        if updated_after is not None:
            params["filter[updated_after]"] = updated_after
        return self._pages(name, params)

    def _book(self) -> tuple[list[Json], list[Json]]:
        """The firm's cases and invoices as MyCase holds them now: from the copy brought up to
        date, or read whole when this adapter keeps no copy."""
        if not self.config.identity:
            return list(self._read_list(CASES)), list(self._read_list(INVOICES))
        copy = COPIES.of(f"{self.api_base()}|{self.config.identity}")
        with copy.lock:
            self._bring_up_to_date(copy)
            return copy.values(CASES), copy.values(INVOICES)

    def _bring_up_to_date(self, copy: BookCopy) -> None:
        if copy.stale(self.full_read_seconds):
            copy.read_all(BOOK, self._read_list)
        else:
            copy.read_changes(BOOK, self._read_list)

    def search(
        self, q: str, client_id: str | None = None, matter_id: str | None = None
    ) -> SearchResult:
        """See the module's docstring: MyCase cannot search, so this matches the firm's cases
        and invoices here."""
        if not q.strip() and client_id is None and matter_id is None:
            return SearchResult()
        cases, invoices = self._book()
        return select(q, client_id, matter_id, cases, invoices, self.currency)

    def get_invoices(self, invoice_ids: Iterable[str]) -> list[Invoice]:
        """MyCase has no invoice by id: these come from the firm's book brought up to date,
        each with its case's client. (An invoice deleted since the copy's last whole read is
        still in it; a payment written to it is refused by MyCase as a conflict.)"""
        wanted = {str(i) for i in invoice_ids}
        if not wanted:
            return []
        cases, invoices = self._book()
        raws = [raw for raw in invoices if str(raw.get("id")) in wanted]
        known_cases = {str(case.get("id")): case for case in cases}
        client_of_case = {
            case_id: self._client_of_case(case_id, known_cases.get(case_id))
            for case_id in {records.ref_id(raw.get("case")) for raw in raws}
            if case_id
        }
        return [records.invoice_from(raw, client_of_case, self.currency) for raw in raws]

    def _client_of_case(self, case_id: str, case: Json | None) -> str:
        if case is not None:
            return records.primary_client_id(case)
        response = self._request("GET", f"cases/{case_id}", accept=(404,))
        if response.status_code == 404:
            return ""
        return records.primary_client_id(self._json(response))

    # Writing.

    def record_payment(self, posting: PostingRequest) -> PostResult:
        """One payment per allocation not yet written, in order, the posting's key in its
        notes. When a write fails after others of this call succeeded, the answer is
        ``partially_posted`` with every external id known so far (the caller records them,
        so no retry writes them again), and the failure's message; the next attempt starts at
        the failed allocation and raises its error again if it persists. A failure before any
        write of this call is raised as it is.

        A lost answer (Transient) may hide a payment MyCase did record: the caller runs
        ``find_payment`` before any retry."""
        self._check_posting(posting)
        written = {a.invoice_id: a.external_id for a in posting.allocations if a.external_id}
        wrote_now = False
        for allocation in posting.allocations:
            if allocation.external_id:
                continue
            try:
                written[allocation.invoice_id] = self._write(posting, allocation)
            except AdapterError as error:
                if not wrote_now:
                    raise
                return PostResult(
                    "partially_posted", external_ids=dict(written), message=str(error)
                )
            wrote_now = True
        return PostResult("posted", external_ids=dict(written))

    def _check_posting(self, posting: PostingRequest) -> None:
        """What MyCase would refuse, or what could not be told apart afterwards, refused
        before any call."""
        if posting.currency.upper() != self.currency:
            raise Permanent(f"MyCase keeps {self.currency}; this payment is in {posting.currency}")
        if any(a.amount <= 0 for a in posting.allocations):
            raise Permanent("Every invoice's amount must be more than zero")
        invoice_ids = [a.invoice_id for a in posting.allocations]
        if len(set(invoice_ids)) != len(invoice_ids):
            # One payment per invoice and posting is what find_payment can recognise.
            raise Permanent("An invoice appears twice in this payment")

    def _write(self, posting: PostingRequest, allocation: Allocation) -> str:
        """Record one allocation; the vendor's payment id."""
        response = self._request(
            "POST",
            f"invoices/{allocation.invoice_id}/payments",
            json=records.payment_body(posting, allocation.amount),
            accept=(404, 422),
        )
        if response.status_code == 404:
            raise Conflict(f"Invoice {allocation.invoice_number} is no longer in MyCase")
        if response.status_code == 422:
            # The invoice's business rules refused it: most often a balance now lower.
            raise Conflict(
                f"MyCase refused the payment to invoice {allocation.invoice_number}: "
                + vendor_message(response)
            )
        payment = self._json(response)
        if not isinstance(payment, dict) or payment.get("id") is None:
            raise Transient("MyCase's answer to a payment had no payment id")
        if str(payment.get("status") or "").lower() in records.PAYMENT_NOT_WRITTEN:
            raise Permanent(
                f"MyCase marked the payment to invoice {allocation.invoice_number} "
                f"as {payment['status']}"
            )
        return str(payment["id"])

    def find_payment(self, posting: PostingRequest) -> dict[str, str]:
        """invoice_id -> the id of the payment written for this posting's key, per invoice
        (from each invoice's payments; the key is in the notes)."""
        found: dict[str, str] = {}
        for invoice_id in dict.fromkeys(a.invoice_id for a in posting.allocations):
            payments = self._pages("invoice_payments", {"filter[payable_id]": invoice_id})
            ids = sorted(
                (
                    int(p["id"])
                    for p in payments
                    if records.payment_written(p, posting.key, invoice_id)
                ),
            )
            if ids:
                # Two would be a double payment from elsewhere; the first is the posting's.
                found[invoice_id] = str(ids[0])
        return found
