"""A firm's Smart Reminder schedule: checking what an admin gives, and when each falls due.

Pure code (no database, no request). A schedule is a list of at most four reminders, each
``{"days", "relative_to", "message"}``:

- ``relative_to`` ``"due_date"``: ``days`` from the link's due date (negative: before it;
  0: on the day), for links that have a due date;
- ``relative_to`` ``"sent"``: ``days`` (1 or more) after the link was sent, for links that
  have no due date.

An empty list is "off". A blank message is the firm's default email message. Two reminders
on the same day of the same kind are one too many. The schedule is kept in time order
(due-date reminders first), so that position 1 is always the earliest.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

RELATIVE_TO_DUE_DATE = "due_date"
RELATIVE_TO_SENT = "sent"
RELATIVE_TO = (RELATIVE_TO_DUE_DATE, RELATIVE_TO_SENT)
MAX_REMINDERS = 4
MAX_DAYS = 365
MAX_MESSAGE_LENGTH = 5000


@dataclass(frozen=True)
class Reminder:
    """One reminder of the schedule; ``position`` counts from 1."""

    position: int
    days: int
    relative_to: str
    message: str

    @property
    def key(self) -> str:
        """What identifies this reminder for "once per link": its kind and its day."""
        return f"{self.relative_to}{self.days:+d}"

    def due_on(self, anchor: dt.date) -> dt.date:
        """The firm's day it falls due, for a link due (or sent) on ``anchor``."""
        return anchor + dt.timedelta(days=self.days)

    def anchors_due(self, first: dt.date, last: dt.date) -> tuple[dt.date, dt.date]:
        """The anchors (due dates or sending days) whose reminder falls due from ``first``
        to ``last``."""
        return first - dt.timedelta(days=self.days), last - dt.timedelta(days=self.days)


class ScheduleProblems(Exception):
    """What is wrong, as (field, message) pairs: "reminders" or "reminders.<i>.<name>"."""

    def __init__(self, problems: list[tuple[str, str]]):
        super().__init__("; ".join(message for _field, message in problems))
        self.problems = problems


def reminders_of(stored: list[dict[str, Any]] | None) -> list[Reminder]:
    """The stored schedule (already checked) as reminders."""
    return [
        Reminder(i + 1, int(item["days"]), str(item["relative_to"]), str(item["message"]))
        for i, item in enumerate(stored or [])
    ]


def checked_schedule(value: Any, default_message: str) -> list[dict[str, Any]]:
    """The schedule to store, in time order; raises ``ScheduleProblems``."""
    if not isinstance(value, list):
        raise ScheduleProblems([("reminders", "Give a list of reminders (empty for none).")])
    if len(value) > MAX_REMINDERS:
        raise ScheduleProblems(
            [("reminders", f"Choose at most {MAX_REMINDERS} reminders; {len(value)} were given.")]
        )
    problems: list[tuple[str, str]] = []
    cleaned: list[dict[str, Any]] = []
    seen: dict[tuple[str, int], int] = {}
    for index, item in enumerate(value):
        reminder = _checked_item(problems, index, item, default_message)
        if reminder is None:
            continue
        moment = (reminder["relative_to"], reminder["days"])
        if moment in seen:
            problems.append(
                (f"reminders.{index}.days", f"Reminder {seen[moment] + 1} is already sent then.")
            )
            continue
        seen[moment] = index
        cleaned.append(reminder)
    if problems:
        raise ScheduleProblems(problems)
    order = {name: place for place, name in enumerate(RELATIVE_TO)}
    return sorted(cleaned, key=lambda r: (order[r["relative_to"]], r["days"]))


def _checked_item(
    problems: list[tuple[str, str]], index: int, item: Any, default_message: str
) -> dict[str, Any] | None:
    prefix = f"reminders.{index}"
    if not isinstance(item, dict):
        problems.append(
            (prefix, "Each reminder needs its days, what they count from and a message.")
        )
        return None
    relative_to = item.get("relative_to")
    days = item.get("days")
    message = item.get("message")
    before = len(problems)
    if relative_to not in RELATIVE_TO:
        problems.append(
            (f"{prefix}.relative_to", "Count the days from the due date or from sending.")
        )
    if isinstance(days, bool) or not isinstance(days, int):
        problems.append((f"{prefix}.days", "Enter a whole number of days."))
    elif relative_to == RELATIVE_TO_SENT and not 1 <= days <= MAX_DAYS:
        problems.append((f"{prefix}.days", f"Enter from 1 to {MAX_DAYS} days after sending."))
    elif not -MAX_DAYS <= days <= MAX_DAYS:
        problems.append(
            (f"{prefix}.days", f"Enter at most {MAX_DAYS} days before or after the due date.")
        )
    if message is not None and not isinstance(message, str):
        problems.append((f"{prefix}.message", "Write the message as text."))
    text = message.strip() if isinstance(message, str) else ""
    if len(text) > MAX_MESSAGE_LENGTH:
        problems.append((f"{prefix}.message", f"Use at most {MAX_MESSAGE_LENGTH} characters."))
    if len(problems) > before:
        return None
    return {"days": days, "relative_to": relative_to, "message": text or default_message}
