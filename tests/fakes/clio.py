"""A fake Clio Manage (API v4) speaking real HTTP on 127.0.0.1, written from Clio's public docs.

Each region (us, eu, ca, au) lives under its own path prefix — ``{url}/eu/api/v4/bills.json``,
``{url}/eu/oauth/token`` — with its own records and its own authorization server: a token
works only in the region that issued it, as at Clio. So the adapter's settings for this fake
are ``api_url = {url}/{region}/api/v4`` and ``auth_url = {url}/{region}`` (``settings()``).

OAuth (tests/fakes/oauth.py, mounted per region): ``/oauth/authorize``, ``/oauth/token``
(authorization code and refresh; refresh tokens never rotate, as at Clio) and
``/oauth/deauthorize``.

The API's rules: ``X-API-VERSION`` must name a supported version (else 410 Gone); a live
bearer token of the region (else 401); per token at most ``rate_limit`` requests per
``rate_window`` seconds, with ``X-RateLimit-Limit/-Remaining/-Reset`` on every answer and 429
+ ``Retry-After`` beyond it; ``fields=`` (see ``clio_data``); ``limit`` 1..200 (default 200);
cursor paging through ``meta.paging.next``, a full URL carrying every parameter and an opaque
``page_token``. Clio pages by cursor only in ``order=id(asc)``: a listing larger than
``limit`` asked for in another order is refused here, so an adapter that forgets the order
fails loudly. ``fail_next`` and ``slow_next`` make the next answers a 5xx or late;
``requests`` records every API call.
"""

from __future__ import annotations

import datetime as dt
import math
import secrets
import threading
import time
from collections import deque
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

from tests.fakes.clio_data import (
    FakeBill,
    FakeContact,
    FakeMatter,
    FieldsError,
    RegionData,
    check_fields,
    parse_fields,
    render,
)
from tests.fakes.httpserver import FakeHTTPServer, FakeRequest, FakeResponse
from tests.fakes.oauth import FakeOAuthProvider

REGIONS = ("us", "eu", "ca", "au")
API_VERSIONS = frozenset({"4.0.8", "4.0.9", "4.0.10"})
MAX_LIMIT = 200
RESOURCES = {"contacts": "contact", "matters": "matter", "bills": "bill"}
CLIENT_ID = "clio-test-client"
CLIENT_SECRET = "clio-test-secret"
THIRTY_DAYS = 30 * 86400.0
# Clio's refresh tokens do not expire; a century stands for never.
NEVER = 100 * 365 * 86400.0


@dataclass(frozen=True)
class RecordedRequest:
    region: str
    method: str
    resource: str
    query: dict[str, list[str]]
    api_version: str | None
    token: str | None
    status: int

    def param(self, name: str) -> str | None:
        values = self.query.get(name)
        return values[-1] if values else None


@dataclass
class _Window:
    ends_at: float
    used: int = 0


@dataclass(frozen=True)
class _Fault:
    status: int | None = None
    delay: float = 0.0


@dataclass(frozen=True)
class _Cursor:
    region: str
    resource: str
    after_id: int


def clio_error(status: int, kind: str, message: str, **headers: str) -> FakeResponse:
    return FakeResponse.json(status, {"error": {"type": kind, "message": message}}, headers)


class FakeClio(FakeHTTPServer):
    name = "fake-clio"

    def __init__(
        self,
        *,
        rate_limit: int | None = 50,
        rate_window: float = 60.0,
        access_ttl: float = THIRTY_DAYS,
    ) -> None:
        super().__init__()
        self.rate_limit = rate_limit
        self.rate_window = rate_window
        self.regions = {region: RegionData() for region in REGIONS}
        self.oauth = {
            region: FakeOAuthProvider(
                CLIENT_ID,
                CLIENT_SECRET,
                access_ttl=access_ttl,
                refresh_ttl=NEVER,
                rotate_refresh_tokens=False,
            )
            for region in REGIONS
        }
        self.requests: list[RecordedRequest] = []
        self._lock = threading.Lock()
        self._windows: dict[str, _Window] = {}
        self._faults: deque[_Fault] = deque()
        self._cursors: dict[str, _Cursor] = {}
        self._last_id = 1000

    def settings(self) -> dict[str, str]:
        """The app settings that point the Clio adapter here, every region included."""
        return {
            "clientpay.clio.api_url": self.base_url + "/{region}/api/v4",
            "clientpay.clio.auth_url": self.base_url + "/{region}",
            "clientpay.clio.client_id": CLIENT_ID,
            "clientpay.clio.client_secret": CLIENT_SECRET,
        }

    # Data, for tests to arrange (ids are unique across regions).

    def _new_id(self) -> int:
        with self._lock:
            self._last_id += 1
            return self._last_id

    def add_contact(self, first: str, last: str, *, region: str = "us", **kw: Any) -> FakeContact:
        contact = FakeContact(self._new_id(), first, last, **kw)
        self.regions[region].contacts[contact.id] = contact
        return contact

    def add_matter(
        self, client: FakeContact, number: str, description: str, *, region: str = "us"
    ) -> FakeMatter:
        matter = FakeMatter(self._new_id(), number, description, client.id)
        self.regions[region].matters[matter.id] = matter
        return matter

    def add_bill(
        self,
        matter: FakeMatter,
        number: str,
        total: str,
        *,
        paid: str = "0",
        issued: dt.date = dt.date(2025, 1, 1),
        due: dt.date = dt.date(2025, 2, 1),
        region: str = "us",
        **kw: Any,
    ) -> FakeBill:
        bill = FakeBill(
            self._new_id(),
            number,
            matter.client_id,
            (matter.id,),
            issued,
            due,
            Decimal(total),
            Decimal(paid),
            **kw,
        )
        self.regions[region].bills[bill.id] = bill
        return bill

    # Misbehaviour on demand.

    def fail_next(self, count: int = 1, status: int = 503) -> None:
        with self._lock:
            self._faults.extend(_Fault(status=status) for _ in range(count))

    def slow_next(self, count: int = 1, seconds: float = 30.0) -> None:
        """The next answers come after ``seconds`` (or when the fake stops)."""
        with self._lock:
            self._faults.extend(_Fault(delay=seconds) for _ in range(count))

    # What tests read.

    def api_calls(
        self, resource: str | None = None, region: str | None = None
    ) -> list[RecordedRequest]:
        with self._lock:
            return [
                r
                for r in self.requests
                if (resource is None or r.resource == resource)
                and (region is None or r.region == region)
            ]

    @property
    def refreshes(self) -> int:
        return sum(provider.refreshes for provider in self.oauth.values())

    # HTTP.

    def handle(self, request: FakeRequest) -> FakeResponse:
        region, _, rest = request.path.lstrip("/").partition("/")
        if region not in REGIONS:
            return clio_error(404, "NotFound", f"No region {region!r}")
        if rest.startswith("api/v4/"):
            return self._api(region, rest.removeprefix("api/v4/"), request)
        provider = self.oauth[region]
        endpoints = {
            ("GET", "oauth/authorize"): provider.authorize,
            ("POST", "oauth/token"): provider.token,
            ("POST", "oauth/deauthorize"): provider.revoke,
        }
        endpoint = endpoints.get((request.method, rest))
        if endpoint is None:
            return clio_error(404, "NotFound", f"No route {request.method} {request.path}")
        return endpoint(request)

    def _api(self, region: str, path: str, request: FakeRequest) -> FakeResponse:
        resource = path.removesuffix(".json")
        response = self._api_answer(region, resource, request)
        record = RecordedRequest(
            region,
            request.method,
            resource,
            request.query,
            request.headers.get("X-API-VERSION"),
            request.bearer,
            response.status,
        )
        with self._lock:
            self.requests.append(record)
        return response

    def _api_answer(self, region: str, resource: str, request: FakeRequest) -> FakeResponse:
        if resource not in RESOURCES or request.method != "GET":
            return clio_error(404, "NotFound", f"No route {request.method} {resource}")
        version = request.headers.get("X-API-VERSION")
        if version not in API_VERSIONS:
            return clio_error(410, "Gone", f"API version {version!r} is not supported")
        token = request.bearer
        if token is None or not self.oauth[region].access_token_valid(token):
            return clio_error(401, "AuthenticationError", "The access token is invalid")
        refused, rate_headers = self._spend(token)
        if refused is not None:
            return refused
        fault = self._take_fault()
        if fault is not None and fault.delay:
            self.hold(fault.delay)
        if fault is not None and fault.status:
            response = clio_error(fault.status, "ServerError", "Something went wrong")
        else:
            response = self._listing(region, resource, request)
        response.headers.update(rate_headers)
        response.headers["X-API-VERSION"] = version
        return response

    def _spend(self, token: str) -> tuple[FakeResponse | None, dict[str, str]]:
        """One request of the token's window, or the 429 that refuses it."""
        if self.rate_limit is None:
            return None, {}
        now = time.time()
        with self._lock:
            window = self._windows.get(token)
            if window is None or window.ends_at <= now:
                window = self._windows[token] = _Window(now + self.rate_window)
            headers = {
                "X-RateLimit-Limit": str(self.rate_limit),
                "X-RateLimit-Reset": str(math.ceil(window.ends_at)),
            }
            if window.used >= self.rate_limit:
                retry_after = str(max(1, math.ceil(window.ends_at - now)))
                refused = clio_error(
                    429,
                    "RateLimited",
                    "Too many requests",
                    **headers,
                    **{"X-RateLimit-Remaining": "0", "Retry-After": retry_after},
                )
                return refused, headers
            window.used += 1
            headers["X-RateLimit-Remaining"] = str(self.rate_limit - window.used)
        return None, headers

    def _take_fault(self) -> _Fault | None:
        with self._lock:
            return self._faults.popleft() if self._faults else None

    def _listing(self, region: str, resource: str, request: FakeRequest) -> FakeResponse:
        schema = RESOURCES[resource]
        try:
            spec = parse_fields(request.arg("fields"))
            check_fields(schema, spec)
            limit = _limit(request.arg("limit"))
            after_id = self._cursor(region, resource, request.arg("page_token"))
        except FieldsError as exc:
            return clio_error(400, "BadRequest", str(exc))
        records = self.regions[region].records(resource, request.query)
        records = [r for r in records if r["id"] > after_id]
        page, rest = records[:limit], records[limit:]
        paging: dict[str, str] = {}
        if rest:
            if request.arg("order") != "id(asc)":
                return clio_error(400, "BadRequest", "This fake pages by cursor: order=id(asc)")
            paging["next"] = self._next_url(region, resource, request, page[-1]["id"])
        body = {
            "data": [render(schema, r, spec) for r in page],
            "meta": {"paging": paging, "records": len(records)},
        }
        return FakeResponse.json(200, body)

    def _cursor(self, region: str, resource: str, token: str | None) -> int:
        if token is None:
            return 0
        with self._lock:
            cursor = self._cursors.get(token)
        if cursor is None or (cursor.region, cursor.resource) != (region, resource):
            raise FieldsError("Invalid page_token")
        return cursor.after_id

    def _next_url(self, region: str, resource: str, request: FakeRequest, last_id: int) -> str:
        token = secrets.token_urlsafe(12)
        with self._lock:
            self._cursors[token] = _Cursor(region, resource, last_id)
        pairs = [(k, v) for k, values in request.query.items() if k != "page_token" for v in values]
        pairs.append(("page_token", token))
        return f"{request.url}?{urlencode(pairs)}"


def _limit(value: str | None) -> int:
    if value is None:
        return MAX_LIMIT
    if not value.isdigit() or not 1 <= int(value) <= MAX_LIMIT:
        raise FieldsError(f"limit must be between 1 and {MAX_LIMIT}")
    return int(value)
