"""What a Sent Pages query means: status view, sort, search text, filters, page size, cursor.

One parser serves the API, the Excel export and the page, so that the three always agree.
It reports every wrong parameter (``{"field", "message"}``, the API's 422 shape) and still
returns a usable query, with the defaults in place of what was wrong: the page shows the
problem beside the first page rather than failing.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from clientpay_connect.db import MAX_INTEGER_ID
from clientpay_connect.links.models import (
    EMAIL_FAILED,
    EMAIL_NOT_SENT,
    EMAIL_QUEUED,
    EMAIL_SENT,
    EMAIL_WITHHELD,
    SOURCES,
    STATUS_CANCELLED,
    STATUS_EXPIRED,
    STATUS_OUTSTANDING,
    STATUS_PAID,
    STATUS_PROCESSING,
)
from clientpay_connect.sent.cursor import Cursor, CursorError, decode_cursor

# A view ("Show: …") and the statuses it covers. A link being paid right now ("processing")
# has not been received yet: it shows under Outstanding until the payment settles.
STATUS_VIEWS: dict[str, tuple[str, ...]] = {
    "all": (),
    "outstanding": (STATUS_OUTSTANDING, STATUS_PROCESSING),
    "paid": (STATUS_PAID,),
    "cancelled": (STATUS_CANCELLED,),
    "expired": (STATUS_EXPIRED,),
}
VIEW_LABELS = {
    "all": "All",
    "outstanding": "Outstanding",
    "paid": "Payment Received",
    "cancelled": "Cancelled",
    "expired": "Expired",
}

# The sortable fields and how their values compare: "int" (amounts in minor units, and the
# status's place in a link's life), "date", "datetime" or "text" (case-insensitive).
SORT_KINDS: dict[str, str] = {
    "created_at": "datetime",
    "amount": "int",
    "amount_paid": "int",
    "due_date": "date",
    "invoice_date": "date",
    "invoice_number": "text",
    "recipient_name": "text",
    "status": "int",
    "sent_at": "datetime",
    "paid_at": "datetime",
    "expires_at": "datetime",
}
SORT_CHOICES = tuple(name for field in SORT_KINDS for name in (field, "-" + field))

FILTER_FIELDS = (
    "source",
    "merchant_account_id",
    "invoice_number",
    "recipient_name",
    "email_status",
    "created_by",
)
EMAIL_STATUSES = (EMAIL_NOT_SENT, EMAIL_QUEUED, EMAIL_SENT, EMAIL_FAILED, EMAIL_WITHHELD)
FILTER_PARAM = re.compile(r"filter\[([^\]]*)\]")
WHOLE_NUMBER = re.compile(r"[0-9]{1,12}")

DEFAULT_SORT = "-created_at"
DEFAULT_LIMIT = 50
MAX_LIMIT = 500
MAX_Q = 200
MAX_FILTER_VALUE = 254

FieldError = dict[str, str]


@dataclass(frozen=True)
class Sort:
    field: str
    descending: bool

    @classmethod
    def parse(cls, text: str) -> Sort:
        return cls(text.lstrip("-"), text.startswith("-"))

    @property
    def param(self) -> str:
        return ("-" if self.descending else "") + self.field

    @property
    def kind(self) -> str:
        return SORT_KINDS[self.field]


@dataclass(frozen=True)
class ListQuery:
    status: str = "all"
    sort: Sort = field(default_factory=lambda: Sort.parse(DEFAULT_SORT))
    q: str = ""
    filters: tuple[tuple[str, str], ...] = ()
    limit: int = DEFAULT_LIMIT
    cursor: Cursor | None = None

    def params(self, **changes: Any) -> dict[str, str]:
        """The query string that asks for this query again (the first page of it), with
        ``changes`` applied: for the page's tabs, sort links and export link."""
        query = replace(self, cursor=None, **changes)
        params: dict[str, str] = {}
        if query.status != "all":
            params["status"] = query.status
        if query.q:
            params["q"] = query.q
        if query.sort.param != DEFAULT_SORT:
            params["sort"] = query.sort.param
        for name, value in query.filters:
            params[f"filter[{name}]"] = value
        if query.limit != DEFAULT_LIMIT:
            params["limit"] = str(query.limit)
        return params

    def page_params(self) -> dict[str, str]:
        """The query string of this very page (its cursor too)."""
        params = self.params()
        if self.cursor is not None:
            params["cursor"] = self.cursor.token
        return params


class _Errors(list[FieldError]):
    def add(self, name: str, message: str) -> None:
        self.append({"field": name, "message": message})


def parse_list_query(params: Any) -> tuple[ListQuery, list[FieldError]]:
    """Read a query from ``params`` (a WebOb MultiDict); the query and what was wrong."""
    errors = _Errors()
    status = _choice(params, "status", STATUS_VIEWS, "all", errors)
    sort = Sort.parse(_choice(params, "sort", SORT_CHOICES, DEFAULT_SORT, errors))
    q = _text(params, "q", MAX_Q, errors)
    filters = _filters(params, errors)
    limit = _limit(params, errors)
    cursor = _cursor(params, sort, errors)
    query = ListQuery(status, sort, q, filters, limit, cursor)
    return query, list(errors)


def _single(params: Any, name: str, errors: _Errors) -> str | None:
    values = params.getall(name)
    if not values:
        return None
    if len(values) > 1:
        errors.add(name, "Give this parameter once.")
        return None
    return str(values[0])


def _choice(
    params: Any,
    name: str,
    choices: Mapping[str, Any] | tuple[str, ...],
    default: str,
    errors: _Errors,
) -> str:
    value = _single(params, name, errors)
    if value is None or value == "":
        return default
    if value not in choices:
        errors.add(name, f"Use one of: {', '.join(choices)}.")
        return default
    return value


def _text(params: Any, name: str, limit: int, errors: _Errors) -> str:
    value = (_single(params, name, errors) or "").strip()
    problem = _text_problem(value, limit)
    if problem:
        errors.add(name, problem)
        return ""
    return value


def _text_problem(value: str, limit: int) -> str | None:
    if len(value) > limit:
        return f"Use at most {limit} characters."
    # PostgreSQL refuses a NUL in any text it is given, so it must not get that far.
    if "\x00" in value:
        return "Remove the NUL character."
    return None


def _limit(params: Any, errors: _Errors) -> int:
    value = _single(params, "limit", errors)
    if value is None or value == "":
        return DEFAULT_LIMIT
    number = whole_number(value, MAX_LIMIT)
    if number is None or number < 1:
        errors.add("limit", f"Use a whole number from 1 to {MAX_LIMIT}.")
        return DEFAULT_LIMIT
    return number


def _cursor(params: Any, sort: Sort, errors: _Errors) -> Cursor | None:
    value = _single(params, "cursor", errors)
    if not value:
        return None
    try:
        return decode_cursor(value, sort.param, sort.kind)
    except CursorError as exc:
        errors.add("cursor", str(exc))
        return None


def _filters(params: Any, errors: _Errors) -> tuple[tuple[str, str], ...]:
    found: dict[str, str] = {}
    for key in dict.fromkeys(params.keys()):
        match = FILTER_PARAM.fullmatch(key)
        if match is None:
            continue
        name = match.group(1)
        if name not in FILTER_FIELDS:
            errors.add(key, f"Filter on one of: {', '.join(FILTER_FIELDS)}.")
            continue
        value = (_single(params, key, errors) or "").strip()
        problem = _filter_problem(name, value)
        if problem:
            errors.add(key, problem)
        elif value:
            found[name] = value
    return tuple(sorted(found.items()))


def _filter_problem(name: str, value: str) -> str | None:
    problem = _text_problem(value, MAX_FILTER_VALUE)
    if problem:
        return problem
    if name == "source" and value and value not in SOURCES:
        return f"Use one of: {', '.join(SOURCES)}."
    if name == "email_status" and value and value not in EMAIL_STATUSES:
        return f"Use one of: {', '.join(EMAIL_STATUSES)}."
    if name == "merchant_account_id" and value and not _possible_id(value):
        return "Give a merchant account's id (a whole number)."
    return None


def whole_number(text: str, maximum: int) -> int | None:
    """``text`` as a number from 0 to ``maximum``, else None (ASCII digits only: str.isdigit
    lets "²" through, which int() then refuses)."""
    if not WHOLE_NUMBER.fullmatch(text):
        return None
    number = int(text)
    return number if number <= maximum else None


def _possible_id(value: str) -> bool:
    number = whole_number(value, MAX_INTEGER_ID)
    return number is not None and number > 0


def creator_is_id(value: str) -> bool:
    """filter[created_by] takes a user's id, or their name or email address."""
    return _possible_id(value)
