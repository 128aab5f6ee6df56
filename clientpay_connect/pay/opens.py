"""When the payer opened a link: the first time, and the last (to the minute).

The payment page is the hot path anyone may load, and payers reload it; recording an open
must not slow it or make it fail. So:

- the decision is made from what the page reads anyway: pay/facts.py reads last_opened_at in
  its one statement (kept out of the page cache's key), and a reload less than a minute after
  the recorded open writes nothing at all;
- otherwise one conditional UPDATE runs in a short transaction of its own once the view's
  response exists and the request's own (read-only) transaction has ended, as the API
  tokens' last use is recorded (security.py): never inside the page's transaction, which on
  SQLite began DEFERRED and would fail ("database is locked") if upgraded to a writer;
- a page served from the page cache still comes through the view (the cache is consulted
  inside it, after the link is read), so cached pages are counted too.

A batch in memory flushed by a periodic job was the other choice: the page would do even
less, but opens would be lost when a process stops, and the job runs in another process than
the one that saw the open. One small write per link per minute at most does not need it.

Every open of a known link counts, whatever its status: a payer opening a link that was
cancelled, expired or already paid is worth knowing for the firm (they may be about to call,
or pay twice by other means). Unknown tokens and rate-limited requests record nothing.
"""

from __future__ import annotations

import datetime as dt
import logging

from pyramid.registry import Registry
from pyramid.request import Request
from sqlalchemy import func, literal, or_, update
from sqlalchemy.exc import SQLAlchemyError

from clientpay_connect.db import UTCDateTime, sqlite_may_write
from clientpay_connect.links.models import PaymentLink
from clientpay_connect.work import Work

log = logging.getLogger(__name__)

# How precise last_opened_at is: a reload within this long after the recorded open is not
# written again.
OPEN_RESOLUTION = dt.timedelta(minutes=1)


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
            # Bookkeeping, not the payer's business: the next open records it.
            log.warning("could not record an open of link %s", link_id, exc_info=True)

    request.add_finished_callback(record)


def record_open(registry: Registry, link_id: int, now: dt.datetime) -> None:
    """Set last_opened_at (and first_opened_at if unset) to ``now``; another process may have
    recorded an open meanwhile, hence the condition in the statement itself."""
    may_write = sqlite_may_write.set(True)  # a writer: it queues for the write lock
    try:
        with Work.fresh(registry) as work:
            work.dbsession.execute(
                update(PaymentLink)
                .where(
                    PaymentLink.id == link_id,
                    or_(
                        PaymentLink.last_opened_at.is_(None),
                        PaymentLink.last_opened_at <= now - OPEN_RESOLUTION,
                    ),
                )
                .values(
                    first_opened_at=func.coalesce(
                        PaymentLink.first_opened_at, literal(now, UTCDateTime())
                    ),
                    last_opened_at=now,
                )
                .execution_options(synchronize_session=False)
            )
    finally:
        sqlite_may_write.reset(may_write)
