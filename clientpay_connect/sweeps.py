"""Sweeps every worker process runs on a timer of its own, more often than Huey's periodic
tasks can run (once a minute at the finest).

A feature names a job and the setting that says how many seconds apart it runs
(``add_sweep(config, "postings.sweep", "clientpay.postings.sweep_seconds")``); ``clientpay
worker`` and ``clientpay serve`` start a ``SweepTimer`` beside their consumer. With several
worker processes each runs the sweep: a sweep must be safe to run anywhere at any moment (the
postings' sweep marks what it queues again with a conditional update).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from typing import Any

from pyramid.config import Configurator
from pyramid.registry import Registry

log = logging.getLogger(__name__)

SWEEPS_KEY = "clientpay.sweeps"


def add_sweep(config: Configurator, job_name: str, seconds_setting: str) -> None:
    """Run job ``job_name`` every ``settings[seconds_setting]`` seconds in every worker."""
    config.registry.setdefault(SWEEPS_KEY, {})[job_name] = seconds_setting


def declared_sweeps(registry: Registry) -> dict[str, float]:
    """Job name -> seconds between runs, for this app."""
    sweeps: Mapping[str, str] = registry.get(SWEEPS_KEY, {})
    return {name: float(registry.settings[setting]) for name, setting in sweeps.items()}


class SweepTimer:
    """One thread per sweep, each running its job (in a transaction of its own) every so
    many seconds until stopped. A failing run is logged; the next one comes as usual."""

    def __init__(self, queue: Any, sweeps: Mapping[str, float]):
        self.queue = queue
        self.sweeps = dict(sweeps)
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    @classmethod
    def for_app(cls, registry: Registry) -> SweepTimer:
        return cls(registry["clientpay.jobs"], declared_sweeps(registry))

    def start(self) -> None:
        for name, seconds in self.sweeps.items():
            thread = threading.Thread(
                target=self._every, args=(name, seconds), name=f"sweep-{name}", daemon=True
            )
            thread.start()
            self._threads.append(thread)

    def _every(self, name: str, seconds: float) -> None:
        while not self._stop.wait(seconds):
            try:
                self.queue.run_now(name)
            except Exception:  # the next run may well succeed; this one is in the log
                log.exception("sweep %s failed", name)

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=30)
