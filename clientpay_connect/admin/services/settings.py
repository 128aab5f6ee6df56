"""The firm's settings: the email message, disclaimer, reCAPTCHA, link expiry, time zone,
reply-to address and reminders."""

from __future__ import annotations

import functools
import zoneinfo
from collections.abc import Mapping
from typing import Any

from cryptography.fernet import InvalidToken
from pyramid.request import Request
from sqlalchemy.orm import Session

from clientpay_connect.accounts.services import audit, is_valid_email, normalize_email
from clientpay_connect.admin.models import DEFAULT_EMAIL_MESSAGE, FirmSettings
from clientpay_connect.admin.services.checks import (
    MAX_KEY_LENGTH,
    Problems,
    check_length,
    clean_text,
    whole_number,
)
from clientpay_connect.reminders.schedule import ScheduleProblems, checked_schedule
from clientpay_connect.security import firm_id

# In the zone folder of some systems, but not zones: "localtime" is whatever the server uses.
NOT_TIME_ZONES = frozenset({"localtime", "posixrules", "Factory"})

MAX_MESSAGE_LENGTH = 5000
MAX_DISCLAIMER_LENGTH = 10000
MIN_LINK_EXPIRY_DAYS = 1
MAX_LINK_EXPIRY_DAYS = 365
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
        text = clean_text(changes["default_email_message"])
        check_length(problems, "default_email_message", text, MAX_MESSAGE_LENGTH)
    if "disclaimer" in changes:
        text = clean_text(changes["disclaimer"])
        check_length(problems, "disclaimer", text, MAX_DISCLAIMER_LENGTH)
    if "link_expiry_days" in changes:
        days = whole_number(changes["link_expiry_days"])
        if days is None or not MIN_LINK_EXPIRY_DAYS <= days <= MAX_LINK_EXPIRY_DAYS:
            problems.add(
                "link_expiry_days",
                f"Enter a whole number of days from {MIN_LINK_EXPIRY_DAYS} "
                f"to {MAX_LINK_EXPIRY_DAYS}.",
            )
    if "time_zone" in changes and clean_text(changes["time_zone"]) not in time_zones():
        problems.add("time_zone", "Choose a time zone from the list, such as America/New_York.")
    if "reply_to_email" in changes:
        email = normalize_email(clean_text(changes["reply_to_email"]))
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
        return clean_text(changes["default_email_message"]) or DEFAULT_EMAIL_MESSAGE
    return settings.default_email_message or DEFAULT_EMAIL_MESSAGE


def _check_recaptcha(
    problems: Problems, settings: FirmSettings, changes: Mapping[str, Any]
) -> None:
    site_key = clean_text(changes.get("recaptcha_site_key", settings.recaptcha_site_key))
    check_length(problems, "recaptcha_site_key", site_key, MAX_KEY_LENGTH)
    if "recaptcha_secret" in changes:
        secret = clean_text(changes["recaptcha_secret"])
        check_length(problems, "recaptcha_secret", secret, MAX_KEY_LENGTH)
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
            new_values[field] = clean_text(changes[field])
    if "reply_to_email" in changes:
        new_values["reply_to_email"] = normalize_email(clean_text(changes["reply_to_email"]))
    if "link_expiry_days" in changes:
        new_values["link_expiry_days"] = whole_number(changes["link_expiry_days"])
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
        secret = clean_text(changes["recaptcha_secret"])
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
