"""One matter system each, behind the same few verbs, for the matter-adapter conformance
suite (tests/conformance/test_matter_adapters.py): the test adapter of a third party (in
memory), the ``sql`` adapter on a SQLite file, and the MyCase and Clio adapters against
their fakes over real HTTP.

A world is seeded with clients, matters and invoices (amounts as the firm's books write
them, decimal strings) and hands out an adapter connected to it, as a connection would have
it. A new adapter joins the suite with a world of its own here.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy import create_engine, insert, make_url, text
from sqlalchemy.engine import Connection, Engine

from adapters.clio import ClioAdapter
from adapters.mycase import MyCaseAdapter
from adapters.sql import SqlAdapter
from adapters.sql import demo as sql_demo
from clientpay_connect.connect.interfaces import AdapterConfig, Client, Invoice, Matter
from tests.fakes.clio import FakeClio
from tests.fakes.httpserver import running
from tests.fakes.mycase import FakeMyCase
from tests.support.matter_adapter import Ledger, MemoryMatterAdapter, registered_ledger
from tests.support.matter_databases import SERVERS, fresh_matter_database
from tests.support.tokens import MemoryTokenSource, connect

ISSUED_ON = dt.date(2025, 1, 1)
REDIRECT_URI = "https://clientpay.test/admin/connections/callback"


class MatterWorld(Protocol):
    def client(self, first: str, last: str, email: str) -> str:
        """A client; its id as the adapter reports it."""

    def matter(self, client: str, number: str, name: str) -> str: ...

    def invoice(
        self, client: str, matter: str, number: str, total: str, *,
        paid: str = "0", due: dt.date, trust: bool = False,
    ) -> str:  # fmt: skip
        """An invoice issued on ISSUED_ON; a fully paid one is closed."""

    def adapter(self) -> Any:
        """A new adapter of a connection to this system (the world closes it)."""

    def fail_next_call(self) -> None:
        """The system cannot be reached by the next call (an outage, a 5xx)."""


def minor(amount: str) -> int:
    return int(Decimal(amount) * 100)


def invoice_fields(
    client: str, matter: str, number: str, total: str, paid: str, due: dt.date, trust: bool
) -> dict[str, Any]:
    """An Invoice's fields, as a system in minor units keeps them; fully paid is closed."""
    balance = minor(total) - minor(paid)
    return {
        "number": number,
        "client_id": client,
        "matter_id": matter,
        "issued_on": ISSUED_ON,
        "due_on": due,
        "currency": "USD",
        "total": minor(total),
        "paid": minor(paid),
        "balance": balance,
        "account": "trust" if trust else "operating",
        "state": "open" if balance > 0 else "paid",
    }


class MemoryWorld:
    def __init__(self, stack: ExitStack):
        self.ledger = Ledger()
        self.name = stack.enter_context(registered_ledger(self.ledger))
        self.count = 0

    def _id(self, prefix: str) -> str:
        self.count += 1
        return f"{prefix}{self.count}"

    def client(self, first: str, last: str, email: str) -> str:
        client = Client(self._id("c"), f"{first} {last}", email)
        self.ledger.clients[client.id] = client
        return client.id

    def matter(self, client: str, number: str, name: str) -> str:
        matter = Matter(self._id("m"), number, name, client)
        self.ledger.matters[matter.id] = matter
        return matter.id

    def invoice(
        self, client: str, matter: str, number: str, total: str, *,
        paid: str = "0", due: dt.date, trust: bool = False,
    ) -> str:  # fmt: skip
        fields = invoice_fields(client, matter, number, total, paid, due, trust)
        invoice = Invoice(id=self._id("i"), **fields)
        return self.ledger.add_invoice(invoice).id

    def adapter(self) -> MemoryMatterAdapter:
        return MemoryMatterAdapter(AdapterConfig(settings={"ledger": self.name}, app_settings={}))

    def fail_next_call(self) -> None:
        self.ledger.down = True


class ServerDatabases:
    """One matter database per server (PostgreSQL, MariaDB), made on first use and dropped
    when ``stack`` closes: making one takes longer than the test that uses it."""

    def __init__(self, stack: ExitStack, folder: Path):
        self.stack = stack
        self.folder = folder
        self.urls: dict[str, str] = {}

    def url(self, kind: str) -> str:
        """The database of ``kind``, its demo schema emptied of every row."""
        if kind not in self.urls:
            url = self.stack.enter_context(fresh_matter_database(kind, self.folder))
            if kind == "mariadb":
                url = self.stack.enter_context(_mariadb_user_of(url))
            self.urls[kind] = url
            _with_engine(url, sql_demo.metadata.create_all)
        _with_engine(self.urls[kind], _delete_every_row)
        return self.urls[kind]


def _with_engine(url: str, use: Callable[[Engine], None]) -> None:
    engine = create_engine(url)
    try:
        use(engine)
    finally:
        engine.dispose()


def _delete_every_row(engine: Engine) -> None:
    # Faster than making the tables again (DDL is slow on MariaDB); ids keep counting up.
    with engine.begin() as conn:
        for table in reversed(sql_demo.metadata.sorted_tables):
            conn.execute(table.delete())


class SqlWorld:
    """The demo schema, empty, in a SQLite file of the test's own, or made again in the
    server's database of ``kind``: the rows are the test's own."""

    def __init__(
        self, stack: ExitStack, folder: Path, servers: ServerDatabases, kind: str = "sqlite"
    ):
        self.kind = kind
        if kind == "sqlite":
            self.url = stack.enter_context(fresh_matter_database(kind, folder))
        else:
            self.url = servers.url(kind)
        self.engine = create_engine(self.url)
        if kind == "sqlite":
            sql_demo.metadata.create_all(self.engine)
        self.adapters: list[SqlAdapter] = []
        self.outage = False
        # Last in, first out: the adapters and the engine let go before the database goes.
        stack.callback(self.engine.dispose)
        stack.callback(self._close)

    def _add(self, table: Any, **values: Any) -> str:
        with self.engine.begin() as conn:
            key = conn.execute(insert(table).values(**values)).inserted_primary_key
        return str(key[0])

    def client(self, first: str, last: str, email: str) -> str:
        return self._add(sql_demo.clients, name=f"{first} {last}", email=email)

    def matter(self, client: str, number: str, name: str) -> str:
        return self._add(
            sql_demo.matters, client_id=int(client), number=number, name=name, opened_on=ISSUED_ON
        )

    def invoice(
        self, client: str, matter: str, number: str, total: str, *,
        paid: str = "0", due: dt.date, trust: bool = False,
    ) -> str:  # fmt: skip
        fields = invoice_fields(client, matter, number, total, paid, due, trust)
        return self._add(
            sql_demo.invoices,
            **{**fields, "client_id": int(client), "matter_id": int(matter)},
            version=1,
            updated_at=dt.datetime(2025, 1, 1, 9, 0),
        )

    def adapter(self) -> SqlAdapter:
        made = SqlAdapter(AdapterConfig(settings={"url": self.url}, app_settings={}))
        self.adapters.append(made)
        return made

    def fail_next_call(self) -> None:
        for made in self.adapters:
            made.engine.dispose()
        self.engine.dispose()
        OUTAGES[self.kind](self.url, False)
        self.outage = True

    def _close(self) -> None:
        for made in self.adapters:
            made.close()
        if self.outage:
            OUTAGES[self.kind](self.url, True)


def _sqlite_outage(url: str, over: bool) -> None:
    # The file gone and a folder in its place: nothing can open the database any more.
    path = Path(make_url(url).database or "")
    if over:
        shutil.rmtree(path)
        return
    path.rename(path.with_suffix(".gone"))
    path.mkdir()


def _postgresql_outage(url: str, over: bool) -> None:
    # The server stops taking connections to the database, and drops those it has.
    name = make_url(url).database
    server = create_engine(make_url(url).set(database="postgres"), isolation_level="AUTOCOMMIT")
    with server.connect() as conn:
        allowed = "true" if over else "false"
        conn.execute(text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS {allowed}'))
        conn.execute(
            text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :name"),
            {"name": name},
        )
    server.dispose()


# MariaDB cannot close one database to connections: its world reaches its database as a user
# of its own, whose account is locked (and its connections killed) for the outage.
MARIADB_HOSTS = ("localhost", "127.0.0.1", "%")


@contextmanager
def _mariadb_user_of(url: str) -> Iterator[str]:
    """A user that may use only the database of ``url``: its URL, the user dropped after."""
    parsed = make_url(url)
    user = "cpw_" + (parsed.database or "")[-12:]
    with _mariadb_root(url) as conn:
        for host in MARIADB_HOSTS:
            conn.execute(text(f"CREATE USER '{user}'@'{host}'"))
            conn.execute(text(f"GRANT ALL ON `{parsed.database}`.* TO '{user}'@'{host}'"))
    try:
        yield parsed.set(username=user, password=None).render_as_string(hide_password=False)
    finally:
        with _mariadb_root(url) as conn:
            for host in MARIADB_HOSTS:
                conn.execute(text(f"DROP USER IF EXISTS '{user}'@'{host}'"))


@contextmanager
def _mariadb_root(url: str) -> Iterator[Connection]:
    root = os.environ.get(SERVERS["mariadb"][0]) or SERVERS["mariadb"][1]
    server = create_engine(make_url(root), isolation_level="AUTOCOMMIT")
    try:
        with server.connect() as conn:
            yield conn
    finally:
        server.dispose()


def _mariadb_outage(url: str, over: bool) -> None:
    user = make_url(url).username
    with _mariadb_root(url) as conn:
        for host in MARIADB_HOSTS:
            lock = "UNLOCK" if over else "LOCK"
            conn.execute(text(f"ALTER USER '{user}'@'{host}' ACCOUNT {lock}"))
        if not over:
            sessions = conn.execute(
                text("SELECT id FROM information_schema.processlist WHERE user = :user"),
                {"user": user},
            ).scalars()
            for session in list(sessions):
                conn.execute(text(f"KILL {int(session)}"))


# Each database made unreachable (over=False), and reachable again (over=True).
OUTAGES: dict[str, Callable[[str, bool], None]] = {
    "sqlite": _sqlite_outage,
    "postgresql": _postgresql_outage,
    "mariadb": _mariadb_outage,
}


class OAuthWorld:
    """A vendor's fake over HTTP, and adapters of a connection that went through its OAuth
    dance."""

    adapter_class: type[Any]
    connection_settings: dict[str, str] = {}

    def __init__(self, stack: ExitStack, fake: Any):
        self.fake = stack.enter_context(running(fake))
        self.adapters: list[Any] = []
        stack.callback(lambda: [made.close() for made in self.adapters])

    def _adapter(self, tokens: MemoryTokenSource | None) -> Any:
        app_settings = {**self.fake.settings(), "clientpay.http_timeout": "2"}
        config = AdapterConfig(
            self.connection_settings, app_settings, tokens=tokens, redirect_uri=REDIRECT_URI
        )
        made = self.adapter_class(config)
        self.adapters.append(made)
        return made

    def adapter(self) -> Any:
        source = MemoryTokenSource(connect(self._adapter(None)))
        made = self._adapter(source)
        source.refresh_with(made.refresh)
        return made

    def fail_next_call(self) -> None:
        self.fake.fail_next(1, status=503)


class MyCaseWorld(OAuthWorld):
    adapter_class = MyCaseAdapter

    def __init__(self, stack: ExitStack):
        super().__init__(stack, FakeMyCase())

    def client(self, first: str, last: str, email: str) -> str:
        return str(self.fake.add_client(first, last, email))

    def matter(self, client: str, number: str, name: str) -> str:
        return str(self.fake.add_case(name, number, [int(client)]))

    def invoice(
        self, client: str, matter: str, number: str, total: str, *,
        paid: str = "0", due: dt.date, trust: bool = False,
    ) -> str:  # fmt: skip
        return str(
            self.fake.add_invoice(
                int(matter), number, total, paid=paid, invoice_date=ISSUED_ON, due_date=due,
                account_type="trust" if trust else "operating",
            )
        )  # fmt: skip


class ClioWorld(OAuthWorld):
    adapter_class = ClioAdapter
    connection_settings = {"region": "us"}

    def __init__(self, stack: ExitStack):
        super().__init__(stack, FakeClio(rate_limit=None))
        self.contacts: dict[str, Any] = {}
        self.matters: dict[str, Any] = {}

    def client(self, first: str, last: str, email: str) -> str:
        contact = self.fake.add_contact(first, last, email=email)
        self.contacts[str(contact.id)] = contact
        return str(contact.id)

    def matter(self, client: str, number: str, name: str) -> str:
        matter = self.fake.add_matter(self.contacts[client], number, name)
        self.matters[str(matter.id)] = matter
        return str(matter.id)

    def invoice(
        self, client: str, matter: str, number: str, total: str, *,
        paid: str = "0", due: dt.date, trust: bool = False,
    ) -> str:  # fmt: skip
        bill = self.fake.add_bill(
            self.matters[matter], number, total, paid=paid, issued=ISSUED_ON, due=due,
            kind="trust_kind" if trust else "revenue_kind",
            state="paid" if Decimal(paid) >= Decimal(total) else "awaiting_payment",
        )  # fmt: skip
        return str(bill.id)


WORLDS: dict[str, Callable[[ExitStack, Path, ServerDatabases], MatterWorld]] = {
    "memory": lambda stack, _folder, _servers: MemoryWorld(stack),
    "sql": SqlWorld,
    "sql-postgresql": lambda stack, folder, servers: SqlWorld(stack, folder, servers, "postgresql"),
    "sql-mariadb": lambda stack, folder, servers: SqlWorld(stack, folder, servers, "mariadb"),
    "mycase": lambda stack, _folder, _servers: MyCaseWorld(stack),
    "clio": lambda stack, _folder, _servers: ClioWorld(stack),
}

# The worlds whose adapters leave payments to staff to enter by hand (capabilities.post is
# "manual"): the tests of writing do not run on them (a test checks this list).
ENTERED_BY_HAND = frozenset({"clio"})
WRITING_WORLDS = sorted(set(WORLDS) - ENTERED_BY_HAND)


@contextmanager
def matter_world(name: str, folder: Path, servers: ServerDatabases) -> Iterator[MatterWorld]:
    with ExitStack() as stack:
        yield WORLDS[name](stack, folder, servers)
