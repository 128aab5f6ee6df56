"""A one-sheet .xlsx written as it goes: for exports of a hundred thousand rows and more.

openpyxl's write-only mode streams too, but spends about a millisecond per row building a
cell object, a style and an XML element for every value: 100,000 links took over a minute.
Here a row is one string of SpreadsheetML (ECMA-376) written into the zip's deflate stream:
text as inline strings, numbers and dates as numbers with a number format, each format a
cell style of its own. What the file holds is what openpyxl wrote (and reads back): typed
cells, the column widths, a bold header row that stays in view.

Speed is the point (a million cells per export), hence the shape: each column gets its cell
writer once (``SheetColumn``), a closure with its XML around the value already made, so
that a row is one call per cell and a join; text is escaped only when it holds one of the
three characters XML needs escaped; dates become Excel's serial numbers by arithmetic
(as openpyxl's ``to_excel`` computes them); rows reach the deflate stream in batches.
"""

from __future__ import annotations

import datetime as dt
import zipfile
from collections.abc import Callable, Iterable, Sequence
from typing import IO, Any
from xml.sax.saxutils import escape, quoteattr

from openpyxl.utils import get_column_letter

# A cell's value and its row's number (as text) → the cell's XML; "" for no cell at all.
CellWriter = Callable[[Any, str], str]
# A row (whatever the caller fetched) and its number → one cell's XML, "" for none.
RowCell = Callable[[Any, str], str]

_PARTS = {
    "[Content_Types].xml": (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
        '<Default Extension="rels"'
        ' ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
        '<Default Extension="xml" ContentType="application/xml"/>'
        '<Override PartName="/xl/workbook.xml" ContentType="application/'
        'vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
        '<Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/'
        'vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>'
        '<Override PartName="/xl/styles.xml" ContentType="application/'
        'vnd.openxmlformats-officedocument.spreadsheetml.styles+xml"/>'
        "</Types>"
    ),
    "_rels/.rels": (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
        '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
        'relationships/officeDocument" Target="xl/workbook.xml"/>'
        "</Relationships>"
    ),
    "xl/_rels/workbook.xml.rels": (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
        '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
        'relationships/worksheet" Target="worksheets/sheet1.xml"/>'
        '<Relationship Id="rId2" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
        'relationships/styles" Target="styles.xml"/>'
        "</Relationships>"
    ),
}
_MAIN = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
_RELATIONSHIPS = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
# Number formats of our own start at 164 (the lower ids are Excel's built-in ones).
FIRST_CUSTOM_FORMAT = 164
BOLD_STYLE = 1  # cellXfs: 0 the default, 1 the header's bold, then one per number format
# zlib's default. The fastest level (1) was measured (benchmarks/sent_pages.py, 100,000
# links): some 0.4 s less of about 3 s of CPU, but 8.4 MB instead of 6.4 MB, and the export's
# peak memory up by as much again (the spool holds the file): not worth it.
COMPRESS_LEVEL = 6
# Rows go into the deflate stream this many at a time: a write per row costs a checksum and
# a compress call each.
ROWS_PER_WRITE = 200
# Excel's day 0 (the Windows epoch, as openpyxl counts), as an ordinal.
_EPOCH_DAY = dt.date(1899, 12, 30).toordinal()
_SECONDS_PER_DAY = 86400


class StreamingSheet:
    """Write the header with ``__init__``, the rows with ``write_rows`` (each cell written by
    a writer from ``column``), then ``close``."""

    def __init__(self, target: IO[bytes], title: str, columns: list[tuple[str, int]]):
        self._zip = zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED, compresslevel=COMPRESS_LEVEL)
        self._title = title
        self._formats: dict[str, int] = {}
        self._letters = [get_column_letter(n + 1) for n in range(len(columns))]
        self._rows = 0
        self._sheet = self._zip.open("xl/worksheets/sheet1.xml", "w", force_zip64=True)
        widths = "".join(
            f'<col min="{n}" max="{n}" width="{width}" customWidth="1"/>'
            for n, (_title, width) in enumerate(columns, start=1)
        )
        self._write(
            '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
            f'<worksheet xmlns="{_MAIN}" xmlns:r="{_RELATIONSHIPS}">'
            '<sheetViews><sheetView workbookViewId="0">'
            '<pane ySplit="1" topLeftCell="A2" activePane="bottomLeft" state="frozen"/>'
            '<selection pane="bottomLeft" activeCell="A2" sqref="A2"/>'
            "</sheetView></sheetViews>"
            f"<cols>{widths}</cols><sheetData>"
        )
        bold = [SheetColumn(self, letter, BOLD_STYLE).text() for letter in self._letters]
        titles = "".join(cell(t, "1") for cell, (t, _w) in zip(bold, columns, strict=True))
        self._write(f'<row r="1">{titles}</row>')
        self._rows = 1

    def column(self, index: int) -> SheetColumn:
        """The cell writers of the column at ``index`` (0 is column A)."""
        return SheetColumn(self, self._letters[index])

    def write_rows(self, rows: Iterable[Any], cells: Sequence[RowCell]) -> int:
        """One sheet row per row of ``rows``, its cells made by ``cells`` in column order;
        the number of rows written."""
        number = self._rows
        batch: list[str] = []
        for row in rows:
            number += 1
            ref = str(number)
            batch.append(f'<row r="{ref}">{"".join([cell(row, ref) for cell in cells])}</row>')
            if len(batch) == ROWS_PER_WRITE:
                self._write("".join(batch))
                batch.clear()
        self._write("".join(batch))
        written, self._rows = number - self._rows, number
        return written

    def close(self) -> None:
        self._write("</sheetData></worksheet>")
        self._sheet.close()
        for name, text in _PARTS.items():
            self._zip.writestr(name, text)
        self._zip.writestr("xl/workbook.xml", self._workbook())
        self._zip.writestr("xl/styles.xml", self._styles())
        self._zip.close()

    def style(self, number_format: str) -> int:
        """The cell style of ``number_format``, made the first time it is asked for."""
        style = self._formats.get(number_format)
        if style is None:
            style = self._formats[number_format] = BOLD_STYLE + 1 + len(self._formats)
        return style

    def _write(self, text: str) -> None:
        self._sheet.write(text.encode("utf-8"))

    def _workbook(self) -> str:
        return (
            '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
            f'<workbook xmlns="{_MAIN}" xmlns:r="{_RELATIONSHIPS}"><sheets>'
            f'<sheet name={quoteattr(self._title)} sheetId="1" r:id="rId1"/>'
            "</sheets></workbook>"
        )

    def _styles(self) -> str:
        formats = "".join(
            f'<numFmt numFmtId="{FIRST_CUSTOM_FORMAT + n}" formatCode={quoteattr(code)}/>'
            for n, code in enumerate(self._formats)
        )
        styles = "".join(
            f'<xf numFmtId="{FIRST_CUSTOM_FORMAT + n}" fontId="0" fillId="0" borderId="0"'
            ' xfId="0" applyNumberFormat="1"/>'
            for n in range(len(self._formats))
        )
        return (
            '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
            f'<styleSheet xmlns="{_MAIN}">'
            f'<numFmts count="{len(self._formats)}">{formats}</numFmts>'
            '<fonts count="2"><font><sz val="11"/><name val="Calibri"/></font>'
            '<font><b/><sz val="11"/><name val="Calibri"/></font></fonts>'
            '<fills count="2"><fill><patternFill patternType="none"/></fill>'
            '<fill><patternFill patternType="gray125"/></fill></fills>'
            '<borders count="1"><border><left/><right/><top/><bottom/><diagonal/></border>'
            "</borders>"
            '<cellStyleXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" borderId="0"/>'
            "</cellStyleXfs>"
            f'<cellXfs count="{2 + len(self._formats)}">'
            '<xf numFmtId="0" fontId="0" fillId="0" borderId="0" xfId="0"/>'
            '<xf numFmtId="0" fontId="1" fillId="0" borderId="0" xfId="0" applyFont="1"/>'
            f"{styles}</cellXfs>"
            '<cellStyles count="1"><cellStyle name="Normal" xfId="0" builtinId="0"/>'
            "</cellStyles></styleSheet>"
        )


class SheetColumn:
    """The cell writers of one column: each takes a value (None or "" for no cell) and the
    row's number, and gives the cell's XML. Ask for them once per export, not once per row:
    each has its column's letter, style and markup already in place."""

    def __init__(self, sheet: StreamingSheet, letter: str, style: int = 0):
        self._sheet = sheet
        self._letter = letter
        self._style = style

    def text(self) -> CellWriter:
        """Text, as an inline string (the caller has made it formula-safe)."""
        start = f'<c r="{self._letter}'
        styled = f' s="{self._style}"' if self._style else ""
        middle = f'"{styled} t="inlineStr"><is><t xml:space="preserve">'

        def cell(value: str | None, ref: str) -> str:
            if not value:
                return ""  # no cell at all, as openpyxl writes an empty text
            return f"{start}{ref}{middle}{_escaped(value)}</t></is></c>"

        return cell

    def number(self, number_format: str) -> CellWriter:
        """A number (an int, a float, or its text as SpreadsheetML writes it: "1234.50")."""
        start = f'<c r="{self._letter}'
        middle = f'" s="{self._sheet.style(number_format)}"><v>'

        def cell(value: object, ref: str) -> str:
            if value is None:
                return ""
            return f"{start}{ref}{middle}{value}</v></c>"

        return cell

    def date(self, number_format: str) -> CellWriter:
        """A date, as Excel's serial day number."""
        number = self.number(number_format)

        def cell(value: dt.date | None, ref: str) -> str:
            return "" if value is None else number(serial_day(value), ref)

        return cell

    def timestamp(self, number_format: str) -> CellWriter:
        """A datetime's wall-clock time (Excel has no time zones: its zone, if it has one, is
        the caller's choice), as Excel's serial day and fraction of a day."""
        number = self.number(number_format)

        def cell(value: dt.datetime | None, ref: str) -> str:
            return "" if value is None else number(repr(serial_time(value)), ref)

        return cell


def serial_day(value: dt.date) -> int:
    """Excel's number of ``value``'s day: days since 1899-12-30, one fewer before March 1900
    (Excel's 1900 has a February 29th; openpyxl's to_excel counts the same way)."""
    days = value.toordinal() - _EPOCH_DAY
    return days - 1 if 0 < days <= 60 else days


def serial_time(value: dt.datetime) -> float:
    """Excel's number of ``value``'s wall-clock time: its day and the fraction of it gone,
    computed as openpyxl's to_excel does (the very same float)."""
    seconds = (value.hour * 3600) + (value.minute * 60) + value.second + value.microsecond / 10**6
    return serial_day(value) + seconds / _SECONDS_PER_DAY


def _escaped(text: str) -> str:
    # Most cells hold none of the three: three searches cost less than three replaces.
    if "&" in text or "<" in text or ">" in text:
        return escape(text)
    return text
