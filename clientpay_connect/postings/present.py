"""The JSON shape of a posting (API.md's "posting object")."""

from __future__ import annotations

from typing import Any

from clientpay_connect.links.services import timestamp_json
from clientpay_connect.money import format_amount
from clientpay_connect.postings.models import (
    POSTING_FAILED,
    POSTING_INCOMPLETE,
    POSTING_MANUAL,
    POSTING_PENDING,
    POSTING_POSTED,
    POSTING_QUEUED,
    POSTING_REMOVED,
    Posting,
)


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


# How people read a posting's status and its attempts' outcomes.
STATUS_LABELS = {
    POSTING_PENDING: "Pending",
    POSTING_QUEUED: "Queued",
    POSTING_POSTED: "Posted",
    POSTING_INCOMPLETE: "Incomplete",
    POSTING_FAILED: "Failed",
    POSTING_MANUAL: "Manual required",
    POSTING_REMOVED: "Removed",
}
OUTCOME_LABELS = {
    "created": "Payment received",
    "queued": "Queued to post",
    "posted": "Posted",
    "pending": "Accepted, awaiting confirmation",
    "partially_posted": "Partly posted",
    "manual_required": "To be entered by hand",
    "rejected": "Refused by the matter system",
    "incomplete": "Data conflict",
    "transient": "Matter system unavailable; will retry",
    "rate_limited": "Matter system asked us to slow down; will retry",
    "waiting": "Waiting for the connection",
    "reallocated": "Re-allocated by staff",
    "removed": "Removed",
    "entered_by_hand": "Entered by hand",
}
# Why Post or Retry left a posting alone (post_postings' skip reasons: a status, or not_found).
SKIP_REASONS = {
    POSTING_QUEUED: "it is already queued",
    POSTING_POSTED: "it is already posted",
    POSTING_INCOMPLETE: "it is incomplete: re-allocate it first",
    POSTING_MANUAL: "its matter system takes payments by hand",
    POSTING_REMOVED: "it was removed",
    "not_found": "it was not found",
}


def status_label(status: str) -> str:
    return STATUS_LABELS.get(status, status.replace("_", " ").capitalize())


def outcome_label(outcome: str) -> str:
    return OUTCOME_LABELS.get(outcome, outcome.replace("_", " ").capitalize())


def skip_reason(reason: str) -> str:
    return SKIP_REASONS.get(reason, f"it is {status_label(reason).lower()}")
