"""Who hears about payments and failures: the firm's notification recipients."""

from __future__ import annotations

from collections.abc import Iterable

from pyramid.request import Request
from sqlalchemy import select
from sqlalchemy.orm import Session

from clientpay_connect.accounts.models import User
from clientpay_connect.accounts.services import audit, is_valid_email, normalize_email
from clientpay_connect.admin.models import NOTIFICATION_EVENTS, NotificationRecipient
from clientpay_connect.admin.services.checks import Problems, check_name, clean_text, firm_row
from clientpay_connect.db import possible_id
from clientpay_connect.security import firm_id

EVENT_LABELS = {
    "payment_received": "Payment received",
    "payment_failed": "Payment failed",
    "email_failed": "Email bounced or could not be delivered",
    "link_expired": "Link expired",
    "connection_needs_reauthorization": "Matter-system connection needs reauthorization",
    "posting_failed": "Posting to the matter system failed",
    "reminder_failed": "Smart Reminder could not be delivered",
    "daily_digest": "Daily digest of the day's payments (each morning)",
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


def recipient_users(dbsession: Session, firm: int) -> list[User]:
    """The firm's users a recipient may be: the active ones."""
    return list(
        dbsession.execute(
            select(User)
            .where(User.firm_id == firm, User.active.is_(True))
            .order_by(User.name, User.email, User.id)
        ).scalars()
    )


def add_recipient(
    request: Request, email: str, name: str, events: Iterable[str], user_id: str = ""
) -> NotificationRecipient:
    """A recipient: one of the firm's users (``user_id``), or any address (``email``)."""
    user, email, name, chosen = _checked_recipient(request, None, user_id, email, name, events)
    recipient = NotificationRecipient(
        firm_id=firm_id(request),
        email=email,
        name=name,
        events=chosen,
        user_id=user.id if user else None,
    )
    request.dbsession.add(recipient)
    request.dbsession.flush()
    audit(
        request,
        "notification_recipient.created",
        recipient,
        email=email,
        events=chosen,
        user_id=recipient.user_id,
    )
    return recipient


def update_recipient(
    request: Request,
    recipient: NotificationRecipient,
    email: str,
    name: str,
    events: Iterable[str],
    user_id: str = "",
) -> NotificationRecipient:
    user, email, name, chosen = _checked_recipient(request, recipient, user_id, email, name, events)
    wanted = (
        ("email", email),
        ("name", name),
        ("events", chosen),
        ("user_id", user.id if user else None),
    )
    changed = {field: value for field, value in wanted if getattr(recipient, field) != value}
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
    user_id: str,
    email: str,
    name: str,
    events: Iterable[str],
) -> tuple[User | None, str, str, list[str]]:
    problems = Problems()
    user = _chosen_user(request, clean_text(user_id), problems)
    if user is not None:
        # The user's address, kept on the row for the list and the one-address rule; the
        # notices follow the user's current address (notifications/recipients.py).
        email, name = user.email, clean_text(name) or user.name
    else:
        email, name = normalize_email(clean_text(email)), clean_text(name)
        if not is_valid_email(email):
            problems.add("email", "Enter an email address like name@example.com.")
    wanted = set(events)
    if not problems.errors and _recipient_exists(request, email, recipient):
        field = "user_id" if user is not None else "email"
        problems.add(field, "This address already receives notifications; edit it instead.")
    check_name(problems, "name", name, required=False)
    if wanted - set(NOTIFICATION_EVENTS):
        problems.add("events", "Choose from the listed events.")
    elif not wanted:
        problems.add("events", "Choose at least one event to be told about.")
    problems.raise_if_any()
    # In the order of NOTIFICATION_EVENTS, so that an unchanged choice compares equal.
    return user, email, name, [event for event in NOTIFICATION_EVENTS if event in wanted]


def _chosen_user(request: Request, user_id: str, problems: Problems) -> User | None:
    """The firm's active user chosen in the form; None for "another address"."""
    if not user_id:
        return None
    user = (
        request.dbsession.get(User, int(user_id))
        if user_id.isdigit() and possible_id(int(user_id))
        else None
    )
    if user is None or user.firm_id != firm_id(request) or not user.active:
        problems.add("user_id", "Choose one of the firm's active users, or another address.")
        return None
    return user


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
