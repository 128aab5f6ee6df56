"""The Manage Postings pages through WebTest, as signed-in staff use them without scripts:
tabs with counts, Post / Retry / Remove on the ticked postings, paging, a posting's page
(attempts, re-allocation of an incomplete one, the slip of a manual one), firm isolation and
CSRF. The matter system is the test distribution's ``memory`` adapter."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest
import webtest
from pyramid.router import Router
from sqlalchemy.orm import Session

from clientpay_connect.connect.interfaces import ManualSlip
from clientpay_connect.money import display_amount
from clientpay_connect.postings.models import Posting
from clientpay_connect.postings.sync import slip_json
from tests.conftest import bearer, login
from tests.factories import FirmFactory, MerchantAccountFactory, UserFactory
from tests.support.matter_adapter import Ledger, registered_test_adapter
from tests.support.postings import (
    add_connection,
    marlowe_ledger,
    paid_connect_link,
    posting_of,
    registered,
    run_sync,
)

TODAY = dt.date.today()
LIST = "/postings"
FORM = "postings-form"


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
    testapp: webtest.TestApp, admin_auth: dict[str, str], ledger: tuple[str, Ledger]
) -> dict[str, Any]:
    return add_connection(testapp, admin_auth, ledger[0], "Our matters")


@pytest.fixture
def account(firm: Any) -> Any:
    return MerchantAccountFactory(firm=firm, name="Operating")


@pytest.fixture
def signed_in(testapp: webtest.TestApp, staff: Any) -> webtest.TestApp:
    login(testapp, staff)
    return testapp


@pytest.fixture
def new_posting(
    testapp: webtest.TestApp,
    dbsession: Session,
    staff_auth: dict[str, str],
    connection: dict[str, Any],
    account: Any,
) -> Any:
    def make(amount: str = "700.00", payer_name: str = "Pat Payer") -> Posting:
        link = paid_connect_link(
            testapp, staff_auth, connection, account, amount, payer_name=payer_name
        )
        return posting_of(dbsession, link)

    return make


def set_status(dbsession: Session, posting: Posting, status: str, **fields: Any) -> None:
    """Arrange a posting in a state the sync job would have left it in."""
    posting.status = status
    for name, value in fields.items():
        setattr(posting, name, value)
    dbsession.flush()


def status_of(dbsession: Session, posting: Posting) -> str:
    dbsession.expire_all()
    fresh = dbsession.get(Posting, posting.id)
    assert fresh is not None
    return fresh.status


def tabs(page: webtest.TestResponse) -> dict[str, tuple[int, bool]]:
    """Each tab's label → (its count, whether it is the current one)."""
    found = {}
    for a in page.html.select('nav[aria-label="Show"] a'):
        count = a.select_one(".tab-count")
        label = a.get_text(" ", strip=True).removesuffix(count.get_text(strip=True)).strip()
        found[label] = (int(count.get_text(strip=True)), a.get("aria-current") == "page")
    return found


def row_ids(page: webtest.TestResponse) -> list[int]:
    return [int(tr["data-posting-id"]) for tr in page.html.select("tbody tr[data-posting-id]")]


def named(posting: Any) -> str:
    """How a message names a posting: by its payment, as staff know it."""
    return f"the payment of {display_amount(posting.amount_minor, posting.currency)} from Pat Payer"


def flashes(page: webtest.TestResponse) -> tuple[list[str], list[str]]:
    """(the status messages, the error messages) at the top of the page."""
    ok = [f.get_text(" ", strip=True) for f in page.html.select("main > .flash:not(.flash-error)")]
    bad = [f.get_text(" ", strip=True) for f in page.html.select("main > .flash.flash-error")]
    return ok, bad


def form_to(page: webtest.TestResponse, ending: str, action: str = "") -> webtest.forms.Form:
    """The page's form that posts to a path ending with ``ending`` (and offers ``action``)."""
    for form in page.forms.values():
        buttons = [f for f in form.fields.get("action", []) if f._value == action]
        if form.action.endswith(ending) and (not action or buttons):
            return form
    raise AssertionError(f"no form to {ending} {action}")


def tick(page: webtest.TestResponse, *postings: Posting) -> webtest.forms.Form:
    form = page.forms[FORM]
    wanted = {str(p.id) for p in postings}
    for box in form.fields["ids"]:
        box.checked = box._value in wanted
    return form


# --- The list --------------------------------------------------------------------------------


def test_the_list_shows_a_tab_per_status_with_counts_and_each_postings_details(
    signed_in: webtest.TestApp, dbsession: Session, new_posting: Any
) -> None:
    first = new_posting(payer_name="Jane Marlowe")
    second = new_posting()
    set_status(dbsession, second, "failed", reason="Gave up after 8 attempts: down")
    page = signed_in.get(LIST)
    assert tabs(page) == {
        "All": (2, True),
        "Pending": (1, False),
        "Queued": (0, False),
        "Posted": (0, False),
        "Incomplete": (0, False),
        "Failed": (1, False),
        "Manual required": (0, False),
        "Removed": (0, False),
    }
    assert row_ids(page) == [second.id, first.id]
    row = page.html.select_one(f'tr[data-posting-id="{first.id}"]')
    text = row.get_text(" ", strip=True)
    assert "Jane Marlowe" in text and "$700.00" in text and "Our matters" in text
    assert "INV-101 $500.00" in text and "INV-102 $200.00" in text
    assert row.select_one("[data-status]").get_text(strip=True) == "Pending"
    failed = page.html.select_one(f'tr[data-posting-id="{second.id}"]').get_text(" ", strip=True)
    assert "Gave up after 8 attempts: down" in failed

    pending = signed_in.get(LIST, {"status": "pending"})
    assert row_ids(pending) == [first.id]
    assert tabs(pending)["Pending"] == (1, True)
    # Pending offers Post and Remove; Failed offers Retry and Remove.
    assert {b["value"] for b in pending.html.select("button[name=action]") if b["value"]} == {
        "post",
        "remove",
    }
    failed_tab = signed_in.get(LIST, {"status": "failed"})
    assert {b["value"] for b in failed_tab.html.select("button[name=action]") if b["value"]} == {
        "retry",
        "remove",
    }


def test_post_queues_the_ticked_pending_posting_and_the_sync_job_moves_it_to_posted(
    app: Router,
    signed_in: webtest.TestApp,
    dbsession: Session,
    new_posting: Any,
    ledger: tuple[str, Ledger],
) -> None:
    posting = new_posting()
    other = new_posting()
    page = signed_in.get(LIST, {"status": "pending"})
    answer = tick(page, posting).submit("action", value="post", status=303)
    assert answer.location.endswith("/postings?status=pending")
    after = answer.follow()
    ok, bad = flashes(after)
    assert ok == [f"Queued 1 posting to be written to the matter system: {named(posting)}."]
    assert bad == []
    assert status_of(dbsession, other) == "pending"
    # The job is queued after the commit; here the worker's part runs in-process.
    assert status_of(dbsession, posting) in ("queued", "posted")
    run_sync(app.registry, posting.id)
    assert status_of(dbsession, posting) == "posted"
    posted = signed_in.get(LIST, {"status": "posted"})
    assert row_ids(posted) == [posting.id]
    assert set(ledger[1].payments[posting.key]) == {"101", "102"}


def test_post_says_what_it_skipped_and_why(
    signed_in: webtest.TestApp, dbsession: Session, new_posting: Any
) -> None:
    pending = new_posting()
    posted = new_posting()
    incomplete = new_posting()
    set_status(dbsession, posted, "posted")
    set_status(dbsession, incomplete, "incomplete", reason="Invoice INV-102 is paid.")
    page = signed_in.get(LIST)
    after = tick(page, pending, posted, incomplete).submit("action", value="post").follow()
    ok, bad = flashes(after)
    assert ok == [f"Queued 1 posting to be written to the matter system: {named(pending)}."]
    assert bad == [
        f"Skipped 2 postings, because {named(incomplete)}: it is incomplete: re-allocate "
        f"it first; {named(posted)}: it is already posted."
    ]
    assert status_of(dbsession, posted) == "posted"
    assert status_of(dbsession, incomplete) == "incomplete"


def test_retry_queues_a_failed_posting_again(
    signed_in: webtest.TestApp, dbsession: Session, new_posting: Any
) -> None:
    posting = new_posting()
    set_status(dbsession, posting, "failed", reason="Gave up", attempt_count=8)
    page = signed_in.get(LIST, {"status": "failed"})
    after = tick(page, posting).submit("action", value="retry").follow()
    assert flashes(after)[0] == [
        f"Queued again 1 posting to be written to the matter system: {named(posting)}."
    ]
    assert status_of(dbsession, posting) in ("queued", "posted")
    assert tabs(after)["Failed"] == (0, True)


def test_nothing_ticked_says_so_and_changes_nothing(
    signed_in: webtest.TestApp, dbsession: Session, new_posting: Any
) -> None:
    posting = new_posting()
    page = signed_in.get(LIST, {"status": "pending"})
    after = tick(page).submit("action", value="post").follow()
    assert flashes(after) == ([], ["Tick the postings to post first."])
    assert status_of(dbsession, posting) == "pending"


def test_remove_needs_a_reason_and_then_removes_the_ticked_postings(
    signed_in: webtest.TestApp, dbsession: Session, new_posting: Any
) -> None:
    posting = new_posting()
    posted = new_posting()
    set_status(dbsession, posted, "posted")
    page = signed_in.get(LIST)
    after = tick(page, posting).submit("action", value="remove").follow()
    assert flashes(after)[1] == [
        f"Did not remove 1 posting: {named(posting)}: Say why it is removed."
    ]
    assert status_of(dbsession, posting) == "pending"

    form = tick(signed_in.get(LIST), posting, posted)
    form["reason"] = "Entered in the matter system by the bookkeeper"
    after = form.submit("action", value="remove").follow()
    ok, bad = flashes(after)
    assert ok == [f"Removed 1 posting: {named(posting)}. They will not be posted."]
    assert bad == [
        f"Did not remove 1 posting: {named(posted)}: It is already in the matter system."
    ]
    dbsession.expire_all()
    removed = dbsession.get(Posting, posting.id)
    assert removed is not None and removed.status == "removed"
    assert removed.removed_reason == "Entered in the matter system by the bookkeeper"
    listed = signed_in.get(LIST, {"status": "removed"})
    assert row_ids(listed) == [posting.id]
    assert "Entered in the matter system by the bookkeeper" in listed.text


def test_pages_follow_the_cursor_and_an_unknown_cursor_starts_again(
    signed_in: webtest.TestApp, new_posting: Any
) -> None:
    postings = [new_posting() for _ in range(3)]
    newest_first = [p.id for p in reversed(postings)]
    first = signed_in.get(LIST, {"limit": "2"})
    assert row_ids(first) == newest_first[:2]
    second = first.click(linkid=None, href=r"cursor=", index=0)
    assert row_ids(second) == newest_first[2:]
    assert "postings 3\N{EN DASH}3 of 3" in second.html.select_one("#postings-summary").get_text()
    assert second.html.select_one('a[rel="next"]') is None
    lost = signed_in.get(LIST, {"cursor": "not-a-cursor"})
    assert row_ids(lost) == newest_first
    assert "Showing the first page" in flashes(lost)[1][0]


def test_each_connection_says_whether_it_posts_automatically(
    testapp: webtest.TestApp,
    signed_in: webtest.TestApp,
    admin: Any,
    connection: dict[str, Any],
) -> None:
    page = signed_in.get(LIST)
    section = page.html.select_one(".postings-automatic")
    assert "Our matters: No" in section.get_text(" ", strip=True)
    assert section.select_one('a[href$="/admin/connections"]') is None
    testapp.reset()
    login(testapp, admin)
    section = testapp.get(LIST).html.select_one(".postings-automatic")
    assert section.select_one('a[href$="/admin/connections"]') is not None


# --- Firm isolation and CSRF ----------------------------------------------------------------


@pytest.fixture
def other_firms_posting(
    testapp: webtest.TestApp, dbsession: Session, ledger: tuple[str, Ledger]
) -> Posting:
    other = FirmFactory()
    other_admin = bearer(dbsession, UserFactory(firm=other, role="admin"))
    other_staff = bearer(dbsession, UserFactory(firm=other, role="staff"))
    their_connection = add_connection(testapp, other_admin, ledger[0], "Their matters")
    account = MerchantAccountFactory(firm=other)
    link = paid_connect_link(testapp, other_staff, their_connection, account, "700.00")
    posting = posting_of(dbsession, link)
    set_status(dbsession, posting, "incomplete", reason="Invoice INV-102 is paid.")
    return posting


def test_another_firms_posting_is_not_found_and_left_alone(
    signed_in: webtest.TestApp, dbsession: Session, other_firms_posting: Posting
) -> None:
    theirs = other_firms_posting
    assert row_ids(signed_in.get(LIST)) == []
    signed_in.get(f"/postings/{theirs.id}", status=404)
    signed_in.get(f"/postings/{theirs.id}/invoices", {"q": "INV"}, status=404)
    token = signed_in.get(LIST).forms[FORM]["csrf_token"].value
    signed_in.post(
        f"/postings/{theirs.id}/reallocate",
        {"csrf_token": token, "invoice": "101", "amount-101": "700.00"},
        status=404,
    )
    signed_in.post(f"/postings/{theirs.id}/entered-by-hand", {"csrf_token": token}, status=404)
    after = signed_in.post(
        "/postings/actions",
        [("csrf_token", token), ("ids", str(theirs.id)), ("action", "remove"), ("reason", "x")],
    ).follow()
    assert flashes(after)[1] == [f"Did not remove 1 posting: posting {theirs.id}: it was not found"]
    after = signed_in.post(
        "/postings/actions", [("csrf_token", token), ("ids", str(theirs.id)), ("action", "post")]
    ).follow()
    assert flashes(after)[1] == [
        f"Skipped 1 posting, because posting {theirs.id}: it was not found."
    ]
    assert status_of(dbsession, theirs) == "incomplete"


def test_every_form_needs_the_csrf_token(
    signed_in: webtest.TestApp, dbsession: Session, new_posting: Any
) -> None:
    posting = new_posting()
    signed_in.post(
        "/postings/actions",
        [("ids", str(posting.id)), ("action", "remove"), ("reason", "x")],
        status=403,
    )
    signed_in.post(f"/postings/{posting.id}/entered-by-hand", {}, status=403)
    signed_in.post(f"/postings/{posting.id}/reallocate", {"invoice": "101"}, status=403)
    assert status_of(dbsession, posting) == "pending"


def test_the_pages_need_a_sign_in(testapp: webtest.TestApp, new_posting: Any) -> None:
    posting = new_posting()
    for path in (LIST, f"/postings/{posting.id}"):
        assert "/login" in testapp.get(path, status=302).location


# --- A posting's page -----------------------------------------------------------------------


def test_the_detail_shows_the_payment_its_allocations_and_every_attempt(
    app: Router, signed_in: webtest.TestApp, dbsession: Session, new_posting: Any
) -> None:
    posting = new_posting(payer_name="Jane Marlowe")
    page = signed_in.get(f"/postings/{posting.id}")
    detail = page.html.select_one("main").get_text(" ", strip=True)
    receipt = page.html.select_one("[data-receipt]").get_text(strip=True)
    assert receipt.startswith("R-") and posting.key == f"CPC-{receipt}"
    assert "Jane Marlowe" in detail and "pat@example.test" in detail
    assert "Visa ending in 4242" in detail
    # Named for what it is, never by a database id.
    assert page.html.h1.get_text(strip=True) == "Payment of $700.00 from Jane Marlowe"
    assert f"Posting {posting.id}" not in detail
    assert [a.get_text(strip=True) for a in page.html.select('nav a[aria-current="page"]')] == [
        "Manage Postings"
    ]
    assert page.html.select_one("[data-posting-status]").get_text(strip=True) == "Pending"
    allocations = [
        [cell.get_text(strip=True) for cell in tr.select("th, td")]
        for tr in page.html.select("[data-allocations] tbody tr")
    ]
    assert allocations == [["INV-101", "101", "$500.00", "—"], ["INV-102", "102", "$200.00", "—"]]

    post = form_to(page, "/postings/actions", "post")
    assert post["back"].value == "detail"
    after = post.submit("action", value="post").follow()
    assert after.request.path == f"/postings/{posting.id}"
    run_sync(app.registry, posting.id)
    page = signed_in.get(f"/postings/{posting.id}")
    outcomes = [
        (tr["data-outcome"], tr.select("td")[1].get_text(" ", strip=True))
        for tr in page.html.select("[data-attempts] tbody tr")
    ]
    assert outcomes == [
        ("created", "Payment received"),
        ("queued", "Queued to post (staff)"),
        ("posted", "Posted"),
    ]
    posted_row = page.html.select("[data-attempts] tbody tr")[-1].get_text(" ", strip=True)
    assert f"101: pay-{posting.key}-101" in posted_row
    # Times are the firm's (its settings' zone, New York by default): EST or EDT.
    first_time = page.html.select("[data-attempts] tbody tr td")[0].get_text(strip=True)
    assert re.search(r"\d{1,2}:\d\d [AP]M E[SD]T$", first_time)
    allocation_ids = [
        tr.select("td")[2].get_text(strip=True)
        for tr in page.html.select("[data-allocations] tbody tr")
    ]
    assert allocation_ids == [f"pay-{posting.key}-101", f"pay-{posting.key}-102"]


def test_an_incomplete_posting_is_reallocated_on_its_page_then_posted(
    app: Router,
    signed_in: webtest.TestApp,
    dbsession: Session,
    new_posting: Any,
    ledger: tuple[str, Ledger],
) -> None:
    posting = new_posting()
    book = ledger[1]
    book.invoices["102"] = replace(book.invoices["102"], paid=250_00, balance=0, state="paid")
    book.add_invoice(
        replace(book.invoices["101"], id="103", number="INV-103", balance=300_00, total=300_00)
    )
    signed_in.post(
        "/postings/actions",
        [
            ("csrf_token", signed_in.get(LIST).forms[FORM]["csrf_token"].value),
            ("ids", str(posting.id)),
            ("action", "post"),
        ],
    )
    # "not_claimed" once the queue runs the job itself (jobs immediate in tests).
    assert run_sync(app.registry, posting.id) in ("incomplete", "not_claimed")
    assert status_of(dbsession, posting) == "incomplete"

    page = signed_in.get(f"/postings/{posting.id}")
    assert "INV-102 is paid" in page.html.select_one("[data-posting-reason]").get_text()
    # The client's open invoices are offered; the paid one is not.
    offered = [tr["data-invoice"] for tr in page.html.select("tr[data-invoice]")]
    assert offered == ["101", "103"]
    form = page.forms["reallocate-form"]
    assert form.get("invoice", index=0).checked  # INV-101 keeps its 500.00
    assert form["amount-101"].value == "500.00"

    # Too little in all: the error says by how much, nothing changes.
    form.get("invoice", index=1).checked = True
    form["amount-103"] = "150.00"
    refused = form.submit(status=422)
    errors = refused.html.select_one("#reallocate-errors").get_text(" ", strip=True)
    assert "add up to 650.00; the payment is 700.00" in errors
    assert status_of(dbsession, posting) == "incomplete"

    # More than the invoice owes: the error is beside its amount.
    form = refused.forms["reallocate-form"]
    form["amount-101"] = "350.00"
    form["amount-103"] = "350.00"
    refused = form.submit(status=422)
    error = refused.html.select_one("#amount-input-2-error")
    assert error is not None and "INV-103 owes 300.00" in error.get_text()

    form = refused.forms["reallocate-form"]
    form["amount-101"] = "400.00"
    form["amount-103"] = "300.00"
    done = form.submit(status=303).follow()
    assert "Re-allocated" in flashes(done)[0][0]
    assert status_of(dbsession, posting) == "pending"
    form_to(done, "/postings/actions", "post").submit("action", value="post")
    run_sync(app.registry, posting.id)
    assert status_of(dbsession, posting) == "posted"
    assert book.invoices["101"].balance == 100_00 and book.invoices["103"].balance == 0


def test_the_reallocation_search_answers_as_a_partial(
    signed_in: webtest.TestApp, dbsession: Session, new_posting: Any
) -> None:
    posting = new_posting()
    set_status(dbsession, posting, "incomplete", reason="Invoice INV-102 is paid.")
    partial = signed_in.get(f"/postings/{posting.id}/invoices", {"q": "INV-102"})
    assert "<html" not in partial.text
    assert [tr["data-invoice"] for tr in partial.html.select("tr[data-invoice]")] == ["102"]
    nothing = signed_in.get(f"/postings/{posting.id}/invoices", {"q": "nobody"})
    assert "No open invoices match" in nothing.text
    set_status(dbsession, posting, "pending")
    signed_in.get(f"/postings/{posting.id}/invoices", {"q": "INV"}, status=404)


def test_a_down_matter_system_is_said_on_the_reallocation_form(
    signed_in: webtest.TestApp,
    dbsession: Session,
    new_posting: Any,
    ledger: tuple[str, Ledger],
) -> None:
    posting = new_posting()
    set_status(dbsession, posting, "incomplete", reason="Invoice INV-102 is paid.")
    ledger[1].down = True
    page = signed_in.get(f"/postings/{posting.id}")
    assert "did not answer" in page.html.select_one("[data-matter-problem]").get_text()
    form = page.forms["reallocate-form"]
    answer = signed_in.post(
        form.action,
        {"csrf_token": form["csrf_token"].value, "invoice": "101", "amount-101": "700.00"},
        status=503,
    )
    assert "did not answer" in answer.html.select_one("[data-matter-problem]").get_text()
    assert status_of(dbsession, posting) == "incomplete"


def test_a_manual_posting_shows_its_slip_and_is_marked_entered_by_hand(
    signed_in: webtest.TestApp, dbsession: Session, new_posting: Any
) -> None:
    posting = new_posting()
    slip = ManualSlip(
        client="Jane Marlowe",
        matter="2024-0017 Marlowe divorce",
        date=TODAY,
        reference="R-000123",
        currency="USD",
        lines=(("INV-101", 500_00), ("INV-102", 200_00)),
    )
    set_status(dbsession, posting, "manual_required", slip=slip_json(slip))
    page = signed_in.get(f"/postings/{posting.id}")
    shown = page.html.select_one("[data-slip]").get_text(" ", strip=True)
    assert "Jane Marlowe" in shown and "2024-0017 Marlowe divorce" in shown
    assert "Invoice INV-101 $500.00" in shown and "Invoice INV-102 $200.00" in shown
    copy = page.html.select_one("#slip-text").get_text()
    assert copy.splitlines() == [
        "Client: Jane Marlowe",
        "Matter: 2024-0017 Marlowe divorce",
        f"Date: {TODAY.isoformat()}",
        "Reference: R-000123",
        "Invoice INV-101: $500.00",
        "Invoice INV-102: $200.00",
    ]
    assert page.html.select_one('[data-copy-target="#slip-text"]') is not None
    assert page.html.select_one("[data-print]") is not None
    entered = form_to(page, "/entered-by-hand")
    done = entered.submit(status=303).follow()
    assert flashes(done)[0] == ["Marked as entered by hand in the matter system: it is posted."]
    dbsession.expire_all()
    fresh = dbsession.get(Posting, posting.id)
    assert fresh is not None and fresh.status == "posted" and fresh.entered_by_hand
    again = signed_in.post(
        f"/postings/{posting.id}/entered-by-hand", {"csrf_token": entered["csrf_token"].value}
    ).follow()
    assert flashes(again)[1] == ["Only a posting entered by hand can be marked so."]


def test_a_posting_is_removed_from_its_page_with_a_reason(
    signed_in: webtest.TestApp, dbsession: Session, new_posting: Any
) -> None:
    posting = new_posting()
    page = signed_in.get(f"/postings/{posting.id}")
    remove = form_to(page, "/postings/actions", "remove")
    remove["reason"] = "Refunded to the client"
    done = remove.submit("action", value="remove").follow()
    assert done.request.path == f"/postings/{posting.id}"
    assert "Refunded to the client" in done.html.select_one("[data-removed]").get_text()
    assert status_of(dbsession, posting) == "removed"
    assert not [f for f in done.forms.values() if "reason" in f.fields]


def test_reallocating_to_nothing_is_refused_and_shows_nothing_ticked(
    signed_in: webtest.TestApp, dbsession: Session, new_posting: Any
) -> None:
    posting = new_posting()
    set_status(dbsession, posting, "incomplete", reason="Invoice INV-102 is paid.")
    form = signed_in.get(f"/postings/{posting.id}").forms["reallocate-form"]
    for box in form.fields["invoice"]:
        box.checked = False
    refused = form.submit(status=422)
    errors = refused.html.select_one("#reallocate-errors").get_text(" ", strip=True)
    assert errors == "Allocate the payment to an invoice."
    assert refused.html.select("input[name=invoice][checked]") == []
    assert status_of(dbsession, posting) == "incomplete"
