"""The Connect page's form (connect/page.py): what it hands the service, where the service's
errors go, how results are grouped, and the preview."""

from __future__ import annotations

import datetime as dt

from webob.multidict import MultiDict

from clientpay_connect.connect.interfaces import Client, Invoice, Matter, SearchResult
from clientpay_connect.connect.page import (
    AMOUNT_FIELD,
    OWED_FIELD,
    ConnectForm,
    amount_anchor,
    group_results,
    preview,
)

TODAY = dt.date(2025, 6, 1)


def invoice(key: str, client: str, matter: str, balance: int, currency: str = "USD") -> Invoice:
    return Invoice(
        id=key,
        number=f"N-{key}",
        client_id=client,
        matter_id=matter,
        issued_on=TODAY - dt.timedelta(days=40),
        due_on=TODAY - dt.timedelta(days=int(key)),
        currency=currency,
        total=balance,
        paid=0,
        balance=balance,
    )


def posted(*pairs: tuple[str, str]) -> ConnectForm:
    return ConnectForm.posted(MultiDict(pairs))


def test_typed_amounts_go_with_each_invoice_and_a_blank_one_stays_blank() -> None:
    form = posted(
        ("invoice", "7"),
        ("invoice", "3"),
        ("invoice", "7"),
        (AMOUNT_FIELD + "7", "10"),
        (AMOUNT_FIELD + "3", ""),
        ("emails", "a@x.test, b@x.test"),
        ("recipient_name", "Pat"),
    )
    sent = form.connect_input(sending=True)
    assert sent.invoices == [{"id": "7", "amount": "10"}, {"id": "3", "amount": ""}]
    assert sent.each_typed and sent.amount is None
    assert (sent.emails, sent.payer_name, sent.send_email) == (["a@x.test, b@x.test"], "Pat", True)
    generated = form.connect_input(sending=False)
    assert (generated.emails, generated.payer_name, generated.send_email) == ([], "", False)


def test_a_total_goes_alone_and_the_invoices_without_amounts() -> None:
    form = posted(
        ("allocation", "total"),
        ("amount", "$90"),
        ("invoice", "7"),
        (AMOUNT_FIELD + "7", "10"),
    )
    sent = form.connect_input(sending=False)
    assert sent.invoices == [{"id": "7"}]
    assert (sent.amount, sent.each_typed) == ("$90", False)
    assert posted(("allocation", "anything")).values["allocation"] == "each"


def test_the_services_errors_land_beside_what_they_concern() -> None:
    form = posted(("invoice", "7"), ("invoice", "3"))
    form.place_errors(
        [
            {"field": "invoices.1.amount", "message": "Too much."},
            {"field": "invoices.1.id", "message": "Gone."},
            {"field": "emails.2", "message": "Bad address."},
            {"field": "invoices.9.amount", "message": "Out of range."},
            {"field": "merchant_account_id", "message": "Choose one."},
        ]
    )
    assert form.invoice_error("3") == "Too much. Gone."
    assert form.errors["emails"] == "Bad address."
    summary = form.summary({"3": "N-3"}, shown={"3"})
    assert summary[0] == (amount_anchor("3"), "Invoice N-3", "Too much. Gone.")
    assert ("emails", "Email address", "Bad address.") in summary
    assert ("merchant_account_id", "Merchant account", "Choose one.") in summary
    # Nothing on the page names it: it still reaches the summary.
    assert ("connect-form", "invoices.9.amount", "Out of range.") in summary


def test_results_group_by_client_then_matter_and_keep_strays() -> None:
    result = SearchResult(
        clients=[Client("c1", "Jane", "jane@x.test")],
        matters=[Matter("m1", "2024-1", "Divorce", "c1"), Matter("m2", "", "Advice", "c1")],
        invoices=[invoice("9", "c1", "m1", 100), invoice("5", "c2", "m7", 50)],
    )
    form = posted(("invoice", "9"), (AMOUNT_FIELD + "9", "1.50"))
    groups = group_results(result, TODAY, form)
    assert [(g.name, [m.label for m in g.matters]) for g in groups] == [
        ("Jane", ["2024-1 Divorce", "Advice"]),
        ("Client c2", ["Matter m7"]),
    ]
    row = groups[0].matters[0].rows[0]
    assert (row.checked, row.amount, row.past_due) == (True, "1.50", True)
    assert groups[1].matters[0].rows[0].amount == "0.50"
    assert row.owed == "100|2025-05-23|2025-04-22|USD|N-9"


def owed_fields(*invoices: Invoice) -> list[tuple[str, str]]:
    form = ConnectForm.blank()
    rows = group_results(SearchResult(invoices=list(invoices)), TODAY, form)
    return [
        (OWED_FIELD + row.invoice.id, row.owed)
        for client in rows
        for matter in client.matters
        for row in matter.rows
    ]


def test_the_preview_allocates_a_total_oldest_due_first() -> None:
    fields = owed_fields(invoice("3", "c", "m", 500), invoice("9", "c", "m", 300))
    form = posted(("allocation", "total"), ("amount", "6"), ("invoice", "3"), ("invoice", "9"))
    shown = preview(form, MultiDict(fields), may_allocate=True)
    # Invoice 9 was due six days before invoice 3: it is filled first.
    assert [(line.number, line.amount, line.left) for line in shown.lines] == [
        ("N-3", "$3.00", "$2.00"),
        ("N-9", "$3.00", "$0.00"),
    ]
    assert shown.total == "$6.00"
    refused = preview(form, MultiDict(fields), may_allocate=False)
    assert refused.problem.startswith("Trust money is never allocated")


def test_the_preview_names_the_invoice_whose_amount_is_wrong_and_marks_one_too_large() -> None:
    fields = owed_fields(invoice("3", "c", "m", 500), invoice("9", "c", "m", 300))
    wrong = posted(("invoice", "3"), ("invoice", "9"), (AMOUNT_FIELD + "3", "abc"))
    assert preview(wrong, MultiDict(fields), True).problem == "Invoice N-3: 'abc' is not an amount."
    over = posted(
        ("invoice", "3"), ("invoice", "9"), (AMOUNT_FIELD + "3", "6"), (AMOUNT_FIELD + "9", "1")
    )
    lines = preview(over, MultiDict(fields), True).lines
    assert [line.over for line in lines] == [True, False]


def test_the_preview_refuses_mixed_currencies_and_shows_nothing_unticked() -> None:
    fields = owed_fields(invoice("3", "c", "m", 500), invoice("9", "c", "m", 300, "CAD"))
    mixed = posted(("invoice", "3"), ("invoice", "9"))
    assert "different currencies" in preview(mixed, MultiDict(fields), True).problem
    nothing = preview(ConnectForm.blank(), MultiDict(fields), True)
    assert (nothing.lines, nothing.problem) == ([], "")
