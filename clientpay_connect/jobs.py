"""The job engine (Huey): tasks registered by name, enqueued only after a commit.

Features declare work with ``@job`` / ``@periodic_job``; each run gets a fresh ``Work`` (its
own transaction manager and database session, committed when the function returns).
The queue is ``SqliteHuey`` (a file beside the data) unless a Redis URL is configured, then
``RedisHuey`` so that workers on many machines share one queue.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from huey import Huey, RedisHuey, SqliteHuey, crontab
from huey.api import TaskWrapper
from pyramid.config import Configurator
from pyramid.registry import Registry

from clientpay_connect.config import as_bool
from clientpay_connect.work import Work

log = logging.getLogger(__name__)

JobFunction = Callable[..., Any]


@dataclass(frozen=True)
class _JobSpec:
    function: JobFunction
    retries: int
    retry_delay: int
    schedule: dict[str, str] | None


_JOBS: dict[str, _JobSpec] = {}


def job(name: str, retries: int = 0, retry_delay: int = 0) -> Callable[[JobFunction], JobFunction]:
    """Declare ``function(work, *args)`` as the job ``name``."""

    def register(function: JobFunction) -> JobFunction:
        _JOBS[name] = _JobSpec(function, retries, retry_delay, None)
        return function

    return register


def periodic_job(name: str, **schedule: str) -> Callable[[JobFunction], JobFunction]:
    """Declare ``function(work)`` to run on a crontab schedule (minute=, hour=, …)."""

    def register(function: JobFunction) -> JobFunction:
        _JOBS[name] = _JobSpec(function, 0, 0, schedule)
        return function

    return register


def make_huey(settings: dict[str, Any]) -> Huey:
    immediate = as_bool(settings.get("clientpay.jobs.immediate", "false"))
    name = settings.get("clientpay.jobs.name") or "clientpay"
    redis_url = settings.get("clientpay.redis_url")
    if redis_url:
        return RedisHuey(name=name, url=redis_url, immediate=immediate, utc=True)
    path = settings["clientpay.jobs.sqlite_path"]
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    return SqliteHuey(name=name, filename=path, immediate=immediate, utc=True)


class JobQueue:
    """The app's Huey instance with every declared job bound to this app's registry."""

    def __init__(self, huey: Huey, registry: Registry):
        self.huey = huey
        self.registry = registry
        self._tasks: dict[str, TaskWrapper] = {}

    def bind_declared_jobs(self) -> None:
        for name, spec in _JOBS.items():
            if name not in self._tasks:
                self._tasks[name] = self._bind(name, spec)

    def _bind(self, name: str, spec: _JobSpec) -> TaskWrapper:
        def run(*args: Any) -> Any:
            return self.run_now(name, *args)

        run.__name__ = name.replace(".", "_")
        if spec.schedule is not None:
            return self.huey.periodic_task(crontab(**spec.schedule), name=name)(run)
        return self.huey.task(retries=spec.retries, retry_delay=spec.retry_delay, name=name)(run)

    def run_now(self, name: str, *args: Any) -> Any:
        """Run job ``name`` here, in its own transaction."""
        spec = _JOBS[name]
        with Work.fresh(self.registry) as work:
            return spec.function(work, *args)

    def enqueue(self, name: str, *args: Any, eta: dt.datetime | None = None) -> None:
        """Enqueue job ``name`` now, or for ``eta`` (an aware datetime) when given."""
        if name not in self._tasks:
            self.bind_declared_jobs()
        if eta is None:
            self._tasks[name](*args)
        else:
            self._tasks[name].schedule(args=args, eta=eta)

    def pending_count(self) -> int:
        return int(self.huey.pending_count())

    def consumer(self, workers: int) -> Any:
        return self.huey.create_consumer(workers=workers, worker_type="thread", periodic=True)


def includeme(config: Configurator) -> None:
    queue = JobQueue(make_huey(config.get_settings()), config.registry)
    config.registry["clientpay.jobs"] = queue
    # Bound at the very end of configuration, once every feature has declared its jobs.
    config.action(("clientpay.jobs.bind",), queue.bind_declared_jobs, order=100)
