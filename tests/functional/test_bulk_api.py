"""The Bulk Upload API through WebTest: templates, upload (and files that cannot be read),
the review's changes, Send All and Generate (once each), the downloads; checked in the
database."""

from __future__ import annotations

import csv
import io
import random
from typing import Any

import openpyxl
import pytest
import webtest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from clientpay_connect.bulk.models import BulkRow, BulkUpload
from clientpay_connect.bulk.templates_csv import TEMPLATE_CSV, TEMPLATE_HEADERS, TEMPLATE_TXT
from clientpay_connect.links.models import PaymentLink
from clientpay_connect.links.services import NewLink, create_link, find_by_token
from clientpay_connect.mail.models import KIND_LINK, OutboxMessage
from tests.conftest import bearer
from tests.factories import FirmFactory, MerchantAccountFactory, UserFactory

API = "/api/v1/bulk-uploads"


@pytest.fixture
def account(staff: Any) -> Any:
    return MerchantAccountFactory(firm=staff.firm, name="Operating")


def csv_bytes(rows: list[list[str]], headers: tuple[str, ...] = TEMPLATE_HEADERS) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(headers)
    writer.writerows(rows)
    return out.getvalue().encode("utf-8")


def invoice(
    number: str = "",
    name: str = "Jane Doe",
    amount: str = "100",
    email: str = "jane@example.com",
    *,
    invoice_date: str = "",
    due_date: str = "",
    message: str = "",
) -> list[str]:
    """A row in the template's column order."""
    return [number, invoice_date, due_date, name, amount, email, message]


def post_file(
    testapp: webtest.TestApp,
    auth: dict[str, str],
    data: bytes,
    *,
    name: str = "invoices.csv",
    status: int = 201,
    **fields: str,
) -> Any:
    return testapp.post(
        API, fields, upload_files=[("file", name, data)], headers=auth, status=status
    ).json


def count(dbsession: Session, model: Any, *where: Any) -> int:
    query = select(func.count()).select_from(model)
    if where:
        query = query.where(*where)
    return int(dbsession.execute(query).scalar_one())


def make_link(dbsession: Session, app: Any, account: Any, **fields: Any) -> PaymentLink:
    link, _token = create_link(
        dbsession,
        app.registry["clientpay.encryptor"],
        None,
        NewLink(merchant_account=account, **{"amount_minor": 5_000, **fields}),
    )
    dbsession.flush()
    return link


def bulk_links(dbsession: Session) -> list[PaymentLink]:
    dbsession.expire_all()
    return list(
        dbsession.execute(
            select(PaymentLink).where(PaymentLink.source == "bulk_upload").order_by(PaymentLink.id)
        ).scalars()
    )


def issues(row: dict[str, Any], kind: str = "errors") -> list[tuple[str, str]]:
    return [(issue["field"], issue["message"]) for issue in row[kind]]


# --- templates --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "content", "content_type"),
    [("template.csv", TEMPLATE_CSV, "text/csv"), ("template.txt", TEMPLATE_TXT, "text/plain")],
)
def test_templates_download_as_files(testapp, staff_auth, name, content, content_type):
    response = testapp.get(f"{API}/{name}", headers=staff_auth, status=200)
    assert response.body == content
    assert response.content_type == content_type
    assert response.headers["Content-Disposition"] == f'attachment; filename="{name}"'


def test_templates_need_a_signed_in_user(testapp):
    assert testapp.get(f"{API}/template.csv", status=401).json["error"] == "unauthenticated"


def test_the_template_as_downloaded_uploads_cleanly(testapp, staff_auth, account):
    body = post_file(testapp, staff_auth, TEMPLATE_CSV, name="template.csv")
    assert [row["invoice_number"] for row in body["rows"]] == ["INV-1001", "INV-1002"]
    assert body["error_count"] == 0
    assert body["rows"][1]["amount"] == "2400.50"
    assert body["rows"][1]["email"] == "ap@acme.example; cfo@acme.example"


# --- upload -----------------------------------------------------------------------------------


def test_a_small_file_is_read_into_exactly_these_rows_and_problems(
    testapp, dbsession, app, staff_auth, account
):
    make_link(dbsession, app, account, invoice_number="OLD-9")
    # Invoice number, invoice date, due date, name, amount, email, message, and a column
    # the template does not have.
    rows = [
        ["INV-1", "2025-01-15", "2025-02-14", "Jane Doe", "$1,250.00", "jane@example.com"],
        ["INV-2", "2025-03-01", "2025-02-01", "Acme LLC", "abc", "ap@acme.example; bad@"],
        ["", "", "", "", "100", ""],
        ["INV-1", "1/20/2025", "2/19/2025", "Bob Roe", "20", "bob@example.com"],
        ["OLD-9", "", "", "Carla", "12.5", ""],
    ]
    messages = ["Thanks", "", "", "", ""]
    matters = ["M-1", "M-2", "M-3", "M-4", "M-5"]
    data = csv_bytes(
        [[*r, m, matter] for r, m, matter in zip(rows, messages, matters, strict=True)],
        (*TEMPLATE_HEADERS, "Matter"),
    )
    body = post_file(testapp, staff_auth, data)

    assert body["status"] == "review"
    assert body["ignored_columns"] == ["Matter"]
    assert [row["row"] for row in body["rows"]] == [2, 3, 4, 5, 6]
    first, second, third, fourth, fifth = body["rows"]
    assert {key: first[key] for key in first if key not in ("typed", "warnings")} == {
        "row": 2,
        "invoice_number": "INV-1",
        "invoice_date": "2025-01-15",
        "due_date": "2025-02-14",
        "recipient_name": "Jane Doe",
        "amount": "1250.00",
        "email": "jane@example.com",
        "message": "Thanks",
        "errors": [],
        "added_by_hand": False,
    }
    assert first["typed"]["amount"] == "$1,250.00"
    assert issues(second) == [
        ("due_date", "The due date (2025-02-01) is before the invoice date (2025-03-01)."),
        ("amount", "'abc' is not an amount."),
        ("email", '"bad@" is not a valid email address.'),
    ]
    assert second["amount"] is None and second["typed"]["amount"] == "abc"
    assert issues(third) == [("recipient_name", "Enter the recipient's name.")]
    assert fourth["invoice_date"] == "2025-01-20" and fourth["errors"] == []
    # Duplicates are warnings: within the file, and against an outstanding link.
    assert issues(first, "warnings") == [
        ("invoice_number", "Invoice number INV-1 is also in row 5.")
    ]
    assert issues(fourth, "warnings") == [
        ("invoice_number", "Invoice number INV-1 is also in row 2.")
    ]
    assert issues(fifth, "warnings") == [
        ("invoice_number", "Invoice number OLD-9 already has an outstanding payment link.")
    ]
    assert fifth["errors"] == []  # no address is fine until Send All
    assert body["error_count"] == 4
    assert body["warning_count"] == 3
    assert body["counts"] == {
        "rows": 5,
        "rows_with_errors": 2,
        "rows_with_warnings": 3,
        "rows_without_email": 2,  # row 3 has one good address beside the bad one
        "links": 0,
    }

    upload = dbsession.get(BulkUpload, body["id"])
    assert upload.firm_id == account.firm_id and upload.merchant_account_id == account.id
    assert upload.filename == "invoices.csv"
    assert count(dbsession, BulkRow, BulkRow.upload_id == upload.id) == 5
    assert count(dbsession, PaymentLink, PaymentLink.source == "bulk_upload") == 0


@pytest.mark.parametrize(
    ("data", "says"),
    [
        (b"", "The file is empty."),
        (b"PK\x03\x04\x14\x00\x06\x00" + b"\x00" * 200, "a zip archive (perhaps a workbook)"),
        (random.Random(1).randbytes(4000), "not a text file"),
        (b"Hours;Matter;Rate\n3;M-1;200\n", "No column headers were recognised"),
        (b"Recipient Name,Email\nAnn,ann@example.com\n", "Amount column is missing"),
        (csv_bytes([]), "no invoice rows"),
    ],
    ids=["empty", "xlsx-renamed", "binary", "no-headers", "no-amount-column", "headers-only"],
)
def test_an_unreadable_file_gets_one_message_and_nothing_is_kept(
    testapp, dbsession, staff_auth, account, data, says
):
    body = post_file(testapp, staff_auth, data, status=422)
    assert body["error"] == "unreadable_file"
    assert says.lower() in body["message"].lower()
    assert body["errors"] == [{"field": "file", "message": body["message"]}]
    assert count(dbsession, BulkUpload) == 0
    assert count(dbsession, BulkRow) == 0


def test_a_missing_file_and_account_are_both_named(testapp, staff_auth, staff, account):
    MerchantAccountFactory(firm=staff.firm, name="Trust", kind="trust")
    body = testapp.post(
        API,
        {"merchant_account_id": ""},
        content_type="multipart/form-data",
        headers=staff_auth,
        status=422,
    ).json
    assert [e["field"] for e in body["errors"]] == ["merchant_account_id", "file"]
    assert body["errors"][0]["message"] == "Choose a merchant account."


def test_with_one_account_it_is_chosen_for_you(testapp, staff_auth, account):
    body = post_file(testapp, staff_auth, csv_bytes([invoice("A-1")]))
    assert body["merchant_account_id"] == account.id


def test_another_firms_account_cannot_be_chosen(testapp, staff_auth, account):
    elsewhere = MerchantAccountFactory(firm=FirmFactory())
    body = post_file(
        testapp,
        staff_auth,
        csv_bytes([invoice("A-1")]),
        status=422,
        merchant_account_id=str(elsewhere.id),
    )
    assert body["errors"] == [
        {
            "field": "merchant_account_id",
            "message": "Choose one of your firm's active merchant accounts.",
        }
    ]


def test_the_status_counts_what_is_under_review(testapp, staff_auth, account):
    created = post_file(testapp, staff_auth, csv_bytes([invoice("A-1"), invoice("A-2", amount="")]))
    body = testapp.get(f"{API}/{created['id']}", headers=staff_auth, status=200).json
    assert body["status"] == "review" and body["action"] is None
    assert body["counts"]["rows"] == 2 and body["counts"]["rows_with_errors"] == 1
    assert body["total_amount"] == "100.00"
    assert body["progress"] == {"done": 0, "total": 2}


def test_rows_are_listed_in_pages_by_cursor(testapp, staff_auth, account):
    created = post_file(testapp, staff_auth, csv_bytes([invoice(f"A-{i}") for i in range(5)]))
    seen, cursor = [], None
    while True:
        params = {"limit": "2", **({"cursor": cursor} if cursor else {})}
        page = testapp.get(f"{API}/{created['id']}/rows", params, headers=staff_auth).json
        assert page["total"] == 5
        seen += [row["invoice_number"] for row in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [f"A-{i}" for i in range(5)]


# --- another firm's upload ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", ""),
        ("get", "/rows"),
        ("get", "/report.csv"),
        ("get", "/links.csv"),
        ("get", "/links.xlsx"),
        ("delete", "/rows/2"),
        ("post_json", "/rows"),
        ("post_json", "/send"),
        ("post_json", "/generate"),
    ],
)
def test_another_firms_upload_is_not_found(testapp, dbsession, staff_auth, account, method, path):
    created = post_file(testapp, staff_auth, csv_bytes([invoice("A-1")]))
    outsider = bearer(dbsession, UserFactory(firm=FirmFactory()))
    call = getattr(testapp, method)
    args = ({},) if method == "post_json" else ()
    response = call(f"{API}/{created['id']}{path}", *args, headers=outsider, status=404)
    assert response.json["error"] == "not_found"
    assert count(dbsession, PaymentLink, PaymentLink.source == "bulk_upload") == 0
    assert count(dbsession, BulkRow, BulkRow.deleted.is_(True)) == 0


def test_an_id_beyond_any_upload_is_not_found(testapp, staff_auth):
    testapp.get(f"{API}/99999999999", headers=staff_auth, status=404)


# --- the review's changes -------------------------------------------------------------------------


def test_deleting_a_duplicate_clears_the_other_rows_warning(testapp, staff_auth, account):
    created = post_file(testapp, staff_auth, csv_bytes([invoice("A-1"), invoice("A-1", "Bob")]))
    upload = f"{API}/{created['id']}"
    status = testapp.delete(f"{upload}/rows/3", headers=staff_auth, status=200).json
    assert status["counts"]["rows"] == 1 and status["warning_count"] == 0
    rows = testapp.get(f"{upload}/rows", headers=staff_auth).json["items"]
    assert [(row["row"], row["warnings"]) for row in rows] == [(2, [])]
    # Gone is gone: a second delete finds nothing.
    testapp.delete(f"{upload}/rows/3", headers=staff_auth, status=404)


def test_an_added_row_is_checked_like_a_row_of_the_file(testapp, staff_auth, account):
    created = post_file(testapp, staff_auth, csv_bytes([invoice("A-1")]))
    added = testapp.post_json(
        f"{API}/{created['id']}/rows",
        {
            "invoice_number": "a-1",
            "recipient_name": "Dana",
            "amount": "1.005",
            "email": "dana@example.com",
            "invoice_date": "2025-05-02",
            "due_date": "2025-05-01",
        },
        headers=staff_auth,
        status=201,
    ).json
    assert added["row"] == 3 and added["added_by_hand"] is True
    assert issues(added) == [
        ("due_date", "The due date (2025-05-01) is before the invoice date (2025-05-02)."),
        ("amount", "An amount in USD has at most 2 decimals."),
    ]
    # Invoice numbers are compared without regard to case.
    assert issues(added, "warnings") == [("invoice_number", "Invoice number a-1 is also in row 2.")]
    assert added["upload"]["counts"] == {
        "rows": 2,
        "rows_with_errors": 1,
        "rows_with_warnings": 2,
        "rows_without_email": 0,
        "links": 0,
    }
    # Kept: the next request finds it.
    listed = testapp.get(f"{API}/{created['id']}/rows", headers=staff_auth).json["items"]
    assert [(row["row"], row["invoice_number"]) for row in listed] == [(2, "A-1"), (3, "a-1")]


def test_a_row_is_fixed_by_adding_its_replacement(testapp, staff_auth, account):
    created = post_file(
        testapp, staff_auth, csv_bytes([invoice("A-1"), invoice("A-2", amount="x")])
    )
    upload = f"{API}/{created['id']}"
    fixed = testapp.post_json(
        f"{upload}/rows",
        {"invoice_number": "A-2", "recipient_name": "Jane Doe", "amount": "75", "replaces": 3},
        headers=staff_auth,
        status=201,
    ).json
    assert fixed["row"] == 4 and fixed["errors"] == []
    rows = testapp.get(f"{upload}/rows", headers=staff_auth).json["items"]
    assert [(row["row"], row["amount"]) for row in rows] == [(2, "100.00"), (4, "75.00")]
    missing = testapp.post_json(
        f"{upload}/rows",
        {"recipient_name": "X", "amount": "1", "replaces": 3},
        headers=staff_auth,
        status=422,
    ).json
    assert missing["errors"] == [{"field": "replaces", "message": "There is no row 3 to replace."}]


# --- Send All ---------------------------------------------------------------------------------


def test_send_all_is_refused_while_any_row_has_errors(testapp, dbsession, staff_auth, account):
    created = post_file(testapp, staff_auth, csv_bytes([invoice("A-1"), invoice("A-2", "", "x")]))
    body = testapp.post_json(f"{API}/{created['id']}/send", {}, headers=staff_auth, status=409).json
    assert body["error"] == "rows_have_errors"
    assert body["errors"] == [
        {"field": "rows.3.recipient_name", "message": "Enter the recipient's name."},
        {"field": "rows.3.amount", "message": "'x' is not an amount."},
    ]
    assert count(dbsession, PaymentLink, PaymentLink.source == "bulk_upload") == 0
    assert dbsession.get(BulkUpload, created["id"]).action is None


def test_send_all_needs_an_address_on_every_row(testapp, dbsession, staff_auth, account):
    created = post_file(testapp, staff_auth, csv_bytes([invoice("A-1"), invoice("A-2", email="")]))
    body = testapp.post_json(f"{API}/{created['id']}/send", {}, headers=staff_auth, status=409).json
    assert body["error"] == "emails_missing"
    assert [e["field"] for e in body["errors"]] == ["rows.3.email"]
    # Generate needs none.
    testapp.post_json(f"{API}/{created['id']}/generate", {}, headers=staff_auth, status=201)


def test_an_upload_with_no_rows_left_makes_nothing(testapp, staff_auth, account):
    created = post_file(testapp, staff_auth, csv_bytes([invoice("A-1")]))
    testapp.delete(f"{API}/{created['id']}/rows/2", headers=staff_auth, status=200)
    body = testapp.post_json(f"{API}/{created['id']}/send", {}, headers=staff_auth, status=409).json
    assert body["error"] == "no_rows"


def test_duplicates_must_be_confirmed(testapp, dbsession, staff_auth, account):
    created = post_file(testapp, staff_auth, csv_bytes([invoice("A-1"), invoice("A-1", "Bob")]))
    send = f"{API}/{created['id']}/send"
    body = testapp.post_json(send, {}, headers=staff_auth, status=409).json
    assert body["error"] == "warnings_need_confirmation"
    assert [e["field"] for e in body["errors"]] == [
        "rows.2.invoice_number",
        "rows.3.invoice_number",
    ]
    testapp.post_json(send, {"confirm_warnings": True}, headers=staff_auth, status=201)
    assert count(dbsession, PaymentLink, PaymentLink.source == "bulk_upload") == 2


def test_a_link_made_since_the_upload_counts_as_a_duplicate(
    testapp, dbsession, app, staff_auth, account
):
    created = post_file(testapp, staff_auth, csv_bytes([invoice("A-1")]))
    make_link(dbsession, app, account, invoice_number="A-1")
    body = testapp.post_json(f"{API}/{created['id']}/send", {}, headers=staff_auth, status=409).json
    assert body["error"] == "warnings_need_confirmation"


def test_the_duplicate_check_looks_at_the_firms_own_links_only(
    testapp, dbsession, app, staff_auth, account
):
    """Two firms bill the same invoice numbers: one's outstanding links are nothing to the
    other's uploads, on the review and at Send All."""
    theirs = MerchantAccountFactory(firm=FirmFactory())
    their_auth = bearer(dbsession, UserFactory(firm=theirs.firm))
    make_link(dbsession, app, theirs, invoice_number="SHARED-1")
    make_link(dbsession, app, account, invoice_number="SHARED-2")

    ours = post_file(testapp, staff_auth, csv_bytes([invoice("SHARED-1"), invoice("SHARED-2")]))
    theirs_upload = post_file(testapp, their_auth, csv_bytes([invoice("SHARED-2")]))

    def warned(body: dict[str, Any]) -> list[str]:
        return [row["invoice_number"] for row in body["rows"] if row["warnings"]]

    assert (warned(ours), ours["warning_count"]) == (["SHARED-2"], 1)
    assert (warned(theirs_upload), theirs_upload["warning_count"]) == ([], 0)
    # Their Send All needs no confirmation: our SHARED-2 is not theirs.
    send = f"{API}/{theirs_upload['id']}/send"
    testapp.post_json(send, {}, headers=their_auth, status=201)
    made = dbsession.execute(
        select(PaymentLink.firm_id).where(PaymentLink.invoice_number == "SHARED-2")
    ).scalars()
    assert sorted(made) == sorted([account.firm_id, theirs.firm_id])
    # Ours still does: SHARED-2 has our own outstanding link.
    body = testapp.post_json(f"{API}/{ours['id']}/send", {}, headers=staff_auth, status=409).json
    assert body["error"] == "warnings_need_confirmation"
    assert [e["field"] for e in body["errors"]] == ["rows.3.invoice_number"]


def test_send_all_makes_the_links_and_queues_an_email_for_each(
    testapp, dbsession, staff, staff_auth, account
):
    rows = [
        invoice("A-1", "Jane Doe", "$1,250.00", "jane@example.com", due_date="2025-07-01"),
        invoice("A-2", "Acme LLC", "80", "ap@acme.example; cfo@acme.example", message="Fees"),
    ]
    created = post_file(testapp, staff_auth, csv_bytes(rows))
    body = testapp.post_json(f"{API}/{created['id']}/send", {}, headers=staff_auth, status=201).json

    assert body["status"] == "sent" and body["action"] == "send"
    assert body["progress"] == {"done": 2, "total": 2}
    links = bulk_links(dbsession)
    assert [(link.invoice_number, link.amount_minor, link.emails) for link in links] == [
        ("A-1", 125_000, ["jane@example.com"]),
        ("A-2", 8_000, ["ap@acme.example", "cfo@acme.example"]),
    ]
    assert {(link.firm_id, link.merchant_account_id, link.status) for link in links} == {
        (staff.firm_id, account.id, "outstanding")
    }
    assert {link.created_by_user_id for link in links} == {staff.id}
    assert links[0].due_date.isoformat() == "2025-07-01"
    assert links[1].message == "Fees"
    assert links[0].message.startswith("Thank you")  # the firm's default, fixed now
    assert all(link.expires_at is not None for link in links)
    assert [link["id"] for link in body["links"]] == [link.id for link in links]
    assert [link["row"] for link in body["links"]] == [2, 3]
    for entry in body["links"]:
        found = find_by_token(dbsession, entry["url"].rsplit("/pay/", 1)[1])
        assert found is not None and found.id == entry["id"]

    outbox = list(
        dbsession.execute(
            select(OutboxMessage).where(OutboxMessage.link_id.in_([link.id for link in links]))
        ).scalars()
    )
    assert sorted((m.link_id, m.kind, tuple(m.recipients)) for m in outbox) == [
        (links[0].id, KIND_LINK, ("jane@example.com",)),
        (links[1].id, KIND_LINK, ("ap@acme.example", "cfo@acme.example")),
    ]
    rows_linked = dbsession.execute(
        select(BulkRow.row_number, PaymentLink.id)
        .join(PaymentLink, PaymentLink.bulk_row_id == BulkRow.id)
        .where(BulkRow.upload_id == created["id"])
    ).all()
    assert sorted(rows_linked) == [(2, links[0].id), (3, links[1].id)]


def test_the_same_send_twice_makes_one_set_of_links(testapp, dbsession, staff_auth, account):
    created = post_file(testapp, staff_auth, csv_bytes([invoice("A-1"), invoice("A-2")]))
    send = f"{API}/{created['id']}/send"
    first = testapp.post_json(send, {}, headers=staff_auth, status=201).json
    again = testapp.post_json(send, {}, headers=staff_auth, status=200).json
    assert again["links"] == first["links"]
    assert count(dbsession, PaymentLink, PaymentLink.source == "bulk_upload") == 2
    assert count(dbsession, OutboxMessage) == 2


def test_after_send_all_the_other_action_and_changes_are_refused(
    testapp, dbsession, staff_auth, account
):
    created = post_file(testapp, staff_auth, csv_bytes([invoice("A-1")]))
    upload = f"{API}/{created['id']}"
    testapp.post_json(f"{upload}/send", {}, headers=staff_auth, status=201)
    other = testapp.post_json(f"{upload}/generate", {}, headers=staff_auth, status=409).json
    assert (other["error"], other["action"]) == ("other_action_taken", "send")
    closed = testapp.delete(f"{upload}/rows/2", headers=staff_auth, status=409).json
    assert closed["error"] == "upload_closed"
    added = testapp.post_json(
        f"{upload}/rows", {"recipient_name": "X", "amount": "1"}, headers=staff_auth, status=409
    ).json
    assert added["error"] == "upload_closed"
    assert count(dbsession, PaymentLink, PaymentLink.source == "bulk_upload") == 1


def test_a_template_column_is_taken_over_a_synonym_and_the_synonym_reported(
    testapp, dbsession, staff_auth, account
):
    headers = (*TEMPLATE_HEADERS, "Notes")
    data = csv_bytes([[*invoice("A-1", message="Thanks"), "call first"]], headers)
    body = post_file(testapp, staff_auth, data)
    assert body["error_count"] == 0
    assert [row["message"] for row in body["rows"]] == ["Thanks"]
    assert body["ignored_columns"] == ["Notes"]
    assert body["set_aside_columns"] == [
        {"name": "Notes", "field": "message", "used": "Custom Message"}
    ]
    (row,) = dbsession.execute(select(BulkRow)).scalars().all()
    assert row.message == "Thanks"
    status = testapp.get(f"{API}/{body['id']}", headers=staff_auth).json
    assert status["set_aside_columns"] == body["set_aside_columns"]
    # Send All makes the link with the template column's message.
    testapp.post_json(f"{API}/{body['id']}/send", {}, headers=staff_auth, status=201)
    assert [link.message for link in bulk_links(dbsession)] == ["Thanks"]


def test_an_inactive_account_stops_the_links(testapp, dbsession, staff_auth, account):
    created = post_file(testapp, staff_auth, csv_bytes([invoice("A-1")]))
    account.active = False
    dbsession.flush()
    body = testapp.post_json(f"{API}/{created['id']}/generate", {}, headers=staff_auth, status=409)
    assert body.json["error"] == "merchant_account_inactive"


# --- Generate and the downloads ---------------------------------------------------------------


FORMULAS = [
    invoice('=HYPERLINK("http://evil")', "@SUM(A1)", "10", "x@example.com"),
    invoice("+1-2", "-Minus", "20", "y@example.com"),
    invoice("INV-3", "Plain Name", "30", ""),
]


def generated(testapp: webtest.TestApp, auth: dict[str, str], rows: list[list[str]]) -> Any:
    created = post_file(testapp, auth, csv_bytes(rows))
    return testapp.post_json(f"{API}/{created['id']}/generate", {}, headers=auth, status=201).json


def test_generate_makes_links_and_emails_nobody(testapp, dbsession, staff_auth, account):
    body = generated(testapp, staff_auth, FORMULAS)
    assert body["status"] == "generated"
    links = bulk_links(dbsession)
    assert len(links) == 3 and {link.email_status for link in links} == {"not_sent"}
    assert count(dbsession, OutboxMessage) == 0
    assert [entry["url"] for entry in body["links"]] == [
        entry["url"] for entry in body["links"] if entry["url"].startswith("http://localhost/pay/")
    ]


def test_links_csv_lists_every_link_with_formulas_neutralized(testapp, staff_auth, account):
    body = generated(testapp, staff_auth, FORMULAS)
    response = testapp.get(f"{API}/{body['id']}/links.csv", headers=staff_auth, status=200)
    assert response.content_type == "text/csv"
    assert response.headers["Content-Disposition"] == 'attachment; filename="invoices-links.csv"'
    assert response.body.startswith(b"\xef\xbb\xbf")
    lines = list(csv.reader(io.StringIO(response.body.decode("utf-8-sig"))))
    urls = [entry["url"] for entry in body["links"]]
    assert lines == [
        ["Row", "Invoice Number", "Recipient Name", "Amount", "Email Address", "Payment Link"],
        ["2", '\'=HYPERLINK("http://evil")', "'@SUM(A1)", "10.00", "x@example.com", urls[0]],
        ["3", "'+1-2", "'-Minus", "20.00", "y@example.com", urls[1]],
        ["4", "INV-3", "Plain Name", "30.00", "", urls[2]],
    ]


def test_links_xlsx_is_a_real_workbook_with_the_same_rows(testapp, staff_auth, account):
    body = generated(testapp, staff_auth, FORMULAS)
    response = testapp.get(f"{API}/{body['id']}/links.xlsx", headers=staff_auth, status=200)
    assert response.content_type.endswith("spreadsheetml.sheet")
    sheet = openpyxl.load_workbook(io.BytesIO(response.body)).active
    values = [[cell.value for cell in row] for row in sheet.iter_rows()]
    assert values[0] == [
        "Row",
        "Invoice Number",
        "Recipient Name",
        "Amount",
        "Email Address",
        "Payment Link",
    ]
    assert values[1][:5] == [2, '\'=HYPERLINK("http://evil")', "'@SUM(A1)", 10, "x@example.com"]
    assert values[2][1:3] == ["'+1-2", "'-Minus"]
    # No cell is stored as a formula.
    assert all(cell.data_type != "f" for row in sheet.iter_rows() for cell in row)
    assert [row[5] for row in values[1:]] == [entry["url"] for entry in body["links"]]
    assert sheet.cell(row=2, column=4).number_format == "#,##0.00"


def test_links_downloads_wait_for_the_links(testapp, staff_auth, account):
    created = post_file(testapp, staff_auth, csv_bytes([invoice("A-1")]))
    for name in ("links.csv", "links.xlsx"):
        body = testapp.get(f"{API}/{created['id']}/{name}", headers=staff_auth, status=409).json
        assert body["error"] == "no_links"


def test_generate_twice_answers_with_the_same_links(testapp, dbsession, staff_auth, account):
    body = generated(testapp, staff_auth, [invoice("A-1")])
    again = testapp.post_json(f"{API}/{body['id']}/generate", {}, headers=staff_auth, status=200)
    assert again.json["links"] == body["links"]
    sent = testapp.post_json(f"{API}/{body['id']}/send", {}, headers=staff_auth, status=409)
    assert sent.json["error"] == "other_action_taken"
    assert count(dbsession, PaymentLink, PaymentLink.source == "bulk_upload") == 1


# --- the error report -------------------------------------------------------------------------


def test_the_report_is_the_rows_as_uploaded_with_their_problems(testapp, staff_auth, account):
    data = "\n".join(
        [
            "Recipient Name;Amount;Email Address;Notes",
            "Ann;12,50;ann@example.com;=1+1",
            "Bob;abc;bob@example.com;second",
            "Cy;5;cy@example.com;third",
        ]
    ).encode()
    created = post_file(testapp, staff_auth, data, name="march.txt")
    upload = f"{API}/{created['id']}"
    testapp.delete(f"{upload}/rows/4", headers=staff_auth, status=200)
    testapp.post_json(
        f"{upload}/rows", {"recipient_name": "Dee", "amount": "-3"}, headers=staff_auth, status=201
    )
    response = testapp.get(f"{upload}/report.csv", headers=staff_auth, status=200)
    assert response.headers["Content-Disposition"] == 'attachment; filename="march-report.csv"'
    lines = list(csv.reader(io.StringIO(response.body.decode("utf-8-sig")), delimiter=";"))
    assert lines == [
        ["Recipient Name", "Amount", "Email Address", "Notes", "Errors", "Warnings"],
        ["Ann", "12,50", "ann@example.com", "'=1+1", "", ""],
        ["Bob", "abc", "bob@example.com", "second", "Amount: 'abc' is not an amount.", ""],
        [],
        ["Dee", "'-3", "", "", "Amount: The amount must be more than zero.", ""],
    ]
