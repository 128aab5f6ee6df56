"""A feature's jobs exist exactly when its ``includeme`` runs: each feature scans its own
``tasks.py``, and a job declared in a module no one scans is registered by no app.

The hosts here include the add-on's foundation and some of its features, as a host
application would (see test_include.py for the whole add-on under a host).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from typing import Any

import pytest
from pyramid.config import Configurator
from pyramid.registry import Registry

from clientpay_connect.jobs import JobQueue, job
from clientpay_connect.work import Work

FOUNDATION = "clientpay_connect.foundation"
# Every feature of the add-on, with the jobs its tasks.py declares.
FEATURE_JOBS = {
    "clientpay_connect.pay": {"pay.resolve_processing"},
    "clientpay_connect.accounts": {"accounts.purge_sessions"},
    "clientpay_connect.admin": set(),
    "clientpay_connect.mail": {"mail.deliver", "mail.deliver_many", "mail.sweep"},
    "clientpay_connect.links": {"links.expire"},
    "clientpay_connect.sent": {"sent.compact_counts"},
    "clientpay_connect.reminders": {"reminders.send"},
    "clientpay_connect.notifications": {"notifications.digest"},
    "clientpay_connect.bulk": {"bulk.create_links", "bulk.resume_stuck"},
    "clientpay_connect.connect": set(),
    "clientpay_connect.postings": {"postings.sync", "postings.sweep"},
    "clientpay_connect.reports": set(),
    "clientpay_connect.embed": {"embed.purge"},
    "clientpay_connect.refunds": {"refunds.resolve_pending"},
}
# What a feature cannot be configured without (Sent Pages' API extends the links' routes).
REQUIRES = {
    "clientpay_connect.sent": ["clientpay_connect.links"],
    # The switch's page is the link's own; its emails go through the mail feature's jobs.
    "clientpay_connect.reminders": ["clientpay_connect.links", "clientpay_connect.mail"],
    # The digest's emails go through the mail feature's jobs.
    "clientpay_connect.notifications": ["clientpay_connect.mail"],
    # The sync job opens the connection's adapter through Connect's catalog.
    "clientpay_connect.postings": ["clientpay_connect.connect"],
}
UNSCANNED_JOB = "tests.job_registration.never_scanned"


@job(UNSCANNED_JOB)
def never_scanned(work: Work) -> None:
    """Declared here, in a module that only the last test scans."""


def queue_of(registry: Registry) -> JobQueue:
    queue: JobQueue = registry["clientpay.jobs"]
    return queue


@pytest.fixture
def host(base_settings, database_url) -> Iterator[Any]:
    """Configure a host application from what it includes and scans; its registry."""
    registries: list[Registry] = []

    def configure(*includes: str, scan: Any = None) -> Registry:
        with Configurator(settings={**base_settings, "sqlalchemy.url": database_url}) as config:
            for name in includes:
                config.include(name)
            if scan is not None:
                config.scan(scan)
        registries.append(config.registry)
        return config.registry

    yield configure
    for registry in registries:
        registry["dbengine"].dispose()


@pytest.mark.parametrize("feature", list(FEATURE_JOBS))
def test_a_host_with_one_feature_has_exactly_that_features_jobs(host, feature):
    features = [*REQUIRES.get(feature, []), feature]
    queue = queue_of(host(FOUNDATION, *features))
    expected = set().union(*(FEATURE_JOBS[name] for name in features))
    assert set(queue.jobs) == expected
    # Another feature's job is not there to enqueue.
    others = set().union(*FEATURE_JOBS.values()) - expected
    with pytest.raises(LookupError, match="is its feature included"):
        queue.enqueue(sorted(others)[0])


def test_a_host_with_two_features_has_both_and_no_others(host):
    queue = queue_of(host(FOUNDATION, "clientpay_connect.links", "clientpay_connect.mail"))
    assert (
        set(queue.jobs)
        == FEATURE_JOBS["clientpay_connect.links"] | FEATURE_JOBS["clientpay_connect.mail"]
    )


def test_the_whole_add_on_has_every_features_jobs(app):
    assert set(queue_of(app.registry).jobs) == set().union(*FEATURE_JOBS.values())


def test_a_job_declared_in_a_module_never_scanned_is_not_registered(app, host):
    assert UNSCANNED_JOB not in queue_of(app.registry).jobs
    assert UNSCANNED_JOB not in queue_of(host(FOUNDATION)).jobs
    # The declaration itself is sound: a host that scans this module has the job.
    scanned = queue_of(host(FOUNDATION, scan=sys.modules[__name__]))
    assert set(scanned.jobs) == {UNSCANNED_JOB}
    assert scanned.jobs[UNSCANNED_JOB].function is never_scanned
