"""Engine, the request's session (pyramid_tm + zope.sqlalchemy), and the declarative Base."""

from __future__ import annotations

import contextvars
import datetime as dt
import functools
import json
import os
import re
import time
from collections.abc import Callable, Sequence
from typing import Any, TypeVar, cast

import orjson
import transaction
import zope.sqlalchemy
from pyramid.config import Configurator
from pyramid.httpexceptions import HTTPNotFound
from pyramid.interfaces import IRoutesMapper
from pyramid.request import Request
from pyramid.tweens import EXCVIEW
from pyramid_retry import mark_error_retryable
from pyramid_tm import is_tm_active
from sqlalchemy import MetaData, create_engine, event, make_url
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError, DisconnectionError
from sqlalchemy.orm import DeclarativeBase, Session, make_transient_to_detached, sessionmaker
from sqlalchemy.types import DateTime, TypeDecorator

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class UTCDateTime(TypeDecorator[dt.datetime]):
    """Timezone-aware UTC timestamps on both databases (SQLite forgets the zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given where UTC is required")
        return value.astimezone(dt.UTC)

    def process_result_value(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)
        return value

    def result_processor(self, dialect: Any, coltype: Any) -> Any:
        # PostgreSQL's timestamptz comes back aware (every migration makes these columns with
        # timezone=True): process_result_value would only look at each value and hand it back,
        # a Python call per timestamp read, eight a link, hundreds a page of Sent Pages.
        if dialect.name == "postgresql":
            return self.impl_instance.result_processor(dialect, coltype)
        return super().result_processor(dialect, coltype)


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def get_engine(settings: dict[str, Any], prefix: str = "sqlalchemy.") -> Engine:
    url = settings[prefix + "url"]
    if url.startswith("sqlite"):
        return _sqlite_engine(url)
    engine = create_engine(url, future=True, json_deserializer=json_loads)
    ping_when_idle(engine)
    return engine


# A run of digits as long as a number beyond 64 bits, which orjson would read as a float.
LONG_DIGITS = re.compile(rb"[0-9]{19}")


def json_loads(data: bytes) -> Any:
    """A JSON column's value as the standard library reads it, through orjson: psycopg parses
    every JSON value it hands back (a link's email addresses: fifty a page of Sent Pages),
    and json.loads took a few times longer for the same answer. Where orjson's answer could
    differ, json.loads reads it: a long number (orjson makes a float of an integer beyond
    64 bits) or what orjson refuses (NaN, a float beyond the double's range)."""
    if LONG_DIGITS.search(data):
        return json.loads(data)
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        return json.loads(data)


# A pooled connection idle longer than this is pinged before it is lent. A busy pool lends
# its connections again within milliseconds of their last answer, and pinging each time (as
# pool_pre_ping does) cost every request a round trip: one of six for a page of Sent Pages.
# What closes a connection under us closes idle ones, after far longer: the server's or a
# proxy's idle timeouts and firewalls count in minutes, and a restart or a failover
# invalidates the whole pool at the first error it causes (SQLAlchemy's pool invalidation),
# so only the requests that took a connection before that first error fail. So 5 s: above the
# gaps of a busy pool, where the ping would only cost, and far below any idle timeout; a
# quiet pool's next request pays the round trip, which it can afford.
PING_AFTER_IDLE_SECONDS = 5.0
# Where a pooled connection's record keeps when it last came back (SQLAlchemy clears the
# record's info when the connection is replaced: a new one has no entry, and needs no ping).
RETURNED_AT = "clientpay.returned_at"


def ping_when_idle(engine: Engine) -> None:
    """SQLAlchemy's "pessimistic disconnect handling" with custom checkout logic: ping on
    checkout only a connection that has been idle longer than PING_AFTER_IDLE_SECONDS; one
    that fails the ping is replaced (DisconnectionError: the pool opens another and lends
    that), so the request never sees it."""
    dialect = engine.dialect

    def returned(_dbapi_connection: Any, record: Any) -> None:
        record.info[RETURNED_AT] = time.monotonic()

    def lending(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        returned_at = record.info.get(RETURNED_AT)
        if returned_at is None or time.monotonic() - returned_at <= PING_AFTER_IDLE_SECONDS:
            return
        try:
            dialect.do_ping(dbapi_connection)
        except dialect.loaded_dbapi.Error as error:
            raise DisconnectionError(f"connection failed its ping after idling: {error}") from error

    event.listen(engine.pool, "checkin", returned)
    event.listen(engine.pool, "checkout", lending)


def _sqlite_engine(url: str) -> Engine:
    database = make_url(url).database
    if database and database != ":memory:":
        os.makedirs(os.path.dirname(os.path.abspath(database)), exist_ok=True)
    pool: dict[str, Any] = {}
    if database and database != ":memory:":
        # A pool as for any server: opening a connection and setting its pragmas costs more
        # than a whole small query. Sized for waitress's threads plus the job workers. (An
        # in-memory database keeps SQLAlchemy's one connection per thread, which takes no size.)
        pool = {"pool_size": 10, "max_overflow": 20}
    engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30}, **pool)
    event.listen(engine, "connect", _sqlite_on_connect)
    event.listen(engine, "begin", _sqlite_on_begin)
    return engine


def _sqlite_on_connect(dbapi_connection: Any, _record: Any) -> None:
    # pysqlite's own transaction handling breaks SAVEPOINT and lets a reader upgrade to a
    # writer too late; we turn it off and emit BEGIN ourselves (SQLAlchemy's documented recipe).
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()
    # SQLite's own lower() folds ASCII only: "É" would stay "É", so a filter or a sort that
    # ignores case would treat "Émile" and "émile" apart where PostgreSQL treats them alike.
    dbapi_connection.create_function("lower", 1, unicode_lower, deterministic=True)


def unicode_lower(value: Any) -> Any:
    """lower() as PostgreSQL's: each character on its own ("İ" stays one character)."""
    if value is None:
        return None
    text = value if isinstance(value, str) else str(value)
    return "".join(c if len(c.lower()) != 1 else c.lower() for c in text)


# Whether the current unit of work may write. Reads (GET pages) begin DEFERRED so that any
# number run side by side under WAL; writers begin IMMEDIATE so that they queue on
# busy_timeout instead of failing with "database is locked" when a reader upgrades to a writer.
sqlite_may_write: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "sqlite_may_write", default=True
)


def _sqlite_on_begin(conn: Any) -> None:
    conn.exec_driver_sql("BEGIN IMMEDIATE" if sqlite_may_write.get() else "BEGIN")


SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def write_intent_tween_factory(handler: Callable[[Request], Any], registry: Any) -> Any:
    def write_intent_tween(request: Request) -> Any:
        token = sqlite_may_write.set(request.method not in SAFE_METHODS)
        try:
            return handler(request)
        finally:
            sqlite_may_write.reset(token)

    return write_intent_tween


def retry_lost_connection_tween_factory(handler: Callable[[Request], Any], registry: Any) -> Any:
    """A GET or HEAD whose connection was found lost (a server restart, a failover, a backend
    killed less than PING_AFTER_IDLE_SECONDS after its last use, so not pinged) is tried
    again by pyramid_retry on a new connection, rather than answering 500: SQLAlchemy has by
    then invalidated the pool's connections made before the loss. Only reads: a write lost
    mid-transaction was rolled back by the server, but a view's other effects (a call to a
    processor) must not run twice. A loss while committing happens outside this tween (in
    pyramid_tm's) and is never retried: whether it committed is unknown."""

    def retry_lost_connection_tween(request: Request) -> Any:
        try:
            return handler(request)
        except DBAPIError as error:
            if error.connection_invalidated and request.method in READ_METHODS:
                mark_error_retryable(error)
            raise

    return retry_lost_connection_tween


# The largest value an Integer column holds on every database we run on (PostgreSQL's integer
# has 32 bits, SQLite's 64): a larger id names no row, and the database would refuse to
# compare with it (DataError on PostgreSQL, OverflowError beyond 64 bits on SQLite).
MAX_INTEGER_ID = 2**31 - 1
# The route placeholders that hold a row's id or number (patterns like {id:\d+}).
ID_PLACEHOLDERS = ("id", "row")


def possible_id(value: int) -> bool:
    return 0 < value <= MAX_INTEGER_ID


def ids_in_range_view(view: Callable[..., Any], info: Any) -> Callable[..., Any]:
    """404 for a path whose id cannot name a row, before the view (or the OpenAPI validation)
    runs: one rule for every route with an id, pages and API alike."""
    if not getattr(info.original_view, "__module__", "").startswith("clientpay_connect."):
        return view  # a host application's view: its ids are its own business

    def checked_view(context: Any, request: Request) -> Any:
        # Not while an exception view renders: the failed request's matchdict is still there.
        if getattr(request, "exception", None) is None and _impossible_id(request.matchdict):
            raise HTTPNotFound()
        return view(context, request)

    return checked_view


def _impossible_id(matchdict: dict[str, Any] | None) -> bool:
    for name in ID_PLACEHOLDERS:
        value = (matchdict or {}).get(name)
        if isinstance(value, str) and (not value.isdigit() or not possible_id(int(value))):
            return True
    return False


def get_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(bind=engine, expire_on_commit=False)


def get_tm_session(
    session_factory: sessionmaker[Session], transaction_manager: transaction.TransactionManager
) -> Session:
    """A session joined to ``transaction_manager``: it commits or aborts with it."""
    dbsession = session_factory()
    zope.sqlalchemy.register(dbsession, transaction_manager=transaction_manager)
    return dbsession


# --- Reads outside the transaction manager (house rule 13) ----------------------------------
#
# A read-only hot path that pyramid_tm's activate hook leaves out (``outside_tm_for_reads``)
# still needs a session to read with: ``read_session``. On PostgreSQL its connection is in the
# driver's autocommit, so each statement is its own transaction: no BEGIN, no ROLLBACK, no
# registration with a transaction manager (seven event listeners each time), only the
# statements. Each statement has a snapshot of its own, as under READ COMMITTED inside a
# transaction: a page whose statement carries its own total stays consistent with itself.

# The registry's engine whose connections are lent in autocommit (PostgreSQL only).
READ_ENGINE = "dbengine.reads"
# Where a request outside the transaction manager keeps its read session.
_READ_SESSION = "_clientpay_read_session"


class ReadOnlyError(RuntimeError):
    """A write through a session that is for reading only."""


class ReadOnlySession(Session):
    """A Session that refuses to write: no flush of a change, no statement but a SELECT.
    Outside any transaction a write would be committed there and then, or (SQLite) rolled
    back silently when the session closes; either way not what its caller meant."""


@event.listens_for(ReadOnlySession, "before_flush")
def _refuse_flush(session: Session, *_args: Any) -> None:
    if session.new or session.dirty or session.deleted:
        raise ReadOnlyError("this session is for reading only: it cannot flush a change")


@event.listens_for(ReadOnlySession, "do_orm_execute")
def _refuse_write(state: Any) -> None:
    if not state.is_select:
        raise ReadOnlyError(f"this session is for reading only: {state.statement!r}")


def read_session(request: Request) -> Session:
    """The session to read with: the request's own (request.dbsession) when pyramid_tm
    manages the request or the request has one already (a job's blank request is given its
    work's); else, for a request the activate hook left out, a ReadOnlySession closed when
    the request is finished."""
    if is_tm_active(request) or "dbsession" in request.__dict__:
        session: Session = request.dbsession
        return session
    found: Session | None = request.__dict__.get(_READ_SESSION)
    if found is None:
        found = _new_read_session(request.registry)
        setattr(request, _READ_SESSION, found)
        request.add_finished_callback(_close_read_session)
    return found


def _new_read_session(registry: Any) -> Session:
    # As the request's session factory is configured now (a host, or the test suite, may have
    # bound it to one connection: its sessions see what that connection sees).
    options = dict(registry["dbsession_factory"].kw)
    if options.get("bind") is registry["dbengine"] and READ_ENGINE in registry:
        options["bind"] = registry[READ_ENGINE]
    # On SQLite: the app's engine, whose BEGIN for a GET is DEFERRED (write_intent_tween):
    # one read snapshot for the request's statements, rolled back (nothing to undo) on close.
    return ReadOnlySession(**options)


def _close_read_session(request: Request) -> None:
    request.__dict__.pop(_READ_SESSION).close()


def read_engine(engine: Engine) -> Engine | None:
    """``engine`` lending its connections in the driver's autocommit, from the same pool
    (SQLAlchemy sets the connection's autocommit when it is lent and resets it when it comes
    back: attributes of psycopg's connection, not round trips); None but on PostgreSQL."""
    if engine.dialect.name != "postgresql":
        return None
    return engine.execution_options(isolation_level="AUTOCOMMIT")


class RowValues:
    """A row of ``statement``'s, read straight from the driver, as SQLAlchemy's execution
    would give it: each selected column's result processor (from its type, for the dialect)
    applied, for the columns that have one (dates and times; most are text and integers)."""

    def __init__(self, statement: Any, dialect: Any):
        processors = [
            column.type.dialect_impl(dialect).result_processor(dialect, None)
            for column in statement.selected_columns
        ]
        self.processors = tuple(
            (index, process) for index, process in enumerate(processors) if process is not None
        )

    def __call__(self, row: Any) -> tuple[Any, ...]:
        values = list(row)
        for index, process in self.processors:
            values[index] = process(values[index])
        return tuple(values)


class DriverStatement:
    """A Core SELECT compiled once for a dialect and run straight on the DBAPI cursor of a
    SQLAlchemy Connection, inside whatever transaction that connection is in; its rows as
    plain tuples of the statement's ``fields``.

    SQLAlchemy's own execution of a statement it has cached (looking the compiled form up by
    the statement's cache key, an execution context, the cursor's description, Result and
    Row objects) cost a page of Sent Pages 0.3 ms, a third of the database's time for it.
    Here the SQL (its IN lists expanded), the parameters' order and every bind's and
    column's type processing come from SQLAlchemy's compiler, once; a run converts the
    parameters given, runs the SQL and converts the values. Parameters the statement was
    made without a value for are bindparam(name, None, type_=...) ones. The engine's
    before_cursor_execute listeners still see each statement (logs, tests, benchmarks), and
    a driver's error comes out as SQLAlchemy's would (a lost connection invalidated)."""

    def __init__(self, statement: Any, dialect: Any):
        if not statement.is_select:
            raise ValueError("a DriverStatement only reads: give it a SELECT")
        compiled = statement.compile(dialect=dialect)
        state = compiled.construct_expanded_state()
        self.sql: str = state.statement
        self.fields = tuple(statement.selected_columns.keys())
        self._positions: Any = state.positiontup
        self._bind_processors: dict[str, Any] = dict(state.processors)
        for name, bind in compiled.binds.items():
            process = bind.type.dialect_impl(dialect).bind_processor(dialect)
            if name in state.parameters and process is not None:
                self._bind_processors[name] = process
        self._parameters = self._processed(dict(state.parameters))
        self._values = RowValues(statement, dialect)

    def _processed(self, values: dict[str, Any]) -> dict[str, Any]:
        for name, process in self._bind_processors.items():
            if name in values:
                values[name] = process(values[name])
        return values

    def rows(self, connection: Connection, params: dict[str, Any]) -> list[tuple[Any, ...]]:
        values = {**self._parameters, **self._processed(dict(params))}
        parameters: Any = values
        if self._positions:
            parameters = tuple(values[name] for name in self._positions)
        pooled = connection.connection
        cursor = pooled.cursor()
        try:
            connection.dispatch.before_cursor_execute(
                connection, cursor, self.sql, parameters, None, False
            )
            cursor.execute(self.sql, parameters)
            rows = cursor.fetchall()
        except connection.dialect.loaded_dbapi.Error as error:
            lost = connection.dialect.is_disconnect(error, pooled.driver_connection, cursor)
            if lost:
                connection.invalidate(error)
            raise DBAPIError.instance(
                self.sql,
                parameters,
                error,
                connection.dialect.loaded_dbapi.Error,
                hide_parameters=connection.engine.hide_parameters,
                connection_invalidated=lost,
                dialect=connection.dialect,
            ) from error
        finally:
            cursor.close()
        if not self._values.processors:
            return cast(list[tuple[Any, ...]], rows)
        return [self._values(row) for row in rows]


E = TypeVar("E")


def as_loaded(session: Session, entity: type[E], values: Sequence[Any]) -> E:
    """``values`` (one per column of ``entity``'s table, in the table's order) as an instance
    of ``entity`` in ``session``, as though a query had loaded it there (SQLAlchemy's
    make_transient_to_detached: no history, the identity of its primary key, then added);
    or the instance ``session`` holds for that identity already, as a query would give.

    For a row read by a DriverStatement: the ORM's loading of an object costs more than the
    round trip that read it."""
    keys, primary = _column_keys(cast(Any, entity))
    attributes = dict(zip(keys, values, strict=True))
    identity = sa_inspect(entity).identity_key_from_primary_key([attributes[k] for k in primary])
    found = session.identity_map.get(identity)
    if found is not None:
        return cast(E, found)
    instance = entity(**attributes)
    make_transient_to_detached(instance)
    session.add(instance)
    return instance


@functools.cache
def _column_keys(entity: type[Any]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The attribute of each column of ``entity``'s table, in order; those of its key."""
    mapper = sa_inspect(entity)
    keys = tuple(mapper.get_property_by_column(c).key for c in mapper.local_table.columns)
    primary = tuple(mapper.get_property_by_column(c).key for c in mapper.primary_key)
    return keys, primary


READ_METHODS = frozenset({"GET", "HEAD"})


def outside_tm_for_reads(
    routes: tuple[str, ...], host_hook: Callable[[Request], bool] | None, request: Request
) -> bool:
    """pyramid_tm's activate hook: False (no transaction) for a GET or HEAD of one of
    ``routes``, whose views read through ``read_session`` and write nothing. The tween runs
    before routing: the path is matched here against the routes (under whatever prefix a
    host mounted them)."""
    if request.method in READ_METHODS:
        mapper = request.registry.getUtility(IRoutesMapper)
        for name in routes:
            route = mapper.get_route(name)
            if route is not None and route.match(request.path_info) is not None:
                return False
    return host_hook(request) if host_hook is not None else True


def leave_reads_outside_tm(config: Configurator, *routes: str) -> None:
    """Have pyramid_tm leave GET and HEAD of ``routes`` out (house rule 13: the caller says
    why beside its call), after whatever activate hook is set already."""
    settings = config.get_settings()
    host_hook: Any = config.maybe_dotted(settings.get("tm.activate_hook"))
    # Read by pyramid_tm's tween factory when the app is made, after every includeme.
    settings["tm.activate_hook"] = functools.partial(outside_tm_for_reads, routes, host_hook)


def includeme(config: Configurator) -> None:
    settings = config.get_settings()
    settings["tm.manager_hook"] = "pyramid_tm.explicit_manager"
    # pyramid_tm would otherwise load the user (session cookie, then a query) at the start of
    # every request, only to write the id into the transaction's notes, which nothing reads
    # here (that is for ZODB's history); views that need the user load it themselves.
    settings.setdefault("tm.annotate_user", "false")
    config.include("pyramid_tm")
    config.include("pyramid_retry")
    engine = get_engine(settings)
    session_factory = get_session_factory(engine)
    config.registry["dbsession_factory"] = session_factory
    config.registry["dbengine"] = engine
    reads = read_engine(engine)
    if reads is not None:
        config.registry[READ_ENGINE] = reads

    def dbsession(request: Request) -> Session:
        return get_tm_session(session_factory, request.tm)

    config.add_request_method(dbsession, reify=True)
    config.add_tween(
        "clientpay_connect.db.write_intent_tween_factory", over="pyramid_tm.tm_tween_factory"
    )
    # Below the exception view, which would make the error a 500 page before pyramid_retry
    # asked whether it may try again.
    config.add_tween("clientpay_connect.db.retry_lost_connection_tween_factory", under=EXCVIEW)
    # After the security check (a stranger gets 401, not 404), before the rate limit and the
    # OpenAPI validation (api/openapi.py, throttle/deriver.py).
    config.add_view_deriver(ids_in_range_view, over=("rate_limited_view", "openapi_view_deriver"))
