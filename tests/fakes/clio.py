"""A fake Clio Manage (API v4) speaking real HTTP on 127.0.0.1, written from Clio's public docs.

Each region (us, eu, ca, au) lives under its own path prefix — ``{url}/eu/api/v4/bills.json``,
``{url}/eu/oauth/token`` — and has its own records and its own tokens: a token works only in
the region that issued it, as at Clio. So the adapter's base-URL pattern for this fake is
``{url}/{region}``.

The API's rules: ``X-API-VERSION`` must name a supported version (else 410 Gone); a bearer
token of this region (else 401); per token at most ``rate_limit`` requests per
``rate_window`` seconds, with ``X-RateLimit-Limit/-Remaining/-Reset`` on every answer and
429 + ``Retry-After`` beyond it; ``fields=`` (see ``clio_data``); ``limit`` 1..200 (default
200); cursor paging only with ``order=id(asc)`` through ``meta.paging.next``, a full URL
carrying an opaque ``page_token`` (a listing larger than ``limit`` asked for in another order
is refused, so an adapter that forgets the order fails loudly). ``fail_next`` and
``slow_next`` make the next answers a 5xx or late. ``requests`` records every API call.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import secrets
import threading
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

from webob import Request, Response

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
from tests.support.live_server import serving

REGIONS = ("us", "eu", "ca", "au")
API_VERSIONS = frozenset({"4.0.8", "4.0.9", "4.0.10"})
MAX_LIMIT = 200
RESOURCES = {"contacts": "contact", "matters": "matter", "bills": "bill"}


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


@dataclass
class _Fault:
    status: int | None = None
    delay: float = 0.0


@dataclass
class _PageCursor:
    region: str
    resource: str
    after_id: int


def error(status: int, kind: str, message: str, **headers: str) -> Response:
    body = json.dumps({"error": {"type": kind, "message": message}})
    response = Response(body=body.encode(), status=status, content_type="application/json")
    response.headers.update(headers)
    return response


@dataclass
class FakeClio:
    rate_limit: int | None = 50
    rate_window: float = 60.0
    url: str = ""
    regions: dict[str, RegionData] = field(
        default_factory=lambda: {r: RegionData() for r in REGIONS}
    )
    requests: list[RecordedRequest] = field(default_factory=list)
    # Access tokens the fake accepts, each with its region. The OAuth endpoints fill it.
    access_tokens: dict[str, str] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _windows: dict[str, _Window] = field(default_factory=dict, repr=False)
    _faults: deque[_Fault] = field(default_factory=deque, repr=False)
    _cursors: dict[str, _PageCursor] = field(default_factory=dict, repr=False)
    _release: threading.Event = field(default_factory=threading.Event, repr=False)
    _next_id: int = field(default=1000, repr=False)

    # Data, for tests to arrange.

    def new_id(self) -> int:
        with self._lock:
            self._next_id += 1
            return self._next_id

    def add_contact(self, first: str, last: str, *, region: str = "us", **kw: Any) -> FakeContact:
        contact = FakeContact(self.new_id(), first, last, **kw)
        self.regions[region].contacts[contact.id] = contact
        return contact

    def add_matter(
        self, client: FakeContact, number: str, description: str, *, region: str = "us"
    ) -> FakeMatter:
        matter = FakeMatter(self.new_id(), number, description, client.id)
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
            self.new_id(),
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

    def statuses(self) -> list[int]:
        return [r.status for r in self.api_calls()]

    # HTTP.

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        return self.respond(request)(environ, start_response)

    def respond(self, request: Request) -> Response:
        region, _, rest = request.path_info.lstrip("/").partition("/")
        if region not in REGIONS:
            return error(404, "NotFound", f"No region {region!r}")
        if rest.startswith("api/v4/"):
            return self.api(region, rest.removeprefix("api/v4/"), request)
        if rest.startswith("oauth/"):
            return self.oauth(region, rest.removeprefix("oauth/"), request)
        return error(404, "NotFound", f"No route {request.path_info}")

    def oauth(self, region: str, path: str, request: Request) -> Response:
        return error(404, "NotFound", "OAuth is mounted by the shared fake")

    def api(self, region: str, path: str, request: Request) -> Response:
        resource = path.removesuffix(".json")
        token = _bearer(request)
        response = self._api_answer(region, resource, token, request)
        query = _query(request)
        record = RecordedRequest(
            region,
            request.method,
            resource,
            query,
            request.headers.get("X-API-VERSION"),
            token,
            response.status_code,
        )
        with self._lock:
            self.requests.append(record)
        return response

    def _api_answer(
        self, region: str, resource: str, token: str | None, request: Request
    ) -> Response:
        if resource not in RESOURCES or request.method != "GET":
            return error(404, "NotFound", f"No route {request.method} {resource}")
        version = request.headers.get("X-API-VERSION")
        if version not in API_VERSIONS:
            return error(410, "Gone", f"API version {version!r} is not supported")
        if token is None or self.access_tokens.get(token) != region:
            return error(401, "AuthenticationError", "The access token is invalid or expired")
        limited, rate_headers = self._spend(token)
        if limited is not None:
            return limited
        fault = self._take_fault()
        if fault is not None and fault.delay:
            self._release.wait(fault.delay)
        if fault is not None and fault.status:
            response = error(fault.status, "ServerError", "Something went wrong")
        else:
            response = self._listing(region, resource, request)
        response.headers.update(rate_headers)
        response.headers["X-API-VERSION"] = version
        return response

    def _spend(self, token: str) -> tuple[Response | None, dict[str, str]]:
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
                headers["X-RateLimit-Remaining"] = "0"
                retry_after = str(max(1, math.ceil(window.ends_at - now)))
                return error(
                    429,
                    "RateLimited",
                    "Too many requests",
                    **headers,
                    **{"Retry-After": retry_after},
                ), headers
            window.used += 1
            headers["X-RateLimit-Remaining"] = str(self.rate_limit - window.used)
        return None, headers

    def _take_fault(self) -> _Fault | None:
        with self._lock:
            return self._faults.popleft() if self._faults else None

    def _listing(self, region: str, resource: str, request: Request) -> Response:
        query = _query(request)
        schema = RESOURCES[resource]
        try:
            spec = parse_fields(request.GET.get("fields"))
            check_fields(schema, spec)
            limit = _limit(request.GET.get("limit"))
            after_id = self._cursor(region, resource, request.GET.get("page_token"))
        except FieldsError as exc:
            return error(400, "BadRequest", str(exc))
        records = [r for r in self.regions[region].records(resource, query) if r["id"] > after_id]
        page, rest = records[:limit], records[limit:]
        meta: dict[str, Any] = {"paging": {}, "records": len(records)}
        if rest:
            if request.GET.get("order") != "id(asc)":
                return error(400, "BadRequest", "This fake pages by cursor only: order=id(asc)")
            meta["paging"]["next"] = self._next_url(region, resource, request, page[-1]["id"])
        body = {"data": [render(schema, r, spec) for r in page], "meta": meta}
        return Response(json=body, content_type="application/json")

    def _cursor(self, region: str, resource: str, token: str | None) -> int:
        if token is None:
            return 0
        with self._lock:
            cursor = self._cursors.get(token)
        if cursor is None or (cursor.region, cursor.resource) != (region, resource):
            raise FieldsError("Invalid page_token")
        return cursor.after_id

    def _next_url(self, region: str, resource: str, request: Request, last_id: int) -> str:
        token = secrets.token_urlsafe(12)
        with self._lock:
            self._cursors[token] = _PageCursor(region, resource, last_id)
        pairs = [(k, v) for k, v in request.GET.items() if k != "page_token"]
        pairs.append(("page_token", token))
        return f"{request.path_url}?{urlencode(pairs)}"

    def stop(self) -> None:
        self._release.set()


def _query(request: Request) -> dict[str, list[str]]:
    return {key: request.GET.getall(key) for key in set(request.GET)}


def _bearer(request: Request) -> str | None:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return token if scheme.lower() == "bearer" and token else None


def _limit(value: str | None) -> int:
    if value is None:
        return MAX_LIMIT
    if not value.isdigit() or not 1 <= int(value) <= MAX_LIMIT:
        raise FieldsError(f"limit must be between 1 and {MAX_LIMIT}")
    return int(value)


@contextmanager
def running_clio(**options: Any) -> Iterator[FakeClio]:
    fake = FakeClio(**options)
    with serving(fake, threads=24) as url:
        fake.url = url
        try:
            yield fake
        finally:
            fake.stop()
