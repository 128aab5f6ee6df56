"""Periodic work on launch links: forget the spent ones."""

from __future__ import annotations

import datetime as dt
import logging

from clientpay_connect.db import utcnow
from clientpay_connect.embed.services import purge_launches
from clientpay_connect.jobs import periodic_job
from clientpay_connect.work import Work

log = logging.getLogger(__name__)

PURGE_JOB = "embed.purge"


@periodic_job(PURGE_JOB, minute="17")
def purge_spent_launches(work: Work, now: dt.datetime | None = None) -> int:
    """Delete launches that expired over an hour ago (the audit trail keeps their use)."""
    count = purge_launches(work.dbsession, now or utcnow())
    if count:
        log.info("forgot %d spent launch links", count)
    return count
