"""Which of the firm's days a daily digest reports, and how it names them."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from clientpay_connect.notifications.digest import FirmDay, last_reportable_day

NEW_YORK = ZoneInfo("America/New_York")


def test_a_day_is_reported_from_seven_the_next_morning():
    monday = dt.date(2030, 6, 3)
    tuesday_early = dt.datetime(2030, 6, 4, 6, 59, tzinfo=NEW_YORK)
    tuesday_seven = dt.datetime(2030, 6, 4, 7, 0, tzinfo=NEW_YORK)
    assert last_reportable_day(tuesday_early) == monday - dt.timedelta(days=1)
    assert last_reportable_day(tuesday_seven) == monday


def test_the_firms_day_begins_at_its_own_midnight():
    day = FirmDay(1, NEW_YORK, dt.date(2030, 6, 3), dt.date(2030, 6, 3))
    assert day.starts(dt.date(2030, 6, 3)) == dt.datetime(2030, 6, 3, 4, 0, tzinfo=dt.UTC)
    # Winter: five hours behind UTC, not four.
    assert day.starts(dt.date(2030, 1, 7)) == dt.datetime(2030, 1, 7, 5, 0, tzinfo=dt.UTC)


def test_a_digest_names_its_day_or_its_days():
    one = FirmDay(1, NEW_YORK, dt.date(2030, 6, 3), dt.date(2030, 6, 3))
    several = FirmDay(1, NEW_YORK, dt.date(2030, 6, 5), dt.date(2030, 6, 9))
    assert one.period == "Monday, June 3, 2030"
    assert several.period == "June 5, 2030 to June 9, 2030"
