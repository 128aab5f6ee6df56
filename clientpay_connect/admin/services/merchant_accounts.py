"""The firm's operating and trust accounts, with their processor and Stripe keys."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from pyramid.request import Request
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from clientpay_connect.accounts.services import audit
from clientpay_connect.admin.models import (
    ACCOUNT_KINDS,
    METHOD_CARD,
    METHOD_ECHECK,
    MerchantAccount,
)
from clientpay_connect.admin.services.checks import (
    MAX_KEY_LENGTH,
    Problems,
    check_length,
    check_name,
    clean_text,
    firm_row,
)
from clientpay_connect.pay import processors
from clientpay_connect.security import firm_id

CURRENCIES = ("USD", "CAD", "EUR", "GBP", "AUD")
METHODS = (METHOD_CARD, METHOD_ECHECK)


def firm_merchant_accounts(dbsession: Session, firm: int) -> list[MerchantAccount]:
    """All of the firm's accounts, active first."""
    return list(
        dbsession.execute(
            select(MerchantAccount)
            .where(MerchantAccount.firm_id == firm)
            .order_by(MerchantAccount.active.desc(), MerchantAccount.name, MerchantAccount.id)
        ).scalars()
    )


def firm_merchant_account(dbsession: Session, firm: int, account_id: int) -> MerchantAccount:
    return firm_row(dbsession, MerchantAccount, firm, account_id)


MERCHANT_FIELDS = (
    "name",
    "kind",
    "processor",
    "currency",
    "methods",
    "active",
    *("stripe_secret_key", "stripe_publishable_key", "stripe_webhook_secret"),
)
# The account's Stripe keys, by the prefix Stripe gives each kind ("rk_": a restricted key).
STRIPE_KEY_PREFIXES = {
    "stripe_secret_key": (("sk_test_", "sk_live_", "rk_test_", "rk_live_"), "sk_live_…"),
    "stripe_publishable_key": (("pk_test_", "pk_live_"), "pk_live_…"),
    "stripe_webhook_secret": (("whsec_",), "whsec_…"),
}
# Kept encrypted, never shown back: an empty value keeps the stored one.
STRIPE_SECRETS = {
    "stripe_secret_key": "stripe_secret_key_encrypted",
    "stripe_webhook_secret": "stripe_webhook_secret_encrypted",
}


def add_merchant_account(
    request: Request,
    name: str,
    kind: str,
    currency: str,
    methods: Iterable[str],
    processor: str | None = None,
    **stripe_keys: str,
) -> MerchantAccount:
    """A new account, on ``processor`` or the instance's default; ``stripe_keys`` are any of
    the three Stripe key fields."""
    values = {
        "name": name,
        "kind": kind,
        "currency": currency,
        "methods": list(methods),
        "processor": processor or processors.default_name(request.registry),
        **stripe_keys,
    }
    cleaned = _checked_merchant_values(request, None, values)
    account = MerchantAccount(firm_id=firm_id(request), active=True)
    _assign_merchant_values(request, account, cleaned)
    request.dbsession.add(account)
    request.dbsession.flush()
    audit(request, "merchant_account.created", account, **_merchant_summary(account))
    return account


def update_merchant_account(
    request: Request, account: MerchantAccount, changes: Mapping[str, Any]
) -> MerchantAccount:
    """Apply the given fields (``MERCHANT_FIELDS``) only."""
    cleaned = _checked_merchant_values(request, account, changes)
    before = _merchant_summary(account)
    _assign_merchant_values(request, account, cleaned)
    after = _merchant_summary(account)
    changed = {field: after[field] for field in after if after[field] != before[field]}
    if "active" in changed:
        action = "reactivated" if account.active else "deactivated"
        audit(request, f"merchant_account.{action}", account, name=account.name)
        del changed["active"]
    if changed:
        audit(request, "merchant_account.updated", account, **changed)
    return account


def _merchant_summary(account: MerchantAccount) -> dict[str, Any]:
    return {
        "name": account.name,
        "kind": account.kind,
        "processor": account.processor,
        "currency": account.currency,
        "methods": account.methods,
        "active": account.active,
        # Whether keys are set, and the publishable one (public by nature); never a secret.
        "stripe_publishable_key": account.stripe_publishable_key,
        "stripe_secret_key_set": account.stripe_secret_key_encrypted is not None,
        "stripe_webhook_secret_set": account.stripe_webhook_secret_encrypted is not None,
    }


def _checked_merchant_values(
    request: Request, account: MerchantAccount | None, values: Mapping[str, Any]
) -> dict[str, Any]:
    problems = Problems()
    for field in sorted(set(values) - set(MERCHANT_FIELDS)):
        problems.add(field, "This is not a merchant account field.")
    cleaned: dict[str, Any] = {}
    if "name" in values:
        cleaned["name"] = clean_text(values["name"])
        check_name(problems, "name", cleaned["name"])
        if cleaned["name"] and _merchant_name_taken(request, cleaned["name"], account):
            problems.add("name", "Another merchant account already has this name.")
    _check_choice(problems, values, cleaned, "kind", ACCOUNT_KINDS, "Choose operating or trust.")
    _check_processor(request, problems, account, values, cleaned)
    _check_choice(
        problems, values, cleaned, "currency", CURRENCIES, f"Choose one of {', '.join(CURRENCIES)}."
    )
    if "methods" in values:
        methods = set(values["methods"] or ())
        if methods - set(METHODS):
            problems.add("methods", "Choose card, eCheck or both.")
        elif not methods:
            problems.add("methods", "Accept at least one payment method: card or eCheck.")
        cleaned["methods"] = methods
    if "active" in values:
        cleaned["active"] = bool(values["active"])
    _check_stripe_keys(problems, values, cleaned)
    problems.raise_if_any()
    return cleaned


def _check_stripe_keys(
    problems: Problems, values: Mapping[str, Any], cleaned: dict[str, Any]
) -> None:
    for field, (prefixes, example) in STRIPE_KEY_PREFIXES.items():
        if field not in values:
            continue
        key = clean_text(values[field])
        check_length(problems, field, key, MAX_KEY_LENGTH)
        if key and not key.startswith(prefixes):
            problems.add(field, f"Paste the key as Stripe shows it: it starts like {example}")
        cleaned[field] = key


def _check_processor(
    request: Request,
    problems: Problems,
    account: MerchantAccount | None,
    values: Mapping[str, Any],
    cleaned: dict[str, Any],
) -> None:
    """A processor this instance offers; an account may keep one it no longer offers (its
    other fields can still be edited), and takes no payment until it is moved."""
    offered = tuple(processors.offered(request.registry))
    kept = (account.processor,) if account is not None else ()
    names = ", ".join(offered)
    message = f"Choose a processor this instance offers: {names} (the sandbox only on an "
    message += "instance for development)."
    _check_choice(problems, values, cleaned, "processor", offered + kept, message)


def _check_choice(
    problems: Problems,
    values: Mapping[str, Any],
    cleaned: dict[str, Any],
    field: str,
    choices: tuple[str, ...],
    message: str,
) -> None:
    if field not in values:
        return
    value = clean_text(values[field])
    if field == "currency":
        value = value.upper()
    if value in choices:
        cleaned[field] = value
    else:
        problems.add(field, message)


def _merchant_name_taken(request: Request, name: str, account: MerchantAccount | None) -> bool:
    # Staff pick an account by its name when they send a link: two alike would be a trap.
    query = select(MerchantAccount.id).where(
        MerchantAccount.firm_id == firm_id(request),
        func.lower(MerchantAccount.name) == name.lower(),
    )
    if account is not None:
        query = query.where(MerchantAccount.id != account.id)
    return request.dbsession.execute(query).first() is not None


def _assign_merchant_values(
    request: Request, account: MerchantAccount, cleaned: Mapping[str, Any]
) -> None:
    for field in ("name", "kind", "processor", "currency", "active", "stripe_publishable_key"):
        if field in cleaned:
            setattr(account, field, cleaned[field])
    if "methods" in cleaned:
        account.accepts_card = METHOD_CARD in cleaned["methods"]
        account.accepts_echeck = METHOD_ECHECK in cleaned["methods"]
    for field, column in STRIPE_SECRETS.items():
        if cleaned.get(field):
            setattr(account, column, request.encryptor.encrypt(cleaned[field]))
