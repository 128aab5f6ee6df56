"""The matter-system boundary: what an adapter (sql, mycase, clio, or a third party's) offers.

Adapters live in the top-level ``adapters`` package and are found through the entry-point
group ``clientpay_connect.adapters``; each is built for one connection from an
``AdapterConfig``. Everything crossing this boundary is plain data declared here: amounts are
integer minor units (an adapter converts the vendor's floats or decimal strings once, at its
edge), dates are ``datetime.date``, ids are strings (vendors use numbers, UUIDs or codes).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal, Protocol

from zope.interface import Attribute, Interface

Account = Literal["operating", "trust"]
ACCOUNT_OPERATING: Final = "operating"
ACCOUNT_TRUST: Final = "trust"
PostMode = Literal["api", "file", "manual"]

ENTRY_POINT_GROUP = "clientpay_connect.adapters"


# Errors: every adapter raises these (and only these) for what went wrong at the vendor.


class AdapterError(Exception):
    """Something the matter system answered or failed to answer; the message is for staff."""


class RateLimited(AdapterError):
    """The vendor asked us to slow down; try again after ``retry_after`` seconds."""

    def __init__(self, retry_after: float, message: str = "The matter system is rate limiting"):
        super().__init__(message)
        self.retry_after = retry_after


class ReauthorizationRequired(AdapterError):
    """The grant is gone (revoked, expired unused, ``invalid_grant``): an admin must connect
    again; nothing will succeed until then."""


class Conflict(AdapterError):
    """The data changed under us (an invoice closed, voided, or its balance lowered)."""


class Transient(AdapterError):
    """A timeout, a 5xx, a dropped connection: the same call may succeed later."""


class Permanent(AdapterError):
    """The vendor refused the call as it stands (4xx other than the above): do not repeat."""


# What an admin asked of a connection and cannot have (raised by services.py; the API maps it
# to HTTP in api.py, the pages flash its message).


class ConnectionRefused(Exception):
    """What an admin asked of a connection cannot be done; the message says why."""

    def __init__(self, code: str, message: str, field: str | None = None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.field = field


# Data.


@dataclass(frozen=True)
class Capabilities:
    search: bool
    # api: written through the vendor's API; file: an import file or staging table;
    # manual: staff enter it by hand from a slip.
    post: PostMode
    # True when one write can carry several invoices; False: one write per invoice.
    multi_invoice: bool
    # True when the system tells trust invoices from operating ones.
    trust: bool
    oauth: bool = False

    def as_json(self) -> dict[str, Any]:
        return {
            "search": self.search,
            "post": self.post,
            "multi_invoice": self.multi_invoice,
            "trust": self.trust,
        }


@dataclass(frozen=True)
class Client:
    id: str
    name: str
    email: str = ""


@dataclass(frozen=True)
class Matter:
    id: str
    number: str
    name: str
    client_id: str


@dataclass(frozen=True)
class Invoice:
    id: str
    number: str
    client_id: str
    matter_id: str
    issued_on: dt.date | None
    due_on: dt.date | None
    currency: str
    total: int
    paid: int
    balance: int
    account: Account = ACCOUNT_OPERATING
    # open: payable; paid, void: closed (a posting to it is a conflict).
    state: Literal["open", "paid", "void"] = "open"
    # The vendor's etag or updated_at, so a later read can tell that the invoice changed.
    version: str = ""


@dataclass(frozen=True)
class SearchResult:
    clients: list[Client] = field(default_factory=list)
    matters: list[Matter] = field(default_factory=list)
    # Open invoices only (balance > 0), oldest due first.
    invoices: list[Invoice] = field(default_factory=list)


@dataclass(frozen=True)
class TokenSet:
    access_token: str
    refresh_token: str | None
    expires_at: dt.datetime | None
    # Whatever else the provider returned that the adapter needs later (e.g. MyCase's firm_uuid).
    extra: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Allocation:
    invoice_id: str
    invoice_number: str
    amount: int
    # Set once this allocation was written (the vendor's id of the payment), so a retry of a
    # one-invoice-per-call posting writes only the rest.
    external_id: str | None = None


@dataclass(frozen=True)
class PostingRequest:
    """A payment to write back. ``key`` is deterministic per posting and is what makes a
    write findable again (a unique key, or text in the vendor's notes)."""

    key: str
    received_on: dt.date
    currency: str
    allocations: tuple[Allocation, ...]
    reference: str = ""  # our receipt number
    payer_name: str = ""
    method: str = ""  # card | echeck
    client_id: str = ""
    matter_id: str = ""


@dataclass(frozen=True)
class ManualSlip:
    """What staff need to enter a payment by hand."""

    client: str
    matter: str
    date: dt.date
    reference: str
    lines: tuple[tuple[str, int], ...]  # (invoice number, amount)
    currency: str = "USD"


PostOutcome = Literal["posted", "pending", "manual_required", "partially_posted", "rejected"]


@dataclass(frozen=True)
class PostResult:
    outcome: PostOutcome
    # invoice_id -> the vendor's id of the payment written to it.
    external_ids: Mapping[str, str] = field(default_factory=dict)
    tracking_id: str | None = None
    slip: ManualSlip | None = None
    message: str = ""


class TokenSource(Protocol):
    """How an OAuth adapter gets a valid access token for its connection. The connection
    service implements it with a lock that holds across processes, so that a token is
    refreshed once however many requests need it at that moment."""

    def access_token(self) -> str:
        """A token valid now (refreshed first when it is about to expire)."""

    def refreshed(self, stale_access_token: str) -> str:
        """After a 401: refresh unless another caller already replaced ``stale_access_token``."""


class RequestPace(Protocol):
    """The pace of one connection's calls to its vendor, shared by every worker that calls
    it (clientpay_connect.throttle). An adapter waits for it before each call, and tells it
    when the vendor asks for a pause."""

    def wait(self, max_wait: float) -> float:
        """0.0 once the next call may go; else, having waited no longer than ``max_wait``,
        the seconds still to wait."""

    def pause(self, seconds: float) -> None:
        """The vendor asked every caller to hold off for ``seconds`` (a 429's Retry-After)."""


@dataclass(frozen=True)
class AdapterConfig:
    # The connection's own settings, as an admin gave them (no secrets in clear elsewhere).
    settings: Mapping[str, Any]
    # The app's settings (clientpay.*): vendor base URLs, OAuth client ids, timeouts.
    app_settings: Mapping[str, Any]
    tokens: TokenSource | None = None
    # Where the provider sends the admin back after authorization (OAuth adapters).
    redirect_uri: str = ""
    # The connection's pace (None: calls go as fast as the vendor answers).
    pace: RequestPace | None = None
    # Whose records these are: the connection as it was last authorized (its id and when),
    # for what an adapter keeps between calls (MyCase's copy of the firm's book). Empty: keep
    # nothing between calls.
    identity: str = ""


class IMatterAdapter(Interface):
    """One connection to a matter system."""

    name = Attribute("The entry-point name (sql, mycase, clio, …)")
    capabilities = Attribute("A Capabilities")

    def search(q, client_id=None, matter_id=None):
        """Clients, matters and open invoices matching ``q`` (a client's name, a matter's
        number or name, an invoice number; case-insensitive), narrowed to ``client_id`` /
        ``matter_id`` when given. Returns a SearchResult."""

    def get_invoices(invoice_ids):
        """The invoices with these ids as the system holds them now (any state); unknown ids
        are missing from the answer. Returns a list of Invoice."""

    def record_payment(posting):
        """Write ``posting`` (a PostingRequest); allocations with an external_id are already
        written and are skipped. Returns a PostResult."""

    def find_payment(posting):
        """What the system already holds for ``posting``'s key: invoice_id -> external id of
        each allocation found written (empty when none). Run before any retry."""

    def close():  # type: ignore[misc]  # zope interfaces omit self
        """Release what the adapter holds (HTTP sessions, database engines)."""


class IOAuthMatterAdapter(IMatterAdapter):
    """An adapter whose connection is authorized by an admin at the vendor (OAuth2 code)."""

    def authorize_url(state, code_challenge):
        """The vendor's authorization URL for ``state`` and the PKCE ``code_challenge``
        (S256), returning to the config's redirect_uri."""

    def exchange_code(code, code_verifier):
        """Trade the authorization code for a TokenSet."""

    def refresh(refresh_token):
        """A new TokenSet; raises ReauthorizationRequired on ``invalid_grant``."""

    def revoke(tokens):
        """Revoke the TokenSet at the vendor where it allows; never raises for a dead token."""


class IAdapterCatalog(Interface):
    """The matter-system adapters this installation offers, by name."""

    def names():  # type: ignore[misc]  # zope interfaces omit self
        """The adapter names, sorted."""

    def adapter_class(name):
        """The class registered as ``name``; KeyError when there is none."""
