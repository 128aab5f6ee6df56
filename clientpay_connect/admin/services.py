"""The admin's rules, shared by the pages and the API.

Every function that changes something takes the request (for the acting admin, the firm and
the audit trail), checks its input, raises ``FieldErrors`` (422) for bad input or a 409
``ApiError`` for a change the firm's state forbids, and writes an ``AuditEvent``.
Lookups are always scoped to the firm: another firm's row is "not found".
"""

from __future__ import annotations

import functools
import zoneinfo
from collections.abc import Iterable, Mapping
from typing import Any, TypeVar

from cryptography.fernet import InvalidToken
from pyramid.request import Request
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from clientpay_connect.accounts.models import (
    ROLE_ADMIN,
    ROLES,
    ApiToken,
    AuditEvent,
    Firm,
    User,
)
from clientpay_connect.accounts.services import (
    MIN_PASSWORD_LENGTH,
    audit,
    create_api_token,
    create_user,
    end_all_sessions,
    find_user_by_email,
    generate_password,
    is_valid_email,
    normalize_email,
    revoke_api_tokens,
    set_password,
)
from clientpay_connect.admin.models import (
    ACCOUNT_KINDS,
    DEFAULT_EMAIL_MESSAGE,
    METHOD_CARD,
    METHOD_ECHECK,
    NOTIFICATION_EVENTS,
    FirmSettings,
    MerchantAccount,
    NotificationRecipient,
)
from clientpay_connect.api.errors import FieldErrors, conflict, not_found
from clientpay_connect.db import Base, utcnow
from clientpay_connect.reminders.schedule import ScheduleProblems, checked_schedule
from clientpay_connect.security import firm_id

MAX_NAME_LENGTH = 200
MAX_MESSAGE_LENGTH = 5000
MAX_DISCLAIMER_LENGTH = 10000
MAX_KEY_LENGTH = 200
MIN_LINK_EXPIRY_DAYS = 1
MAX_LINK_EXPIRY_DAYS = 365
CURRENCIES = ("USD", "CAD", "EUR", "GBP", "AUD")
PROCESSORS = ("sandbox", "stripe")
METHODS = (METHOD_CARD, METHOD_ECHECK)
EVENT_LABELS = {
    "payment_received": "Payment received",
    "payment_failed": "Payment failed",
    "email_failed": "Email could not be delivered",
    "link_expired": "Link expired",
    "connection_needs_reauthorization": "Matter-system connection needs reauthorization",
    "posting_failed": "Posting to the matter system failed",
}
# Addresses are unique across the whole service, not per firm: sign-in asks only for the
# address (and a launch from the matter software names only the address), so two firms' people
# cannot share one. A taken address must therefore be refused, but the refusal says no more
# than that: the same words whether the address is this firm's user or another firm's, and
# nothing of who, where or in what state. (An admin could tell an address of their own list by
# looking at it, but learns nothing about other firms beyond "not available".)
EMAIL_UNAVAILABLE = "This email address is not available for a new user. Use a different address."
SETTINGS_FIELDS = (
    "default_email_message",
    "disclaimer",
    "recaptcha_enabled",
    "recaptcha_site_key",
    "recaptcha_secret",
    "link_expiry_days",
    "time_zone",
    "reply_to_email",
    "reminders",
)

Row = TypeVar("Row", bound=Base)


class Problems:
    """Field errors collected while checking input, raised together as one 422."""

    def __init__(self) -> None:
        self.errors: list[dict[str, str]] = []

    def add(self, field: str, message: str) -> None:
        self.errors.append({"field": field, "message": message})

    def raise_if_any(self) -> None:
        if self.errors:
            raise FieldErrors(self.errors)


def _firm_row(dbsession: Session, model: type[Row], firm: int, row_id: int) -> Row:
    row = dbsession.get(model, row_id)
    if row is None or getattr(row, "firm_id", None) != firm:
        raise not_found()
    return row


def _clean_text(value: Any) -> str:
    return str(value if value is not None else "").strip()


def _check_name(problems: Problems, field: str, name: str, required: bool = True) -> None:
    if required and not name:
        problems.add(field, "Enter a name.")
    elif len(name) > MAX_NAME_LENGTH:
        problems.add(field, f"Use at most {MAX_NAME_LENGTH} characters.")


def _check_length(problems: Problems, field: str, text: str, limit: int) -> None:
    if len(text) > limit:
        problems.add(field, f"Use at most {limit} characters.")


def _whole_number(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    text = _clean_text(value)
    # isdecimal, not isdigit: "²" is a digit that int() refuses; the length cap keeps int()
    # away from its limit on huge strings.
    return int(text) if text.isdecimal() and len(text) <= 9 else None


# ----------------------------------------------------------------------------- audit trail


def recent_audit_events(
    dbsession: Session, firm: int, limit: int = 50
) -> list[tuple[AuditEvent, User | None]]:
    """The firm's newest audit events with the person who acted (None for the system)."""
    rows = dbsession.execute(
        select(AuditEvent, User)
        .outerjoin(User, User.id == AuditEvent.actor_user_id)
        .where(AuditEvent.firm_id == firm)
        .order_by(AuditEvent.created_at.desc(), AuditEvent.id.desc())
        .limit(limit)
    ).all()
    return [(event, actor) for event, actor in rows]


# ----------------------------------------------------------------------------- settings


# In the zone folder of some systems, but not zones: "localtime" is whatever the server uses.
NOT_TIME_ZONES = frozenset({"localtime", "posixrules", "Factory"})


@functools.cache
def time_zones() -> frozenset[str]:
    # Reading the zone database walks the file system; the set does not change while we run.
    return frozenset(zoneinfo.available_timezones()) - NOT_TIME_ZONES


# The zones a US firm most likely means, by the names people use for them.
LIKELY_TIME_ZONES = (
    ("America/New_York", "Eastern Time (New York)"),
    ("America/Chicago", "Central Time (Chicago)"),
    ("America/Denver", "Mountain Time (Denver)"),
    ("America/Phoenix", "Arizona (Mountain Time, no daylight saving)"),
    ("America/Los_Angeles", "Pacific Time (Los Angeles)"),
    ("America/Anchorage", "Alaska Time (Anchorage)"),
    ("Pacific/Honolulu", "Hawaii Time (Honolulu)"),
)


def time_zone_choices() -> list[tuple[str, list[tuple[str, str]]]]:
    """The picker's groups: the likely zones first, by their common names, then every other
    zone by its IANA name (each zone once)."""
    likely = [(zone, label) for zone, label in LIKELY_TIME_ZONES if zone in time_zones()]
    chosen = {zone for zone, _label in likely}
    others = [(zone, zone.replace("_", " ")) for zone in sorted(time_zones() - chosen)]
    return [("United States", likely), ("All time zones", others)]


def firm_settings(dbsession: Session, firm: int) -> FirmSettings:
    """The firm's settings row (every firm gets one on creation; made here if one is missing)."""
    settings = dbsession.get(FirmSettings, firm)
    if settings is None:
        settings = FirmSettings(firm_id=firm)
        dbsession.add(settings)
        dbsession.flush()
    return settings


def update_settings(request: Request, changes: Mapping[str, Any]) -> FirmSettings:
    """Apply the given fields only; ``recaptcha_secret`` "" removes the stored secret."""
    settings = firm_settings(request.dbsession, firm_id(request))
    unknown = sorted(set(changes) - set(SETTINGS_FIELDS))
    problems = Problems()
    for field in unknown:
        problems.add(field, "This is not a setting.")
    _check_settings(problems, settings, changes)
    problems.raise_if_any()
    changed = _apply_settings(request, settings, changes)
    if changed:
        # Field names only: the disclaimer may be long and the secret must never be logged.
        audit(request, "settings.updated", settings, fields=changed)
    return settings


def _check_settings(problems: Problems, settings: FirmSettings, changes: Mapping[str, Any]) -> None:
    if "default_email_message" in changes:
        text = _clean_text(changes["default_email_message"])
        _check_length(problems, "default_email_message", text, MAX_MESSAGE_LENGTH)
    if "disclaimer" in changes:
        text = _clean_text(changes["disclaimer"])
        _check_length(problems, "disclaimer", text, MAX_DISCLAIMER_LENGTH)
    if "link_expiry_days" in changes:
        days = _whole_number(changes["link_expiry_days"])
        if days is None or not MIN_LINK_EXPIRY_DAYS <= days <= MAX_LINK_EXPIRY_DAYS:
            problems.add(
                "link_expiry_days",
                f"Enter a whole number of days from {MIN_LINK_EXPIRY_DAYS} "
                f"to {MAX_LINK_EXPIRY_DAYS}.",
            )
    if "time_zone" in changes and _clean_text(changes["time_zone"]) not in time_zones():
        problems.add("time_zone", "Choose a time zone from the list, such as America/New_York.")
    if "reply_to_email" in changes:
        email = normalize_email(_clean_text(changes["reply_to_email"]))
        if email and not is_valid_email(email):
            problems.add("reply_to_email", "Enter an email address like name@example.com.")
    if "reminders" in changes:
        try:
            checked_schedule(changes["reminders"], _default_message(settings, changes))
        except ScheduleProblems as wrong:
            for field, message in wrong.problems:
                problems.add(field, message)
    _check_recaptcha(problems, settings, changes)


def _default_message(settings: FirmSettings, changes: Mapping[str, Any]) -> str:
    """What a reminder without a message says: the firm's default email message, as of this
    change."""
    if "default_email_message" in changes:
        return _clean_text(changes["default_email_message"]) or DEFAULT_EMAIL_MESSAGE
    return settings.default_email_message or DEFAULT_EMAIL_MESSAGE


def _check_recaptcha(
    problems: Problems, settings: FirmSettings, changes: Mapping[str, Any]
) -> None:
    site_key = _clean_text(changes.get("recaptcha_site_key", settings.recaptcha_site_key))
    _check_length(problems, "recaptcha_site_key", site_key, MAX_KEY_LENGTH)
    if "recaptcha_secret" in changes:
        secret = _clean_text(changes["recaptcha_secret"])
        _check_length(problems, "recaptcha_secret", secret, MAX_KEY_LENGTH)
        has_secret = bool(secret)
    else:
        has_secret = settings.recaptcha_secret_encrypted is not None
    enabled = bool(changes.get("recaptcha_enabled", settings.recaptcha_enabled))
    if enabled and not site_key:
        problems.add("recaptcha_site_key", "Enter the site key to turn reCAPTCHA on.")
    if enabled and not has_secret:
        problems.add("recaptcha_secret", "Enter the secret key to turn reCAPTCHA on.")


def _apply_settings(
    request: Request, settings: FirmSettings, changes: Mapping[str, Any]
) -> list[str]:
    """Set the fields that differ; return their names."""
    new_values: dict[str, Any] = {}
    for field in ("default_email_message", "disclaimer", "recaptcha_site_key", "time_zone"):
        if field in changes:
            new_values[field] = _clean_text(changes[field])
    if "reply_to_email" in changes:
        new_values["reply_to_email"] = normalize_email(_clean_text(changes["reply_to_email"]))
    if "link_expiry_days" in changes:
        new_values["link_expiry_days"] = _whole_number(changes["link_expiry_days"])
    if "recaptcha_enabled" in changes:
        new_values["recaptcha_enabled"] = bool(changes["recaptcha_enabled"])
    if "reminders" in changes:
        # Checked already; again for its cleaned, ordered form.
        new_values["reminders"] = checked_schedule(
            changes["reminders"], _default_message(settings, changes)
        )
    changed = [name for name, value in new_values.items() if getattr(settings, name) != value]
    for name in changed:
        setattr(settings, name, new_values[name])
    if "recaptcha_secret" in changes:
        secret = _clean_text(changes["recaptcha_secret"])
        if secret != _stored_secret(request, settings):
            encrypted = request.encryptor.encrypt(secret) if secret else None
            settings.recaptcha_secret_encrypted = encrypted
            changed.append("recaptcha_secret")
    return sorted(changed)


def _stored_secret(request: Request, settings: FirmSettings) -> str:
    if settings.recaptcha_secret_encrypted is None:
        return ""
    try:
        secret: str = request.encryptor.decrypt(settings.recaptcha_secret_encrypted)
    except InvalidToken:
        # Encrypted under a key no longer configured: unreadable, so any new value replaces it.
        return ""
    return secret


# ----------------------------------------------------------------------------- users


def firm_users(dbsession: Session, firm: int) -> list[User]:
    return list(
        dbsession.execute(
            select(User).where(User.firm_id == firm).order_by(User.email, User.id)
        ).scalars()
    )


def firm_user(dbsession: Session, firm: int, user_id: int) -> User:
    return _firm_row(dbsession, User, firm, user_id)


def add_user(
    request: Request, email: str, name: str, role: str, password: str | None = None
) -> tuple[User, str | None]:
    """Create a user of the acting admin's firm; return it and the generated password, if any."""
    email = normalize_email(_clean_text(email))
    name = _clean_text(name)
    problems = Problems()
    if not is_valid_email(email):
        problems.add("email", "Enter an email address like name@example.com.")
    elif find_user_by_email(request.dbsession, email) is not None:
        problems.add("email", EMAIL_UNAVAILABLE)
    _check_name(problems, "name", name)
    if role not in ROLES:
        problems.add("role", "Choose admin or staff.")
    if password is not None and len(password) < MIN_PASSWORD_LENGTH:
        problems.add("password", f"Use at least {MIN_PASSWORD_LENGTH} characters.")
    problems.raise_if_any()
    generated = generate_password() if password is None else None
    firm = request.dbsession.get(Firm, firm_id(request))
    try:
        with request.dbsession.begin_nested():
            user = create_user(request.dbsession, firm, email, role, password or generated, name)
    except IntegrityError:
        # Another request took the address between our check and our insert.
        raise FieldErrors([{"field": "email", "message": EMAIL_UNAVAILABLE}]) from None
    audit(request, "user.created", user, email=user.email, role=user.role)
    return user, generated


def update_user(
    request: Request,
    user: User,
    *,
    name: str | None = None,
    role: str | None = None,
    active: bool | None = None,
) -> User:
    """Rename, change role, (de)activate; an admin never locks the firm (or themself) out."""
    problems = Problems()
    if name is not None:
        name = _clean_text(name)
        _check_name(problems, "name", name)
    if role is not None and role not in ROLES:
        problems.add("role", "Choose admin or staff.")
    problems.raise_if_any()
    _refuse_lockout(request, user, role, active)
    if name is not None and name != user.name:
        audit(request, "user.renamed", user, old=user.name, new=name)
        user.name = name
    if role is not None and role != user.role:
        audit(request, "user.role_changed", user, old=user.role, new=role)
        user.role = role
    if active is not None and active != user.active:
        _set_active(request, user, active)
    return user


def _set_active(request: Request, user: User, active: bool) -> None:
    user.active = active
    if not active:
        # Sessions opened before the deactivation must not come back on reactivation.
        end_all_sessions(user)
    # Nor its tokens, which an inactive user's refusal only hid: revoked on the way out, and
    # again on the way back in case any was left in force (a deactivation made outside this
    # page, straight in the database or by an older version). A reactivated person who needs
    # one gets a new token.
    revoked = revoke_api_tokens(user)
    audit(
        request,
        "user.reactivated" if active else "user.deactivated",
        user,
        email=user.email,
        api_tokens_revoked=revoked,
    )


def _refuse_lockout(request: Request, user: User, role: str | None, active: bool | None) -> None:
    loses_admin = (role is not None and role != ROLE_ADMIN) or active is False
    # The firm-wide rule first: when it applies it is the reason, whoever asks.
    if (
        user.is_admin
        and user.active
        and loses_admin
        and _other_active_admins(request.dbsession, user) == 0
    ):
        raise conflict("last_admin", "The firm must keep at least one active admin.")
    if user.id != request.user.id:
        return
    if active is False:
        raise conflict("cannot_deactivate_self", "You cannot deactivate your own account.")
    if role is not None and role != ROLE_ADMIN:
        raise conflict(
            "cannot_demote_self",
            "You cannot remove your own admin role; another admin can do it for you.",
        )


def _other_active_admins(dbsession: Session, user: User) -> int:
    # Lock the firm row first: two admins demoting each other at the same moment would
    # otherwise each see the other still in place and leave the firm with none (PostgreSQL;
    # SQLite writers are already serialised by BEGIN IMMEDIATE).
    dbsession.execute(select(Firm.id).where(Firm.id == user.firm_id).with_for_update())
    count = dbsession.execute(
        select(func.count(User.id)).where(
            User.firm_id == user.firm_id,
            User.id != user.id,
            User.role == ROLE_ADMIN,
            User.active.is_(True),
        )
    ).scalar_one()
    return int(count)


def reset_password(request: Request, user: User) -> str:
    """Give ``user`` a new generated password (shown once); their sessions end and their API
    tokens are revoked (set_password)."""
    password = generate_password()
    set_password(user, password)
    audit(request, "user.password_reset", user, email=user.email)
    return password


# ----------------------------------------------------------------------------- notifications


def firm_recipients(dbsession: Session, firm: int) -> list[NotificationRecipient]:
    return list(
        dbsession.execute(
            select(NotificationRecipient)
            .where(NotificationRecipient.firm_id == firm)
            .order_by(NotificationRecipient.email, NotificationRecipient.id)
        ).scalars()
    )


def firm_recipient(dbsession: Session, firm: int, recipient_id: int) -> NotificationRecipient:
    return _firm_row(dbsession, NotificationRecipient, firm, recipient_id)


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
    email = normalize_email(_clean_text(email))
    name = _clean_text(name)
    wanted = set(events)
    problems = Problems()
    if not is_valid_email(email):
        problems.add("email", "Enter an email address like name@example.com.")
    elif _recipient_exists(request, email, recipient):
        problems.add("email", "This address already receives notifications; edit it instead.")
    _check_name(problems, "name", name, required=False)
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


# ----------------------------------------------------------------------------- merchant accounts


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
    return _firm_row(dbsession, MerchantAccount, firm, account_id)


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
    processor: str = PROCESSORS[0],
    **stripe_keys: str,
) -> MerchantAccount:
    """A new account; ``stripe_keys`` are any of the three Stripe key fields."""
    values = {
        "name": name,
        "kind": kind,
        "currency": currency,
        "methods": list(methods),
        "processor": processor,
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
        cleaned["name"] = _clean_text(values["name"])
        _check_name(problems, "name", cleaned["name"])
        if cleaned["name"] and _merchant_name_taken(request, cleaned["name"], account):
            problems.add("name", "Another merchant account already has this name.")
    _check_choice(problems, values, cleaned, "kind", ACCOUNT_KINDS, "Choose operating or trust.")
    _check_choice(
        problems, values, cleaned, "processor", PROCESSORS, "Choose a supported processor."
    )
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
        key = _clean_text(values[field])
        _check_length(problems, field, key, MAX_KEY_LENGTH)
        if key and not key.startswith(prefixes):
            problems.add(field, f"Paste the key as Stripe shows it: it starts like {example}")
        cleaned[field] = key


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
    value = _clean_text(values[field])
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


# ----------------------------------------------------------------------------- API tokens


def firm_tokens(dbsession: Session, firm: int) -> list[ApiToken]:
    """The firm's tokens, newest first."""
    return list(
        dbsession.execute(
            select(ApiToken)
            .where(ApiToken.firm_id == firm)
            .order_by(ApiToken.created_at.desc(), ApiToken.id.desc())
        ).scalars()
    )


def firm_token(dbsession: Session, firm: int, token_id: int) -> ApiToken:
    return _firm_row(dbsession, ApiToken, firm, token_id)


def issue_token(request: Request, name: str) -> tuple[ApiToken, str]:
    """A token for the acting admin; the token itself is returned to be shown once."""
    name = _clean_text(name)
    problems = Problems()
    _check_name(problems, "name", name)
    problems.raise_if_any()
    row, token = create_api_token(request.dbsession, request.user, name)
    audit(request, "api_token.created", row, name=name, prefix=row.prefix)
    return row, token


def revoke_token(request: Request, token: ApiToken) -> None:
    if token.revoked_at is not None:
        raise conflict("already_revoked", "This token was already revoked.")
    token.revoked_at = utcnow()
    audit(request, "api_token.revoked", token, name=token.name, prefix=token.prefix)
