"""When the payer opened a link: the first time, and the last (to the minute).

The payment page is the hot path anyone may load, and payers reload it; recording an open
must not slow it or make it fail. So:

- the decision is made from what the page reads anyway: pay/facts.py reads last_opened_at in
  its one statement (kept out of the page cache's key), and a reload less than a minute after
  the recorded open writes nothing at all;
- otherwise one conditional UPDATE runs in a short transaction of its own once the view's
  response exists and the request's own (read-only) transaction has ended, as the API
  tokens' last use is recorded (security.py): never inside the page's transaction, which on
  SQLite began DEFERRED and would fail ("database is locked") if upgraded to a writer; and
  it waits at most LOCK_WAIT_MS for a lock, so that a long job or payment holding one
  cannot hold the payer's answer back;
- a page served from the page cache still comes through the view (the cache is consulted
  inside it, after the link is read), so cached pages are counted too.

A batch in memory flushed by a periodic job was the other choice: the page would do even
less, but opens would be lost when a process stops, and the job runs in another process than
the one that saw the open. One small write per link per minute at most does not need it.

Every open of a known link counts, whatever its status: a payer opening a link that was
cancelled, expired or already paid is worth knowing for the firm (they may be about to call,
or pay twice by other means). Unknown tokens, rate-limited requests and HEAD requests (link
checkers, mail scanners: nobody sees a page) record nothing.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from pyramid.registry import Registry
from pyramid.request import Request
from sqlalchemy import Connection, func, literal, or_, update
from sqlalchemy.exc import SQLAlchemyError

from clientpay_connect.db import UTCDateTime, sqlite_may_write
from clientpay_connect.links.models import PaymentLink
from clientpay_connect.work import Work

log = logging.getLogger(__name__)

# How precise last_opened_at is: a reload within this long after the recorded open is not
# written again.
OPEN_RESOLUTION = dt.timedelta(minutes=1)
# How long the write may wait for a lock that another transaction holds (a payment's, a
# job's; on SQLite, the database's one write lock). The payer's answer waits with it (a
# finished callback runs before the server sends the response), so an open that cannot be
# written by then is dropped: last_opened_at stays as it was, and the next open records it.
LOCK_WAIT_MS = 250


def is_due(last_opened_at: dt.datetime | None, now: dt.datetime) -> bool:
    """Whether an open at ``now`` is to be written, given the one already recorded."""
    return last_opened_at is None or now - last_opened_at >= OPEN_RESOLUTION


def note_open(
    request: Request, link_id: int, last_opened_at: dt.datetime | None, now: dt.datetime
) -> None:
    """Record the open at ``now`` after the request, unless one was recorded under a minute ago."""
    if not is_due(last_opened_at, now):
        return

    def record(request: Request) -> None:
        try:
            record_open(request.registry, link_id, now)
        except SQLAlchemyError:
            # Bookkeeping, not the payer's business (a lock held too long ends here too):
            # the next open records it.
            log.info("could not record an open of link %s", link_id, exc_info=True)

    request.add_finished_callback(record)


def record_open(registry: Registry, link_id: int, now: dt.datetime) -> None:
    """Set last_opened_at (and first_opened_at if unset) to ``now``; another process may have
    recorded an open meanwhile, hence the condition in the statement itself."""
    # Begun DEFERRED on SQLite: an IMMEDIATE begin would wait for the write lock as long as
    # the connection's busy timeout (30 s), before the short wait below could be set.
    may_write = sqlite_may_write.set(False)
    try:
        # The session's own connection: the wait is set on the one that writes, and the
        # session's UPDATE is what tells the transaction manager to commit.
        with Work.fresh(registry) as work, short_lock_wait(work.dbsession.connection()):
            work.dbsession.execute(
                _opened(link_id, now), execution_options={"synchronize_session": False}
            )
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


def _opened(link_id: int, now: dt.datetime) -> Any:
    return (
        update(PaymentLink)
        .where(
            PaymentLink.id == link_id,
            or_(
                PaymentLink.last_opened_at.is_(None),
                PaymentLink.last_opened_at <= now - OPEN_RESOLUTION,
            ),
        )
        .values(
            first_opened_at=func.coalesce(PaymentLink.first_opened_at, literal(now, UTCDateTime())),
            last_opened_at=now,
        )
    )
