"""Fixtures shared by the functional tests.

The mail's: a real SMTP server on loopback and an app that sends through it (a test module
tunes the app by defining ``smtp_overrides``). Connect's: the test distribution that registers
the ``memory`` adapter, and a ledger of the matter system it reads. Sent Pages': links made
as the app makes them, on the module's ``account`` unless one is given.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import webtest
from pyramid.router import Router
from sqlalchemy.orm import Session

from clientpay_connect import main
from clientpay_connect.links.models import PaymentLink
from tests.support.databases import sharing_connection
from tests.support.embedding import HTTPS, embedded_settings
from tests.support.matter_adapter import (
    Ledger,
    registered_ledger,
    registered_test_adapter,
    sample_ledger,
)
from tests.support.sent import make_link
from tests.support.smtp import SMTPServer, bound_to, smtp_application

TODAY = dt.date.today()


@pytest.fixture(scope="module")
def smtp_server() -> Iterator[SMTPServer]:
    server = SMTPServer()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def smtp_overrides() -> dict[str, str]:
    """Settings of this module's SMTP app, beyond those every such app has."""
    return {}


@pytest.fixture(scope="module")
def smtp_app(
    app_settings: dict[str, Any], smtp_server: SMTPServer, smtp_overrides: dict[str, str]
) -> Iterator[Router]:
    with smtp_application(app_settings, smtp_server, **smtp_overrides) as application:
        yield application


@pytest.fixture
def smtp(smtp_server: SMTPServer) -> Iterator[SMTPServer]:
    """The server, empty and up for the test."""
    smtp_server.clear()
    smtp_server.start()
    yield smtp_server
    smtp_server.stop()


@pytest.fixture
def mail_app(smtp_app: Router, db_connection: Any) -> Iterator[Router]:
    """The SMTP app, on the test's own database connection."""
    with bound_to(smtp_app, db_connection):
        yield smtp_app


@pytest.fixture(scope="module")
def test_adapter_distribution(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """The ``memory`` adapter, registered by a test distribution as a third party's would be."""
    with registered_test_adapter(tmp_path_factory.mktemp("site")):
        yield


@pytest.fixture
def ledger() -> Iterator[tuple[str, Ledger]]:
    """The sample matter system (tests.support.matter_adapter) and its name."""
    book = sample_ledger(TODAY)
    with registered_ledger(book) as name:
        yield name, book


@pytest.fixture(scope="module")
def embedded_app(app_settings: dict[str, Any]) -> Iterator[Router]:
    """The app with another site (the matter software) allowed to frame it."""
    app = main({}, **embedded_settings(app_settings))
    yield app
    app.registry["dbengine"].dispose()


@pytest.fixture
def framed(embedded_app: Router, db_connection: Any) -> Iterator[webtest.TestApp]:
    """A browser on ``embedded_app`` over https (its cookie is Secure)."""
    with sharing_connection(embedded_app, db_connection):
        yield webtest.TestApp(embedded_app, extra_environ=HTTPS)


@pytest.fixture
def new_link(dbsession: Session, app: Router, account: Any) -> Callable[..., PaymentLink]:
    def make(**fields: Any) -> PaymentLink:
        return make_link(dbsession, app, fields.pop("account", account), **fields)

    return make
