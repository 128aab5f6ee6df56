"""Many rows at the database driver's own speed, inside the session's transaction.

SQLAlchemy's executemany spends its time per value (type processing, a parameter dictionary
per row): for 100,000 rows of twenty columns that is seconds. Here values are made ready for
the database by the columns' own types, once for what every row shares and once per distinct
date, and the rows go to the driver as tuples: sqlite3's ``executemany`` loops in C, and
PostgreSQL takes them by ``COPY``. What is stored is exactly what SQLAlchemy would store, so
the ORM reads it back as usual.

Statements here are put together from our own Table and column names, never from input; the
values always travel as parameters (hence the S608 exemptions).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from itertools import islice
from json.encoder import encode_basestring_ascii
from typing import Any

import zope.sqlalchemy
from sqlalchemy import JSON, Table, event
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from clientpay_connect.bulk.reader import garbage_collection_paused

log = logging.getLogger(__name__)

BATCH = 5_000
# How long ANALYZE may wait for another's lock on the table (refresh_statistics).
ANALYZE_WAIT = "2s"
SQLITE_BULK_CACHE_KIB = 16 * 1024
POSTGRESQL_SORT_MEMORY = "32MB"


def wrote_with_core(dbsession: Session) -> None:
    """Tell the transaction that this session changed the database.

    zope.sqlalchemy notices ORM flushes and ORM bulk statements, not Core or driver-level
    statements: a transaction that only ran those would be rolled back at "commit"."""
    zope.sqlalchemy.mark_changed(dbsession)


def is_postgresql(dbsession: Session) -> bool:
    return dbsession.get_bind().dialect.name == "postgresql"


class TableWriter:
    """Rows for ``table``'s ``columns``, in that order, written by the driver."""

    def __init__(self, dbsession: Session, table: Table, columns: Sequence[str]):
        self.dbsession = dbsession
        self.connection: Connection = dbsession.connection()
        self.dialect = self.connection.dialect
        self.table = table
        self.columns = tuple(columns)

    def value(self, column: str, value: Any) -> Any:
        """``value`` as this database stores it in ``column`` (for values rows share)."""
        if value is None:
            return None
        column_type = self.table.c[column].type
        if isinstance(column_type, JSON):
            # As text: psycopg's JSON wrapper is for bound parameters, and COPY takes text.
            return json_text(value)
        process = column_type.dialect_impl(self.dialect).bind_processor(self.dialect)
        return value if process is None else process(value)

    def memoized(self, column: str) -> Callable[[Any], Any]:
        """``value`` for one column, remembered: a file repeats its dates."""
        seen: dict[Any, Any] = {}

        def convert(value: Any) -> Any:
            found = seen.get(value, seen)
            if found is seen:
                found = seen[value] = self.value(column, value)
            return found

        return convert

    def insert(self, rows: Iterable[Sequence[Any]]) -> None:
        wrote_with_core(self.dbsession)
        names = ", ".join(self.columns)
        # The tuples form no reference cycles: the cyclic collector would only rescan them.
        with garbage_collection_paused():
            if self.dialect.name == "postgresql":
                self._copy(names, rows)
            else:
                self._executemany(names, rows)

    def _executemany(self, names: str, rows: Iterable[Sequence[Any]]) -> None:
        marks = ", ".join("?" for _ in self.columns)
        statement = f"INSERT INTO {self.table.name} ({names}) VALUES ({marks})"  # noqa: S608
        rows = iter(rows)
        with larger_page_cache(self.connection):
            # In slices, so that the tuples of a whole file are never all held at once.
            while batch := list(islice(rows, BATCH)):
                self.connection.exec_driver_sql(statement, batch)

    def _copy(self, names: str, rows: Iterable[Sequence[Any]]) -> None:
        driver_connection: Any = self.connection.connection.driver_connection
        statement = f"COPY {self.table.name} ({names}) FROM STDIN"
        with driver_connection.cursor() as cursor, cursor.copy(statement) as copy:
            for row in rows:
                copy.write_row(row)


def refresh_statistics(dbsession: Session, columns: Mapping[Table, Sequence[str]]) -> None:
    """ANALYZE each table's ``columns`` on PostgreSQL, inside the transaction that filled it.

    PostgreSQL plans from statistics that autovacuum gathers a minute or more after a load:
    until then a table that just grew by 100,000 rows is planned as nearly empty, and the
    page of an upload's links (bulk_rows joined to payment_links) was planned as a nested
    loop over every link for every row, minutes instead of a millisecond. Analyzed here,
    the first page after the load is planned right. Only the columns the pages of an upload
    look rows up by: the table's size is counted all the same, and every other column's
    statistics (payment_links has thirty, and three expression indexes) cost the links'
    job as much again (1.9 s of 12 for 50,000 links), for plans autovacuum's own ANALYZE
    serves soon after. ANALYZE waits for no writer, but a running VACUUM or ANALYZE of the
    table holds the lock it needs: it waits a moment at most, then leaves the statistics to
    autovacuum rather than hold up the links."""
    if not is_postgresql(dbsession):
        return
    connection = dbsession.connection()
    for table, names in columns.items():
        listed = ", ".join(table.c[name].name for name in names)
        try:
            with connection.begin_nested():
                connection.exec_driver_sql(f"SET LOCAL lock_timeout = '{ANALYZE_WAIT}'")
                connection.exec_driver_sql(f"ANALYZE {table.name} ({listed})")
        except OperationalError:
            log.warning("ANALYZE %s waited too long; autovacuum will do it", table.name)
    # The savepoint is released, not rolled back: SET LOCAL would last until the commit.
    connection.exec_driver_sql("SET LOCAL lock_timeout = DEFAULT")


def more_sort_memory(connection: Connection) -> None:
    """PostgreSQL's memory for sorting at 32 MB until the transaction ends (SET LOCAL).

    The links are made a chunk of rows at a time, sorted into row order: 10,000 rows of
    about a kilobyte each spilled to a temporary file at the default 4 MB (EXPLAIN showed
    an external merge for every chunk)."""
    if connection.dialect.name == "postgresql":
        connection.exec_driver_sql(f"SET LOCAL work_mem = '{POSTGRESQL_SORT_MEMORY}'")


@contextmanager
def larger_page_cache(connection: Connection) -> Iterator[None]:
    """SQLite's page cache at 16 MB while many rows go in, then back to what it was.

    The default 2 MB cannot hold the unique index of 100,000 random token hashes, and each
    insert then rereads index pages: twice the time. Changed for this connection only, and
    given back before it returns to the pool.
    """
    if connection.dialect.name != "sqlite":
        yield
        return
    previous = connection.exec_driver_sql("PRAGMA cache_size").scalar()
    connection.exec_driver_sql(f"PRAGMA cache_size = {-SQLITE_BULK_CACHE_KIB}")
    try:
        yield
    finally:
        connection.exec_driver_sql(f"PRAGMA cache_size = {int(previous or -2000)}")


# Where a connection keeps its usual wal_autocheckpoint while a bulk commit has it off.
AUTOCHECKPOINT_KEY = "clientpay.bulk.wal_autocheckpoint"


def commit_without_checkpoint(dbsession: Session) -> None:
    """SQLite: this transaction's commit leaves its write-ahead log as it is; call
    ``checkpoint`` once it has committed.

    A commit that leaves the log longer than wal_autocheckpoint pages copies the whole log
    back into the database file before it returns: 100,000 links are some hundred megabytes
    of log, and their commit took 2.7 s (shared machine) during which the page still said
    the links were being saved. Off for this connection until it goes back to the pool,
    where _restore_autocheckpoint sets it back; the copy is then done by ``checkpoint``,
    after the links show."""
    if dbsession.get_bind().dialect.name != "sqlite":
        return
    connection = dbsession.connection()
    if not event.contains(connection.engine, "checkin", _restore_autocheckpoint):
        event.listen(connection.engine, "checkin", _restore_autocheckpoint)
    usual = connection.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar()
    connection.connection.info[AUTOCHECKPOINT_KEY] = int(usual if usual is not None else 1000)
    connection.exec_driver_sql("PRAGMA wal_autocheckpoint = 0")


def _restore_autocheckpoint(dbapi_connection: Any, record: Any) -> None:
    usual = record.info.pop(AUTOCHECKPOINT_KEY, None) if record is not None else None
    if usual is not None and dbapi_connection is not None:
        dbapi_connection.execute(f"PRAGMA wal_autocheckpoint = {int(usual)}")


def checkpoint(engine: Engine) -> None:
    """SQLite: copy the write-ahead log back into the database now (the work a commit
    after commit_without_checkpoint left), without waiting for readers or writers."""
    if engine.dialect.name != "sqlite":
        return
    connection = engine.raw_connection()
    try:
        # Outside any transaction: a checkpoint cannot run inside one.
        connection.driver_connection.execute("PRAGMA wal_checkpoint(PASSIVE)")  # type: ignore[union-attr]
    finally:
        connection.close()


def json_text(value: Any) -> str:
    """A JSON column's value as SQLAlchemy's default serializer writes it."""
    return json.dumps(value)


def json_strings(items: Iterable[str]) -> str:
    """``json_text`` of a list of strings, character for character, without json.dumps's
    per-call set-up (a sixth of the time, which counts for 100,000 rows): json's own C
    escaper on each string, and its default ", " between them."""
    return "[" + ", ".join(map(encode_basestring_ascii, items)) + "]"
