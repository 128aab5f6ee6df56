"""Test base: one database per test session (SQLite, or PostgreSQL when
CLIENTPAY_TEST_DATABASE_URL is set), migrated by Alembic, and a savepoint rolled back after
every test. Redis is used for jobs and rate limits when CLIENTPAY_TEST_REDIS_URL is set.
"""

from __future__ import annotations

import logging
import os
import random
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import transaction
import webtest
from cryptography.fernet import Fernet
from pyramid.router import Router
from sqlalchemy.orm import Session

from clientpay_connect import main
from clientpay_connect.accounts.models import User
from clientpay_connect.accounts.services import create_api_token
from clientpay_connect.db import get_tm_session
from tests import factories
from tests.support import databases
from tests.support.live_server import LiveServer, start_live_server
from tests.support.localstripe import LocalStripe, running_localstripe

TEST_PASSWORD = factories.TEST_PASSWORD


@pytest.fixture(scope="session", autouse=True)
def session_log(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Everything the application logs during the session, kept in a file, so that the
    last test can check that no secret (link token, card number) was ever written to a log."""
    path = tmp_path_factory.mktemp("logs") / "session.log"
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setLevel(logging.DEBUG)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s %(message)s"))
    # Our code, the job engine (which logs each job with its arguments) and the web server.
    loggers = [logging.getLogger(n) for n in ("clientpay_connect", "huey", "waitress", "pyramid")]
    previous = [logger.level for logger in loggers]
    for logger in loggers:
        logger.addHandler(handler)
        logger.setLevel(logging.DEBUG)
    try:
        yield path
    finally:
        for logger, level in zip(loggers, previous, strict=True):
            logger.removeHandler(handler)
            logger.setLevel(level)
        handler.close()


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with databases.fresh_database(tmp_path_factory.mktemp("db")) as url:
        databases.migrate(url)
        yield url


@pytest.fixture(scope="session")
def base_settings(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Settings every test app starts from; a test may copy and change them."""
    data = tmp_path_factory.mktemp("data")
    redis_url = os.environ.get("CLIENTPAY_TEST_REDIS_URL", "")
    run = uuid.uuid4().hex[:10]
    return {
        # As long as start-up requires (32 bytes at least).
        "clientpay.secret": "test-secret-" + run + "-" + uuid.uuid4().hex,
        "clientpay.encryption_keys": Fernet.generate_key().decode(),
        "clientpay.secrets_file": "",
        "clientpay.redis_url": redis_url,
        "clientpay.limits.key_prefix": f"clientpay-test-{run}",
        "clientpay.jobs.name": f"clientpay-test-{run}",
        "clientpay.jobs.immediate": "true",
        # Each open written as its response is ready: the suite's apps share the test's one
        # connection, which the batch's own writer thread must not use (test_pay_open_batch.py
        # runs the thread on a database of its own).
        "clientpay.pay.opens_flush_seconds": "0",
        "clientpay.jobs.sqlite_path": str(data / "jobs.sqlite"),
        "clientpay.mail.maildir": str(data / "mail"),
        "clientpay.cookie_secure": "false",
        "clientpay.openapi.validate_responses": "true",
        "clientpay.public_url": "http://localhost",
        # The suite pays through the sandbox, as an instance for development does.
        "clientpay.development": "true",
        "clientpay.processor": "clientpay_connect.pay.processor.SandboxProcessor",
    }


@pytest.fixture(scope="session")
def app_settings(base_settings: dict[str, Any], database_url: str) -> dict[str, Any]:
    return {**base_settings, "sqlalchemy.url": database_url}


@pytest.fixture(scope="session")
def app(app_settings: dict[str, Any]) -> Iterator[Router]:
    application = main({}, **app_settings)
    yield application
    application.registry["dbengine"].dispose()


@pytest.fixture(scope="session")
def live_server(
    base_settings: dict[str, Any], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    """The real app served by waitress on loopback, on its own committed database."""
    yield from start_live_server(base_settings, tmp_path_factory.mktemp("live-db"))


@pytest.fixture(scope="session")
def localstripe() -> Iterator[LocalStripe]:
    """The fake Stripe API on a loopback port, for the whole session."""
    with running_localstripe() as server:
        yield server


@pytest.fixture(scope="session")
def stripe_settings(app_settings: dict[str, Any], localstripe: LocalStripe) -> dict[str, Any]:
    """The suite's settings with Stripe (at localstripe) as the processor, as in production."""
    return {
        **app_settings,
        "clientpay.development": "false",
        "clientpay.processor": "clientpay_connect.pay.stripe_processor.StripeProcessor",
        "clientpay.stripe.api_base": localstripe.url,
        # localstripe ignores Idempotency-Key: a retried confirmation would not be the same.
        "clientpay.stripe.max_network_retries": "0",
    }


@pytest.fixture(scope="session")
def stripe_app(stripe_settings: dict[str, Any]) -> Iterator[Router]:
    application = main({}, **stripe_settings)
    yield application
    application.registry["dbengine"].dispose()


@pytest.fixture
def db_connection(app: Router) -> Iterator[Any]:
    """The connection every session of this test uses; rolled back at the end."""
    connection = app.registry["dbengine"].connect()
    outer = connection.begin()
    try:
        with databases.sharing_connection(app, connection):
            yield connection
    finally:
        if outer.is_active:
            outer.rollback()
        connection.close()


@pytest.fixture
def dbsession(app: Router, db_connection: Any) -> Iterator[Session]:
    """A session for arranging data and checking results, inside the test's transaction."""
    tm = transaction.TransactionManager(explicit=True)
    tm.begin()
    session = get_tm_session(app.registry["dbsession_factory"], tm)
    factories.bind(session)
    try:
        yield session
    finally:
        factories.bind(None)
        tm.abort()


@pytest.fixture
def client_ip() -> str:
    # Each test its own address, so that one test's failed sign-ins cannot throttle another.
    return f"127.{random.randint(1, 254)}.{random.randint(1, 254)}.{random.randint(1, 254)}"


@pytest.fixture
def testapp(app: Router, db_connection: Any, client_ip: str) -> webtest.TestApp:
    return webtest.TestApp(app, extra_environ={"REMOTE_ADDR": client_ip, "HTTP_HOST": "localhost"})


@pytest.fixture
def firm(dbsession: Session) -> Any:
    return factories.FirmFactory()


@pytest.fixture
def admin(firm: Any) -> User:
    return factories.UserFactory(firm=firm, role="admin")


@pytest.fixture
def staff(firm: Any) -> User:
    return factories.UserFactory(firm=firm, role="staff")


def bearer(dbsession: Session, user: User) -> dict[str, str]:
    _row, token = create_api_token(dbsession, user, "test")
    dbsession.flush()
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def admin_auth(dbsession: Session, admin: User) -> dict[str, str]:
    return bearer(dbsession, admin)


@pytest.fixture
def staff_auth(dbsession: Session, staff: User) -> dict[str, str]:
    return bearer(dbsession, staff)


def login(
    testapp: webtest.TestApp, user: User, password: str = TEST_PASSWORD
) -> webtest.TestResponse:
    """Sign in through the real form; the app's session cookie stays in ``testapp``."""
    form = testapp.get("/login").forms[0]
    form["email"] = user.email
    form["password"] = password
    return form.submit(status=303)


def csrf_token(testapp: webtest.TestApp) -> str:
    """The session's CSRF token, as the pages embed it."""
    page = testapp.get("/")
    token = page.html.find("input", {"name": "csrf_token"})
    assert token is not None, "the page has no CSRF token"
    return str(token["value"])
