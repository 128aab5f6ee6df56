"""The demo matter database: its size, the invariants of its data, the same data from the
same arguments on every database, and made once unless reset."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import create_engine, func, select

from adapters.sql import demo
from adapters.sql.demo import DemoDatabase, create_demo_matter_database
from clientpay_connect.connect.interfaces import Allocation, PostingRequest
from tests.adapters.conftest import DEMO_SIZE, TODAY, sql_adapter


def all_rows(url: str) -> dict[str, list[dict]]:
    engine = create_engine(url)
    with engine.connect() as conn:
        rows = {
            table.name: [
                dict(row._mapping) for row in conn.execute(table.select().order_by(table.c.id))
            ]
            for table in (demo.clients, demo.matters, demo.invoices)
        }
    engine.dispose()
    return rows


@pytest.fixture(scope="module")
def data(matter_url):
    return all_rows(matter_url)


def test_the_demo_has_the_size_asked_for(data):
    assert len(data["clients"]) == DEMO_SIZE["clients"]
    assert len(data["matters"]) == DEMO_SIZE["matters"]
    assert len(data["invoices"]) == DEMO_SIZE["invoices"]


def test_every_invoice_adds_up_and_its_state_fits_its_balance(data):
    for invoice in data["invoices"]:
        assert invoice["balance"] == invoice["total"] - invoice["paid"]
        assert invoice["paid"] >= 0 and invoice["balance"] >= 0 and invoice["total"] >= 5_000
        assert invoice["state"] in ("open", "paid", "void")
        if invoice["state"] == "open":
            assert invoice["balance"] > 0
        if invoice["state"] == "paid":
            assert invoice["balance"] == 0
        if invoice["state"] == "void":
            assert invoice["paid"] == 0
        assert invoice["due_on"] > invoice["issued_on"]
        assert invoice["issued_on"] <= TODAY
        assert invoice["currency"] == "USD"
        assert invoice["account"] in ("operating", "trust")


def test_every_row_belongs_where_it_says(data):
    matters = {m["id"]: m for m in data["matters"]}
    client_ids = {c["id"] for c in data["clients"]}
    assert {m["client_id"] for m in data["matters"]} == client_ids  # each has a matter
    assert {i["matter_id"] for i in data["invoices"]} == set(matters)  # each has an invoice
    accounts: dict[int, set[str]] = {}
    for invoice in data["invoices"]:
        assert invoice["client_id"] == matters[invoice["matter_id"]]["client_id"]
        accounts.setdefault(invoice["matter_id"], set()).add(invoice["account"])
    assert all(len(kinds) == 1 for kinds in accounts.values())
    assert len({m["number"] for m in data["matters"]}) == len(data["matters"])
    assert len({i["number"] for i in data["invoices"]}) == len(data["invoices"])


def test_the_demo_has_the_cases_a_firm_has(data):
    invoices = data["invoices"]
    open_ones = [i for i in invoices if i["state"] == "open"]
    share = len(open_ones) / len(invoices)
    assert 0.2 < share < 0.7
    assert sum(i["due_on"] < TODAY for i in open_ones) > 20  # past due
    assert sum(i["due_on"] >= TODAY for i in open_ones) > 0  # not yet due
    assert sum(i["paid"] > 0 for i in open_ones) > 10  # partly paid
    assert sum(i["state"] == "paid" for i in invoices) > 50
    assert sum(i["state"] == "void" for i in invoices) > 0
    trust = sum(i["account"] == "trust" for i in open_ones)
    assert 0 < trust < len(open_ones) / 3
    companies = [c for c in data["clients"] if c["email"].startswith("accounts@")]
    assert 0 < len(companies) < len(data["clients"]) / 2
    people = [c for c in data["clients"] if c not in companies]
    assert all(len(c["name"].split()) == 2 for c in people)
    assert all("@" in c["email"] for c in data["clients"])


def test_the_same_arguments_make_the_same_data_on_any_database(data, tmp_path):
    url = f"sqlite:///{tmp_path / 'again.sqlite'}"
    create_demo_matter_database(url, today=TODAY, **DEMO_SIZE)
    assert all_rows(url) == data
    other = f"sqlite:///{tmp_path / 'other.sqlite'}"
    create_demo_matter_database(other, today=TODAY, seed=7, **DEMO_SIZE)
    assert all_rows(other)["clients"] != data["clients"]


def test_the_default_demo_is_a_small_firm_and_is_made_once(tmp_path):
    url = f"sqlite:///{tmp_path / 'var' / 'demo-matters.sqlite'}"
    made = create_demo_matter_database(url)
    assert made == DemoDatabase(url, 300, 1000, 5000, created=True)
    adapter = sql_adapter(url)
    target = adapter.search("INV-0000").invoices[0]
    paid = PostingRequest(
        key="demo-kept",
        received_on=dt.date.today(),
        currency="USD",
        allocations=(Allocation(target.id, target.number, 1),),
    )
    written = adapter.record_payment(paid).external_ids
    again = create_demo_matter_database(url)
    assert again == DemoDatabase(url, 300, 1000, 5000, created=False)
    assert adapter.find_payment(paid) == written
    assert create_demo_matter_database(url, reset=True).created is True
    assert adapter.find_payment(paid) == {}
    adapter.close()


def test_the_staging_table_starts_empty(matter_url):
    engine = create_engine(matter_url)
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(demo.payments)).scalar() == 0
    engine.dispose()


@pytest.mark.parametrize("sizes", [(0, 1, 1), (5, 4, 10), (5, 10, 9)])
def test_sizes_must_nest(tmp_path, sizes):
    clients, matters, invoices = sizes
    with pytest.raises(ValueError, match="clients <= matters <= invoices"):
        create_demo_matter_database(
            f"sqlite:///{tmp_path / 'x.sqlite'}",
            clients=clients,
            matters=matters,
            invoices=invoices,
        )
