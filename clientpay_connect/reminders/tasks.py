"""The Smart Reminders job."""

from __future__ import annotations

import datetime as dt
import logging

from clientpay_connect.db import utcnow
from clientpay_connect.jobs import periodic_job
from clientpay_connect.reminders.services import BATCH, SEND_JOB, send_due_reminders
from clientpay_connect.work import Work

log = logging.getLogger(__name__)


# Every ten minutes: a firm's day opens at 9:00 its time, whatever its zone's offset.
@periodic_job(SEND_JOB, minute="*/10")
def send_reminders(work: Work, now: dt.datetime | None = None, batch_size: int = BATCH) -> int:
    """Send the reminders due; ``now`` is given by tests and backfills, ``batch_size`` (links
    per transaction) by tests."""
    count = send_due_reminders(work, now or utcnow(), batch_size)
    if count:
        log.info("sent %d payment reminders", count)
    return count
