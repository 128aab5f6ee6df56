"""Benchmark: the Smart Reminders job over 1,000,000 links, against the bare SQL query that
picks its candidates, in the same run.

    .venv/bin/python benchmarks/reminders.py [--links 1000000]

One firm with a four-reminder schedule (3 days before, 1 and 7 days after the due date, 7
days after sending). Its links are a background of old links (due in 2025-2027, three in
five outstanding) and four groups due in 2030 whose "1 day after" reminder falls due on a
Wednesday: 1,000, 1,000, 10,000 and 30,000 links. The job is run (as the worker runs it:
its own transactions, the outbox rows and the link_reminders rows written, the deliveries
queued) on each group's day:

- 1,000 due with a tenth of the background, then 1,000 due with all of it: the same time,
  whatever the number of links;
- 10,000 and 30,000 due: the time grows with the reminders due;
- a day with nothing due: next to nothing.

The baseline is the job's candidate query alone (bare SQL through the same index), timed on
the same day before the job runs. On PostgreSQL its plan is printed. Target: the largest run
under 30 s. Set CLIENTPAY_BENCH_DATABASE_URL to a PostgreSQL server URL
(postgresql+psycopg://...) to run on PostgreSQL; a fresh database is made and dropped.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks._setup import bench_session, bench_settings, seed_firm  # noqa: E402

ZONE = ZoneInfo("America/New_York")
SCHEDULE = [
    {"days": -3, "relative_to": "due_date", "message": "Due in three days."},
    {"days": 1, "relative_to": "due_date", "message": "Due yesterday."},
    {"days": 7, "relative_to": "due_date", "message": "A week overdue."},
    {"days": 7, "relative_to": "sent", "message": "Sent a week ago."},
]
# Tuesdays four weeks apart: each group's "+1" falls on a Wednesday, and no group is inside
# another's catch-up window.
GROUPS = [
    ("1,000 due, a tenth of the links", dt.date(2030, 3, 5), 1_000),
    ("1,000 due, all the links", dt.date(2030, 4, 2), 1_000),
    ("10,000 due", dt.date(2030, 4, 30), 10_000),
    ("30,000 due", dt.date(2030, 5, 28), 30_000),
]
NOTHING_DUE_DAY = dt.date(2030, 6, 26)
SENT = dt.datetime(2029, 12, 3, 15, 0, tzinfo=dt.UTC)

COLUMNS = (
    "firm_id, merchant_account_id, source, token_hash, token_encrypted, amount_minor, "
    "amount_paid_minor, currency, invoice_number, recipient_name, emails, message, locale, "
    "status, email_status, created_at, sent_at, reminders_sent, reminders_off, due_date"
)
# Three in five outstanding, the rest paid or cancelled; or all outstanding.
MIXED = "CASE WHEN {n} % 5 < 3 THEN 'outstanding' WHEN {n} % 5 = 3 THEN 'paid' ELSE 'cancelled' END"
# Built from the constants above only; the values travel as bound parameters.
POSTGRESQL_SEED = f"""
INSERT INTO payment_links ({COLUMNS})
SELECT :firm, :account, 'quick_link', md5(:tag || g::text), 'unused', 10000, 0, 'USD', '', '',
       '["client@example.test"]'::json, '', 'en', {{status}}, 'sent', :sent, :sent, 0, false,
       CAST(:first AS date) + (g % :days)
FROM generate_series(1, :count) AS g
"""  # noqa: S608
SQLITE_SEED = f"""
WITH RECURSIVE g(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM g WHERE n < :count)
INSERT INTO payment_links ({COLUMNS})
SELECT :firm, :account, 'quick_link', :tag || n, 'unused', 10000, 0, 'USD', '', '',
       '["client@example.test"]', '', 'en', {{status}}, 'sent', :sent, :sent, 0, 0,
       date(:first, '+' || (n % :days) || ' days')
FROM g
"""  # noqa: S608


def seed_links(
    session: Any, ids: dict[str, int], tag: str, count: int, first: dt.date, days: int, mixed: bool
) -> None:
    import zope.sqlalchemy
    from sqlalchemy import text

    postgresql = session.bind.dialect.name == "postgresql"
    template = POSTGRESQL_SEED if postgresql else SQLITE_SEED
    status = MIXED.format(n="g" if postgresql else "n") if mixed else "'outstanding'"
    sent: Any = SENT if postgresql else SENT.strftime("%Y-%m-%d %H:%M:%S.%f")
    session.execute(
        text(template.format(status=status)),
        {
            "firm": ids["firm"],
            "account": ids["account"],
            "tag": tag,
            "sent": sent,
            "first": first.isoformat(),
            "days": days,
            "count": count,
        },
    )
    # A text() statement goes unseen by zope.sqlalchemy: without this the commit rolls back.
    zope.sqlalchemy.mark_changed(session)


def the_firm(settings: dict[str, str]) -> dict[str, int]:
    from clientpay_connect.admin.models import FirmSettings

    with bench_session(settings) as session:
        seeded = seed_firm(session)
        firm_settings = session.get(FirmSettings, seeded["firm"].id)
        assert firm_settings is not None
        firm_settings.time_zone = ZONE.key
        firm_settings.reminders = SCHEDULE
        return {"firm": seeded["firm"].id, "account": seeded["account"].id}


def add_background(settings: dict[str, str], ids: dict[str, int], tag: str, count: int) -> float:
    started = time.perf_counter()
    with bench_session(settings) as session:
        seed_links(session, ids, tag, count, dt.date(2025, 1, 1), 3 * 365, mixed=True)
    analyze(settings)
    return time.perf_counter() - started


def analyze(settings: dict[str, str]) -> None:
    """Fresh planner statistics, as autovacuum would have after such a load."""
    from sqlalchemy import create_engine

    if not settings["sqlalchemy.url"].startswith("postgresql"):
        return
    engine = create_engine(settings["sqlalchemy.url"], isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        connection.exec_driver_sql("VACUUM ANALYZE payment_links")
    engine.dispose()


def add_group(
    settings: dict[str, str], ids: dict[str, int], tag: str, due: dt.date, n: int
) -> None:
    with bench_session(settings) as session:
        seed_links(session, ids, tag, n, due, 1, mixed=False)


def run_moment(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(10, 0), tzinfo=ZONE).astimezone(dt.UTC)


def bare_query(app: Any, ids: dict[str, int], now: dt.datetime, explain: bool) -> float:
    """The candidate query of the "+1" reminder alone, every row fetched."""
    import transaction

    from clientpay_connect.db import get_tm_session
    from clientpay_connect.reminders.schedule import reminders_of
    from clientpay_connect.reminders.services import FirmRun, candidates

    run = FirmRun(ids["firm"], reminders_of(SCHEDULE), ZONE, now)
    query = candidates(run, run.reminders[1])
    tm = transaction.TransactionManager(explicit=True)
    with tm:
        session = get_tm_session(app.registry["dbsession_factory"], tm)
        started = time.perf_counter()
        rows = session.execute(query).all()
        seconds = time.perf_counter() - started
        bind = session.get_bind()
        if explain and bind.dialect.name == "postgresql":
            compiled = query.compile(bind, compile_kwargs={"render_postcompile": True})
            connection = session.connection()
            plan = connection.exec_driver_sql(f"EXPLAIN {compiled}", compiled.params).scalars()
            print("  plan of the candidate query:")
            for line in plan:
                print("    " + line)
    print(f"  bare candidate query: {len(rows):>6} rows in {seconds:7.3f} s")
    return seconds


def job_run(app: Any, now: dt.datetime) -> tuple[int, float]:
    from clientpay_connect.reminders.services import SEND_JOB

    started = time.perf_counter()
    sent: int = app.registry["clientpay.jobs"].run_now(SEND_JOB, now)
    return sent, time.perf_counter() - started


def link_count(settings: dict[str, str]) -> int:
    from sqlalchemy import func, select

    from clientpay_connect.links.models import PaymentLink

    with bench_session(settings) as session:
        return int(session.execute(select(func.count()).select_from(PaymentLink)).scalar_one())


def load() -> str:
    """The machine's load beside each figure: other work on it slows the database too."""
    one, five, _fifteen = os.getloadavg()
    return f"(load {one:.1f}, {five:.1f})"


def measure(
    app: Any,
    settings: dict[str, str],
    ids: dict[str, int],
    label: str,
    day: dt.date,
    explain: bool = False,
) -> float:
    now = run_moment(day)
    moment = f"{now.astimezone(ZONE):%a %Y-%m-%d %H:%M %Z}"
    print(f"{label} ({link_count(settings):,} links), the job at {moment}:")
    baseline = bare_query(app, ids, now, explain)
    sent, seconds = job_run(app, now)
    per = f"{seconds / sent * 1000:6.2f} ms per reminder" if sent else ""
    ratio = seconds / baseline if baseline else float("nan")
    print(f"  the job:              {sent:>6} sent in {seconds:7.3f} s  {per}  {load()}")
    print(f"  ({ratio:.0f}x the bare query: the job writes three rows per reminder)")
    again, again_seconds = job_run(app, now + dt.timedelta(minutes=10))
    print(f"  again 10 minutes later: {again} sent in {again_seconds:.3f} s")
    return seconds


class StatementLog:
    """What the job asked the database, as the client saw it: each statement's kind (its
    first words), how many round trips, how long they took."""

    def __init__(self) -> None:
        self.calls: dict[str, list[float]] = {}
        self._started: list[float] = []

    def before(self, *_args: Any) -> None:
        self._started.append(time.perf_counter())

    def after(self, _conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        kind = " ".join(statement.split()[:3])[:60]
        entry = self.calls.setdefault(kind, [0, 0.0])
        entry[0] += 1
        entry[1] += time.perf_counter() - self._started.pop()

    def report(self) -> None:
        print("  statements (round trips, seconds):")
        for kind, (count, seconds) in sorted(self.calls.items(), key=lambda i: -i[1][1]):
            print(f"    {count:>6} {seconds:8.3f} s  {kind}")


def server_counters(settings: dict[str, str]) -> dict[str, int]:
    """The database's own counts of commits and rows written (pg_stat_database)."""
    from sqlalchemy import create_engine

    engine = create_engine(settings["sqlalchemy.url"])
    with engine.connect() as connection:
        row = connection.exec_driver_sql(
            "SELECT xact_commit, tup_inserted, tup_updated, blks_hit + blks_read, "
            "(SELECT n_tup_hot_upd FROM pg_stat_user_tables WHERE relname = 'payment_links') "
            "FROM pg_stat_database WHERE datname = current_database()"
        ).one()
    engine.dispose()
    names = ("commits", "inserted", "updated", "blocks", "links_hot_updated")
    return dict(zip(names, row, strict=True))


def profile(settings: dict[str, str], due: int, links: int) -> None:
    """One group of ``due`` reminders among ``links`` links: the job under cProfile, its
    statements as the client sent them and, on PostgreSQL, the server's counters."""
    import cProfile
    import pstats

    from sqlalchemy import event

    from clientpay_connect import main as make_app

    ids = the_firm(settings)
    day = GROUPS[-1][1]
    add_group(settings, ids, "group-", day, due)
    add_background(settings, ids, "bg-", max(links - due, 0))
    app = make_app({}, **settings)
    try:
        job_run(app, run_moment(NOTHING_DUE_DAY))
        engine = app.registry["dbengine"]
        statements = StatementLog()
        event.listen(engine, "before_cursor_execute", statements.before)
        event.listen(engine, "after_cursor_execute", statements.after)
        postgresql = settings["sqlalchemy.url"].startswith("postgresql")
        counters = server_counters(settings) if postgresql else {}
        profiler = cProfile.Profile()
        profiler.enable()
        sent, seconds = job_run(app, run_moment(day + dt.timedelta(days=1)))
        profiler.disable()
        print(f"{due:,} due among {links:,} links: {sent} sent in {seconds:.3f} s {load()}")
        statements.report()
        if postgresql:
            after = server_counters(settings)
            print("  server:", {k: after[k] - counters[k] for k in after})
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(25)
        pstats.Stats(profiler).sort_stats("tottime").print_stats(15)
    finally:
        app.registry["dbengine"].dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--links", type=int, default=1_000_000)
    parser.add_argument(
        "--profile", type=int, metavar="DUE", help="profile one run of DUE reminders instead"
    )
    args = parser.parse_args()
    if args.profile:
        with tempfile.TemporaryDirectory() as folder, bench_settings(Path(folder)) as settings:
            profile(settings, args.profile, args.links)
        return
    background = args.links - sum(n for _label, _day, n in GROUPS)
    with tempfile.TemporaryDirectory() as folder, bench_settings(Path(folder)) as settings:
        from clientpay_connect import main as make_app

        ids = the_firm(settings)
        for index, (_label, due, count) in enumerate(GROUPS):
            add_group(settings, ids, f"group{index}-", due, count)
        seeded = add_background(settings, ids, "few-", background // 10)
        print(f"seeded {background // 10:,} background links in {seeded:.1f} s")
        app = make_app({}, **settings)
        try:
            # A first run (nothing due) so that no measured run pays for starting up.
            job_run(app, run_moment(NOTHING_DUE_DAY))
            times = [
                measure(app, settings, ids, GROUPS[0][0], GROUPS[0][1] + dt.timedelta(days=1), True)
            ]
            seeded = add_background(settings, ids, "many-", background - background // 10)
            print(
                f"seeded {background - background // 10:,} more background links in {seeded:.1f} s"
            )
            for label, due, _count in GROUPS[1:]:
                times.append(measure(app, settings, ids, label, due + dt.timedelta(days=1)))
            measure(app, settings, ids, "nothing due", NOTHING_DUE_DAY)
        finally:
            app.registry["dbengine"].dispose()
        print(
            f"1,000 due: {times[0]:.2f} s with a tenth of the links, {times[1]:.2f} s with all "
            f"of them; 10,000 due: {times[2]:.2f} s; 30,000 due: {times[3]:.2f} s "
            f"(target: under 30 s)"
        )


if __name__ == "__main__":
    main()
