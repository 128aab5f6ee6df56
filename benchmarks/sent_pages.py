"""Benchmark: Sent Pages over 1,000,000 links: GET /api/v1/links at any depth against the
bare SQL keyset query, the export of 100,000 rows, in the same run.

    .venv/bin/python benchmarks/sent_pages.py [--links 1000000] [--repeats 60] [--sorts a,-b]
        [--no-export | --export-only] [--profile SORT] [--profile-export] [--baseline DIR]

One firm, one million links (INSERT ... SELECT over generate_series), then VACUUM ANALYZE
as autovacuum would have run. For every sort of the query module (SORT_KINDS, each way) and
for a status view with a filter, three pages of 50: the first, one in the middle and the
last. A deep page needs a cursor: it is made from the SQL side (the sort key and id of the
row just before that page, found with OFFSET, untimed) as the API would have handed it out.

- ours: the page through the API (the whole app: token check, query, count, JSON), called
  as a WSGI server calls it (benchmarks/_wsgi.py: no test client's work in the time);
- bare: the statements that page's rows came from (captured from the engine as the API ran
  them: the keyset query, without the count and the JSON), run again straight through the
  driver's cursor.

Prints p50/p95 of both and the ratio of the p95s, each page timed --repeats times each way
(60: the p95 is the third slowest of them; of 15 it was the slowest, one hiccup of the
machine's). Targets: p95 < 50 ms at any depth, ratio
<= 3. Then the export (GET /api/v1/links/export.xlsx) of the 100,000 links on the firm's
second merchant account, in a process of its own: its time (target < 10 s) and its peak
memory (target < 200 MB): the peak of Python's allocations (tracemalloc, in a second run, as
it slows the first) and the process's peak resident size beyond what it had before.

--export-only skips the pages; --profile runs the export once more under cProfile and
prints its costliest functions; --baseline runs the same export with the code of another
checkout of the project too (``git worktree add /tmp/base main``), right after ours, so that
both are timed on the same data under the same load.

The reminders job over 1,000,000 links is benchmarked by benchmarks/reminders.py.

Set CLIENTPAY_BENCH_DATABASE_URL to a PostgreSQL server URL (postgresql+psycopg://...) to
run on PostgreSQL, the database the targets are for; a fresh database is made and dropped.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

CODE_VARIABLE = "CLIENTPAY_BENCH_CODE"

# The code measured: this checkout, or another one (--baseline) for the export's process.
ROOT = Path(os.environ.get(CODE_VARIABLE) or Path(__file__).resolve().parent.parent)
sys.path.insert(0, str(ROOT))

from benchmarks._recorder import Recorder, run_raw  # noqa: E402
from benchmarks._setup import bench_session, bench_settings, seed_firm  # noqa: E402
from benchmarks._wsgi import wsgi_get  # noqa: E402

TARGET_P95_MS = 50.0
TARGET_RATIO = 3.0
TARGET_EXPORT_SECONDS = 10.0
TARGET_EXPORT_MB = 200.0
LIMIT = 50
# One link in ten is on the second account: the export's 100,000 rows of a million.
EXPORT_EVERY = 10
PROFILE_LINES = 30
FILTERED = {"status": "outstanding", "filter[source]": "bulk_upload"}
# A few links by a second user, and a third user who made none: a sort by creator meets a
# value of very few links, and one of none.
RARE_EVERY = 100_000

COLUMNS = (
    "firm_id, merchant_account_id, source, token_hash, token_encrypted, amount_minor,"
    " amount_paid_minor, currency, invoice_number, invoice_date, due_date, recipient_name,"
    " emails, message, locale, status, email_status, created_at, created_by_user_id,"
    " sent_at, expires_at, paid_at, first_opened_at, last_opened_at, reminders_sent,"
    " reminders_off"
)
# Statuses by g % 20: twelve outstanding, one processing, three paid, one partially paid,
# two cancelled, one expired.
STATUS = (
    "CASE WHEN g % 20 < 12 THEN 'outstanding' WHEN g % 20 = 12 THEN 'processing'"
    " WHEN g % 20 < 16 THEN 'paid' WHEN g % 20 = 16 THEN 'partially_paid'"
    " WHEN g % 20 < 19 THEN 'cancelled' ELSE 'expired' END"
)
NAMES = "ARRAY['alice','Bob','CAROL','dave','Émile','frank','Grace','heidi']"
# Built from the constants above only; the values travel as bound parameters.
SEED = f"""
INSERT INTO payment_links ({COLUMNS})
SELECT :firm,
       CASE WHEN g % {EXPORT_EVERY} = 0 THEN :second ELSE :account END,
       (ARRAY['quick_link','bulk_upload','connect'])[g % 3 + 1],
       md5(:tag || g::text), :token,
       100 + (g * 7919) % 1000000,
       CASE WHEN g % 20 BETWEEN 13 AND 15 THEN 100 + (g * 7919) % 1000000
            WHEN g % 20 = 16 THEN 50 ELSE 0 END,
       'USD',
       CASE WHEN g % 50 = 0 THEN '' ELSE 'INV-' || lpad(((g * 31) % 1000003)::text, 7, '0') END,
       CASE WHEN g % 10 = 1 THEN NULL ELSE DATE '2024-01-01' + ((g * 13) % 700)::int END,
       CASE WHEN g % 7 = 0 THEN NULL ELSE DATE '2024-02-01' + ((g * 17) % 730)::int END,
       CASE WHEN g % 40 = 0 THEN '' ELSE ({NAMES})[g % 8 + 1] || ' ' || (g % 997)::text END,
       '["payer@example.test"]'::json, '', 'en', {STATUS},
       CASE WHEN g % 5 = 0 THEN 'not_sent' ELSE 'sent' END,
       TIMESTAMPTZ '2024-01-01 00:00+00' + g * INTERVAL '30 seconds',
       CASE WHEN g % {RARE_EVERY} = 7 THEN :rare ELSE :user END,
       CASE WHEN g % 5 = 0 THEN NULL
            ELSE TIMESTAMPTZ '2024-01-01 00:01+00' + g * INTERVAL '30 seconds' END,
       CASE WHEN g % 9 = 0 THEN NULL
            ELSE TIMESTAMPTZ '2024-01-31 00:00+00' + g * INTERVAL '30 seconds' END,
       CASE WHEN g % 20 BETWEEN 13 AND 16
            THEN TIMESTAMPTZ '2024-01-05 00:00+00' + g * INTERVAL '30 seconds' END,
       CASE WHEN g % 3 = 0 THEN TIMESTAMPTZ '2024-01-02 00:00+00' + g * INTERVAL '31 seconds' END,
       CASE WHEN g % 3 = 0 THEN TIMESTAMPTZ '2024-01-09 00:00+00' + g * INTERVAL '29 seconds' END,
       g % 4, false
FROM generate_series(1::bigint, :count) AS g
"""  # noqa: S608


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


# --- The data ------------------------------------------------------------------------------


def seed(settings: dict[str, str], count: int, encrypted_token: str) -> dict[str, Any]:
    import zope.sqlalchemy
    from sqlalchemy import Table, text

    from clientpay_connect.accounts.services import create_api_token, create_user
    from clientpay_connect.admin.models import MerchantAccount
    from clientpay_connect.links.models import PaymentLink

    with bench_session(settings) as session:
        if session.get_bind().dialect.name != "postgresql":
            raise SystemExit("Set CLIENTPAY_BENCH_DATABASE_URL: this benchmark is PostgreSQL's.")
        seeded = seed_firm(session)
        second = MerchantAccount(firm_id=seeded["firm"].id, name="Trust", kind="trust")
        session.add(second)
        rare = create_user(session, seeded["firm"], "zed@example.test", "staff", "bench-pw-123")
        create_user(session, seeded["firm"], "aaron@example.test", "staff", "bench-pw-123")
        _row, token = create_api_token(session, seeded["user"], "benchmark")
        session.flush()
        started = time.perf_counter()
        # A million rows go in faster with the table's plain indexes made afterwards, in one
        # sort each, than kept up to date row by row.
        table = cast(Table, PaymentLink.__table__)
        indexes = [ix for ix in table.indexes if not ix.unique]
        for index in indexes:
            index.drop(session.connection())
        session.execute(
            text(SEED),
            {
                "firm": seeded["firm"].id,
                "account": seeded["account"].id,
                "second": second.id,
                "user": seeded["user"].id,
                "rare": rare.id,
                "tag": "bench-",
                "token": encrypted_token,
                "count": count,
            },
        )
        # A text() statement goes unseen by zope.sqlalchemy: without this the commit rolls back.
        zope.sqlalchemy.mark_changed(session)
        for index in indexes:
            index.create(session.connection())
        ids = {"firm": seeded["firm"].id, "second": second.id, "token": token}
    print(f"seeded {count:,} links in {time.perf_counter() - started:.1f} s", flush=True)
    analyze(settings)
    return ids


def analyze(settings: dict[str, str]) -> None:
    """Fresh planner statistics and visibility map, as autovacuum would have after a load."""
    from sqlalchemy import create_engine

    engine = create_engine(settings["sqlalchemy.url"], isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        connection.exec_driver_sql("VACUUM ANALYZE payment_links")
    engine.dispose()


def encrypted_token(settings: dict[str, str]) -> str:
    """One real encrypted token for every link (the list decrypts each link's to show its URL;
    their hashes differ, as they must)."""
    from clientpay_connect.config import resolve_settings
    from clientpay_connect.crypto import Encryptor, encryption_keys

    keys = encryption_keys(resolve_settings(settings))
    return Encryptor(keys).encrypt("benchmark-token")


# --- The pages -----------------------------------------------------------------------------


# The total the page's statement carries as one more column (sent/listing.py TOTAL_LABEL):
# taken out of the bare side, which is the keyset query alone.
TOTAL_COLUMN = re.compile(r",\s*\((?:(?!\) AS matching_total).)*\) AS matching_total", re.DOTALL)


def keyset_statements(sent: list[tuple[str, Any]]) -> list[tuple[str, Any]]:
    """The statements that fetched the page's rows: those ordering payment_links by a key
    (not the count, the API token's look-up or the creators' and balance links' loads),
    without the total some of them carry."""
    found = [
        (TOTAL_COLUMN.sub("", sql), params)
        for sql, params in sent
        if "FROM payment_links" in sql and "ORDER BY" in sql and "sort_key" in sql
    ]
    assert not any("matching_total" in sql for sql, _params in found), "the total stayed in"
    return found


def cursor_at(app: Any, firm_id: int, sort: str, params: dict[str, str], offset: int) -> str:
    """The cursor the API hands out after the row at ``offset`` (0 = the first row) of this
    query: that row's sort key and id, found by OFFSET on the SQL side."""
    import transaction
    from sqlalchemy import select
    from webob.multidict import MultiDict

    from clientpay_connect.db import get_tm_session
    from clientpay_connect.links.models import PaymentLink
    from clientpay_connect.sent import listing
    from clientpay_connect.sent.cursor import encode_cursor
    from clientpay_connect.sent.query import parse_list_query

    query, errors = parse_list_query(MultiDict({**params, "sort": sort}))
    assert not errors, errors
    tm = transaction.TransactionManager(explicit=True)
    with tm:
        session = get_tm_session(app.registry["dbsession_factory"], tm)
        key, nullable = listing.sort_key(query.sort.field, "postgresql")
        conditions = [
            *listing.match_conditions(query, firm_id, "postgresql"),
            *listing._status_condition(query.status),
        ]
        statement = (
            select(key, PaymentLink.id)
            .where(*conditions)
            .order_by(*listing._order(key, nullable, query.sort))
            .offset(offset)
            .limit(1)
        )
        value, link_id = session.execute(statement).one()
    return encode_cursor(query.sort.param, query.sort.kind, value, link_id)


def timed(call: Callable[[], object]) -> float:
    started = time.perf_counter()
    call()
    return (time.perf_counter() - started) * 1000


def page_cases(sorts: list[str] | None) -> list[tuple[str, dict[str, str]]]:
    """Every sort each way, and four with a status view and a filter; or only ``sorts``."""
    from clientpay_connect.sent.query import SORT_KINDS

    every_sort = [sort for field in SORT_KINDS for sort in (field, "-" + field)]
    filtered = ("-created_at", "amount", "recipient_name", "-due_date")
    cases: list[tuple[str, dict[str, str]]] = [(sort, {}) for sort in every_sort]
    cases += [(sort, FILTERED) for sort in filtered]
    return [case for case in cases if sorts is None or case[0] in sorts]


def bench_pages(app: Any, ids: dict[str, Any], repeats: int, sorts: list[str] | None) -> bool:
    import webtest

    testapp = webtest.TestApp(app, extra_environ={"HTTP_HOST": "127.0.0.1"})
    headers = {"Authorization": f"Bearer {ids['token']}"}
    engine = app.registry["dbengine"]
    recorder = Recorder(engine)
    raw = engine.raw_connection()
    cases = page_cases(sorts)
    ok = True
    ratios: list[float] = []
    every: dict[str, list[float]] = {"ours": [], "bare": []}
    print(f"\npages of {LIMIT} (load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores):")
    print(
        f"  {'sort':22} {'where':6} {'ours p50':>8} {'p95':>7} {'bare p50':>8} {'p95':>6}"
        f" {'ratio p95':>9}  {'total':>9}"
    )
    for sort, where in cases:
        first = testapp.get("/api/v1/links", {**where, "sort": sort}, headers=headers).json
        total = first["total"]
        for label, offset in (("first", None), ("middle", total // 2), ("last", total - LIMIT - 1)):
            params = {**where, "sort": sort, "limit": str(LIMIT)}
            if offset is not None:
                params["cursor"] = cursor_at(app, ids["firm"], sort, where, offset)

            def ours(p: dict[str, str] = params) -> Any:
                return wsgi_get(app, "/api/v1/links", p, headers)

            statements = keyset_statements(recorder.capture(ours))  # also warms up
            assert statements, f"no keyset statement captured for {sort} {label}"
            body = json.loads(ours())
            if label == "last":
                assert body["next_cursor"] is None and len(body["items"]) == LIMIT, sort
            t: dict[str, list[float]] = {"ours": [], "bare": []}
            for n in range(repeats):
                pair = [("ours", ours), ("bare", lambda s=statements: run_raw(raw, s))]
                # Alternate which goes first, so neither always runs on the warmer cache.
                for name, call in pair if n % 2 else reversed(pair):
                    t[name].append(timed(call))
            o95, b95 = percentile(t["ours"], 95), percentile(t["bare"], 95)
            where_label = "filter" if where else ""
            print(
                f"  {sort + ' ' + label:22} {where_label:6} {statistics.median(t['ours']):6.1f}ms"
                f" {o95:5.1f}ms {statistics.median(t['bare']):6.1f}ms {b95:4.1f}ms"
                f" {o95 / b95:8.2f}x  {body['total']:9,}",
                flush=True,
            )
            ok = ok and o95 < TARGET_P95_MS and o95 / b95 <= TARGET_RATIO
            ratios.append(o95 / b95)
            for name, times in t.items():
                every[name].extend(times)
    raw.close()
    if ratios:
        all95 = {name: percentile(times, 95) for name, times in every.items()}
        over = sum(ratio > TARGET_RATIO for ratio in ratios)
        print(
            f"  {len(ratios)} pages: ratio of the p95s median {statistics.median(ratios):.2f}x,"
            f" {min(ratios):.2f}-{max(ratios):.2f}x, {over} over {TARGET_RATIO:g}x;"
            f" every request of every page: ours p95 {all95['ours']:.1f}ms, bare"
            f" {all95['bare']:.1f}ms, {all95['ours'] / all95['bare']:.2f}x"
        )
    return ok


def profile_page(app: Any, ids: dict[str, Any], sort: str, requests: int, out: str | None) -> None:
    """cProfile of ``requests`` GETs of the middle page of ``sort`` (a deep page, with a
    cursor), after a warm-up: where a page's time goes beyond its SQL."""
    import cProfile
    import pstats

    import webtest

    testapp = webtest.TestApp(app, extra_environ={"HTTP_HOST": "127.0.0.1"})
    headers = {"Authorization": f"Bearer {ids['token']}"}
    total = testapp.get("/api/v1/links", {"sort": sort}, headers=headers).json["total"]
    params = {"sort": sort, "limit": str(LIMIT)}
    params["cursor"] = cursor_at(app, ids["firm"], sort, {}, total // 2)
    for _ in range(20):
        wsgi_get(app, "/api/v1/links", params, headers)
    profiler = cProfile.Profile()
    started = time.perf_counter()
    profiler.enable()
    for _ in range(requests):
        wsgi_get(app, "/api/v1/links", params, headers)
    profiler.disable()
    each = (time.perf_counter() - started) * 1000 / requests
    print(
        f"\nprofile of {requests} requests of {sort}'s middle page: {each:.1f} ms each under"
        f" the profiler (load average {os.getloadavg()[0]:.1f})"
    )
    if out:
        profiler.dump_stats(out)
    stats = pstats.Stats(profiler).strip_dirs()
    stats.sort_stats("cumulative").print_stats(45)
    stats.sort_stats("tottime").print_stats(25)


# --- The export, in a process of its own ----------------------------------------------------


def export_in_process(spec_path: str) -> None:
    """One export through the API; prints its seconds and peak memory as JSON (and, when the
    spec asks, its profile to stderr)."""
    import webtest

    import clientpay_connect
    from clientpay_connect import main as make_app

    spec = json.loads(Path(spec_path).read_text())
    app = make_app({}, **spec["settings"])
    testapp = webtest.TestApp(app, extra_environ={"HTTP_HOST": "127.0.0.1"})
    headers = {"Authorization": f"Bearer {spec['token']}"}
    params = {"filter[merchant_account_id]": str(spec["account"])}
    testapp.get("/api/v1/links", params, headers=headers)  # start-up, as a running app has done
    before = resource.getrusage(resource.RUSAGE_SELF)
    if spec["trace"]:
        tracemalloc.start()
    profiler = cProfile.Profile() if spec.get("profile") else None
    started = time.perf_counter()
    if profiler is not None:
        profiler.enable()
    response = testapp.get("/api/v1/links/export.xlsx", params, headers=headers)
    if profiler is not None:
        profiler.disable()
    seconds = time.perf_counter() - started
    traced = tracemalloc.get_traced_memory()[1] if spec["trace"] else 0
    after = resource.getrusage(resource.RUSAGE_SELF)
    app.registry["dbengine"].dispose()
    if profiler is not None:
        stats = pstats.Stats(profiler, stream=sys.stderr).strip_dirs()
        stats.sort_stats("tottime").print_stats(PROFILE_LINES)
        stats.sort_stats("cumulative").print_stats(PROFILE_LINES)
    print(
        json.dumps(
            {
                "seconds": seconds,
                "bytes": len(response.body),
                "traced_mb": traced / 2**20,
                # The export's own CPU time (not the database's): a figure the other
                # processes on a loaded machine disturb less than the seconds.
                "cpu_seconds": after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime,
                "rss_growth_mb": (after.ru_maxrss - before.ru_maxrss) / 1024,
                "rss_mb": after.ru_maxrss / 1024,
                "code": str(Path(clientpay_connect.__file__).parent),
            }
        )
    )


def run_export(code: Path | None, folder: Path, spec: dict[str, Any]) -> dict[str, Any]:
    """One export, in a process of its own, with the code of this checkout (None) or of
    another one; what it measured."""
    path = folder / "export.json"
    path.write_text(json.dumps(spec))
    environment = dict(os.environ)
    environment.pop(CODE_VARIABLE, None)
    if code is not None:
        environment[CODE_VARIABLE] = str(code)
    out = subprocess.run(
        [sys.executable, __file__, "--export-from", str(path)],
        capture_output=True,
        text=True,
        check=True,
        env=environment,
    )
    if spec.get("profile"):
        print(out.stderr)
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def bench_export(
    folder: Path,
    settings: dict[str, str],
    ids: dict[str, Any],
    profile: bool = False,
    baselines: tuple[Path, ...] = (),
) -> bool:
    spec = {"settings": settings, "token": ids["token"], "account": ids["second"]}
    codes: dict[str, Path | None] = {"ours": None}
    codes |= {f"baseline {n}": path.resolve() for n, path in enumerate(baselines, start=1)}
    ok = True
    for name, code in codes.items():
        timed_run = run_export(code, folder, spec | {"trace": False})
        traced_run = run_export(code, folder, spec | {"trace": True})
        print(
            f"\nexport ({name}: {timed_run['code']}) of the {ids['export_rows']:,} links of one"
            f" account (load average {os.getloadavg()[0]:.1f}): {timed_run['seconds']:.2f} s,"
            f" {timed_run['cpu_seconds']:.2f} s of CPU"
            f" ({timed_run['bytes'] / 2**20:.1f} MB of .xlsx); Python's peak allocations"
            f" {traced_run['traced_mb']:.1f} MB (tracemalloc run: {traced_run['seconds']:.1f} s);"
            f" the process's peak resident size grew by {timed_run['rss_growth_mb']:.1f} MB"
            f" to {timed_run['rss_mb']:.1f} MB",
            flush=True,
        )
        if name == "ours":
            ok = (
                timed_run["seconds"] < TARGET_EXPORT_SECONDS
                and traced_run["traced_mb"] < TARGET_EXPORT_MB
                and timed_run["rss_growth_mb"] < TARGET_EXPORT_MB
            )
    if profile:
        run_export(None, folder, spec | {"trace": False, "profile": True})
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--links", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=60, help="per page")
    parser.add_argument(
        "--sorts", help="only these sorts, comma-separated (e.g. source,-emails); no export"
    )
    parser.add_argument("--no-export", action="store_true", help="the pages only")
    parser.add_argument("--export-only", action="store_true", help="skip the pages")
    parser.add_argument(
        "--profile", metavar="SORT", help="instead: profile a deep page of SORT (cProfile)"
    )
    parser.add_argument("--profile-requests", type=int, default=200)
    parser.add_argument("--profile-out", help="where to write the profile (pstats)")
    parser.add_argument("--profile-export", action="store_true", help="profile the export too")
    parser.add_argument(
        "--baseline",
        type=Path,
        action="append",
        default=[],
        help="another checkout to export with too (may be given more than once)",
    )
    parser.add_argument("--rounds", type=int, default=1, help="exports of each code")
    parser.add_argument("--export-from", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.export_from:
        export_in_process(args.export_from)
        return 0
    with tempfile.TemporaryDirectory() as folder, bench_settings(Path(folder)) as settings:
        from clientpay_connect import main as make_app

        ids = seed(settings, args.links, encrypted_token(settings))
        ids["export_rows"] = args.links // EXPORT_EVERY
        sorts = args.sorts.split(",") if args.sorts else None
        pages_ok = True
        if not args.export_only:
            app = make_app({}, **settings)
            try:
                if args.profile:
                    profile_page(app, ids, args.profile, args.profile_requests, args.profile_out)
                    return 0
                pages_ok = bench_pages(app, ids, args.repeats, sorts)
            finally:
                app.registry["dbengine"].dispose()
        export_ok = None
        if sorts is None and not args.no_export:
            export_ok = all(
                [
                    bench_export(
                        Path(folder),
                        settings,
                        ids,
                        args.profile_export and n == 0,
                        tuple(args.baseline),
                    )
                    for n in range(args.rounds)
                ]
            )
    export = {None: "not run", True: "met", False: "NOT met"}[export_ok]
    print(
        f"\ntargets: pages p95 < {TARGET_P95_MS:.0f} ms and ratio <= {TARGET_RATIO:.0f}:"
        f" {'met' if pages_ok else 'NOT met'}; export < {TARGET_EXPORT_SECONDS:.0f} s and"
        f" < {TARGET_EXPORT_MB:.0f} MB: {export}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
