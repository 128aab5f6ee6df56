"""Validation of bulk-upload rows: the stated rules, every problem at once, and the report."""

from __future__ import annotations

import codecs
import csv
import io
from datetime import date

import pytest

from clientpay_connect.bulk.reader import RawRow, read_invoice_file
from clientpay_connect.bulk.templates_csv import (
    EXAMPLE_ROWS,
    TEMPLATE_CSV,
    TEMPLATE_HEADERS,
    TEMPLATE_TXT,
    TEMPLATES,
)
from clientpay_connect.bulk.validation import (
    FieldIssue,
    ReportLine,
    ValidatedRow,
    error_report_csv,
    flag_duplicate_invoice_numbers,
    validate_rows,
)

TODAY = date(2025, 6, 1)


def row(number: int = 2, **fields: str) -> RawRow:
    values = {"recipient_name": "Anna Lee", "amount": "100", "email": "anna@example.com"}
    return RawRow.from_fields(number, {**values, **fields})


def check(*rows: RawRow, require_email: bool = True, **options) -> list[ValidatedRow]:
    return validate_rows(rows, require_email=require_email, today=TODAY, **options)


def errors_of(raw: RawRow, **options) -> list[tuple[str, str]]:
    return [(issue.field, issue.message) for issue in check(raw, **options)[0].errors]


# --- amounts ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "minor"),
    [
        ("1234.5", 123450),
        ("1234.50", 123450),
        ("$1,234.50", 123450),
        ("1 234,50", 123450),
        ("1.234,50", 123450),
        ("12,5", 1250),
        ("1,234", 123400),
        ("USD 80", 8000),
        ("€9.99", 999),
        ("0.01", 1),
        ("100000000000", 10**13),
    ],
)
def test_amounts_read(text, minor):
    assert check(row(amount=text))[0].amount_minor == minor


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "Enter an amount."),
        ("0", "The amount must be more than zero."),
        ("$0.00", "The amount must be more than zero."),
        ("-5", "The amount must be more than zero."),
        ("1.234", "An amount in USD has at most 2 decimals."),
        ("12.345,678", "An amount in USD has at most 2 decimals."),
        ("abc", "'abc' is not an amount."),
        ("1,23,4", "'1,23,4' is not an amount"),
        ("100000000000.01", "That amount is too large."),
    ],
)
def test_amount_errors(text, message):
    result = check(row(amount=text))[0]
    assert result.amount_minor is None
    assert [(e.field, e.message) for e in result.errors] == [("amount", message)]


def test_amount_decimals_follow_the_currency():
    assert check(row(amount="1500"), currency="JPY")[0].amount_minor == 1500
    assert errors_of(row(amount="1500.5"), currency="JPY") == [
        ("amount", "An amount in JPY has at most 0 decimals.")
    ]
    assert check(row(amount="1.125"), currency="KWD")[0].amount_minor == 1125


# --- dates -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2025-02-13", date(2025, 2, 13)),
        ("2025/2/3", date(2025, 2, 3)),
        ("2/13/2025", date(2025, 2, 13)),
        ("02/03/2025", date(2025, 2, 3)),  # slashes are month first
        ("2/13/25", date(2025, 2, 13)),
        ("1/1/00", date(2000, 1, 1)),
        ("12/31/35", date(2035, 12, 31)),
        ("1/1/70", date(1970, 1, 1)),
        ("12/31/99", date(1999, 12, 31)),
        ("13.02.2025", date(2025, 2, 13)),  # dots: the part above 12 is the day
        ("02.13.2025", date(2025, 2, 13)),
        ("05.05.2025", date(2025, 5, 5)),  # the same either way
        ("13-02-2025", date(2025, 2, 13)),
        ("13-Feb-2025", date(2025, 2, 13)),
        ("13 feb 25", date(2025, 2, 13)),
        ("Feb 13, 2025", date(2025, 2, 13)),
        ("September 3 2025", date(2025, 9, 3)),
        ("Sept. 3, 2025", date(2025, 9, 3)),
        ("45000", date(2023, 3, 15)),  # Excel's serial number
        ("45000.75", date(2023, 3, 15)),
        ("25569", date(1970, 1, 1)),
        ("2/13/2025 9:30 AM", date(2025, 2, 13)),
        ("2025-02-13T00:00:00", date(2025, 2, 13)),
        ("2025-02-13 17:45", date(2025, 2, 13)),
        ("2/29/2024", date(2024, 2, 29)),
    ],
)
def test_dates_read(text, expected):
    result = check(row(invoice_date=text, due_date=text))[0]
    assert (result.invoice_date, result.due_date, result.errors) == (expected, expected, ())


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "13/02/2025",
            "13/02/2025 is not a valid month/day/year date: there is no month 13. Dates with "
            "slashes are read month first. If you meant 13 February 2025 (day/month/year), "
            "write 2/13/2025 or 2025-02-13.",
        ),
        (
            "31/04/2025",
            "31/04/2025 is not a valid month/day/year date: there is no month 31. Dates with "
            "slashes are read month first. Write dates as 2025-02-13 or 2/13/2025 "
            "(month/day/year).",
        ),
        ("2/30/2025", "2/30/2025 is not a real date: February 2025 has 28 days."),
        ("2/29/2023", "2/29/2023 is not a real date: February 2023 has 28 days."),
        ("4/31/2025", "4/31/2025 is not a real date: April 2025 has 30 days."),
        ("2025-13-01", "2025-13-01 is not a real date: there is no month 13."),
        ("0000-01-01", "0000-01-01 is not a real date."),
        (
            "02.03.2025",
            "02.03.2025 is ambiguous: it could be 2 March 2025 or 3 February 2025. Write it as "
            "2025-03-02 or 2025-02-03.",
        ),
        (
            "13.14.2025",
            "13.14.2025 is not a date. Write dates as 2025-02-13 or 2/13/2025 (month/day/year).",
        ),
        (
            "Foo 13, 2025",
            "Foo 13, 2025 is not a date: 'Foo' is not a month. Write dates as 2025-02-13 or "
            "2/13/2025 (month/day/year).",
        ),
        (
            "next friday",
            "next friday is not a date. Write dates as 2025-02-13 or 2/13/2025 (month/day/year).",
        ),
        ("2025", "2025 is not a date. Write dates as 2025-02-13 or 2/13/2025 (month/day/year)."),
        ("1/1/1969", "1/1/1969 is too far in the past: dates from 1970 on are accepted."),
        ("25568", "25568 is too far in the past: dates from 1970 on are accepted."),
        ("1/1/69", "1/1/69 is too far in the future: dates up to 2035-12-31 are accepted."),
        ("1/1/2036", "1/1/2036 is too far in the future: dates up to 2035-12-31 are accepted."),
    ],
)
def test_date_errors(text, message):
    result = check(row(due_date=text))[0]
    assert result.due_date is None
    assert [(e.field, e.message) for e in result.errors] == [("due_date", message)]


def test_the_latest_date_moves_with_today():
    raw = row(invoice_date="1/1/2036")
    assert validate_rows([raw], require_email=True, today=date(2026, 1, 1))[0].errors == ()


def test_dates_are_optional():
    result = check(row())[0]
    assert (result.invoice_date, result.due_date, result.errors) == (None, None, ())


def test_due_date_before_invoice_date():
    assert errors_of(row(invoice_date="3/1/2025", due_date="2025-02-28")) == [
        ("due_date", "The due date (2025-02-28) is before the invoice date (3/1/2025).")
    ]
    assert errors_of(row(invoice_date="3/1/2025", due_date="3/1/2025")) == []


# --- names, numbers, messages ----------------------------------------------------------------


def test_text_fields_are_tidied():
    result = check(
        row(
            invoice_number=" INV\n 7 ",
            recipient_name="Anna\u00a0 \r\nLee",
            message="Line one\r\nLine two\rLine three\n",
        )
    )[0]
    assert (result.invoice_number, result.recipient_name, result.message) == (
        "INV 7",
        "Anna Lee",
        "Line one\nLine two\nLine three",
    )


def test_recipient_name_is_required():
    assert errors_of(row(recipient_name="  ")) == [
        ("recipient_name", "Enter the recipient's name.")
    ]


def test_length_limits():
    at_limit = row(invoice_number="N" * 100, recipient_name="A" * 200, message="m" * 2000)
    assert errors_of(at_limit) == []
    over = row(invoice_number="N" * 101, recipient_name="A" * 201, message="m" * 2001)
    assert errors_of(over) == [
        ("invoice_number", "The invoice number has 101 characters; at most 100."),
        ("recipient_name", "The name has 201 characters; at most 200."),
        ("message", "The message has 2,001 characters; at most 2,000."),
    ]


def test_control_characters():
    assert errors_of(row(recipient_name="Anna\x00", message="Hi\x07")) == [
        ("recipient_name", "The name holds a control character that cannot be sent; retype it."),
        ("message", "The message holds a control character that cannot be sent; retype it."),
    ]
    assert errors_of(row(message="Tabs\tand\nlines are fine")) == []


# --- email addresses -------------------------------------------------------------------------


def test_several_addresses_in_one_cell():
    result = check(
        row(email=" Anna@Example.com; ben@example.org,  Cleo Ray <CLEO@x.net> ;; anna@example.com")
    )[0]
    assert result.emails == ("anna@example.com", "ben@example.org", "cleo@x.net")
    assert result.errors == ()


def test_each_bad_address_is_named():
    assert errors_of(row(email="anna@example.com; ben@example; @x.org")) == [
        ("email", '"ben@example" is not a valid email address.'),
        ("email", '"@x.org" is not a valid email address.'),
    ]


def test_addresses_separated_by_spaces_get_a_hint():
    assert errors_of(row(email="anna@example.com ben@example.com")) == [
        (
            "email",
            '"anna@example.com ben@example.com" is not a valid email address: separate '
            'addresses with ";" or ",".',
        )
    ]


def test_at_most_ten_addresses():
    eleven = ";".join(f"p{n}@example.com" for n in range(11))
    assert errors_of(row(email=eleven)) == [
        ("email", "11 email addresses; at most 10 can be sent one link.")
    ]


def test_an_address_is_required_for_send_all_only():
    assert errors_of(row(email=""), require_email=True) == [
        ("email", "Enter an email address: Send All emails every link.")
    ]
    assert errors_of(row(email=""), require_email=False) == []
    assert errors_of(row(email="nope"), require_email=False) == [
        ("email", '"nope" is not a valid email address.')
    ]


# --- every problem at once -------------------------------------------------------------------


def test_all_problems_of_all_rows_are_reported_together():
    results = check(
        row(2, recipient_name="", amount="-1", email="x", invoice_date="2/30/2025"),
        row(3),
        RawRow(4, ("", "", "", "Ben", "$1", "", ""), ("Ben", "$1", "234.50"), ("234.50",)),
    )
    assert [(r.row_number, r.is_valid) for r in results] == [(2, False), (3, True), (4, False)]
    assert [(e.field, e.message) for e in results[0].errors] == [
        ("recipient_name", "Enter the recipient's name."),
        ("invoice_date", "2/30/2025 is not a real date: February 2025 has 28 days."),
        ("amount", "The amount must be more than zero."),
        ("email", '"x" is not a valid email address.'),
    ]
    assert [(e.field, e.message) for e in results[2].errors] == [
        ("email", "Enter an email address: Send All emails every link."),
        (
            "row",
            'This row has more values than there are column headers (extra: "234.50"). A value '
            "with a comma or semicolon in it, such as $1,234.50, was probably not in quotes and "
            "split in two.",
        ),
    ]


# --- duplicate invoice numbers ---------------------------------------------------------------


def warnings_by_row(results: list[ValidatedRow]) -> dict[int, list[str]]:
    return {r.row_number: [w.message for w in r.warnings] for r in results if r.warnings}


def test_duplicates_within_the_file_are_warnings_naming_the_other_rows():
    results = check(
        row(2, invoice_number="INV-1"),
        row(3, invoice_number="INV-2"),
        row(4, invoice_number="inv-1 "),
        row(5, invoice_number=""),
        row(6, invoice_number=""),
        row(7, invoice_number="INV-1"),
    )
    assert all(r.is_valid for r in results)
    assert warnings_by_row(results) == {
        2: ["Invoice number INV-1 is also in rows 4 and 7."],
        4: ["Invoice number inv-1 is also in rows 2 and 7."],
        7: ["Invoice number INV-1 is also in rows 2 and 4."],
    }
    assert {w.field for r in results for w in r.warnings} == {"invoice_number"}


def test_duplicates_of_outstanding_links():
    results = check(
        row(2, invoice_number="INV-9"),
        row(3, invoice_number="INV-10"),
        row(4, invoice_number="inv-9"),
        existing_invoice_numbers={"INV-9", "inv-9 ", "INV-11"},
    )
    assert warnings_by_row(results) == {
        2: [
            "Invoice number INV-9 is also in row 4.",
            "Invoice number INV-9 already has an outstanding payment link.",
        ],
        4: [
            "Invoice number inv-9 is also in row 2.",
            "Invoice number inv-9 already has an outstanding payment link.",
        ],
    }


def test_a_number_shared_by_many_rows_names_the_first_few():
    results = check(*(row(n, invoice_number="A") for n in range(2, 2002)))
    assert results[0].warnings[0].message == (
        "Invoice number A is also in rows 3, 4, 5, 6, 7 and 1994 more."
    )
    assert results[-1].warnings[0].message == (
        "Invoice number A is also in rows 2, 3, 4, 5, 6 and 1994 more."
    )


def test_duplicates_can_be_checked_again_after_the_review_removes_a_row():
    results = check(row(2, invoice_number="A"), row(3, invoice_number="A"))
    flag_duplicate_invoice_numbers(results[:1])
    assert results[0].warnings == ()


# --- any text at all -------------------------------------------------------------------------


def test_validation_of_a_file_read_end_to_end():
    text = (
        "Inv #;Client Name;Total;E-mail;Due Date;Invoice Date\r\n"
        "A-1;Café Müller;1 234,50;cm@example.com;2/15/2025;1/15/2025\r\n"
        "\r\n"
        "A-2;;0;bad;2/30/2025;\r\n"
        "A-1;Ben;12,5;b@example.com;;\r\n"
    )
    parsed = read_invoice_file(text.encode("cp1252"))
    results = validate_rows(parsed.rows, require_email=True, today=TODAY)
    summary = [
        (r.row_number, r.invoice_number, r.recipient_name, r.amount_minor, r.emails, r.due_date)
        for r in results
    ]
    assert summary == [
        (2, "A-1", "Café Müller", 123450, ("cm@example.com",), date(2025, 2, 15)),
        (4, "A-2", "", None, (), None),
        (5, "A-1", "Ben", 1250, ("b@example.com",), None),
    ]
    assert [(e.field, e.message) for e in results[1].errors] == [
        ("recipient_name", "Enter the recipient's name."),
        ("due_date", "2/30/2025 is not a real date: February 2025 has 28 days."),
        ("amount", "The amount must be more than zero."),
        ("email", '"bad" is not a valid email address.'),
    ]
    assert warnings_by_row(results) == {
        2: ["Invoice number A-1 is also in row 5."],
        5: ["Invoice number A-1 is also in row 2."],
    }


# --- the error report ------------------------------------------------------------------------


def report_rows(data: bytes, delimiter: str = ",") -> list[list[str]]:
    assert data.startswith(codecs.BOM_UTF8)
    return list(csv.reader(io.StringIO(data[3:].decode("utf-8"), newline=""), delimiter=delimiter))


def test_report_is_the_original_rows_with_errors_and_warnings():
    text = (
        "\r\n"
        "Client,Total,Matter,Email\r\n"
        "Anna,100,M-1,anna@example.com\r\n"
        "\r\n"
        '=HYPERLINK("http://x"),-5,+SUM(A1),@me\r\n'
        "Cleo,7,M-3,cleo@example.com,extra\r\n"
    )
    parsed = read_invoice_file(text.encode())
    results = validate_rows(parsed.rows, require_email=True, today=TODAY)
    report = error_report_csv(
        parsed.headers, results, delimiter=parsed.delimiter, header_row_number=2
    )
    assert report_rows(report) == [
        [],
        ["Client", "Total", "Matter", "Email", "", "Errors", "Warnings"],
        ["Anna", "100", "M-1", "anna@example.com", "", "", ""],
        [],
        [
            '\'=HYPERLINK("http://x")',
            "'-5",
            "'+SUM(A1)",
            "'@me",
            "",
            'Total: The amount must be more than zero.; Email: "@me" is not a valid email address.',
            "",
        ],
        [
            "Cleo",
            "7",
            "M-3",
            "cleo@example.com",
            "extra",
            'This row has more values than there are column headers (extra: "extra"). A value '
            "with a comma or semicolon in it, such as $1,234.50, was probably not in quotes and "
            "split in two.",
            "",
        ],
    ]


def test_report_uses_the_files_delimiter_and_replaces_an_earlier_reports_columns():
    text = "Name\tAmount\tErrors\tInvoice\r\nAnna\t0\tAmount: old\tA\r\nBen\t5\t\tA\r\n"
    parsed = read_invoice_file(text.encode("utf-16"))
    results = validate_rows(parsed.rows, require_email=False, today=TODAY)
    report = error_report_csv(parsed.headers, results, delimiter=parsed.delimiter)
    assert report_rows(report, "\t") == [
        ["Name", "Amount", "Invoice", "Errors", "Warnings"],
        [
            "Anna",
            "0",
            "A",
            "Amount: The amount must be more than zero.",
            "Invoice: Invoice number A is also in row 3.",
        ],
        ["Ben", "5", "A", "", "Invoice: Invoice number A is also in row 2."],
    ]


def test_report_from_stored_rows_places_hand_added_rows_under_their_headers():
    headers = ("Amount", "Name", "Notes")
    lines = [
        ReportLine(
            RawRow(2, ("", "", "", "Anna", "1", "", ""), ("1", "Anna", "n")),
            (),
            (),
        ),
        ReportLine(
            RawRow.from_fields(9, {"recipient_name": "Zed", "amount": "0", "message": "typed"}),
            (FieldIssue("amount", "The amount must be more than zero."),),
            (),
        ),
    ]
    assert report_rows(error_report_csv(headers, lines)) == [
        ["Amount", "Name", "Notes", "Errors", "Warnings"],
        ["1", "Anna", "n", "", ""],
        *[[]] * 6,
        ["0", "Zed", "typed", "Amount: The amount must be more than zero.", ""],
    ]


# --- templates -------------------------------------------------------------------------------


def test_templates_have_the_headers_and_two_example_rows():
    assert TEMPLATE_HEADERS == (
        "Invoice Number",
        "Invoice Date",
        "Due Date",
        "Recipient Name",
        "Amount",
        "Email Address",
        "Custom Message",
    )
    assert report_rows(TEMPLATE_CSV) == [list(TEMPLATE_HEADERS), *map(list, EXAMPLE_ROWS)]
    assert report_rows(TEMPLATE_TXT, "\t") == [list(TEMPLATE_HEADERS), *map(list, EXAMPLE_ROWS)]
    assert TEMPLATE_TXT.count(b"\t") == 3 * 6 and b"\r\n" in TEMPLATE_TXT
    assert TEMPLATES["template.csv"] == (TEMPLATE_CSV, "text/csv; charset=utf-8")
    assert TEMPLATES["template.txt"] == (TEMPLATE_TXT, "text/plain; charset=utf-8")


@pytest.mark.parametrize("template", [TEMPLATE_CSV, TEMPLATE_TXT], ids=["csv", "txt"])
def test_the_templates_examples_are_accepted_as_they_are(template):
    parsed = read_invoice_file(template)
    assert parsed.ignored_columns == ()
    results = validate_rows(parsed.rows, require_email=True, today=TODAY)
    assert [(r.row_number, r.errors, r.warnings) for r in results] == [(2, (), ()), (3, (), ())]
    assert [(r.amount_minor, r.emails) for r in results] == [
        (125000, ("jane.doe@example.com",)),
        (240050, ("ap@acme.example", "cfo@acme.example")),
    ]
