"""The links an upload made: for the result page, the API, and the CSV and .xlsx downloads.

Every cell a person typed goes into the spreadsheets neutralized: a value whose first visible
character is = + - or @ (or that starts with a tab or carriage return) gets a leading
apostrophe, so that Excel and Google Sheets show it as text instead of running it as a formula
(CSV injection; the rule is clientpay_connect/cells.py's, as for every file we write).
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import Any, NamedTuple

from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.styles import Font
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from clientpay_connect.bulk.models import BulkRow, BulkUpload
from clientpay_connect.cells import formula_safe, xlsx_text
from clientpay_connect.links.models import PaymentLink
from clientpay_connect.money import format_amount, minor_digits

HEADERS = ("Row", "Invoice Number", "Recipient Name", "Amount", "Email Address", "Payment Link")


class LinkLine(NamedTuple):
    row_number: int
    link_id: int
    invoice_number: str
    recipient_name: str
    amount_minor: int
    currency: str
    emails: list[str]
    status: str
    token_encrypted: str

    @property
    def amount(self) -> str:
        return format_amount(self.amount_minor, self.currency)

    @property
    def email(self) -> str:
        return "; ".join(self.emails)


def _query(upload: BulkUpload) -> Any:
    # The link's firm too: a row can only point at a link of its upload's firm, but a query
    # that returns links says so itself.
    return (
        select(
            BulkRow.row_number,
            PaymentLink.id,
            PaymentLink.invoice_number,
            PaymentLink.recipient_name,
            PaymentLink.amount_minor,
            PaymentLink.currency,
            PaymentLink.emails,
            PaymentLink.status,
            PaymentLink.token_encrypted,
        )
        .join(PaymentLink, PaymentLink.bulk_row_id == BulkRow.id)
        .where(
            BulkRow.upload_id == upload.id,
            BulkRow.deleted.is_(False),
            PaymentLink.firm_id == upload.firm_id,
        )
    )


def link_lines(
    dbsession: Session, upload: BulkUpload, *, offset: int = 0, limit: int | None = None
) -> list[LinkLine]:
    query = _query(upload).order_by(BulkRow.row_number)
    if offset:
        query = query.offset(offset)
    if limit is not None:
        query = query.limit(limit)
    return [LinkLine(*record) for record in dbsession.execute(query)]


def count_links(dbsession: Session, upload: BulkUpload) -> int:
    query = select(func.count()).select_from(_query(upload).subquery())
    return int(dbsession.execute(query).scalar_one())


UrlOf = Callable[[LinkLine], str]


def url_maker(url_of_token: Callable[[str], str]) -> UrlOf:
    """A line's URL, from links.services.token_urls (its encrypted token → the URL)."""
    return lambda line: url_of_token(line.token_encrypted)


def link_json(line: LinkLine, url: str) -> dict[str, Any]:
    return {
        "row": line.row_number,
        "id": line.link_id,
        "url": url,
        "status": line.status,
        "invoice_number": line.invoice_number,
        "recipient_name": line.recipient_name,
        "amount": line.amount,
        "currency": line.currency,
        "email": line.email,
    }


def _cells(line: LinkLine, url: str) -> list[str]:
    texts = [line.invoice_number, line.recipient_name, line.amount, line.email, url]
    return [str(line.row_number), *(formula_safe(text) for text in texts)]


def links_csv(lines: Sequence[LinkLine], url_of: UrlOf) -> bytes:
    """UTF-8 with a BOM and CRLF line ends, the way Excel reads a CSV correctly."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(HEADERS)
    for line in lines:
        writer.writerow(_cells(line, url_of(line)))
    return ("\ufeff" + out.getvalue()).encode("utf-8")


def links_xlsx(lines: Sequence[LinkLine], url_of: UrlOf) -> bytes:
    """A real workbook; written row by row (write-only mode) so 100,000 links stay small."""
    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet("Payment links")
    bold = Font(bold=True)
    sheet.append([_styled(sheet, name, font=bold) for name in HEADERS])
    for line in lines:
        texts = [xlsx_text(text) for text in (line.invoice_number, line.recipient_name)]
        contacts = [xlsx_text(text) for text in (line.email, url_of(line))]
        sheet.append([line.row_number, *texts, _amount_cell(sheet, line), *contacts])
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()


def _styled(sheet: Any, value: Any, *, font: Font | None = None, number_format: str = "") -> Any:
    cell = WriteOnlyCell(sheet, value=value)
    if font is not None:
        cell.font = font
    if number_format:
        cell.number_format = number_format
    return cell


def _amount_cell(sheet: Any, line: LinkLine) -> Any:
    # A number, so that the sheet can add them up; shown with the currency's decimals.
    digits = minor_digits(line.currency)
    value = Decimal(line.amount_minor).scaleb(-digits)
    number_format = "#,##0" + ("." + "0" * digits if digits else "")
    return _styled(sheet, value, number_format=number_format)


def download_name(upload: BulkUpload, suffix: str, extension: str) -> str:
    stem = os.path.splitext(upload.filename or "upload")[0] or "upload"
    safe = "".join(c if c.isalnum() or c in "-_ ." else "_" for c in stem).strip() or "upload"
    return f"{safe}-{suffix}.{extension}"
