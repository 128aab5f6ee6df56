"""The Bulk Upload pages through WebTest, as a signed-in person uses them without script:
upload, review (delete, add, fix), Send All and Generate, and the result."""

from __future__ import annotations

from typing import Any

import pytest
import webtest
from bs4 import BeautifulSoup
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from clientpay_connect.bulk.models import BulkRow, BulkUpload
from clientpay_connect.links.models import PaymentLink
from clientpay_connect.mail.models import OutboxMessage
from tests.conftest import login
from tests.factories import FirmFactory, MerchantAccountFactory, UserFactory

HEADER = "Invoice Number,Invoice Date,Due Date,Recipient Name,Amount,Email Address,Custom Message"
GOOD = "INV-1,2025-01-15,2025-02-14,Jane Doe,1250,jane@example.com,Thanks"
BAD_AMOUNT = "INV-2,2025-01-15,2025-02-14,Acme LLC,abc,ap@acme.example,"
BAD_DATES = "INV-3,2025-03-01,2025-02-01,Bob Roe,80,bob@example.com,"


@pytest.fixture
def account(staff: Any) -> Any:
    return MerchantAccountFactory(firm=staff.firm, name="Operating")


@pytest.fixture
def signed_in(testapp: webtest.TestApp, staff: Any, account: Any) -> webtest.TestApp:
    login(testapp, staff)
    return testapp


def file_of(*lines: str) -> bytes:
    return "\n".join((HEADER, *lines)).encode()


def upload(app: webtest.TestApp, data: bytes, name: str = "march.csv", **fields: str) -> Any:
    form = app.get("/bulk").forms["bulk-upload-form"]
    form["file"] = (name, data)
    for key, value in fields.items():
        form[key] = value
    return form.submit(status="*")


def review(app: webtest.TestApp, *lines: str) -> webtest.TestResponse:
    return upload(app, file_of(*lines)).follow()


def count(dbsession: Session, model: Any, *where: Any) -> int:
    return int(
        dbsession.execute(select(func.count()).select_from(model).where(*where)).scalar_one()
    )


def problems(page: webtest.TestResponse, row: int) -> list[str]:
    cell = page.html.select_one(f"#row-{row} [data-problems]")
    return [item.get_text(strip=True) for item in cell.select("li")]


def flash(page: webtest.TestResponse) -> str:
    return " ".join(node.get_text(" ", strip=True) for node in page.html.select(".flash"))


# --- the upload page --------------------------------------------------------------------------


def test_the_menu_leads_to_bulk_upload_and_its_templates(signed_in):
    home = signed_in.get("/")
    assert home.html.find("a", string="Bulk Upload")["href"].endswith("/bulk")
    page = signed_in.get("/bulk")
    hrefs = [a["href"] for a in page.html.select(".bulk-templates a")]
    assert hrefs == [
        "http://localhost/api/v1/bulk-uploads/template.csv",
        "http://localhost/api/v1/bulk-uploads/template.txt",
    ]
    file_input = page.html.find("input", type="file")
    assert file_input["accept"] == ".csv,.txt,text/csv,text/plain"


def test_the_only_account_is_chosen_and_several_need_a_choice(signed_in, staff, account):
    form = signed_in.get("/bulk").forms["bulk-upload-form"]
    assert form["merchant_account_id"].value == str(account.id)
    MerchantAccountFactory(firm=staff.firm, name="Trust", kind="trust")
    form = signed_in.get("/bulk").forms["bulk-upload-form"]
    assert form["merchant_account_id"].value == ""
    page = upload(signed_in, file_of(GOOD), merchant_account_id="")
    assert page.status_int == 422
    assert page.html.select_one("#merchant_account_id-error").get_text() == (
        "Choose a merchant account."
    )


def test_an_unreadable_file_is_explained_and_nothing_is_kept(signed_in, dbsession):
    page = upload(signed_in, b"PK\x03\x04" + b"\x00" * 64, name="invoices.csv")
    assert page.status_int == 422
    assert "zip archive (perhaps a workbook)" in page.html.select_one("#upload-file-error").text
    assert "Nothing was kept" in flash(page)
    assert page.html.select_one("#upload-file")["aria-invalid"] == "true"
    assert count(dbsession, BulkUpload) == 0


def test_a_file_is_uploaded_to_its_review_and_listed(signed_in, dbsession):
    response = upload(signed_in, file_of(GOOD, BAD_AMOUNT))
    assert response.status_int == 303
    upload_id = dbsession.execute(select(BulkUpload.id)).scalar_one()
    assert response.location.endswith(f"/bulk/{upload_id}")
    listing = signed_in.get("/bulk")
    row = listing.html.find("tr", attrs={"data-upload-id": str(upload_id)})
    cells = [cell.get_text(strip=True) for cell in row.find_all("td")]
    assert cells[0] == "march.csv" and cells[2:] == ["2", "In review"]


# --- the review -------------------------------------------------------------------------------


def test_the_review_shows_every_rows_errors_beside_it(signed_in):
    page = review(signed_in, GOOD, BAD_AMOUNT, BAD_DATES)
    assert [tr["data-row"] for tr in page.html.select("tbody tr[data-row]")] == ["2", "3", "4"]
    assert problems(page, 2) == []
    assert problems(page, 3) == ["Amount: 'abc' is not an amount."]
    assert problems(page, 4) == [
        "Due Date: The due date (2025-02-01) is before the invoice date (2025-03-01)."
    ]
    # The wrong value is shown as typed, marked.
    assert page.html.select_one("#row-3 td.cell-error").get_text() == "abc"
    assert page.html.select_one('[data-count="errors"]').text == "2"
    report = page.html.find("a", string="Download the error report")
    assert report["href"].endswith("/report.csv")


def test_make_buttons_are_disabled_with_the_reason_while_rows_have_errors(signed_in):
    page = review(signed_in, GOOD, BAD_AMOUNT)
    send = page.html.find("button", string="Send All")
    generate = page.html.find("button", string="Generate Links for Download")
    assert send.has_attr("disabled") and generate.has_attr("disabled")
    reason = page.html.find(id=send["aria-describedby"])
    assert reason.get_text(strip=True) == "1 row has errors. Fix or delete it first."


def test_ignored_columns_are_reported_once(signed_in):
    data = b"Recipient Name,Amount,Matter,Partner\nAnn,10,M-1,P\nBob,20,M-2,Q\n"
    page = upload(signed_in, data).follow()
    notes = page.html.select("[data-ignored-columns]")
    assert len(notes) == 1
    assert "“Matter”, “Partner”" in notes[0].get_text()


def test_a_synonym_beside_the_templates_column_is_said_to_be_set_aside(signed_in, dbsession):
    data = b"Recipient Name,Amount,Notes,Custom Message,Matter\nAnn,10,old,Thanks,M-1\n"
    page = upload(signed_in, data).follow()
    (note,) = page.html.select("[data-set-aside-column]")
    assert " ".join(note.get_text().split()) == (
        "“Notes” was not read: the Custom Message is read from “Custom Message”, "
        "the template's column."
    )
    # The hint to rename is for the columns nothing reads, not for the one set aside.
    (unread,) = page.html.select("[data-ignored-columns]")
    assert "“Matter”" in unread.get_text() and "Notes" not in unread.get_text()
    (row,) = dbsession.execute(select(BulkRow)).scalars().all()
    assert row.message == "Thanks"


def test_delete_removes_the_row(signed_in, dbsession):
    page = review(signed_in, GOOD, BAD_AMOUNT)
    page = page.forms[1].submit().follow()  # the first Delete is row 2's
    delete = next(f for f in page.forms.values() if f.action.endswith("/rows/3/delete"))
    page = delete.submit().follow()
    assert "Row 3 was deleted." in flash(page)
    assert page.html.select("tbody tr[data-row]") == []
    assert count(dbsession, BulkRow, BulkRow.deleted.is_(False)) == 0


def test_add_keeps_what_was_typed_and_shows_the_errors_beside_the_fields(signed_in, dbsession):
    page = review(signed_in, GOOD)
    form = page.forms["add-row"]
    form["recipient_name"] = "Dana"
    form["amount"] = "12.345"
    form["email"] = "dana@"
    answer = form.submit(status=422)
    assert answer.html.select_one("#add-amount")["value"] == "12.345"
    assert answer.html.select_one("#add-email")["aria-invalid"] == "true"
    assert answer.html.select_one("#add-amount-error").text == (
        "An amount in USD has at most 2 decimals."
    )
    assert "This row needs 2 corrections" in answer.html.select_one("#add-row-errors").text
    assert count(dbsession, BulkRow) == 1

    form = answer.forms["add-row"]
    form["amount"] = "12.34"
    form["email"] = "dana@example.com"
    added = form.submit().follow()
    assert "Row 3 was added." in flash(added)
    assert added.html.select_one("#row-3 th").get_text(" ", strip=True) == "3 (added)"


def test_fix_fills_the_form_with_the_row_and_replaces_it(signed_in, dbsession):
    page = review(signed_in, GOOD, BAD_AMOUNT)
    fix = page.html.find("a", attrs={"aria-label": "Fix row 3"})
    form_page = signed_in.get(fix["href"])
    form = form_page.forms["add-row"]
    assert form["amount"].value == "abc"
    assert form["recipient_name"].value == "Acme LLC"
    assert form["replaces"].value == "3"
    assert form_page.html.select_one("#add-row legend").text == "Fix row 3"
    form["amount"] = "2,400.50"
    fixed = form.submit().follow()
    assert "Row 3 was replaced by row 4." in flash(fixed)
    assert [tr["data-row"] for tr in fixed.html.select("tbody tr[data-row]")] == ["2", "4"]
    assert not fixed.html.find("button", string="Send All").has_attr("disabled")


def test_duplicates_ask_for_a_tick_before_the_links_are_made(signed_in, dbsession):
    page = review(signed_in, GOOD, GOOD.replace("Jane Doe", "Jane Roe"))
    assert problems(page, 3) == ["Invoice number INV-1 is also in row 2."]
    form = page.forms["make-links"]
    assert form["confirm_warnings"].value is None
    refused = form.submit("action", value="generate").follow()
    assert "used more than once" in flash(refused)
    assert count(dbsession, PaymentLink) == 0
    form = refused.forms["make-links"]
    form["confirm_warnings"] = "yes"
    form.submit("action", value="generate").follow()
    assert count(dbsession, PaymentLink) == 2


def test_send_all_shows_the_emails_queued_and_each_links_page(signed_in, dbsession):
    page = review(signed_in, GOOD, BAD_AMOUNT.replace("abc", "99"))
    make = page.forms["make-links"]
    result = make.submit("action", value="send").follow()
    assert "2 links were made and 2 emails queued" in result.html.select_one("[data-result]").text
    links = list(dbsession.execute(select(PaymentLink).order_by(PaymentLink.id)).scalars())
    hrefs = [a["href"] for a in result.html.find_all("a", string="View link")]
    assert hrefs == [f"http://localhost/links/{link.id}" for link in links]
    assert count(dbsession, OutboxMessage) == 2
    # Sending again (the back button, a double click) makes nothing more.
    make.submit("action", value="send").follow()
    assert count(dbsession, PaymentLink) == 2 and count(dbsession, OutboxMessage) == 2


def test_generate_shows_the_links_to_copy_and_download(signed_in, dbsession):
    page = review(signed_in, GOOD)
    result = page.forms["make-links"].submit("action", value="generate").follow()
    assert "1 link is ready" in result.html.select_one("[data-result]").text
    copy = result.html.select_one("[data-copy-target]")
    target = result.html.select_one(copy["data-copy-target"])
    link = dbsession.execute(select(PaymentLink)).scalar_one()
    assert target["value"].startswith("http://localhost/pay/")
    assert copy["aria-label"] == "Copy the link for row 2"
    downloads = [a["href"] for a in result.html.select(".bulk-result .actions a")]
    upload_id = dbsession.execute(select(BulkUpload.id)).scalar_one()
    assert downloads == [
        f"http://localhost/api/v1/bulk-uploads/{upload_id}/links.csv",
        f"http://localhost/api/v1/bulk-uploads/{upload_id}/links.xlsx",
    ]
    # The session's cookie reaches the API's downloads too.
    csv_text = signed_in.get(downloads[0]).body.decode("utf-8-sig")
    assert target["value"] in csv_text and link.email_status == "not_sent"


def test_forms_without_the_csrf_token_are_refused(signed_in, dbsession):
    page = review(signed_in, GOOD)
    upload_id = dbsession.execute(select(BulkUpload.id)).scalar_one()
    signed_in.post(f"/bulk/{upload_id}/act", {"action": "send"}, status=403)
    signed_in.post(f"/bulk/{upload_id}/rows/2/delete", {}, status=403)
    assert page.status_int == 200 and count(dbsession, PaymentLink) == 0


def test_another_firms_upload_page_is_not_found(testapp, dbsession, signed_in):
    review(signed_in, GOOD)
    upload_id = dbsession.execute(select(BulkUpload.id)).scalar_one()
    testapp.reset()
    outsider = UserFactory(firm=FirmFactory())
    login(testapp, outsider)
    testapp.get(f"/bulk/{upload_id}", status=404)
    listing = BeautifulSoup(testapp.get("/bulk").text, "html.parser")
    assert listing.find("tr", attrs={"data-upload-id": str(upload_id)}) is None
