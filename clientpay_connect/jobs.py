"""The job engine (Huey): jobs found by scanning, enqueued only after a commit.

A feature declares its jobs in its ``tasks.py`` with ``@job`` / ``@periodic_job``, and its
``includeme`` runs ``config.scan(".tasks")``: the scan registers them with the queue of the
app being configured (as warehouse's ``@tasks.task``). So an app has exactly the jobs of the
features it includes, and a declaration alone, in a module no app scans, registers nothing.
Each run gets a fresh ``Work`` (its own transaction manager and database session, committed
when the function returns).

The queue is ``SqliteHuey`` (a file beside the data) unless a Redis URL is configured, then
``RedisHuey`` so that workers on many machines share one queue.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, TypeVar

import venusian
from huey import Huey, RedisHuey, SqliteHuey, crontab
from huey.api import TaskWrapper
from pyramid.config import Configurator
from pyramid.registry import Registry

from clientpay_connect.config import as_bool
from clientpay_connect.work import Work

log = logging.getLogger(__name__)

JobFunction = Callable[..., Any]
T = TypeVar("T")
QUEUE_KEY = "clientpay.jobs"
MAX_POLL_SETTING = "clientpay.jobs.max_poll_seconds"
# The venusian category config.scan() reads unless told otherwise (Pyramid 2), so that a
# feature's plain ``config.scan(".tasks")`` finds its jobs, as it finds views.
SCAN_CATEGORY = "pyramid"


@dataclass(frozen=True)
class JobSpec:
    """A declared job: what runs, and how Huey is to run it."""

    name: str
    function: JobFunction
    retries: int = 0
    retry_delay: int = 0
    schedule: Mapping[str, str] | None = None


def job(name: str, retries: int = 0, retry_delay: int = 0) -> Callable[[JobFunction], JobFunction]:
    """Declare ``function(work, *args)`` as the job ``name``, registered when its module is
    scanned."""

    def declare(function: JobFunction) -> JobFunction:
        spec = JobSpec(name, function, retries, retry_delay)
        venusian.attach(function, _registrar(spec), category=SCAN_CATEGORY)
        return function

    return declare


def periodic_job(name: str, **schedule: str) -> Callable[[JobFunction], JobFunction]:
    """Declare ``function(work)`` to run on a crontab schedule (minute=, hour=, …),
    registered when its module is scanned."""

    def declare(function: JobFunction) -> JobFunction:
        spec = JobSpec(name, function, schedule=MappingProxyType(dict(schedule)))
        venusian.attach(function, _registrar(spec), category=SCAN_CATEGORY)
        return function

    return declare


def _registrar(spec: JobSpec) -> Callable[[Any, str, Any], None]:
    """The scan's callback: register ``spec`` with the scanning app's queue. An action, so
    that two features declaring one name is a configuration conflict, not a silent overwrite."""

    def register(scanner: Any, _name: str, _function: Any) -> None:
        config: Configurator = scanner.config
        queue = config.registry.get(QUEUE_KEY)
        if queue is None:
            raise LookupError(
                f"job {spec.name!r}: include clientpay_connect.foundation before scanning"
            )
        config.action(("clientpay.job", spec.name), queue.register, args=(spec,))

    return register


def make_huey(settings: dict[str, Any]) -> Huey:
    immediate = as_bool(settings.get("clientpay.jobs.immediate", "false"))
    name = settings.get("clientpay.jobs.name") or "clientpay"
    redis_url = settings.get("clientpay.redis_url")
    # Jobs report through the database (outbox rows, postings, attempts), never through
    # Huey's result store: keeping every job's return value would be one more write per job
    # on the queue's hot path, and rows nobody reads would pile up.
    if redis_url:
        return RedisHuey(name=name, url=redis_url, immediate=immediate, utc=True, results=False)
    path = settings["clientpay.jobs.sqlite_path"]
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    return SqliteHuey(name=name, filename=path, immediate=immediate, utc=True, results=False)


class JobQueue:
    """The app's Huey instance with the app's jobs bound to the app's registry."""

    def __init__(self, huey: Huey, registry: Registry):
        self.huey = huey
        self.registry = registry
        self._jobs: dict[str, JobSpec] = {}
        self._tasks: dict[str, TaskWrapper] = {}

    @property
    def jobs(self) -> Mapping[str, JobSpec]:
        """This app's jobs by name."""
        return MappingProxyType(self._jobs)

    def register(self, spec: JobSpec) -> None:
        """Make ``spec`` one of this app's jobs (what scanning its module does)."""
        self._jobs[spec.name] = spec
        self._tasks[spec.name] = self._bind(spec)

    def _bind(self, spec: JobSpec) -> TaskWrapper:
        name = spec.name

        def run(*args: Any) -> Any:
            return self.run_now(name, *args)

        run.__name__ = name.replace(".", "_")
        if spec.schedule is not None:
            return self.huey.periodic_task(crontab(**spec.schedule), name=name)(run)
        return self.huey.task(retries=spec.retries, retry_delay=spec.retry_delay, name=name)(run)

    def run_now(self, name: str, *args: Any) -> Any:
        """Run job ``name`` here, in its own transaction."""
        spec = _registered(self._jobs, name)
        with Work.fresh(self.registry) as work:
            return spec.function(work, *args)

    def enqueue(self, name: str, *args: Any, eta: dt.datetime | None = None) -> None:
        """Enqueue job ``name`` now, or for ``eta`` (an aware datetime) when given."""
        task = _registered(self._tasks, name)
        if eta is None:
            task(*args)
        else:
            task.schedule(args=args, eta=eta)

    def pending_count(self) -> int:
        return int(self.huey.pending_count())

    def consumer(self, workers: int) -> Any:
        # An idle worker backs off between looks at the queue, by Huey's default up to 10 s:
        # a job queued after a quiet spell (a large upload's links) waited that long before it
        # began. A look at the SQLite queue costs next to nothing; RedisHuey blocks on its
        # list instead and never sleeps.
        max_delay = float(self.registry.settings.get(MAX_POLL_SETTING) or 1)
        return self.huey.create_consumer(
            workers=workers, worker_type="thread", periodic=True, max_delay=max_delay
        )


def _registered(table: Mapping[str, T], name: str) -> T:
    try:
        return table[name]
    except KeyError:
        raise LookupError(f"no job {name!r} in this app: is its feature included?") from None


def includeme(config: Configurator) -> None:
    config.registry[QUEUE_KEY] = JobQueue(make_huey(config.get_settings()), config.registry)
