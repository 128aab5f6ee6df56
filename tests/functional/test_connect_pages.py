"""The Connect page through WebTest, as a signed-in person uses it: search the matter system
(the ``memory`` adapter of a test distribution), tick invoices, see the allocation, send."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
import webtest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from clientpay_connect.connect.models import LinkInvoice
from clientpay_connect.connect.page import AMOUNT_FIELD, amount_anchor
from clientpay_connect.links.models import SOURCE_CONNECT, PaymentLink
from clientpay_connect.mail.models import KIND_LINK, OutboxMessage
from tests.conftest import csrf_token, login
from tests.factories import ConnectionFactory, FirmFactory, MerchantAccountFactory
from tests.support.matter_adapter import Ledger

pytestmark = pytest.mark.usefixtures("test_adapter_distribution")

FORM = "connect-form"
HTMX = {"HX-Request": "true"}


@pytest.fixture
def account(firm: Any) -> Any:
    return MerchantAccountFactory(firm=firm, name="Operating")


@pytest.fixture
def connection(firm: Any, ledger: tuple[str, Ledger]) -> Any:
    return ConnectionFactory(firm=firm, name="Our matters", settings={"ledger": ledger[0]})


@pytest.fixture
def signed_in(testapp: webtest.TestApp, staff: Any, account: Any) -> webtest.TestApp:
    login(testapp, staff)
    return testapp


def links_count(dbsession: Session) -> int:
    return int(dbsession.execute(select(func.count()).select_from(PaymentLink)).scalar_one())


def search_page(app: webtest.TestApp, connection: Any, q: str, **extra: Any) -> Any:
    return app.get("/connect", {"connection_id": connection.id, "q": q}, **extra)


def tick(form: webtest.Form, *invoice_ids: str) -> None:
    for box in form.fields["invoice"]:
        if box._value in invoice_ids:
            box.checked = True


def changed(fields: list[tuple[str, str]], **values: str) -> list[tuple[str, str]]:
    return [(name, values.get(name, value)) for name, value in fields]


def invoice_row(page: Any, number: str) -> Any:
    label = page.html.find("label", string=number)
    assert label is not None, f"{number} is not listed"
    return label.find_parent("tr")


# --- Choosing a connection -------------------------------------------------------------------


def test_without_a_connection_the_page_says_so_and_admins_get_a_way_there(
    testapp: webtest.TestApp, staff: Any, admin: Any, account: Any
) -> None:
    login(testapp, staff)
    page = testapp.get("/connect")
    notice = page.html.find(attrs={"data-no-connection": True})
    assert "No matter system is connected" in notice.text
    assert notice.find("a") is None
    testapp.reset()
    login(testapp, admin)
    notice = testapp.get("/connect").html.find(attrs={"data-no-connection": True})
    assert notice.find("a")["href"].endswith("/admin/connections")


def test_the_only_connection_is_chosen_and_the_menu_leads_here(
    signed_in: webtest.TestApp, connection: Any
) -> None:
    home = signed_in.get("/")
    assert home.html.find("a", string="Connect")["href"].endswith("/connect")
    page = signed_in.get("/connect")
    assert "Searching Our matters" in page.html.find(class_="connect-using").text
    assert page.forms[FORM]["connection_id"].value == str(connection.id)


def test_with_several_connections_one_is_chosen_by_hand(
    signed_in: webtest.TestApp, connection: Any, firm: Any, ledger: tuple[str, Ledger]
) -> None:
    other = ConnectionFactory(firm=firm, name="Old system", settings={"ledger": ledger[0]})
    ConnectionFactory(firm=firm, name="Gone", status="disconnected")
    page = signed_in.get("/connect")
    options = [o.text for o in page.html.find("select", id="connection_id").find_all("option")]
    assert options == ["Choose a connection", "Our matters", "Old system"]
    assert FORM not in page.forms
    chosen = signed_in.get("/connect", {"connection_id": other.id})
    assert chosen.forms[FORM]["connection_id"].value == str(other.id)


def test_the_connections_default_merchant_account_is_chosen(
    signed_in: webtest.TestApp, connection: Any, firm: Any, dbsession: Session
) -> None:
    trust = MerchantAccountFactory(firm=firm, name="Client trust", kind="trust")
    assert signed_in.get("/connect").forms[FORM]["merchant_account_id"].value == ""
    connection.default_merchant_account_id = trust.id
    dbsession.flush()
    assert signed_in.get("/connect").forms[FORM]["merchant_account_id"].value == str(trust.id)


# --- Searching --------------------------------------------------------------------------------


def test_results_are_grouped_client_matter_invoice_with_their_facts(
    signed_in: webtest.TestApp, connection: Any
) -> None:
    page = search_page(signed_in, connection, "marlowe")
    client = page.html.find("section", attrs={"data-client": True})
    assert client.find("h2").text == "Jane Marlowe"
    assert client.find("h3").text == "2024-0017 Marlowe divorce"
    past_due = invoice_row(page, "INV-101")
    cells = [td.text.strip() for td in past_due.find_all("td")]
    assert "Past due" in cells[2]
    assert cells[3:7] == ["$600.00", "$100.00", "$500.00", "Operating"]
    # The amount asked defaults to the balance.
    assert past_due.find("input", attrs={"data-invoice-amount": True})["value"] == "500.00"
    assert "Past due" not in invoice_row(page, "INV-102").text
    assert "Trust" in invoice_row(page, "INV-103").text
    assert page.html.find(attrs={"data-results-status": True}).text.startswith(
        "1 client, 3 open invoices"
    )
    # The payer is the client whose invoices are listed.
    assert page.forms[FORM]["emails"].value == "jane@example.com"
    assert page.html.find("input", id="recipient_name")["placeholder"] == "Jane Marlowe"


def test_the_search_box_answers_as_staff_type_through_htmx(
    signed_in: webtest.TestApp, connection: Any
) -> None:
    box = search_page(signed_in, connection, "").html.find("input", id="q")
    assert box["hx-get"].endswith("/connect/results")
    assert box["hx-trigger"].startswith("input changed delay:300ms")
    assert box["hx-target"] == "#connect-results"
    partial = signed_in.get(
        "/connect/results", {"connection_id": connection.id, "q": "acme"}, headers=HTMX
    )
    assert "<html" not in partial.text
    assert [h.text for h in partial.html.find_all("h2")] == ["Acme Holdings"]
    assert partial.html.find("label", string="INV-201") is not None


def test_an_invoice_ticked_before_a_new_search_stays_ticked_with_its_amount(
    signed_in: webtest.TestApp, connection: Any
) -> None:
    partial = signed_in.get(
        "/connect/results",
        {
            "connection_id": connection.id,
            "q": "2024-0017",
            "invoice": "102",
            AMOUNT_FIELD + "102": "12.50",
        },
        headers=HTMX,
    )
    row = invoice_row(partial, "INV-102")
    assert row.find("input", attrs={"name": "invoice"}).has_attr("checked")
    assert row.find("input", attrs={"data-invoice-amount": True})["value"] == "12.50"
    assert (
        not invoice_row(partial, "INV-101")
        .find("input", attrs={"name": "invoice"})
        .has_attr("checked")
    )


def test_nothing_found_says_so(signed_in: webtest.TestApp, connection: Any) -> None:
    page = search_page(signed_in, connection, "zebra")
    assert "Nothing in Our matters matches “zebra”" in page.text


def test_an_embedded_launch_opens_on_the_client(
    signed_in: webtest.TestApp, connection: Any
) -> None:
    page = signed_in.get("/connect", {"connection_id": connection.id, "client_id": "c2"})
    assert [h.text for h in page.html.find_all("h2")] == ["Acme Holdings"]
    assert page.forms[FORM]["emails"].value == "ap@acme.example"
    matter = signed_in.get(
        "/connect", {"connection_id": connection.id, "client_id": "c1", "matter_id": "m1"}
    )
    assert [label.text for label in matter.html.select("tbody th label")] == [
        "INV-101",
        "INV-102",
        "INV-103",
    ]


# --- Sending ----------------------------------------------------------------------------------


def test_send_a_link_for_two_invoices_with_one_amount_changed(
    signed_in: webtest.TestApp, connection: Any, account: Any, dbsession: Session
) -> None:
    form = search_page(signed_in, connection, "marlowe").forms[FORM]
    tick(form, "101", "102")
    form[AMOUNT_FIELD + "101"] = "200"
    form["message"] = "For the divorce work."
    done = form.submit("action", value="send", status=303).follow()
    assert done.html.find("h1").text.strip() == "Link sent"
    assert [li.text for li in done.html.select("[data-recipients] li")] == ["jane@example.com"]
    assert "for $450.00 (invoices INV-101, INV-102) is on its way" in " ".join(
        done.html.find(role="status").text.split()
    )
    rows = done.html.select("[data-link-invoices] tbody tr")
    assert [(r.find("th").text, r.find_all("td")[-1].text) for r in rows] == [
        ("INV-101", "$200.00"),
        ("INV-102", "$250.00"),
    ]
    assert done.html.find("input", id="link-url")["value"].startswith("http://localhost/pay/")

    link = dbsession.execute(select(PaymentLink)).scalar_one()
    assert (link.source, link.connection_id, link.amount_minor) == (
        SOURCE_CONNECT,
        connection.id,
        450_00,
    )
    assert (link.recipient_name, link.message) == ("Jane Marlowe", "For the divorce work.")
    assert link.merchant_account_id == account.id
    invoices = dbsession.execute(select(LinkInvoice.invoice_id, LinkInvoice.amount_minor)).all()
    assert sorted(invoices) == [("101", 200_00), ("102", 250_00)]
    mail = dbsession.execute(select(OutboxMessage)).scalar_one()
    assert (mail.kind, mail.recipients) == (KIND_LINK, ["jane@example.com"])


def test_generate_a_link_for_a_total_allocated_oldest_due_first(
    signed_in: webtest.TestApp, connection: Any, dbsession: Session
) -> None:
    form = search_page(signed_in, connection, "marlowe").forms[FORM]
    tick(form, "101", "102")
    form["allocation"] = "total"
    form["amount"] = "$600"
    form["send_email"] = "no"
    done = form.submit("action", value="generate", status=303).follow()
    assert done.html.find("h1").text.strip() == "Your link is ready"
    link = dbsession.execute(select(PaymentLink)).scalar_one()
    assert link.amount_minor == 600_00 and link.email_status == "not_sent"
    rows = dbsession.execute(
        select(LinkInvoice.invoice_id, LinkInvoice.amount_minor).order_by(LinkInvoice.position)
    ).all()
    # INV-101 was due first: it is paid in full, INV-102 gets the rest.
    assert [tuple(r) for r in rows] == [("101", 500_00), ("102", 100_00)]
    assert dbsession.execute(select(func.count()).select_from(OutboxMessage)).scalar_one() == 0


def test_a_mistake_is_shown_beside_its_invoice_and_nothing_typed_is_lost(
    signed_in: webtest.TestApp, connection: Any, dbsession: Session
) -> None:
    form = search_page(signed_in, connection, "marlowe").forms[FORM]
    tick(form, "101", "102")
    form[AMOUNT_FIELD + "101"] = "500.01"
    form[AMOUNT_FIELD + "102"] = ""
    form["emails"] = "jane@example.com, nope@"
    page = form.submit("action", value="send", status=422)
    assert links_count(dbsession) == 0

    over = page.html.find("input", id=amount_anchor("101"))
    assert over["value"] == "500.01" and over["aria-invalid"] == "true"
    assert "owes 500.00" in page.html.find(id=over["aria-describedby"]).text
    blank = page.html.find("input", id=amount_anchor("102"))
    assert page.html.find(id=blank["aria-describedby"]).text == "Enter an amount."
    emails = page.html.find("input", id="emails")
    assert emails["value"] == "jane@example.com, nope@"
    assert "“nope@” is not a valid email address." in page.html.find(id="emails-error").text
    summary = page.html.find(id="form-errors")
    assert "Please correct these 3 fields" in summary.text
    anchors = [a["href"] for a in summary.find_all("a")]
    assert anchors == [f"#{amount_anchor('101')}", f"#{amount_anchor('102')}", "#emails"]
    # The invoices stay listed and ticked.
    kept = page.forms[FORM]
    assert sorted(box._value for box in kept.fields["invoice"] if box.checked) == ["101", "102"]


def test_a_trust_account_needs_every_amount_typed(
    signed_in: webtest.TestApp, connection: Any, firm: Any, dbsession: Session
) -> None:
    trust = MerchantAccountFactory(firm=firm, name="Client trust", kind="trust")
    form = search_page(signed_in, connection, "marlowe").forms[FORM]
    tick(form, "103")
    form["merchant_account_id"] = str(trust.id)
    form["allocation"] = "total"
    form["amount"] = "90"
    form["send_email"] = "no"
    page = form.submit("action", value="generate", status=422)
    assert "Trust money is never allocated" in page.html.find(id="amount-error").text
    form = page.forms[FORM]
    form["allocation"] = "each"
    form.submit("action", value="generate", status=303)
    assert dbsession.execute(select(LinkInvoice.account)).scalar_one() == "trust"


def test_the_preview_shows_the_allocation_before_anything_is_sent(
    signed_in: webtest.TestApp, connection: Any, account: Any, firm: Any, dbsession: Session
) -> None:
    form = search_page(signed_in, connection, "marlowe").forms[FORM]
    preview = form.html.find(id="allocation-preview")
    assert preview["hx-post"].endswith("/connect/preview")
    tick(form, "101", "102")
    form["allocation"] = "total"
    form["amount"] = "550"
    fields = form.submit_fields()
    answer = signed_in.post("/connect/preview", fields, headers=HTMX)
    lines = [
        [cell.text.strip() for cell in tr.find_all(["th", "td"])]
        for tr in answer.html.select("[data-preview-line]")
    ]
    assert lines == [
        ["INV-101", "$500.00", "$500.00", "$0.00"],
        ["INV-102", "$250.00", "$50.00", "$200.00"],
    ]
    assert answer.html.find(attrs={"data-preview-total": True}).text == "$550.00"
    too_much = signed_in.post("/connect/preview", changed(fields, amount="750.01"), headers=HTMX)
    assert "more than the chosen invoices owe" in too_much.text
    trust = MerchantAccountFactory(firm=firm, kind="trust")
    refused = signed_in.post(
        "/connect/preview", changed(fields, merchant_account_id=str(trust.id)), headers=HTMX
    )
    assert "Trust money is never allocated" in refused.text
    # Without scripts the button asks the page for the same preview; nothing is made.
    page = form.submit("action", value="preview", status=200)
    assert page.html.find(attrs={"data-preview-total": True}).text == "$550.00"
    assert links_count(dbsession) == 0


# --- The matter system's problems --------------------------------------------------------------


def test_a_matter_system_that_is_down_is_a_message_not_a_500(
    signed_in: webtest.TestApp, connection: Any, ledger: tuple[str, Ledger], dbsession: Session
) -> None:
    form = search_page(signed_in, connection, "marlowe").forms[FORM]
    tick(form, "101")
    ledger[1].down = True
    page = search_page(signed_in, connection, "acme", status=503)
    assert "did not answer" in page.html.find(attrs={"data-matter-problem": True}).text
    partial = signed_in.get(
        "/connect/results", {"connection_id": connection.id, "q": "acme"}, headers=HTMX
    )
    assert partial.status_int == 200 and "did not answer" in partial.text
    sent = form.submit("action", value="send", status=503)
    assert "did not answer" in sent.html.find(attrs={"data-matter-problem": True}).text
    assert links_count(dbsession) == 0


def test_a_connection_needing_reauthorization_says_so_and_admins_can_act(
    testapp: webtest.TestApp, connection: Any, admin: Any, account: Any, dbsession: Session
) -> None:
    connection.status = "needs_reauthorization"
    dbsession.flush()
    login(testapp, admin)
    page = search_page(testapp, connection, "acme", status=409)
    problem = page.html.find("div", attrs={"data-matter-problem": True})
    assert "needs an admin to connect it again" in problem.text
    assert problem.find("a")["href"].endswith("/admin/connections")


def test_a_link_refused_because_an_invoice_was_paid_meanwhile(
    signed_in: webtest.TestApp, connection: Any, ledger: tuple[str, Ledger], dbsession: Session
) -> None:
    form = search_page(signed_in, connection, "marlowe").forms[FORM]
    tick(form, "101", "102")
    book = ledger[1]
    book.invoices["101"] = replace(book.invoices["101"], paid=600_00, balance=0, state="paid")
    page = form.submit("action", value="send", status=422)
    assert "INV-101 has nothing left to pay" in page.html.find(id="form-errors").text
    assert links_count(dbsession) == 0


# --- Isolation and CSRF -----------------------------------------------------------------------


def test_another_firms_connection_is_not_found_anywhere_on_the_page(
    signed_in: webtest.TestApp, connection: Any, ledger: tuple[str, Ledger], account: Any
) -> None:
    theirs = ConnectionFactory(firm=FirmFactory(), name="Theirs", settings={"ledger": ledger[0]})
    page = signed_in.get("/connect")
    assert "Theirs" not in page.text
    signed_in.get("/connect", {"connection_id": theirs.id, "q": "a"}, status=404)
    signed_in.get("/connect/results", {"connection_id": theirs.id, "q": "a"}, status=404)
    signed_in.get("/connect", {"connection_id": "99999999999999999999"}, status=404)
    token = csrf_token(signed_in)
    signed_in.post(
        "/connect",
        {
            "csrf_token": token,
            "connection_id": theirs.id,
            "invoice": "201",
            AMOUNT_FIELD + "201": "5",
            "merchant_account_id": account.id,
            "action": "generate",
        },
        status=404,
    )


def test_posts_need_the_csrf_token(
    signed_in: webtest.TestApp, connection: Any, dbsession: Session
) -> None:
    form = search_page(signed_in, connection, "marlowe").forms[FORM]
    tick(form, "101")
    fields = [(k, v) for k, v in form.submit_fields() if k != "csrf_token"]
    signed_in.post("/connect", [*fields, ("action", "generate")], status=403)
    signed_in.post("/connect/preview", fields, headers=HTMX, status=403)
    assert links_count(dbsession) == 0


def test_the_pages_are_for_signed_in_staff(testapp: webtest.TestApp, connection: Any) -> None:
    assert testapp.get("/connect", status=302).location.endswith("/login?next=%2Fconnect")
