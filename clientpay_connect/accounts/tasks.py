"""Periodic work on staff sessions: forget the ones past their lifetime."""

from __future__ import annotations

import datetime as dt
import logging

from clientpay_connect.accounts.sessions import purge_sessions
from clientpay_connect.db import utcnow
from clientpay_connect.jobs import periodic_job
from clientpay_connect.work import Work

log = logging.getLogger(__name__)

PURGE_SESSIONS_JOB = "accounts.purge_sessions"


@periodic_job(PURGE_SESSIONS_JOB, minute="23")
def purge_ended_sessions(work: Work, now: dt.datetime | None = None) -> int:
    """Delete sessions past their lifetime: a sign-in also clears its person's, but someone
    who never signs in again would otherwise leave theirs behind."""
    count = purge_sessions(work.dbsession, now or utcnow())
    if count:
        log.info("forgot %d ended staff sessions", count)
    return count
