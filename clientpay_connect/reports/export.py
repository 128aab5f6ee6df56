"""The reconciliation report as an .xlsx: a Summary sheet (one row per merchant account and
connection, then the totals per currency) and a Postings sheet (every posting of the period:
the rows behind every figure, to filter in the spreadsheet).

Typed and formula-safe as Sent Pages' export is (its helpers, sent/export.py): amounts are
numbers in their currency's format, dates are dates, timestamps are the firm's wall-clock
time, and no text cell can start a formula.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import IO, Any
from zoneinfo import ZoneInfo

from openpyxl import Workbook
from openpyxl.worksheet._write_only import WriteOnlyWorksheet

from clientpay_connect.cells import xlsx_text
from clientpay_connect.postings.present import status_label
from clientpay_connect.reports.reconciliation import (
    FIGURE_LABELS,
    FIGURES,
    Figure,
    Line,
    Period,
    Report,
)
from clientpay_connect.sent.export import (
    DATE_FORMAT,
    TIMESTAMP_FORMAT,
    amount_format,
    decimal_amount,
    set_up_sheet,
    typed_cell,
)
from clientpay_connect.sent.present import local_naive

SUMMARY_COLUMNS: list[tuple[str, int]] = [
    ("From", 12),
    ("To", 12),
    ("Merchant Account", 26),
    ("Connection", 24),
    ("Currency", 10),
] + [
    (f"{FIGURE_LABELS[name]} {part}", 12 if part == "Count" else 15)
    for name in FIGURES
    for part in ("Count", "Amount")
]
TOTAL = "Total"
POSTINGS_COLUMNS: list[tuple[str, int]] = [
    ("Received On", 13),
    ("Posting", 9),
    ("Receipt Number", 18),
    ("Payer", 26),
    ("Merchant Account", 26),
    ("Connection", 24),
    ("Figure", 12),
    ("Status", 16),
    ("Amount", 14),
    ("Currency", 10),
    ("Invoices", 40),
    ("Key", 22),
    ("Reason", 40),
    ("Posted At", 18),
]


def export_filename(period: Period) -> str:
    return f"reconciliation-{period.start.isoformat()}-to-{period.end.isoformat()}.xlsx"


def write_workbook(
    report: Report,
    lines: Iterable[Line],
    zone: ZoneInfo,
    target: IO[bytes],
) -> None:
    workbook = Workbook(write_only=True)
    summary: WriteOnlyWorksheet = workbook.create_sheet("Summary")
    set_up_sheet(summary, SUMMARY_COLUMNS)
    for group in report.groups:
        summary.append(
            _summary_row(
                summary,
                report.period,
                [group.merchant_account_name, group.connection_name, group.currency],
                group.figures,
                group.currency,
            )
        )
    for currency, figures in report.totals.items():
        summary.append(
            _summary_row(summary, report.period, [TOTAL, "", currency], figures, currency)
        )
    postings: WriteOnlyWorksheet = workbook.create_sheet("Postings")
    set_up_sheet(postings, POSTINGS_COLUMNS)
    for line in lines:
        postings.append(_posting_row(postings, line, report, zone))
    workbook.save(target)


def _summary_row(
    sheet: WriteOnlyWorksheet,
    period: Period,
    labels: list[str],
    figures: dict[str, Figure],
    currency: str,
) -> list[Any]:
    money = amount_format(currency)
    row: list[Any] = [
        typed_cell(sheet, period.start, DATE_FORMAT),
        typed_cell(sheet, period.end, DATE_FORMAT),
        *(xlsx_text(label) for label in labels),
    ]
    for name in FIGURES:
        row.append(figures[name].count)
        row.append(typed_cell(sheet, decimal_amount(figures[name].amount, currency), money))
    return row


def _posting_row(
    sheet: WriteOnlyWorksheet, line: Line, report: Report, zone: ZoneInfo
) -> list[Any]:
    posting = line.posting
    money = amount_format(posting.currency)
    invoices = "; ".join(
        f"{a.get('invoice_number') or a['invoice_id']} "
        f"{decimal_amount(int(a['amount']), posting.currency)}"
        for a in posting.allocations
    )
    return [
        typed_cell(sheet, posting.received_on, DATE_FORMAT),
        posting.id,
        xlsx_text(line.receipt_number),
        xlsx_text(line.payer_name),
        xlsx_text(report.account_names.get(line.merchant_account_id, "")),
        xlsx_text(report.connection_names.get(posting.connection_id or 0, "")),
        xlsx_text(FIGURE_LABELS.get(line.figure, "")),
        xlsx_text(status_label(posting.status)),
        typed_cell(sheet, decimal_amount(posting.amount_minor, posting.currency), money),
        xlsx_text(posting.currency),
        xlsx_text(invoices),
        xlsx_text(posting.key),
        xlsx_text(posting.removed_reason or posting.reason),
        typed_cell(sheet, local_naive(posting.posted_at, zone), TIMESTAMP_FORMAT),
    ]
