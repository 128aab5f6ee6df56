"""Where PostgreSQL spends the time of making 100,000 bulk links: the writing transaction of
the links' job, timed with every index and foreign key of payment_links, then without each in
turn (and without the triggers that keep link_counts), with the WAL it wrote; EXPLAIN
(ANALYZE, BUFFERS, WAL) of its first chunk; and the upload's store of its rows, with and
without bulk_rows' foreign key and unique index.

    CLIENTPAY_BENCH_DATABASE_URL=postgresql+psycopg://… .venv/bin/python \\
        benchmarks/bulk_links_pg.py [--rows 100000] [--repeat 2]

Each variant runs the app's own make_links (writer.py) in a transaction that empties
payment_links (TRUNCATE: new, empty files for the table and its indexes), drops the index or
constraint and is rolled back afterwards, so every variant starts from the same empty tables,
as the first upload of a new database does. (Rolled back without the TRUNCATE, each variant
left its links behind as dead entries in every index, and each later variant paid more for
them: the "CPU saved" of the last variants came out negative.) What a variant saves is what
that index or constraint costs the load (in the CPU time of the server process serving the
connection, when the server is on this machine): for weighing an index on payment_links
against the time bulk uploads pay for it. On a shared machine the times are noisy: --repeat
runs every variant once a round, that many rounds, and keeps the fastest of each. The WAL of
a variant is the server's, all databases together (pg_current_wal_insert_lsn): exact on a
server of its own; the WAL line of the EXPLAIN is the statement's own.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import select  # noqa: E402

from benchmarks._setup import bench_settings  # noqa: E402
from benchmarks.bulk_upload import make_csv, seed  # noqa: E402
from clientpay_connect.bulk.services import check_file  # noqa: E402

EXPLAIN = "EXPLAIN (ANALYZE, BUFFERS, WAL) "


@contextmanager
def app_with_upload(folder: Path, rows: int) -> Iterator[tuple[Any, int]]:
    from clientpay_connect import main
    from clientpay_connect.admin.models import MerchantAccount
    from clientpay_connect.bulk.services import check_file, store_upload
    from clientpay_connect.work import Work

    with bench_settings(folder) as settings:
        ids = seed(settings)
        app = main({}, **settings)
        with Work.fresh(app.registry) as work:
            account = work.dbsession.get(MerchantAccount, ids["account_id"])
            assert account is not None
            parsed, checked = check_file(make_csv(rows), currency="USD", outstanding=())
            upload = store_upload(
                work.dbsession, firm_id=ids["firm_id"], user_id=ids["user_id"],
                account=account, filename="bench.csv", parsed=parsed, rows=checked,
            )  # fmt: skip
            upload_id = upload.id
        try:
            yield app, upload_id
        finally:
            app.registry["dbengine"].dispose()


def variants(connection: Any) -> list[tuple[str, list[str]]]:
    """(what is left out, the statements that leave it out) for every index and foreign key."""
    indexes = connection.exec_driver_sql(
        "SELECT indexname FROM pg_indexes WHERE tablename = 'payment_links' "
        "AND indexname <> 'pk_payment_links' ORDER BY indexname"
    ).scalars()
    keys = connection.exec_driver_sql(
        "SELECT conname FROM pg_constraint WHERE conrelid = 'payment_links'::regclass "
        "AND contype = 'f' ORDER BY conname"
    ).scalars()
    triggers = connection.exec_driver_sql(
        "SELECT tgname FROM pg_trigger WHERE tgrelid = 'payment_links'::regclass "
        "AND NOT tgisinternal ORDER BY tgname"
    ).scalars()
    trigger_drops = [f"DROP TRIGGER {name} ON payment_links" for name in triggers]
    index_drops = []
    for name in indexes:
        # A UNIQUE constraint's index goes with its constraint.
        if name.startswith("uq_payment_links_token"):
            index_drops.append(f"ALTER TABLE payment_links DROP CONSTRAINT {name}")
        else:
            index_drops.append(f"DROP INDEX {name}")
    key_drops = [f"ALTER TABLE payment_links DROP CONSTRAINT {name}" for name in keys]
    each = [(drop.rsplit(" ", 1)[1], [drop]) for drop in index_drops + key_drops]
    return [
        ("nothing (as in production)", []),
        *each,
        ("every trigger (the link counts')", trigger_drops),
        ("every secondary index", index_drops),
        ("every foreign key", key_drops),
        ("every secondary index and foreign key", index_drops + key_drops),
    ]


@contextmanager
def rolled_back(app: Any) -> Iterator[Any]:
    import transaction

    from clientpay_connect.db import get_tm_session
    from clientpay_connect.work import Work

    tm = transaction.TransactionManager(explicit=True)
    tm.begin()
    try:
        yield Work(app.registry, get_tm_session(app.registry["dbsession_factory"], tm), tm)
    finally:
        tm.abort()


def backend_cpu_seconds(pid: int) -> float:
    """The CPU time of the server process serving our connection, when the server runs on
    this machine (loopback): unlike wall time, hardly changed by others' load. NaN if not."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class Spent:
    """What a block cost: wall seconds, the CPU seconds of the server process serving the
    connection, and the WAL the server wrote meanwhile (bytes)."""

    seconds: float = 0.0
    cpu: float = 0.0
    wal: int = 0


@contextmanager
def measured(connection: Any) -> Iterator[Spent]:
    spent = Spent()
    backend = int(connection.exec_driver_sql("SELECT pg_backend_pid()").scalar_one())
    wal_before = connection.exec_driver_sql("SELECT pg_current_wal_insert_lsn()").scalar()
    cpu_before = backend_cpu_seconds(backend)
    started = time.perf_counter()
    yield spent
    spent.seconds = time.perf_counter() - started
    spent.cpu = backend_cpu_seconds(backend) - cpu_before
    spent.wal = int(
        connection.exec_driver_sql(
            "SELECT pg_wal_lsn_diff(pg_current_wal_insert_lsn(), %(lsn)s)", {"lsn": wal_before}
        ).scalar()
    )


def make_links_once(app: Any, upload_id: int, drops: list[str]) -> tuple[float, float, int]:
    """Seconds, the server's CPU seconds and WAL bytes of the links' writing, after
    ``drops``, rolled back."""
    from clientpay_connect.bulk.models import BulkUpload
    from clientpay_connect.bulk.writer import live_row_ids, make_links, prepare_secrets

    with rolled_back(app) as work:
        connection = work.dbsession.connection()
        connection.exec_driver_sql("TRUNCATE payment_links CASCADE")
        for statement in drops:
            connection.exec_driver_sql(statement)
        upload = work.dbsession.get(BulkUpload, upload_id)
        upload.action = "generate"
        row_ids = live_row_ids(work.dbsession, upload_id)
        secrets = prepare_secrets(app.registry, len(row_ids))
        with measured(connection) as spent:
            make_links(work, upload, row_ids, secrets, None)
    return spent.seconds, spent.cpu, spent.wal


# What the upload's store of its rows pays for, besides the rows themselves.
ROW_VARIANTS = [
    ("nothing (as in production)", []),
    (
        "fk_bulk_rows_upload_id_bulk_uploads",
        ["ALTER TABLE bulk_rows DROP CONSTRAINT fk_bulk_rows_upload_id_bulk_uploads"],
    ),
    ("ix_bulk_rows_upload_row", ["DROP INDEX ix_bulk_rows_upload_row"]),
]


def store_rows_once(app: Any, checked: Any, drops: list[str]) -> tuple[float, float, int]:
    """Seconds, the server's CPU seconds and WAL bytes of storing an upload's rows (with
    their statistics), after ``drops``, rolled back."""
    from clientpay_connect.admin.models import MerchantAccount
    from clientpay_connect.bulk.services import store_upload

    parsed, rows = checked
    with rolled_back(app) as work:
        connection = work.dbsession.connection()
        for statement in drops:
            connection.exec_driver_sql(statement)
        account = work.dbsession.execute(select(MerchantAccount)).scalars().first()
        with measured(connection) as spent:
            store_upload(
                work.dbsession, firm_id=account.firm_id, user_id=None, account=account,
                filename="bench.csv", parsed=parsed, rows=rows,
            )  # fmt: skip
    return spent.seconds, spent.cpu, spent.wal


def explain_first_chunk(app: Any, upload_id: int) -> list[str]:
    """The plan of the first INSERT … SELECT of the links, as it ran (EXPLAIN ANALYZE runs
    it), with its buffers, its WAL and each foreign key's trigger time."""
    from sqlalchemy import event

    from clientpay_connect.bulk.models import BulkUpload
    from clientpay_connect.bulk.writer import live_row_ids, make_links

    plan: list[str] = []
    engine = app.registry["dbengine"]

    def explain(conn: Any, cursor: Any, statement: str, *args: Any) -> Any:
        if not plan and statement.startswith("INSERT INTO payment_links"):
            return EXPLAIN + statement, args[0]
        return statement, args[0]

    def collect(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if not plan and statement.startswith(EXPLAIN):
            plan.extend(row[0] for row in cursor.fetchall())

    event.listen(engine, "before_cursor_execute", explain, retval=True)
    event.listen(engine, "after_cursor_execute", collect)
    try:
        with rolled_back(app) as work:
            work.dbsession.connection().exec_driver_sql("TRUNCATE payment_links CASCADE")
            upload = work.dbsession.get(BulkUpload, upload_id)
            upload.action = "generate"
            make_links(work, upload, live_row_ids(work.dbsession, upload_id), [], None)
    finally:
        event.remove(engine, "before_cursor_execute", explain)
        event.remove(engine, "after_cursor_execute", collect)
    return plan


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    if not os.environ.get("CLIENTPAY_BENCH_DATABASE_URL"):
        parser.error("set CLIENTPAY_BENCH_DATABASE_URL to a PostgreSQL server's URL")
    with (
        tempfile.TemporaryDirectory() as tmp,
        app_with_upload(Path(tmp), args.rows) as (
            app,
            upload_id,
        ),
    ):
        print(f"The first chunk's INSERT … SELECT ({args.rows:,} rows uploaded):")
        print("\n".join("  " + line for line in explain_first_chunk(app, upload_id)))
        with app.registry["dbengine"].connect() as connection:
            tried = variants(connection)
        print(f"\nMaking {args.rows:,} links (the writing transaction), leaving out:")
        print_variants(tried, args.repeat, lambda drops: make_links_once(app, upload_id, drops))
        print(f"\nStoring {args.rows:,} rows (the upload's transaction), leaving out:")
        checked = check_file(make_csv(args.rows), currency="USD", outstanding=())
        print_variants(
            ROW_VARIANTS, args.repeat, lambda drops: store_rows_once(app, checked, drops)
        )


def print_variants(
    tried: list[tuple[str, list[str]]],
    repeat: int,
    run: Callable[[list[str]], tuple[float, float, int]],
) -> None:
    """Each variant's wall time, server CPU time and WAL, the least of ``repeat`` runs."""
    print(f"  {'':<50} {'wall':>8} {'server CPU':>11} {'CPU saved':>10} {'WAL':>9}")
    # Round after round of every variant, rather than one variant's repeats in a row: a
    # burst of others' load then weighs on every variant alike.
    runs: dict[str, list[tuple[float, float, int]]] = {label: [] for label, _ in tried}
    for _ in range(repeat):
        for label, drops in tried:
            runs[label].append(run(drops))
    full = min(cpu for _, cpu, _ in runs[tried[0][0]])
    for label, _ in tried:
        seconds = min(wall for wall, _, _ in runs[label])
        cpu = min(cpu for _, cpu, _ in runs[label])
        wal = min(wal for _, _, wal in runs[label])
        print(
            f"  {label:<50} {seconds:6.2f} s {cpu:9.2f} s {full - cpu:8.2f} s {wal / 2**20:6.1f} MB"
        )
    print(f"  (the least of {repeat} of each; load average {os.getloadavg()[0]:.1f})")


if __name__ == "__main__":
    main()
