"""What an engine sends to the database, for a benchmark's baseline: the very statements of
one call, run again straight through the driver."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import event


class Recorder:
    """The statements and parameters the app's engine sends, as the driver gets them."""

    def __init__(self, engine: Any):
        self.sent: list[tuple[str, Any]] = []
        self.on = False
        event.listen(engine, "before_cursor_execute", self._record)

    def _record(self, conn: Any, cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if self.on:
            self.sent.append((statement, parameters))

    def capture(self, call: Callable[[], object]) -> list[tuple[str, Any]]:
        self.sent, self.on = [], True
        try:
            call()
        finally:
            self.on = False
        return self.sent


def run_raw(raw: Any, statements: list[tuple[str, Any]]) -> int:
    """Runs ``statements`` on the DBAPI connection ``raw`` and fetches every row; the
    number of rows."""
    fetched = 0
    cursor = raw.cursor()
    for statement, parameters in statements:
        cursor.execute(statement, parameters)
        fetched += len(cursor.fetchall())
    cursor.close()
    raw.rollback()
    return fetched
