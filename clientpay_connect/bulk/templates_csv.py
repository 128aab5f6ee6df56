"""The downloadable Bulk Upload templates: template.csv (comma) and template.txt (tab).

Both are UTF-8 with a BOM, so that Excel shows accented names correctly when it opens them,
and CRLF line endings, as Excel writes. The example rows show what the reader accepts: an
ISO date and a US one, a plain amount and a formatted one, two addresses in one cell, and a
message with a comma in it (quoted).
"""

from __future__ import annotations

import csv
import io

from clientpay_connect.bulk.reader import FIELD_LABELS, FIELDS

TEMPLATE_HEADERS: tuple[str, ...] = tuple(FIELD_LABELS[field] for field in FIELDS)
EXAMPLE_ROWS: tuple[tuple[str, ...], ...] = (
    (
        "INV-1001",
        "2025-01-15",
        "2025-02-14",
        "Jane Doe",
        "1250.00",
        "jane.doe@example.com",
        "Thank you for your business.",
    ),
    (
        "INV-1002",
        "1/20/2025",
        "2/19/2025",
        "Acme Holdings LLC",
        "$2,400.50",
        "ap@acme.example; cfo@acme.example",
        "Retainer for March, as agreed.",
    ),
)


def _template(delimiter: str) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, delimiter=delimiter, lineterminator="\r\n")
    writer.writerow(TEMPLATE_HEADERS)
    writer.writerows(EXAMPLE_ROWS)
    return ("\ufeff" + out.getvalue()).encode("utf-8")


TEMPLATE_CSV: bytes = _template(",")
TEMPLATE_TXT: bytes = _template("\t")

# File name → (content, content type), for the two download routes.
TEMPLATES: dict[str, tuple[bytes, str]] = {
    "template.csv": (TEMPLATE_CSV, "text/csv; charset=utf-8"),
    "template.txt": (TEMPLATE_TXT, "text/plain; charset=utf-8"),
}
