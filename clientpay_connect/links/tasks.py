"""Periodic work on links: expiry."""

from __future__ import annotations

import datetime as dt
import logging

from clientpay_connect.db import utcnow
from clientpay_connect.jobs import JobContext, periodic_job
from clientpay_connect.links.services import expire_due_links

log = logging.getLogger(__name__)

EXPIRE_JOB = "links.expire"


@periodic_job(EXPIRE_JOB, minute="*/5")
def expire_links(ctx: JobContext, now: dt.datetime | None = None) -> int:
    """Expire outstanding links past their time; ``now`` is given by tests and backfills."""
    count = expire_due_links(ctx.dbsession, now or utcnow())
    if count:
        log.info("expired %d payment links", count)
    return count
