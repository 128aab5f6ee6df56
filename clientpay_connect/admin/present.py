"""Recent changes (the audit trail) in words for people: "Sam Staff created a link for Jane
Client, $1,250.00", not "link.created PaymentLink 27 parent_link_id: None".

An event keeps only ids and a few values; the names it needs (a link's client, a user's
address) are read once for the whole list, from the firm's own rows.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from clientpay_connect.accounts.models import AuditEvent, User
from clientpay_connect.links.models import PaymentLink
from clientpay_connect.money import display_amount, parse_amount

SETTING_NAMES = {
    "default_email_message": "default email message",
    "disclaimer": "payment-page disclaimer",
    "recaptcha_enabled": "reCAPTCHA",
    "recaptcha_site_key": "reCAPTCHA site key",
    "recaptcha_secret": "reCAPTCHA secret key",
    "link_expiry_days": "link expiry",
    "time_zone": "time zone",
    "reply_to_email": "reply-to email",
}


@dataclass(frozen=True)
class Names:
    """What the events of one list refer to, read in one query per kind."""

    links: dict[str, PaymentLink]
    users: dict[str, User]

    @classmethod
    def of(cls, dbsession: Session, firm_id: int, events: Iterable[AuditEvent]) -> Names:
        events = list(events)
        return cls(
            links=_by_id(dbsession, PaymentLink, firm_id, _target_ids(events, "PaymentLink")),
            users=_by_id(dbsession, User, firm_id, _target_ids(events, "User")),
        )


def _target_ids(events: list[AuditEvent], kind: str) -> set[int]:
    return {int(e.target_id) for e in events if e.target_type == kind and e.target_id.isdigit()}


def _by_id(dbsession: Session, model: Any, firm_id: int, ids: set[int]) -> dict[str, Any]:
    if not ids:
        return {}
    rows = dbsession.scalars(select(model).where(model.firm_id == firm_id, model.id.in_(ids)))
    return {str(row.id): row for row in rows}


def person(user: User | None, details: dict[str, Any]) -> str:
    if user is not None:
        return user.name or user.email
    return "The command line" if details.get("by") == "cli" else "ClientPay"


def _amount(details: dict[str, Any], link: PaymentLink | None) -> str:
    currency = str(details.get("currency") or (link.currency if link else "USD"))
    try:
        return display_amount(parse_amount(str(details["amount"]), currency), currency)
    except (KeyError, ValueError):
        return display_amount(link.amount_minor, link.currency) if link is not None else ""


def _client(link: PaymentLink | None) -> str:
    if link is None:
        return "a client"
    return link.recipient_name or (link.emails[0] if link.emails else "a client")


def _link_created(who: str, event: AuditEvent, names: Names) -> str:
    link = names.links.get(event.target_id)
    details = event.details or {}
    text = f"{who} created a link for {_client(link)}, {_amount(details, link)}"
    if details.get("parent_link_id"):
        text += " (the balance of an earlier link)"
    if details.get("emailed"):
        text += ", and emailed it"
    return text


def _link_cancelled(who: str, event: AuditEvent, names: Names) -> str:
    link = names.links.get(event.target_id)
    amount = f", {_amount({}, link)}" if link is not None else ""
    return f"{who} cancelled the link for {_client(link)}{amount}"


def _user(event: AuditEvent, names: Names) -> str:
    user = names.users.get(event.target_id)
    return str((event.details or {}).get("email") or (user.email if user else "a user"))


def _settings(who: str, event: AuditEvent, names: Names) -> str:
    fields = [SETTING_NAMES.get(f, f.replace("_", " ")) for f in event.details.get("fields", [])]
    return f"{who} changed the settings" + (f": {', '.join(fields)}" if fields else "")


def _rows(details: dict[str, Any]) -> str:
    rows = int(details.get("rows") or 0)
    return f"{rows:,} row" + ("" if rows == 1 else "s")


Describe = Callable[[str, AuditEvent, Names], str]
SENTENCES: dict[str, Describe] = {
    "link.created": _link_created,
    "link.cancelled": _link_cancelled,
    "user.created": lambda who, e, n: (
        f"{who} added {_user(e, n)} as {e.details.get('role', 'staff')}"
    ),
    "user.renamed": lambda who, e, n: (
        f"{who} renamed {e.details.get('old') or _user(e, n)} to {e.details.get('new')}"
    ),
    "user.role_changed": lambda who, e, n: f"{who} made {_user(e, n)} {e.details.get('new')}",
    "user.deactivated": lambda who, e, n: f"{who} deactivated {_user(e, n)}",
    "user.reactivated": lambda who, e, n: f"{who} reactivated {_user(e, n)}",
    "user.password_reset": lambda who, e, n: f"{who} reset the password of {_user(e, n)}",
    "user.password_changed": lambda who, e, n: f"{who} changed their password",
    "user.password_reset_requested": lambda who, e, n: f"{who} asked for a password reset link",
    "user.password_reset_used": lambda who, e, n: f"{who} set a new password with a reset link",
    "user.signed_out_everywhere": lambda who, e, n: f"{who} signed out on every computer",
    "link.refund_requested": lambda who, e, n: (
        f"{who} refunded {e.details.get('amount', 'part')} of a payment"
    ),
    "link.reminders_off": lambda who, e, n: f"{who} turned reminders off for a link",
    "link.reminders_on": lambda who, e, n: f"{who} turned reminders back on for a link",
    "settings.updated": _settings,
    "notification_recipient.created": lambda who, e, n: (
        f"{who} added {e.details.get('email', 'someone')} to the notifications"
    ),
    "notification_recipient.updated": lambda who, e, n: f"{who} changed a notification recipient",
    "notification_recipient.removed": lambda who, e, n: (
        f"{who} removed {e.details.get('email', 'someone')} from the notifications"
    ),
    "merchant_account.created": lambda who, e, n: (
        f"{who} added the merchant account {e.details.get('name', '')}".rstrip()
    ),
    "merchant_account.updated": lambda who, e, n: f"{who} changed a merchant account",
    "api_token.created": lambda who, e, n: f"{who} created the API token “{e.details.get('name')}”",
    "api_token.revoked": lambda who, e, n: f"{who} revoked the API token “{e.details.get('name')}”",
    "bulk_upload.created": lambda who, e, n: (
        f"{who} uploaded {e.details.get('filename', 'a file')} ({_rows(e.details)})"
    ),
    "bulk_upload.send": lambda who, e, n: f"{who} sent links for {_rows(e.details)} of a file",
    "bulk_upload.generate": lambda who, e, n: (
        f"{who} generated links for {_rows(e.details)} of a file"
    ),
    "mail.retried": lambda who, e, n: f"{who} sent an email again",
    "firm.created": lambda who, e, n: "The firm was set up",
    "embed.launch_created": lambda who, e, n: f"{who} prepared a sign-in from the matter software",
    "embed.launch_used": lambda who, e, n: f"{who} opened ClientPay from the matter software",
}


def describe(event: AuditEvent, actor: User | None, names: Names) -> str:
    """One sentence for ``event``; an action without words of its own says what it is."""
    who = person(actor, event.details or {})
    sentence = SENTENCES.get(event.action)
    if sentence is not None:
        return sentence(who, event, names)
    return f"{who}: {event.action.replace('_', ' ').replace('.', ' ')}"
