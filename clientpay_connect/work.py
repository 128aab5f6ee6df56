"""One unit of work: the database session, its transaction manager and the app's registry.

Views build it from their request (``Work.from_request``); jobs get a fresh one
(``Work.fresh``). Services take a ``Work`` rather than a request, so the same service runs
under a view and under a job; code without a request reaches our boundaries through
``work.find_service(IFoo)`` as a view would (the pattern of warehouse's tasks).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import transaction
from pyramid.interfaces import IRequestFactory
from pyramid.registry import Registry
from pyramid.request import Request, apply_request_extensions
from sqlalchemy.orm import Session

from clientpay_connect.db import get_tm_session

# Lets find_service tell "no context given" (the request's own) from an explicit None.
_UNSET: Any = object()


class Work:
    """A session joined to ``tm``, and the registry of the app it works for."""

    def __init__(
        self,
        registry: Registry,
        dbsession: Session,
        tm: transaction.TransactionManager,
        request: Request | None = None,
    ):
        self.registry = registry
        self.dbsession = dbsession
        self.tm = tm
        self._request = request
        self._blank = False

    @classmethod
    def from_request(cls, request: Request) -> Work:
        return cls(request.registry, request.dbsession, request.tm, request)

    @classmethod
    @contextmanager
    def fresh(cls, registry: Registry) -> Iterator[Work]:
        """A new transaction of its own, committed when the block ends (aborted on error)."""
        tm = transaction.TransactionManager(explicit=True)
        with tm:
            dbsession = get_tm_session(registry["dbsession_factory"], tm)
            yield cls(registry, dbsession, tm)

    @property
    def settings(self) -> dict[str, Any]:
        settings: dict[str, Any] = self.registry.settings
        return settings

    @property
    def has_request(self) -> bool:
        """Whether a view's request (not a blank one made for a job) stands behind this."""
        return self._request is not None and not self._blank

    @property
    def request(self) -> Request:
        """The view's request, or (in a job) a blank one bound to this registry, this
        session and this transaction manager, so that service factories find what a view
        would give them."""
        if self._request is None:
            # The app's own request class (request_type.py): it carries the extensions.
            request = self.registry.queryUtility(IRequestFactory, default=Request).blank("/")
            request.registry = self.registry
            apply_request_extensions(request)
            request.tm = self.tm
            request.dbsession = self.dbsession
            self._request = request
            self._blank = True
        return self._request

    def find_service(self, iface: Any, context: Any = _UNSET, name: str = "") -> Any:
        """``request.find_service``: the view's context unless ``context`` is given."""
        if context is _UNSET:
            return self.request.find_service(iface, name=name)
        return self.request.find_service(iface, context=context, name=name)

    def checkpoint(self) -> None:
        """Commit what this step wrote, so it holds whatever comes next, and begin again."""
        self.tm.commit()
        self.tm.begin()

    def rollback_and_begin(self) -> None:
        """Abandon what this step wrote and begin again."""
        self.tm.abort()
        self.tm.begin()

    def enqueue_after_commit(self, job: str, *args: Any, eta: dt.datetime | None = None) -> None:
        """Enqueue ``job`` (for ``eta`` if given) once the current transaction has committed;
        never if it aborts. A lost enqueue is repaired by the feature's sweep."""
        queue = self.registry["clientpay.jobs"]

        def enqueue_if_committed(committed: bool) -> None:
            if committed:
                queue.enqueue(job, *args, eta=eta)

        self.tm.get().addAfterCommitHook(enqueue_if_committed)
