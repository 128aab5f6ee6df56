"""Who hears about payments and failures: the firm's notification recipients."""

from __future__ import annotations

from collections.abc import Iterable

from pyramid.request import Request
from sqlalchemy import select
from sqlalchemy.orm import Session

from clientpay_connect.accounts.services import audit, is_valid_email, normalize_email
from clientpay_connect.admin.models import NOTIFICATION_EVENTS, NotificationRecipient
from clientpay_connect.admin.services.checks import Problems, check_name, clean_text, firm_row
from clientpay_connect.security import firm_id

EVENT_LABELS = {
    "payment_received": "Payment received",
    "payment_failed": "Payment failed",
    "email_failed": "Email could not be delivered",
    "link_expired": "Link expired",
    "connection_needs_reauthorization": "Matter-system connection needs reauthorization",
    "posting_failed": "Posting to the matter system failed",
}


def firm_recipients(dbsession: Session, firm: int) -> list[NotificationRecipient]:
    return list(
        dbsession.execute(
            select(NotificationRecipient)
            .where(NotificationRecipient.firm_id == firm)
            .order_by(NotificationRecipient.email, NotificationRecipient.id)
        ).scalars()
    )


def firm_recipient(dbsession: Session, firm: int, recipient_id: int) -> NotificationRecipient:
    return firm_row(dbsession, NotificationRecipient, firm, recipient_id)


def add_recipient(
    request: Request, email: str, name: str, events: Iterable[str]
) -> NotificationRecipient:
    email, name, chosen = _checked_recipient(request, None, email, name, events)
    recipient = NotificationRecipient(
        firm_id=firm_id(request), email=email, name=name, events=chosen
    )
    request.dbsession.add(recipient)
    request.dbsession.flush()
    audit(request, "notification_recipient.created", recipient, email=email, events=chosen)
    return recipient


def update_recipient(
    request: Request,
    recipient: NotificationRecipient,
    email: str,
    name: str,
    events: Iterable[str],
) -> NotificationRecipient:
    email, name, chosen = _checked_recipient(request, recipient, email, name, events)
    changed = {
        field: value
        for field, value in (("email", email), ("name", name), ("events", chosen))
        if getattr(recipient, field) != value
    }
    for field, value in changed.items():
        setattr(recipient, field, value)
    if changed:
        audit(request, "notification_recipient.updated", recipient, **changed)
    return recipient


def remove_recipient(request: Request, recipient: NotificationRecipient) -> None:
    audit(request, "notification_recipient.removed", recipient, email=recipient.email)
    request.dbsession.delete(recipient)
    request.dbsession.flush()


def _checked_recipient(
    request: Request,
    recipient: NotificationRecipient | None,
    email: str,
    name: str,
    events: Iterable[str],
) -> tuple[str, str, list[str]]:
    email = normalize_email(clean_text(email))
    name = clean_text(name)
    wanted = set(events)
    problems = Problems()
    if not is_valid_email(email):
        problems.add("email", "Enter an email address like name@example.com.")
    elif _recipient_exists(request, email, recipient):
        problems.add("email", "This address already receives notifications; edit it instead.")
    check_name(problems, "name", name, required=False)
    if wanted - set(NOTIFICATION_EVENTS):
        problems.add("events", "Choose from the listed events.")
    elif not wanted:
        problems.add("events", "Choose at least one event to be told about.")
    problems.raise_if_any()
    # In the order of NOTIFICATION_EVENTS, so that an unchanged choice compares equal.
    return email, name, [event for event in NOTIFICATION_EVENTS if event in wanted]


def _recipient_exists(
    request: Request, email: str, recipient: NotificationRecipient | None
) -> bool:
    query = select(NotificationRecipient.id).where(
        NotificationRecipient.firm_id == firm_id(request),
        NotificationRecipient.email == email,
    )
    if recipient is not None:
        query = query.where(NotificationRecipient.id != recipient.id)
    return request.dbsession.execute(query).first() is not None
