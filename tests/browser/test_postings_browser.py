"""Manage Postings in a real browser, on the demo: a Connect link paid through the API shows
in Pending; staff tick it and Post; once the sync job has run it shows in Posted, and the
demo matter system's invoice owes exactly the amount less. axe passes on the page.

The job is run here, in-process (``sync_posting`` in a ``Work`` of its own, as a worker runs
it): the live server runs jobs at once only when the job is registered with the queue.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

import pytest
from playwright.sync_api import BrowserContext, Page, expect
from sqlalchemy import select

from clientpay_connect.accounts.services import create_api_token, find_user_by_email
from clientpay_connect.connect.interfaces import ManualSlip
from clientpay_connect.connect.models import Connection
from clientpay_connect.demo import DEMO_CONNECTION
from clientpay_connect.postings.models import Posting
from clientpay_connect.postings.sync import slip_json, sync_posting
from clientpay_connect.work import Work
from tests.browser.accessibility import assert_accessible
from tests.support.live_server import LiveServer, Login
from tests.support.payments import card

pytestmark = pytest.mark.browser

AMOUNT = "1.23"


@pytest.fixture
def staff_headers(live_server: LiveServer) -> Iterator[dict[str, str]]:
    with live_server.dbsession() as dbsession:
        user = find_user_by_email(dbsession, live_server.staff.email)
        assert user is not None
        _row, token = create_api_token(dbsession, user, "postings browser test")
    yield {"Authorization": f"Bearer {token}"}


@pytest.fixture
def demo_connection_id(live_server: LiveServer) -> int:
    with live_server.dbsession() as dbsession:
        connection_id = dbsession.execute(
            select(Connection.id).where(Connection.name == DEMO_CONNECTION)
        ).scalar_one()
    return int(connection_id)


def open_invoice(
    context: BrowserContext, url: str, headers: dict[str, str], connection_id: int, **query: str
) -> dict[str, Any]:
    """The first open operating invoice the demo's search finds, as Connect's API shows it."""
    found = context.request.get(
        f"{url}/api/v1/connect/search",
        params={"connection_id": connection_id, **query},
        headers=headers,
    )
    assert found.status == 200, found.text()
    invoices = [
        i
        for i in found.json()["invoices"]
        if i["account"] == "operating" and Decimal(i["balance"]) >= Decimal(AMOUNT)
    ]
    assert invoices, "the demo has no open operating invoice for this search"
    return dict(invoices[0])


def paid_connect_link(
    context: BrowserContext,
    url: str,
    headers: dict[str, str],
    connection_id: int,
    invoice_id: str,
) -> int:
    """A Connect link asking AMOUNT of the invoice, paid by card; the link's id."""
    accounts = context.request.get(f"{url}/api/v1/merchant-accounts", headers=headers)
    operating = next(a for a in accounts.json()["items"] if a["kind"] == "operating")
    made = context.request.post(
        f"{url}/api/v1/connect/links",
        data={
            "connection_id": connection_id,
            "merchant_account_id": operating["id"],
            "invoices": [{"id": invoice_id, "amount": AMOUNT}],
        },
        headers=headers,
    )
    assert made.status == 201, made.text()
    link = made.json()
    token = link["url"].rsplit("/", 1)[1]
    tokenized = context.request.post(f"{url}/sandbox/tokens", data=card())
    paid = context.request.post(
        f"{url}/api/v1/pay/{token}",
        data={
            "payment_token": tokenized.json()["token"],
            "amount": AMOUNT,
            "payer_name": "Browser Payer",
            "payer_email": "payer@example.test",
        },
        headers={"Idempotency-Key": uuid.uuid4().hex},
    )
    assert paid.status == 201, paid.text()
    return int(link["id"])


def test_a_pending_posting_is_posted_and_shows_in_posted(
    page: Page,
    context: BrowserContext,
    live_server: LiveServer,
    sign_in: Callable[[Login], None],
    staff_headers: dict[str, str],
    demo_connection_id: int,
) -> None:
    url = live_server.url
    invoice = open_invoice(context, url, staff_headers, demo_connection_id, q="INV-")
    link_id = paid_connect_link(context, url, staff_headers, demo_connection_id, invoice["id"])
    with live_server.dbsession() as dbsession:
        posting_id = dbsession.execute(
            select(Posting.id).where(Posting.link_id == link_id)
        ).scalar_one()

    sign_in(live_server.staff)
    page.goto("/postings")
    page.get_by_role("link", name=re.compile(r"^Pending")).click()
    row = page.locator(f'tr[data-posting-id="{posting_id}"]')
    expect(row.locator("[data-status]")).to_have_text("Pending")
    expect(row).to_contain_text("Browser Payer")
    expect(row).to_contain_text(f"{invoice['number']} ${AMOUNT}")
    assert_accessible(page)
    row.get_by_role("checkbox").check()
    page.get_by_role("button", name="Post", exact=True).click()
    expect(page.locator(".flash[role=status]")).to_contain_text(
        "Queued 1 posting to be written to the matter system: "
        f"the payment of ${AMOUNT} from Browser Payer."
    )
    expect(page).to_have_url(re.compile(r"/postings\?status=pending$"))

    with Work.fresh(live_server.app.registry) as work:
        outcome = sync_posting(work, posting_id)
    # "not_claimed" when the queue had already run it (the job registered, jobs immediate).
    assert outcome in ("posted", "not_claimed")
    page.get_by_role("link", name=re.compile(r"^Posted")).click()
    posted = page.locator(f'tr[data-posting-id="{posting_id}"]')
    expect(posted.locator("[data-status]")).to_have_text("Posted")

    after = open_invoice(context, url, staff_headers, demo_connection_id, q=str(invoice["number"]))
    assert after["id"] == invoice["id"]
    assert Decimal(invoice["balance"]) - Decimal(after["balance"]) == Decimal(AMOUNT)

    posted.get_by_role("link").first.click()
    expect(page.locator("[data-posting-status]")).to_have_text("Posted")
    expect(page.locator('[data-attempts] tr[data-outcome="posted"]')).to_have_count(1)


def test_a_manual_postings_slip_is_copied_printed_alone_and_marked_entered(
    page: Page,
    context: BrowserContext,
    live_server: LiveServer,
    sign_in: Callable[[Login], None],
    staff_headers: dict[str, str],
    demo_connection_id: int,
) -> None:
    url = live_server.url
    invoice = open_invoice(context, url, staff_headers, demo_connection_id, q="INV-")
    link_id = paid_connect_link(context, url, staff_headers, demo_connection_id, invoice["id"])
    with live_server.dbsession() as dbsession:
        posting = dbsession.execute(select(Posting).where(Posting.link_id == link_id)).scalar_one()
        posting_id = posting.id
        # As the sync job leaves it for a matter system that takes payments by hand (Clio).
        posting.status = "manual_required"
        posting.slip = slip_json(
            ManualSlip(
                client="Browser Client",
                matter="2024-0001 Browser matter",
                date=posting.received_on,
                reference=posting.key,
                currency="USD",
                lines=((str(invoice["number"]), 123),),
            )
        )

    sign_in(live_server.staff)
    page.goto(f"/postings/{posting_id}")
    slip = page.locator("[data-slip]")
    expect(slip).to_contain_text("Browser Client")
    line = slip.locator("tr", has_text=f"Invoice {invoice['number']}")
    expect(line.locator("td")).to_have_text("$1.23")
    assert_accessible(page)
    slip.get_by_role("button", name="Copy").click()
    expect(page.locator("#announcer")).to_have_text("Slip copied")
    expect(slip.get_by_role("button", name="Print")).to_be_visible()
    page.emulate_media(media="print")
    expect(slip).to_be_visible()
    expect(page.locator(".app-header")).not_to_be_visible()
    expect(page.locator("[data-attempts]")).not_to_be_visible()
    expect(slip.get_by_role("button", name="Mark entered by hand")).not_to_be_visible()
    page.emulate_media(media="screen")
    slip.get_by_role("button", name="Mark entered by hand").click()
    expect(page.locator("[data-posting-status]")).to_have_text("Posted")
    expect(page.locator(".flash[role=status]")).to_contain_text("entered by hand")


def test_the_reconciliation_report_passes_axe_and_drills_down(
    page: Page,
    context: BrowserContext,
    live_server: LiveServer,
    sign_in: Callable[[Login], None],
    staff_headers: dict[str, str],
    demo_connection_id: int,
) -> None:
    url = live_server.url
    invoice = open_invoice(context, url, staff_headers, demo_connection_id, q="INV-")
    link_id = paid_connect_link(context, url, staff_headers, demo_connection_id, invoice["id"])
    with live_server.dbsession() as dbsession:
        posting_id = dbsession.execute(
            select(Posting.id).where(Posting.link_id == link_id)
        ).scalar_one()
    sign_in(live_server.staff)
    page.goto("/postings")
    page.get_by_role("link", name="Reconciliation report").click()
    expect(page.locator("[data-report]")).to_be_visible()
    assert_accessible(page)
    page.locator("tfoot tr[data-total] td.num a").first.click()
    expect(page.locator(f'[data-lines] tr[data-posting-id="{posting_id}"]')).to_be_visible()
    assert_accessible(page)


def test_an_incomplete_posting_is_reallocated_with_the_search_answering_as_staff_type(
    page: Page,
    context: BrowserContext,
    live_server: LiveServer,
    sign_in: Callable[[Login], None],
    staff_headers: dict[str, str],
    demo_connection_id: int,
) -> None:
    url = live_server.url
    invoice = open_invoice(context, url, staff_headers, demo_connection_id, q="INV-")
    link_id = paid_connect_link(context, url, staff_headers, demo_connection_id, invoice["id"])
    other = next(
        i
        for i in context.request.get(
            f"{url}/api/v1/connect/search",
            params={"connection_id": demo_connection_id, "q": "INV-0001"},
            headers=staff_headers,
        ).json()["invoices"]
        if i["id"] != invoice["id"] and Decimal(i["balance"]) >= Decimal(AMOUNT)
    )
    with live_server.dbsession() as dbsession:
        posting = dbsession.execute(select(Posting).where(Posting.link_id == link_id)).scalar_one()
        posting_id = posting.id
        # As the sync job leaves it when the invoice was paid elsewhere meanwhile.
        posting.status = "incomplete"
        posting.reason = f"Invoice {invoice['number']} is paid."

    sign_in(live_server.staff)
    page.goto(f"/postings/{posting_id}")
    expect(page.locator("[data-posting-reason]")).to_contain_text("is paid")
    page.get_by_label("Search").fill(str(other["number"]))
    results = page.locator("#reallocate-results")
    row = results.locator(f'tr[data-invoice="{other["id"]}"]')
    expect(row).to_be_visible()
    expect(results.locator("tr[data-invoice]")).to_have_count(1)
    assert_accessible(page)
    row.get_by_role("checkbox").check()
    row.get_by_label(f"Amount for {other['number']}").fill(AMOUNT)
    page.get_by_role("button", name=f"Allocate ${AMOUNT}").click()
    expect(page.locator(".flash[role=status]")).to_contain_text("Re-allocated")
    expect(page.locator("[data-posting-status]")).to_have_text("Pending")
    expect(page.locator("[data-allocations] tbody tr")).to_have_count(1)
    expect(page.locator("[data-allocations] tbody tr th")).to_have_text(str(other["number"]))
