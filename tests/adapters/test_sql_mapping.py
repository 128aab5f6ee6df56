"""Another firm's schema, mapped by settings alone: other table and column names, text client
numbers, decimal amounts, one-letter states, and columns it does not have."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from decimal import Decimal

import pytest
from sqlalchemy import (
    Column,
    Date,
    ForeignKey,
    Integer,
    MetaData,
    Numeric,
    String,
    Table,
    UniqueConstraint,
    create_engine,
)

from clientpay_connect.connect.interfaces import Allocation, Conflict, Permanent, PostingRequest
from tests.adapters.conftest import sql_adapter
from tests.support.matter_databases import KINDS, fresh_matter_database

metadata = MetaData()
ar_client = Table(
    "AR_CLIENT",
    metadata,
    Column("CLIENT_NO", String(12), primary_key=True),
    Column("CLIENT_NAME", String(120), nullable=False),
)
ar_matter = Table(
    "AR_MATTER",
    metadata,
    Column("MATTER_ID", Integer, primary_key=True),
    Column("CLIENT_NO", String(12), ForeignKey("AR_CLIENT.CLIENT_NO"), nullable=False),
    Column("MATTER_NO", String(20), nullable=False),
    Column("DESCRIPTION", String(120), nullable=False),
)
ar_invoice = Table(
    "AR_INVOICE",
    metadata,
    Column("INV_ID", Integer, primary_key=True),
    Column("INV_NO", String(20), nullable=False),
    Column("CLIENT_NO", String(12), nullable=False),
    Column("MATTER_ID", Integer, ForeignKey("AR_MATTER.MATTER_ID"), nullable=False),
    Column("DUE_DATE", Date),
    Column("AMOUNT", Numeric(12, 2), nullable=False),
    Column("BAL_DUE", Numeric(12, 2), nullable=False),
    Column("STATUS", String(1), nullable=False),
)
cp_receipt = Table(
    "CP_RECEIPT",
    metadata,
    Column("ID", Integer, primary_key=True),
    Column("KEYREF", String(200), nullable=False),
    Column("INV_ID", Integer, nullable=False),
    Column("AMT", Numeric(12, 2), nullable=False),
    UniqueConstraint("KEYREF", "INV_ID"),
)

NOT_THERE = None
MAPPING = {
    "amounts_in": "decimal",
    "currency": "usd",
    "tables": {
        "clients": "AR_CLIENT",
        "matters": "AR_MATTER",
        "invoices": "AR_INVOICE",
        "payments": "CP_RECEIPT",
    },
    "columns": {
        "clients": {"id": "CLIENT_NO", "name": "CLIENT_NAME", "email": NOT_THERE},
        "matters": {
            "id": "MATTER_ID",
            "client_id": "CLIENT_NO",
            "number": "MATTER_NO",
            "name": "DESCRIPTION",
        },
        "invoices": {
            "id": "INV_ID",
            "number": "INV_NO",
            "client_id": "CLIENT_NO",
            "matter_id": "MATTER_ID",
            "due_on": "DUE_DATE",
            "total": "AMOUNT",
            "balance": "BAL_DUE",
            "state": "STATUS",
            **dict.fromkeys(
                ("issued_on", "currency", "paid", "account", "version", "updated_at"), NOT_THERE
            ),
        },
        "payments": {
            "id": "ID",
            "posting_key": "KEYREF",
            "invoice_id": "INV_ID",
            "amount": "AMT",
            **dict.fromkeys(
                (
                    "invoice_number",
                    "client_id",
                    "matter_id",
                    "currency",
                    "received_on",
                    "reference",
                    "payer_name",
                    "method",
                    "created_at",
                ),
                NOT_THERE,
            ),
        },
    },
    "values": {"state": {"open": "O", "paid": "P", "void": "V"}},
}


@pytest.fixture(scope="module", params=KINDS)
def firm_url(request, tmp_path_factory) -> Iterator[str]:
    with fresh_matter_database(request.param, tmp_path_factory.mktemp("firm")) as url:
        engine = create_engine(url)
        with engine.begin() as conn:
            metadata.create_all(conn)
            conn.execute(
                ar_client.insert(),
                [
                    {"CLIENT_NO": "C-0042", "CLIENT_NAME": "Fairweather Logistics"},
                    {"CLIENT_NO": "C-0043", "CLIENT_NAME": "Bram Oduya"},
                ],
            )
            conn.execute(
                ar_matter.insert(),
                [
                    {"MATTER_ID": 7, "CLIENT_NO": "C-0042", "MATTER_NO": "0042-001",
                     "DESCRIPTION": "Warehouse lease"},
                    {"MATTER_ID": 8, "CLIENT_NO": "C-0043", "MATTER_NO": "0043-001",
                     "DESCRIPTION": "Probate"},
                ],
            )  # fmt: skip
            conn.execute(ar_invoice.insert(), [
                {"INV_ID": 101, "INV_NO": "A101", "CLIENT_NO": "C-0042", "MATTER_ID": 7,
                 "DUE_DATE": dt.date(2025, 3, 1), "AMOUNT": Decimal("1200.50"),
                 "BAL_DUE": Decimal("200.25"), "STATUS": "O"},
                {"INV_ID": 102, "INV_NO": "A102", "CLIENT_NO": "C-0042", "MATTER_ID": 7,
                 "DUE_DATE": None, "AMOUNT": Decimal("99.99"), "BAL_DUE": Decimal("99.99"),
                 "STATUS": "O"},
                {"INV_ID": 103, "INV_NO": "A103", "CLIENT_NO": "C-0042", "MATTER_ID": 7,
                 "DUE_DATE": dt.date(2025, 1, 1), "AMOUNT": Decimal("50.00"),
                 "BAL_DUE": Decimal("50.00"), "STATUS": "V"},
                {"INV_ID": 104, "INV_NO": "B104", "CLIENT_NO": "C-0043", "MATTER_ID": 8,
                 "DUE_DATE": dt.date(2025, 2, 1), "AMOUNT": Decimal("10.00"),
                 "BAL_DUE": Decimal("10.00"), "STATUS": "O"},
            ])  # fmt: skip
        engine.dispose()
        yield url


@pytest.fixture
def firm(firm_url):
    adapter = sql_adapter(firm_url, **MAPPING)
    yield adapter
    adapter.close()


def balance(url: str, invoice_id: int) -> tuple[Decimal, str]:
    engine = create_engine(url)
    with engine.connect() as conn:
        row = conn.execute(ar_invoice.select().where(ar_invoice.c["INV_ID"] == invoice_id)).one()
    engine.dispose()
    return Decimal(row.BAL_DUE), row.STATUS


def test_the_mapped_schema_searches_in_minor_units(firm):
    assert firm.capabilities.trust is False  # no account column
    result = firm.search("fairWEATHER")
    assert [(c.id, c.name, c.email) for c in result.clients] == [
        ("C-0042", "Fairweather Logistics", "")
    ]
    assert [(m.id, m.number, m.client_id) for m in result.matters] == [("7", "0042-001", "C-0042")]
    first, undated = result.invoices  # the void one is left out; no due date comes last
    assert (first.id, first.total, first.balance, first.paid) == ("101", 120_050, 20_025, 100_025)
    assert (first.currency, first.account, first.state, first.version) == (
        "USD",
        "operating",
        "open",
        "",
    )
    assert first.issued_on is None and first.due_on == dt.date(2025, 3, 1)
    assert (undated.id, undated.due_on, undated.balance) == ("102", None, 9_999)
    assert [c.id for c in firm.search("", client_id="C-0043").clients] == ["C-0043"]
    by_number = firm.search("b10")
    assert [(c.id, [m.id for m in by_number.matters]) for c in by_number.clients] == [
        ("C-0043", ["8"])
    ]
    assert [i.id for i in by_number.invoices] == ["104"]
    by_matter = firm.search("0042-0")
    assert [i.id for i in by_matter.invoices] == ["101", "102"]
    assert [i.state for i in firm.get_invoices(["103"])] == ["void"]


def test_the_mapped_schema_takes_a_payment_in_decimals(firm, firm_url):
    posting = PostingRequest(
        key="mapped-1",
        received_on=dt.date(2025, 6, 30),
        currency="USD",
        allocations=(Allocation("101", "A101", 20_025), Allocation("104", "B104", 401)),
    )
    result = firm.record_payment(posting)
    assert result.outcome == "posted" and set(result.external_ids) == {"101", "104"}
    assert balance(firm_url, 101) == (Decimal("0.00"), "P")
    assert balance(firm_url, 104) == (Decimal("5.99"), "O")
    assert firm.find_payment(posting) == dict(result.external_ids)
    assert firm.record_payment(posting).external_ids == result.external_ids
    assert balance(firm_url, 104) == (Decimal("5.99"), "O")


def test_the_mapped_schema_refuses_a_void_invoice(firm, firm_url):
    posting = PostingRequest(
        key="mapped-void",
        received_on=dt.date(2025, 6, 30),
        currency="USD",
        allocations=(Allocation("103", "A103", 100),),
    )
    with pytest.raises(Conflict, match="A103 is void"):
        firm.record_payment(posting)
    assert balance(firm_url, 103) == (Decimal("50.00"), "V")


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"columns": {"invoices": {"balance": None}}}, "'balance' cannot be left out"),
        ({"columns": {"invoices": {"owed": "X"}}}, "Unknown invoices columns"),
        ({"tables": {"bills": "X"}}, "Unknown tables"),
        ({"values": {"state": {"closed": "C"}}}, "Unknown state values"),
        ({"amounts_in": "cents"}, "'amounts_in' must be"),
    ],
)
def test_a_wrong_mapping_is_refused_with_what_is_wrong(settings, message):
    with pytest.raises(Permanent, match=message):
        sql_adapter("sqlite://", **settings)
