"""The search's four statements: what matched, then the clients, matters and open invoices
to show for it, each capped.

``q`` matches, case-insensitively and anywhere in the text, a client's name, a matter's
number or name, or an invoice's number (an invoice of any state: a paid invoice's number
still finds its client and matter). What is shown, grouped client -> matter -> invoice:

- clients: those whose name matched, and those of a matched matter or invoice (by name);
- matters: every matter of a client whose name matched, and each matched matter or matter
  of a matched invoice, of those clients only (by number);
- invoices: the open ones (balance > 0 and, where the schema has a state, state open) of a
  client whose name matched, of a matched matter, or matched themselves, of those matters
  only; oldest due first (no due date last).

A blank ``q`` matches everything within ``client_id`` / ``matter_id`` (the embedded launch
opens on a client or matter); a blank ``q`` with neither finds nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Row, Select, false, or_, select, true
from sqlalchemy.engine import Connection

from adapters.sql.convert import INVOICE_FIELDS
from adapters.sql.mapping import SchemaMapping
from adapters.sql.tables import MappedTable, MappedTables

MAX_CLIENTS = 50
MAX_MATTERS = 200
MAX_INVOICES = 200


@dataclass(frozen=True)
class Narrowing:
    """``client_id`` / ``matter_id`` as the database stores them (None: not narrowed)."""

    client: object | None = None
    matter: object | None = None


@dataclass(frozen=True)
class Found:
    clients: Sequence[Row[Any]]
    matters: Sequence[Row[Any]]
    invoices: Sequence[Row[Any]]


class SearchQueries:
    def __init__(self, tables: MappedTables, mapping: SchemaMapping, dialect: str):
        self.t = tables
        self.mapping = mapping
        self.dialect = dialect

    def run(self, connection: Connection, q: str, narrowing: Narrowing) -> Found:
        invoice_hits = connection.execute(self.invoice_hits(q, narrowing)).all()
        clients = connection.execute(self.clients(q, narrowing, invoice_hits)).all()
        if not clients:
            return Found([], [], [])
        client_ids = [row.id for row in clients]
        name_hits = [row.id for row in clients if row.hit]
        matters = connection.execute(
            self.matters(q, narrowing, client_ids, name_hits, invoice_hits)
        ).all()
        matter_hits = [row.id for row in matters if row.hit]
        invoices = connection.execute(
            self.open_invoices(
                narrowing,
                matter_ids=[row.id for row in matters],
                name_hits=name_hits,
                matter_hits=matter_hits,
                invoice_ids=[row.id for row in invoice_hits],
            )
        ).all()
        return Found(clients, matters, invoices)

    def _matches(self, column: Any, q: str) -> ColumnElement[bool]:
        return true() if not q else self._contains(column, q)

    def _contains(self, column: Any, q: str) -> ColumnElement[bool]:
        """Case-insensitive "contains". SQLite's LIKE ignores case already (ASCII letters,
        as its lower() does), and through lower() it could neither read an index instead
        of the table nor go five times as fast; PostgreSQL's ILIKE can use trigram indexes."""
        if self.dialect == "sqlite":
            return column.contains(q, autoescape=True)
        return column.icontains(q, autoescape=True)

    def invoice_hits(self, q: str, narrowing: Narrowing) -> Select[Any]:
        invoices = self.t.invoices
        matched = false() if not q else self._contains(invoices["number"], q)
        # The ids first, apart: reading only the number's index instead of the whole table
        # (SQLite) makes the scan a third cheaper; the rest is read by key for the few hits.
        hits = (
            select(invoices["id"].label("hit_id"))
            .where(matched, *self._invoice_narrowing(narrowing))
            .limit(MAX_INVOICES)
            .subquery("hits")
        )
        return select(invoices["id"], invoices["client_id"], invoices["matter_id"]).join_from(
            invoices.table, hits, invoices["id"] == hits.c.hit_id
        )

    def clients(
        self, q: str, narrowing: Narrowing, invoice_hits: Sequence[Row[Any]]
    ) -> Select[Any]:
        clients, matters = self.t.clients, self.t.matters
        name_hit = self._matches(clients["name"], q)
        matched_matters = select(matters["client_id"]).where(self._matter_match(q))
        query = select(*clients.labelled("id", "name", "email"), name_hit.label("hit")).where(
            or_(
                name_hit,
                clients["id"].in_(matched_matters),
                clients["id"].in_(_distinct(row.client_id for row in invoice_hits)),
            )
        )
        if narrowing.client is not None:
            query = query.where(clients["id"] == narrowing.client)
        if narrowing.matter is not None:
            of_matter = select(matters["client_id"]).where(matters["id"] == narrowing.matter)
            query = query.where(clients["id"].in_(of_matter))
        return query.order_by(clients["name"], clients["id"]).limit(MAX_CLIENTS)

    def _matter_match(self, q: str) -> ColumnElement[bool]:
        matters = self.t.matters
        if not q:
            return true()
        return or_(
            self._contains(matters["number"], q),
            self._contains(matters["name"], q),
        )

    def matters(
        self,
        q: str,
        narrowing: Narrowing,
        client_ids: list[object],
        name_hits: list[object],
        invoice_hits: Sequence[Row[Any]],
    ) -> Select[Any]:
        matters = self.t.matters
        matter_hit = self._matter_match(q)
        columns = matters.labelled("id", "client_id", "number", "name")
        query = select(*columns, matter_hit.label("hit")).where(
            matters["client_id"].in_(client_ids),
            or_(
                matters["client_id"].in_(name_hits),
                matter_hit,
                matters["id"].in_(_distinct(row.matter_id for row in invoice_hits)),
            ),
        )
        if narrowing.client is not None:
            query = query.where(matters["client_id"] == narrowing.client)
        if narrowing.matter is not None:
            query = query.where(matters["id"] == narrowing.matter)
        return query.order_by(matters["number"], matters["id"]).limit(MAX_MATTERS)

    def open_invoices(
        self,
        narrowing: Narrowing,
        *,
        matter_ids: list[object],
        name_hits: list[object],
        matter_hits: list[object],
        invoice_ids: list[object],
    ) -> Select[Any]:
        invoices = self.t.invoices
        query = select(*invoices.labelled(*INVOICE_FIELDS)).where(
            *open_condition(invoices, self.mapping),
            invoices["matter_id"].in_(matter_ids),
            or_(
                invoices["client_id"].in_(name_hits),
                invoices["matter_id"].in_(matter_hits),
                invoices["id"].in_(invoice_ids),
            ),
            *self._invoice_narrowing(narrowing),
        )
        return query.order_by(*self.oldest_due_first()).limit(MAX_INVOICES)

    def oldest_due_first(self) -> list[ColumnElement[Any]]:
        due = self.t.invoices["due_on"]
        # "IS NULL" first: NULLS LAST is not understood by MySQL/MariaDB.
        return [due.is_(None), due, self.t.invoices["id"]]

    def _invoice_narrowing(self, narrowing: Narrowing) -> list[ColumnElement[bool]]:
        invoices = self.t.invoices
        conditions = []
        if narrowing.client is not None:
            conditions.append(invoices["client_id"] == narrowing.client)
        if narrowing.matter is not None:
            conditions.append(invoices["matter_id"] == narrowing.matter)
        return conditions


def open_condition(invoices: MappedTable, mapping: SchemaMapping) -> list[ColumnElement[bool]]:
    """Payable: something owed and, where the schema has a state, open."""
    condition = [invoices["balance"] > 0]
    if invoices.has("state"):
        condition.append(invoices["state"] == mapping.value("state", "open"))
    return condition


def _distinct(values: Iterable[object]) -> list[object]:
    return list(dict.fromkeys(values))
