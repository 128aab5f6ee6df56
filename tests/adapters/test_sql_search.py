"""The sql adapter's search and reads, on SQLite, PostgreSQL and MariaDB: what a word finds,
narrowing to a client or matter, open invoices only, oldest due first, the caps."""

from __future__ import annotations

import datetime as dt
from importlib.metadata import entry_points

from zope.interface.verify import verifyClass, verifyObject

from adapters.sql import SqlAdapter
from adapters.sql.search import MAX_CLIENTS, MAX_INVOICES
from clientpay_connect.connect.interfaces import ENTRY_POINT_GROUP, IMatterAdapter
from tests.support.matter_databases import word


def family(rows, tag):
    """A client named with ``tag``: two matters, invoices open, partly paid, paid, void."""
    client = rows.client(f"Ottoline {tag.capitalize()}-Quaye", f"o@{tag}.test")
    estate = rows.matter(client, f"E-{tag}-1", "Estate planning")
    lease = rows.matter(client, f"L-{tag}-2", "Commercial lease")
    ids = {
        "late": rows.invoice(client, estate, f"{tag}-A1", due_on=dt.date(2025, 1, 15)),
        "part": rows.invoice(
            client, lease, f"{tag}-B1", total=50_000, paid=12_500, due_on=dt.date(2025, 2, 1)
        ),
        "new": rows.invoice(client, estate, f"{tag}-A2", due_on=dt.date(2025, 7, 31)),
        "paid": rows.invoice(client, lease, f"{tag}-B2", total=7_000, paid=7_000),
        "void": rows.invoice(client, lease, f"{tag}-B3", state="void"),
    }
    return client, estate, lease, ids


def test_the_adapter_is_registered_and_implements_the_interface(adapter):
    found = {e.name: e.load() for e in entry_points(group=ENTRY_POINT_GROUP)}
    assert found["sql"] is SqlAdapter
    assert verifyClass(IMatterAdapter, SqlAdapter)
    assert verifyObject(IMatterAdapter, adapter)
    assert adapter.capabilities.as_json() == {
        "search": True,
        "post": "file",
        "multi_invoice": True,
        "trust": True,
    }


def test_part_of_a_name_in_any_case_finds_the_client_its_matters_and_open_invoices(adapter, rows):
    tag = word()
    client, estate, lease, ids = family(rows, tag)
    result = adapter.search(tag.upper()[2:8])
    assert [c.id for c in result.clients] == [client]
    assert result.clients[0].email == f"o@{tag}.test"
    assert {m.id for m in result.matters} == {estate, lease}
    assert [i.id for i in result.invoices] == [ids["late"], ids["part"], ids["new"]]
    partly = result.invoices[1]
    assert (partly.total, partly.paid, partly.balance) == (50_000, 12_500, 37_500)
    assert partly.matter_id == lease and partly.client_id == client
    assert partly.due_on == dt.date(2025, 2, 1) and partly.issued_on == dt.date(2025, 1, 2)
    assert (partly.currency, partly.account, partly.state) == ("USD", "operating", "open")
    assert partly.version == "1"


def test_a_matter_number_finds_that_matter_only(adapter, rows):
    tag = word()
    client, estate, _lease, ids = family(rows, tag)
    result = adapter.search(f"e-{tag}-1")
    assert [c.id for c in result.clients] == [client]
    assert [m.id for m in result.matters] == [estate]
    assert [i.id for i in result.invoices] == [ids["late"], ids["new"]]


def test_a_matter_name_finds_the_matter(adapter, rows):
    tag = word()
    client = rows.client(f"Hollis {tag}")
    matter = rows.matter(client, f"M-{tag}", f"Acquisition of {tag.upper()} Mills")
    invoice = rows.invoice(client, matter, f"{tag}-1")
    result = adapter.search(f"of {tag} mills")
    assert [m.id for m in result.matters] == [matter]
    assert [i.id for i in result.invoices] == [invoice]


def test_an_invoice_number_finds_that_invoice_with_its_matter_and_client(adapter, rows):
    tag = word()
    client, _estate, lease, ids = family(rows, tag)
    result = adapter.search(f"{tag}-b1".upper())
    assert [c.id for c in result.clients] == [client]
    assert [m.id for m in result.matters] == [lease]
    assert [i.id for i in result.invoices] == [ids["part"]]


def test_a_closed_invoice_number_shows_where_it_belongs_but_no_invoice(adapter, rows):
    tag = word()
    client, _estate, lease, _ids = family(rows, tag)
    for number in (f"{tag}-B2", f"{tag}-B3"):  # paid, void
        result = adapter.search(number)
        assert [c.id for c in result.clients] == [client]
        assert [m.id for m in result.matters] == [lease]
        assert result.invoices == []


def test_only_open_invoices_with_something_owed_are_listed(adapter, rows):
    tag = word()
    client = rows.client(f"Opal {tag}")
    matter = rows.matter(client, f"O-{tag}")
    open_one = rows.invoice(client, matter, f"{tag}-1")
    rows.invoice(client, matter, f"{tag}-2", total=100, paid=100)
    rows.invoice(client, matter, f"{tag}-3", state="void")
    # Open in name but owing nothing: not payable either.
    rows.invoice(client, matter, f"{tag}-4", total=500, paid=500, state="open")
    result = adapter.search(tag)
    assert [i.id for i in result.invoices] == [open_one]
    assert all(i.balance > 0 and i.state == "open" for i in adapter.search("a").invoices)


def test_invoices_come_oldest_due_first_across_clients_and_matters(adapter, rows):
    tag = word()
    first = rows.client(f"Ames {tag}")
    second = rows.client(f"Zorn {tag}")
    m1 = rows.matter(first, f"A-{tag}")
    m2 = rows.matter(second, f"Z-{tag}")
    dues = [dt.date(2025, 3, 1), dt.date(2024, 11, 5), dt.date(2025, 1, 1), dt.date(2024, 12, 24)]
    made = [
        rows.invoice(first if n % 2 else second, m1 if n % 2 else m2, f"{tag}-{n}", due_on=due)
        for n, due in enumerate(dues)
    ]
    result = adapter.search(tag)
    assert [c.id for c in result.clients] == [first, second]  # by name
    assert [i.id for i in result.invoices] == [made[1], made[3], made[2], made[0]]
    assert [i.due_on for i in result.invoices] == sorted(dues)


def test_client_id_and_matter_id_narrow_the_search(adapter, rows):
    tag = word()
    one, one_estate, one_lease, one_ids = family(rows, tag)
    other, _e, _l, _ids = family(rows, tag + "x")
    assert {c.id for c in adapter.search(tag).clients} == {one, other}
    narrowed = adapter.search(tag, client_id=one)
    assert [c.id for c in narrowed.clients] == [one]
    assert {m.id for m in narrowed.matters} == {one_estate, one_lease}
    assert [i.id for i in narrowed.invoices] == [one_ids["late"], one_ids["part"], one_ids["new"]]
    by_matter = adapter.search(tag, matter_id=one_lease)
    assert [c.id for c in by_matter.clients] == [one]
    assert [m.id for m in by_matter.matters] == [one_lease]
    assert [i.id for i in by_matter.invoices] == [one_ids["part"]]
    assert adapter.search(tag, client_id=other, matter_id=one_lease).clients == []


def test_a_blank_query_lists_a_client_or_matter_and_otherwise_nothing(adapter, rows):
    tag = word()
    client, estate, _lease, ids = family(rows, tag)
    whole = adapter.search("", client_id=client)
    assert [c.id for c in whole.clients] == [client]
    assert len(whole.matters) == 2
    assert [i.id for i in whole.invoices] == [ids["late"], ids["part"], ids["new"]]
    assert [i.id for i in adapter.search("  ", matter_id=estate).invoices] == [
        ids["late"],
        ids["new"],
    ]
    assert adapter.search("") == adapter.search("   ") == type(whole)()
    assert adapter.search("", client_id="not-a-number").clients == []


def test_like_wildcards_in_the_query_are_plain_text(adapter, rows):
    tag = word()
    client = rows.client(f"100% {tag} Holdings_Co")
    assert [c.id for c in adapter.search(f"100% {tag}").clients] == [client]
    assert adapter.search(f"{tag}%").clients == []
    assert adapter.search(f"{tag}_").clients == []
    assert [c.id for c in adapter.search(f"{tag} holdings_co").clients] == [client]
    slashed = rows.client(f"{tag} A/S Nordlys")
    assert [c.id for c in adapter.search(f"{tag} a/s").clients] == [slashed]
    assert adapter.search(f"{tag} a//s").clients == []


def test_results_are_capped_and_hold_together(adapter, rows):
    tag = word()
    for n in range(MAX_CLIENTS + 5):
        client = rows.client(f"Cap {tag} {n:03d}")
        matter = rows.matter(client, f"C-{tag}-{n}")
        for k in range(5):
            rows.invoice(client, matter, f"{tag}-{n}-{k}", due_on=dt.date(2025, 1, 1 + k))
    result = adapter.search(tag)
    assert len(result.clients) == MAX_CLIENTS
    assert [c.name for c in result.clients] == sorted(c.name for c in result.clients)
    assert len(result.invoices) == MAX_INVOICES
    shown_clients = {c.id for c in result.clients}
    shown_matters = {m.id for m in result.matters}
    assert {m.client_id for m in result.matters} <= shown_clients
    assert {i.matter_id for i in result.invoices} <= shown_matters
    dues = [i.due_on for i in result.invoices]
    assert dues == sorted(dues)


def test_get_invoices_reads_any_state_and_leaves_unknown_ids_out(adapter, rows):
    tag = word()
    _client, _estate, _lease, ids = family(rows, tag)
    wanted = [ids["part"], ids["paid"], ids["void"], "999999999", "not-an-id"]
    found = {i.id: i for i in adapter.get_invoices(wanted)}
    assert set(found) == {ids["part"], ids["paid"], ids["void"]}
    assert found[ids["paid"]].state == "paid" and found[ids["paid"]].balance == 0
    assert found[ids["void"]].state == "void"
    assert found[ids["part"]].balance == 37_500
    assert adapter.get_invoices([]) == []


def test_the_demo_data_searches_like_a_firms(adapter):
    """Trust invoices carry their account; every listed invoice belongs to a listed matter."""
    result = adapter.search("e")
    assert result.clients and result.invoices
    assert {i.matter_id for i in result.invoices} <= {m.id for m in result.matters}
    trust = adapter.search("", matter_id=_a_trust_matter(adapter))
    assert trust.invoices and {i.account for i in trust.invoices} == {"trust"}


def _a_trust_matter(adapter):
    for n in range(1, 200):
        invoices = adapter.get_invoices([str(i) for i in range(n * 50 - 49, n * 50 + 1)])
        for invoice in invoices:
            if invoice.account == "trust" and invoice.state == "open":
                return invoice.matter_id
    raise AssertionError("the demo has no open trust invoice")
