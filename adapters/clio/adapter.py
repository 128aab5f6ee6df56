"""Clio Manage (API v4): search contacts, matters and bills awaiting payment; postings are manual.

Clio's public API has no endpoint through which a third party records a payment against a
bill (allocations and bank transactions are read-only; its only money writes are trust
requests and Clio Payments links), so ``record_payment`` writes nothing: it answers
``manual_required`` with a slip that staff enter in Clio by hand.

Per connection (``AdapterConfig.settings``): ``region`` — ``us`` (app.clio.com), ``eu``,
``ca`` or ``au`` — because a Clio account and its tokens live in one region only.

App settings (``clientpay.clio.*``): ``api_url`` and ``auth_url`` are patterns in which
``{host}`` becomes the region's host and ``{region}`` its code, so a test server stands in
for every region; ``api_version`` is sent as ``X-API-VERSION`` on every call; ``page_size``
is the ``limit`` of each listing (Clio allows 1..200); ``client_id``, ``client_secret`` and
``max_rate_wait`` as for every OAuth adapter (adapters.oauth).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, ClassVar

from zope.interface import implementer

from adapters.clio import mapping
from adapters.oauth import OAuthRestAdapter
from clientpay_connect.connect.interfaces import (
    AdapterConfig,
    AdapterError,
    Capabilities,
    Client,
    Invoice,
    IOAuthMatterAdapter,
    ManualSlip,
    Matter,
    Permanent,
    PostingRequest,
    PostResult,
    SearchResult,
)

REGION_HOSTS: Mapping[str, str] = {
    "us": "app.clio.com",
    "eu": "eu.app.clio.com",
    "ca": "ca.app.clio.com",
    "au": "au.app.clio.com",
}
DEFAULT_API_VERSION = "4.0.9"
MAX_PAGE_SIZE = 200
# Clients and matters a search shows: one page each, the best matches; a broader search is
# narrowed by typing more, not by paging through the firm.
SEARCH_LIMIT = 25
# Clio allows 50 calls a minute per token and filters bills by one client or one matter per
# call, so a search fetches the open bills of at most this many matched clients and matters.
BILL_LOOKUPS = 5


@implementer(IOAuthMatterAdapter)
class ClioAdapter(OAuthRestAdapter):
    name = "clio"
    capabilities = Capabilities(
        search=True, post="manual", multi_invoice=True, trust=True, oauth=True
    )

    vendor: ClassVar[str] = "clio"
    default_api_url: ClassVar[str] = "https://{host}/api/v4"
    default_auth_url: ClassVar[str] = "https://{host}"
    authorize_path: ClassVar[str] = "/oauth/authorize"
    token_path: ClassVar[str] = "/oauth/token"  # noqa: S105 (a URL path, not a secret)
    revoke_path: ClassVar[str | None] = "/oauth/deauthorize"

    def __init__(self, config: AdapterConfig, **options: Any):
        super().__init__(config, **options)
        self.region = str(config.settings.get("region") or "us").lower()
        if self.region not in REGION_HOSTS:
            raise Permanent(f"Unknown Clio region {self.region!r} (us, eu, ca or au)")
        self.api_version = str(self._setting("api_version", DEFAULT_API_VERSION))
        self.page_size = min(int(self._setting("page_size", MAX_PAGE_SIZE)), MAX_PAGE_SIZE)
        self.default_currency = str(config.settings.get("currency") or "USD").upper()

    # Where this connection's region lives.

    def _regional(self, pattern: str) -> str:
        return pattern.format(host=REGION_HOSTS[self.region], region=self.region)

    def api_base(self) -> str:
        return self._regional(super().api_base())

    def auth_base(self) -> str:
        return self._regional(super().auth_base())

    def default_headers(self) -> dict[str, str]:
        return {**super().default_headers(), "X-API-VERSION": self.api_version}

    # Reading.

    def _listing(
        self, resource: str, params: Mapping[str, Any], *, every_page: bool = True
    ) -> Iterator[dict[str, Any]]:
        """Records of ``resource``, page after page through ``meta.paging.next`` (cursor
        paging, which Clio offers only in id order)."""
        first = {"limit": self.page_size, **params, "order": "id(asc)"}
        response = self._request("GET", f"{resource}.json", params=first)
        while True:
            body = self._json(response)
            if not isinstance(body, dict) or not isinstance(body.get("data"), list):
                raise mapping.UnexpectedAnswer(f"Clio's {resource} answer has no data list")
            yield from body["data"]
            next_url = ((body.get("meta") or {}).get("paging") or {}).get("next")
            if not next_url or not every_page:
                return
            # The next link carries every parameter of the first call.
            response = self._request("GET", next_url)

    def _bill_records(self, **filters: Any) -> list[dict[str, Any]]:
        return list(self._listing("bills", {"fields": mapping.BILL_FIELDS, **filters}))

    def _open_bill_records(self, **filters: Any) -> list[dict[str, Any]]:
        return self._bill_records(state="awaiting_payment", **filters)

    def _contacts(self, **filters: Any) -> list[dict[str, Any]]:
        params = {"fields": mapping.CONTACT_FIELDS, "limit": SEARCH_LIMIT, **filters}
        return list(self._listing("contacts", params, every_page=False))

    def _matters(self, **filters: Any) -> list[dict[str, Any]]:
        params = {"fields": mapping.MATTER_FIELDS, "limit": SEARCH_LIMIT, **filters}
        return list(self._listing("matters", params, every_page=False))

    # IMatterAdapter.

    def search(
        self, q: str, client_id: str | None = None, matter_id: str | None = None
    ) -> SearchResult:
        text = (q or "").strip()
        if client_id or matter_id:
            return self._search_within(text, client_id, matter_id)
        if not text:
            return SearchResult()
        contacts = self._contacts(query=text, client_only="true")
        matters = self._matters(query=text)
        found = _Found(self.default_currency)
        found.add_contacts(contacts)
        found.add_matters(matters)
        found.add_bills(self._open_bill_records(query=text))
        for filters in _bill_lookups(contacts, matters):
            found.add_bills(self._open_bill_records(**filters))
        return found.result()

    def _search_within(
        self, text: str, client_id: str | None, matter_id: str | None
    ) -> SearchResult:
        found = _Found(self.default_currency)
        if matter_id:
            found.add_matters(self._matters(**{"ids[]": matter_id}))
        else:
            found.add_matters(self._matters(client_id=client_id, **_query(text)))
        if client_id:
            found.add_contacts(self._contacts(**{"ids[]": client_id}))
        filters = {"client_id": client_id, "matter_id": matter_id}
        records = self._open_bill_records(**{k: v for k, v in filters.items() if v})
        found.add_bills(r for r in records if not text or text.lower() in _searchable(r))
        return found.result()

    def get_invoices(self, invoice_ids: Sequence[str]) -> list[Invoice]:
        wanted = [i for i in dict.fromkeys(str(i) for i in invoice_ids) if i.isdigit()]
        by_id: dict[str, Invoice] = {}
        for start in range(0, len(wanted), self.page_size):
            chunk = wanted[start : start + self.page_size]
            for record in self._bill_records(**{"ids[]": chunk}):
                invoice = mapping.to_invoice(record, self.default_currency)
                by_id[invoice.id] = invoice
        return [by_id[i] for i in wanted if i in by_id]

    def record_payment(self, posting: PostingRequest) -> PostResult:
        """Writes nothing (Clio cannot take a payment from us): the slip to enter by hand."""
        slip = ManualSlip(
            client=self._client_label(posting.client_id),
            matter=self._matter_label(posting.matter_id),
            date=posting.received_on,
            reference=posting.reference or posting.key,
            lines=tuple((a.invoice_number, a.amount) for a in posting.allocations),
            currency=posting.currency,
        )
        return PostResult(
            outcome="manual_required",
            slip=slip,
            message="Clio's API cannot record a payment: enter it in Clio by hand.",
        )

    def find_payment(self, posting: PostingRequest) -> dict[str, str]:
        """Always empty. We never write to Clio, so nothing of ours can be there to find; a
        payment staff enter by hand carries no key of ours that Clio's API would show (an
        allocation's only text is a credit memo's description), and matching on amounts would
        be a guess. Staff confirm manual postings themselves ("entered by hand")."""
        return {}

    # The slip's names: worth a read so staff see what Clio shows, never worth failing the
    # slip for; an id is still an exact pointer when Clio cannot be asked.

    def _client_label(self, client_id: str) -> str:
        if not client_id:
            return ""
        try:
            contacts = self._contacts(**{"ids[]": client_id})
        except AdapterError:
            contacts = []
        names = [c.get("name") for c in contacts if str(c.get("id")) == client_id]
        return names[0] if names and names[0] else f"Clio contact {client_id}"

    def _matter_label(self, matter_id: str) -> str:
        if not matter_id:
            return ""
        try:
            matters = self._matters(**{"ids[]": matter_id})
        except AdapterError:
            matters = []
        for record in matters:
            if str(record.get("id")) == matter_id:
                matter = mapping.to_matter(record)
                return " ".join(p for p in (matter.number, matter.name) if p)
        return f"Clio matter {matter_id}"


class _Found:
    """A search's clients, matters and open invoices, each once, including the clients and
    matters that the invoices name (so the result groups client → matter → invoice)."""

    def __init__(self, default_currency: str) -> None:
        self.default_currency = default_currency
        self.clients: dict[str, Client] = {}
        self.matters: dict[str, Matter] = {}
        self.invoices: dict[str, Invoice] = {}

    def add_contacts(self, records: Iterable[Mapping[str, Any]]) -> None:
        for record in records:
            client = mapping.to_client(record)
            self.clients.setdefault(client.id, client)

    def add_matters(self, records: Iterable[Mapping[str, Any]]) -> None:
        for record in records:
            matter = mapping.to_matter(record)
            self.matters.setdefault(matter.id, matter)
            if record.get("client"):
                self.add_contacts([record["client"]])

    def add_bills(self, records: Iterable[Mapping[str, Any]]) -> None:
        for record in records:
            invoice = mapping.to_invoice(record, self.default_currency)
            if invoice.state != "open" or invoice.balance <= 0:
                continue
            self.invoices.setdefault(invoice.id, invoice)
            if record.get("client"):
                self.add_contacts([record["client"]])
            for nested in record.get("matters") or []:
                matter = mapping.to_matter(nested, client_id=invoice.client_id)
                self.matters.setdefault(matter.id, matter)

    def result(self) -> SearchResult:
        return SearchResult(
            clients=sorted(self.clients.values(), key=lambda c: (c.name.lower(), c.id)),
            matters=sorted(self.matters.values(), key=lambda m: (m.number, m.id)),
            invoices=sorted(self.invoices.values(), key=mapping.due_order),
        )


def _query(text: str) -> dict[str, str]:
    return {"query": text} if text else {}


def _bill_lookups(
    contacts: Sequence[Mapping[str, Any]], matters: Sequence[Mapping[str, Any]]
) -> list[dict[str, str]]:
    """The bill filters for a search: each matched client, then each matched matter of a
    client not already covered; at most BILL_LOOKUPS."""
    lookups = [{"client_id": str(c["id"])} for c in contacts]
    covered = {str(c["id"]) for c in contacts}
    for matter in matters:
        client = str((matter.get("client") or {}).get("id", ""))
        if client not in covered:
            lookups.append({"matter_id": str(matter["id"])})
    return lookups[:BILL_LOOKUPS]


def _searchable(record: Mapping[str, Any]) -> str:
    """A bill's number, client and matters, for a search within one client or matter."""
    parts = [str(record.get("number") or ""), str((record.get("client") or {}).get("name") or "")]
    for matter in record.get("matters") or []:
        parts += [str(matter.get("display_number") or ""), str(matter.get("description") or "")]
    return " ".join(parts).lower()
