"""The payment page's read path: outside the transaction manager, one statement, no BEGIN.

GET /pay/{token} is the one page anyone may load, and payers reload it. All it does with
the database is read one row (pay/facts.py), and through request.dbsession that row cost
far more than the reading: a session, its registration with the transaction manager (seven
event listeners each time), BEGIN, the statement, COMMIT or ROLLBACK and the session's
close, on every request. House rule 13 lets a read-only hot path leave the transaction
manager, and this is the only one:

- ``page_outside_tm`` is pyramid_tm's ``tm.activate_hook``: it leaves GET and HEAD of the
  payment page out (the receipt, the payer's API and every other route keep their
  transaction). request.dbsession cannot be used by such a request: its explicit manager
  has no transaction, so any use fails loudly instead of writing outside one.
- ``read_connection`` lends a pooled connection in autocommit: on PostgreSQL the statement
  runs with no BEGIN, COMMIT or ROLLBACK round trip; on SQLite no BEGIN is sent either, and
  the SELECT is its own implicit deferred read transaction (it takes no write lock, and
  sees everything committed before it began). One statement reads everything the page
  shows, so it needs no wider snapshot; a Connect link's invoices (a second statement) are
  written with the link and never change.
- Every request reads the row again: a link paid, cancelled or expired a moment ago shows
  its closed page on the very next request, whatever the page cache holds (its key is the
  row itself, page_cache.py). Recording the open is not this request's write either: it is
  queued, and written in batches by pay/opens.py.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from pyramid.config import Configurator
from pyramid.interfaces import IRoutesMapper
from pyramid.registry import Registry
from pyramid.request import Request
from pyramid_tm import is_tm_active
from sqlalchemy import Connection
from sqlalchemy.engine import Engine

from clientpay_connect.db import autocommit_reads
from clientpay_connect.pay.facts import LinkFacts, link_facts, read_link_facts

PAGE_ROUTE = "pay.page"
READ_METHODS = frozenset({"GET", "HEAD"})
# Where the autocommit view of the app's engine is kept (made once, at start-up).
READ_ENGINE = "clientpay.pay.read_engine"


def page_outside_tm(host_hook: Callable[[Request], bool] | None, request: Request) -> bool:
    """pyramid_tm's activate hook: False (no transaction) for a read of the payment page.

    The tween runs before routing, so the path is matched here against the page's own route
    (under whatever prefix a host mounted it)."""
    if request.method in READ_METHODS and _is_payment_page(request):
        return False
    return host_hook(request) if host_hook is not None else True


def _is_payment_page(request: Request) -> bool:
    route = request.registry.getUtility(IRoutesMapper).get_route(PAGE_ROUTE)
    return route is not None and route.match(request.path_info) is not None


@contextmanager
def read_connection(registry: Registry) -> Iterator[Connection]:
    """A connection to read the page's row on, outside any transaction of ours.

    The sessions' own bind decides where: normally the app's engine, through its autocommit
    view (the same pool); when a host (or the test suite) binds every session to one
    connection, that connection, so that the page sees what its sessions see."""
    bind = registry["dbsession_factory"].kw.get("bind")
    if isinstance(bind, Connection):
        yield bind
        return
    engine: Engine = registry[READ_ENGINE]
    with engine.connect() as connection:
        yield connection


def page_facts(request: Request) -> LinkFacts | None:
    """The facts of the link the page's URL names: on the read path when the transaction
    manager left this request out, else (a host's own activate hook kept it in) through the
    request's session like any other view."""
    token = request.matchdict["token"]
    if is_tm_active(request):
        return link_facts(request.dbsession, token)
    with read_connection(request.registry) as connection:
        return read_link_facts(connection, token)


def process_service(request: Request, iface: Any) -> Any:
    """request.find_service(iface) for a service that is one object for the whole process
    (the rate limiter, the page cache: their factories hand out what the registry holds).

    The factory registered for ``iface`` is found and called as find_service would, but
    without the request's service container, which pyramid_services builds on a request's
    first find_service (a registry of its own, the request registered in it, a subscriber
    notified): on the page that was a quarter of the view's time, for two look-ups."""
    return request.find_service_factory(iface)(None, request)


def includeme(config: Configurator) -> None:
    settings = config.get_settings()
    engine: Engine = config.registry["dbengine"]
    config.registry[READ_ENGINE] = autocommit_reads(engine)
    host_hook: Any = config.maybe_dotted(settings.get("tm.activate_hook"))
    # Read by pyramid_tm's tween factory when the app is made, after every includeme.
    settings["tm.activate_hook"] = functools.partial(page_outside_tm, host_hook)
