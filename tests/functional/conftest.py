"""Fixtures shared by the functional tests of the mail: a real SMTP server on loopback and
an app that sends through it. A test module tunes the app by defining ``smtp_overrides``."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from pyramid.router import Router

from tests.support.smtp import SMTPServer, bound_to, smtp_application


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
