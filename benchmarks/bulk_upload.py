"""Benchmark: a 100,000-row CSV read, validated and turned into payment links end to end,
against inserting the same rows with the raw database driver, in the same run.

    .venv/bin/python benchmarks/bulk_upload.py [--rows 100000]

Ours is what production does with such a file: the upload (read, validate, store every row
with its problems) in one transaction, then Generate Links, which is a job above
clientpay.bulk.inline_rows (run at once here): a secret per link, hashed and encrypted, the
links and the rows' references written in one transaction. The baseline reads the same file
with the csv module and inserts its rows into a plain table: sqlite3 ``executemany`` on
SQLite, psycopg ``COPY`` on PostgreSQL. Each side runs in a process of its own, so its peak
memory (ru_maxrss) is its own.

Prints both times, the ratio and our peak memory. Targets: <= 3 s on SQLite and <= 5 s on
PostgreSQL end to end, peak memory under 300 MB. Set CLIENTPAY_BENCH_DATABASE_URL to a
PostgreSQL server URL (postgresql+psycopg://…) to run on PostgreSQL; a fresh database is
made on it and dropped afterwards.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks._setup import bench_session, bench_settings, seed_firm  # noqa: E402

HEADER = (
    "Invoice Number",
    "Invoice Date",
    "Due Date",
    "Recipient Name",
    "Amount",
    "Email Address",
    "Custom Message",
)
BASELINE_TABLE = (
    "CREATE TABLE bench_rows (row_number integer, invoice_number text, invoice_date text, "
    "due_date text, recipient_name text, amount text, email text, message text)"
)
BASELINE_INSERT = (
    "INSERT INTO bench_rows (row_number, invoice_number, invoice_date, due_date, "
    "recipient_name, amount, email, message) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)
BASELINE_COPY = (
    "COPY bench_rows (row_number, invoice_number, invoice_date, due_date, recipient_name, "
    "amount, email, message) FROM STDIN"
)
BASELINE_INSERT = (
    "INSERT INTO bench_rows (row_number, invoice_number, invoice_date, due_date, "
    "recipient_name, amount, email, message) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)
BASELINE_COPY = (
    "COPY bench_rows (row_number, invoice_number, invoice_date, due_date, recipient_name, "
    "amount, email, message) FROM STDIN"
)


def make_csv(rows: int) -> bytes:
    """Invoices as a firm's spreadsheet has them: a few dates, varied amounts, one address."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(HEADER)
    for i in range(rows):
        writer.writerow(
            (
                f"INV-{100000 + i}",
                f"2025-03-{1 + i % 28:02d}",
                f"4/{1 + i % 30}/2025",
                f"Client {i} LLC",
                f"${1 + i % 5000:,}.{i % 100:02d}",
                f"client{i}@example.com",
                "Thank you for your business." if i % 3 == 0 else "",
            )
        )
    return ("\ufeff" + out.getvalue()).encode("utf-8")


# --- the parent: a database, the file, both sides -----------------------------------------


def prepare(folder: Path, rows: int) -> tuple[dict[str, str], dict[str, int], Path, Any]:
    database = bench_settings(
        folder,
        **{
            # The job runs as soon as Generate commits, in this process: timed with the rest.
            "clientpay.jobs.immediate": "true",
            "clientpay.jobs.name": "bench-bulk",
        },
    )
    settings = database.__enter__()
    ids = seed(settings)
    path = folder / "invoices.csv"
    path.write_bytes(make_csv(rows))
    return settings, ids, path, database


def seed(settings: dict[str, str]) -> dict[str, int]:
    with bench_session(settings) as session:
        seeded = seed_firm(session)
        return {
            "firm_id": seeded["firm"].id,
            "user_id": seeded["user"].id,
            "account_id": seeded["account"].id,
        }


def run_part(part: str, settings: dict[str, str], ids: dict[str, int], path: Path) -> Any:
    """Run one side in a child process; its JSON answer and its own peak memory."""
    env = {**os.environ, "BENCH": json.dumps({"settings": settings, "ids": ids})}
    child = subprocess.run(
        [sys.executable, __file__, "--part", part, "--file", str(path)],
        env=env,
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(child.stdout.strip().splitlines()[-1])


# --- the children -----------------------------------------------------------------------------


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KB on Linux


def baseline(settings: dict[str, str], path: Path) -> dict[str, float]:
    url = settings["sqlalchemy.url"]
    cpu_started = time.process_time()
    started = time.perf_counter()
    text = path.read_bytes().decode("utf-8-sig")
    records = [(number, *cells) for number, cells in enumerate(csv.reader(io.StringIO(text)), 1)][
        1:
    ]
    parsed = time.perf_counter()
    if url.startswith("sqlite"):
        _sqlite_executemany(url.removeprefix("sqlite:///"), records)
    else:
        _postgresql_copy(url, records)
    done = time.perf_counter()
    return {
        "seconds": done - started,
        "cpu_seconds": time.process_time() - cpu_started,
        "insert_seconds": done - parsed,
        "rows": len(records),
    }


def _sqlite_executemany(database: str, records: list[tuple[Any, ...]]) -> None:
    import sqlite3

    connection = sqlite3.connect(database)
    # The app's own settings, for a fair comparison.
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA synchronous=NORMAL")
    connection.execute(BASELINE_TABLE)
    with connection:
        connection.executemany(BASELINE_INSERT, records)
    connection.close()


def _postgresql_copy(url: str, records: list[tuple[Any, ...]]) -> None:
    import psycopg
    from sqlalchemy import make_url

    parts = make_url(url)
    with psycopg.connect(
        host=parts.host, port=parts.port, user=parts.username, password=parts.password,
        dbname=parts.database,
    ) as connection:  # fmt: skip
        connection.execute(BASELINE_TABLE)
        with connection.cursor() as cursor, cursor.copy(BASELINE_COPY) as copy:
            for record in records:
                copy.write_row(record)
        connection.commit()


def ours(settings: dict[str, str], ids: dict[str, int], path: Path) -> dict[str, Any]:
    from clientpay_connect import main
    from clientpay_connect.admin.models import MerchantAccount
    from clientpay_connect.bulk.actions import ACTION_GENERATE, take_action
    from clientpay_connect.bulk.models import BulkUpload
    from clientpay_connect.bulk.services import (
        check_file,
        counts,
        firm_upload,
        outstanding_invoice_numbers,
        store_upload,
    )
    from clientpay_connect.work import Work

    app = main({}, **settings)
    registry = app.registry
    before_mb = peak_mb()
    cpu_started = time.process_time()
    started = time.perf_counter()
    with Work.fresh(registry) as work:
        account = work.dbsession.get(MerchantAccount, ids["account_id"])
        outstanding = outstanding_invoice_numbers(work.dbsession, ids["firm_id"])
        parsed, rows = check_file(path.read_bytes(), currency="USD", outstanding=outstanding)
        checked = time.perf_counter()
        upload = store_upload(
            work.dbsession,
            firm_id=ids["firm_id"],
            user_id=ids["user_id"],
            account=account,
            filename=path.name,
            parsed=parsed,
            rows=rows,
        )
        upload_id = upload.id
        errors = sum(1 for row in rows if row.errors)
        del parsed, rows
    stored = time.perf_counter()
    with Work.fresh(registry) as work:
        upload = firm_upload(work.dbsession, ids["firm_id"], upload_id, lock=True)
        assert upload is not None
        outcome = take_action(
            work, upload, ACTION_GENERATE, user_id=ids["user_id"], confirm_warnings=True
        )
    # The job ran when that transaction committed.
    done = time.perf_counter()
    cpu = time.process_time() - cpu_started
    with Work.fresh(registry) as work:
        final = work.dbsession.get(BulkUpload, upload_id)
        assert final is not None
        made = counts(work.dbsession, upload_id).links
        status = final.status
    registry["dbengine"].dispose()
    return {
        "seconds": done - started,
        "cpu_seconds": cpu,
        "read_validate_seconds": checked - started,
        "store_seconds": stored - checked,
        "links_seconds": done - stored,
        "rows_with_errors": errors,
        "links": made,
        "status": status,
        "path": outcome.result,
        "before_mb": before_mb,
        "peak_mb": peak_mb(),
    }


def child(part: str, path: Path) -> None:
    bench = json.loads(os.environ["BENCH"])
    if part == "baseline":
        result = baseline(bench["settings"], path)
    else:
        result = ours(bench["settings"], bench["ids"], path)
    print(json.dumps(result))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--part", choices=["baseline", "ours"])
    parser.add_argument("--file")
    args = parser.parse_args()
    if args.part:
        child(args.part, Path(args.file))
        return
    with tempfile.TemporaryDirectory() as tmp:
        settings, ids, path, database = prepare(Path(tmp), args.rows)
        try:
            raw = run_part("baseline", settings, ids, path)
            our = run_part("ours", settings, ids, path)
        finally:
            database.__exit__(None, None, None)
    kind = "PostgreSQL" if not settings["sqlalchemy.url"].startswith("sqlite") else "SQLite"
    target = 3.0 if kind == "SQLite" else 5.0
    driver = "sqlite3 executemany" if kind == "SQLite" else "psycopg COPY"
    print(f"{args.rows:,} rows on {kind}")
    print(
        f"baseline ({driver})  : {raw['seconds']:6.2f} s  "
        f"(csv.reader {raw['seconds'] - raw['insert_seconds']:.2f} s + insert "
        f"{raw['insert_seconds']:.2f} s)"
    )
    print(
        f"ours, end to end          : {our['seconds']:6.2f} s  (read + validate "
        f"{our['read_validate_seconds']:.2f} s, store rows {our['store_seconds']:.2f} s, "
        f"make links {our['links_seconds']:.2f} s)   target <= {target:.0f} s"
    )
    print(f"ratio (ours / baseline)   : {our['seconds'] / raw['seconds']:6.1f}")
    # On a busy machine wall time includes waiting for a core; this process's CPU time does
    # not (on SQLite it includes the database's work, which runs in-process).
    print(
        f"CPU time of each process  : baseline {raw['cpu_seconds']:.2f} s, "
        f"ours {our['cpu_seconds']:.2f} s, load average {os.getloadavg()[0]:.1f}"
    )
    print(
        f"our peak memory           : {our['peak_mb']:6.0f} MB (ru_maxrss; "
        f"{our['before_mb']:.0f} MB before the file)   target < 300 MB"
    )
    print(
        f"links made: {our['links']:,} ({our['status']}, by the {our['path']} job); "
        f"rows with errors: {our['rows_with_errors']}"
    )


if __name__ == "__main__":
    main()
