"""The JSON shape of a posting (API.md's "posting object")."""

from __future__ import annotations

from typing import Any

from clientpay_connect.links.services import timestamp_json
from clientpay_connect.money import format_amount
from clientpay_connect.postings.models import Posting


def allocations_json(posting: Posting) -> list[dict[str, Any]]:
    return [
        {
            "invoice_id": str(a["invoice_id"]),
            "invoice_number": str(a.get("invoice_number") or ""),
            "amount": format_amount(int(a["amount"]), posting.currency),
            "external_id": a.get("external_id"),
        }
        for a in posting.allocations
    ]


def slip_json(posting: Posting) -> dict[str, Any] | None:
    if not posting.slip:
        return None
    return {
        **posting.slip,
        "lines": [
            {
                "invoice_number": line["invoice_number"],
                "amount": format_amount(int(line["amount"]), posting.currency),
            }
            for line in posting.slip.get("lines", [])
        ],
    }


def posting_json(posting: Posting, with_attempts: bool = False) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": posting.id,
        "link_id": posting.link_id,
        "payment_id": posting.payment_id,
        "connection_id": posting.connection_id,
        "status": posting.status,
        "key": posting.key,
        "amount": format_amount(posting.amount_minor, posting.currency),
        "currency": posting.currency,
        "received_on": posting.received_on.isoformat(),
        "allocations": allocations_json(posting),
        "external_ids": dict(posting.external_ids or {}),
        "attempt_count": posting.attempt_count,
        "last_error": posting.reason,
        "posted_at": timestamp_json(posting.posted_at),
        "entered_by_hand": posting.entered_by_hand,
        "removed_reason": posting.removed_reason or None,
        "removed_at": timestamp_json(posting.removed_at),
        "slip": slip_json(posting),
        "created_at": timestamp_json(posting.created_at),
    }
    if with_attempts:
        body["attempts"] = [
            {
                "at": timestamp_json(attempt.at),
                "outcome": attempt.outcome,
                "message": attempt.message,
                "external_ids": dict(attempt.external_ids or {}),
            }
            for attempt in posting.attempts
        ]
    return body
