"""Bulk Upload in a real browser, the issue's acceptance story: upload a file with two bad
rows, see both errors, delete one row, fix the other with Add, Send All; the emails arrive
at a real SMTP server and Sent Pages counts the new links. The pages pass axe at the
panel's width and at a desktop's."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, ViewportSize, expect
from sqlalchemy import select

from clientpay_connect.bulk.actions import CREATE_LINKS_JOB
from clientpay_connect.bulk.models import BulkUpload
from clientpay_connect.links.models import PaymentLink
from tests.browser.accessibility import assert_accessible
from tests.browser.conftest import NARROW, TIMEOUT_MS, WIDE
from tests.support.live_server import LiveServer, Login, start_live_server
from tests.support.smtp import Received

pytestmark = pytest.mark.browser

SignIn = Callable[[Login], None]
BOTH_WIDTHS = pytest.mark.parametrize("viewport", [WIDE, NARROW], ids=["wide", "narrow"])
PAY_URL = re.compile(r"https?://[^\s\"'<>]+/pay/[A-Za-z0-9_-]{43}")
HEADER = "Invoice Number,Invoice Date,Due Date,Recipient Name,Amount,Email Address,Custom Message"


class Batch:
    """One test's invoices: the live server's database lives for the whole session."""

    def __init__(self) -> None:
        self.tag = uuid.uuid4().hex[:8].upper()

    def number(self, n: int) -> str:
        return f"BLK-{self.tag}-{n}"

    def email(self, name: str) -> str:
        return f"{name}-{self.tag.lower()}@example.test"

    def csv(self) -> bytes:
        lines = [
            HEADER,
            f"{self.number(1)},2025-01-15,2025-02-14,Jane Doe,120.00,{self.email('jane')},",
            f"{self.number(2)},2025-01-15,2025-02-14,Acme LLC,abc,{self.email('acme')},",
            f"{self.number(3)},2025-01-15,2025-02-14,Bob Roe,80,{self.email('bob')},Thanks!",
            f"{self.number(4)},2025-03-01,2025-02-01,Carla Client,45.50,{self.email('carla')},",
        ]
        return "\n".join(lines).encode()


def upload_file(page: Page, data: bytes) -> None:
    page.goto("/bulk")
    expect(page.get_by_role("heading", name="Bulk Upload", level=1)).to_be_visible()
    page.get_by_label("Invoice file").set_input_files(
        files=[{"name": "march.csv", "mimeType": "text/csv", "buffer": data}]
    )
    # The demo firm has two accounts, so one must be chosen.
    page.get_by_label("Merchant account").select_option(label="Operating (operating account)")
    page.get_by_role("button", name="Upload and check").click()
    expect(page.get_by_role("heading", name="march.csv", level=1)).to_be_visible()


def problems_of(page: Page, row: int) -> Any:
    return page.locator(f"#row-{row} [data-problems] li")


def wait_for_mail(live_server: LiveServer, recipient: str, mentioning: str) -> Received:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        for received in live_server.smtp.messages:
            if recipient in received.rcpt_tos and mentioning in received.text:
                return received
        time.sleep(0.1)
    raise AssertionError(f"no message to {recipient} mentioning {mentioning!r} arrived")


def test_two_bad_rows_are_deleted_and_fixed_then_sent_and_the_emails_arrive(
    page: Page, sign_in: SignIn, live_server: LiveServer
) -> None:
    batch = Batch()
    sign_in(live_server.staff)
    upload_file(page, batch.csv())

    # Both errors, beside their rows.
    expect(problems_of(page, 3)).to_have_text(["Amount: 'abc' is not an amount."])
    expect(problems_of(page, 5)).to_have_text(
        ["Due Date: The due date (2025-02-01) is before the invoice date (2025-03-01)."]
    )
    expect(page.locator('[data-count="errors"]')).to_have_text("2")
    expect(page.get_by_role("button", name="Send All")).to_be_disabled()

    # Delete one row …
    page.get_by_role("button", name="Delete row 3").click()
    expect(page.get_by_role("status")).to_contain_text("Row 3 was deleted.")
    expect(page.locator("#row-3")).to_have_count(0)

    # … and fix the other with Add: the form comes filled with what the row had.
    page.get_by_role("link", name="Fix row 5").click()
    expect(page.locator("#add-row legend")).to_have_text("Fix row 5")
    expect(page.get_by_label("Recipient name")).to_have_value("Carla Client")
    due = page.get_by_label("Due date (optional)")
    expect(due).to_have_value("2025-02-01")
    due.fill("2025-03-31")
    page.get_by_role("button", name="Add corrected row").click()
    expect(page.get_by_role("status")).to_contain_text("Row 5 was fixed.")
    # The fixed row keeps its number and its place.
    expect(page.locator("tbody tr[data-row]")).to_have_count(3)
    rows = page.locator("tbody tr[data-row]")
    assert [rows.nth(i).get_attribute("data-row") for i in range(3)] == ["2", "4", "5"]
    expect(page.locator('[data-count="errors"]')).to_have_text("0")

    page.get_by_role("button", name="Send All").click()
    expect(page.locator("[data-result]")).to_contain_text("3 links were made and 3 emails queued")
    expect(page.get_by_role("link", name=re.compile(r"^View link for row \d+$"))).to_have_count(3)

    # The emails arrive, each with its own payment link.
    urls = set()
    for name, number in (("jane", 1), ("bob", 3), ("carla", 4)):
        received = wait_for_mail(live_server, batch.email(name), batch.number(number))
        found = set(PAY_URL.findall(received.text))
        assert len(found) == 1 and found <= set(PAY_URL.findall(received.html))
        urls |= found
    assert len(urls) == 3 and all(url.startswith(live_server.url) for url in urls)
    assert "Thanks!" in wait_for_mail(live_server, batch.email("bob"), batch.number(3)).text

    # Sent Pages counts the new links.
    listed = page.request.get("/api/v1/links", params={"status": "all", "q": f"BLK-{batch.tag}"})
    assert listed.ok and listed.json()["total"] == 3
    assert {item["source"] for item in listed.json()["items"]} == {"bulk_upload"}
    page.goto(f"/sent?q=BLK-{batch.tag}")
    # Each row's name (its invoice number) leads to the link's page.
    for number in (1, 3, 4):
        expect(page.get_by_role("link", name=batch.number(number), exact=True)).to_be_visible()
    expect(page.get_by_text(batch.number(2), exact=True)).to_have_count(0)

    with live_server.dbsession() as dbsession:
        links = dbsession.scalars(
            select(PaymentLink).where(PaymentLink.invoice_number.like(f"BLK-{batch.tag}-%"))
        ).all()
        assert sorted(link.invoice_number for link in links) == [
            batch.number(1),
            batch.number(3),
            batch.number(4),
        ]
        assert {
            link.due_date.isoformat() for link in links if link.recipient_name == "Carla Client"
        } == {"2025-03-31"}


def test_at_1280px_every_rows_actions_are_inside_the_box(
    page: Page, sign_in: SignIn, live_server: LiveServer
) -> None:
    batch = Batch()
    sign_in(live_server.staff)
    upload_file(page, batch.csv())
    wrap = page.locator(".bulk-table-wrap")
    # Nothing to scroll sideways to: the whole table, Fix and Delete included, is in view.
    assert wrap.evaluate("el => el.scrollWidth <= el.clientWidth"), wrap.evaluate(
        "el => [el.scrollWidth, el.clientWidth]"
    )
    box = wrap.bounding_box()
    assert box is not None
    for name in ("Fix row 3", "Delete row 3", "Edit row 2", "Delete row 2"):
        control = page.get_by_role("link", name=name).or_(page.get_by_role("button", name=name))
        inner = control.bounding_box()
        assert inner is not None
        assert inner["x"] >= box["x"] and inner["x"] + inner["width"] <= box["x"] + box["width"], (
            name,
            inner,
            box,
        )
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")


@BOTH_WIDTHS
def test_the_upload_and_review_pages_are_accessible(
    page: Page, sign_in: SignIn, live_server: LiveServer, viewport: ViewportSize
) -> None:
    batch = Batch()
    sign_in(live_server.staff)
    page.goto("/bulk")
    assert_accessible(page)
    upload_file(page, batch.csv())
    # The review with rows in error, warnings and the Add form.
    assert_accessible(page)
    page.get_by_role("link", name="Fix row 3").click()
    page.get_by_label("Amount").fill("12.345")
    page.get_by_role("button", name="Add corrected row").click()
    expect(page.get_by_label("Amount")).to_have_attribute("aria-invalid", "true")
    assert_accessible(page)


@BOTH_WIDTHS
def test_generated_links_are_copied_with_their_icons(
    page: Page, sign_in: SignIn, live_server: LiveServer, viewport: ViewportSize
) -> None:
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live_server.url)
    batch = Batch()
    sign_in(live_server.staff)
    good = b"\n".join(
        line for line in batch.csv().split(b"\n") if b"abc" not in line and b"Carla" not in line
    )
    upload_file(page, good)
    page.get_by_role("button", name="Generate Links for Download").click()
    expect(page.locator("[data-result]")).to_contain_text("2 links are ready")
    assert_accessible(page)

    field = page.get_by_label("Payment link for row 3")
    url = field.input_value()
    page.get_by_role("button", name="Copy the link for row 3").click()
    expect(page.locator("#announcer")).to_have_text("Link for row 3 copied")
    assert page.evaluate("navigator.clipboard.readText()") == url
    with live_server.dbsession() as dbsession:
        upload = dbsession.scalars(select(BulkUpload).order_by(BulkUpload.id.desc()).limit(1)).one()
        assert upload.status == "generated"


@pytest.fixture(scope="module")
def queued_server(
    base_settings: dict[str, Any], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    """A live server whose large uploads wait in a real queue until the test runs the job."""
    folder = tmp_path_factory.mktemp("bulk-queued")
    settings = {
        **base_settings,
        "clientpay.bulk.inline_rows": "2",
        "clientpay.jobs.immediate": "false",
        "clientpay.jobs.name": "clientpay-bulk-live-" + uuid.uuid4().hex[:8],
        "clientpay.jobs.sqlite_path": str(folder / "jobs.sqlite"),
    }
    for server in start_live_server(settings, folder):
        try:
            yield server
        finally:
            server.app.registry["clientpay.jobs"].huey.flush()


def test_the_progress_page_follows_the_job_and_then_shows_the_links(
    browser: Browser, queued_server: LiveServer
) -> None:
    context = browser.new_context(base_url=queued_server.url, viewport=WIDE)
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda error: problems.append(str(error)))
    try:
        page.goto("/login")
        page.get_by_label("Email").fill(queued_server.staff.email)
        page.get_by_label("Password").fill(queued_server.staff.password)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(re.compile(r"/$"))
        batch = Batch()
        good = b"\n".join(
            line for line in batch.csv().split(b"\n") if b"abc" not in line and b"Carla" not in line
        )
        upload_file(page, good + f"\nBLK-{batch.tag}-9,,,Dee Client,12,dee@example.test,".encode())
        page.get_by_role("button", name="Generate Links for Download").click()

        # Three rows are more than this server makes in a request: the job will.
        expect(page.get_by_role("heading", name="Making 3 links")).to_be_visible()
        expect(page.locator("progress")).to_have_attribute("max", "3")
        assert_accessible(page)
        upload_id = int(page.url.rstrip("/").rsplit("/", 1)[1])
        with queued_server.dbsession() as dbsession:
            staff_id = dbsession.get(BulkUpload, upload_id).created_by_user_id
        jobs = queued_server.app.registry["clientpay.jobs"]
        assert jobs.run_now(CREATE_LINKS_JOB, upload_id, staff_id) == "done"

        # bulk.js notices, and the page becomes the result without anyone reloading it.
        expect(page.locator("[data-result]")).to_contain_text("3 links are ready")
        expect(page.get_by_label(re.compile(r"^Payment link for row \d+$"))).to_have_count(3)
        assert problems == []
    finally:
        context.close()
