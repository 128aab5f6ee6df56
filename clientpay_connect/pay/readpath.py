"""The payment page's read path: outside the transaction manager, one statement, no BEGIN.

GET /pay/{token} is the one page anyone may load, and payers reload it. All it does with
the database is read one row (pay/facts.py), and through request.dbsession that row cost
far more than the reading: a session, its registration with the transaction manager (seven
event listeners each time), BEGIN, the statement, COMMIT or ROLLBACK and the session's
close, on every request. House rule 13 lets a read-only hot path leave the transaction
manager, and this is the only one:

- ``page_outside_tm`` is pyramid_tm's ``tm.activate_hook``: it leaves GET and HEAD of the
  payment page out (the receipt, the payer's API and every other route keep their
  transaction). request.dbsession cannot be used by such a request: its explicit manager
  has no transaction, so any use fails loudly instead of writing outside one.
- ``DriverReads`` runs the compiled statement on a pooled connection in the driver's
  autocommit: on PostgreSQL with no BEGIN, COMMIT or ROLLBACK round trip; on SQLite no BEGIN
  is sent either, and the SELECT is its own implicit deferred read transaction (it takes
  no write lock, and sees everything committed before it began). One statement reads
  everything the page shows, so it needs no wider snapshot; a Connect link's invoices (a
  second statement) are written with the link and never change.
- Every request reads the row again: a link paid, cancelled or expired a moment ago shows
  its closed page on the very next request, whatever the page cache holds (its key is the
  row itself, page_cache.py). Recording the open is not this request's write either: it is
  queued, and written in batches by pay/opens.py.
"""

from __future__ import annotations

import functools
import re
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from psycopg import errors as psycopg_errors
from psycopg.adapt import PyFormat, Transformer
from psycopg.pq import ExecStatus
from pyramid.config import Configurator
from pyramid.interfaces import IRoutesMapper
from pyramid.request import Request
from pyramid_tm import is_tm_active
from sqlalchemy import Connection, Executable, create_engine, event
from sqlalchemy.engine import Engine
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

from clientpay_connect.db import RowValues
from clientpay_connect.pay.facts import LinkRead, Run, read_link, read_with

T = TypeVar("T")
PAGE_ROUTE = "pay.page"
READ_METHODS = frozenset({"GET", "HEAD"})
# Where the app's DriverReads is kept (one per process: its compiled statements with it).
READS = "clientpay.pay.driver_reads"
# Where a request's environ keeps whether it is a read of the payment page (is_page_read).
PAGE_READ = "clientpay.pay.page_read"
# Where the app keeps the payment page's route, once found.
PAGE_ROUTE_FOUND = "clientpay.pay.page_route"


def page_outside_tm(host_hook: Callable[[Request], bool] | None, request: Request) -> bool:
    """pyramid_tm's activate hook: False (no transaction) for a read of the payment page.

    The tween runs before routing, so the path is matched here against the page's own route
    (under whatever prefix a host mounted it)."""
    if is_page_read(request):
        return False
    return host_hook(request) if host_hook is not None else True


def page_read_attempts(
    host_hook: Callable[[Request], int | None] | None, request: Request
) -> int | None:
    """pyramid_retry's activate hook: one attempt for a read of the payment page. Retrying is
    for a transaction that lost a conflict, and this request runs none (its read makes its
    own second try on a dead connection, DriverReads.read); one attempt also spares it the
    copy of its body pyramid_retry makes for a second. Anything else: what the hook it wraps
    says (body_limits.retry_attempts, and a host's own)."""
    if is_page_read(request):
        return 1
    return host_hook(request) if host_hook is not None else None


def is_page_read(request: Request) -> bool:
    """Whether this is a GET or HEAD of the payment page; decided once per request, for the
    retry policy first and for pyramid_tm's tween after it."""
    environ = request.environ
    verdict = environ.get(PAGE_READ)
    if verdict is None:
        verdict = environ[PAGE_READ] = request.method in READ_METHODS and _is_payment_page(request)
    return bool(verdict)


def _is_payment_page(request: Request) -> bool:
    registry = request.registry
    route = registry.get(PAGE_ROUTE_FOUND)
    if route is None:
        # Found on the first request, once every route is in place (a host's prefix too).
        route = registry.getUtility(IRoutesMapper).get_route(PAGE_ROUTE)
        registry[PAGE_ROUTE_FOUND] = route
    return route is not None and route.match(request.path_info) is not None


def page_read(request: Request) -> LinkRead | None:
    """The link the page's URL names (facts.LinkRead): on the read path when the transaction
    manager left this request out, else (a transaction is active all the same: a host that
    runs one around our app) through the request's session like any other view."""
    token = request.matchdict["token"]
    if is_tm_active(request):
        return read_link(request.dbsession.connection(), token)
    bind = request.registry["dbsession_factory"].kw.get("bind")
    if isinstance(bind, Connection):
        # A host (or the test suite) binds every session to one connection: read on it, to
        # see what those sessions see.
        return read_link(bind, token)
    reads: DriverReads = request.registry[READS]
    return reads.read(functools.partial(read_with, token=token))


# How long a read waits for a connection when as many as the pool holds are lent (QueuePool's
# own default).
LEND_TIMEOUT_SECONDS = 30
# More than a server's threads: QueuePool closes a connection that comes back when it already
# holds pool_size, and the next burst of pages would open a new backend (a fork) for it.
PAGE_POOL_SIZE = 16


class DisconnectedError(Exception):
    """The pooled connection was dead (read again on a new one)."""


class DriverReads:
    """Core statements, each compiled once for the engine's dialect, run straight on a pooled
    DBAPI connection in the driver's autocommit.

    SQLAlchemy's own execution of a cached statement (a Connection, its cache key, an
    execution context, a Result and Row objects) cost several times the database's work on
    the page. Here the pool still lends and takes back the connection (and drops a dead
    one), the SQL and its parameter order come from SQLAlchemy's compiler, and each column's
    value goes through its type's own result processor, as in any other read; only the
    per-call machinery is left out. Parameters are passed as they are (no bind processors):
    for statements whose parameters are plain strings and integers. On PostgreSQL each
    statement is prepared once per connection and run through libpq itself
    (``_run_prepared``); on SQLite through sqlite3's cursor.

    Made by ``for_app``: on PostgreSQL the engine must be the page's own (``own_pool``), whose
    connections are all in autocommit; a cursor of a connection outside autocommit would
    begin a transaction that nothing ends.
    """

    def __init__(
        self,
        engine: Engine,
        *,
        autocommit_pool: bool = False,
        most_connections: int = 2 * PAGE_POOL_SIZE,
    ):
        if engine.dialect.name == "postgresql" and not autocommit_pool:
            raise ValueError("on PostgreSQL, the page reads through its own pool (for_app)")
        self._engine = engine
        self._compiled: dict[Executable, _Compiled] = {}
        # On the page's own pool: the connections between two reads, kept out of the pool, at
        # most as many lent at once as the pool holds (its size and overflow).
        self._kept = _KeptConnections(most_connections) if autocommit_pool else None

    @property
    def engine(self) -> Engine:
        """The engine whose pool lends the connections."""
        return self._engine

    @classmethod
    def for_app(cls, engine: Engine) -> DriverReads:
        """On PostgreSQL, a pool of the page's own, whose connections are in autocommit from
        the moment they are made (``own_pool``). SQLite pings nothing: its engine's pool is
        used as it is."""
        if engine.dialect.name != "postgresql":
            return cls(engine)
        reads = cls(own_pool(engine), autocommit_pool=True)
        event.listen(engine, "engine_disposed", lambda _engine: reads.dispose())
        return reads

    def kept_connections(self) -> list[Any]:
        """The DBAPI connections the page's own pool keeps between reads (none on SQLite): to
        look at their state."""
        return self._kept.driver_connections() if self._kept is not None else []

    def dispose(self) -> None:
        """Close every connection of the page's (the app's engine was disposed)."""
        if self._kept is not None:
            self._kept.give_all_back()
        self._engine.dispose()

    def read(self, work: Callable[[Run], T]) -> T:
        """``work(run)`` on one pooled connection; once more on a new connection if the first
        was found dead, as a pool that does not ping finds out."""
        try:
            return self._read(work)
        except DisconnectedError:
            # The rest of the pool is as dead: connect afresh.
            if self._kept is not None:
                self._kept.drop_all()
            self._engine.dispose()
            return self._read(work)

    def _read(self, work: Callable[[Run], T]) -> T:
        with self.session() as run:
            return work(run)

    @contextmanager
    def session(self) -> Iterator[Run]:
        """One pooled connection for the statements run in the block, each on its own."""
        kept = self._kept
        if kept is None:
            pooled = self._engine.raw_connection()
        else:
            pooled = kept.take()
            if pooled is None:
                try:
                    pooled = self._engine.raw_connection()
                except BaseException:
                    kept.release()
                    raise
        try:
            if self._engine.dialect.name == "postgresql":
                yield functools.partial(self._run_prepared, pooled)
            else:
                with _sqlite_cursor(pooled) as cursor:
                    yield functools.partial(self._run, cursor)
        except self._engine.dialect.loaded_dbapi.Error as error:
            if not self._engine.dialect.is_disconnect(error, pooled.driver_connection, None):
                raise
            pooled.invalidate(error)
            raise DisconnectedError() from error
        finally:
            if kept is None:
                pooled.close()  # back to the pool
            else:
                kept.keep(pooled)

    def _compiled_for(self, statement: Executable) -> _Compiled:
        compiled = self._compiled.get(statement)
        if compiled is None:
            name = f"clientpay_read_{len(self._compiled)}"
            compiled = self._compiled[statement] = _Compiled(statement, self._engine.dialect, name)
        return compiled

    def _run(
        self, cursor: Any, statement: Executable, params: dict[str, Any]
    ) -> list[tuple[Any, ...]]:
        compiled = self._compiled_for(statement)
        cursor.execute(compiled.sql, compiled.parameters(params))
        return [compiled.values(row) for row in cursor.fetchall()]

    def _run_prepared(
        self, pooled: Any, statement: Executable, params: dict[str, Any]
    ) -> list[tuple[Any, ...]]:
        """The statement as a prepared statement of the connection's own, run with libpq's
        blocking call (which lets go of the GIL while it waits); its rows loaded by psycopg's
        own loaders for the connection, as a cursor would load them.

        A psycopg cursor's execute cost three times the CPU of the call underneath it, on the
        page's one statement: its non-blocking send and the Python loop that waits on the
        socket (several system calls), its query conversion and its prepare bookkeeping.
        Prepared once per connection (the pool record's info forgets it with the
        connection); errors raise what psycopg raises for them."""
        compiled = self._compiled_for(statement)
        driver = pooled.driver_connection
        pgconn = driver.pgconn
        # This connection's Transformer for this statement: None until it is prepared here.
        transformers: dict[str, Any] = pooled.info.setdefault(TRANSFORMERS, {})
        transformer = transformers.get(compiled.name)
        if transformer is None:
            _checked(driver, pgconn.prepare(compiled.name_bytes, compiled.numbered_sql))
            transformer = transformers[compiled.name] = Transformer(driver)
            loaders_set = False
        else:
            loaders_set = True
        values = transformer.dump_sequence(
            compiled.numbered_parameters(params), compiled.text_formats
        )
        result = _checked(driver, pgconn.exec_prepared(compiled.name_bytes, values))
        # A prepared statement's columns are the same on every run: their loaders are looked
        # up on its first.
        transformer.set_pgresult(result, set_loaders=not loaders_set)
        rows = transformer.load_rows(0, result.ntuples, tuple)
        return [compiled.values(row) for row in rows]


class _KeptConnections:
    """The page's own pool's connections between two reads, lent by SQLAlchemy's pool once and
    kept here rather than given back after each read (last in, first out).

    Checking a connection out of SQLAlchemy's pool and back in cost the page ~17 us of CPU a
    request (its queue, the connection record's bookkeeping), several times the list's. It
    needs none of what that bookkeeping is for here: a connection of this pool is in
    autocommit, so it comes back from a read with no transaction open (the pool resets
    nothing on return either), and it is never pinged (a dead one is found by the read). A
    dead connection is invalidated and not kept; when one is found dead, the others are
    dropped too, as the pool was disposed before. Every connection goes back to the pool when
    the app's engine is disposed, or when this is collected or the process exits.

    As the connections never go back to SQLAlchemy's pool, a read that found none kept would
    wait in that pool for one that never comes back there: so no more are lent at once than
    the pool can open (``most``), and a read beyond that waits here, for the first one kept
    again, as long as the pool would have made it wait."""

    def __init__(self, most: int):
        self._connections: list[Any] = []
        self._lock = threading.Lock()
        # How many are lent now (kept or not), how many more may be, and the reads waiting.
        self._lent = 0
        self._most = most
        self._waiting = 0
        self._returned = threading.Condition(self._lock)
        weakref.finalize(self, _give_back, self._connections, self._lock)

    def take(self) -> Any:
        """A kept connection, None to open one (to be given back with ``keep`` either way)."""
        with self._lock:
            if not self._connections and self._lent >= self._most:
                self._wait_for_one()
            self._lent += 1
            return self._connections.pop() if self._connections else None

    def _wait_for_one(self) -> None:
        deadline = time.monotonic() + LEND_TIMEOUT_SECONDS
        self._waiting += 1
        try:
            while not self._connections and self._lent >= self._most:
                left = deadline - time.monotonic()
                if left <= 0 or not self._returned.wait(left):
                    raise PoolTimeoutError(
                        "no connection of the page's pool came back within "
                        f"{LEND_TIMEOUT_SECONDS} s"
                    )
        finally:
            self._waiting -= 1

    def release(self) -> None:
        """Give back what ``take`` allowed when no connection came of it."""
        with self._lock:
            self._given_back()

    def keep(self, pooled: Any) -> None:
        """Keep ``pooled`` for the next read, or give it back to the pool if it was found
        dead (invalidated)."""
        if not pooled.is_valid:
            pooled.close()
        with self._lock:
            if pooled.is_valid:
                self._connections.append(pooled)
            self._given_back()

    def _given_back(self) -> None:
        self._lent -= 1
        if self._waiting:
            self._returned.notify()

    def driver_connections(self) -> list[Any]:
        with self._lock:
            return [pooled.driver_connection for pooled in self._connections]

    def give_all_back(self) -> None:
        _give_back(self._connections, self._lock)

    def drop_all(self) -> None:
        """Invalidate every kept connection (found dead, as the one that was just read on)."""
        with self._lock:
            dropped = self._connections[:]
            self._connections.clear()
        for pooled in dropped:
            pooled.invalidate()


def _give_back(connections: list[Any], lock: threading.Lock) -> None:
    with lock:
        given = connections[:]
        connections.clear()
    for pooled in given:
        pooled.close()


# Where a pooled connection of the page's own pool keeps, for each statement prepared on it,
# a psycopg Transformer with the loaders of its columns (the pool record's info: SQLAlchemy
# clears it when the connection is replaced, and the server's prepared statements go with it).
TRANSFORMERS = "clientpay.pay.transformers"
_SUCCEEDED = (ExecStatus.COMMAND_OK, ExecStatus.TUPLES_OK)


def _checked(driver: Any, result: Any) -> Any:
    """``result``, unless the statement failed: then the error psycopg would raise for it."""
    if result.status not in _SUCCEEDED:
        raise psycopg_errors.error_from_result(result, encoding=driver.info.encoding)
    return result


def own_pool(engine: Engine) -> Engine:
    """An engine on ``engine``'s database for the page's reads only, whose connections are
    in psycopg's autocommit from the start: psycopg then never sends BEGIN, each SELECT is its
    own transaction, and a connection can come back with no transaction open, whatever
    happened on it. So the pool neither rolls back on return (a call into the driver for
    nothing: it would send no ROLLBACK on an idle connection anyway) nor pings before lending
    (a round trip that cost the page as much as its SELECT): a dead connection is found by
    the read itself, and ``read`` makes it once more on a new one."""
    return create_engine(
        engine.url,
        isolation_level="AUTOCOMMIT",
        pool_reset_on_return=None,
        pool_pre_ping=False,
        pool_size=PAGE_POOL_SIZE,
        max_overflow=PAGE_POOL_SIZE,
    )


@contextmanager
def _sqlite_cursor(pooled: Any) -> Iterator[Any]:
    """A cursor for the block (sqlite3 is in autocommit already: db.py turned its own
    transaction handling off, and our BEGIN comes from SQLAlchemy's begin event, which a
    driver's cursor never fires)."""
    cursor = pooled.cursor()
    try:
        yield cursor
    finally:
        cursor.close()


class _Compiled:
    def __init__(self, statement: Any, dialect: Any, name: str):
        compiled = statement.compile(dialect=dialect)
        self.name = name
        self.name_bytes = name.encode()
        self.sql: str = compiled.string
        self._compiled = compiled
        self._positions: Any = compiled.positiontup
        self.values = RowValues(statement, dialect)
        if dialect.name == "postgresql":
            self._numbered_as_prepared(self.sql)

    def _numbered_as_prepared(self, sql: str) -> None:
        """The SQL with $1, $2… where the dialect's %(name)s placeholders are (and %% back to
        %), as libpq prepares it, and the names in that order."""
        names: list[str] = []

        def number(match: re.Match[str]) -> str:
            name = match.group(1)
            if name is None:
                return "%"
            if name not in names:
                names.append(name)
            return f"${names.index(name) + 1}"

        self.numbered_sql = _PYFORMAT.sub(number, sql).encode()
        # The caller's names (SQLAlchemy escapes some in the SQL), and the values the
        # statement itself holds for those the caller need not give.
        original = {escaped: name for name, escaped in self._compiled.escaped_bind_names.items()}
        self._names = tuple(original.get(name, name) for name in names)
        binds = self._compiled.binds
        self._fixed = {
            name: binds[name].effective_value for name in self._names if not binds[name].required
        }
        self.text_formats = [PyFormat.TEXT] * len(names)

    def parameters(self, params: dict[str, Any]) -> Any:
        values = self._compiled.construct_params(params)
        if self._positions:
            return tuple(values[name] for name in self._positions)
        return values

    def numbered_parameters(self, params: dict[str, Any]) -> list[Any]:
        """The values for $1, $2…, as construct_params would give them, without its walk over
        every bound parameter of the statement (a missing one is a KeyError)."""
        fixed = self._fixed
        return [params[name] if name in params else fixed[name] for name in self._names]


# A bound parameter as the PostgreSQL dialect writes it for psycopg, or an escaped percent.
_PYFORMAT = re.compile(r"%\((\w+)\)s|%%")


def process_service(request: Request, iface: Any) -> Any:
    """request.find_service(iface) for a service that is one object for the whole process
    (the rate limiter, the page cache: their factories hand out what the registry holds).

    The factory registered for ``iface`` is found and called as find_service would, but
    without the request's service container, which pyramid_services builds on a request's
    first find_service (a registry of its own, the request registered in it, a subscriber
    notified): on the page that was a quarter of the view's time, for two look-ups. The
    factory is looked up once per app (the first request's look-up, after the configuration
    was committed, so whatever a host registered in its place is the one found)."""
    factories: dict[Any, Any] = request.registry[SERVICE_FACTORIES]
    factory = factories.get(iface)
    if factory is None:
        factory = factories[iface] = request.find_service_factory(iface)
    return factory(None, request)


# Where the app keeps the factories process_service found.
SERVICE_FACTORIES = "clientpay.pay.service_factories"


def includeme(config: Configurator) -> None:
    settings = config.get_settings()
    config.registry[READS] = DriverReads.for_app(config.registry["dbengine"])
    config.registry[SERVICE_FACTORIES] = {}
    host_hook: Any = config.maybe_dotted(settings.get("tm.activate_hook"))
    # Read by pyramid_tm's tween factory when the app is made, after every includeme.
    settings["tm.activate_hook"] = functools.partial(page_outside_tm, host_hook)
    # Read by pyramid_retry's deferred action, after every includeme too: the hook it wraps is
    # body_limits' (set by the foundation), itself wrapping a host's.
    retry_hook: Any = config.maybe_dotted(settings.get("retry.activate_hook"))
    settings["retry.activate_hook"] = functools.partial(page_read_attempts, retry_hook)
