"""The reconciliation report: its figures against postings whose statuses and amounts are
known (each counted once, amounts summed right), the period's days in the firm's time zone,
the rows behind each figure, the page, and the workbook read back with openpyxl."""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Iterator
from dataclasses import replace
from typing import Any
from zoneinfo import ZoneInfo

import openpyxl
import pytest
import webtest
from pyramid.router import Router
from sqlalchemy import delete, inspect
from sqlalchemy.orm import Session

from clientpay_connect.admin.models import FirmSettings
from clientpay_connect.links.models import PaymentLink
from clientpay_connect.pay.models import Payment
from clientpay_connect.postings.models import Posting, PostingAttempt
from clientpay_connect.postings.services import create_posting_for_payment
from clientpay_connect.reports.reconciliation import (
    Selection,
    _in_period,
    _lines_query,
    month_of,
    parse_period,
)
from clientpay_connect.work import Work
from tests.conftest import bearer, login
from tests.factories import FirmFactory, MerchantAccountFactory, UserFactory
from tests.support.matter_adapter import Ledger, registered_test_adapter
from tests.support.postings import (
    add_connection,
    marlowe_ledger,
    paid_connect_link,
    posting_of,
    registered,
)

REPORT = "/api/v1/reports/reconciliation"
MARCH = {"from": "2024-03-01", "to": "2024-03-31"}
IN_MARCH = dt.date(2024, 3, 15)
ONE_INVOICE = (("101", "500.00"),)


@pytest.fixture(scope="module", autouse=True)
def test_distribution(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    with registered_test_adapter(tmp_path_factory.mktemp("site")):
        yield


@pytest.fixture
def ledger() -> Iterator[tuple[str, Ledger]]:
    book = marlowe_ledger(dt.date.today())
    book.add_invoice(replace(book.invoices["101"], id="103", number="INV-103", account="trust"))
    with registered(book) as name:
        yield name, book


@pytest.fixture
def connections(
    testapp: webtest.TestApp, admin_auth: dict[str, str], ledger: tuple[str, Ledger]
) -> dict[str, dict[str, Any]]:
    return {
        name: add_connection(testapp, admin_auth, ledger[0], name)
        for name in ("Our matters", "Second system")
    }


@pytest.fixture
def accounts(firm: Any) -> dict[str, Any]:
    return {
        "Operating": MerchantAccountFactory(firm=firm, name="Operating"),
        "Trust": MerchantAccountFactory(firm=firm, name="Trust", kind="trust"),
    }


@pytest.fixture
def received(
    testapp: webtest.TestApp,
    dbsession: Session,
    staff_auth: dict[str, str],
    connections: dict[str, dict[str, Any]],
    accounts: dict[str, Any],
) -> Any:
    """A posting paid through a Connect link, then in ``status``, received on ``on``."""

    def make(
        status: str,
        amount: str = "700.00",
        on: dt.date = IN_MARCH,
        account: str = "Operating",
        connection: str = "Our matters",
        invoices: tuple[tuple[str, str], ...] | None = None,
        payer_name: str = "Pat Payer",
    ) -> Posting:
        link = paid_connect_link(
            testapp,
            staff_auth,
            connections[connection],
            accounts[account],
            amount,
            **({"invoices": invoices} if invoices else {}),
            payer_name=payer_name,
        )
        posting = posting_of(dbsession, link)
        posting.status = status
        posting.received_on = on
        dbsession.flush()
        return posting

    return make


def group_of(report: dict[str, Any], account: str, connection: str | None) -> dict[str, Any]:
    for group in report["groups"]:
        named = group["connection"]["name"] if group["connection"] else None
        if group["merchant_account"]["name"] == account and named == connection:
            return dict(group["figures"])
    raise AssertionError(f"no group {account} / {connection}")


def figures(pairs: dict[str, tuple[int, str]]) -> dict[str, dict[str, Any]]:
    """The figures JSON: every figure, zero unless given as (count, amount)."""
    names = ("received", "posted", "pending", "incomplete", "manual", "removed", "failed")
    return {
        name: {"count": pairs.get(name, (0, "0.00"))[0], "amount": pairs.get(name, (0, "0.00"))[1]}
        for name in names
    }


def test_each_posting_counts_once_in_received_and_once_in_its_status(
    testapp: webtest.TestApp, staff_auth: dict[str, str], received: Any
) -> None:
    for status in ("posted", "pending", "incomplete", "manual_required", "removed", "failed"):
        received(status)
    received("queued", amount="550.00")
    received("posted", amount="300.00", connection="Second system", invoices=ONE_INVOICE)
    received("posted", amount="250.00", account="Trust", invoices=(("103", "250.00"),))

    report = testapp.get(REPORT, MARCH, headers=staff_auth).json
    assert report["from"] == "2024-03-01" and report["to"] == "2024-03-31"
    assert report["time_zone"] == "America/New_York"
    assert group_of(report, "Operating", "Our matters") == figures(
        {
            "received": (7, "4750.00"),
            "posted": (1, "700.00"),
            "pending": (2, "1250.00"),
            "incomplete": (1, "700.00"),
            "manual": (1, "700.00"),
            "removed": (1, "700.00"),
            "failed": (1, "700.00"),
        }
    )
    assert group_of(report, "Operating", "Second system") == figures(
        {"received": (1, "300.00"), "posted": (1, "300.00")}
    )
    assert group_of(report, "Trust", "Our matters") == figures(
        {"received": (1, "250.00"), "posted": (1, "250.00")}
    )
    assert [g["merchant_account"]["kind"] for g in report["groups"]] == [
        "operating",
        "operating",
        "trust",
    ]
    assert report["totals"] == [
        {
            "currency": "USD",
            "figures": figures(
                {
                    "received": (9, "5300.00"),
                    "posted": (3, "1250.00"),
                    "pending": (2, "1250.00"),
                    "incomplete": (1, "700.00"),
                    "manual": (1, "700.00"),
                    "removed": (1, "700.00"),
                    "failed": (1, "700.00"),
                }
            ),
        }
    ]


def test_the_period_includes_both_its_days_and_nothing_beyond(
    testapp: webtest.TestApp, staff_auth: dict[str, str], received: Any
) -> None:
    received("posted", amount="100.00", on=dt.date(2024, 2, 29), invoices=ONE_INVOICE)
    received("posted", amount="200.00", on=dt.date(2024, 3, 1), invoices=ONE_INVOICE)
    received("posted", amount="300.00", on=dt.date(2024, 3, 31), invoices=ONE_INVOICE)
    received("posted", amount="400.00", on=dt.date(2024, 4, 1), invoices=ONE_INVOICE)
    march = testapp.get(REPORT, MARCH, headers=staff_auth).json
    assert march["totals"][0]["figures"]["received"] == {"count": 2, "amount": "500.00"}
    one_day = testapp.get(REPORT, {"from": "2024-04-01", "to": "2024-04-01"}, headers=staff_auth)
    assert one_day.json["totals"][0]["figures"]["posted"] == {"count": 1, "amount": "400.00"}
    empty = testapp.get(REPORT, {"from": "2023-01-01", "to": "2023-12-31"}, headers=staff_auth)
    assert empty.json["groups"] == [] and empty.json["totals"] == []


def test_a_payment_belongs_to_the_day_it_was_received_in_the_firms_time_zone(
    app: Router,
    testapp: webtest.TestApp,
    dbsession: Session,
    staff_auth: dict[str, str],
    received: Any,
) -> None:
    """Paid at 10:30 p.m. in New York on March 31st (2:30 a.m. UTC on April 1st): March's."""
    posting = received("pending")
    payment_id, link_id = posting.payment_id, posting.link_id
    # The posting is made again as the payment's completion makes it, at that moment.
    dbsession.execute(delete(PostingAttempt).where(PostingAttempt.posting_id == posting.id))
    dbsession.execute(delete(Posting).where(Posting.id == posting.id))
    dbsession.flush()
    with Work.fresh(app.registry) as work:
        payment = work.dbsession.get(Payment, payment_id)
        link = work.dbsession.get(PaymentLink, link_id)
        assert payment is not None and link is not None
        payment.completed_at = dt.datetime(2024, 4, 1, 2, 30, tzinfo=dt.UTC)
        create_posting_for_payment(work, payment, link)
    march = testapp.get(REPORT, MARCH, headers=staff_auth).json
    assert march["totals"][0]["figures"]["pending"] == {"count": 1, "amount": "700.00"}
    april = testapp.get(REPORT, {"from": "2024-04-01", "to": "2024-04-30"}, headers=staff_auth)
    assert april.json["totals"] == []


def test_the_default_period_is_this_month_in_the_firms_time_zone(
    testapp: webtest.TestApp, dbsession: Session, firm: Any, staff_auth: dict[str, str]
) -> None:
    # Kiribati's Line Islands are fourteen hours ahead of UTC: for ten hours of each day
    # their date is not UTC's.
    settings = dbsession.get(FirmSettings, firm.id)
    assert settings is not None
    settings.time_zone = "Pacific/Kiritimati"
    dbsession.flush()
    report = testapp.get(REPORT, headers=staff_auth).json
    here = month_of(dt.datetime.now(ZoneInfo("Pacific/Kiritimati")).date())
    assert (report["from"], report["to"]) == (here.start.isoformat(), here.end.isoformat())
    assert report["time_zone"] == "Pacific/Kiritimati"


def test_a_period_is_read_with_its_defaults_and_its_errors() -> None:
    today = dt.date(2024, 2, 10)
    assert parse_period({}, today)[0] == month_of(today)
    assert month_of(today).end == dt.date(2024, 2, 29)
    period, errors = parse_period({"from": "2024-01-05"}, today)
    assert (period.start, period.end, errors) == (dt.date(2024, 1, 5), dt.date(2024, 2, 29), [])
    assert parse_period({"from": "2024-03-02", "to": "2024-03-01"}, today)[1] == [
        {"field": "to", "message": "The period ends before it starts."}
    ]
    assert parse_period({"from": "2022-01-01", "to": "2024-01-01"}, today)[1][0]["field"] == "to"
    assert parse_period({"from": "yesterday"}, today)[1] == [
        {"field": "from", "message": "Enter a date as YYYY-MM-DD."}
    ]


def test_the_api_refuses_a_period_it_cannot_read(
    testapp: webtest.TestApp, staff_auth: dict[str, str]
) -> None:
    answer = testapp.get(
        REPORT, {"from": "2024-03-31", "to": "2024-03-01"}, headers=staff_auth, status=422
    )
    assert answer.json["errors"] == [
        {"field": "to", "message": "The period ends before it starts."}
    ]
    testapp.get(REPORT, {"from": "31/03/2024"}, headers=staff_auth, status=422)
    testapp.get(REPORT, MARCH, status=401)


def test_the_rows_behind_a_figure_page_by_page(
    testapp: webtest.TestApp,
    staff_auth: dict[str, str],
    accounts: dict[str, Any],
    connections: dict[str, dict[str, Any]],
    received: Any,
) -> None:
    pending = received("pending", payer_name="Jane Marlowe")
    queued = received("queued", amount="550.00")
    received("posted")
    received("pending", connection="Second system")
    rows = "/api/v1/reports/reconciliation/postings"
    selection = {
        **MARCH,
        "figure": "pending",
        "merchant_account_id": str(accounts["Operating"].id),
        "connection_id": str(connections["Our matters"]["id"]),
    }
    first = testapp.get(rows, {**selection, "limit": "1"}, headers=staff_auth).json
    assert [item["id"] for item in first["items"]] == [queued.id]
    assert first["items"][0]["figure"] == "pending"
    assert first["items"][0]["amount"] == "550.00"
    second = testapp.get(
        rows, {**selection, "limit": "1", "cursor": first["next_cursor"]}, headers=staff_auth
    ).json
    assert [item["id"] for item in second["items"]] == [pending.id]
    assert second["next_cursor"] is None
    item = second["items"][0]
    assert item["payer_name"] == "Jane Marlowe" and item["receipt_number"].startswith("R-")
    assert item["merchant_account_id"] == accounts["Operating"].id
    everything = testapp.get(rows, MARCH, headers=staff_auth).json
    assert len(everything["items"]) == 4
    none = testapp.get(rows, {**MARCH, "connection_id": "none"}, headers=staff_auth).json
    assert none["items"] == []
    testapp.get(rows, {**MARCH, "figure": "lost"}, headers=staff_auth, status=422)
    testapp.get(rows, {**MARCH, "cursor": "nonsense"}, headers=staff_auth, status=422)


def test_another_firms_postings_are_never_counted_or_listed(
    testapp: webtest.TestApp,
    dbsession: Session,
    staff_auth: dict[str, str],
    ledger: tuple[str, Ledger],
    received: Any,
) -> None:
    received("posted")
    other = FirmFactory()
    their_admin = bearer(dbsession, UserFactory(firm=other, role="admin"))
    their_staff = bearer(dbsession, UserFactory(firm=other, role="staff"))
    their_connection = add_connection(testapp, their_admin, ledger[0], "Their matters")
    their_account = MerchantAccountFactory(firm=other, name="Theirs")
    link = paid_connect_link(testapp, their_staff, their_connection, their_account, "700.00")
    theirs = posting_of(dbsession, link)
    theirs.received_on = IN_MARCH
    dbsession.flush()
    report = testapp.get(REPORT, MARCH, headers=staff_auth).json
    assert [g["merchant_account"]["name"] for g in report["groups"]] == ["Operating"]
    assert report["totals"][0]["figures"]["received"]["count"] == 1
    listed = testapp.get(
        "/api/v1/reports/reconciliation/postings",
        {**MARCH, "merchant_account_id": str(their_account.id)},
        headers=staff_auth,
    ).json
    assert listed["items"] == []


def test_the_page_shows_the_figures_and_lists_the_rows_behind_one(
    testapp: webtest.TestApp, staff: Any, received: Any
) -> None:
    failed = received("failed", payer_name="Jane Marlowe")
    received("posted")
    login(testapp, staff)
    page = testapp.get("/reports/reconciliation", MARCH)
    group = page.html.select_one("tr[data-group]")
    cells = [
        (cell.select_one("[data-count]").get_text(), cell.select_one("[data-amount]").get_text())
        for cell in group.select("td.num")
    ]
    assert cells == [
        ("2", "$1,400.00"),
        ("1", "$700.00"),
        ("0", "$0.00"),
        ("0", "$0.00"),
        ("0", "$0.00"),
        ("0", "$0.00"),
        ("1", "$700.00"),
    ]
    assert "Operating" in group.get_text() and "Our matters" in group.get_text()
    drill = testapp.get(group.select("td.num a")[6]["href"])
    assert [int(tr["data-posting-id"]) for tr in drill.html.select("[data-lines] tbody tr")] == [
        failed.id
    ]
    assert "Failed · Operating · Our matters" in drill.html.select_one("#rows-heading").get_text()
    assert "Jane Marlowe" in drill.html.select_one("[data-lines]").get_text()
    # Each line opens its posting, named for people rather than by its number.
    detail = drill.html.select_one("[data-lines] tbody th a")
    assert detail["href"].endswith(f"/postings/{failed.id}")
    assert " ".join(detail.get_text().split()) == (
        "Details of the payment of $700.00 from Jane Marlowe"
    )
    export = page.html.select_one("a[data-export]")["href"]
    assert "reconciliation.xlsx" in export and "from=2024-03-01" in export
    wrong = testapp.get("/reports/reconciliation", {"from": "soon"}, status=422)
    assert wrong.html.select_one("#period-from-error") is not None


def test_manage_postings_links_to_the_report(testapp: webtest.TestApp, staff: Any) -> None:
    login(testapp, staff)
    page = testapp.get("/postings")
    assert page.click(href="/reports/reconciliation").status_int == 200


def test_the_workbook_has_typed_cells_and_no_formulas(
    testapp: webtest.TestApp, staff_auth: dict[str, str], received: Any
) -> None:
    hostile = '=HYPERLINK("https://evil.example","Click")'
    received("posted", payer_name=hostile)
    received("pending", amount="550.00")
    answer = testapp.get("/api/v1/reports/reconciliation.xlsx", MARCH, headers=staff_auth)
    assert answer.content_type.endswith("spreadsheetml.sheet")
    assert "reconciliation-2024-03-01-to-2024-03-31.xlsx" in answer.headers["Content-Disposition"]
    workbook = openpyxl.load_workbook(io.BytesIO(answer.body))
    assert workbook.sheetnames == ["Summary", "Postings"]

    summary = list(workbook["Summary"].iter_rows())
    header = [cell.value for cell in summary[0]]
    assert header[:7] == [
        "From",
        "To",
        "Merchant Account",
        "Connection",
        "Currency",
        "Received Count",
        "Received Amount",
    ]
    group, total = summary[1], summary[2]
    assert group[0].value == dt.datetime(2024, 3, 1) and group[0].number_format == "yyyy-mm-dd"
    assert [c.value for c in group[2:7]] == ["Operating", "Our matters", "USD", 2, 1250]
    assert group[6].data_type == "n" and '"$"#,##0.00' in group[6].number_format
    posted_amount = header.index("Posted Amount")
    waiting_count = header.index("Waiting Count")
    assert group[posted_amount].value == 700 and group[waiting_count].value == 1
    assert [c.value for c in total[2:7]] == ["Total", None, "USD", 2, 1250]

    postings = list(workbook["Postings"].iter_rows(values_only=False))
    columns = [cell.value for cell in postings[0]]
    rows = [{columns[i]: cell for i, cell in enumerate(row)} for row in postings[1:]]
    assert len(rows) == 2
    by_payer = {row["Payer"].value: row for row in rows}
    evil = by_payer["'" + hostile]
    assert evil["Payer"].data_type == "s"
    assert evil["Received On"].value == dt.datetime(2024, 3, 15)
    assert evil["Amount"].value == 700 and evil["Amount"].data_type == "n"
    assert evil["Status"].value == "Posted" and evil["Figure"].value == "Posted"
    assert evil["Invoices"].value == "INV-101 500.00; INV-102 200.00"
    # Nothing in either sheet is a formula.
    for sheet in workbook.worksheets:
        for row in sheet.iter_rows():
            assert all(cell.data_type != "f" for cell in row)


# --- the index behind the period ----------------------------------------------------------


def test_the_postings_of_a_firm_and_period_are_found_by_their_index(dbsession):
    """ix_postings_firm_received: a report reads the firm's postings of its period, not every
    posting of the firm (the plan is SQLite's; the index itself is checked on any database)."""
    indexes = {
        index["name"]: index["column_names"]
        for index in inspect(dbsession.connection()).get_indexes("postings")
    }
    assert indexes["ix_postings_firm_received"] == ["firm_id", "received_on"]
    if dbsession.bind.dialect.name != "sqlite":
        return
    period = parse_period(MARCH, IN_MARCH)[0]
    for query in (_in_period(7, period), _lines_query(7, period, Selection())):
        sql = str(query.compile(dialect=dbsession.bind.dialect))
        arguments = (7, period.start.isoformat(), period.end.isoformat())
        plan = dbsession.connection().exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}", arguments)
        steps = " | ".join(str(step[-1]) for step in plan)
        assert "postings USING INDEX ix_postings_firm_received" in steps, steps
