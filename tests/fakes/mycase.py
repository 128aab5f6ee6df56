"""A fake MyCase, written from MyCase's public API documentation, over real HTTP on 127.0.0.1.

One server plays both hosts: the authorization server under ``/auth`` (``/auth/login_sessions/new``,
``/auth/tokens``; the code exchange's answer carries ``firm_uuid``) and the API under ``/v1``:

- ``GET /v1/clients`` (``filter[first_name]``, ``filter[last_name]``, ``filter[email]``: whole
  values, as MyCase documents them), ``GET /v1/clients/{id}``, ``GET /v1/clients/{id}/cases``;
- ``GET /v1/cases`` (``filter[status]``; a case's ``clients`` carry only ``id`` unless
  ``field[client]`` names more fields), ``GET /v1/cases/{id}``;
- ``GET /v1/invoices``: only invoices that allow online payments unless
  ``only_allowed_online_payments=false``; amounts are JSON numbers;
- ``POST /v1/invoices/{id}/payments`` ``{amount, date, notes}``: 200 with the payment, the
  invoice's paid amount raised; 422 ``errors[{description, source}]`` for a bad field or an
  amount above the balance; 404 for an unknown invoice;
- ``GET /v1/invoice_payments`` (``filter[payable_id]``, ``filter[status]``).

Lists page by cursor: ``page_size`` (default 25, at most 1000), a ``Link: <…>; rel="next"``
header while more remain, and ``Item-Count``. Every API call needs a live bearer token (401
otherwise) and counts against the rate limit (25 requests per second; 429 with Retry-After).

Tests steer it (``fail_next``, ``throttle_next``, ``lose_next_payment_answers``, ``delay``,
``rate_limit``) and read it (``counts``, ``requests``, ``ledger``, ``oauth.refreshes``).
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import math
import re
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any, Literal
from urllib.parse import urlencode

from tests.fakes.httpserver import DROP, Drop, FakeHTTPServer, FakeRequest, FakeResponse
from tests.fakes.oauth import FakeOAuthProvider

CLIENT_ID = "mycase-test-client"
CLIENT_SECRET = "mycase-test-secret"
FIRM_UUID = "6f1c1a9e-0000-4000-8000-00000000f1a1"
DEFAULT_PAGE_SIZE = 25
MAX_PAGE_SIZE = 1000
CENT = Decimal("0.01")

Json = dict[str, Any]
Handler = Callable[[FakeRequest, re.Match[str]], FakeResponse]


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def _errors(status: int, description: str, **source: str) -> FakeResponse:
    return FakeResponse.json(status, {"errors": [{"description": description, "source": source}]})


@dataclass
class _Client:
    id: int
    first_name: str
    last_name: str
    email: str
    updated_at: str = field(default_factory=_now)


@dataclass
class _Case:
    id: int
    name: str
    case_number: str | None
    client_ids: list[int]
    billing_contact_id: int | None
    status: str
    updated_at: str = field(default_factory=_now)


@dataclass
class _Invoice:
    id: int
    invoice_number: str
    case_id: int
    invoice_date: dt.date
    due_date: dt.date | None
    total: Decimal
    paid: Decimal
    account_type: str
    allow_online_payments: bool
    draft: bool
    updated_at: str = field(default_factory=_now)


@dataclass(frozen=True)
class Payment:
    """A payment the fake recorded: the ledger tests read to prove "exactly once"."""

    id: int
    invoice_id: int
    amount: Decimal
    date: str
    notes: str
    created_at: str


@dataclass(frozen=True)
class SeenRequest:
    at: float  # time.monotonic()
    method: str
    path: str
    status: int  # 0: dropped without an answer
    query: tuple[tuple[str, str], ...] = ()


@dataclass
class _Fault:
    kind: Literal["status", "throttle", "hold"]
    status: int = 503
    retry_after: int = 1
    seconds: float = 0.0
    path_prefix: str = ""


class FakeMyCase(FakeHTTPServer):
    name = "fake-mycase"

    def __init__(
        self, *, access_ttl: float = 86400.0, rate_limit: tuple[int, float] | None = (25, 1.0)
    ):
        super().__init__()
        self.oauth = FakeOAuthProvider(
            CLIENT_ID,
            CLIENT_SECRET,
            access_ttl=access_ttl,
            token_fields={"firm_uuid": FIRM_UUID},
            scope="invoices:read payments:write cases:read clients:read",
        )
        # (requests, per seconds); None: no limit.
        self.rate_limit: tuple[int, float] | None = rate_limit
        # Seconds every API answer takes (a vendor far away).
        self.delay = 0.0
        self._lock = threading.Lock()
        self._ids = iter(range(1001, 10**9))
        self._clients: dict[int, _Client] = {}
        self._cases: dict[int, _Case] = {}
        self._invoices: dict[int, _Invoice] = {}
        self._payments: dict[int, Payment] = {}
        self._faults: deque[_Fault] = deque()
        self._lose_payment_answers: deque[Literal["drop", "hold"]] = deque()
        self._window: deque[float] = deque()
        self.counts: Counter[str] = Counter()  # "GET /v1/invoices" -> calls (429s included)
        self.requests: list[SeenRequest] = []
        self._routes: list[tuple[str, re.Pattern[str], Handler]] = [
            ("GET", re.compile(r"/v1/clients"), self._list_clients),
            ("GET", re.compile(r"/v1/clients/(\d+)"), self._get_client),
            ("GET", re.compile(r"/v1/clients/(\d+)/cases"), self._client_cases),
            ("GET", re.compile(r"/v1/cases"), self._list_cases),
            ("GET", re.compile(r"/v1/cases/(\d+)"), self._get_case),
            ("GET", re.compile(r"/v1/invoices"), self._list_invoices),
            ("POST", re.compile(r"/v1/invoices/(\d+)/payments"), self._record_payment),
            ("GET", re.compile(r"/v1/invoice_payments"), self._list_payments),
        ]

    # Where it is.

    @property
    def api_url(self) -> str:
        return self.base_url + "/v1"

    @property
    def auth_url(self) -> str:
        return self.base_url + "/auth"

    def settings(self) -> dict[str, str]:
        """The app settings that point the MyCase adapter here."""
        return {
            "clientpay.mycase.api_url": self.api_url,
            "clientpay.mycase.auth_url": self.auth_url,
            "clientpay.mycase.client_id": CLIENT_ID,
            "clientpay.mycase.client_secret": CLIENT_SECRET,
        }

    # Seeding (amounts as decimal strings, as a firm's books hold them).

    def add_client(self, first_name: str, last_name: str, email: str = "") -> int:
        with self._lock:
            client = _Client(next(self._ids), first_name, last_name, email)
            self._clients[client.id] = client
            return client.id

    def add_case(
        self,
        name: str,
        case_number: str | None,
        client_ids: Iterable[int],
        *,
        billing_contact_id: int | None = None,
        status: str = "open",
    ) -> int:
        with self._lock:
            ids = list(client_ids)
            case = _Case(next(self._ids), name, case_number, ids, billing_contact_id, status)
            self._cases[case.id] = case
            return case.id

    def add_invoice(
        self,
        case_id: int,
        invoice_number: str,
        total: str,
        *,
        paid: str = "0",
        invoice_date: dt.date = dt.date(2025, 1, 1),
        due_date: dt.date | None = dt.date(2025, 1, 31),
        account_type: str = "operating",
        allow_online_payments: bool = True,
        draft: bool = False,
    ) -> int:
        with self._lock:
            invoice = _Invoice(
                next(self._ids),
                invoice_number,
                case_id,
                invoice_date,
                due_date,
                Decimal(total),
                Decimal(paid),
                account_type,
                allow_online_payments,
                draft,
            )
            self._invoices[invoice.id] = invoice
            return invoice.id

    def set_paid(self, invoice_id: int, paid: str) -> None:
        """Someone paid in MyCase itself (the firm's office)."""
        with self._lock:
            invoice = self._invoices[invoice_id]
            invoice.paid = Decimal(paid)
            invoice.updated_at = _now()

    def remove_invoice(self, invoice_id: int) -> None:
        """The firm deleted an invoice in MyCase (a list's changes never show a deletion)."""
        with self._lock:
            del self._invoices[invoice_id]

    # Faults on demand.

    def fail_next(self, count: int = 1, status: int = 503, path_prefix: str = "") -> None:
        """The next ``count`` API calls (under ``path_prefix``) answer ``status``."""
        with self._lock:
            self._faults.extend(
                _Fault("status", status=status, path_prefix=path_prefix) for _ in range(count)
            )

    def throttle_next(self, count: int = 1, retry_after: int = 1, path_prefix: str = "") -> None:
        """The next ``count`` API calls answer 429 with ``Retry-After: retry_after``."""
        with self._lock:
            self._faults.extend(
                _Fault("throttle", retry_after=retry_after, path_prefix=path_prefix)
                for _ in range(count)
            )

    def hold_next(self, count: int = 1, seconds: float = 30.0, path_prefix: str = "") -> None:
        """The next ``count`` API calls answer only after ``seconds`` (longer than a timeout)."""
        with self._lock:
            self._faults.extend(
                _Fault("hold", seconds=seconds, path_prefix=path_prefix) for _ in range(count)
            )

    def lose_next_payment_answers(
        self, count: int = 1, how: Literal["drop", "hold"] = "drop"
    ) -> None:
        """The next ``count`` payments are recorded, then their answer is lost: the connection
        is cut (``drop``) or the answer comes after any client's timeout (``hold``)."""
        with self._lock:
            self._lose_payment_answers.extend(how for _ in range(count))

    # What tests read.

    @property
    def ledger(self) -> list[Payment]:
        with self._lock:
            return sorted(self._payments.values(), key=lambda p: p.id)

    def payments_for(self, invoice_id: int) -> list[Payment]:
        return [p for p in self.ledger if p.invoice_id == invoice_id]

    def invoice_paid(self, invoice_id: int) -> Decimal:
        with self._lock:
            return self._invoices[invoice_id].paid

    def statuses(self, path: str) -> list[int]:
        with self._lock:
            return [r.status for r in self.requests if r.path == path]

    # Serving.

    def handle(self, request: FakeRequest) -> FakeResponse | Drop:
        if request.path.startswith("/auth/"):
            return self._auth(request)
        answer = self._api(request)
        with self._lock:
            status = 0 if isinstance(answer, Drop) else answer.status
            self.requests.append(
                SeenRequest(
                    time.monotonic(),
                    request.method,
                    request.path,
                    status,
                    tuple((k, v) for k, values in request.query.items() for v in values),
                )
            )
        return answer

    def _auth(self, request: FakeRequest) -> FakeResponse:
        if request.method == "GET" and request.path == "/auth/login_sessions/new":
            return self.oauth.authorize(request)
        if request.method == "POST" and request.path == "/auth/tokens":
            return self.oauth.token(request)
        return FakeResponse(404)

    def _api(self, request: FakeRequest) -> FakeResponse | Drop:
        with self._lock:
            self.counts[f"{request.method} {request.path}"] += 1
            fault = self._take_fault(request.path)
        if self.delay:
            self.hold(self.delay)
        if fault is not None:
            answer = self._faulted(fault)
            if answer is not None:
                return answer
        limited = self._rate_limited()
        if limited is not None:
            return limited
        if not self.oauth.access_token_valid(request.bearer):
            return _errors(401, "The access token is invalid or has expired.")
        for method, pattern, handler in self._routes:
            match = pattern.fullmatch(request.path)
            if match and method == request.method:
                return self._answer(request, handler, match)
        return _errors(404, "Not found.")

    def _answer(
        self, request: FakeRequest, handler: Handler, match: re.Match[str]
    ) -> FakeResponse | Drop:
        answer = handler(request, match)
        if handler == self._record_payment and answer.status == 200:
            with self._lock:
                how = self._lose_payment_answers.popleft() if self._lose_payment_answers else None
            if how == "drop":
                return DROP
            if how == "hold":
                self.hold(60.0)
        return answer

    def _take_fault(self, path: str) -> _Fault | None:
        for fault in self._faults:
            if path.startswith(fault.path_prefix):
                self._faults.remove(fault)
                return fault
        return None

    def _faulted(self, fault: _Fault) -> FakeResponse | None:
        if fault.kind == "status":
            return _errors(fault.status, "Something went wrong, try again later.")
        if fault.kind == "throttle":
            return self._too_many(fault.retry_after)
        self.hold(fault.seconds)
        return None

    def _rate_limited(self) -> FakeResponse | None:
        if self.rate_limit is None:
            return None
        limit, period = self.rate_limit
        now = time.monotonic()
        with self._lock:
            while self._window and self._window[0] <= now - period:
                self._window.popleft()
            if len(self._window) >= limit:
                wait = self._window[0] + period - now
                return self._too_many(max(1, math.ceil(wait)))
            # Refused calls do not count: only what was served uses up the allowance.
            self._window.append(now)
        return None

    @staticmethod
    def _too_many(retry_after: int) -> FakeResponse:
        answer = _errors(429, "Too many requests.")
        answer.headers["Retry-After"] = str(retry_after)
        return answer

    # Paging.

    def _page(self, request: FakeRequest, items: list[Json]) -> FakeResponse:
        """Items sorted by id; the cursor is the last id served, so records added meanwhile
        never shift a page and no record is served twice."""
        try:
            size = int(request.arg("page_size") or DEFAULT_PAGE_SIZE)
        except ValueError:
            size = 0
        if not 1 <= size <= MAX_PAGE_SIZE:
            return _errors(422, f"page_size must be 1 to {MAX_PAGE_SIZE}.", parameter="page_size")
        after = _cursor(request.arg("page_token"))
        if after is None:
            return _errors(422, "The page_token is not valid.", parameter="page_token")
        ordered = sorted(items, key=lambda item: int(item["id"]))
        rest = [item for item in ordered if int(item["id"]) > after]
        page = rest[:size]
        headers = {"Item-Count": str(len(ordered))}
        if len(rest) > size:
            query = {k: v[-1] for k, v in request.query.items() if k != "page_token"}
            query["page_token"] = _token(int(page[-1]["id"]))
            headers["Link"] = f'<{request.url}?{urlencode(query)}>; rel="next"'
        return FakeResponse.json(200, page, headers)

    # The API's resources.

    def _list_clients(self, request: FakeRequest, match: re.Match[str]) -> FakeResponse:
        filters = {
            name: request.arg(f"filter[{name}]") for name in ("first_name", "last_name", "email")
        }
        with self._lock:
            rows = [
                self._client_json(c)
                for c in self._clients.values()
                if all(
                    value is None or getattr(c, name).casefold() == value.casefold()
                    for name, value in filters.items()
                )
            ]
        return self._page(request, rows)

    def _get_client(self, request: FakeRequest, match: re.Match[str]) -> FakeResponse:
        with self._lock:
            client = self._clients.get(int(match[1]))
            if client is None:
                return _errors(404, "Client not found.")
            return FakeResponse.json(200, self._client_json(client))

    def _client_cases(self, request: FakeRequest, match: re.Match[str]) -> FakeResponse:
        client_id = int(match[1])
        with self._lock:
            if client_id not in self._clients:
                return _errors(404, "Client not found.")
            rows = [
                self._case_json(c, ()) for c in self._cases.values() if client_id in c.client_ids
            ]
        return self._page(request, rows)

    def _list_cases(self, request: FakeRequest, match: re.Match[str]) -> FakeResponse:
        status = request.arg("filter[status]")
        fields = _fields(request.arg("field[client]"))
        since = _updated_after(request)
        if since is False:
            return _errors(422, "filter[updated_after] is not a date.", parameter="filter")
        with self._lock:
            rows = [
                self._case_json(c, fields)
                for c in self._cases.values()
                if (status is None or c.status == status) and _changed(c.updated_at, since)
            ]
        return self._page(request, rows)

    def _get_case(self, request: FakeRequest, match: re.Match[str]) -> FakeResponse:
        fields = _fields(request.arg("field[client]"))
        with self._lock:
            case = self._cases.get(int(match[1]))
            if case is None:
                return _errors(404, "Case not found.")
            return FakeResponse.json(200, self._case_json(case, fields))

    def _list_invoices(self, request: FakeRequest, match: re.Match[str]) -> FakeResponse:
        only_online = (request.arg("only_allowed_online_payments") or "true").lower() != "false"
        since = _updated_after(request)
        if since is False:
            return _errors(422, "filter[updated_after] is not a date.", parameter="filter")
        with self._lock:
            rows = [
                self._invoice_json(i)
                for i in self._invoices.values()
                if (i.allow_online_payments or not only_online) and _changed(i.updated_at, since)
            ]
        return self._page(request, rows)

    def _record_payment(self, request: FakeRequest, match: re.Match[str]) -> FakeResponse:
        try:
            body = request.json()
        except ValueError:
            return _errors(400, "The body is not JSON.")
        if not isinstance(body, dict):
            return _errors(400, "The body must be an object.")
        amount = _decimal(body.get("amount"))
        if amount is None or amount <= 0 or amount != amount.quantize(CENT):
            return _errors(422, "amount must be a positive amount in cents.", pointer="/amount")
        date = body.get("date")
        if not isinstance(date, str) or not re.fullmatch(r"\d{4}-\d{2}-\d{2}", date):
            return _errors(422, "date must be an ISO 8601 date.", pointer="/date")
        notes = body.get("notes") or ""
        with self._lock:
            invoice = self._invoices.get(int(match[1]))
            if invoice is None:
                return _errors(404, "Invoice not found.")
            if amount > invoice.total - invoice.paid:
                return _errors(
                    422, "The amount is more than the invoice's balance.", pointer="/amount"
                )
            invoice.paid += amount
            invoice.updated_at = _now()
            payment = Payment(next(self._ids), invoice.id, amount, date, str(notes), _now())
            self._payments[payment.id] = payment
            return FakeResponse.json(200, self._payment_json(payment))

    def _list_payments(self, request: FakeRequest, match: re.Match[str]) -> FakeResponse:
        payable = request.arg("filter[payable_id]")
        status = request.arg("filter[status]")
        with self._lock:
            rows = [
                self._payment_json(p)
                for p in self._payments.values()
                if (payable is None or str(p.invoice_id) == payable) and status in (None, "success")
            ]
        return self._page(request, rows)

    # JSON as MyCase writes it (called with the lock held).

    @staticmethod
    def _client_json(client: _Client) -> Json:
        return {
            "id": client.id,
            "first_name": client.first_name,
            "last_name": client.last_name,
            "email": client.email,
            "archived": False,
            "updated_at": client.updated_at,
        }

    def _case_json(self, case: _Case, client_fields: tuple[str, ...]) -> Json:
        clients = []
        for client_id in case.client_ids:
            full = self._client_json(self._clients[client_id])
            clients.append({"id": client_id, **{f: full[f] for f in client_fields if f in full}})
        return {
            "id": case.id,
            "name": case.name,
            "case_number": case.case_number,
            "status": case.status,
            "clients": clients,
            "billing_contact": {"id": case.billing_contact_id} if case.billing_contact_id else None,
            "updated_at": case.updated_at,
        }

    def _invoice_json(self, invoice: _Invoice) -> Json:
        return {
            "id": invoice.id,
            "invoice_number": invoice.invoice_number,
            "invoice_date": invoice.invoice_date.isoformat(),
            "due_date": invoice.due_date.isoformat() if invoice.due_date else None,
            "total_amount": invoice.total,
            "paid_amount": invoice.paid,
            "case": {"id": invoice.case_id},
            "bank_account": {
                "name": "Trust Account" if invoice.account_type == "trust" else "Operating",
                "account_type": invoice.account_type,
            },
            "view_url": f"{self.base_url}/invoices/{invoice.id}",
            "allow_online_payments": invoice.allow_online_payments,
            "status": _invoice_status(invoice),
            "created_at": invoice.updated_at,
            "updated_at": invoice.updated_at,
        }

    def _payment_json(self, payment: Payment) -> Json:
        invoice = self._invoices[payment.invoice_id]
        case = self._cases.get(invoice.case_id)
        client = case.client_ids[0] if case and case.client_ids else None
        return {
            "id": payment.id,
            "amount": payment.amount,
            "notes": payment.notes,
            "date": payment.date,
            "invoice": {"id": invoice.id},
            "invoice_number": invoice.invoice_number,
            "status": "success",
            "transaction_type": "payment",
            "case": {"id": invoice.case_id},
            "client": {"id": client} if client else None,
            "created_at": payment.created_at,
            "updated_at": payment.created_at,
        }


def _invoice_status(invoice: _Invoice) -> str:
    if invoice.draft:
        return "draft"
    if invoice.paid >= invoice.total:
        return "paid"
    if invoice.due_date and invoice.due_date < dt.date.today():
        return "overdue"
    return "partial" if invoice.paid > 0 else "sent"


def _updated_after(request: FakeRequest) -> dt.datetime | Literal[False] | None:
    """``filter[updated_after]`` (inclusive; without an offset, UTC, as MyCase reads it);
    None when absent, False when it is not a date."""
    value = request.arg("filter[updated_after]")
    if value is None:
        return None
    try:
        moment = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return False
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def _changed(updated_at: str, since: dt.datetime | None) -> bool:
    return since is None or dt.datetime.fromisoformat(updated_at) >= since


def _fields(value: str | None) -> tuple[str, ...]:
    return tuple(f.strip() for f in (value or "").split(",") if f.strip())


def _decimal(value: object) -> Decimal | None:
    if isinstance(value, bool) or not isinstance(value, int | Decimal | str):
        return None
    try:
        number = Decimal(value)
    except InvalidOperation:
        return None
    return number if number.is_finite() else None


def _token(after_id: int) -> str:
    raw = json.dumps({"after": after_id}).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _cursor(token: str | None) -> int | None:
    """The last id served before this page (0: the first page); None for a bad token."""
    if not token:
        return 0
    try:
        data = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        return int(data["after"])
    except (binascii.Error, ValueError, KeyError, TypeError):
        return None
