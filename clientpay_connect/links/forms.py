"""Validating a new link: one set of rules for the JSON API and the Quick Link page.

Every check runs and every problem is reported, so a person (or a program) fixes them all in
one go. Errors are ``{"field", "message"}`` pairs, the shape of the API's 422; a bad address
in ``emails`` is reported on ``emails.<index>`` so that the page can put it beside its input.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from clientpay_connect.accounts.services import is_valid_email, normalize_email
from clientpay_connect.admin.models import DEFAULT_EMAIL_MESSAGE, FirmSettings, MerchantAccount
from clientpay_connect.db import possible_id
from clientpay_connect.links.models import LOCALES
from clientpay_connect.links.services import NewLink
from clientpay_connect.money import AmountError, parse_amount

MAX_INVOICE_NUMBER = 100
MAX_RECIPIENT_NAME = 200
MAX_MESSAGE = 2000
MAX_EMAILS = 10
# People paste lists from their mail program: "a@x.com; b@y.com" or one per line.
EMAIL_SEPARATORS = re.compile(r"[,;\s]+")
DATE_SHAPE = re.compile(r"\d{4}-\d{2}-\d{2}")


FieldError = dict[str, str]


@dataclass
class LinkInput:
    """What was sent, as sent: strings (or None) from a form or a JSON body."""

    merchant_account_id: Any = None
    amount: Any = None
    invoice_number: Any = ""
    invoice_date: Any = None
    due_date: Any = None
    recipient_name: Any = ""
    message: Any = ""
    emails: list[Any] = field(default_factory=list)
    send_email: bool = False
    locale: Any = "en"


@dataclass
class Checked:
    """The outcome: a NewLink when there were no errors."""

    new: NewLink | None
    errors: list[FieldError]


class _Errors(list[FieldError]):
    def add(self, name: str, message: str) -> None:
        self.append({"field": name, "message": message})


def check_link_input(dbsession: Session, firm_id: int, data: LinkInput) -> Checked:
    errors = _Errors()
    account = _merchant_account(dbsession, firm_id, data.merchant_account_id, errors)
    currency = account.currency if account is not None else "USD"
    amount = _amount(data.amount, currency, errors)
    invoice_number = _text(data.invoice_number, "invoice_number", MAX_INVOICE_NUMBER, errors)
    invoice_date = _date(data.invoice_date, "invoice_date", errors)
    due_date = _date(data.due_date, "due_date", errors)
    if invoice_date and due_date and due_date < invoice_date:
        errors.add("due_date", "The due date is before the invoice date.")
    recipient_name = _text(data.recipient_name, "recipient_name", MAX_RECIPIENT_NAME, errors)
    message = _text(data.message, "message", MAX_MESSAGE, errors)
    emails = _emails(data.emails, data.send_email, errors)
    locale = _locale(data.locale, errors)
    if errors or account is None or amount is None:
        return Checked(None, list(errors))
    new = NewLink(
        merchant_account=account,
        amount_minor=amount,
        invoice_number=invoice_number,
        invoice_date=invoice_date,
        due_date=due_date,
        recipient_name=recipient_name,
        emails=emails,
        # A blank message means the firm's own words, fixed now so that reminders and the
        # link's page show what the payer actually received.
        message=message or default_message(dbsession, firm_id),
        locale=locale,
    )
    return Checked(new, [])


def default_message(dbsession: Session, firm_id: int) -> str:
    settings = dbsession.get(FirmSettings, firm_id)
    if settings is None or not settings.default_email_message.strip():
        return DEFAULT_EMAIL_MESSAGE
    return settings.default_email_message


def active_accounts(dbsession: Session, firm_id: int) -> list[MerchantAccount]:
    return list(
        dbsession.execute(
            select(MerchantAccount)
            .where(MerchantAccount.firm_id == firm_id, MerchantAccount.active.is_(True))
            .order_by(MerchantAccount.name, MerchantAccount.id)
        ).scalars()
    )


def _merchant_account(
    dbsession: Session, firm_id: int, value: Any, errors: _Errors
) -> MerchantAccount | None:
    if value is None or str(value).strip() == "":
        errors.add("merchant_account_id", "Choose a merchant account.")
        return None
    text = str(value).strip()
    account = None
    if text.isdigit() and possible_id(int(text)):
        account = dbsession.execute(
            select(MerchantAccount).where(
                MerchantAccount.id == int(text),
                MerchantAccount.firm_id == firm_id,
                MerchantAccount.active.is_(True),
            )
        ).scalar_one_or_none()
    if account is None:
        # Another firm's account reads exactly like a missing one: nothing to learn from it.
        errors.add("merchant_account_id", "Choose one of your firm's active merchant accounts.")
    return account


def _amount(value: Any, currency: str, errors: _Errors) -> int | None:
    try:
        return parse_amount("" if value is None else str(value), currency)
    except AmountError as exc:
        errors.add("amount", str(exc))
        return None


def _text(value: Any, name: str, limit: int, errors: _Errors) -> str:
    text = "" if value is None else str(value).strip()
    if len(text) > limit:
        errors.add(name, f"Use at most {limit} characters (this has {len(text)}).")
    return text


def _date(value: Any, name: str, errors: _Errors) -> dt.date | None:
    text = "" if value is None else str(value).strip()
    if not text:
        return None
    if DATE_SHAPE.fullmatch(text):
        try:
            return dt.date.fromisoformat(text)
        except ValueError:
            pass
    errors.add(name, f"“{text}” is not a date; use YYYY-MM-DD, for example 2025-03-31.")
    return None


def _emails(entries: list[Any], send_email: bool, errors: _Errors) -> list[str]:
    """Each entry may hold several addresses; each address is checked and named if wrong."""
    found: list[str] = []
    for index, entry in enumerate(entries):
        text = "" if entry is None else str(entry)
        bad = []
        for part in EMAIL_SEPARATORS.split(text.strip()):
            if not part:
                continue
            address = normalize_email(part)
            if not is_valid_email(address):
                bad.append(part)
            elif address not in found:
                found.append(address)
        if bad:
            errors.add(f"emails.{index}", _bad_addresses_message(bad))
    if len(found) > MAX_EMAILS:
        errors.add("emails", f"Send to at most {MAX_EMAILS} addresses (there are {len(found)}).")
    if send_email and not found and not any(e["field"].startswith("emails") for e in errors):
        errors.add("emails", "Enter at least one email address to send the link to.")
    return found


def _bad_addresses_message(bad: list[str]) -> str:
    if len(bad) == 1:
        return f"“{bad[0]}” is not a valid email address."
    listed = ", ".join(f"“{b}”" for b in bad)
    return f"These are not valid email addresses: {listed}."


def _locale(value: Any, errors: _Errors) -> str:
    text = "en" if value is None or str(value).strip() == "" else str(value).strip().lower()
    if text not in LOCALES:
        errors.add("locale", "Choose a language: en (English) or es (Spanish).")
        return "en"
    return text
