"""When the payer opened a link: the first time, and the last (to the minute).

The payment page is the hot path anyone may load, and payers reload it; recording an open
must not slow it, make it fail, or add a write per request. So:

- the decision is made from what the page reads anyway: pay/facts.py reads last_opened_at in
  its one statement (kept out of the page cache's key), and a reload less than a minute after
  the recorded open writes nothing at all;
- an open that is due is not written by its request: it joins this process's batch
  (``OpenBatch``), one entry per link however many requests saw it, and a thread writes the
  whole batch in one short transaction every ``clientpay.pay.opens_flush_seconds`` (one
  executemany of a conditional UPDATE), off every payer's response. A hundred payers opening
  their links in the same second cost one transaction, not a hundred; the page (read outside
  the transaction manager, readpath.py) never writes;
- the batch's transaction waits at most LOCK_WAIT_MS for a lock, so that a long job or
  payment holding one cannot keep opens queued behind it: the batch is dropped then, and the
  payers' next opens record them (last_opened_at is bookkeeping, not money);
- the batch is written when the app stops (atexit) too; a process that dies loses at most
  the opens of its last interval. Set the interval to 0 to write each open once its response
  is ready, in a batch of its own (the test suite does: its apps share one connection with
  the test, which a second thread must not use);
- a page served from the page cache still comes through the view (the cache is consulted
  inside it, after the link is read), so cached pages are counted too.

Every open of a known link counts, whatever its status: a payer opening a link that was
cancelled, expired or already paid is worth knowing for the firm (they may be about to call,
or pay twice by other means). Unknown tokens, rate-limited requests and HEAD requests (link
checkers, mail scanners: nobody sees a page) record nothing.
"""

from __future__ import annotations

import atexit
import datetime as dt
import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import cast

from pyramid.config import Configurator
from pyramid.registry import Registry
from pyramid.request import Request
from sqlalchemy import Connection, Table, bindparam, func, or_, update
from sqlalchemy.exc import SQLAlchemyError
from zope.sqlalchemy import mark_changed

from clientpay_connect.db import UTCDateTime, sqlite_may_write
from clientpay_connect.links.models import PaymentLink
from clientpay_connect.work import Work

log = logging.getLogger(__name__)

# How precise last_opened_at is: a reload within this long after the recorded open is not
# written again.
OPEN_RESOLUTION = dt.timedelta(minutes=1)
# How long the write may wait for a lock that another transaction holds (a payment's, a
# job's; on SQLite, the database's one write lock). Opens that cannot be written by then are
# dropped: last_opened_at stays as it was, and the next open records it. (With an interval of
# 0 the payer's answer waits with it: a finished callback runs before the server sends it.)
LOCK_WAIT_MS = 250
# How often the batch of opens is written (seconds); 0: each open once its response is ready.
FLUSH_SETTING = "clientpay.pay.opens_flush_seconds"
# Where the app's batch is kept.
BATCH = "clientpay.pay.open_batch"


def is_due(last_opened_at: dt.datetime | None, now: dt.datetime) -> bool:
    """Whether an open at ``now`` is to be written, given the one already recorded."""
    return last_opened_at is None or now - last_opened_at >= OPEN_RESOLUTION


def note_open(
    request: Request, link_id: int, last_opened_at: dt.datetime | None, now: dt.datetime
) -> None:
    """Record the open at ``now`` with the next batch, unless one was recorded under a minute
    ago."""
    if not is_due(last_opened_at, now):
        return
    batch: OpenBatch = request.registry[BATCH]
    batch.add(link_id, now)
    if not batch.threaded:
        request.add_finished_callback(lambda request: batch.flush())


class OpenBatch:
    """The opens this process has seen and not yet written: the latest per link."""

    def __init__(self, registry: Registry, interval: float):
        self._registry = registry
        self._interval = interval
        self._pending: dict[int, dt.datetime] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def threaded(self) -> bool:
        return self._interval > 0

    def add(self, link_id: int, now: dt.datetime) -> None:
        with self._lock:
            seen = self._pending.get(link_id)
            self._pending[link_id] = now if seen is None else max(seen, now)
            if self.threaded and self._thread is None:
                # Started by the first open rather than at start-up: a process that forks
                # after loading the app (a server's workers) gets a writer of its own.
                self._thread = threading.Thread(
                    target=self._run, name="clientpay-opens", daemon=True
                )
                self._thread.start()
                # What is pending when the process stops is written then.
                atexit.register(self.close)

    def flush(self) -> int:
        """Write every pending open in one transaction; how many links it covered."""
        with self._lock:
            pending, self._pending = self._pending, {}
        if not pending:
            return 0
        try:
            record_opens(self._registry, pending)
        except SQLAlchemyError:
            # Bookkeeping, not the payer's business (a lock held too long ends here too):
            # the next open of each link records it.
            log.info("could not record the opens of %d links", len(pending), exc_info=True)
        return len(pending)

    def close(self) -> None:
        """Stop the writer and write what is pending (the app is stopping)."""
        if self._thread is not None:
            atexit.unregister(self.close)
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self._interval + 5)
        self.flush()

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            self.flush()


def record_open(registry: Registry, link_id: int, now: dt.datetime) -> None:
    """Set last_opened_at (and first_opened_at if unset) to ``now``."""
    record_opens(registry, {link_id: now})


def record_opens(registry: Registry, opens: dict[int, dt.datetime]) -> None:
    """Record each link's open at its time, in one transaction; another process may have
    recorded an open meanwhile, hence the condition in the statement itself."""
    # Begun DEFERRED on SQLite: an IMMEDIATE begin would wait for the write lock as long as
    # the connection's busy timeout (30 s), before the short wait below could be set.
    may_write = sqlite_may_write.set(False)
    try:
        # The session's own connection: the wait is set on the one that writes.
        with Work.fresh(registry) as work, short_lock_wait(work.dbsession.connection()):
            work.dbsession.connection().execute(
                _OPENED,
                [
                    {"link_id": link_id, "now": now, "cutoff": now - OPEN_RESOLUTION}
                    for link_id, now in sorted(opens.items())
                ],
            )
            # Written on the session's connection, not through the session: tell the
            # transaction manager there is something to commit.
            mark_changed(work.dbsession)
    finally:
        sqlite_may_write.reset(may_write)


@contextmanager
def short_lock_wait(connection: Connection) -> Iterator[None]:
    """Let this transaction wait at most LOCK_WAIT_MS for a lock another one holds."""
    dialect = connection.dialect.name
    if dialect == "postgresql":
        # For this transaction only: the connection goes back to the pool as it was.
        connection.exec_driver_sql(f"SET LOCAL lock_timeout = '{LOCK_WAIT_MS}ms'")
        yield
    elif dialect == "sqlite":
        previous = int(connection.exec_driver_sql("PRAGMA busy_timeout").scalar() or 0)
        connection.exec_driver_sql(f"PRAGMA busy_timeout = {LOCK_WAIT_MS}")
        try:
            yield
        finally:
            connection.exec_driver_sql(f"PRAGMA busy_timeout = {previous}")
    else:
        yield


_LINKS = cast(Table, PaymentLink.__table__)
# One statement for every batch (compiled once); its rows in link order, so that two
# processes' batches take their row locks in the same order.
_OPENED = (
    update(_LINKS)
    .where(
        _LINKS.c.id == bindparam("link_id"),
        or_(_LINKS.c.last_opened_at.is_(None), _LINKS.c.last_opened_at <= bindparam("cutoff")),
    )
    .values(
        first_opened_at=func.coalesce(
            _LINKS.c.first_opened_at, bindparam("now", type_=UTCDateTime())
        ),
        last_opened_at=bindparam("now", type_=UTCDateTime()),
    )
)


def includeme(config: Configurator) -> None:
    settings = config.get_settings()
    batch = OpenBatch(config.registry, float(settings.get(FLUSH_SETTING) or 0))
    config.registry[BATCH] = batch
