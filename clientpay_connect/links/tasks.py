"""Periodic work on links: expiry."""

from __future__ import annotations

import datetime as dt
import logging

from clientpay_connect.db import utcnow
from clientpay_connect.jobs import periodic_job
from clientpay_connect.links.services import expire_due_links
from clientpay_connect.notifications.services import notify_links_expired
from clientpay_connect.work import Work

log = logging.getLogger(__name__)

EXPIRE_JOB = "links.expire"


@periodic_job(EXPIRE_JOB, minute="*/5")
def expire_links(work: Work, now: dt.datetime | None = None) -> int:
    """Expire outstanding links past their time; ``now`` is given by tests and backfills."""
    expired = expire_due_links(work.dbsession, now or utcnow())
    # In the expiry's own transaction: the notice goes if, and only if, the links expired.
    notify_links_expired(work, expired)
    count = len(expired)
    if count:
        log.info("expired %d payment links", count)
    return count
