"""The schedule's rules (reminders/schedule.py) and the business hours, without a database."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from clientpay_connect.reminders.schedule import (
    ScheduleProblems,
    checked_schedule,
    reminders_of,
)
from clientpay_connect.reminders.services import within_business_hours

DEFAULT = "Please pay."


def fields(value: object) -> list[str]:
    with pytest.raises(ScheduleProblems) as wrong:
        checked_schedule(value, DEFAULT)
    return [field for field, _message in wrong.value.problems]


def test_a_schedule_is_kept_in_time_order_due_date_reminders_first():
    given = [
        {"days": 3, "relative_to": "sent", "message": "c"},
        {"days": 7, "relative_to": "due_date", "message": "b"},
        {"days": 0, "relative_to": "due_date", "message": ""},
        {"days": -2, "relative_to": "due_date", "message": "a"},
    ]
    assert [
        (r["relative_to"], r["days"], r["message"]) for r in checked_schedule(given, DEFAULT)
    ] == [
        ("due_date", -2, "a"),
        ("due_date", 0, DEFAULT),
        ("due_date", 7, "b"),
        ("sent", 3, "c"),
    ]


def test_empty_is_off_and_more_than_four_is_refused():
    assert checked_schedule([], DEFAULT) == []
    assert fields([{"days": d, "relative_to": "due_date"} for d in range(5)]) == ["reminders"]
    assert fields({"days": 1}) == ["reminders"]


@pytest.mark.parametrize(
    ("item", "field"),
    [
        ("weekly", "reminders.0"),
        ({"days": True, "relative_to": "due_date"}, "reminders.0.days"),
        ({"days": "3", "relative_to": "due_date"}, "reminders.0.days"),
        ({"days": 366, "relative_to": "due_date"}, "reminders.0.days"),
        ({"days": -366, "relative_to": "due_date"}, "reminders.0.days"),
        ({"days": 0, "relative_to": "sent"}, "reminders.0.days"),
        ({"days": -1, "relative_to": "sent"}, "reminders.0.days"),
        ({"days": 1, "relative_to": "paid"}, "reminders.0.relative_to"),
        ({"days": 1, "relative_to": "sent", "message": 5}, "reminders.0.message"),
        ({"days": 1, "relative_to": "sent", "message": "x" * 5001}, "reminders.0.message"),
    ],
)
def test_each_mistake_names_its_field(item, field):
    assert fields([item]) == [field]


def test_two_reminders_on_the_same_day_are_one_too_many_but_kinds_differ():
    same = [{"days": 2, "relative_to": "due_date"}, {"days": 2, "relative_to": "due_date"}]
    assert fields(same) == ["reminders.1.days"]
    kinds = [{"days": 2, "relative_to": "due_date"}, {"days": 2, "relative_to": "sent"}]
    assert len(checked_schedule(kinds, DEFAULT)) == 2


def test_a_reminder_is_known_by_its_kind_and_day_not_its_place():
    first, second = reminders_of(
        [
            {"days": -3, "relative_to": "due_date", "message": "a"},
            {"days": 7, "relative_to": "sent", "message": "b"},
        ]
    )
    assert (first.position, first.key, second.position, second.key) == (
        1,
        "due_date-3",
        2,
        "sent+7",
    )
    assert first.due_on(dt.date(2030, 6, 13)) == dt.date(2030, 6, 10)
    # Due on the 3rd to the 10th: for links due (anchored) on the 6th to the 13th.
    assert first.anchors_due(dt.date(2030, 6, 3), dt.date(2030, 6, 10)) == (
        dt.date(2030, 6, 6),
        dt.date(2030, 6, 13),
    )


@pytest.mark.parametrize(
    ("local", "open_"),
    [
        (dt.datetime(2030, 6, 3, 8, 59), False),
        (dt.datetime(2030, 6, 3, 9, 0), True),
        (dt.datetime(2030, 6, 7, 16, 59), True),
        (dt.datetime(2030, 6, 7, 17, 0), False),
        (dt.datetime(2030, 6, 8, 12, 0), False),
        (dt.datetime(2030, 6, 9, 12, 0), False),
    ],
)
def test_business_hours_are_weekdays_from_nine_to_five(local, open_):
    assert within_business_hours(local.replace(tzinfo=ZoneInfo("America/Chicago"))) is open_
