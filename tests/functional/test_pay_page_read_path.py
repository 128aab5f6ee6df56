"""The payment page's read path (pay/readpath.py): outside the transaction manager, one
statement on a pooled connection with no transaction, and the opens written in batches
(pay/opens.py). None of it may cost a payer a correct page.

Served by waitress on a fresh, committed database (the suite's usual shared connection would
hide the very thing tested: which connection, in which state); SQLite, and PostgreSQL when
CLIENTPAY_TEST_DATABASE_URL is set.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import requests
import transaction
from bs4 import BeautifulSoup
from pyramid.request import Request
from pyramid.router import Router
from sqlalchemy import column, create_engine, event, func, select, table, text

from clientpay_connect.connect.models import LinkInvoice
from clientpay_connect.db import get_tm_session, utcnow
from clientpay_connect.links.models import (
    SOURCE_CONNECT,
    STATUS_CANCELLED,
    STATUS_PAID,
    STATUS_PARTIALLY_PAID,
    STATUS_PROCESSING,
    PaymentLink,
)
from clientpay_connect.pay.facts import facts_with, link_facts, read_with
from clientpay_connect.pay.opens import BATCH, OpenBatch
from clientpay_connect.pay.readpath import READS, DriverReads, page_outside_tm
from tests.support.databases import using_postgresql
from tests.support.live_server import served_app
from tests.support.payments import committed_link, committed_opens

TIMEOUT = 30


@pytest.fixture(scope="module")
def served(
    base_settings: dict[str, Any], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, Router]]:
    # A batch writer that never wakes by itself: each test flushes when it means to.
    settings = {**base_settings, "clientpay.pay.opens_flush_seconds": "3600"}
    with served_app(settings, tmp_path_factory.mktemp("readpath"), threads=2) as (url, app):
        try:
            yield url, app
        finally:
            app.registry[BATCH].close()


def change_link(app: Router, link_id: int, **values: Any) -> None:
    """Commit a change to the link as another process (a payment, a job, staff) would."""
    tm = transaction.TransactionManager(explicit=True)
    with tm:
        session = get_tm_session(app.registry["dbsession_factory"], tm)
        link = session.get(PaymentLink, link_id)
        for name, value in values.items():
            setattr(link, name, value)


def has_form(body: str) -> bool:
    return BeautifulSoup(body, "html.parser").find("form", id="pay-form") is not None


@contextmanager
def watching(app: Router) -> Iterator[dict[str, list[Any]]]:
    """The statements the app's connections run meanwhile, and whether each connection that
    went back to the pool was inside a transaction then (what the pool would roll back), or
    is, for those the page's own pool keeps between reads (PostgreSQL), when the block ends.

    On SQLite, every statement the driver runs (its trace callback: BEGIN included, and
    statements run on the driver's own cursors); on PostgreSQL, those run through
    SQLAlchemy (psycopg's own BEGIN shows as the transaction state instead)."""
    engines = {app.registry["dbengine"], app.registry[READS].engine}  # the page's own pool
    sqlite = app.registry["dbengine"].dialect.name == "sqlite"
    seen: dict[str, list[Any]] = {"statements": [], "left_in_transaction": []}

    def note(sql: str) -> None:
        seen["statements"].append(" ".join(sql.split())[:60])

    def statement(conn: Any, cursor: Any, sql: str, *args: Any) -> None:
        note(sql)

    def checkout(dbapi_connection: Any, *args: Any) -> None:
        dbapi_connection.set_trace_callback(note)

    def checkin(dbapi_connection: Any, *args: Any) -> None:
        if dbapi_connection is not None:
            dbapi_connection.set_trace_callback(None)

    def reset(dbapi_connection: Any, record: Any, state: Any) -> None:
        seen["left_in_transaction"].append(in_transaction(dbapi_connection))

    listeners: list[tuple[str, Any]] = [("reset", reset)]
    if sqlite:
        listeners += [("checkout", checkout), ("checkin", checkin)]
    else:
        listeners += [("before_cursor_execute", statement)]
    for engine in engines:
        for name, listener in listeners:
            event.listen(engine, name, listener)
    try:
        yield seen
        kept = app.registry[READS].kept_connections()
        seen["left_in_transaction"] += [in_transaction(connection) for connection in kept]
    finally:
        for engine in engines:
            for name, listener in listeners:
                event.remove(engine, name, listener)


def backends(app: Router, what: str, which: str) -> Any:
    """``what`` over the PostgreSQL backends connected to the app's database, ``which`` ones."""
    with app.registry["dbengine"].connect() as conn:
        return conn.execute(
            text(
                f"SELECT {what} FROM pg_stat_activity"  # noqa: S608 (the test's own text)
                f" WHERE datname = current_database() AND {which}"
            )
        ).scalar()


def in_transaction(dbapi_connection: Any) -> bool:
    info = getattr(dbapi_connection, "info", None)
    if info is not None and hasattr(info, "transaction_status"):  # psycopg
        return int(info.transaction_status) != 0  # 0: IDLE, outside any transaction
    return bool(dbapi_connection.in_transaction)  # sqlite3


def test_the_page_reads_one_row_and_leaves_no_transaction(served):
    url, app = served
    _link_id, token = committed_link(app)
    requests.get(f"{url}/pay/{token}", timeout=TIMEOUT)  # the open is now pending
    with watching(app) as seen:
        page = requests.get(f"{url}/pay/{token}", timeout=TIMEOUT)
    assert page.status_code == 200 and has_form(page.text)
    # Outside any transaction when it went back to the pool, or now that the page's own pool
    # keeps it (psycopg: IDLE, no BEGIN sent).
    assert seen["left_in_transaction"] and not any(seen["left_in_transaction"])
    if app.registry["dbengine"].dialect.name == "sqlite":
        # One SELECT: no BEGIN, COMMIT, ROLLBACK, no write (the open waits for its batch).
        assert len(seen["statements"]) == 1, seen["statements"]
        assert seen["statements"][0].upper().startswith("SELECT")
    else:
        assert seen["statements"] == []  # nothing through SQLAlchemy: no session, no BEGIN


def test_no_connection_stays_in_a_transaction_after_many_pages(served):
    url, app = served
    _link_id, token = committed_link(app)
    with watching(app) as seen:
        for _ in range(20):
            assert requests.get(f"{url}/pay/{token}", timeout=TIMEOUT).status_code == 200
    assert seen["left_in_transaction"] and not any(seen["left_in_transaction"])
    if app.registry["dbengine"].dialect.name == "postgresql":
        idle = backends(app, "count(*)", "state = 'idle in transaction'")
        assert idle == 0


def test_the_receipt_still_reads_inside_a_transaction(served):
    url, app = served
    link_id, token = committed_link(app)
    change_link(app, link_id, status=STATUS_PAID, amount_paid_minor=10_000, paid_at=utcnow())
    with watching(app) as seen:
        receipt = requests.get(f"{url}/pay/{token}/receipt", timeout=TIMEOUT)
    assert receipt.status_code == 200
    # Its session's transaction: begun, and ended before the connection went back.
    assert seen["left_in_transaction"] and not any(seen["left_in_transaction"])
    if app.registry["dbengine"].dialect.name == "sqlite":
        assert seen["statements"][0].startswith("BEGIN")


@pytest.mark.parametrize(
    "change",
    [
        {"status": STATUS_PAID, "amount_paid_minor": 10_000},
        {"status": STATUS_PARTIALLY_PAID, "amount_paid_minor": 4_000},
        {"status": STATUS_CANCELLED},
        {"status": STATUS_PROCESSING},
        {"expires_at": utcnow() - dt.timedelta(minutes=1)},
    ],
    ids=["paid", "partially-paid", "cancelled", "processing", "expired"],
)
def test_a_change_shows_on_the_very_next_request(served, change):
    url, app = served
    link_id, token = committed_link(app)
    # Twice: the second one is served from the page cache, which must not outlive the change.
    for _ in range(2):
        page = requests.get(f"{url}/pay/{token}", timeout=TIMEOUT)
        assert page.status_code == 200 and has_form(page.text)
    if change.get("amount_paid_minor"):
        change = {**change, "paid_at": utcnow()}
    change_link(app, link_id, **change)
    after = requests.get(f"{url}/pay/{token}", timeout=TIMEOUT)
    assert after.status_code == 200
    assert not has_form(after.text)


@pytest.mark.skipif(
    not using_postgresql(), reason="PostgreSQL only: the page's own pool that does not ping"
)
def test_a_dead_pooled_connection_costs_the_payer_nothing(served):
    url, app = served
    _link_id, token = committed_link(app)
    assert requests.get(f"{url}/pay/{token}", timeout=TIMEOUT).status_code == 200
    # The server restarted, say: every connection the pools hold is dead.
    assert backends(app, "count(pg_terminate_backend(pid))", "pid <> pg_backend_pid()")
    for _ in range(3):
        page = requests.get(f"{url}/pay/{token}", timeout=TIMEOUT)
        assert page.status_code == 200 and has_form(page.text)


def test_the_page_keeps_its_security_headers(served):
    url, app = served
    _link_id, token = committed_link(app)
    for _ in range(2):  # rendered, then from the page cache
        page = requests.get(f"{url}/pay/{token}", timeout=TIMEOUT)
        headers = page.headers
        assert "default-src 'self'" in headers["Content-Security-Policy"]
        assert "frame-ancestors" in headers["Content-Security-Policy"]
        assert headers["X-Content-Type-Options"] == "nosniff"
        assert headers["Referrer-Policy"] == "no-referrer"
        assert "payment=(self)" in headers["Permissions-Policy"]
        assert headers["Cache-Control"] == "no-store"


def test_opens_wait_for_their_batch_and_one_transaction_writes_them(served):
    url, app = served
    links = [committed_link(app) for _ in range(3)]
    batch: OpenBatch = app.registry[BATCH]
    batch.flush()  # whatever earlier tests left pending
    for link_id, token in links:
        for _ in range(3):  # reloads of the same link: one entry in the batch
            assert requests.get(f"{url}/pay/{token}", timeout=TIMEOUT).status_code == 200
        # The page answered; its open is not written yet.
        assert committed_opens(app, link_id) == (None, None)
    with watching(app) as seen:
        assert batch.flush() == 3
    # One transaction for all three links: on SQLite (the driver's trace shows each row of
    # the executemany) one BEGIN and one COMMIT; on PostgreSQL one executemany of one UPDATE.
    if app.registry["dbengine"].dialect.name == "sqlite":
        ends = [sql for sql in seen["statements"] if sql.upper().startswith(("BEGIN", "COMMIT"))]
        assert ends == ["BEGIN", "COMMIT"], seen["statements"]
    else:
        updates = [sql for sql in seen["statements"] if sql.upper().startswith("UPDATE")]
        assert len(updates) == 1, seen["statements"]
    for link_id, _token in links:
        first, last = committed_opens(app, link_id)
        assert first is not None and first == last


def test_the_batch_writer_writes_by_itself(served):
    _url, app = served
    link_id, _token = committed_link(app)
    batch = OpenBatch(app.registry, interval=0.2)
    try:
        batch.add(link_id, utcnow())
        deadline = time.monotonic() + TIMEOUT
        while committed_opens(app, link_id) == (None, None) and time.monotonic() < deadline:
            time.sleep(0.1)
        first, last = committed_opens(app, link_id)
        assert first is not None and first == last
    finally:
        batch.close()


def test_a_batch_never_moves_an_open_back_nor_first_open(served):
    _url, app = served
    link_id, _token = committed_link(app)
    earlier = utcnow() - dt.timedelta(minutes=10)
    change_link(app, link_id, first_opened_at=earlier, last_opened_at=earlier)
    batch = OpenBatch(app.registry, interval=0)
    now = utcnow()
    batch.add(link_id, now - dt.timedelta(seconds=5))
    batch.add(link_id, now)  # the later one of the same link is kept
    assert batch.flush() == 1
    first, last = committed_opens(app, link_id)
    assert first == earlier
    assert abs((last - now).total_seconds()) < 1


def test_the_drivers_read_gives_the_facts_the_session_gives(served):
    _url, app = served
    link_id, token = committed_link(
        app,
        source=SOURCE_CONNECT,
        invoice_number="INV-9",
        invoice_date=dt.date(2026, 3, 1),
        due_date=dt.date(2026, 4, 1),
        recipient_name="Dana Client",
        emails=["dana@example.test"],
    )
    opened = utcnow() - dt.timedelta(hours=1)
    change_link(app, link_id, expires_at=utcnow() + dt.timedelta(days=3), last_opened_at=opened)
    tm = transaction.TransactionManager(explicit=True)
    with tm:
        session = get_tm_session(app.registry["dbsession_factory"], tm)
        firm_id = session.get(PaymentLink, link_id).firm_id
        for position, (number, due) in enumerate([("A-1", dt.date(2026, 5, 1)), ("A-2", None)]):
            session.add(
                LinkInvoice(
                    firm_id=firm_id,
                    link_id=link_id,
                    position=position,
                    invoice_id=number,
                    invoice_number=number,
                    matter_name="Estate of Doe",
                    due_on=due,
                    balance_minor=5_000,
                    amount_minor=5_000,
                )
            )
    with tm:
        session = get_tm_session(app.registry["dbsession_factory"], tm)
        through_session = link_facts(session, token)
    reads: DriverReads = app.registry[READS]
    with reads.session() as run:
        through_driver = facts_with(run, token)
    assert through_session is not None and len(through_session.invoices) == 2
    assert through_driver == through_session
    # Fields left out of the comparison (the page's cache key) must agree too, types and all.
    assert through_driver.last_opened_at == through_session.last_opened_at
    assert isinstance(through_driver.invoice_date, dt.date)
    assert through_driver.expires_at is not None and through_driver.expires_at.tzinfo is not None
    with reads.session() as run:
        assert facts_with(run, "x" * 43) is None


@pytest.mark.parametrize(
    ("emails", "first"),
    [
        (["first@example.test", "second@example.test"], "first@example.test"),
        (["ñandú@example.test"], "ñandú@example.test"),
        ([], ""),
    ],
)
def test_the_first_email_is_read_by_the_database(served, emails, first):
    """The page shows the first address only; the database hands that one over (as text, not
    the whole JSON list), on either read path."""
    _url, app = served
    link_id, token = committed_link(app)
    change_link(app, link_id, emails=emails)
    reads: DriverReads = app.registry[READS]
    with reads.session() as run:
        through_driver = facts_with(run, token)
    tm = transaction.TransactionManager(explicit=True)
    with tm:
        session = get_tm_session(app.registry["dbsession_factory"], tm)
        through_session = link_facts(session, token)
    assert through_driver is not None and through_session is not None
    assert through_driver.first_email == through_session.first_email == first


def test_the_pages_key_is_the_row_but_the_last_open(served):
    """LinkRead.key, the rendered page's key: every column the facts are made of counts, the
    last open does not (it is not shown, and changes once a minute for a reloading payer)."""
    _url, app = served
    link_id, token = committed_link(app)
    reads: DriverReads = app.registry[READS]

    def read() -> Any:
        with reads.session() as run:
            return read_with(run, token)

    first = read()
    change_link(app, link_id, last_opened_at=utcnow())
    opened = read()
    assert opened.key == first.key and opened.last_opened_at != first.last_opened_at
    assert opened.facts == first.facts
    change_link(app, link_id, recipient_name="Someone Else")
    renamed = read()
    assert renamed.key != opened.key and renamed.facts != opened.facts
    assert (renamed.link_id, renamed.status, renamed.locale) == (link_id, "outstanding", "en")


PAGE_READS = pytest.mark.parametrize(
    ("method", "path", "outside"),
    [
        ("GET", "/pay/abc", True),
        ("HEAD", "/pay/abc", True),
        ("POST", "/pay/abc", False),
        ("GET", "/pay/abc/receipt", False),
        ("GET", "/api/v1/pay/abc", False),
        ("GET", "/sent", False),
    ],
)


@PAGE_READS
def test_only_reads_of_the_payment_page_leave_the_transaction_manager(
    served, method, path, outside
):
    _url, app = served
    request = Request.blank(path, method=method)
    request.registry = app.registry
    assert page_outside_tm(None, request) is not outside
    # A host's own hook still decides for everything else.
    assert page_outside_tm(lambda request: False, request) is False


@PAGE_READS
def test_only_reads_of_the_payment_page_get_a_single_attempt(served, method, path, outside):
    """No transaction, nothing for pyramid_retry to try again (nor a body to copy for it);
    everything else keeps its attempts."""
    _url, app = served
    request = Request.blank(path, method=method)
    request.registry = app.registry
    attempts = app.registry.settings["retry.activate_hook"](request)
    assert (attempts == 1) is outside
    if not outside:
        assert attempts is None  # pyramid_retry's own number (retry.attempts)


def test_a_failed_statement_leaves_the_pages_connections_fit_for_the_next_page(served):
    url, app = served
    _link_id, token = committed_link(app)
    reads: DriverReads = app.registry[READS]
    missing = select(column("x")).select_from(table("no_such_table"))
    with watching(app) as seen:
        for _ in range(2):  # the connection's cursor, kept for the next read, failed first
            with pytest.raises(app.registry["dbengine"].dialect.loaded_dbapi.Error):
                reads.read(lambda run: run(missing, {}))
    # The pool does not roll back what it takes back from the page: nothing may be open.
    assert seen["left_in_transaction"] and not any(seen["left_in_transaction"])
    for _ in range(3):
        page = requests.get(f"{url}/pay/{token}", timeout=TIMEOUT)
        assert page.status_code == 200 and has_form(page.text)


@pytest.mark.skipif(not using_postgresql(), reason="PostgreSQL only: SQLite's pool is shared")
def test_the_page_reads_postgresql_only_through_its_own_pool(served):
    _url, app = served
    with pytest.raises(ValueError, match="own pool"):
        DriverReads(app.registry["dbengine"])
    assert app.registry[READS].engine is not app.registry["dbengine"]


BACKEND_PID = select(func.pg_backend_pid())


@pytest.mark.skipif(not using_postgresql(), reason="PostgreSQL only: SQLite's pool is shared")
def test_the_page_keeps_its_connections_between_reads_and_never_lends_one_twice(served):
    _url, app = served
    reads: DriverReads = app.registry[READS]
    with reads.session() as outer, reads.session() as inner:
        outer_pid, inner_pid = outer(BACKEND_PID, {})[0][0], inner(BACKEND_PID, {})[0][0]
    assert outer_pid != inner_pid  # two reads at once: two connections
    # Both kept for the next reads, the last given back lent first.
    with reads.session() as run:
        assert run(BACKEND_PID, {})[0][0] == outer_pid
    kept = {connection.info.backend_pid for connection in reads.kept_connections()}
    assert {outer_pid, inner_pid} <= kept


@pytest.mark.skipif(not using_postgresql(), reason="PostgreSQL only: SQLite's pool is shared")
def test_disposing_the_apps_engine_closes_the_connections_the_page_keeps(
    base_settings, tmp_path_factory
):
    settings = {**base_settings, "clientpay.pay.opens_flush_seconds": "3600"}
    folder = tmp_path_factory.mktemp("kept")
    with served_app(settings, folder, threads=2) as (url, app):
        try:
            _link_id, token = committed_link(app)
            for _ in range(3):
                assert requests.get(f"{url}/pay/{token}", timeout=TIMEOUT).status_code == 200
            reads: DriverReads = app.registry[READS]
            kept = reads.kept_connections()
            pids = [connection.info.backend_pid for connection in kept]
            assert kept
            app.registry["dbengine"].dispose()
            assert reads.kept_connections() == []
            assert all(connection.closed for connection in kept)
            gone = f"pid IN ({', '.join(map(str, pids))})"
            deadline = time.monotonic() + TIMEOUT
            while backends(app, "count(*)", gone) and time.monotonic() < deadline:
                time.sleep(0.05)  # a backend ends a moment after its client has gone
            assert backends(app, "count(*)", gone) == 0
        finally:
            app.registry[BATCH].close()


@pytest.mark.skipif(not using_postgresql(), reason="PostgreSQL only: SQLite's pool is shared")
def test_a_read_beyond_the_pools_connections_waits_for_the_first_one_kept(served):
    """The kept connections never go back to SQLAlchemy's pool: a read that found its pool
    all lent must get the first one kept again, not wait in the pool for nothing."""
    _url, app = served
    engine = create_engine(
        app.registry[READS].engine.url, isolation_level="AUTOCOMMIT", pool_size=1, max_overflow=1
    )
    reads = DriverReads(engine, autocommit_pool=True, most_connections=2)
    third: list[Any] = []
    try:
        with reads.session() as first, reads.session() as second:
            lent = {backend_pid(first), backend_pid(second)}
            waiting = threading.Thread(target=lambda: third.append(reads.read(backend_pid)))
            waiting.start()
            waiting.join(0.3)
            assert waiting.is_alive() and not third  # both connections are lent
        waiting.join(TIMEOUT)
        # Within the pool's own 30 s: it waited for one of the two, not for a third.
        assert not waiting.is_alive()
        assert third and third[0] in lent
    finally:
        reads.dispose()


def backend_pid(run: Any) -> int:
    return int(run(BACKEND_PID, {})[0][0])
