"""Queueing email: a row in the outbox in the caller's transaction, delivered after commit."""

from __future__ import annotations

from typing import Any

import transaction
from pyramid.registry import Registry
from sqlalchemy.orm import Session

from clientpay_connect.jobs import enqueue_after_commit
from clientpay_connect.mail.models import OutboxMessage

DELIVER_JOB = "mail.deliver"


def queue_email(
    dbsession: Session,
    tm: transaction.TransactionManager,
    registry: Registry,
    *,
    firm_id: int,
    kind: str,
    recipients: list[str],
    link_id: int | None = None,
    payment_id: int | None = None,
    params: dict[str, Any] | None = None,
) -> OutboxMessage:
    """Write the message row now; its delivery job is enqueued only if the transaction commits.

    ``params`` must hold nothing secret: the message is rendered from the link and payment
    when it is sent.
    """
    message = OutboxMessage(
        firm_id=firm_id,
        kind=kind,
        recipients=list(recipients),
        link_id=link_id,
        payment_id=payment_id,
        params=dict(params or {}),
    )
    dbsession.add(message)
    dbsession.flush()
    enqueue_after_commit(tm, registry, DELIVER_JOB, message.id)
    return message
