"""Fixtures shared by the functional tests.

The mail's: a real SMTP server on loopback and an app that sends through it (a test module
tunes the app by defining ``smtp_overrides``). Connect's: the test distribution that registers
the ``memory`` adapter, and a ledger of the matter system it reads.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest
from pyramid.router import Router

from tests.support.matter_adapter import (
    Ledger,
    registered_ledger,
    registered_test_adapter,
    sample_ledger,
)
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
