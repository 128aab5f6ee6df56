"""What a link's page shows of its refunds and disputes (templates/links/_refunds.jinja2)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from clientpay_connect.links.models import PaymentLink
from clientpay_connect.money import format_amount
from clientpay_connect.refunds.services import (
    link_disputes,
    link_refunds,
    refundable_minor,
    refusal,
)

STATUS_LABELS = {"pending": "Pending", "succeeded": "Refunded", "failed": "Failed"}


def refund_panel(dbsession: Session, link: PaymentLink) -> dict[str, Any]:
    """The refund panel's part of the link page's context."""
    refused = refusal(link)
    return {
        "refunds": link_refunds(dbsession, link),
        "refund_labels": STATUS_LABELS,
        "disputes": link_disputes(dbsession, link),
        "refundable": refundable_minor(link),
        # Prefilled with all that is left (as typed into the form: "123.45").
        "refundable_input": format_amount(refundable_minor(link), link.currency),
        "can_refund": refused is None,
        "refund_refusal": refused.message if refused is not None and link.amount_paid_minor else "",
    }
