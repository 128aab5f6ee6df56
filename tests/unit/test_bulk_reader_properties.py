"""Properties of the reader for any input: it reads what was written, and it never crashes."""

from __future__ import annotations

import codecs
import csv
import io

from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from clientpay_connect.bulk.reader import (
    FIELD_LABELS,
    FIELDS,
    HEADER_ALIASES,
    REQUIRED_COLUMNS,
    ParsedFile,
    SetAside,
    UnreadableFile,
    header_key,
    read_invoice_file,
)

# Text a spreadsheet cell can hold: no control characters but tab and line breaks, no
# surrogates (they cannot be encoded).
cell_text = st.text(
    st.characters(exclude_categories=("Cc", "Cs"), include_characters="\t\r\n"), max_size=30
)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=2000))
@example(b"")
@example(b"\xff\xfe")
@example(b"\xfe\xff\x00")
@example(codecs.BOM_UTF8 + b'Name,Amount\n"')
@example(b"Name,Amount\n\x00")
@example(b'Name;Amount\r"a\r\n\r')
@example(b"PK\x03\x04")
def test_any_bytes_parse_or_raise_the_readers_own_error(data):
    try:
        parsed = read_invoice_file(data, max_bytes=1500, max_rows=50)
    except UnreadableFile as exc:
        assert exc.message.strip()
        assert str(exc) == exc.message
    else:
        assert isinstance(parsed, ParsedFile)
        assert 1 <= len(parsed.rows) <= 50
        numbers = [row.row_number for row in parsed.rows]
        assert numbers == sorted(set(numbers))
        assert numbers[0] > parsed.header_row_number


@st.composite
def sheets(draw):
    """A sheet as a spreadsheet program would save it: headers in any order, then rows."""
    optional = [f for f in FIELDS if f not in REQUIRED_COLUMNS]
    fields = [*REQUIRED_COLUMNS, *draw(st.lists(st.sampled_from(optional), unique=True))]
    fields = draw(st.permutations(fields))
    # Every row has a name, so that none is blank and skipped.
    name = cell_text.filter(lambda text: text.strip() != "")
    rows = draw(
        st.lists(
            st.fixed_dictionaries(
                {field: name if field == "recipient_name" else cell_text for field in fields}
            ),
            min_size=1,
            max_size=8,
        )
    )
    return fields, rows


# Line ending and quoting together: Python's writer quotes a value holding a line break only
# when the break is in its line terminator, so with LF or CR alone every value is quoted.
LINE_ENDINGS = [
    ("\r\n", csv.QUOTE_MINIMAL),
    ("\r\n", csv.QUOTE_ALL),
    ("\n", csv.QUOTE_ALL),
    ("\r", csv.QUOTE_ALL),
]


def written(fields, rows, *, delimiter: str, line_ending, encoding: str) -> bytes:
    newline, quoting = line_ending
    out = io.StringIO()
    writer = csv.writer(out, delimiter=delimiter, lineterminator=newline, quoting=quoting)
    writer.writerow([FIELD_LABELS[field] for field in fields])
    writer.writerows([[row[field] for field in fields] for row in rows])
    return out.getvalue().encode(encoding)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    sheets(),
    st.sampled_from([",", ";", "\t"]),
    st.sampled_from(LINE_ENDINGS),
    st.sampled_from(["utf-8", "utf-8-sig", "utf-16", "utf-16-le", "utf-16-be"]),
)
def test_what_a_csv_writer_wrote_is_read_back(sheet, delimiter, line_ending, encoding):
    fields, rows = sheet
    data = written(fields, rows, delimiter=delimiter, line_ending=line_ending, encoding=encoding)
    parsed = read_invoice_file(data)
    assert parsed.delimiter == delimiter
    assert [row.row_number for row in parsed.rows] == list(range(2, len(rows) + 2))
    for read, original in zip(parsed.rows, rows, strict=True):
        assert read.fields == {field: original.get(field, "").strip() for field in FIELDS}


@settings(max_examples=100, deadline=None)
@given(sheets())
def test_windows_1252_text_is_read_back(sheet):
    fields, rows = sheet
    try:
        data = written(fields, rows, delimiter=",", line_ending=LINE_ENDINGS[0], encoding="cp1252")
    except UnicodeEncodeError:
        return  # text Windows-1252 cannot hold is never in such a file
    # Bytes that are also valid UTF-8 are UTF-8 by the rule, so they prove nothing here.
    assume(not _is_utf8(data))
    parsed = read_invoice_file(data)
    assert [read.fields["recipient_name"] for read in parsed.rows] == [
        row["recipient_name"].strip() for row in rows
    ]


def _is_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


@st.composite
def sheets_with_a_synonym_beside_the_template(draw):
    """A template sheet plus, anywhere, a column that names one of its fields by a synonym."""
    field = draw(st.sampled_from(FIELDS))
    synonym = draw(
        st.sampled_from(
            [a for a in HEADER_ALIASES[field] if header_key(a) != header_key(FIELD_LABELS[field])]
        )
    )
    headers = [FIELD_LABELS[f] for f in FIELDS]
    position = draw(st.integers(0, len(headers)))
    headers.insert(position, synonym)
    name = cell_text.filter(lambda text: text.strip() != "")
    rows = draw(
        st.lists(st.lists(cell_text, min_size=len(headers), max_size=len(headers)), max_size=5)
    )
    # Every row has a name in the template's column, so that none is blank and skipped.
    rows = [
        [
            draw(name) if h == FIELD_LABELS["recipient_name"] else cell
            for h, cell in zip(headers, row, strict=True)
        ]
        for row in rows
    ] or [[("Anna" if h == FIELD_LABELS["recipient_name"] else "") for h in headers]]
    return field, synonym, headers, rows


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sheets_with_a_synonym_beside_the_template())
def test_a_synonym_beside_the_templates_column_is_ignored_wherever_it_is(sheet):
    field, synonym, headers, rows = sheet
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(headers)
    writer.writerows(rows)
    parsed = read_invoice_file(out.getvalue().encode("utf-8"))
    template_column = headers.index(FIELD_LABELS[field])
    assert parsed.columns[field] == template_column
    assert [read.get(field) for read in parsed.rows] == [
        row[template_column].strip() for row in rows
    ]
    assert parsed.ignored_columns == (synonym,)
    assert parsed.set_aside == (SetAside(synonym, field, FIELD_LABELS[field]),)
