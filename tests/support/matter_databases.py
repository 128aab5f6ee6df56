"""Fresh matter databases for the ``sql`` adapter's tests: a SQLite file, a new PostgreSQL
database and a new MariaDB database, each dropped at the end.

The servers are the machine's (PostgreSQL and MariaDB always run here and in CI). When
CLIENTPAY_TEST_DATABASE_URL is set (CI sets it) a server that does not answer fails the
tests; otherwise it only skips them.
"""

from __future__ import annotations

import datetime as dt
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, insert, make_url, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError

from adapters.sql import demo

PG_ENV = "CLIENTPAY_TEST_DATABASE_URL"
MARIADB_ENV = "CLIENTPAY_TEST_MARIADB_URL"
SERVERS = {
    "postgresql": (PG_ENV, "postgresql+psycopg://postgres@127.0.0.1:5432/test"),
    "mariadb": (MARIADB_ENV, "mysql+pymysql://root@127.0.0.1:3306/test"),
}
KINDS = ("sqlite", "postgresql", "mariadb")


def servers_required() -> bool:
    return bool(os.environ.get(PG_ENV))


@contextmanager
def fresh_matter_database(kind: str, folder: Path) -> Iterator[str]:
    """Yield the URL of a new, empty database of ``kind``; it is dropped afterwards."""
    if kind == "sqlite":
        yield f"sqlite:///{folder / ('matters-' + uuid.uuid4().hex[:8] + '.sqlite')}"
        return
    env, default = SERVERS[kind]
    server = os.environ.get(env) or default
    name = "clientpay_matters_" + uuid.uuid4().hex[:12]
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    quote = '"' if kind == "postgresql" else "`"
    try:
        with admin.connect() as conn:
            conn.execute(text(f"CREATE DATABASE {quote}{name}{quote}"))
    except OperationalError as error:
        admin.dispose()
        message = f"{kind} at {make_url(server).render_as_string()} does not answer: {error}"
        if servers_required():
            pytest.fail(message)
        pytest.skip(message)
    try:
        yield make_url(server).set(database=name).render_as_string(hide_password=False)
    finally:
        force = " WITH (FORCE)" if kind == "postgresql" else ""
        with admin.connect() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS {quote}{name}{quote}{force}"))
        admin.dispose()


class MatterRows:
    """Rows a test writes straight into the demo schema, named after a word of its own so
    that its searches find only them."""

    def __init__(self, engine: Engine):
        self.engine = engine

    def add(self, table: Any, **values: Any) -> str:
        with self.engine.begin() as conn:
            key = conn.execute(insert(table).values(**values)).inserted_primary_key
        assert key is not None
        return str(key[0])

    def client(self, name: str, email: str = "") -> str:
        return self.add(demo.clients, name=name, email=email)

    def matter(self, client_id: str, number: str, name: str = "Matter") -> str:
        return self.add(
            demo.matters,
            client_id=int(client_id),
            number=number,
            name=name,
            opened_on=dt.date(2024, 1, 2),
        )

    def invoice(
        self,
        client_id: str,
        matter_id: str,
        number: str,
        *,
        total: int = 10_000,
        paid: int = 0,
        due_on: dt.date = dt.date(2025, 1, 31),
        state: str | None = None,
        account: str = "operating",
        currency: str = "USD",
    ) -> str:
        return self.add(
            demo.invoices,
            client_id=int(client_id),
            matter_id=int(matter_id),
            number=number,
            issued_on=due_on - dt.timedelta(days=30),
            due_on=due_on,
            currency=currency,
            total=total,
            paid=paid,
            balance=total - paid,
            account=account,
            state=state or ("open" if total > paid else "paid"),
            version=1,
            updated_at=dt.datetime(2024, 1, 2, 9, 0),
        )

    def invoice_row(self, invoice_id: str) -> dict[str, Any]:
        with self.engine.connect() as conn:
            row = conn.execute(
                demo.invoices.select().where(demo.invoices.c.id == int(invoice_id))
            ).one()
        return dict(row._mapping)

    def staged(self, key: str) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                demo.payments.select()
                .where(demo.payments.c.posting_key == key)
                .order_by(demo.payments.c.id)
            ).all()
        return [dict(row._mapping) for row in rows]

    def set_state(self, invoice_id: str, state: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                demo.invoices.update()
                .where(demo.invoices.c.id == int(invoice_id))
                .values(state=state)
            )


def word() -> str:
    """A word no name in the demo data contains (letters only, as names are)."""
    return "qz" + "".join(chr(ord("a") + int(c, 16) % 26) for c in uuid.uuid4().hex[:10])
