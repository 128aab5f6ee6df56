"""The sql adapter's write-back, on SQLite, PostgreSQL and MariaDB: staging rows and lower
balances in one transaction, once per posting key, even when two workers race."""

from __future__ import annotations

import datetime as dt
import threading

import pytest

from clientpay_connect.connect.interfaces import (
    Allocation,
    Conflict,
    Permanent,
    PostingRequest,
    Transient,
)
from tests.adapters.conftest import sql_adapter
from tests.support.matter_databases import word


def two_invoices(rows, tag, first_total=30_000, second_total=20_000):
    client = rows.client(f"Payer {tag}")
    matter = rows.matter(client, f"P-{tag}")
    first = rows.invoice(client, matter, f"{tag}-1", total=first_total, due_on=dt.date(2025, 1, 1))
    second = rows.invoice(client, matter, f"{tag}-2", total=second_total, paid=5_000)
    return client, matter, first, second


def posting(tag, *allocations, key=None):
    return PostingRequest(
        key=key or f"posting-{tag}",
        received_on=dt.date(2025, 6, 30),
        currency="USD",
        allocations=tuple(allocations),
        reference=f"R-{tag}",
        payer_name="Ottoline Quaye",
        method="card",
    )


def allocation(invoice_id, amount, tag, n=1, external_id=None):
    return Allocation(invoice_id, f"{tag}-{n}", amount, external_id)


def test_a_payment_lowers_balances_and_stages_one_row_per_allocation(adapter, rows):
    tag = word()
    client, matter, first, second = two_invoices(rows, tag)
    request = posting(tag, allocation(first, 30_000, tag), allocation(second, 4_000, tag, 2))
    result = adapter.record_payment(request)
    assert result.outcome == "posted"
    staged = rows.staged(request.key)
    assert [(str(r["invoice_id"]), r["amount"]) for r in staged] == [
        (first, 30_000),
        (second, 4_000),
    ]
    assert dict(result.external_ids) == {str(r["invoice_id"]): str(r["id"]) for r in staged}
    row = staged[1]
    assert row["invoice_number"] == f"{tag}-2"
    assert (str(row["client_id"]), str(row["matter_id"])) == (client, matter)
    assert (row["currency"], row["received_on"], row["reference"]) == (
        "USD",
        dt.date(2025, 6, 30),
        f"R-{tag}",
    )
    assert (row["payer_name"], row["method"]) == ("Ottoline Quaye", "card")
    paid_off, lowered = rows.invoice_row(first), rows.invoice_row(second)
    assert (paid_off["paid"], paid_off["balance"], paid_off["state"]) == (30_000, 0, "paid")
    assert (lowered["paid"], lowered["balance"], lowered["state"]) == (9_000, 11_000, "open")
    assert paid_off["version"] == lowered["version"] == 2
    assert adapter.find_payment(request) == dict(result.external_ids)
    # What search shows now: the paid invoice is gone, the other owes less.
    assert [(i.id, i.balance) for i in adapter.search(tag).invoices] == [(second, 11_000)]


def test_the_same_key_twice_writes_once_and_answers_the_same(adapter, rows):
    tag = word()
    _c, _m, first, second = two_invoices(rows, tag)
    request = posting(tag, allocation(first, 1_000, tag), allocation(second, 2_000, tag, 2))
    once = adapter.record_payment(request)
    again = adapter.record_payment(request)
    assert again.outcome == "posted"
    assert dict(again.external_ids) == dict(once.external_ids)
    assert len(rows.staged(request.key)) == 2
    assert rows.invoice_row(first)["balance"] == 29_000
    assert rows.invoice_row(second)["balance"] == 13_000


def test_two_workers_posting_the_same_key_at_once_write_it_once(matter_url, rows):
    """Each round, two adapters (two workers) start the same posting together."""
    for _round in range(5):
        tag = word()
        _c, _m, first, second = two_invoices(rows, tag)
        request = posting(tag, allocation(first, 7_000, tag), allocation(second, 3_000, tag, 2))
        workers = [sql_adapter(matter_url), sql_adapter(matter_url)]
        start = threading.Barrier(2)
        results: list[object] = [None, None]

        def post(n, workers=workers, start=start, results=results, request=request):
            start.wait()
            try:
                results[n] = workers[n].record_payment(request)
            except Exception as error:  # the assertion below shows it
                results[n] = error

        threads = [threading.Thread(target=post, args=(n,)) for n in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        for worker in workers:
            worker.close()
        assert [getattr(r, "outcome", r) for r in results] == ["posted", "posted"]
        assert results[0].external_ids == results[1].external_ids
        assert len(rows.staged(request.key)) == 2
        assert rows.invoice_row(first)["balance"] == 23_000
        assert rows.invoice_row(second)["balance"] == 12_000


def test_a_balance_below_the_allocation_is_a_conflict_and_nothing_is_written(adapter, rows):
    tag = word()
    _c, _m, first, second = two_invoices(rows, tag)
    # The first allocation alone would fit: the second's conflict must undo it too.
    request = posting(tag, allocation(first, 10_000, tag), allocation(second, 15_001, tag, 2))
    with pytest.raises(Conflict, match=r"balance is now \$150\.00, below the \$150\.01"):
        adapter.record_payment(request)
    assert rows.staged(request.key) == []
    assert rows.invoice_row(first)["balance"] == 30_000
    assert rows.invoice_row(second)["balance"] == 15_000
    assert adapter.find_payment(request) == {}


@pytest.mark.parametrize(
    ("change", "reason"),
    [("void", "is void"), ("paid", "is closed"), ("unknown", "is not in the matter system")],
)
def test_a_void_closed_or_unknown_invoice_is_a_conflict(adapter, rows, change, reason):
    tag = word()
    _c, _m, first, second = two_invoices(rows, tag)
    target = second
    if change == "unknown":
        target = "987654321"
    else:
        rows.set_state(second, change)
    request = posting(tag, allocation(first, 500, tag), allocation(target, 500, tag, 2))
    with pytest.raises(Conflict, match=reason):
        adapter.record_payment(request)
    assert rows.staged(request.key) == []
    assert rows.invoice_row(first)["balance"] == 30_000


def test_another_currency_is_a_conflict(adapter, rows):
    tag = word()
    client = rows.client(f"Loonie {tag}")
    matter = rows.matter(client, f"CA-{tag}")
    invoice = rows.invoice(client, matter, f"{tag}-1", currency="CAD")
    with pytest.raises(Conflict, match="is in CAD"):
        adapter.record_payment(posting(tag, allocation(invoice, 100, tag)))
    assert rows.invoice_row(invoice)["balance"] == 10_000


def test_allocations_already_written_are_skipped(adapter, rows):
    tag = word()
    _c, _m, first, second = two_invoices(rows, tag)
    request = posting(
        tag, allocation(first, 1_000, tag, external_id="ext-9"), allocation(second, 2_000, tag, 2)
    )
    result = adapter.record_payment(request)
    assert result.external_ids[first] == "ext-9"
    assert [str(r["invoice_id"]) for r in rows.staged(request.key)] == [second]
    assert rows.invoice_row(first)["balance"] == 30_000
    assert rows.invoice_row(second)["balance"] == 13_000


def test_a_key_used_for_other_invoices_is_refused(adapter, rows):
    tag = word()
    _c, _m, first, second = two_invoices(rows, tag)
    adapter.record_payment(posting(tag, allocation(first, 1_000, tag)))
    with pytest.raises(Permanent, match="already used for other invoices"):
        adapter.record_payment(posting(tag, allocation(second, 1_000, tag, 2)))
    assert rows.invoice_row(second)["balance"] == 15_000


def test_a_key_longer_than_the_staging_column_is_refused_not_cut(adapter, rows):
    tag = word()
    _c, _m, first, _second = two_invoices(rows, tag)
    with pytest.raises(Permanent, match="longer than the staging table's 200"):
        adapter.record_payment(posting(tag, allocation(first, 100, tag), key="k" * 201))
    assert rows.invoice_row(first)["balance"] == 30_000


@pytest.mark.parametrize("amount", [0, -5])
def test_an_amount_that_is_not_positive_is_refused(adapter, rows, amount):
    tag = word()
    _c, _m, first, _second = two_invoices(rows, tag)
    with pytest.raises(Permanent, match="not positive"):
        adapter.record_payment(posting(tag, allocation(first, amount, tag)))


def test_a_database_that_does_not_answer_is_transient():
    closed_port = sql_adapter("postgresql+psycopg://postgres@127.0.0.1:9/none", connect_timeout=2)
    with pytest.raises(Transient):
        closed_port.search("anything")
    with pytest.raises(Transient):
        closed_port.find_payment(posting("x", allocation("1", 1, "x")))
    closed_port.close()


def test_a_mapping_to_a_missing_table_or_a_bad_url_is_permanent(matter_url):
    missing = sql_adapter(matter_url, tables={"invoices": "no_such_invoices"})
    with pytest.raises(Permanent, match="no table 'no_such_invoices'"):
        missing.search("a")
    missing.close()
    misnamed = sql_adapter(matter_url, columns={"invoices": {"balance": "balance_due"}})
    with pytest.raises(Permanent, match="no column 'balance_due'"):
        misnamed.search("a")
    misnamed.close()
    with pytest.raises(Permanent):
        sql_adapter("not a url")
    with pytest.raises(Permanent, match="needs a database URL"):
        sql_adapter("")
