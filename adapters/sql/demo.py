"""The demo matter database: the schema the ``sql`` adapter maps by default, and a firm's
worth of clients, matters and invoices made up deterministically (the same arguments give
the same data).

Invariants of the data made here: ``balance = total - paid`` on every invoice, nothing
negative; ``paid`` invoices owe nothing; ``open`` ones owe something (some are partly paid,
some past due); ``void`` ones were never paid. Every matter belongs to a client, every
invoice to a matter of its client; a matter's invoices all go to its account (operating or
trust). The payments staging table starts empty.
"""

from __future__ import annotations

import datetime as dt
import math
import os
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from faker import Faker
from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    UniqueConstraint,
    create_engine,
    func,
    insert,
    inspect,
    make_url,
    select,
    text,
)
from sqlalchemy.engine import Connection, Engine

metadata = MetaData()

clients = Table(
    "clients",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(200), nullable=False),
    Column("email", String(320), nullable=False, server_default=""),
    Index("ix_clients_name", "name"),
)

matters = Table(
    "matters",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("client_id", Integer, ForeignKey("clients.id"), nullable=False),
    Column("number", String(40), nullable=False, unique=True),
    Column("name", String(200), nullable=False),
    Column("opened_on", Date, nullable=False),
    Index("ix_matters_client_id", "client_id"),
)

invoices = Table(
    "invoices",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("number", String(40), nullable=False, unique=True),
    Column("client_id", Integer, ForeignKey("clients.id"), nullable=False),
    Column("matter_id", Integer, ForeignKey("matters.id"), nullable=False),
    Column("issued_on", Date, nullable=False),
    Column("due_on", Date, nullable=False),
    Column("currency", String(3), nullable=False),
    # Minor units (cents).
    Column("total", BigInteger, nullable=False),
    Column("paid", BigInteger, nullable=False),
    Column("balance", BigInteger, nullable=False),
    Column("account", String(10), nullable=False),  # operating | trust
    Column("state", String(10), nullable=False),  # open | paid | void
    Column("version", Integer, nullable=False),
    Column("updated_at", DateTime, nullable=False),  # UTC
    CheckConstraint("balance = total - paid", name="ck_invoices_balance"),
    CheckConstraint("paid >= 0 AND balance >= 0", name="ck_invoices_not_negative"),
    # The search's lookups: a client's or a matter's open invoices, oldest due first.
    Index("ix_invoices_client_id_due_on", "client_id", "due_on"),
    Index("ix_invoices_matter_id_due_on", "matter_id", "due_on"),
)

# What the firm's system imports: one row per allocation of a payment.
payments = Table(
    "payments",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("posting_key", String(200), nullable=False),
    Column("invoice_id", Integer, ForeignKey("invoices.id"), nullable=False),
    Column("invoice_number", String(40), nullable=False),
    Column("client_id", Integer, nullable=False),
    Column("matter_id", Integer, nullable=False),
    Column("amount", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("received_on", Date, nullable=False),
    Column("reference", String(100), nullable=False),
    Column("payer_name", String(200), nullable=False),
    Column("method", String(20), nullable=False),
    Column("created_at", DateTime, nullable=False),  # UTC
    CheckConstraint("amount > 0", name="ck_payments_amount"),
    UniqueConstraint("posting_key", "invoice_id", name="uq_payments_posting_key_invoice_id"),
    Index("ix_payments_invoice_id", "invoice_id"),
)

DEMO_SEED = 20240917
ROWS_PER_INSERT = 5000


@dataclass(frozen=True)
class DemoDatabase:
    url: str
    clients: int
    matters: int
    invoices: int
    created: bool  # False: it was there already and was left as it was


def create_demo_matter_database(
    url: str,
    *,
    clients: int = 300,
    matters: int = 1000,
    invoices: int = 5000,
    seed: int = DEMO_SEED,
    today: dt.date | None = None,
    reset: bool = False,
) -> DemoDatabase:
    """Create the demo matter database at ``url`` (any SQLAlchemy URL; a SQLite file's
    folder is made) and fill it. Idempotent: a database that already holds the demo is left
    as it is (payments posted to it included) unless ``reset``, which drops and re-creates
    it. Dates are relative to ``today`` (default: the real today), so some invoices are
    always past due."""
    if not 0 < clients <= matters <= invoices:
        raise ValueError("need 0 < clients <= matters <= invoices")
    engine = _engine(url)
    try:
        if not reset and _holds_demo(engine):
            return _counts(engine, url, created=False)
        with engine.begin() as connection:
            metadata.drop_all(connection)
            metadata.create_all(connection)
            fill(connection, DemoShape(clients, matters, invoices, seed, today or dt.date.today()))
            # After the rows: a GIN index filled row by row keeps them in a pending list
            # that the planner prices high and every search reads through.
            _create_search_indexes(connection)
            _analyze(connection)
        return _counts(engine, url, created=True)
    finally:
        engine.dispose()


def drop_demo_matter_database(url: str) -> None:
    engine = _engine(url)
    try:
        with engine.begin() as connection:
            metadata.drop_all(connection)
    finally:
        engine.dispose()


def _engine(url: str) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        os.makedirs(os.path.dirname(os.path.abspath(parsed.database)), exist_ok=True)
        engine = create_engine(url)
        with engine.connect() as connection:
            # Readers (searches) and the writer (postings) side by side; kept by the file.
            connection.exec_driver_sql("PRAGMA journal_mode=WAL")
        return engine
    return create_engine(url)


def _holds_demo(engine: Engine) -> bool:
    names = set(inspect(engine).get_table_names())
    if not {table.name for table in metadata.sorted_tables} <= names:
        return False
    with engine.connect() as connection:
        return bool(connection.execute(select(func.count()).select_from(clients)).scalar())


def _counts(engine: Engine, url: str, created: bool) -> DemoDatabase:
    with engine.connect() as connection:
        count = {
            table.name: connection.execute(select(func.count()).select_from(table)).scalar_one()
            for table in (clients, matters, invoices)
        }
    return DemoDatabase(url, count["clients"], count["matters"], count["invoices"], created)


def _create_search_indexes(connection: Connection) -> None:
    """On PostgreSQL, trigram indexes of lower(name or number), so that the adapter's
    "contains" searches (lower(column) LIKE '%…%') do not read whole tables (pg_trgm ships
    with PostgreSQL)."""
    if connection.dialect.name != "postgresql":
        return
    connection.execute(text("CREATE EXTENSION IF NOT EXISTS pg_trgm"))
    for table, column in (
        ("clients", "name"),
        ("matters", "number"),
        ("matters", "name"),
        ("invoices", "number"),
    ):
        connection.execute(
            text(
                f"CREATE INDEX ix_{table}_{column}_trgm ON {table}"
                f" USING gin (lower({column}) gin_trgm_ops)"
            )
        )


def _analyze(connection: Connection) -> None:
    """Fresh statistics, so that the first searches are planned for the data just made."""
    names = ", ".join(table.name for table in metadata.sorted_tables)
    if connection.dialect.name == "mysql":
        connection.execute(text(f"ANALYZE TABLE {names}"))
    else:
        connection.execute(text("ANALYZE"))


@dataclass(frozen=True)
class DemoShape:
    clients: int
    matters: int
    invoices: int
    seed: int
    today: dt.date


def fill(connection: Connection, shape: DemoShape) -> None:
    rng = random.Random(shape.seed)
    names = Names.drawn(shape.seed)
    client_rows = list(make_clients(rng, names, shape.clients))
    matter_rows = list(make_matters(rng, names, client_rows, shape.matters, shape.today))
    _insert(connection, clients, client_rows)
    _insert(connection, matters, matter_rows)
    for chunk in _chunks(make_invoices(rng, matter_rows, shape.invoices, shape.today)):
        connection.execute(insert(invoices), chunk)
    if connection.dialect.name == "postgresql":
        # The ids were given: move each serial past them, for rows added later.
        for table in (clients, matters, invoices):
            connection.execute(
                text(
                    f"SELECT setval(pg_get_serial_sequence('{table.name}', 'id'),"  # noqa: S608
                    f" (SELECT max(id) FROM {table.name}))"
                )
            )


def _insert(connection: Connection, table: Table, rows: Sequence[dict[str, Any]]) -> None:
    # Keys starting with "_" are the generator's own notes, not columns.
    columns = [row for row in ({k: v for k, v in r.items() if not k.startswith("_")} for r in rows)]
    for chunk in _chunks(iter(columns)):
        connection.execute(insert(table), chunk)


def _chunks(rows: Iterator[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
    chunk: list[dict[str, Any]] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) == ROWS_PER_INSERT:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


@dataclass(frozen=True)
class Names:
    """Pools of realistic names drawn once from Faker (weighted by how common each is) and
    combined with our own random: Faker's draws are too slow for 100,000 rows."""

    first: list[str]
    last: list[str]
    suffixes: list[str]
    cities: list[str]
    email_domains: list[str]

    @classmethod
    def drawn(cls, seed: int) -> Names:
        fake = Faker("en_US")
        fake.seed_instance(seed)
        return cls(
            first=[fake.first_name() for _ in range(600)],
            last=[fake.last_name() for _ in range(1200)],
            suffixes=[fake.company_suffix() for _ in range(30)],
            cities=[fake.city() for _ in range(200)],
            email_domains=[fake.free_email_domain() for _ in range(30)],
        )

    def company(self, rng: random.Random) -> str:
        # Faker's own en_US company formats.
        one, two, three = (rng.choice(self.last) for _ in range(3))
        return rng.choice(
            (
                f"{one} {rng.choice(self.suffixes)}",
                f"{one}-{two}",
                f"{one}, {two} and {three}",
            )
        )


def make_clients(rng: random.Random, names: Names, count: int) -> Iterator[dict[str, Any]]:
    """About a third companies, the rest people; emails made from the names."""
    for client_id in range(1, count + 1):
        if rng.random() < 0.3:
            name = names.company(rng)
            local, domain = "accounts", _slug(name) + ".com"
        else:
            first, last = rng.choice(names.first), rng.choice(names.last)
            name = f"{first} {last}"
            local, domain = f"{_slug(first)}.{_slug(last)}", rng.choice(names.email_domains)
        yield {"id": client_id, "name": name, "email": f"{local}@{domain}"}


PERSON_MATTERS = (
    ("Estate planning", "trust"),
    ("Estate of {last}", "trust"),
    ("Residential real estate closing", "trust"),
    ("Divorce", "operating"),
    ("Custody modification", "operating"),
    ("Personal injury - auto accident", "operating"),
    ("DUI defense", "operating"),
    ("Immigration - adjustment of status", "operating"),
    ("Landlord-tenant dispute", "operating"),
    ("Employment discrimination claim", "operating"),
    ("{last} v. {other}", "operating"),
)
COMPANY_MATTERS = (
    ("General corporate", "operating"),
    ("Commercial lease - {city}", "operating"),
    ("Trademark registration", "operating"),
    ("Employment advice", "operating"),
    ("Acquisition of {other} assets", "trust"),
    ("Regulatory compliance review", "operating"),
    ("{short} v. {other}", "operating"),
    ("Supply agreement", "operating"),
    ("Settlement escrow", "trust"),
)


def make_matters(
    rng: random.Random,
    names: Names,
    client_rows: Sequence[dict[str, Any]],
    count: int,
    today: dt.date,
) -> Iterator[dict[str, Any]]:
    """Each client at least one matter; the rest spread at random. Numbers are
    "<year opened>-<sequence>", unique."""
    owners = [row for row in client_rows] + [
        rng.choice(client_rows) for _ in range(count - len(client_rows))
    ]
    owners.sort(key=lambda row: row["id"])
    digits = max(5, len(str(count)))
    for matter_id, client in enumerate(owners, start=1):
        opened = today - dt.timedelta(days=rng.randint(30, 6 * 365))
        is_company = client["email"].startswith("accounts@")
        template, kind = rng.choice(COMPANY_MATTERS if is_company else PERSON_MATTERS)
        # Half the matters of a kind that holds client money run through trust.
        account = "trust" if kind == "trust" and rng.random() < 0.5 else "operating"
        name = template.format(
            last=client["name"].split()[-1],
            short=client["name"].split(",")[0].split()[0],
            other=rng.choice(names.last),
            city=rng.choice(names.cities),
        )
        yield {
            "id": matter_id,
            "client_id": client["id"],
            "number": f"{opened.year}-{matter_id:0{digits}d}",
            "name": name,
            "opened_on": opened,
            "_account": account,
        }


def make_invoices(
    rng: random.Random, matter_rows: Sequence[dict[str, Any]], count: int, today: dt.date
) -> Iterator[dict[str, Any]]:
    """Each matter at least one invoice; totals from $50 to $40,000 (most near $1,500);
    older invoices more often paid; some partly paid, some void."""
    owners = list(matter_rows) + [rng.choice(matter_rows) for _ in range(count - len(matter_rows))]
    digits = max(6, len(str(count)))
    for invoice_id, matter in enumerate(owners, start=1):
        age = rng.randint(0, min(720, (today - matter["opened_on"]).days))
        issued = today - dt.timedelta(days=age)
        total = _amount(rng)
        state, paid = _settlement(rng, total, age)
        yield {
            "id": invoice_id,
            "number": f"INV-{invoice_id:0{digits}d}",
            "client_id": matter["client_id"],
            "matter_id": matter["id"],
            "issued_on": issued,
            "due_on": issued + dt.timedelta(days=rng.choice((15, 30, 30, 30, 45, 60))),
            "currency": "USD",
            "total": total,
            "paid": paid,
            "balance": total - paid,
            "account": matter["_account"],
            "state": state,
            "version": 1 if paid == 0 else 2,
            "updated_at": dt.datetime.combine(issued, dt.time(9, 0)),
        }


def _amount(rng: random.Random) -> int:
    dollars = math.exp(rng.gauss(math.log(1500), 1.0))
    return max(5_000, min(4_000_000, round(dollars * 100)))


def _settlement(rng: random.Random, total: int, age_days: int) -> tuple[str, int]:
    """(state, paid) for an invoice ``age_days`` old."""
    draw = rng.random()
    paid_share = 0.6 if age_days > 90 else 0.2
    if draw < 0.04:
        return "void", 0
    if draw < 0.04 + paid_share:
        return "paid", total
    if draw < 0.04 + paid_share + 0.15:
        # A round-dollar part payment, leaving something owed.
        part = rng.randint(1, max(1, (total - 100) // 100)) * 100
        return "open", min(part, total - 100)
    return "open", 0


def _slug(text: str) -> str:
    return "".join(ch for ch in text.lower() if ch.isalnum()) or "client"
