"""Periodic work for Sent Pages: keep the link counts short."""

from __future__ import annotations

import logging

from clientpay_connect.jobs import periodic_job
from clientpay_connect.sent.counts import compact_link_counts, firms_to_compact
from clientpay_connect.work import Work

log = logging.getLogger(__name__)

COMPACT_JOB = "sent.compact_counts"


@periodic_job(COMPACT_JOB, minute="*/10")
def compact_counts(work: Work) -> int:
    """Fold each firm's count deltas into one row a group; how many firms had deltas."""
    firms = firms_to_compact(work.dbsession)
    for firm_id in firms:
        compact_link_counts(work.dbsession, firm_id)
    if firms:
        log.info("compacted the link counts of %d firms", len(firms))
    return len(firms)
