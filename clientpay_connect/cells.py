"""Text for a spreadsheet cell that no spreadsheet program runs as a formula (CSV injection).

The one rule every file we write follows (a bulk upload's report.csv, links.csv and
links.xlsx, Sent Pages' export, the reconciliation workbook): a cell whose first visible
character is = + - or @ is written with a leading apostrophe, so that Excel, LibreOffice and
Google Sheets show it as text. "First visible" because spreadsheets skip what comes before:
" =1+1", "\\n=1+1" and "\\t=1+1" run just as "=1+1" does when a CSV is opened. A cell that
starts with a tab, a carriage return or a line feed is quoted whatever follows (OWASP's list,
and a line feed, which some programs treat as the start of a new cell's text). The
apostrophe is all that changes: the text itself is kept, so nothing a person typed is lost.
"""

from __future__ import annotations

import unicodedata

from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

# What spreadsheet programs read as the start of a formula, with the full-width forms an East
# Asian keyboard types (Excel takes them as the ASCII ones).
FORMULA_STARTS = frozenset("=+-@\uff1d\uff0b\uff0d\uff20")
# Quoted whatever follows them.
RISKY_FIRST = ("\t", "\r", "\n")
QUOTE = "'"
# Unicode categories of what a spreadsheet skips before the first visible character:
# separators (spaces, line and paragraph separators), controls, and format characters (zero
# width spaces, a byte-order mark).
_INVISIBLE = frozenset({"Zs", "Zl", "Zp", "Cc", "Cf"})


def _first_visible(text: str) -> str:
    for char in text:
        if not (char.isspace() or unicodedata.category(char) in _INVISIBLE):
            return char
    return ""


def runs_as_formula(text: str) -> bool:
    """Whether a spreadsheet could take ``text`` for a formula (or start one from it)."""
    return text.startswith(RISKY_FIRST) or _first_visible(text) in FORMULA_STARTS


def formula_safe(text: str) -> str:
    """``text`` for a CSV cell: as it is, or behind an apostrophe when it could run."""
    return QUOTE + text if runs_as_formula(text) else text


def xlsx_text(text: str) -> str:
    """``text`` for an .xlsx cell: formula-safe, without the control characters XML cannot
    carry (openpyxl refuses them, which would fail the whole workbook)."""
    return formula_safe(ILLEGAL_CHARACTERS_RE.sub("", text))
