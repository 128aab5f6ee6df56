"""The search's statements: what matched (invoice numbers, then matters), then the clients,
matters and open invoices to show for it, each capped.

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

Each text match is a statement of its own on one table, so that a server can answer it from
an index (PostgreSQL's trigram indexes); the later statements look rows up by key. The
statements are built once per shape (blank query or not, narrowed or not) with bound
parameters, so a search only binds values: building them anew cost more than the database's
own work on a server with indexes.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Row, Select, any_, bindparam, func, or_, select, true
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Connection

from adapters.sql.convert import INVOICE_FIELDS
from adapters.sql.mapping import SchemaMapping
from adapters.sql.tables import MappedTable, MappedTables

ESCAPE = "/"
MAX_CLIENTS = 50
MAX_MATTERS = 200
MAX_INVOICES = 200

# The values a search binds into its statements.
VALUE_NAMES = frozenset(
    {
        "pattern",
        "client",
        "matter",
        "hit_clients",
        "client_ids",
        "name_hits",
        "matter_ids",
        "shown_matters",
        "matter_hits",
        "invoice_ids",
    }
)


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


# (a query was typed, narrowed to a client, narrowed to a matter)
Shape = tuple[bool, bool, bool]


class SearchQueries:
    """The search's statements for one mapped schema; one instance serves every search."""

    def __init__(self, tables: MappedTables, mapping: SchemaMapping, dialect: str):
        self.t = tables
        self.mapping = mapping
        self.dialect = dialect
        self._built: dict[tuple[str, Shape], tuple[Select[Any], frozenset[str]]] = {}
        self._building = threading.Lock()

    def run(self, connection: Connection, q: str, narrowing: Narrowing) -> Found:
        shape: Shape = (bool(q), narrowing.client is not None, narrowing.matter is not None)
        values: dict[str, Any] = {"client": narrowing.client, "matter": narrowing.matter}
        if q:
            values["pattern"] = _anywhere(q if self.dialect == "sqlite" else q.lower())
        invoice_hits = self._all(connection, "invoice_hits", shape, values) if q else []
        matter_hits = self._all(connection, "matter_hits", shape, values)
        values["hit_clients"] = _distinct(row.client_id for row in [*invoice_hits, *matter_hits])
        clients = self._all(connection, "clients", shape, values)
        if not clients:
            return Found([], [], [])
        hit_matters = {row.id for row in matter_hits}
        values.update(
            client_ids=[row.id for row in clients],
            name_hits=[row.id for row in clients if row.hit],
            matter_ids=_distinct([*hit_matters, *(row.matter_id for row in invoice_hits)]),
        )
        matters = self._all(connection, "matters", shape, values)
        values.update(
            shown_matters=[row.id for row in matters],
            matter_hits=[row.id for row in matters if row.id in hit_matters],
            invoice_ids=[row.id for row in invoice_hits],
        )
        invoices = self._all(connection, "open_invoices", shape, values)
        return Found(clients, matters, invoices)

    def _all(
        self, connection: Connection, name: str, shape: Shape, values: dict[str, Any]
    ) -> Sequence[Row[Any]]:
        statement, takes = self.statement(name, shape)
        return connection.execute(statement, {key: values[key] for key in takes}).all()

    def statement(self, name: str, shape: Shape) -> tuple[Select[Any], frozenset[str]]:
        """The statement ``name`` for ``shape``, and the values it takes."""
        with self._building:
            if (name, shape) not in self._built:
                build: Callable[[Shape], Select[Any]] = getattr(self, "_" + name)
                statement = build(shape)
                takes = frozenset(statement.compile().params) & VALUE_NAMES
                self._built[(name, shape)] = (statement, takes)
            return self._built[(name, shape)]

    def _matches(self, column: Any, shape: Shape) -> ColumnElement[bool]:
        """Case-insensitive "contains" ``:pattern``. SQLite's LIKE ignores case already
        (ASCII letters, as its lower() does) and is five times as fast without lower().
        Elsewhere lower(column) LIKE: on PostgreSQL twice as fast as ILIKE, and what trigram
        indexes on lower(column) (the demo schema has them) answer."""
        if not shape[0]:
            return true()
        pattern = bindparam("pattern", type_=column.type)
        if self.dialect == "sqlite":
            return column.like(pattern, escape=ESCAPE)
        return func.lower(column).like(pattern, escape=ESCAPE)

    def _in(self, column: Any, name: str) -> ColumnElement[bool]:
        """``column`` is one of the list ``:name``. On PostgreSQL ``= ANY(:name)`` with the
        list as one array: the statement's text stays the same whatever the list's length, so
        it is compiled once and prepared by the server, where ``IN (…)`` is rendered anew, one
        parameter per id, for every search."""
        if self.dialect == "postgresql":
            return column == any_(bindparam(name, type_=postgresql.ARRAY(column.type)))
        return column.in_(bindparam(name, expanding=True))

    def _invoice_hits(self, shape: Shape) -> Select[Any]:
        invoices = self.t.invoices
        # The ids first, apart: reading only the number's index instead of the whole table
        # (SQLite) makes the scan a third cheaper; the rest is read by key for the few hits.
        hits = (
            select(invoices["id"].label("hit_id"))
            .where(self._matches(invoices["number"], shape), *self._invoice_narrowing(shape))
            .limit(MAX_INVOICES)
            .subquery("hits")
        )
        return select(*invoices.labelled("id", "client_id", "matter_id")).join_from(
            invoices.table, hits, invoices["id"] == hits.c.hit_id
        )

    def _matter_hits(self, shape: Shape) -> Select[Any]:
        matters = self.t.matters
        matched = or_(
            self._matches(matters["number"], shape), self._matches(matters["name"], shape)
        )
        return (
            select(*matters.labelled("id", "client_id"))
            .where(matched, *self._matter_narrowing(shape))
            .limit(MAX_MATTERS)
        )

    def _clients(self, shape: Shape) -> Select[Any]:
        clients, matters = self.t.clients, self.t.matters
        name_hit = self._matches(clients["name"], shape)
        query = select(*clients.labelled("id", "name", "email"), name_hit.label("hit")).where(
            or_(name_hit, self._in(clients["id"], "hit_clients"))
        )
        if shape[1]:
            query = query.where(clients["id"] == bindparam("client"))
        if shape[2]:
            of_matter = select(matters["client_id"]).where(matters["id"] == bindparam("matter"))
            query = query.where(clients["id"].in_(of_matter))
        return query.order_by(clients["name"], clients["id"]).limit(MAX_CLIENTS)

    def _matters(self, shape: Shape) -> Select[Any]:
        matters = self.t.matters
        query = select(*matters.labelled("id", "client_id", "number", "name")).where(
            self._in(matters["client_id"], "client_ids"),
            or_(
                self._in(matters["client_id"], "name_hits"),
                self._in(matters["id"], "matter_ids"),
            ),
            *self._matter_narrowing(shape),
        )
        return query.order_by(matters["number"], matters["id"]).limit(MAX_MATTERS)

    def _open_invoices(self, shape: Shape) -> Select[Any]:
        invoices = self.t.invoices
        query = select(*invoices.labelled(*INVOICE_FIELDS)).where(
            *open_condition(invoices, self.mapping),
            self._in(invoices["matter_id"], "shown_matters"),
            or_(
                self._in(invoices["client_id"], "name_hits"),
                self._in(invoices["matter_id"], "matter_hits"),
                self._in(invoices["id"], "invoice_ids"),
            ),
            *self._invoice_narrowing(shape),
        )
        return query.order_by(*self.oldest_due_first()).limit(MAX_INVOICES)

    def oldest_due_first(self) -> list[ColumnElement[Any]]:
        due = self.t.invoices["due_on"]
        # "IS NULL" first: NULLS LAST is not understood by MySQL/MariaDB.
        return [due.is_(None), due, self.t.invoices["id"]]

    def _matter_narrowing(self, shape: Shape) -> list[ColumnElement[bool]]:
        return self._narrowing(self.t.matters, "client_id", "id", shape)

    def _invoice_narrowing(self, shape: Shape) -> list[ColumnElement[bool]]:
        return self._narrowing(self.t.invoices, "client_id", "matter_id", shape)

    def _narrowing(
        self, table: MappedTable, client: str, matter: str, shape: Shape
    ) -> list[ColumnElement[bool]]:
        conditions = []
        if shape[1]:
            conditions.append(table[client] == bindparam("client"))
        if shape[2]:
            conditions.append(table[matter] == bindparam("matter"))
        return conditions


def open_condition(invoices: MappedTable, mapping: SchemaMapping) -> list[ColumnElement[bool]]:
    """Payable: something owed and, where the schema has a state, open."""
    condition = [invoices["balance"] > 0]
    if invoices.has("state"):
        condition.append(invoices["state"] == mapping.value("state", "open"))
    return condition


def _anywhere(text: str) -> str:
    """A LIKE pattern for ``text`` anywhere, its own wildcards taken literally."""
    escaped = text.replace(ESCAPE, ESCAPE * 2).replace("%", ESCAPE + "%").replace("_", ESCAPE + "_")
    return f"%{escaped}%"


def _distinct(values: Iterable[object]) -> list[object]:
    return list(dict.fromkeys(values))
