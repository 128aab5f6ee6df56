"""The records of the fake Clio and Clio's ``fields=`` rules, apart from any HTTP.

Written from Clio Manage's public API v4 documentation: a record answers only ``id`` and
``etag`` unless ``fields=`` names more; a nested resource (``client{id,name}``) answers its
own ``id`` and ``etag`` unless braces name more; braces inside braces (a second level) and
unknown fields are a 400. Amounts are JSON numbers, as Clio sends them.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

DEFAULT_FIELDS = ("id", "etag")

# Each resource's fields: None for a plain value, else the nested resource's schema name
# (a trailing "[]" when the field holds a list of them).
SCHEMAS: dict[str, dict[str, str | None]] = {
    "contact": {
        "id": None,
        "etag": None,
        "name": None,
        "first_name": None,
        "last_name": None,
        "type": None,
        "is_client": None,
        "primary_email_address": None,
        "updated_at": None,
    },
    "matter": {
        "id": None,
        "etag": None,
        "number": None,
        "display_number": None,
        "description": None,
        "status": None,
        "updated_at": None,
        "client": "contact",
    },
    "bill": {
        "id": None,
        "etag": None,
        "number": None,
        "issued_at": None,
        "due_at": None,
        "total": None,
        "paid": None,
        "balance": None,
        "due": None,
        "state": None,
        "kind": None,
        "type": None,
        "updated_at": None,
        "client": "contact",
        "matters": "matter[]",
        "currency": "currency",
        "destination_account": "bank_account",
    },
    "currency": {"id": None, "etag": None, "code": None, "sign": None},
    "bank_account": {"id": None, "etag": None, "name": None, "type": None},
}


class FieldsError(ValueError):
    """A ``fields=`` value Clio would answer with 400 Bad Request."""


FieldSpec = list[tuple[str, list[str] | None]]


def parse_fields(text: str | None) -> FieldSpec:
    """``"id,client{id,name}"`` → ``[("id", None), ("client", ["id", "name"])]``."""
    if text is None or not text.strip():
        return [(name, None) for name in DEFAULT_FIELDS]
    spec: FieldSpec = []
    for token in _split_top_level(text):
        name, brace, rest = token.partition("{")
        name = name.strip()
        if not name:
            raise FieldsError(f"Empty field in {text!r}")
        if not brace:
            spec.append((name, None))
            continue
        if not rest.endswith("}"):
            raise FieldsError(f"Unbalanced braces in {token!r}")
        inner = rest[:-1]
        if "{" in inner:
            raise FieldsError(f"Fields of a second-level nested resource: {token!r}")
        names = [part.strip() for part in inner.split(",")]
        if not all(names):
            raise FieldsError(f"Empty nested field in {token!r}")
        spec.append((name, names))
    return spec


def _split_top_level(text: str) -> list[str]:
    tokens, depth, current = [], 0, []
    for char in text:
        if char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
            if depth < 0:
                raise FieldsError(f"Unbalanced braces in {text!r}")
        if char == "," and depth == 0:
            tokens.append("".join(current))
            current = []
        else:
            current.append(char)
    if depth != 0:
        raise FieldsError(f"Unbalanced braces in {text!r}")
    tokens.append("".join(current))
    return tokens


def check_fields(schema: str, spec: FieldSpec) -> None:
    """Raise FieldsError for any field the schema does not have."""
    fields = SCHEMAS[schema]
    for name, nested in spec:
        if name not in fields:
            raise FieldsError(f"Unknown field {name!r} for {schema}")
        target = fields[name]
        if nested is None:
            continue
        if target is None:
            raise FieldsError(f"{name!r} is not a nested resource")
        inner = SCHEMAS[target.removesuffix("[]")]
        for inner_name in nested:
            if inner_name not in inner:
                raise FieldsError(f"Unknown field {inner_name!r} for {name}")


def render(schema: str, full: Mapping[str, Any], spec: FieldSpec) -> dict[str, Any]:
    """The record as Clio answers it: only the fields asked for."""
    fields = SCHEMAS[schema]
    answer: dict[str, Any] = {}
    for name, nested in spec:
        target = fields[name]
        value = full.get(name)
        if target is None or value is None:
            answer[name] = value
            continue
        inner_schema = target.removesuffix("[]")
        inner_spec = [(n, None) for n in (nested or DEFAULT_FIELDS)]
        if target.endswith("[]"):
            answer[name] = [render(inner_schema, item, inner_spec) for item in value]
        else:
            answer[name] = render(inner_schema, value, inner_spec)
    return answer


def etag(*parts: object) -> str:
    digest = hashlib.sha1(repr(parts).encode(), usedforsecurity=False).hexdigest()
    return f'"{digest}"'


UPDATED_AT = "2025-01-01T00:00:00+00:00"


@dataclass
class FakeContact:
    id: int
    first_name: str
    last_name: str
    email: str = ""
    is_client: bool = True
    type: str = "Person"

    @property
    def name(self) -> str:
        return f"{self.first_name} {self.last_name}".strip()

    def full(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "etag": etag("contact", self.id, self.name, self.email),
            "name": self.name,
            "first_name": self.first_name,
            "last_name": self.last_name,
            "type": self.type,
            "is_client": self.is_client,
            "primary_email_address": self.email or None,
            "updated_at": UPDATED_AT,
        }


@dataclass
class FakeMatter:
    id: int
    display_number: str
    description: str
    client_id: int
    status: str = "Open"

    def full(self, clients: Mapping[int, FakeContact]) -> dict[str, Any]:
        client = clients.get(self.client_id)
        return {
            "id": self.id,
            "etag": etag("matter", self.id, self.display_number, self.description),
            "number": self.id,
            "display_number": self.display_number,
            "description": self.description,
            "status": self.status,
            "updated_at": UPDATED_AT,
            "client": client.full() if client else None,
        }


CURRENCY_IDS = {"USD": 1, "CAD": 2, "EUR": 3, "GBP": 4, "AUD": 5}
CURRENCY_SIGNS = {"USD": "$", "CAD": "$", "EUR": "€", "GBP": "£", "AUD": "$"}


@dataclass
class FakeBill:
    id: int
    number: str
    client_id: int
    matter_ids: tuple[int, ...]
    issued_at: dt.date
    due_at: dt.date
    total: Decimal
    paid: Decimal = Decimal("0")
    state: str = "awaiting_payment"
    # revenue_kind for an ordinary bill; trust_kind for a request for funds into trust.
    kind: str = "revenue_kind"
    currency: str = "USD"
    # Where a payment of the bill goes: Operating or Trust.
    destination: str = "Operating"
    # Raised on every change, so the etag changes with the bill.
    version: int = 1

    @property
    def balance(self) -> Decimal:
        return self.total - self.paid

    def full(
        self, clients: Mapping[int, FakeContact], matters: Mapping[int, FakeMatter]
    ) -> dict[str, Any]:
        client = clients.get(self.client_id)
        return {
            "id": self.id,
            "etag": etag("bill", self.id, self.version),
            "number": self.number,
            "issued_at": self.issued_at.isoformat(),
            "due_at": self.due_at.isoformat(),
            # JSON numbers, as Clio's doubles arrive.
            "total": float(self.total),
            "paid": float(self.paid),
            "balance": float(self.balance),
            "due": float(self.balance),
            "state": self.state,
            "kind": self.kind,
            "type": "MatterBill" if self.matter_ids else "ClientBill",
            "updated_at": UPDATED_AT,
            "client": client.full() if client else None,
            "matters": [matters[m].full(clients) for m in self.matter_ids if m in matters],
            "currency": {
                "id": CURRENCY_IDS.get(self.currency, 99),
                "etag": etag("currency", self.currency),
                "code": self.currency,
                "sign": CURRENCY_SIGNS.get(self.currency, ""),
            },
            "destination_account": {
                "id": 1 if self.destination == "Operating" else 2,
                "etag": etag("account", self.destination),
                "name": f"{self.destination} account",
                "type": self.destination,
            },
        }


def _contains(needle: str, *haystacks: str | None) -> bool:
    lowered = needle.lower()
    return any(lowered in (h or "").lower() for h in haystacks)


@dataclass
class RegionData:
    """One region's Clio account: its contacts, matters and bills (ids unique across all)."""

    contacts: dict[int, FakeContact] = field(default_factory=dict)
    matters: dict[int, FakeMatter] = field(default_factory=dict)
    bills: dict[int, FakeBill] = field(default_factory=dict)

    def records(self, resource: str, query: Mapping[str, list[str]]) -> list[dict[str, Any]]:
        """The full records of ``resource`` that pass the query's filters, by id ascending."""
        if resource == "contacts":
            found: Iterable[dict[str, Any]] = (c.full() for c in self._contacts(query))
        elif resource == "matters":
            found = (m.full(self.contacts) for m in self._matters(query))
        else:
            found = (b.full(self.contacts, self.matters) for b in self._bills(query))
        return sorted(found, key=lambda record: record["id"])

    def _contacts(self, query: Mapping[str, list[str]]) -> Iterable[FakeContact]:
        ids = _ids(query)
        text = _one(query, "query")
        client_only = _one(query, "client_only") == "true"
        for contact in self.contacts.values():
            if ids is not None and contact.id not in ids:
                continue
            if client_only and not contact.is_client:
                continue
            if text and not _contains(text, contact.name, contact.email):
                continue
            yield contact

    def _matters(self, query: Mapping[str, list[str]]) -> Iterable[FakeMatter]:
        ids = _ids(query)
        text = _one(query, "query")
        client_id = _one(query, "client_id")
        for matter in self.matters.values():
            if ids is not None and matter.id not in ids:
                continue
            if client_id and str(matter.client_id) != client_id:
                continue
            client = self.contacts.get(matter.client_id)
            client_name = client.name if client else ""
            if text and not _contains(text, matter.display_number, matter.description, client_name):
                continue
            yield matter

    def _bills(self, query: Mapping[str, list[str]]) -> Iterable[FakeBill]:
        ids = _ids(query)
        text = _one(query, "query")
        state = _one(query, "state")
        client_id = _one(query, "client_id")
        matter_id = _one(query, "matter_id")
        for bill in self.bills.values():
            if ids is not None and bill.id not in ids:
                continue
            if state and bill.state != state:
                continue
            if client_id and str(bill.client_id) != client_id:
                continue
            if matter_id and matter_id not in {str(m) for m in bill.matter_ids}:
                continue
            if text and not _contains(text, bill.number):
                continue
            yield bill


def _one(query: Mapping[str, list[str]], name: str) -> str | None:
    values = query.get(name)
    return values[-1] if values else None


def _ids(query: Mapping[str, list[str]]) -> set[int] | None:
    values = query.get("ids[]")
    if not values:
        return None
    return {int(v) for v in values if v.isdigit()}
