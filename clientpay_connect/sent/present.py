"""How Sent Pages shows a link's values to people: labels, the firm's time zone, dates."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy.orm import Session

from clientpay_connect.admin.models import FirmSettings
from clientpay_connect.links.models import SOURCE_BULK, SOURCE_CONNECT, SOURCE_QUICK

SOURCE_LABELS = {
    SOURCE_QUICK: "Quick Link",
    SOURCE_BULK: "Bulk Upload",
    SOURCE_CONNECT: "Connect",
}


def source_label(source: str) -> str:
    return SOURCE_LABELS.get(source, source.replace("_", " ").capitalize())


def firm_zone(dbsession: Session, firm_id: int) -> ZoneInfo:
    """The firm's own time zone (its settings), UTC when it has none we know."""
    settings = dbsession.get(FirmSettings, firm_id)
    return zone_named(settings.time_zone if settings is not None else None)


def zone_named(name: str | None) -> ZoneInfo:
    """The zone a firm's settings name, UTC when they name none we know (for code that has
    read the settings already, such as a job going through every firm)."""
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def local_date(value: dt.datetime | None, zone: ZoneInfo) -> str:
    """A timestamp's day in the firm's time: "Mar 31, 2025" (a link created late in the
    evening in New York belongs to that day, not to the next one in UTC)."""
    if value is None:
        return ""
    return short_date(value.astimezone(zone).date())


def short_date(value: dt.date | None) -> str:
    if value is None:
        return ""
    return f"{value:%b} {value.day}, {value.year}"


def local_naive(value: dt.datetime | None, zone: ZoneInfo) -> dt.datetime | None:
    """For Excel, which has no time zones: the firm's wall-clock time."""
    if value is None:
        return None
    return value.astimezone(zone).replace(tzinfo=None)


def local_timestamp(value: dt.datetime | None, zone: ZoneInfo) -> str:
    """A timestamp in the firm's own time: "Mar 31, 2025, 3:04 PM EDT"."""
    if value is None:
        return ""
    local = value.astimezone(zone)
    hour = local.strftime("%I").lstrip("0")
    return f"{local:%b} {local.day}, {local.year}, {hour}:{local:%M %p %Z}"
