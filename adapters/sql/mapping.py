"""Where a matter database keeps clients, matters, invoices and the payments staging table.

A connection's settings name the database and, when it is not laid out like the demo matter
database, the tables, columns and codes to use instead, so that another on-premise schema is
mapped without code::

    {
      "url": "postgresql+psycopg://clientpay@billing.firm.local/elite",
      "schema": "dbo",                     # optional: the tables' schema
      "amounts_in": "decimal",             # "minor" (default): integer minor units
      "currency": "USD",                   # used when invoices have no currency column
      "tables": {"invoices": "AR_INVOICE"},
      "columns": {"invoices": {"balance": "BAL_DUE", "paid": null}},
      "values": {"state": {"open": "O", "paid": "P", "void": "V"},
                 "account": {"operating": "OP", "trust": "TR"}}
    }

Every key but ``url`` is optional and is merged over the defaults below (the demo schema).
A column mapped to ``null`` does not exist there; only the columns in ``OPTIONAL_COLUMNS``
may be left out.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from clientpay_connect.connect.interfaces import Permanent

DEFAULT_TABLES: dict[str, str] = {
    "clients": "clients",
    "matters": "matters",
    "invoices": "invoices",
    "payments": "payments",
}

DEFAULT_COLUMNS: dict[str, dict[str, str]] = {
    "clients": {"id": "id", "name": "name", "email": "email"},
    "matters": {"id": "id", "client_id": "client_id", "number": "number", "name": "name"},
    "invoices": {
        "id": "id",
        "number": "number",
        "client_id": "client_id",
        "matter_id": "matter_id",
        "issued_on": "issued_on",
        "due_on": "due_on",
        "currency": "currency",
        "total": "total",
        "paid": "paid",
        "balance": "balance",
        "account": "account",
        "state": "state",
        "version": "version",
        "updated_at": "updated_at",
    },
    # The staging table: one row per allocation, unique on (posting_key, invoice_id); its id
    # is the external id of that allocation.
    "payments": {
        "id": "id",
        "posting_key": "posting_key",
        "invoice_id": "invoice_id",
        "invoice_number": "invoice_number",
        "client_id": "client_id",
        "matter_id": "matter_id",
        "amount": "amount",
        "currency": "currency",
        "received_on": "received_on",
        "reference": "reference",
        "payer_name": "payer_name",
        "method": "method",
        "created_at": "created_at",
    },
}

OPTIONAL_COLUMNS: dict[str, frozenset[str]] = {
    "clients": frozenset({"email"}),
    "matters": frozenset(),
    "invoices": frozenset(
        {"issued_on", "currency", "paid", "account", "state", "version", "updated_at"}
    ),
    "payments": frozenset(
        {
            "invoice_number",
            "client_id",
            "matter_id",
            "currency",
            "received_on",
            "reference",
            "payer_name",
            "method",
            "created_at",
        }
    ),
}

DEFAULT_VALUES: dict[str, dict[str, str]] = {
    "state": {"open": "open", "paid": "paid", "void": "void"},
    "account": {"operating": "operating", "trust": "trust"},
}

AmountsIn = Literal["minor", "decimal"]


@dataclass(frozen=True)
class SchemaMapping:
    url: str
    schema: str | None
    amounts_in: AmountsIn
    currency: str
    tables: Mapping[str, str]
    # table key -> our column name -> the database's column name (absent columns left out)
    columns: Mapping[str, Mapping[str, str]]
    values: Mapping[str, Mapping[str, str]]
    connect_timeout: int

    def has(self, table: str, column: str) -> bool:
        return column in self.columns[table]

    def value(self, kind: str, ours: str) -> str:
        return self.values[kind][ours]


def mapping_from_settings(settings: Mapping[str, Any]) -> SchemaMapping:
    """The connection's settings read and checked; ``Permanent`` names what is wrong."""
    url = str(settings.get("url") or "").strip()
    if not url:
        raise Permanent("The sql connection needs a database URL (setting 'url').")
    amounts_in = settings.get("amounts_in", "minor")
    if amounts_in not in ("minor", "decimal"):
        raise Permanent("'amounts_in' must be 'minor' or 'decimal'.")
    return SchemaMapping(
        url=url,
        schema=settings.get("schema") or None,
        amounts_in=amounts_in,
        currency=str(settings.get("currency") or "USD").upper(),
        tables=_tables(settings.get("tables") or {}),
        columns={
            table: _columns(table, (settings.get("columns") or {}).get(table) or {})
            for table in DEFAULT_COLUMNS
        },
        values=_values(settings.get("values") or {}),
        connect_timeout=int(settings.get("connect_timeout", 10)),
    )


def _tables(given: Mapping[str, Any]) -> dict[str, str]:
    unknown = set(given) - set(DEFAULT_TABLES)
    if unknown:
        raise Permanent(f"Unknown tables in the mapping: {', '.join(sorted(unknown))}.")
    return {**DEFAULT_TABLES, **{key: str(name) for key, name in given.items()}}


def _columns(table: str, given: Mapping[str, Any]) -> dict[str, str]:
    defaults = DEFAULT_COLUMNS[table]
    unknown = set(given) - set(defaults)
    if unknown:
        raise Permanent(f"Unknown {table} columns in the mapping: {', '.join(sorted(unknown))}.")
    merged: dict[str, str] = {}
    for ours, default in defaults.items():
        theirs = given.get(ours, default)
        if theirs is None or theirs == "":
            if ours not in OPTIONAL_COLUMNS[table]:
                raise Permanent(f"The {table} column {ours!r} cannot be left out.")
            continue
        merged[ours] = str(theirs)
    return merged


def _values(given: Mapping[str, Any]) -> dict[str, dict[str, str]]:
    values: dict[str, dict[str, str]] = {}
    for kind, defaults in DEFAULT_VALUES.items():
        codes = given.get(kind) or {}
        unknown = set(codes) - set(defaults)
        if unknown:
            raise Permanent(f"Unknown {kind} values in the mapping: {', '.join(sorted(unknown))}.")
        values[kind] = {**defaults, **{key: str(code) for key, code in codes.items()}}
    return values
