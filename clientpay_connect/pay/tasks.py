"""The resolver: settles payments that a crash (or a processor that never answered) left
processing, by asking the processor what became of each charge; and bank debits (ACH) still
clearing, should Stripe's webhook not come, by asking again each time until they settle."""

from __future__ import annotations

import datetime as dt
import logging

from clientpay_connect.admin.models import MerchantAccount
from clientpay_connect.db import utcnow
from clientpay_connect.jobs import periodic_job
from clientpay_connect.links import services as links
from clientpay_connect.pay import services
from clientpay_connect.pay.processor import ProcessorUnavailable
from clientpay_connect.pay.processors import ProcessorNotOffered, not_offered_reason
from clientpay_connect.work import Work

log = logging.getLogger(__name__)

RESOLVE_JOB = "pay.resolve_processing"


@periodic_job(RESOLVE_JOB, minute="*/5")
def resolve_processing(work: Work, now: dt.datetime | None = None) -> int:
    """Settle every link processing for longer than the timeout; return how many were settled.

    The timeout must be well above the processor's own (clientpay.http_timeout): a request
    still waiting for its answer must not be overtaken.
    """
    now = now or utcnow()
    timeout = int(work.settings["clientpay.pay.processing_timeout_seconds"])
    stuck = services.stuck_payments(work.dbsession, now - dt.timedelta(seconds=timeout))
    settled = 0
    for item in stuck:
        # The processor is asked outside any transaction: on SQLite ours would lock it out.
        work.checkpoint()
        settled += _settle(work, item)
    return settled


def _settle(work: Work, item: services.StuckPayment) -> int:
    if item.payment_id is None or item.processor_key is None:
        # Claimed with no attempt recorded: nothing was sent to the processor.
        links.release(work.dbsession, item.link_id)
        return 1
    merchant_account = work.dbsession.get(MerchantAccount, item.merchant_account_id)
    if merchant_account is None:
        return 0
    account = services.processor_account(work, merchant_account)
    # Asked outside any transaction, like the charge was.
    work.checkpoint()
    # The processor that charged it, whatever the account has moved to since.
    processor = item.processor or merchant_account.processor
    try:
        payment = services.settle_from_processor(
            work, item.payment_id, item.processor_key, account, processor
        )
    except ProcessorNotOffered:
        log.error("payment %s: %s", item.payment_id, not_offered_reason(processor))
        return 0
    except ProcessorUnavailable:
        log.warning("payment %s: the processor is still not answering", item.payment_id)
        return 0
    # A bank debit still clearing is asked about again next time.
    return 0 if payment.status in services.UNSETTLED else 1
