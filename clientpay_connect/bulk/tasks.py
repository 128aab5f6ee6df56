"""The job that makes a large upload's links (see actions.py for its two phases), and the
sweep that queues it again when a worker died on it."""

from __future__ import annotations

import datetime as dt

from clientpay_connect.bulk.actions import (
    CREATE_LINKS_JOB,
    make_links_in_background,
    resume_stuck_uploads,
)
from clientpay_connect.db import utcnow
from clientpay_connect.jobs import job, periodic_job
from clientpay_connect.work import Work

RESUME_JOB = "bulk.resume_stuck"
QUIET_SETTING = "clientpay.bulk.stuck_after_seconds"


@job(CREATE_LINKS_JOB)
def create_links(work: Work, upload_id: int, user_id: int | None = None) -> str:
    return make_links_in_background(work, upload_id, user_id)


@periodic_job(RESUME_JOB, minute="*/5")
def resume_stuck(work: Work, now: dt.datetime | None = None) -> list[int]:
    """``now`` is given by tests."""
    quiet_for = dt.timedelta(seconds=int(work.settings.get(QUIET_SETTING) or 600))
    return resume_stuck_uploads(work, now or utcnow(), quiet_for)
