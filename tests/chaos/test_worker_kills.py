"""Chaos: a thousand postings to the fake MyCase while ``clientpay worker`` processes are
killed with SIGKILL at random moments and started again, or share the queue two at a time.
In the end every posting is posted and MyCase's ledger holds exactly one payment per
allocation.

The workers are real processes with their own ini and environment: PostgreSQL and Redis
(RedisHuey) when CLIENTPAY_TEST_DATABASE_URL / CLIENTPAY_TEST_REDIS_URL are set, as in CI;
SQLite and SqliteHuey otherwise. The lease and the sweep are shortened by settings
(clientpay.postings.lease_seconds, .sweep_seconds, .sweep_grace_seconds) so that a killed
worker's postings come back within seconds.
"""

from __future__ import annotations

import os
import random
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from pyramid.router import Router
from sqlalchemy import func, select

from clientpay_connect import main
from clientpay_connect.accounts.services import create_firm
from clientpay_connect.admin.models import MerchantAccount
from clientpay_connect.postings.models import Posting
from clientpay_connect.postings.services import SYNC_JOB
from clientpay_connect.work import Work
from tests.fakes.httpserver import running
from tests.fakes.mycase import FakeMyCase
from tests.support import databases
from tests.support.postings_load import (
    add_mycase_connection,
    mycase_tokens,
    queued_postings,
    seed_invoices,
    written_once,
)
from tests.support.workers import WorkerProcess, worker_environment

pytestmark = pytest.mark.chaos

POSTINGS = 1000
INVOICES = 50
KILLS = 6
WORKER_THREADS = 4
# Long enough for the slowest run on a loaded machine; a healthy one takes well under it.
FINISH_WITHIN = 300


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeMyCase]:
    with running(FakeMyCase(rate_limit=None)) as server:
        # About what MyCase takes to answer: the workers spend their time waiting, as in life.
        server.delay = 0.02
        yield server


@pytest.fixture(autouse=True)
def loopback_oauth(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OAUTHLIB_INSECURE_TRANSPORT", "1")


@dataclass
class Stage:
    """A committed database with a firm, its MyCase connection and queued postings, the
    settings the workers get, and this process's app (to enqueue and to look)."""

    folder: Path
    settings: dict[str, Any]
    app: Router
    posting_ids: list[int]

    def posted(self) -> int:
        with Work.fresh(self.app.registry) as work:
            return int(
                work.dbsession.execute(
                    select(func.count())
                    .select_from(Posting)
                    .where(Posting.id.in_(self.posting_ids), Posting.status == "posted")
                ).scalar_one()
            )

    def wait_until_all_posted(self, workers: list[WorkerProcess]) -> None:
        deadline = time.monotonic() + FINISH_WITHIN
        while self.posted() < len(self.posting_ids):
            logs = "\n".join(w.log()[-3000:] for w in workers)
            assert time.monotonic() < deadline, f"{self.posted()} posted\n{logs}"
            time.sleep(0.5)

    def worker(self, name: str) -> WorkerProcess:
        return WorkerProcess(self.folder, name, worker_environment(self.settings), WORKER_THREADS)


def plans(invoices: list[int]) -> list[list[tuple[int, int]]]:
    """One invoice per posting, every tenth paying two (MyCase writes them one by one)."""
    made = []
    for n in range(POSTINGS):
        plan = [(invoices[n % INVOICES], 100 + n)]
        if n % 10 == 0:
            plan.append((invoices[(n + 1) % INVOICES], 50 + n))
        made.append(plan)
    return made


@pytest.fixture
def stage(base_settings: dict[str, Any], tmp_path: Path, fake: FakeMyCase) -> Iterator[Stage]:
    run = uuid.uuid4().hex[:10]
    with databases.fresh_database(tmp_path) as database_url:
        databases.migrate(database_url)
        settings = {
            **fake.settings(),
            "sqlalchemy.url": database_url,
            "clientpay.secret": base_settings["clientpay.secret"],
            "clientpay.encryption_keys": base_settings["clientpay.encryption_keys"],
            "clientpay.secrets_file": "",
            "clientpay.development": base_settings["clientpay.development"],
            "clientpay.processor": base_settings["clientpay.processor"],
            "clientpay.redis_url": base_settings["clientpay.redis_url"],
            "clientpay.jobs.name": f"clientpay-chaos-{run}",
            "clientpay.jobs.sqlite_path": str(tmp_path / "jobs.sqlite"),
            "clientpay.limits.key_prefix": f"clientpay-chaos-{run}",
            "clientpay.mail.maildir": str(tmp_path / "mail"),
            "clientpay.http_timeout": "2",
            "clientpay.mycase.max_rate_wait": "1",
            "clientpay.mycase.rate_limit": "none",
            "clientpay.postings.lease_seconds": "10",
            "clientpay.postings.sweep_seconds": "1",
            "clientpay.postings.sweep_grace_seconds": "3",
            "clientpay.postings.backoff_base_seconds": "0.5",
            "clientpay.postings.backoff_cap_seconds": "2",
        }
        app = main({}, **settings)
        try:
            ids = seed(app, fake)
            queue = app.registry["clientpay.jobs"]
            for posting_id in ids:
                queue.enqueue(SYNC_JOB, posting_id)
            yield Stage(tmp_path, settings, app, ids)
        finally:
            app.registry["clientpay.jobs"].huey.flush()
            app.registry["dbengine"].dispose()


def seed(app: Router, fake: FakeMyCase) -> list[int]:
    invoices = seed_invoices(fake, INVOICES)
    with Work.fresh(app.registry) as work:
        firm = create_firm(work.dbsession, "Chaos LLP")
        account = MerchantAccount(firm_id=firm.id, name="Operating", currency="USD")
        work.dbsession.add(account)
        work.dbsession.flush()
        encryptor = app.registry["clientpay.encryptor"]
        connection = add_mycase_connection(work.dbsession, encryptor, firm.id, mycase_tokens(fake))
        return queued_postings(work.dbsession, firm.id, account.id, connection.id, plans(invoices))


def assert_all_written_once(stage: Stage, fake: FakeMyCase) -> None:
    assert stage.posted() == POSTINGS
    with Work.fresh(stage.app.registry) as work:
        assert written_once(fake, work.dbsession, stage.posting_ids) == []


def test_a_worker_killed_at_random_moments_loses_nothing_and_doubles_nothing(
    stage: Stage, fake: FakeMyCase
) -> None:
    seed = int(os.environ.get("CLIENTPAY_CHAOS_SEED") or random.randrange(10**6))
    moments = random.Random(seed)
    worker = stage.worker("killed")
    worker.start()
    posted_at_kills = []
    try:
        for _ in range(KILLS):
            worker.wait_running()
            time.sleep(moments.uniform(0.3, 2.0))
            worker.kill()
            posted_at_kills.append(stage.posted())
            worker.start()
        stage.wait_until_all_posted([worker])
    finally:
        assert worker.stop() == 0, worker.log()[-3000:]
    # The kills fell while there was work to interrupt (else this proves nothing).
    assert posted_at_kills[-1] < POSTINGS, (seed, posted_at_kills)
    assert posted_at_kills[0] < posted_at_kills[-1], (seed, posted_at_kills)
    assert_all_written_once(stage, fake)


def test_two_workers_share_the_queue_and_write_nothing_twice(
    stage: Stage, fake: FakeMyCase
) -> None:
    workers = [stage.worker("first"), stage.worker("second")]
    for worker in workers:
        worker.start()
    try:
        stage.wait_until_all_posted(workers)
    finally:
        assert [worker.stop() for worker in workers] == [0, 0]
    posted_by = [worker.log().count(": posted") for worker in workers]
    # Each worker wrote some, and no posting was posted by both.
    assert all(posted_by), posted_by
    assert sum(posted_by) == POSTINGS, posted_by
    assert_all_written_once(stage, fake)
