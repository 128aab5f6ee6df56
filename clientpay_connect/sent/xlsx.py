"""A one-sheet .xlsx written as it goes: for exports of a hundred thousand rows and more.

openpyxl's write-only mode streams too, but spends about a millisecond per row building a
cell object, a style and an XML element for every value: 100,000 links took over a minute.
Here a row is one string of SpreadsheetML (ECMA-376) written into the zip's deflate stream:
text as inline strings, numbers and dates as numbers with a number format, each format a
cell style of its own. What the file holds is what openpyxl wrote (and reads back): typed
cells, the column widths, a bold header row that stays in view.
"""

from __future__ import annotations

import datetime as dt
import zipfile
from collections.abc import Iterable
from decimal import Decimal
from typing import IO, Any
from xml.sax.saxutils import escape, quoteattr

from openpyxl.utils import get_column_letter
from openpyxl.utils.datetime import to_excel

# (value, number format): a cell that is a number or a date shown a certain way.
Formatted = tuple[Any, str]

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


class StreamingSheet:
    """Write the header with ``__init__``, each row with ``append``, then ``close``."""

    def __init__(self, target: IO[bytes], title: str, columns: list[tuple[str, int]]):
        self._zip = zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED)
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
        self._append([title for title, _width in columns], style=BOLD_STYLE)

    def append(self, values: Iterable[str | Formatted | None]) -> None:
        self._append(values)

    def close(self) -> None:
        self._write("</sheetData></worksheet>")
        self._sheet.close()
        for name, text in _PARTS.items():
            self._zip.writestr(name, text)
        self._zip.writestr("xl/workbook.xml", self._workbook())
        self._zip.writestr("xl/styles.xml", self._styles())
        self._zip.close()

    def _append(self, values: Iterable[str | Formatted | None], style: int = 0) -> None:
        self._rows += 1
        row = self._rows
        cells = []
        for letter, value in zip(self._letters, values, strict=False):
            if value is None or value == "":
                continue  # no cell at all, as openpyxl writes an empty text
            where = f"{letter}{row}"
            if isinstance(value, str):
                bold = f' s="{style}"' if style else ""
                cells.append(
                    f'<c r="{where}"{bold} t="inlineStr"><is><t xml:space="preserve">'
                    f"{escape(value)}</t></is></c>"
                )
            else:
                number, number_format = value
                cells.append(
                    f'<c r="{where}" s="{self._style(number_format)}"><v>{_number(number)}</v></c>'
                )
        self._write(f'<row r="{row}">{"".join(cells)}</row>')

    def _style(self, number_format: str) -> int:
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


def _number(value: Any) -> str:
    """A cell's number as SpreadsheetML writes it: dates and times as Excel's serial days."""
    if isinstance(value, dt.date):  # a datetime is a date too
        return repr(to_excel(value))
    if isinstance(value, Decimal):
        return format(value, "f")
    return str(value)
