"""Jobs are enqueued only after a commit and run, in their own transaction, on a real queue.

The app under test uses a real, non-immediate Huey queue (SqliteHuey on a file; RedisHuey when
CLIENTPAY_TEST_REDIS_URL is set) and huey's own consumer, started as ``clientpay serve`` does.
Transactions here really commit, so each test removes the firms it made.
"""

from __future__ import annotations

import os
import signal
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import transaction
import webtest
from pyramid.config import Configurator
from pyramid.registry import Registry
from pyramid.request import Request
from pyramid.router import Router
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError

from clientpay_connect.accounts.models import Firm
from clientpay_connect.accounts.services import create_firm
from clientpay_connect.config import resolve_settings
from clientpay_connect.db import get_tm_session
from clientpay_connect.jobs import JobQueue, job
from clientpay_connect.security import PUBLIC
from clientpay_connect.work import Work

SLUG_PREFIX = "job-test-"
# What the jobs below did, in order, as seen from the worker threads.
runs: list[str] = []


@job("tests.jobs.name_firm")
def name_firm(work: Work, slug: str, name: str) -> None:
    """Rename the firm ``slug`` (made by the enqueuing transaction), or make it."""
    runs.append(slug)
    firm = work.dbsession.execute(select(Firm).where(Firm.slug == slug)).scalar_one_or_none()
    if firm is None:
        create_firm(work.dbsession, name, slug)
    else:
        firm.name = name


@job("tests.jobs.write_then_fail")
def write_then_fail(work: Work, slug: str) -> None:
    runs.append(slug)
    create_firm(work.dbsession, "Never kept", slug)
    work.dbsession.flush()
    raise RuntimeError("the job fails after writing")


def new_slug() -> str:
    return SLUG_PREFIX + uuid.uuid4().hex[:10]


# A request that writes a firm and asks for a job, then either succeeds or fails.
def enqueue_view(request: Request) -> dict[str, Any]:
    slug = request.params["slug"]
    create_firm(request.dbsession, "Made by the request", slug)
    Work.from_request(request).enqueue_after_commit(
        "tests.jobs.name_firm", slug, "Renamed by the job"
    )
    if request.params.get("fail"):
        raise RuntimeError("the request fails after enqueuing")
    return {"slug": slug}


@pytest.fixture(scope="module", params=["sqlite", "redis"])
def queue_app(request, base_settings, database_url, tmp_path_factory) -> Iterator[Router]:
    redis_url = os.environ.get("CLIENTPAY_TEST_REDIS_URL", "")
    if request.param == "redis" and not redis_url:
        pytest.skip("CLIENTPAY_TEST_REDIS_URL is not set")
    settings = {
        **base_settings,
        "sqlalchemy.url": database_url,
        "clientpay.jobs.immediate": "false",
        "clientpay.jobs.name": "clientpay-jobs-test-" + uuid.uuid4().hex[:8],
        "clientpay.jobs.sqlite_path": str(tmp_path_factory.mktemp("queue") / "jobs.sqlite"),
        "clientpay.redis_url": redis_url if request.param == "redis" else "",
    }
    with Configurator(settings=resolve_settings(settings)) as config:
        # The foundation and sign-in (the error page links to it), without the features
        # that have periodic jobs: the consumer enqueues those as it starts, which would race
        # the counts of the queue below. The jobs declared above are this app's once it scans
        # this module, as a feature scans its tasks.py.
        config.include("clientpay_connect.foundation")
        config.include("clientpay_connect.accounts")
        config.scan(sys.modules[__name__])
        config.add_route("test.enqueue", "/test/enqueue")
        config.add_view(
            enqueue_view,
            route_name="test.enqueue",
            request_method="POST",
            renderer="json",
            permission=PUBLIC,
            require_csrf=False,
        )
    application = config.make_wsgi_app()
    queue: JobQueue = application.registry["clientpay.jobs"]
    expected = "RedisHuey" if request.param == "redis" else "SqliteHuey"
    assert type(queue.huey).__name__ == expected
    yield application
    queue.huey.storage.flush_all()
    application.registry["dbengine"].dispose()


@pytest.fixture
def queue(queue_app) -> Iterator[JobQueue]:
    jobs: JobQueue = queue_app.registry["clientpay.jobs"]
    jobs.huey.storage.flush_all()
    runs.clear()
    yield jobs
    engine = queue_app.registry["dbengine"]
    with engine.begin() as connection:
        connection.execute(delete(Firm).where(Firm.slug.startswith(SLUG_PREFIX)))


def firm_names(app: Router) -> dict[str, str]:
    """What is committed, read on a connection of its own."""
    with app.registry["dbengine"].connect() as connection:
        rows = connection.execute(
            select(Firm.slug, Firm.name).where(Firm.slug.startswith(SLUG_PREFIX))
        )
        return {slug: name for slug, name in rows}


@contextmanager
def running_consumer(queue: JobQueue) -> Iterator[None]:
    """Huey's consumer with one worker thread, as ``clientpay serve`` starts it."""
    handlers = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    consumer = queue.consumer(workers=1)
    consumer.start()
    # The consumer takes over the process's signals; give pytest its Ctrl-C back.
    for signum, handler in handlers.items():
        signal.signal(signum, handler)
    try:
        yield
    finally:
        consumer.stop(graceful=True)


def wait_for(condition: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for the job to run")
        time.sleep(0.05)


def test_a_job_runs_only_if_its_transaction_commits(queue_app, queue):
    registry = queue_app.registry
    rolled_back, failed_commit, committed = new_slug(), new_slug(), new_slug()

    tm = transaction.TransactionManager(explicit=True)
    work = Work(registry, get_tm_session(registry["dbsession_factory"], tm), tm)
    tm.begin()
    work.enqueue_after_commit("tests.jobs.name_firm", rolled_back, "Rolled back")
    tm.abort()
    assert queue.pending_count() == 0

    # A commit that fails (two firms with one slug) calls the hook with committed=False.
    tm.begin()
    work.dbsession.add_all([Firm(name="A", slug=failed_commit), Firm(name="B", slug=failed_commit)])
    work.enqueue_after_commit("tests.jobs.name_firm", failed_commit, "Failed commit")
    with pytest.raises(IntegrityError):
        tm.commit()
    tm.abort()
    assert queue.pending_count() == 0

    with tm:
        work.enqueue_after_commit("tests.jobs.name_firm", committed, "Committed")
        assert queue.pending_count() == 0, "enqueued before the commit"
    assert queue.pending_count() == 1

    with running_consumer(queue):
        wait_for(lambda: committed in firm_names(queue_app))
    assert runs == [committed]
    assert firm_names(queue_app) == {committed: "Committed"}
    assert queue.pending_count() == 0


def test_a_request_enqueues_after_its_commit_and_the_job_sees_its_writes(queue_app, queue):
    client = webtest.TestApp(queue_app, extra_environ={"HTTP_HOST": "localhost"})
    failed, succeeded = new_slug(), new_slug()

    client.post("/test/enqueue", {"slug": failed, "fail": "1"}, status=500)
    assert queue.pending_count() == 0
    assert firm_names(queue_app) == {}

    client.post("/test/enqueue", {"slug": succeeded}, status=200)
    assert queue.pending_count() == 1
    assert firm_names(queue_app) == {succeeded: "Made by the request"}

    with running_consumer(queue):
        wait_for(lambda: firm_names(queue_app).get(succeeded) == "Renamed by the job")
    # The job found the request's firm (so it ran after the commit) and its change committed.
    assert runs == [succeeded]
    assert firm_names(queue_app) == {succeeded: "Renamed by the job"}


def test_a_failing_job_keeps_none_of_its_writes(queue_app, queue):
    slug, after = new_slug(), new_slug()
    queue.enqueue("tests.jobs.write_then_fail", slug)
    queue.enqueue("tests.jobs.name_firm", after, "After the failure")
    with running_consumer(queue):
        wait_for(lambda: after in firm_names(queue_app))
    assert runs == [slug, after]
    assert firm_names(queue_app) == {after: "After the failure"}


def test_an_idle_worker_looks_at_the_queue_again_within_the_setting(queue_app):
    """Huey's own backoff lets an idle worker sleep up to 10 s between looks at a SQLite
    queue: a large upload's links waited that long to begin after a quiet spell."""
    queue: JobQueue = queue_app.registry["clientpay.jobs"]
    assert queue.consumer(workers=1).max_delay == 0.25
    registry = Registry("max-poll")
    registry.settings = {"clientpay.jobs.max_poll_seconds": "2"}
    assert JobQueue(queue.huey, registry).consumer(workers=2).max_delay == 2.0
