"""Postings: a paid Connect link makes one posting; the sync job writes it once.

The matter system is the adapter a test distribution registers (tests/support/
matter_adapter.py); the payment goes through the real pay API and the sandbox processor.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest
from pyramid.router import Router
from sqlalchemy import select
from sqlalchemy.orm import Session

from clientpay_connect.postings.models import Posting, PostingAttempt
from tests.factories import MerchantAccountFactory
from tests.support.matter_adapter import Ledger, registered_test_adapter
from tests.support.postings import (
    add_connection,
    marlowe_ledger,
    paid_connect_link,
    registered,
)
from tests.support.postings import run_sync as sync_in_process

TODAY = dt.date.today()


@pytest.fixture(scope="module", autouse=True)
def test_distribution(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    with registered_test_adapter(tmp_path_factory.mktemp("site")):
        yield


@pytest.fixture
def ledger() -> Iterator[tuple[str, Ledger]]:
    book = marlowe_ledger(TODAY)
    with registered(book) as name:
        yield name, book


@pytest.fixture
def connection(
    testapp: Any, admin_auth: dict[str, str], ledger: tuple[str, Ledger]
) -> dict[str, Any]:
    return add_connection(testapp, admin_auth, ledger[0], "Our matters")


def run_sync(app: Router, posting_id: int) -> str:
    return sync_in_process(app.registry, posting_id)


def test_a_paid_connect_link_makes_one_pending_posting_with_its_allocations(
    testapp: Any,
    dbsession: Session,
    firm: Any,
    staff_auth: dict[str, str],
    connection: dict[str, Any],
) -> None:
    account = MerchantAccountFactory(firm=firm)
    link = paid_connect_link(testapp, staff_auth, connection, account, "700.00")
    postings = (
        dbsession.execute(select(Posting).where(Posting.link_id == link["id"])).scalars().all()
    )
    assert len(postings) == 1
    posting = postings[0]
    assert posting.status == "pending"
    assert posting.amount_minor == 700_00
    assert [(a["invoice_id"], a["amount"]) for a in posting.allocations] == [
        ("101", 500_00),
        ("102", 200_00),
    ]
    assert posting.key.startswith("CPC-R-")


def test_a_partial_payment_fills_the_oldest_due_first(
    testapp: Any,
    dbsession: Session,
    firm: Any,
    staff_auth: dict[str, str],
    connection: dict[str, Any],
) -> None:
    account = MerchantAccountFactory(firm=firm)
    link = paid_connect_link(testapp, staff_auth, connection, account, "550.00")
    # Partially paid, and still the posting of what was paid.
    answer = testapp.get(f"/api/v1/links/{link['id']}", headers=staff_auth).json
    assert (answer["status"], answer["amount_paid"]) == ("partially_paid", "550.00")
    posting = dbsession.execute(select(Posting).where(Posting.link_id == link["id"])).scalar_one()
    assert (posting.amount_minor, posting.status) == (550_00, "pending")
    assert [(a["invoice_id"], a["amount"]) for a in posting.allocations] == [
        ("101", 500_00),
        ("102", 50_00),
    ]


def test_post_then_sync_writes_once_and_a_second_post_is_skipped(
    app: Router,
    testapp: Any,
    dbsession: Session,
    firm: Any,
    staff_auth: dict[str, str],
    connection: dict[str, Any],
    ledger: tuple[str, Ledger],
) -> None:
    account = MerchantAccountFactory(firm=firm)
    link = paid_connect_link(testapp, staff_auth, connection, account, "700.00")
    posting = dbsession.execute(select(Posting).where(Posting.link_id == link["id"])).scalar_one()
    queued = testapp.post_json(
        "/api/v1/postings/post", {"ids": [posting.id]}, headers=staff_auth
    ).json
    assert queued == {"queued": [posting.id], "skipped": []}
    # The sync job ran once the request committed (the tests' job queue runs jobs at once).
    dbsession.refresh(posting)
    assert posting.status == "posted"
    book = ledger[1]
    assert book.invoices["101"].balance == 0 and book.invoices["102"].balance == 50_00
    assert set(book.payments[posting.key]) == {"101", "102"}
    again = testapp.post_json(
        "/api/v1/postings/post", {"ids": [posting.id]}, headers=staff_auth
    ).json
    assert again == {"queued": [], "skipped": [{"id": posting.id, "reason": "posted"}]}
    assert run_sync(app, posting.id) == "not_claimed"
    detail = testapp.get(f"/api/v1/postings/{posting.id}", headers=staff_auth).json
    assert [a["outcome"] for a in detail["attempts"]] == ["created", "queued", "posted"]


def test_a_write_whose_answer_was_lost_is_found_not_written_again(
    app: Router,
    testapp: Any,
    dbsession: Session,
    firm: Any,
    staff_auth: dict[str, str],
    connection: dict[str, Any],
    ledger: tuple[str, Ledger],
) -> None:
    account = MerchantAccountFactory(firm=firm)
    link = paid_connect_link(testapp, staff_auth, connection, account, "700.00")
    posting = dbsession.execute(select(Posting).where(Posting.link_id == link["id"])).scalar_one()
    book = ledger[1]
    # The matter system holds the payment already (its answer to us was lost).
    book.payments[posting.key] = {"101": "pay-x-101", "102": "pay-x-102"}
    testapp.post_json("/api/v1/postings/post", {"ids": [posting.id]}, headers=staff_auth)
    dbsession.refresh(posting)
    assert posting.status == "posted"
    assert book.invoices["101"].balance == 500_00  # nothing written a second time
    assert posting.external_ids == {"101": "pay-x-101", "102": "pay-x-102"}


def test_an_invoice_paid_elsewhere_makes_it_incomplete_then_reallocated_it_posts(
    app: Router,
    testapp: Any,
    dbsession: Session,
    firm: Any,
    staff_auth: dict[str, str],
    connection: dict[str, Any],
    ledger: tuple[str, Ledger],
) -> None:
    account = MerchantAccountFactory(firm=firm)
    link = paid_connect_link(testapp, staff_auth, connection, account, "700.00")
    posting = dbsession.execute(select(Posting).where(Posting.link_id == link["id"])).scalar_one()
    book = ledger[1]
    book.invoices["102"] = replace(book.invoices["102"], paid=250_00, balance=0, state="paid")
    book.add_invoice(
        replace(book.invoices["101"], id="103", number="INV-103", balance=300_00, total=300_00)
    )
    testapp.post_json("/api/v1/postings/post", {"ids": [posting.id]}, headers=staff_auth)
    dbsession.refresh(posting)
    assert posting.status == "incomplete"
    assert "INV-102 is paid" in posting.reason
    assert book.invoices["101"].balance == 500_00
    answer = testapp.patch_json(
        f"/api/v1/postings/{posting.id}",
        {
            "allocations": [
                {"invoice_id": "101", "amount": "500"},
                {"invoice_id": "103", "amount": "200"},
            ]
        },
        headers=staff_auth,
    ).json
    assert answer["status"] == "pending"
    testapp.post_json("/api/v1/postings/post", {"ids": [posting.id]}, headers=staff_auth)
    dbsession.refresh(posting)
    assert posting.status == "posted"
    assert book.invoices["103"].balance == 100_00


def test_a_down_system_is_retried_later_then_fails_and_tells_the_admins(
    app: Router,
    testapp: Any,
    dbsession: Session,
    firm: Any,
    staff_auth: dict[str, str],
    connection: dict[str, Any],
    ledger: tuple[str, Ledger],
) -> None:
    account = MerchantAccountFactory(firm=firm)
    link = paid_connect_link(testapp, staff_auth, connection, account, "700.00")
    posting = dbsession.execute(select(Posting).where(Posting.link_id == link["id"])).scalar_one()
    ledger[1].down = True
    testapp.post_json("/api/v1/postings/post", {"ids": [posting.id]}, headers=staff_auth)
    dbsession.refresh(posting)
    assert posting.status == "queued" and posting.next_attempt_at is not None
    # Not due yet: a second worker cannot take it early.
    assert run_sync(app, posting.id) == "not_claimed"
    max_attempts = int(app.registry.settings.get("clientpay.postings.max_attempts", 8))
    for _ in range(max_attempts - 1):
        dbsession.execute(
            Posting.__table__.update().where(Posting.id == posting.id).values(next_attempt_at=None)
        )
        run_sync(app, posting.id)
    dbsession.refresh(posting)
    assert posting.status == "failed"
    outcomes = (
        dbsession.execute(
            select(PostingAttempt.outcome).where(PostingAttempt.posting_id == posting.id)
        )
        .scalars()
        .all()
    )
    assert outcomes.count("transient") == max_attempts


@pytest.fixture
def pending_posting(
    testapp: Any, dbsession: Session, firm: Any, staff_auth: dict[str, str], connection: Any
) -> Posting:
    """The posting of a 700.00 Connect link paid over invoices 101 and 102."""
    link = paid_connect_link(
        testapp, staff_auth, connection, MerchantAccountFactory(firm=firm), "700.00"
    )
    return dbsession.execute(select(Posting).where(Posting.link_id == link["id"])).scalar_one()


def test_the_api_answers_each_refused_change_with_its_status_and_code(
    testapp: Any, dbsession: Session, staff_auth: dict[str, str], pending_posting: Posting
) -> None:
    posting = pending_posting
    url = f"/api/v1/postings/{posting.id}"

    def refused(method: str, path: str, body: dict[str, Any], status: int) -> dict[str, Any]:
        send = getattr(testapp, f"{method}_json")
        answer: dict[str, Any] = send(path, body, headers=staff_auth, status=status).json
        return answer

    assert refused("post", f"{url}/remove", {"reason": " "}, 422) == {
        "error": "validation_error",
        "message": "Some fields need attention.",
        "errors": [{"field": "reason", "message": "Say why it is removed."}],
    }
    assert refused("post", f"{url}/entered-by-hand", {}, 409) == {
        "error": "not_manual",
        "message": "Only a posting entered by hand can be marked so.",
        "errors": [],
    }
    unknown = refused("patch", url, {"allocations": [{"invoice_id": "999", "amount": "700"}]}, 422)
    assert unknown["error"] == "validation_error"
    assert unknown["errors"] and all(
        e["field"].startswith("allocations") for e in unknown["errors"]
    )
    fitting = [{"invoice_id": "101", "amount": "500"}, {"invoice_id": "102", "amount": "200"}]
    assert refused("patch", url, {"allocations": fitting}, 409) == {
        "error": "not_incomplete",
        "message": "Only an incomplete posting is re-allocated.",
        "errors": [],
    }
    testapp.post_json("/api/v1/postings/post", {"ids": [posting.id]}, headers=staff_auth)
    assert refused("post", f"{url}/remove", {"reason": "Entered by hand"}, 409) == {
        "error": "already_posted",
        "message": "It is already in the matter system.",
        "errors": [],
    }
    dbsession.refresh(posting)
    assert posting.status == "posted"
