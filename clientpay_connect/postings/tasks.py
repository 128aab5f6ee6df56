"""The postings' jobs: write one posting, and the sweep that re-queues what a crash left."""

from __future__ import annotations

import datetime as dt
import logging

from clientpay_connect.db import utcnow
from clientpay_connect.jobs import job, periodic_job
from clientpay_connect.postings.services import SWEEP_JOB, SYNC_JOB
from clientpay_connect.postings.sync import due_for_sweep, sync_posting
from clientpay_connect.work import Work

log = logging.getLogger(__name__)


@job(SYNC_JOB)
def sync(work: Work, posting_id: int) -> str:
    """Write posting ``posting_id`` to the matter system (see postings/sync.py)."""
    outcome = sync_posting(work, posting_id)
    log.info("posting %s: %s", posting_id, outcome)
    return outcome


@periodic_job(SWEEP_JOB, minute="*")
def sweep(work: Work, now: dt.datetime | None = None) -> int:
    """Queue again every posting that is due and held by no worker: an enqueue lost after
    its commit, a worker killed mid-write (its lease expired), or a connection reconnected.
    A posting queued twice is written once: the job claims it before writing."""
    due = due_for_sweep(work.dbsession, now or utcnow())
    for posting_id in due:
        work.enqueue_after_commit(SYNC_JOB, posting_id)
    return len(due)
