"""Connect in a real browser, against the demo matter database through the ``sql`` adapter:
staff search a client as they type, tick two invoices, change one amount and send; the payer
opens the emailed link in a browser of their own, sees both invoices with their amounts, pays
by card, and gets the receipt."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest
from playwright.sync_api import Browser, Page, ViewportSize, expect
from sqlalchemy import create_engine, text

from adapters.sql.demo import create_demo_matter_database
from clientpay_connect.connect.services import (
    connection_settings,
    create_connection,
    firm_connections,
)
from clientpay_connect.demo import DEMO_SLUG
from clientpay_connect.money import display_amount, format_amount
from clientpay_connect.work import Work
from tests.browser.accessibility import assert_accessible
from tests.browser.conftest import NARROW
from tests.support.live_server import LiveServer, Login
from tests.support.smtp import Received

pytestmark = pytest.mark.browser

SignIn = Callable[[Login], None]
PAY_URL = re.compile(r"https?://[^\s\"'<>]+/pay/[A-Za-z0-9_-]{43}")
# A client with at least two open operating invoices, and the two due first.
CLIENT_WITH_TWO_OPEN = text(
    """
    SELECT c.id, c.name, c.email FROM clients c JOIN invoices i ON i.client_id = c.id
    WHERE i.state = 'open' AND i.account = 'operating' AND i.balance > 0
    GROUP BY c.id, c.name, c.email HAVING count(*) >= 2 ORDER BY c.id
    """
)
TWO_DUE_FIRST = text(
    """
    SELECT number, balance FROM invoices
    WHERE client_id = :client AND state = 'open' AND account = 'operating' AND balance > 0
    ORDER BY due_on, id LIMIT 2
    """
)


@dataclass(frozen=True)
class DemoClient:
    name: str
    email: str
    invoices: list[tuple[str, int]]  # (number, balance), oldest due first


@dataclass(frozen=True)
class DemoMatters:
    connection_id: int
    name: str
    clients: list[DemoClient]


@pytest.fixture(scope="module")
def demo_matters(
    live_server: LiveServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[DemoMatters]:
    """The demo firm's connection to the demo matter database (``clientpay demo`` makes both;
    made here when the live server's seeding did not), and a few of its clients."""
    registry = live_server.app.registry
    with Work.fresh(registry) as work:
        firm = work.dbsession.execute(
            text("SELECT id FROM firms WHERE slug = :slug"), {"slug": DEMO_SLUG}
        ).scalar_one()
        found = [c for c in firm_connections(work.dbsession, firm) if c.adapter == "sql"]
        if found:
            connection = found[0]
        else:
            url = f"sqlite:///{tmp_path_factory.mktemp('matters') / 'demo-matters.sqlite'}"
            create_demo_matter_database(url)
            connection, _ = create_connection(work, firm, "sql", "Demo matters", {"url": url})
        connection_id, name = connection.id, connection.name
        url = connection_settings(registry["clientpay.encryptor"], connection)["url"]
    engine = create_engine(url)
    try:
        with engine.connect() as db:
            clients = [
                DemoClient(
                    client_name,
                    email,
                    [tuple(r) for r in db.execute(TWO_DUE_FIRST, {"client": client_id})],
                )
                for client_id, client_name, email in db.execute(CLIENT_WITH_TWO_OPEN).all()[:5]
            ]
    finally:
        engine.dispose()
    yield DemoMatters(connection_id, name, clients)


def wait_for_mail(live_server: LiveServer, recipient: str, mentioning: str) -> Received:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        for received in live_server.smtp.messages:
            if recipient in received.rcpt_tos and mentioning in received.text:
                return received
        time.sleep(0.1)
    raise AssertionError(f"no message to {recipient} mentioning {mentioning!r} arrived")


def test_search_tick_two_invoices_change_one_amount_send_and_the_payer_pays(
    page: Page,
    browser: Browser,
    sign_in: SignIn,
    live_server: LiveServer,
    demo_matters: DemoMatters,
) -> None:
    client = demo_matters.clients[0]
    (first, first_balance), (second, second_balance) = client.invoices
    changed = min(first_balance - 1, 12_34)
    total = changed + second_balance

    sign_in(live_server.staff)
    page.goto(f"/connect?connection_id={demo_matters.connection_id}")
    expect(page.get_by_role("heading", name="Connect", level=1)).to_be_visible()
    # Typed, not submitted: htmx answers as staff type.
    page.get_by_label("Search").press_sequentially(client.name, delay=20)
    expect(page.get_by_role("heading", name=client.name, level=2)).to_be_visible()
    expect(page).to_have_url(re.compile(r"/connect\?connection_id=\d+$"))
    assert_accessible(page)

    page.get_by_label(first, exact=True).check()
    page.get_by_label(second, exact=True).check()
    # The payer is the client, from the matter system's contact.
    expect(page.get_by_label("Payer's email address")).to_have_value(client.email)
    amount = page.get_by_label(f"Amount for {first}")
    expect(amount).to_have_value(format_amount(first_balance))
    amount.fill(format_amount(changed))
    page.get_by_label("Merchant account").select_option(label="Operating (operating account)")
    # What the link will ask, before it is sent.
    expect(page.locator("[data-preview-total]")).to_have_text(display_amount(total))
    page.get_by_role("button", name="Send Link").click()

    expect(page.get_by_role("heading", name="Link sent")).to_be_visible()
    expect(page.locator("[data-recipients] li")).to_have_text([client.email])
    rows = page.locator("[data-link-invoices] tbody tr")
    expect(rows).to_have_count(2)
    # The rows come in the page's order (by matter): find each by its number.
    expect(rows.filter(has_text=first)).to_contain_text(display_amount(changed))
    expect(rows.filter(has_text=second)).to_contain_text(display_amount(second_balance))

    email = wait_for_mail(live_server, client.email, first)
    assert second in email.text
    urls = set(PAY_URL.findall(email.text)) | set(PAY_URL.findall(email.html))
    assert len(urls) == 1, urls

    payer_context = browser.new_context(base_url=live_server.url)
    try:
        payer = payer_context.new_page()
        payer.goto(urls.pop())
        expect(payer.locator(".pay-amount")).to_have_text(display_amount(total))
        lines = payer.locator("[data-pay-invoices] tbody tr")
        expect(lines).to_have_count(2)
        expect(lines.filter(has_text=first)).to_contain_text(display_amount(changed))
        expect(lines.filter(has_text=second)).to_contain_text(display_amount(second_balance))
        assert_accessible(payer)

        payer.get_by_label("Your full name").fill(client.name)
        payer.get_by_label("Card number").fill("4242 4242 4242 4242")
        payer.get_by_label("Expiry month").select_option("12")
        year = payer.get_by_label("Expiry year")
        year.select_option(year.locator("option").last.get_attribute("value"))
        payer.get_by_label("Security code (CVC)").fill("123")
        payer.get_by_role("button", name=f"Pay {display_amount(total)}").click()
        payer.wait_for_url(re.compile(r"/pay/[A-Za-z0-9_-]{43}/receipt$"))
        expect(payer.get_by_role("heading", level=1)).to_have_text("Payment received")
        expect(payer.locator(".pay-receipt-number")).to_have_text(re.compile(r"^R-"))
    finally:
        payer_context.close()


def test_a_total_is_allocated_oldest_due_first_before_it_is_sent(
    page: Page, sign_in: SignIn, live_server: LiveServer, demo_matters: DemoMatters
) -> None:
    client = demo_matters.clients[1]
    (first, first_balance), (second, _second_balance) = client.invoices
    sign_in(live_server.staff)
    page.goto(f"/connect?connection_id={demo_matters.connection_id}")
    page.get_by_label("Search").fill(client.name)
    page.get_by_label(second, exact=True).check()
    page.get_by_label(first, exact=True).check()
    page.get_by_label("Allocate a total, oldest due first").check()
    # The invoices' own amounts no longer count, and say so.
    expect(page.get_by_label(f"Amount for {first}")).to_be_disabled()
    page.get_by_label("Total to allocate").fill(format_amount(first_balance + 1_00))
    preview = page.locator("[data-preview-line]")
    expect(preview.filter(has_text=first)).to_contain_text(display_amount(first_balance))
    expect(preview.filter(has_text=second)).to_contain_text("$1.00")
    # A trust account takes typed amounts only.
    page.get_by_label("Merchant account").select_option(label="Trust (IOLTA) (trust account)")
    expect(page.get_by_label("Allocate a total, oldest due first")).to_be_disabled()
    expect(page.get_by_label("Type each invoice's amount")).to_be_checked()


@pytest.mark.parametrize("viewport", [NARROW], ids=["narrow"])
def test_the_results_read_as_cards_in_a_narrow_panel(
    page: Page,
    sign_in: SignIn,
    live_server: LiveServer,
    demo_matters: DemoMatters,
    viewport: ViewportSize,
) -> None:
    client = demo_matters.clients[2]
    first = client.invoices[0][0]
    sign_in(live_server.staff)
    page.goto(f"/connect?connection_id={demo_matters.connection_id}")
    page.get_by_label("Search").fill(client.name)
    checkbox = page.get_by_label(first, exact=True)
    checkbox.check()
    expect(checkbox).to_be_checked()
    assert_accessible(page)


def test_the_admins_connections_pages_are_accessible(
    page: Page, sign_in: SignIn, live_server: LiveServer, demo_matters: DemoMatters
) -> None:
    sign_in(live_server.admin)
    page.goto("/admin/connections")
    row = page.locator(f"tr[data-connection='{demo_matters.connection_id}']")
    expect(row.locator("[data-connection-status]")).to_have_text("Connected")
    expect(row).to_contain_text("Payments are written to SQL database's payments staging table")
    assert_accessible(page)
    row.get_by_role("link", name=demo_matters.name).click()
    expect(page.get_by_role("heading", name=demo_matters.name, level=1)).to_be_visible()
    assert_accessible(page)
