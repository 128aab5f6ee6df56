"""The reader against a corpus of ugly files, each made here as the bytes a program writes."""

from __future__ import annotations

import codecs
import random

import pytest

from clientpay_connect.bulk.reader import (
    ParsedFile,
    RawRow,
    SetAside,
    UnreadableFile,
    column_letter,
    header_key,
    read_invoice_file,
)

TEMPLATE_HEADER = (
    "Invoice Number,Invoice Date,Due Date,Recipient Name,Amount,Email Address,Custom Message"
)
SAVE_AS_HINT = (
    'In Excel or Google Sheets, save or download the sheet as "CSV" (or Excel\'s "Unicode '
    'Text") and upload that file.'
)


def accepted(parsed: ParsedFile) -> list[tuple[int, dict[str, str]]]:
    """Each row as (row number, the fields that have a value): what the assertions compare."""
    return [(row.row_number, {k: v for k, v in row.fields.items() if v}) for row in parsed.rows]


def unreadable(data: bytes, **limits: int) -> str:
    with pytest.raises(UnreadableFile) as caught:
        read_invoice_file(data, **limits)
    return caught.value.message


# --- encodings -------------------------------------------------------------------------------


def test_utf8_with_bom_as_excel_saves_csv_utf8():
    row = "INV-1,2025-01-15,2025-02-14,José Núñez,1250.00,jn@example.com,Gracias"
    text = f"{TEMPLATE_HEADER}\r\n{row}\r\n"
    parsed = read_invoice_file(codecs.BOM_UTF8 + text.encode("utf-8"))
    assert parsed.encoding == "utf-8-sig"
    assert parsed.encoding_label == "UTF-8 (with BOM)"
    assert parsed.headers[0] == "Invoice Number"  # the mark is not part of the first header
    assert accepted(parsed) == [
        (
            2,
            {
                "invoice_number": "INV-1",
                "invoice_date": "2025-01-15",
                "due_date": "2025-02-14",
                "recipient_name": "José Núñez",
                "amount": "1250.00",
                "email": "jn@example.com",
                "message": "Gracias",
            },
        )
    ]


def test_utf16_le_with_bom_and_tabs_as_excel_saves_unicode_text():
    # Excel quotes a value holding a tab, a quote or a line break, and doubles inner quotes.
    text = (
        "Recipient Name\tAmount\tCustom Message\r\n"
        'Zoë Ångström\t$1,234.50\t"Line one\r\nline ""two"""\r\n'
        "李小龍\t99\t\r\n"
    )
    parsed = read_invoice_file(codecs.BOM_UTF16_LE + text.encode("utf-16-le"))
    assert (parsed.encoding, parsed.delimiter) == ("utf-16", "\t")
    assert accepted(parsed) == [
        (
            2,
            {
                "recipient_name": "Zoë Ångström",
                "amount": "$1,234.50",
                "message": 'Line one\r\nline "two"',
            },
        ),
        (3, {"recipient_name": "李小龍", "amount": "99"}),
    ]


def test_utf16_be_with_bom():
    text = "Name,Amount\nAnna,10\n"
    parsed = read_invoice_file(codecs.BOM_UTF16_BE + text.encode("utf-16-be"))
    assert parsed.encoding == "utf-16"
    assert accepted(parsed) == [(2, {"recipient_name": "Anna", "amount": "10"})]


@pytest.mark.parametrize("codec", ["utf-16-le", "utf-16-be"])
def test_utf16_without_bom_is_recognised_by_its_nul_bytes(codec):
    text = "Name\tAmount\r\nAnna\t10\r\n"
    parsed = read_invoice_file(text.encode(codec))
    assert parsed.encoding == codec
    assert parsed.encoding_label == codec.replace("utf", "UTF").replace("-le", " LE").replace(
        "-be", " BE"
    )
    assert accepted(parsed) == [(2, {"recipient_name": "Anna", "amount": "10"})]


def test_windows_1252_when_the_file_is_not_utf8():
    # Each of é, ü, €, the curly quotes and the dash is one byte in Windows-1252.
    text = (
        "Recipient Name;Amount;Custom Message\r\nCafé Müller;€1.234,50;“Merci” \u2013 à bientôt\r\n"
    )
    parsed = read_invoice_file(text.encode("cp1252"))
    assert (parsed.encoding, parsed.encoding_label) == ("cp1252", "Windows-1252")
    assert accepted(parsed) == [
        (
            2,
            {
                "recipient_name": "Café Müller",
                "amount": "€1.234,50",
                "message": "“Merci” \u2013 à bientôt",
            },
        )
    ]


def test_plain_utf8_is_preferred_to_windows_1252():
    parsed = read_invoice_file("Name,Amount\nCafé,5\n".encode())
    assert parsed.encoding == "utf-8"
    assert accepted(parsed) == [(2, {"recipient_name": "Café", "amount": "5"})]


def test_bytes_that_are_no_known_encoding_are_refused():
    # 0x81 is undefined in Windows-1252 and cannot stand alone in UTF-8.
    assert unreadable(b"Name,Amount\nAnna,\x81\n") == (
        "The file's characters could not be read: it is not UTF-8, UTF-16 or Windows-1252 "
        f"text. {SAVE_AS_HINT}"
    )


def test_damaged_utf16_is_refused():
    # An odd number of bytes after the mark: the last character is cut in half.
    data = codecs.BOM_UTF16_LE + "Name,Amount\r\nAnna,5\r\n".encode("utf-16-le") + b"A"
    assert unreadable(data) == (
        "The file could not be read as UTF-16 (with BOM) text: it is damaged or not text. "
        + SAVE_AS_HINT
    )


# --- delimiters, quoting, line endings -------------------------------------------------------


def test_semicolons_with_decimal_commas_as_european_excel_writes():
    text = (
        "Recipient Name;Amount;Email Address\r\n"
        "Anna;1 234,50;a@example.com\r\n"
        "Ben;12,5;b@example.com\r\n"
    )
    parsed = read_invoice_file(text.encode())
    assert (parsed.delimiter, parsed.delimiter_name) == (";", "semicolon")
    assert accepted(parsed) == [
        (2, {"recipient_name": "Anna", "amount": "1 234,50", "email": "a@example.com"}),
        (3, {"recipient_name": "Ben", "amount": "12,5", "email": "b@example.com"}),
    ]


def test_the_delimiter_is_the_one_that_makes_the_headers_recognisable():
    # The header itself holds a comma, and the values hold commas and tabs of their own.
    text = "Name;Amount (USD, incl. tax);Notes\nSmith, Jane;5;a,b\tc\n"
    parsed = read_invoice_file(text.encode())
    assert parsed.delimiter == ";"
    assert accepted(parsed) == [
        (2, {"recipient_name": "Smith, Jane", "amount": "5", "message": "a,b\tc"})
    ]


def test_tab_separated_values_holding_commas():
    parsed = read_invoice_file(b"Name\tAmount\nSmith, Jane\t$1,000\n")
    assert parsed.delimiter == "\t"
    assert accepted(parsed) == [(2, {"recipient_name": "Smith, Jane", "amount": "$1,000"})]


def test_quoted_commas_and_line_breaks_keep_row_numbers_true_to_the_spreadsheet():
    text = (
        f"{TEMPLATE_HEADER}\r\n"
        'INV-1,,,"Doe, Jane","$1,234.50",jd@example.com,"Dear Jane,\r\n\r\nthank you."\r\n'
        'INV-2,,,"Roe, Rick",5,rr@example.com,"He said ""pay"""\r\n'
    )
    parsed = read_invoice_file(text.encode())
    # The first message spans three lines of the file but is one row of the sheet.
    assert accepted(parsed) == [
        (
            2,
            {
                "invoice_number": "INV-1",
                "recipient_name": "Doe, Jane",
                "amount": "$1,234.50",
                "email": "jd@example.com",
                "message": "Dear Jane,\r\n\r\nthank you.",
            },
        ),
        (
            3,
            {
                "invoice_number": "INV-2",
                "recipient_name": "Roe, Rick",
                "amount": "5",
                "email": "rr@example.com",
                "message": 'He said "pay"',
            },
        ),
    ]


@pytest.mark.parametrize("newline", ["\r\n", "\n", "\r"], ids=["CRLF", "LF", "CR"])
def test_every_line_ending(newline):
    lines = ["Name,Amount", "Anna,1", "", 'Ben,"2', '3"', "Cleo,4"]
    parsed = read_invoice_file(newline.join(lines).encode())  # no line ending after the last
    assert accepted(parsed) == [
        (2, {"recipient_name": "Anna", "amount": "1"}),
        (4, {"recipient_name": "Ben", "amount": f"2{newline}3"}),
        (5, {"recipient_name": "Cleo", "amount": "4"}),
    ]


def test_a_quote_never_closed_is_refused_with_its_row():
    text = 'Name,Amount\nAnna,1\n"Ben,2\nCleo,3\n'
    assert unreadable(text.encode()) == (
        'Row 3: a quotation mark (") opens a value that is never closed, so the rest of the '
        "file cannot be read. Close the quote, or remove it, and upload again."
    )


def test_a_quote_inside_a_value_is_just_a_character():
    parsed = read_invoice_file(b'Name,Amount,Notes\nAnna "Nan" Lee,1,12" pipe\n')
    assert accepted(parsed) == [
        (2, {"recipient_name": 'Anna "Nan" Lee', "amount": "1", "message": '12" pipe'})
    ]


# --- headers ---------------------------------------------------------------------------------


def test_headers_renamed_shuffled_and_extra_columns_reported_once():
    text = (
        "Matter,AMOUNT ($),e-mail address,  client   name ,Inv #,Responsible Attorney,"
        "Matter,NOTE,Due,Date\n"
        "M-1,10,a@example.com,Anna,77,Lee,M-1,hi,2/1/2025,1/1/2025\n"
        "M-2,20,b@example.com,Ben,78,Lee,M-2,,,\n"
    )
    parsed = read_invoice_file(text.encode())
    assert parsed.columns == {
        "amount": 1,
        "email": 2,
        "recipient_name": 3,
        "invoice_number": 4,
        "message": 7,
        "due_date": 8,
        "invoice_date": 9,
    }
    assert parsed.ignored_columns == ("Matter", "Responsible Attorney")
    assert parsed.ignored_columns_message == (
        'These columns were ignored: "Matter" and "Responsible Attorney".'
    )
    assert accepted(parsed) == [
        (
            2,
            {
                "invoice_number": "77",
                "invoice_date": "1/1/2025",
                "due_date": "2/1/2025",
                "recipient_name": "Anna",
                "amount": "10",
                "email": "a@example.com",
                "message": "hi",
            },
        ),
        (
            3,
            {
                "invoice_number": "78",
                "recipient_name": "Ben",
                "amount": "20",
                "email": "b@example.com",
            },
        ),
    ]


@pytest.mark.parametrize(
    ("header", "field"),
    [
        ("Invoice #", "invoice_number"),
        ("Inv. No.", "invoice_number"),
        ("INVOICE_NUMBER", "invoice_number"),
        ("Client Name", "recipient_name"),
        ("Name", "recipient_name"),
        ("Total", "amount"),
        ("Amount Due", "amount"),
        ("Email", "email"),
        ("E-mail Address", "email"),
        ("Message", "message"),
        ("Note", "message"),
        ("Due Date (mm/dd/yyyy)", "due_date"),
    ],
)
def test_header_synonyms(header, field):
    required = [
        name for key, name in [("recipient_name", "Name"), ("amount", "Amount")] if key != field
    ]
    parsed = read_invoice_file(",".join([header, *required]).encode() + b"\nx,1,2\n")
    assert parsed.columns[field] == 0


def test_one_column_of_a_single_header_is_no_ignored_column_message():
    parsed = read_invoice_file(b"Name,Amount,Matter\nAnna,1,M\n")
    assert parsed.ignored_columns_message == 'This column was ignored: "Matter".'
    assert read_invoice_file(b"Name,Amount\nAnna,1\n").ignored_columns_message is None


def test_the_columns_of_a_downloaded_error_report_are_dropped_quietly():
    parsed = read_invoice_file(b"Name,Amount,Errors,Warnings,,\nAnna,1,Amount: bad,,,\n")
    assert parsed.ignored_columns == ()
    assert accepted(parsed) == [(2, {"recipient_name": "Anna", "amount": "1"})]


def test_required_columns_missing():
    text = "Invoice Number,Client,Email\nINV-1,Anna,a@example.com\n"
    assert unreadable(text.encode()) == (
        "The Amount column is missing. Required: Recipient Name and Amount. The header row "
        '(row 1) has "Invoice Number", "Client" and "Email".'
    )
    assert unreadable(b"Invoice Number,Email\nINV-1,a@example.com\n") == (
        "The Recipient Name and Amount columns are missing. Required: Recipient Name and "
        'Amount. The header row (row 1) has "Invoice Number" and "Email".'
    )


def test_no_header_row_at_all():
    text = "INV-1,1/15/2025,Anna Lee,$100.00\nINV-2,1/16/2025,Ben Ode,$200.00\n"
    assert unreadable(text.encode()) == (
        "No column headers were recognised in row 1, the first row with text. It has "
        '"INV-1", "1/15/2025", "Anna Lee" and "$100.00". The first row must name the '
        "columns, and Recipient Name and Amount are required; the template shows them."
    )


def test_a_long_unrecognised_header_is_shortened_in_the_message():
    headers = ",".join(f"Column {n}" for n in range(12)) + "," + "x" * 60
    message = unreadable(f"{headers}\n1\n".encode())
    assert '"Column 9" and 3 more.' in message


def test_two_columns_for_one_field_is_refused():
    text = "Name,Amount,Email,Client Email\nAnna,1,a@example.com,b@example.com\n"
    assert unreadable(text.encode()) == (
        'More than one column holds the Email Address: "Email" (column C) and "Client Email" '
        "(column D). Keep one of them and upload the file again."
    )


def test_a_template_column_wins_over_a_synonym_which_is_listed_as_ignored():
    text = "Notes,Recipient Name,Amount,Custom Message\nold note,Anna,1,Thank you\n"
    parsed = read_invoice_file(text.encode())
    assert parsed.columns["message"] == 3
    assert accepted(parsed) == [
        (2, {"recipient_name": "Anna", "amount": "1", "message": "Thank you"})
    ]
    assert parsed.ignored_columns == ("Notes",)
    assert parsed.set_aside == (SetAside("Notes", "message", "Custom Message"),)
    assert parsed.ignored_columns_message == (
        'This column was ignored: "Notes" (the Custom Message is read from "Custom Message").'
    )


def test_the_template_name_is_matched_as_every_header_is_and_beside_other_ignored_columns():
    text = "Client,Matter,AMOUNT,recipient name,Total,e-mail,Email Address\nX,M,1,Anna,2,x,a@b.c\n"
    parsed = read_invoice_file(text.encode())
    assert accepted(parsed) == [(2, {"recipient_name": "Anna", "amount": "1", "email": "a@b.c"})]
    assert parsed.ignored_columns == ("Client", "Matter", "Total", "e-mail")
    assert [column.name for column in parsed.set_aside] == ["Client", "Total", "e-mail"]
    assert parsed.ignored_columns_message is not None
    assert '"Matter",' in parsed.ignored_columns_message
    assert '"Total" (the Amount is read from "AMOUNT")' in parsed.ignored_columns_message


@pytest.mark.parametrize(
    "headers",
    [
        "Name,Amount,Notes,Memo",  # two synonyms: which one is meant?
        "Name,Amount,Custom Message,custom message,Notes",  # the template's name twice
    ],
)
def test_without_exactly_one_template_column_two_columns_are_still_refused(headers):
    message = unreadable(f"{headers}\nAnna,1,a,b,c\n".encode())
    assert message.startswith("More than one column holds the Custom Message:")


def test_header_key_ignores_case_spacing_punctuation_and_brackets():
    assert header_key("  E-Mail_Address (work) ") == "emailaddress"
    assert header_key("(Amount)") == "amount"
    assert [column_letter(i) for i in (0, 25, 26, 701, 702)] == ["A", "Z", "AA", "ZZ", "AAA"]


# --- rows ------------------------------------------------------------------------------------


def test_blank_rows_are_skipped_and_row_numbers_stay_true():
    text = '\r\n \r\nName,Amount\r\n\r\nAnna,1\r\n,\r\n  ,\t\r\n"",""\r\nBen,2\r\n\r\n\r\n'
    parsed = read_invoice_file(text.encode())
    assert parsed.header_row_number == 3
    assert accepted(parsed) == [
        (5, {"recipient_name": "Anna", "amount": "1"}),
        (9, {"recipient_name": "Ben", "amount": "2"}),
    ]


def test_short_rows_lack_the_missing_cells_and_cells_are_stripped():
    parsed = read_invoice_file(b"Name,Amount,Email\n  Anna  , 1 \nBen\n")
    assert accepted(parsed) == [
        (2, {"recipient_name": "Anna", "amount": "1"}),
        (3, {"recipient_name": "Ben"}),
    ]
    assert parsed.rows[0].cells == ("  Anna  ", " 1 ")  # the report shows them as they were


def test_values_to_the_right_of_the_last_header_are_kept_as_overflow():
    # "$1,234.50" not in quotes: the row has one cell more than the header.
    parsed = read_invoice_file(b"Name,Amount,,\nAnna,$1,234.50,\nBen,2,,\n")
    assert parsed.rows == [
        RawRow(2, ("", "", "", "Anna", "$1", "", ""), ("Anna", "$1", "234.50", ""), ("234.50",)),
        RawRow(3, ("", "", "", "Ben", "2", "", ""), ("Ben", "2", "", ""), ()),
    ]


def test_a_row_with_only_ignored_columns_filled_is_still_a_row():
    # It is not blank, so it is shown (with its errors) rather than dropped without a word.
    parsed = read_invoice_file(b"Name,Amount,Matter\nAnna,1,\n,,M-7\n")
    assert [row.row_number for row in parsed.rows] == [2, 3]


def test_raw_row_made_by_hand():
    row = RawRow.from_fields(12, {"recipient_name": " Zed ", "amount": "5", "unknown": "x"})
    assert (row.row_number, row.get("recipient_name"), row.get("amount"), row.get("email")) == (
        12,
        "Zed",
        "5",
        "",
    )
    assert row.cells == ()


# --- files that are not invoice lists --------------------------------------------------------


def test_an_xlsx_renamed_csv():
    # The start of a real .xlsx: a zip whose first entry is [Content_Types].xml.
    data = b"PK\x03\x04\x14\x00\x06\x00\x08\x00\x00\x00!\x00" + b"[Content_Types].xml" + bytes(64)
    assert unreadable(data) == (
        f"This file is an Excel workbook (.xlsx), not a CSV or TXT file. {SAVE_AS_HINT}"
    )


@pytest.mark.parametrize(
    ("start", "kind"),
    [
        (
            b"PK\x03\x04\x14\x00mimetypeapplication/vnd.oasis.opendocument.spreadsheet",
            "an OpenDocument spreadsheet (.ods)",
        ),
        (b"PK\x03\x04\x14\x00notes.txt", "a zip archive (perhaps a workbook)"),
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1\x00\x00", "an Excel 97-2003 workbook (.xls)"),
        (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n", "a PDF document"),
        (b"\x89PNG\r\n\x1a\n\x00\x00", "an image"),
    ],
)
def test_other_documents_are_named(start, kind):
    assert (
        unreadable(start + bytes(100))
        == f"This file is {kind}, not a CSV or TXT file. {SAVE_AS_HINT}"
    )


def test_random_binary():
    data = random.Random(7).randbytes(4096)
    assert unreadable(data) == f"This is not a text file (it holds binary data). {SAVE_AS_HINT}"


def test_text_full_of_control_characters_is_binary():
    data = b"Name,Amount\n" + b"\x01\x02\x03\x04,\x05\n" * 20
    assert unreadable(data) == f"This is not a text file (it holds binary data). {SAVE_AS_HINT}"


def test_one_stray_control_character_is_tolerated():
    parsed = read_invoice_file(b"Name,Amount\nAnna\x1a,1\n")
    assert parsed.rows[0].get("recipient_name") == "Anna\x1a"


def test_a_nul_past_the_start_of_the_file_stays_in_its_row():
    # Only the start is checked for binary data; a NUL further on is a bad value in its row,
    # which validation reports (a control character).
    data = codecs.BOM_UTF16_LE + "Name,Amount,Notes\r\nAnna,1\r\n".encode("utf-16-le")
    data += ("Cleo,2," + "x" * 70_000 + "\r\nBen\x00,3\r\n").encode("utf-16-le")
    parsed = read_invoice_file(data)
    assert [row.get("recipient_name") for row in parsed.rows] == ["Anna", "Cleo", "Ben\x00"]


@pytest.mark.parametrize("data", [b"", b"   \r\n\r\n", b",,,\n;;\n", codecs.BOM_UTF8])
def test_empty(data):
    assert unreadable(data) in {"The file is empty.", "The file is empty: it has no text in it."}


def test_empty_messages_exactly():
    assert unreadable(b"") == "The file is empty."
    assert unreadable(b"\r\n \r\n") == "The file is empty: it has no text in it."


def test_headers_only():
    expected = (
        "The file has a header row but no invoice rows under it. Add one row per invoice and "
        "upload it again."
    )
    assert unreadable(f"{TEMPLATE_HEADER}\r\n".encode()) == expected
    assert unreadable(f"{TEMPLATE_HEADER}\r\n,,,,,,\r\n\r\n".encode()) == expected


# --- limits ----------------------------------------------------------------------------------


def test_row_limit():
    rows = "".join(f"Client {n},{n}\n" for n in range(1, 6))
    data = f"Name,Amount\n\n{rows}\n".encode()
    assert [row.row_number for row in read_invoice_file(data, max_rows=5).rows] == [3, 4, 5, 6, 7]
    assert unreadable(data, max_rows=4) == (
        "The file has more than 4 invoice rows. Split it into files of at most 4 rows."
    )


def test_row_limit_counts_thousands():
    data = b"Name,Amount\n" + b"A,1\n" * 1001
    assert unreadable(data, max_rows=1000) == (
        "The file has more than 1,000 invoice rows. Split it into files of at most 1,000 rows."
    )


def test_size_limit():
    data = b"Name,Amount\n" + b"Anna,1\n" * 3_000  # 21,012 bytes
    assert unreadable(data, max_bytes=20 * 1024) == (
        "The file is 21 KB; the limit is 20 KB. Split it into smaller files."
    )
    assert len(read_invoice_file(data, max_bytes=len(data)).rows) == 3_000
    assert unreadable(data + b"A,1\n" * 300_000, max_bytes=1024 * 1024) == (
        "The file is 1.2 MB; the limit is 1.0 MB. Split it into smaller files."
    )


def test_a_value_longer_than_any_real_one():
    data = b'Name,Amount\nAnna,"' + b"9" * 200_000 + b'"\n'
    assert unreadable(data) == (
        "Row 2: a value is longer than 131,072 characters, usually because a quotation mark "
        '(") is never closed. Fix that row and upload again.'
    )
