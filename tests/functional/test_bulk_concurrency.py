"""A double click on Send All (or a retried request) makes one set of links, for real.

The app runs on a fresh, committed database (not the suite's rolled-back connection), served
by waitress on loopback with a thread per click, and the clicks arrive over real HTTP from
threads released together by a barrier. SQLite, and PostgreSQL when
CLIENTPAY_TEST_DATABASE_URL is set.
"""

from __future__ import annotations

import threading
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import pytest
import requests
import transaction
from pyramid.router import Router
from sqlalchemy import func, select

from clientpay_connect import main
from clientpay_connect.accounts.services import create_api_token, create_firm, create_user
from clientpay_connect.admin.models import MerchantAccount
from clientpay_connect.db import get_tm_session
from clientpay_connect.links.models import PaymentLink
from clientpay_connect.mail.models import OutboxMessage
from tests.support import databases
from tests.support.live_server import serving

CLICKS = 8
ROWS = 3
TIMEOUT = 120


@dataclass
class Served:
    url: str
    app: Router

    def count(self, model: Any, *where: Any) -> int:
        tm = transaction.TransactionManager(explicit=True)
        with tm:
            session = get_tm_session(self.app.registry["dbsession_factory"], tm)
            return int(session.scalar(select(func.count()).select_from(model).where(*where)))


@pytest.fixture(scope="module")
def served(
    base_settings: dict[str, Any], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Served]:
    with databases.fresh_database(tmp_path_factory.mktemp("bulk-race")) as database_url:
        databases.migrate(database_url)
        app = main({}, **{**base_settings, "sqlalchemy.url": database_url})
        try:
            with serving(app, threads=CLICKS) as url:
                yield Served(url, app)
        finally:
            app.registry["dbengine"].dispose()


def _new_firm(served: Served) -> tuple[int, dict[str, str]]:
    """A committed firm with an account and a staff member's API token."""
    tm = transaction.TransactionManager(explicit=True)
    with tm:
        session = get_tm_session(served.app.registry["dbsession_factory"], tm)
        firm = create_firm(session, "Click & Click LLP", "click-" + uuid.uuid4().hex[:8])
        session.add(MerchantAccount(firm_id=firm.id, name="Operating", kind="operating"))
        user = create_user(session, firm, f"staff-{uuid.uuid4().hex[:8]}@example.test", "staff")
        _row, token = create_api_token(session, user, "race")
        firm_id = firm.id
    return firm_id, {"Authorization": f"Bearer {token}"}


def _upload(served: Served, auth: dict[str, str]) -> int:
    lines = ["Invoice Number,Recipient Name,Amount,Email"]
    lines += [f"R-{i},Client {i},{20 + i},c{i}@example.com" for i in range(ROWS)]
    response = requests.post(
        f"{served.url}/api/v1/bulk-uploads",
        files={"file": ("race.csv", "\n".join(lines).encode())},
        headers=auth,
        timeout=TIMEOUT,
    )
    assert response.status_code == 201, response.text
    return int(response.json()["id"])


def _click_together(
    served: Served, auth: dict[str, str], upload_id: int, actions: list[str]
) -> list[tuple[int, dict[str, Any]]]:
    barrier = threading.Barrier(len(actions))

    def click(action: str) -> tuple[int, dict[str, Any]]:
        with requests.Session() as http:
            barrier.wait(timeout=TIMEOUT)
            response = http.post(
                f"{served.url}/api/v1/bulk-uploads/{upload_id}/{action}",
                json={},
                headers=auth,
                timeout=TIMEOUT,
            )
            return response.status_code, response.json()

    with ThreadPoolExecutor(max_workers=len(actions)) as pool:
        return list(pool.map(click, actions))


def test_many_send_all_clicks_at_once_make_one_set_of_links(served: Served) -> None:
    firm_id, auth = _new_firm(served)
    upload_id = _upload(served, auth)

    answers = _click_together(served, auth, upload_id, ["send"] * CLICKS)

    statuses = Counter(status for status, _body in answers)
    assert statuses == {201: 1, 200: CLICKS - 1}, statuses
    link_sets = {tuple(link["id"] for link in body["links"]) for _status, body in answers}
    assert len(link_sets) == 1 and len(next(iter(link_sets))) == ROWS
    assert served.count(PaymentLink, PaymentLink.firm_id == firm_id) == ROWS
    assert served.count(OutboxMessage, OutboxMessage.firm_id == firm_id) == ROWS


def test_send_all_and_generate_at_once_make_one_set_of_links(served: Served) -> None:
    firm_id, auth = _new_firm(served)
    upload_id = _upload(served, auth)

    answers = _click_together(served, auth, upload_id, ["send", "generate"] * (CLICKS // 2))

    winners = [body for status, body in answers if status == 201]
    assert len(winners) == 1
    won = winners[0]["action"]
    for status, body in answers:
        if status == 409:
            assert (body["error"], body["action"]) == ("other_action_taken", won)
        else:
            assert status in (200, 201) and body["action"] == won
    assert served.count(PaymentLink, PaymentLink.firm_id == firm_id) == ROWS
    emailed = ROWS if won == "send" else 0
    assert served.count(OutboxMessage, OutboxMessage.firm_id == firm_id) == emailed
