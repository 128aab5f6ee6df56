"""Connections and Connect through the API, with an adapter that a test distribution
registers under the entry-point group (as a third party's package would)."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from clientpay_connect.connect.models import LinkInvoice
from clientpay_connect.links.models import SOURCE_CONNECT, PaymentLink
from clientpay_connect.mail.models import KIND_LINK, OutboxMessage
from tests.conftest import bearer
from tests.factories import FirmFactory, MerchantAccountFactory, UserFactory
from tests.support.matter_adapter import Ledger

pytestmark = pytest.mark.usefixtures("test_adapter_distribution")


@pytest.fixture
def connection(
    testapp: Any, admin_auth: dict[str, str], ledger: tuple[str, Ledger]
) -> dict[str, Any]:
    answer = testapp.post_json(
        "/api/v1/connections",
        {"adapter": "memory", "name": "Our matters", "settings": {"ledger": ledger[0]}},
        headers=admin_auth,
        status=201,
    )
    return dict(answer.json)


@pytest.fixture
def account(firm: Any) -> Any:
    return MerchantAccountFactory(firm=firm, kind="operating")


def test_the_test_distribution_adapter_is_offered_and_connects(
    testapp: Any, connection: dict[str, Any], staff_auth: dict[str, str]
) -> None:
    assert connection["status"] == "connected"
    assert connection["capabilities"] == {
        "search": True,
        "post": "api",
        "multi_invoice": True,
        "trust": True,
    }
    listed = testapp.get("/api/v1/connections", headers=staff_auth).json
    assert [c["id"] for c in listed["items"]] == [connection["id"]]
    assert "memory" in {a["name"] for a in listed["adapters"]}


def test_staff_cannot_add_a_connection(testapp: Any, staff_auth: dict[str, str]) -> None:
    testapp.post_json(
        "/api/v1/connections", {"adapter": "memory", "settings": {}}, headers=staff_auth, status=403
    )


def test_an_unknown_adapter_is_refused(testapp: Any, admin_auth: dict[str, str]) -> None:
    answer = testapp.post_json(
        "/api/v1/connections", {"adapter": "nope"}, headers=admin_auth, status=422
    )
    assert answer.json["errors"][0]["field"] == "adapter"


def test_search_finds_open_invoices_oldest_due_first(
    testapp: Any, connection: dict[str, Any], staff_auth: dict[str, str]
) -> None:
    found = testapp.get(
        "/api/v1/connect/search",
        {"connection_id": connection["id"], "q": "marlowe"},
        headers=staff_auth,
    ).json
    assert [c["name"] for c in found["clients"]] == ["Jane Marlowe"]
    assert [i["number"] for i in found["invoices"]] == ["INV-101", "INV-102", "INV-103"]
    first = found["invoices"][0]
    assert first["balance"] == "500.00" and first["past_due"] is True
    assert found["invoices"][2]["account"] == "trust"


def test_search_needs_text_and_a_live_system(
    testapp: Any, connection: dict[str, Any], staff_auth: dict[str, str], ledger: tuple[str, Ledger]
) -> None:
    testapp.get(
        "/api/v1/connect/search",
        {"connection_id": connection["id"], "q": ""},
        headers=staff_auth,
        status=422,
    )
    ledger[1].down = True
    answer = testapp.get(
        "/api/v1/connect/search",
        {"connection_id": connection["id"], "q": "acme"},
        headers=staff_auth,
        status=503,
    )
    assert answer.json["error"] == "matter_system_unavailable"


def test_a_link_for_two_invoices_with_typed_amounts(
    testapp: Any,
    dbsession: Session,
    connection: dict[str, Any],
    staff_auth: dict[str, str],
    account: Any,
) -> None:
    answer = testapp.post_json(
        "/api/v1/connect/links",
        {
            "connection_id": connection["id"],
            "merchant_account_id": account.id,
            "invoices": [{"id": "101", "amount": "200.00"}, {"id": "102", "amount": "$250"}],
            "payer": {"emails": ["jane@example.com"]},
            "send_email": True,
        },
        headers=staff_auth,
        status=201,
    ).json
    assert answer["source"] == "connect"
    assert answer["amount"] == "450.00"
    assert answer["recipient_name"] == "Jane Marlowe"
    assert answer["invoice_number"] == "INV-101, INV-102"
    assert [(i["id"], i["amount"]) for i in answer["invoices"]] == [
        ("101", "200.00"),
        ("102", "250.00"),
    ]
    link = dbsession.get(PaymentLink, answer["id"])
    assert link is not None and link.source == SOURCE_CONNECT
    assert link.connection_id == connection["id"] and link.amount_minor == 450_00
    rows = (
        dbsession.execute(select(LinkInvoice).where(LinkInvoice.link_id == link.id)).scalars().all()
    )
    assert [(r.invoice_id, r.amount_minor, r.client_name, r.balance_minor) for r in rows] == [
        ("101", 200_00, "Jane Marlowe", 500_00),
        ("102", 250_00, "Jane Marlowe", 250_00),
    ]
    mails = (
        dbsession.execute(select(OutboxMessage).where(OutboxMessage.link_id == link.id))
        .scalars()
        .all()
    )
    assert [(m.kind, m.recipients) for m in mails] == [(KIND_LINK, ["jane@example.com"])]


def test_a_total_is_allocated_oldest_due_first(
    testapp: Any, connection: dict[str, Any], staff_auth: dict[str, str], account: Any
) -> None:
    answer = testapp.post_json(
        "/api/v1/connect/links",
        {
            "connection_id": connection["id"],
            "merchant_account_id": account.id,
            "invoices": [{"id": "102"}, {"id": "101"}],
            "amount": "600",
        },
        headers=staff_auth,
        status=201,
    ).json
    assert [(i["id"], i["amount"]) for i in answer["invoices"]] == [
        ("102", "100.00"),
        ("101", "500.00"),
    ]


def test_amounts_above_a_balance_or_the_total_are_refused_on_their_field(
    testapp: Any,
    connection: dict[str, Any],
    staff_auth: dict[str, str],
    account: Any,
    dbsession: Session,
) -> None:
    before = dbsession.execute(select(PaymentLink.id)).scalars().all()
    typed = testapp.post_json(
        "/api/v1/connect/links",
        {
            "connection_id": connection["id"],
            "merchant_account_id": account.id,
            "invoices": [{"id": "101", "amount": "500.01"}, {"id": "102", "amount": "0"}],
        },
        headers=staff_auth,
        status=422,
    ).json
    assert {e["field"] for e in typed["errors"]} == {"invoices.0.amount", "invoices.1.amount"}
    total = testapp.post_json(
        "/api/v1/connect/links",
        {
            "connection_id": connection["id"],
            "merchant_account_id": account.id,
            "invoices": [{"id": "101"}, {"id": "102"}],
            "amount": "750.01",
        },
        headers=staff_auth,
        status=422,
    ).json
    assert [e["field"] for e in total["errors"]] == ["amount"]
    assert dbsession.execute(select(PaymentLink.id)).scalars().all() == before


def test_a_balance_read_again_at_link_time_wins_over_the_page(
    testapp: Any,
    connection: dict[str, Any],
    staff_auth: dict[str, str],
    account: Any,
    ledger: tuple[str, Ledger],
) -> None:
    from dataclasses import replace

    book = ledger[1]
    book.invoices["101"] = replace(
        book.invoices["101"], paid=book.invoices["101"].total, balance=0, state="paid"
    )
    answer = testapp.post_json(
        "/api/v1/connect/links",
        {
            "connection_id": connection["id"],
            "merchant_account_id": account.id,
            "invoices": [{"id": "101", "amount": "10"}],
        },
        headers=staff_auth,
        status=422,
    ).json
    assert answer["errors"][0]["field"] == "invoices.0.id"
    assert "nothing left to pay" in answer["errors"][0]["message"]


def test_trust_invoices_need_a_trust_account_and_typed_amounts(
    testapp: Any, firm: Any, connection: dict[str, Any], staff_auth: dict[str, str], account: Any
) -> None:
    wrong_account = testapp.post_json(
        "/api/v1/connect/links",
        {
            "connection_id": connection["id"],
            "merchant_account_id": account.id,
            "invoices": [{"id": "103", "amount": "10"}],
        },
        headers=staff_auth,
        status=422,
    ).json
    assert wrong_account["errors"][0]["field"] == "merchant_account_id"
    trust = MerchantAccountFactory(firm=firm, kind="trust")
    untyped = testapp.post_json(
        "/api/v1/connect/links",
        {
            "connection_id": connection["id"],
            "merchant_account_id": trust.id,
            "invoices": [{"id": "103"}],
            "amount": "10",
        },
        headers=staff_auth,
        status=422,
    ).json
    assert untyped["errors"][0]["field"] == "amount"
    assert "Trust" in untyped["errors"][0]["message"]
    made = testapp.post_json(
        "/api/v1/connect/links",
        {
            "connection_id": connection["id"],
            "merchant_account_id": trust.id,
            "invoices": [{"id": "103", "amount": "90"}],
        },
        headers=staff_auth,
        status=201,
    ).json
    assert made["invoices"][0]["account"] == "trust"


def test_another_firm_gets_404_for_the_connection_its_search_and_its_links(
    testapp: Any,
    dbsession: Session,
    connection: dict[str, Any],
    staff_auth: dict[str, str],
    account: Any,
) -> None:
    link = testapp.post_json(
        "/api/v1/connect/links",
        {
            "connection_id": connection["id"],
            "merchant_account_id": account.id,
            "invoices": [{"id": "201", "amount": "5"}],
        },
        headers=staff_auth,
        status=201,
    ).json
    other_firm = FirmFactory()
    other = bearer(dbsession, UserFactory(firm=other_firm, role="admin"))
    other_account = MerchantAccountFactory(firm=other_firm)
    cid = connection["id"]
    testapp.get(f"/api/v1/connections/{cid}", headers=other, status=404)
    testapp.delete(f"/api/v1/connections/{cid}", headers=other, status=404)
    testapp.get(
        "/api/v1/connect/search", {"connection_id": cid, "q": "a"}, headers=other, status=404
    )
    testapp.post_json(
        "/api/v1/connect/links",
        {
            "connection_id": cid,
            "merchant_account_id": other_account.id,
            "invoices": [{"id": "201"}],
            "amount": "1",
        },
        headers=other,
        status=404,
    )
    testapp.get(f"/api/v1/links/{link['id']}", headers=other, status=404)
    testapp.get("/api/v1/connections/99999999999999999999", headers=other, status=404)


def test_disconnect_keeps_the_connection_listed_and_stops_searches(
    testapp: Any, connection: dict[str, Any], admin_auth: dict[str, str], staff_auth: dict[str, str]
) -> None:
    gone = testapp.delete(f"/api/v1/connections/{connection['id']}", headers=admin_auth).json
    assert gone["status"] == "disconnected"
    answer = testapp.get(
        "/api/v1/connect/search",
        {"connection_id": connection["id"], "q": "acme"},
        headers=staff_auth,
        status=409,
    )
    assert answer.json["error"] == "needs_reauthorization"
