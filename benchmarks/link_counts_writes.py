"""What the triggers that keep link_counts (migration 0028) cost a single-row write: the
payment claim (outstanding -> processing), an update that moves no count (a link opened),
and a Quick Link's INSERT, each with the triggers and without them (dropped in a transaction
that is rolled back), in the same run.

    CLIENTPAY_BENCH_DATABASE_URL=postgresql+psycopg://… .venv/bin/python \\
        benchmarks/link_counts_writes.py [--statements 2000] [--repeat 3]

Each variant runs --statements statements, one row each, in one transaction (the trigger's
cost is per statement; a commit's is the same either way), and keeps the fastest of
--repeat runs; the variants alternate so that neither always runs on the warmer cache.
Prints microseconds per statement (wall, and the server process's CPU when the server is on
this machine) and the load average.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks._setup import bench_session, bench_settings, seed_firm  # noqa: E402
from benchmarks.bulk_links_pg import backend_cpu_seconds  # noqa: E402

LINK_COLUMNS = (
    "firm_id, merchant_account_id, source, token_hash, token_encrypted, amount_minor,"
    " amount_paid_minor, amount_refunded_minor, refunds_claimed_minor, currency,"
    " invoice_number, recipient_name, emails, message, locale, status, email_status,"
    " created_at, reminders_sent, reminders_off"
)
LINK_VALUES = (
    "%(firm)s, %(account)s, 'quick_link', md5(random()::text || %(n)s), '', 100, 0, 0, 0,"
    " 'USD', '', '', '[]', '', 'en', 'outstanding', 'not_sent', now(), 0, false"
)
WRITES = {
    "claim (outstanding -> processing)": (
        "UPDATE payment_links SET status = 'processing', processing_started_at = now()"
        " WHERE id = %(id)s AND status = 'outstanding'"
    ),
    "update moving no count (opened)": (
        "UPDATE payment_links SET last_opened_at = now() WHERE id = %(id)s"
    ),
    "insert one link (Quick Link)": (
        f"INSERT INTO payment_links ({LINK_COLUMNS}) VALUES ({LINK_VALUES})"  # noqa: S608
    ),
}


def _as_bound(sql: str) -> str:
    """psycopg's %(name)s placeholders as SQLAlchemy's :name."""
    return sql.replace("%(", ":").replace(")s", "")


def seed(settings: dict[str, str], count: int) -> dict[str, Any]:
    import zope.sqlalchemy
    from sqlalchemy import text

    with bench_session(settings) as session:
        seeded = seed_firm(session)
        ids = {"firm": seeded["firm"].id, "account": seeded["account"].id}
        session.execute(
            text(
                f"INSERT INTO payment_links ({LINK_COLUMNS})"  # noqa: S608
                f" SELECT {_as_bound(LINK_VALUES.replace('%(n)s', 'n'))}"
                " FROM generate_series(1, :count) AS n"
            ),
            {**ids, "count": count},
        )
        # A text() statement goes unseen by zope.sqlalchemy: without this the commit rolls back.
        zope.sqlalchemy.mark_changed(session)
    return ids


def run(
    engine: Any, ids: dict[str, Any], statement: str, count: int, triggers: bool
) -> tuple[float, float]:
    """Microseconds per statement (wall, server CPU), rolled back."""
    with engine.connect() as connection:
        transaction = connection.begin()
        if not triggers:
            for event in ("insert", "delete", "update"):
                connection.exec_driver_sql(f"DROP TRIGGER count_links_{event} ON payment_links")
        link_ids = list(
            connection.exec_driver_sql(
                "SELECT id FROM payment_links WHERE status = 'outstanding' ORDER BY id LIMIT %(n)s",
                {"n": count},
            ).scalars()
        )
        backend = int(connection.exec_driver_sql("SELECT pg_backend_pid()").scalar_one())
        cursor = connection.connection.cursor()
        cpu_before = backend_cpu_seconds(backend)
        started = time.perf_counter()
        for n, link_id in enumerate(link_ids):
            cursor.execute(statement, {**ids, "id": link_id, "n": n})
        wall = time.perf_counter() - started
        cpu = backend_cpu_seconds(backend) - cpu_before
        transaction.rollback()
    return wall / count * 1e6, cpu / count * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--statements", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    if not os.environ.get("CLIENTPAY_BENCH_DATABASE_URL"):
        parser.error("set CLIENTPAY_BENCH_DATABASE_URL to a PostgreSQL server's URL")
    from sqlalchemy import create_engine

    with tempfile.TemporaryDirectory() as tmp, bench_settings(Path(tmp)) as settings:
        ids = seed(settings, args.statements)
        engine = create_engine(settings["sqlalchemy.url"])
        print(f"{args.statements:,} single-row statements a run, fastest of {args.repeat}:")
        print(f"  {'':<36} {'with triggers':>22} {'without':>22} {'difference':>12}")
        for label, statement in WRITES.items():
            runs: dict[bool, list[tuple[float, float]]] = {True: [], False: []}
            for n in range(args.repeat):
                for triggers in (True, False) if n % 2 else (False, True):
                    runs[triggers].append(run(engine, ids, statement, args.statements, triggers))
            (w1, c1), (w0, c0) = min(runs[True]), min(runs[False])
            print(
                f"  {label:<36} {w1:7.0f} µs (CPU {c1:4.0f} µs) {w0:7.0f} µs (CPU {c0:4.0f} µs)"
                f" {w1 - w0:+7.0f} µs   load {os.getloadavg()[0]:.1f}"
            )
        engine.dispose()


if __name__ == "__main__":
    main()
