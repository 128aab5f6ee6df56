"""What a Sent Pages query means: status view, sort, search text, filters, page size, cursor.

One parser serves the API, the Excel export and the page, so that the three always agree.
It reports every wrong parameter (``{"field", "message"}``, the API's 422 shape) and still
returns a usable query, with the defaults in place of what was wrong: the page shows the
problem beside the first page rather than failing.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from decimal import Decimal
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
    STATUS_PARTIALLY_PAID,
    STATUS_PROCESSING,
    STATUSES,
)
from clientpay_connect.sent.cursor import Cursor, CursorError, decode_cursor

# A view ("Show: …") and the statuses it covers. A link being paid right now ("processing")
# has not been received yet: it shows under Outstanding until the payment settles.
STATUS_VIEWS: dict[str, tuple[str, ...]] = {
    "all": (),
    "outstanding": (STATUS_OUTSTANDING, STATUS_PROCESSING),
    "paid": (STATUS_PAID,),
    # Received, but not the whole amount: kept apart so that the balance is not overlooked.
    "partially_paid": (STATUS_PARTIALLY_PAID,),
    "cancelled": (STATUS_CANCELLED,),
    "expired": (STATUS_EXPIRED,),
}
VIEW_LABELS = {
    "all": "All",
    "outstanding": "Outstanding",
    "paid": "Payment Received",
    "partially_paid": "Partially Paid",
    "cancelled": "Cancelled",
    "expired": "Expired",
}

# The sortable fields and how their values compare: "int" (amounts in minor units, counts,
# and the status's place in a link's life), "date", "datetime" or "text" (case-insensitive).
# listing.py says what each sorts by; the nullable ones (empty values come last) are there too.
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
    "cancelled_at": "datetime",
    "first_opened_at": "datetime",
    "last_opened_at": "datetime",
    "reminders_sent": "int",
    "source": "text",
    "email_status": "text",
    "currency": "text",
    # The creator's name (their email address when they have none).
    "created_by": "text",
    # The merchant account's name.
    "merchant_account": "text",
    # The first email address, as the link lists them.
    "emails": "text",
}
SORT_CHOICES = tuple(name for field in SORT_KINDS for name in (field, "-" + field))


@dataclass(frozen=True)
class FilterSpec:
    """One ``filter[<name>]`` parameter: which field of a link it looks at, how it compares
    (``test``), and what its value must be (``value``, checked by the parser).

    test: "equals" (the value as it is), "equals_text" (ignoring case), "contains" (text,
    ignoring case), "min"/"max" (inclusive), "from"/"to" (days, inclusive; a timestamp's
    day in the firm's time zone), "in" (any of a comma-separated list), "created_by" (a
    user's id, name or email) and "client" (a Connect link's client).
    value: "choice" (one of ``choices``), "choices" (a comma-separated list of them), "id",
    "text", "amount" (a decimal string), "count" (a whole number) or "date" (YYYY-MM-DD).
    """

    field: str
    test: str
    value: str
    choices: tuple[str, ...] = ()


EMAIL_STATUSES = (EMAIL_NOT_SENT, EMAIL_QUEUED, EMAIL_SENT, EMAIL_FAILED, EMAIL_WITHHELD)

# The fields whose values are days or timestamps, for their _from and _to filters.
DATE_FILTER_FIELDS: dict[str, str] = {
    "invoice_date": "date",
    "due_date": "date",
    "created_at": "datetime",
    "sent_at": "datetime",
    "expires_at": "datetime",
    "paid_at": "datetime",
    "cancelled_at": "datetime",
    "first_opened_at": "datetime",
    "last_opened_at": "datetime",
}
# Amounts (decimal strings in the link's currency) and counts, for their _min and _max.
RANGE_FILTER_FIELDS: dict[str, str] = {
    "amount": "amount",
    "amount_paid": "amount",
    "reminders_sent": "count",
}
CONTAINS_FILTER_FIELDS = ("invoice_number", "recipient_name", "emails", "message", "created_by")

FILTERS: dict[str, FilterSpec] = {
    "source": FilterSpec("source", "equals", "choice", SOURCES),
    "merchant_account_id": FilterSpec("merchant_account_id", "equals", "id"),
    "invoice_number": FilterSpec("invoice_number", "equals_text", "text"),
    "recipient_name": FilterSpec("recipient_name", "equals_text", "text"),
    "email_status": FilterSpec("email_status", "equals", "choice", EMAIL_STATUSES),
    "created_by": FilterSpec("created_by", "created_by", "text"),
    "client_id": FilterSpec("client_id", "client", "text"),
    # Within the Show view (status): the links in any of these statuses.
    "status": FilterSpec("status", "in", "choices", STATUSES),
    **{f"{name}_contains": FilterSpec(name, "contains", "text") for name in CONTAINS_FILTER_FIELDS},
    **{
        f"{name}_{end}": FilterSpec(name, end, kind)
        for name, kind in RANGE_FILTER_FIELDS.items()
        for end in ("min", "max")
    },
    **{
        f"{name}_{end}": FilterSpec(name, end, "date")
        for name in DATE_FILTER_FIELDS
        for end in ("from", "to")
    },
}
FILTER_FIELDS = tuple(FILTERS)
FILTER_PARAM = re.compile(r"filter\[([^\]]*)\]")
WHOLE_NUMBER = re.compile(r"[0-9]{1,12}")
# A filter's amount: a plain decimal, as the API writes amounts ("1234.50").
DECIMAL_AMOUNT = re.compile(r"[0-9]{1,12}(\.[0-9]{1,3})?")
ISO_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
MAX_COUNT = 1_000_000

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
        if name not in FILTERS:
            errors.add(key, f"Filter on one of: {', '.join(FILTERS)}.")
            continue
        value = (_single(params, key, errors) or "").strip()
        problem = _filter_problem(FILTERS[name], value)
        if problem:
            errors.add(key, problem)
        elif value:
            found[name] = value
    _check_ranges(found, errors)
    return tuple(sorted(found.items()))


def _filter_problem(spec: FilterSpec, value: str) -> str | None:
    problem = _text_problem(value, MAX_FILTER_VALUE)
    if problem or not value:
        return problem
    return _VALUE_CHECKS[spec.value](spec, value)


def _choice_problem(spec: FilterSpec, value: str) -> str | None:
    return None if value in spec.choices else f"Use one of: {', '.join(spec.choices)}."


def _choices_problem(spec: FilterSpec, value: str) -> str | None:
    if all(part.strip() in spec.choices for part in value.split(",")):
        return None
    return f"Use one or more of these, separated by commas: {', '.join(spec.choices)}."


def _id_problem(_spec: FilterSpec, value: str) -> str | None:
    return None if _possible_id(value) else "Give a merchant account's id (a whole number)."


def _amount_problem(_spec: FilterSpec, value: str) -> str | None:
    if DECIMAL_AMOUNT.fullmatch(value):
        return None
    return 'Give an amount as a plain decimal number, such as "1234.50".'


def _count_problem(_spec: FilterSpec, value: str) -> str | None:
    if whole_number(value, MAX_COUNT) is not None:
        return None
    return f"Give a whole number from 0 to {MAX_COUNT}."


def _date_problem(_spec: FilterSpec, value: str) -> str | None:
    return None if filter_day(value) is not None else "Give a day as YYYY-MM-DD."


_VALUE_CHECKS = {
    "choice": _choice_problem,
    "choices": _choices_problem,
    "id": _id_problem,
    "text": lambda _spec, _value: None,
    "amount": _amount_problem,
    "count": _count_problem,
    "date": _date_problem,
}
# A range's lower end (a FilterSpec's test) and the name of its upper end.
_RANGE_ENDS = {"min": "max", "from": "to"}


def _check_ranges(found: dict[str, str], errors: _Errors) -> None:
    """A range whose upper end is below its lower end would match nothing: say so."""
    for name, value in found.items():
        spec = FILTERS[name]
        upper_end = _RANGE_ENDS.get(spec.test)
        if upper_end is None:
            continue
        upper_name = f"{spec.field}_{upper_end}"
        upper = found.get(upper_name)
        if upper is not None and range_value(spec, upper) < range_value(spec, value):
            errors.add(f"filter[{upper_name}]", f"Give at least filter[{name}] ({value}).")


def range_value(spec: FilterSpec, value: str) -> Any:
    """A checked range filter's value, as the query compares it."""
    if spec.value == "amount":
        return Decimal(value)
    if spec.value == "count":
        return int(value)
    return filter_day(value)


def filter_day(value: str) -> dt.date | None:
    if not ISO_DAY.fullmatch(value):
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        return None


def filter_choices(value: str) -> tuple[str, ...]:
    """A checked "choices" filter's values, each once."""
    return tuple(dict.fromkeys(part.strip() for part in value.split(",")))


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
