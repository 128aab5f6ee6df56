"""Benchmark: writing postings to MyCase through the sync job and ``clientpay worker``,
against a plain loop making the same adapter calls, in the same run.

    .venv/bin/python benchmarks/postings_sync.py [--postings 1000] [--pace-postings 150]

The fake MyCase (over real HTTP, in this process) answers every call in about 20 ms, as a
vendor far away would. Each run posts ``--postings`` one-invoice payments to its own 50
invoices:

- loop: one process calls ``find_payment``, ``get_invoices`` and ``record_payment`` of one
  MyCase adapter for each payment, one after the other (no database, no queue);
- 1 worker: the postings queued in the database and the job queue, one ``clientpay worker``
  process with one thread claims, writes and records them (everything production does);
- 4 workers: the same with four ``clientpay worker`` processes of one thread each.

A worker run is timed from the moment its first worker process is up to the last posting's
``posted_at``. Prints postings/s and the ratios to the loop. Targets: 1 worker >= 0.7x the
loop; 4 workers >= 3x the loop.

Then the pace: the fake limited to 600 requests a minute, ``clientpay.mycase.rate_limit =
600/minute`` and one worker process with four threads posting ``--pace-postings`` postings;
prints the achieved rate against the limit (target >= 90 %) and the 429s it answered
(target: none after the first).

On PostgreSQL when CLIENTPAY_BENCH_DATABASE_URL names a server; the queue and the pace on
Redis when CLIENTPAY_BENCH_REDIS_URL is set (else SqliteHuey, and the pace per process).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks._setup import bench_settings  # noqa: E402

INVOICES_PER_RUN = 50
VENDOR_DELAY = 0.02
PACE_LIMIT = (600, 60.0)


def plans(invoices: list[int], count: int) -> list[list[tuple[int, int]]]:
    return [[(invoices[n % len(invoices)], 100 + n)] for n in range(count)]


# The loop, in a process of its own.


def run_loop(spec_path: str) -> None:
    """The baseline: the adapter's calls for each payment, back to back."""
    from adapters.mycase import MyCaseAdapter
    from clientpay_connect.connect.interfaces import (
        AdapterConfig,
        Allocation,
        PostingRequest,
        TokenSet,
    )
    from tests.support.tokens import MemoryTokenSource

    spec = json.loads(Path(spec_path).read_text())
    tokens = MemoryTokenSource(TokenSet(spec["access_token"], None, None))
    # An identity, as the app gives every connection: the adapter keeps its copy of the
    # firm's book between calls in the loop as it does in a worker.
    adapter = MyCaseAdapter(
        AdapterConfig(
            settings={},
            app_settings=spec["settings"],
            tokens=tokens,
            identity=f"benchmark-loop-{spec['run']}",
        )
    )
    requests = [
        PostingRequest(
            key=f"LOOP-{spec['run']}-{n}",
            received_on=dt.date.today(),
            currency="USD",
            allocations=tuple(Allocation(str(i), f"#{i}", cents) for i, cents in plan),
        )
        for n, plan in enumerate(spec["plans"])
    ]
    started = time.perf_counter()
    for request in requests:
        adapter.find_payment(request)
        adapter.get_invoices([a.invoice_id for a in request.allocations])
        result = adapter.record_payment(request)
        assert result.outcome == "posted", result
    elapsed = time.perf_counter() - started
    adapter.close()
    print(json.dumps({"seconds": elapsed}))


def loop_run(folder: Path, fake: Any, access_token: str, count: int) -> float:
    invoices = seed(fake)
    spec = folder / "loop.json"
    spec.write_text(
        json.dumps(
            {
                "settings": fake.settings(),
                "access_token": access_token,
                "run": uuid.uuid4().hex[:8],
                "plans": plans(invoices, count),
            }
        )
    )
    out = subprocess.run(
        [sys.executable, __file__, "--loop-from", str(spec)],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    return float(json.loads(out.stdout.strip().splitlines()[-1])["seconds"])


# The workers.


def seed(fake: Any) -> list[int]:
    from tests.support.postings_load import seed_invoices

    return seed_invoices(fake, INVOICES_PER_RUN)


def worker_run(
    folder: Path,
    settings: dict[str, str],
    app: Any,
    stage: dict[str, int],
    fake: Any,
    count: int,
    processes: int,
    threads: int,
) -> float:
    """Queue ``count`` postings, start the workers, wait for the last posted; postings/s."""
    from sqlalchemy import func, select

    from clientpay_connect.postings.models import Posting
    from clientpay_connect.postings.services import SYNC_JOB
    from clientpay_connect.work import Work
    from tests.support.postings_load import queued_postings
    from tests.support.workers import WorkerProcess, worker_environment

    invoices = seed(fake)
    with Work.fresh(app.registry) as work:
        ids = queued_postings(
            work.dbsession,
            stage["firm"],
            stage["account"],
            stage["connection"],
            plans(invoices, count),
        )
    queue = app.registry["clientpay.jobs"]
    for posting_id in ids:
        queue.enqueue(SYNC_JOB, posting_id)
    env = worker_environment(settings)
    workers = [
        WorkerProcess(folder, f"worker-{uuid.uuid4().hex[:6]}", env, threads)
        for _ in range(processes)
    ]
    for worker in workers:
        worker.start()
    started = first_running(workers)
    try:
        while True:
            with Work.fresh(app.registry) as work:
                posted, last = work.dbsession.execute(
                    select(func.count(), func.max(Posting.posted_at)).where(
                        Posting.id.in_(ids), Posting.status == "posted"
                    )
                ).one()
            if posted == count:
                break
            time.sleep(0.2)
    finally:
        for worker in workers:
            worker.stop()
    assert last is not None, "every posting was posted"
    return count / (last.timestamp() - started)


def first_running(workers: list[Any]) -> float:
    """The wall-clock time at which the first worker process said it runs."""
    from tests.support.workers import STARTED

    while True:
        if any(STARTED in worker.log() for worker in workers):
            return time.time()
        time.sleep(0.01)


def pace_run(
    folder: Path, settings: dict[str, str], app: Any, stage: dict[str, int], fake: Any, count: int
) -> tuple[float, int, int, int, float]:
    """Requests per second achieved under the limit, the 429s answered, those after the
    first stretch of them, and the requests served over how many seconds."""
    fake.rate_limit = PACE_LIMIT
    paced = {**settings, "clientpay.mycase.rate_limit": "600/minute"}
    mark = len(fake.requests)
    worker_run(folder, paced, app, stage, fake, count, processes=1, threads=4)
    seen = [r for r in fake.requests[mark:] if r.path.startswith("/v1/")]
    served = [r for r in seen if r.status == 200]
    rate = (len(served) - 1) / (served[-1].at - served[0].at)
    statuses = [r.status for r in seen]
    first = statuses.index(429) if 429 in statuses else len(statuses)
    # "After the first": past the first 429 and any that came with it before a 200.
    after = statuses[first:]
    settled = after[after.index(200) :] if 200 in after else []
    seconds = served[-1].at - served[0].at
    return rate, statuses.count(429), settled.count(429), len(served), seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--postings", type=int, default=1000)
    parser.add_argument("--pace-postings", type=int, default=150)
    parser.add_argument("--loop-from", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.loop_from:
        run_loop(args.loop_from)
        return
    os.environ["OAUTHLIB_INSECURE_TRANSPORT"] = "1"
    from clientpay_connect import main as make_app
    from clientpay_connect.accounts.services import create_firm
    from clientpay_connect.admin.models import MerchantAccount
    from clientpay_connect.work import Work
    from tests.fakes.httpserver import running
    from tests.fakes.mycase import FakeMyCase
    from tests.support.postings_load import add_mycase_connection, mycase_tokens

    redis_url = os.environ.get("CLIENTPAY_BENCH_REDIS_URL", "")
    with (
        tempfile.TemporaryDirectory() as tmp,
        running(FakeMyCase(rate_limit=None)) as fake,
        bench_settings(Path(tmp)) as base,
    ):
        folder = Path(tmp)
        fake.delay = VENDOR_DELAY
        run = uuid.uuid4().hex[:8]
        settings = {
            **base,
            **fake.settings(),
            "clientpay.redis_url": redis_url,
            "clientpay.jobs.name": f"bench-postings-{run}",
            "clientpay.limits.key_prefix": f"bench-postings-{run}",
            "clientpay.mycase.rate_limit": "none",
        }
        app = make_app({}, **settings)
        tokens = mycase_tokens(fake)
        with Work.fresh(app.registry) as work:
            firm = create_firm(work.dbsession, "Benchmark Law LLP", "bench-law")
            account = MerchantAccount(firm_id=firm.id, name="Operating", currency="USD")
            work.dbsession.add(account)
            work.dbsession.flush()
            encryptor = app.registry["clientpay.encryptor"]
            connection = add_mycase_connection(work.dbsession, encryptor, firm.id, tokens)
            stage = {"firm": firm.id, "account": account.id, "connection": connection.id}
        database = "PostgreSQL" if base["sqlalchemy.url"].startswith("postgresql") else "SQLite"
        queue = "Redis" if redis_url else "SqliteHuey"
        print(f"{args.postings} postings, MyCase answering in {VENDOR_DELAY * 1000:.0f} ms;")
        print(f"{database}, {queue}, {os.cpu_count()} CPUs")
        try:
            loop = args.postings / loop_run(folder, fake, tokens.access_token, args.postings)
            print(f"loop            {loop:7.1f} postings/s")
            one = worker_run(folder, settings, app, stage, fake, args.postings, 1, 1)
            print(f"1 worker        {one:7.1f} postings/s   {one / loop:5.2f}x the loop")
            four = worker_run(folder, settings, app, stage, fake, args.postings, 4, 1)
            print(f"4 workers       {four:7.1f} postings/s   {four / loop:5.2f}x the loop")
            paced = pace_run(folder, settings, app, stage, fake, args.pace_postings)
            rate, refused, later, served, seconds = paced
            limit = PACE_LIMIT[0] / PACE_LIMIT[1]
            print(
                f"paced at 600/minute: {rate:5.2f} requests/s = {rate / limit:4.0%} of the "
                f"limit ({served} requests in {seconds:.1f} s); 429s: {refused} "
                f"({later} after the first)"
            )
        finally:
            app.registry["clientpay.jobs"].huey.flush()
            app.registry["dbengine"].dispose()


if __name__ == "__main__":
    main()
