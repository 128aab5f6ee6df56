"""Periodic work for Sent Pages: keep the link counts short."""

from __future__ import annotations

import logging

from clientpay_connect.jobs import periodic_job
from clientpay_connect.sent.counts import compact_link_counts, firms_to_compact
from clientpay_connect.work import Work

log = logging.getLogger(__name__)

COMPACT_JOB = "sent.compact_counts"


# Every minute: a firm's total sums its rows, and a minute of busy writing (a mail job marking
# links sent one statement each) adds a row a statement; when nothing changed it is one
# grouped scan of a table of a few rows a firm.
@periodic_job(COMPACT_JOB, minute="*")
def compact_counts(work: Work) -> int:
    """Fold each firm's count deltas into one row a group; how many firms had deltas."""
    firms = firms_to_compact(work.dbsession)
    for firm_id in firms:
        compact_link_counts(work.dbsession, firm_id)
    if firms:
        log.info("compacted the link counts of %d firms", len(firms))
    return len(firms)
