"""A copy of a firm's MyCase cases and invoices, kept in the process between searches.

MyCase cannot search (see ``adapters.mycase.adapter``): without a copy every keystroke in
Connect would read the firm's whole book, page after page. With one, a search reads only what
changed since the last (``filter[updated_after]``, which both lists accept), two small calls,
and matches the copy.

What keeps the copy honest:
- the change reads start a little before the newest ``updated_at`` already seen
  (``OVERLAP``), so a record saved while a page was being read is never skipped; reading a
  record twice only replaces it;
- a record deleted in MyCase does not show up as changed, and a client renamed does not touch
  its cases: the whole book is read again when the copy is older than ``full_read_seconds``
  (``clientpay.mycase.full_read_seconds``, 5 minutes by default);
- a copy belongs to one connection as it was authorized (``AdapterConfig.identity``): an admin
  reconnecting to another MyCase account starts a new one. An adapter without an identity
  keeps no copy and reads everything each time.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from adapters.mycase.records import Json

# Change reads begin this long before the newest change seen.
OVERLAP = dt.timedelta(minutes=2)
# The most connections one process keeps a copy of; the least recently used goes first.
MAX_COPIES = 32

# (list name, updated_after or None for all) -> the records
Reader = Callable[[str, str | None], Iterable[Json]]


@dataclass
class BookCopy:
    """One connection's cases and invoices by id, and where the next change read begins."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    records: dict[str, dict[str, Json]] = field(default_factory=dict)
    newest: dict[str, dt.datetime | None] = field(default_factory=dict)
    full_read_at: float | None = None  # time.monotonic()

    def read_all(self, lists: Iterable[str], read: Reader) -> None:
        for name in lists:
            self.records[name] = {}
            self.newest[name] = None
            self._merge(name, read(name, None))
        self.full_read_at = time.monotonic()

    def read_changes(self, lists: Iterable[str], read: Reader) -> None:
        for name in lists:
            newest = self.newest.get(name)
            since = None if newest is None else _iso(newest - OVERLAP)
            self._merge(name, read(name, since))

    def _merge(self, name: str, records: Iterable[Json]) -> None:
        kept = self.records.setdefault(name, {})
        newest = self.newest.get(name)
        for record in records:
            kept[str(record.get("id"))] = record
            updated = _parse(record.get("updated_at"))
            if updated is not None and (newest is None or updated > newest):
                newest = updated
        self.newest[name] = newest

    def stale(self, full_read_seconds: float) -> bool:
        return (
            self.full_read_at is None or time.monotonic() - self.full_read_at >= full_read_seconds
        )

    def values(self, name: str) -> list[Json]:
        return list(self.records.get(name, {}).values())


class BookCopies:
    """The copies of one process, by connection identity."""

    def __init__(self, capacity: int = MAX_COPIES):
        self.capacity = capacity
        self._copies: OrderedDict[str, BookCopy] = OrderedDict()
        self._lock = threading.Lock()

    def of(self, identity: str) -> BookCopy:
        with self._lock:
            copy = self._copies.get(identity)
            if copy is None:
                copy = self._copies[identity] = BookCopy()
            self._copies.move_to_end(identity)
            while len(self._copies) > self.capacity:
                self._copies.popitem(last=False)
            return copy

    def clear(self) -> None:
        with self._lock:
            self._copies.clear()


COPIES = BookCopies()


def _parse(value: object) -> dt.datetime | None:
    """MyCase's ``updated_at``; a timestamp without an offset is UTC (MyCase says so)."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def _iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
