"""The engine for one matter database, and the database's errors said in the adapter's terms."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import create_engine, event, exc, make_url
from sqlalchemy.engine import Connection, Engine

from clientpay_connect.connect.interfaces import AdapterError, Permanent, Transient

# An execution option: this connection's transaction writes (SQLite then takes the write lock
# at BEGIN, so that a writer never fails to upgrade from a reader; see sqlite_on_begin).
WRITES = "clientpay_writes"

# Server error codes that no retry will cure: the account, its password or its grants.
PG_PERMANENT_SQLSTATE_PREFIXES = ("28", "42501", "3D000")
MYSQL_PERMANENT_ERRNOS = frozenset({1044, 1045, 1049, 1142, 1143, 1227})


def matter_engine(url: str, connect_timeout: int) -> Engine:
    """An engine of its own for one connection's database (``close()`` disposes it)."""
    try:
        parsed = make_url(url)
    except exc.ArgumentError as error:
        raise Permanent("The matter database URL is not a valid SQLAlchemy URL.") from error
    backend = parsed.get_backend_name()
    try:
        if backend == "sqlite":
            return _sqlite_engine(url)
        connect_args: dict[str, Any] = {}
        if backend in ("postgresql", "mysql", "mariadb"):
            connect_args["connect_timeout"] = connect_timeout
        return create_engine(url, pool_pre_ping=True, pool_recycle=3600, connect_args=connect_args)
    except (exc.ArgumentError, exc.NoSuchModuleError, ImportError) as error:
        raise Permanent(f"No database driver for {parsed.drivername!r} is installed.") from error


def _sqlite_engine(url: str) -> Engine:
    engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
    event.listen(engine, "connect", _sqlite_on_connect)
    event.listen(engine, "begin", _sqlite_on_begin)
    return engine


def _sqlite_on_connect(dbapi_connection: Any, _record: Any) -> None:
    # pysqlite's own transaction handling would begin too late for a writer; we emit BEGIN
    # ourselves (SQLAlchemy's documented recipe).
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def _sqlite_on_begin(conn: Connection) -> None:
    writes = conn.get_execution_options().get(WRITES, False)
    conn.exec_driver_sql("BEGIN IMMEDIATE" if writes else "BEGIN")


@contextmanager
def translated_errors() -> Iterator[None]:
    """Database errors as the adapter's: Transient when the same call may succeed later
    (connection lost, timeout, deadlock, lock wait), Permanent otherwise (integrity,
    permissions, a table or column that is not there)."""
    try:
        yield
    except AdapterError:
        raise
    except exc.SQLAlchemyError as error:
        raise classify(error) from error


def classify(error: exc.SQLAlchemyError) -> AdapterError:
    message = _short(error)
    if _is_permanent_server_error(error):
        return Permanent(f"The matter database refused: {message}")
    if isinstance(
        error,
        exc.OperationalError | exc.InterfaceError | exc.InternalError | exc.TimeoutError,
    ) or (isinstance(error, exc.DBAPIError) and error.connection_invalidated):
        return Transient(f"The matter database did not answer: {message}")
    if isinstance(error, exc.DisconnectionError):
        return Transient(f"The matter database did not answer: {message}")
    return Permanent(f"The matter database refused: {message}")


def _is_permanent_server_error(error: exc.SQLAlchemyError) -> bool:
    orig = getattr(error, "orig", None)
    sqlstate = getattr(orig, "sqlstate", None)
    if isinstance(sqlstate, str) and sqlstate.startswith(PG_PERMANENT_SQLSTATE_PREFIXES):
        return True
    args: tuple[Any, ...] = tuple(getattr(orig, "args", ()))
    return bool(args) and isinstance(args[0], int) and args[0] in MYSQL_PERMANENT_ERRNOS


def _short(error: exc.SQLAlchemyError) -> str:
    # The driver's own first line: never the statement or its parameters (payer names).
    orig = getattr(error, "orig", None) or error
    text = str(orig).strip().splitlines()
    return (text[0] if text else type(orig).__name__)[:300]
