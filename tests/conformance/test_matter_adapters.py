"""Every matter adapter searches, reads and writes back by the same rules (connect/
interfaces.py), whatever the system behind it: the test adapter a third party would ship
(tests/support/matter_adapter.py), ``sql``, and MyCase and Clio against their fakes over
real HTTP. A new adapter proves itself by passing this suite with a world of its own
(tests/support/matter_worlds.py).

Each test's firm: Jane Marlowe with a divorce and an estate, invoices open, partly paid,
in trust and paid; Otto Quaye with one invoice.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
from zope.interface.verify import verifyObject

from clientpay_connect.connect.interfaces import (
    Allocation,
    Capabilities,
    Conflict,
    IMatterAdapter,
    PostingRequest,
    PostResult,
    Transient,
)
from tests.support.matter_worlds import (
    ENTERED_BY_HAND,
    ISSUED_ON,
    WORLDS,
    WRITING_WORLDS,
    MatterWorld,
    ServerDatabases,
    matter_world,
)


@dataclass(frozen=True)
class Firm:
    jane: str
    divorce: str
    estate: str
    otto: str
    road: str
    # invoice number -> id
    invoices: dict[str, str]


@pytest.fixture(autouse=True)
def plain_http_on_loopback(monkeypatch: pytest.MonkeyPatch) -> None:
    # oauthlib refuses http:// unless told otherwise; the fakes speak plain HTTP on 127.0.0.1.
    monkeypatch.setenv("OAUTHLIB_INSECURE_TRANSPORT", "1")


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerDatabases]:
    with ExitStack() as stack:
        yield ServerDatabases(stack, tmp_path_factory.mktemp("matters"))


@pytest.fixture(params=sorted(WORLDS))
def world(
    request: pytest.FixtureRequest, tmp_path: Path, servers: ServerDatabases
) -> Iterator[MatterWorld]:
    with matter_world(request.param, tmp_path, servers) as made:
        yield made


@pytest.fixture
def firm(world: MatterWorld) -> Firm:
    jane = world.client("Jane", "Marlowe", "jane@marlowe.test")
    divorce = world.matter(jane, "2024-0017", "Marlowe divorce")
    estate = world.matter(jane, "2024-0018", "Marlowe estate")
    otto = world.client("Otto", "Quaye", "otto@quaye.test")
    road = world.matter(otto, "2024-0031", "Quaye v. Road Co")
    invoices = {
        "MAR-1": world.invoice(jane, divorce, "MAR-1", "1234.56", paid="0.10",
                               due=dt.date(2025, 3, 1)),
        "MAR-2": world.invoice(jane, estate, "MAR-2", "500", due=dt.date(2025, 1, 15)),
        "MAR-3": world.invoice(jane, estate, "MAR-3", "90", due=dt.date(2025, 2, 1), trust=True),
        "MAR-4": world.invoice(jane, estate, "MAR-4", "80", paid="80", due=dt.date(2024, 12, 1)),
        "QUA-1": world.invoice(otto, road, "QUA-1", "2000.00", due=dt.date(2025, 1, 1)),
    }  # fmt: skip
    return Firm(jane, divorce, estate, otto, road, invoices)


@pytest.fixture
def adapter(world: MatterWorld, firm: Firm) -> Any:
    return world.adapter()


def numbers(found: Any) -> list[str]:
    return [invoice.number for invoice in getattr(found, "invoices", found)]


def posting(firm: Firm, key: str, *amounts: tuple[str, int]) -> PostingRequest:
    return PostingRequest(
        key=key,
        received_on=dt.date(2025, 6, 2),
        currency="USD",
        allocations=tuple(Allocation(firm.invoices[n], n, amount) for n, amount in amounts),
        reference="R-1001",
        payer_name="Jane Marlowe",
        method="card",
        client_id=firm.jane,
        matter_id=firm.estate,
    )


def writes(adapter: Any) -> bool:
    """True when the adapter writes payments into the system (else staff enter them)."""
    return adapter.capabilities.post in ("api", "file")


# What an adapter is.


def test_the_adapter_provides_the_interface_and_says_what_it_can(adapter):
    assert verifyObject(IMatterAdapter, adapter)
    assert adapter.name
    assert isinstance(adapter.capabilities, Capabilities)
    assert adapter.capabilities.post in ("api", "file", "manual")


# Search.


def test_part_of_a_name_in_any_case_finds_the_client_matters_and_open_invoices(adapter, firm):
    found = adapter.search("MARLOW")

    assert [(c.id, c.name, c.email) for c in found.clients] == [
        (firm.jane, "Jane Marlowe", "jane@marlowe.test")
    ]
    assert sorted((m.id, m.number, m.name) for m in found.matters) == [
        (firm.divorce, "2024-0017", "Marlowe divorce"),
        (firm.estate, "2024-0018", "Marlowe estate"),
    ]
    assert {m.client_id for m in found.matters} == {firm.jane}
    # Open ones only, the oldest due first; the paid MAR-4 is not offered.
    assert numbers(found) == ["MAR-2", "MAR-3", "MAR-1"]


def test_invoices_come_in_minor_units_with_their_dates_and_owners(adapter, firm):
    by_number = {i.number: i for i in adapter.search("marlowe").invoices}

    partly = by_number["MAR-1"]
    assert partly.id == firm.invoices["MAR-1"]
    assert (partly.total, partly.paid, partly.balance) == (123_456, 10, 123_446)
    assert (partly.issued_on, partly.due_on) == (ISSUED_ON, dt.date(2025, 3, 1))
    assert (partly.client_id, partly.matter_id) == (firm.jane, firm.divorce)
    assert (partly.currency, partly.state) == ("USD", "open")
    assert by_number["MAR-2"].account == "operating"
    if adapter.capabilities.trust:
        assert by_number["MAR-3"].account == "trust"


def test_an_invoice_number_or_a_matter_number_finds_it(adapter, firm):
    assert numbers(adapter.search("qua-1")) == ["QUA-1"]
    by_matter = adapter.search("2024-0031")
    assert [m.id for m in by_matter.matters] == [firm.road]
    assert numbers(by_matter) == ["QUA-1"]


def test_a_client_or_a_matter_narrows_the_search(adapter, firm):
    janes = adapter.search("", client_id=firm.jane)
    assert numbers(janes) == ["MAR-2", "MAR-3", "MAR-1"]
    assert {i.client_id for i in janes.invoices} == {firm.jane}

    assert numbers(adapter.search("", matter_id=firm.estate)) == ["MAR-2", "MAR-3"]
    assert numbers(adapter.search("quaye", client_id=firm.jane)) == []


def test_what_matches_nothing_finds_nothing(adapter, firm):
    found = adapter.search("zzyzx-nobody")
    assert (found.clients, found.matters, found.invoices) == ([], [], [])


# Reading invoices back.


def test_get_invoices_reads_any_state_and_leaves_unknown_ids_out(adapter, firm):
    found = adapter.get_invoices([firm.invoices["MAR-4"], firm.invoices["QUA-1"], "987654321"])

    by_number = {i.number: i for i in found}
    assert set(by_number) == {"MAR-4", "QUA-1"}
    assert (by_number["MAR-4"].state, by_number["MAR-4"].balance) == ("paid", 0)
    assert (by_number["QUA-1"].state, by_number["QUA-1"].balance) == ("open", 200_000)
    assert adapter.get_invoices([]) == []


# Writing a payment back.


def balances(adapter: Any, firm: Firm, *names: str) -> dict[str, int]:
    read = adapter.get_invoices([firm.invoices[n] for n in names])
    return {i.number: i.balance for i in read}


def as_retried(request: PostingRequest, found: dict[str, str]) -> PostingRequest:
    """The retry a posting job makes: what find_payment found is marked written."""
    marked = tuple(replace(a, external_id=found.get(a.invoice_id)) for a in request.allocations)
    return replace(request, allocations=marked)


def test_a_payment_is_written_once_and_its_retry_writes_nothing_more(adapter, firm):
    request = posting(firm, "conformance-1", ("MAR-2", 100_00), ("MAR-1", 1_01))
    before = balances(adapter, firm, "MAR-1", "MAR-2")

    first = adapter.record_payment(request)
    found = adapter.find_payment(request)
    again = adapter.record_payment(as_retried(request, found))

    assert isinstance(first, PostResult)
    after = balances(adapter, firm, "MAR-1", "MAR-2")
    if not writes(adapter):
        assert (first.outcome, again.outcome) == ("manual_required", "manual_required")
        assert first.slip is not None
        assert first.slip.lines == (("MAR-2", 100_00), ("MAR-1", 1_01))
        assert after == before
        assert found == {}
        return
    assert (first.outcome, again.outcome) == ("posted", "posted")
    assert set(first.external_ids) == {firm.invoices["MAR-2"], firm.invoices["MAR-1"]}
    assert found == dict(first.external_ids)
    assert dict(again.external_ids) == dict(first.external_ids)
    assert after == {"MAR-2": before["MAR-2"] - 100_00, "MAR-1": before["MAR-1"] - 1_01}


def test_find_payment_knows_only_its_own_key(adapter, firm):
    adapter.record_payment(posting(firm, "conformance-10", ("QUA-1", 5_00)))
    assert adapter.find_payment(posting(firm, "conformance-1", ("QUA-1", 5_00))) == {}


def test_the_worlds_entered_by_hand_are_those_whose_adapters_do_not_write(request, adapter):
    name = request.node.callspec.params["world"]
    assert writes(adapter) == (name not in ENTERED_BY_HAND)


@pytest.mark.parametrize("world", WRITING_WORLDS, indirect=True)
def test_allocations_already_written_are_skipped(adapter, firm):
    request = posting(firm, "conformance-2", ("MAR-2", 5_00), ("QUA-1", 7_00))
    done = replace(request.allocations[0], external_id="written-before")
    before = balances(adapter, firm, "MAR-2", "QUA-1")

    result = adapter.record_payment(replace(request, allocations=(done, request.allocations[1])))

    assert result.outcome == "posted"
    assert result.external_ids[firm.invoices["MAR-2"]] == "written-before"
    after = balances(adapter, firm, "MAR-2", "QUA-1")
    assert after == {"MAR-2": before["MAR-2"], "QUA-1": before["QUA-1"] - 7_00}


@pytest.mark.parametrize("world", WRITING_WORLDS, indirect=True)
@pytest.mark.parametrize(
    ("invoice", "amount"),
    [("MAR-2", 500_01), ("MAR-4", 1_00)],
    ids=["above-the-balance", "paid-invoice"],
)
def test_a_payment_the_invoice_cannot_take_is_a_conflict_and_nothing_is_written(
    adapter, firm, invoice, amount
):
    request = posting(firm, "conformance-3", (invoice, amount))
    before = balances(adapter, firm, invoice)
    with pytest.raises(Conflict):
        adapter.record_payment(request)
    assert balances(adapter, firm, invoice) == before
    assert adapter.find_payment(request) == {}


# When the system fails.


def test_a_system_that_cannot_be_reached_is_transient(world, adapter, firm):
    world.fail_next_call()
    with pytest.raises(Transient):
        adapter.search("marlowe")
