"""The job that makes a large upload's links (see actions.py for its two phases), and the
sweep that queues it again when a worker died on it."""

from __future__ import annotations

import datetime as dt

from clientpay_connect.bulk.actions import (
    CREATE_LINKS_JOB,
    Work,
    make_links_in_background,
    resume_stuck_uploads,
)
from clientpay_connect.db import utcnow
from clientpay_connect.jobs import JobContext, job, periodic_job

RESUME_JOB = "bulk.resume_stuck"
QUIET_SETTING = "clientpay.bulk.stuck_after_seconds"


@job(CREATE_LINKS_JOB)
def create_links(ctx: JobContext, upload_id: int, user_id: int | None = None) -> str:
    # Each phase runs in a transaction of its own (progress must be visible while the links
    # are prepared), so the context's own transaction is left empty.
    return make_links_in_background(ctx.registry, upload_id, user_id)


@periodic_job(RESUME_JOB, minute="*/5")
def resume_stuck(ctx: JobContext, now: dt.datetime | None = None) -> list[int]:
    """``now`` is given by tests."""
    quiet_for = dt.timedelta(seconds=int(ctx.settings.get(QUIET_SETTING) or 600))
    return resume_stuck_uploads(
        Work(ctx.dbsession, ctx.tm, ctx.registry), now or utcnow(), quiet_for
    )
