"""Recording an open never holds the payment page back for long: while another transaction
holds the lock the write needs (a job's or a payment's; on SQLite the database's one write
lock), the page still answers at once, the open is dropped, and the next open records it.

Served by waitress on a fresh, committed database; SQLite, and PostgreSQL when
CLIENTPAY_TEST_DATABASE_URL is set.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from pyramid.router import Router
from sqlalchemy import text

from tests.support.live_server import served_app
from tests.support.payments import committed_link, committed_opens

# How long the other transaction keeps its lock, and how long the page may take meanwhile.
HELD_SECONDS = 4.0
PAGE_SECONDS = 2.0
TIMEOUT = 60


@pytest.fixture(scope="module")
def served(
    base_settings: dict[str, Any], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, Router]]:
    with served_app(base_settings, tmp_path_factory.mktemp("opens"), threads=2) as served:
        yield served


class LockHolder(threading.Thread):
    """A transaction that changes the link's row, then keeps its lock for a while."""

    def __init__(self, app: Router, link_id: int):
        super().__init__(daemon=True)
        self.engine = app.registry["dbengine"]
        self.link_id = link_id
        self.holding = threading.Event()

    def run(self) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                text("UPDATE payment_links SET reminders_sent = reminders_sent WHERE id = :id"),
                {"id": self.link_id},
            )
            self.holding.set()
            time.sleep(HELD_SECONDS)


def test_the_page_answers_at_once_while_the_lock_is_held(served):
    url, app = served
    link_id, token = committed_link(app)
    holder = LockHolder(app, link_id)
    holder.start()
    assert holder.holding.wait(TIMEOUT)
    started = time.monotonic()
    page = requests.get(f"{url}/pay/{token}", timeout=TIMEOUT)
    took = time.monotonic() - started
    assert page.status_code == 200
    assert took < PAGE_SECONDS, f"the page took {took:.2f} s behind a held lock"
    holder.join(timeout=TIMEOUT)
    # The open could not be written: nothing half-done, and the next open records it.
    assert committed_opens(app, link_id) == (None, None)
    assert requests.get(f"{url}/pay/{token}", timeout=TIMEOUT).status_code == 200
    first, last = committed_opens(app, link_id)
    assert first is not None and first == last
