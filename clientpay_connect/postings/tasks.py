"""The postings' jobs: write one posting, and the sweep that re-queues what a crash left."""

from __future__ import annotations

import datetime as dt
import logging

from clientpay_connect.db import utcnow
from clientpay_connect.jobs import job
from clientpay_connect.postings.services import SWEEP_JOB, SYNC_JOB
from clientpay_connect.postings.sync import Policy, requeue_for_sweep, sync_posting
from clientpay_connect.work import Work

log = logging.getLogger(__name__)


@job(SYNC_JOB)
def sync(work: Work, posting_id: int) -> str:
    """Write posting ``posting_id`` to the matter system (see postings/sync.py)."""
    outcome = sync_posting(work, posting_id)
    log.info("posting %s: %s", posting_id, outcome)
    return outcome


@job(SWEEP_JOB)
def sweep(work: Work, now: dt.datetime | None = None) -> int:
    """Queue again every posting the queue lost (see ``requeue_for_sweep``): an enqueue lost
    after its commit, a worker killed mid-write (its lease expired), or a connection that was
    reconnected. Every worker process runs it every ``clientpay.postings.sweep_seconds``
    (clientpay_connect/sweeps.py): Huey's periodic tasks cannot run more often than once a
    minute, and a killed worker's postings must come back sooner."""
    policy = Policy.from_settings(work.settings)
    idle = work.registry["clientpay.jobs"].pending_count() == 0
    lost = requeue_for_sweep(work.dbsession, now or utcnow(), policy.sweep_grace, idle)
    for posting_id in lost:
        work.enqueue_after_commit(SYNC_JOB, posting_id)
    return len(lost)
