"""A Connect link's invoices, each with its amount, wherever the link is shown: the email the
payer gets (through a real SMTP server on loopback), the payment page and its receipt, and
the link's own page for staff."""

from __future__ import annotations

import re
from typing import Any

import pytest
import webtest
from pyramid.router import Router

from tests.conftest import login
from tests.factories import MerchantAccountFactory
from tests.support.matter_adapter import Ledger
from tests.support.payments import card, pay, submission, tokenize
from tests.support.smtp import SMTPServer

pytestmark = pytest.mark.usefixtures("test_adapter_distribution")

URL_RE = re.compile(r"http://localhost(/pay/[A-Za-z0-9_\-]+)")


@pytest.fixture
def payer_app(mail_app: Router, client_ip: str) -> webtest.TestApp:
    return webtest.TestApp(
        mail_app, extra_environ={"REMOTE_ADDR": client_ip, "HTTP_HOST": "localhost"}
    )


@pytest.fixture
def account(firm: Any) -> Any:
    return MerchantAccountFactory(firm=firm, name="Operating")


def send_connect_link(
    app: webtest.TestApp,
    auth: dict[str, str],
    ledger: tuple[str, Ledger],
    account: Any,
    admin_auth: dict[str, str],
    **extra: Any,
) -> dict[str, Any]:
    connection = app.post_json(
        "/api/v1/connections",
        {"adapter": "memory", "name": "Our matters", "settings": {"ledger": ledger[0]}},
        headers=admin_auth,
        status=201,
    ).json
    body = {
        "connection_id": connection["id"],
        "merchant_account_id": account.id,
        "invoices": [{"id": "101", "amount": "200"}, {"id": "102", "amount": "250"}],
        "payer": {"emails": ["jane@example.com"]},
        "send_email": True,
        **extra,
    }
    return dict(app.post_json("/api/v1/connect/links", body, headers=auth, status=201).json)


def pay_path(smtp: SMTPServer) -> str:
    [received] = smtp.messages
    [path] = set(URL_RE.findall(received.text))
    return str(path)


def invoice_lines(page: Any) -> list[list[str]]:
    return [
        [cell.get_text(" ", strip=True) for cell in row.find_all(["th", "td"])]
        for row in page.html.select("[data-pay-invoices] tbody tr")
    ]


def test_the_email_and_the_payment_page_list_each_invoice_with_its_amount(
    payer_app: webtest.TestApp,
    smtp: SMTPServer,
    staff_auth: dict[str, str],
    admin_auth: dict[str, str],
    ledger: tuple[str, Ledger],
    account: Any,
) -> None:
    send_connect_link(payer_app, staff_auth, ledger, account, admin_auth)
    [received] = smtp.messages
    assert (
        "Invoices:\n"
        "  INV-101 (2024-0017 Marlowe divorce): $200.00\n"
        "  INV-102 (2024-0017 Marlowe divorce): $250.00\n"
    ) in received.text
    assert "Amount due: $450.00" in received.text
    assert "INV-101" in received.html and "$250.00" in received.html

    page = payer_app.get(pay_path(smtp))
    assert page.html.select_one(".pay-amount").text == "$450.00"
    assert invoice_lines(page) == [
        ["INV-101 2024-0017 Marlowe divorce", page_due(page, 0), "$200.00"],
        ["INV-102 2024-0017 Marlowe divorce", page_due(page, 1), "$250.00"],
    ]
    # The numbers are in the table: not again as one "Invoice number" line.
    assert "Invoice number" not in page.html.select_one(".pay-details").text

    token = pay_path(smtp).rsplit("/", 1)[1]
    pay(payer_app, token, submission(tokenize(payer_app, card()), "$450.00"), status=201)
    receipt = payer_app.get(f"/pay/{token}/receipt")
    said = {
        row.find("dt").get_text(strip=True): row.find("dd").get_text(strip=True)
        for row in receipt.html.select("dl div")
    }
    assert said["Invoices"] == "INV-101, INV-102"
    assert "Invoice number" not in said


def page_due(page: Any, index: int) -> str:
    due = page.html.select("[data-pay-invoices] tbody tr")[index].find_all("td")[0].text
    assert re.fullmatch(r"[A-Z][a-z]+ \d{1,2}, \d{4}", due), due
    return str(due)


def test_a_spanish_payer_reads_facturas(
    payer_app: webtest.TestApp,
    smtp: SMTPServer,
    staff_auth: dict[str, str],
    admin_auth: dict[str, str],
    ledger: tuple[str, Ledger],
    account: Any,
) -> None:
    send_connect_link(payer_app, staff_auth, ledger, account, admin_auth, locale="es")
    [received] = smtp.messages
    assert "Facturas:\n  INV-101 (2024-0017 Marlowe divorce): $200.00" in received.text
    page = payer_app.get(pay_path(smtp))
    table = page.html.select_one("[data-pay-invoices]")
    assert table.find("caption").text == "Facturas"
    assert [th.text for th in table.select("thead th")] == [
        "Factura",
        "Fecha de vencimiento",
        "Monto",
    ]


def test_the_links_page_lists_the_invoices_for_staff(
    payer_app: webtest.TestApp,
    smtp: SMTPServer,
    staff: Any,
    staff_auth: dict[str, str],
    admin_auth: dict[str, str],
    ledger: tuple[str, Ledger],
    account: Any,
) -> None:
    link = send_connect_link(payer_app, staff_auth, ledger, account, admin_auth)
    login(payer_app, staff)
    page = payer_app.get(f"/links/{link['id']}")
    assert page.html.select_one("[data-link-source]").text == "Connect"
    rows = page.html.select("[data-link-invoices] tbody tr")
    assert [
        (row.find("th").text, [td.text for td in row.find_all("td")][1::4]) for row in rows
    ] == [
        ("INV-101", ["2024-0017 Marlowe divorce", "$200.00"]),
        ("INV-102", ["2024-0017 Marlowe divorce", "$250.00"]),
    ]


def test_a_quick_links_page_has_no_invoice_table(
    payer_app: webtest.TestApp, staff_auth: dict[str, str], account: Any
) -> None:
    made = payer_app.post_json(
        "/api/v1/links",
        {"merchant_account_id": account.id, "amount": "10", "invoice_number": "Q-1"},
        headers=staff_auth,
        status=201,
    ).json
    page = payer_app.get(made["url"].replace("http://localhost", ""))
    assert page.html.select("[data-pay-invoices]") == []
    assert "Q-1" in page.html.select_one(".pay-details").text
