"""The refund resolver: asks the processor again for each refund whose answer was lost.

A pending refund holds its amount (nobody can refund it twice) until it is settled. Asking
again with the refund's own key is safe: the processor answers with the refund it made the
first time, or makes it now (staff asked for it); Stripe's webhook may settle it sooner.
"""

from __future__ import annotations

import datetime as dt
import logging

from clientpay_connect.db import utcnow
from clientpay_connect.jobs import periodic_job
from clientpay_connect.refunds import services
from clientpay_connect.work import Work

log = logging.getLogger(__name__)

RESOLVE_JOB = "refunds.resolve_pending"


@periodic_job(RESOLVE_JOB, minute="*/5")
def resolve_pending(work: Work, now: dt.datetime | None = None) -> int:
    """Settle every refund pending for longer than the payment's processing timeout (well
    above the processor's own); return how many were settled."""
    now = now or utcnow()
    timeout = int(work.settings["clientpay.pay.processing_timeout_seconds"])
    settled = 0
    for refund_id in services.pending_refunds(work.dbsession, now - dt.timedelta(seconds=timeout)):
        call = services.call_for(work, refund_id)
        if call is None:
            continue
        # The processor is asked outside any transaction of ours, as the request did.
        work.checkpoint()
        try:
            services.make_refund(work, call)
        except services.CannotRefund:
            settled += 1  # Refused: recorded failed, its amount free again.
        except services.RefundOutcomeUnknown:
            log.warning("refund %s: the processor is still not answering", refund_id)
            continue
        else:
            settled += 1
    return settled
