"""The daily digest's job."""

from __future__ import annotations

import datetime as dt
import logging

from clientpay_connect.db import utcnow
from clientpay_connect.jobs import periodic_job
from clientpay_connect.notifications.digest import DIGEST_JOB, send_due_digests
from clientpay_connect.work import Work

log = logging.getLogger(__name__)


# Every ten minutes: a firm's digest is due from 7:00 its time, whatever its zone's offset;
# a run with nothing due costs three small reads.
@periodic_job(DIGEST_JOB, minute="*/10")
def send_digests(work: Work, now: dt.datetime | None = None) -> int:
    """Send the daily digests due; ``now`` is given by tests and backfills."""
    count = send_due_digests(work, now or utcnow())
    if count:
        log.info("sent %d daily digests", count)
    return count
