"""Fresh databases for a test session: a SQLite file, or a new PostgreSQL database."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import transaction
from alembic import command
from alembic.config import Config
from sqlalchemy import create_engine, make_url, text

from clientpay_connect import main
from clientpay_connect.cli import MIGRATIONS
from clientpay_connect.db import get_tm_session
from tests import factories

PG_ENV = "CLIENTPAY_TEST_DATABASE_URL"


def using_postgresql() -> bool:
    return bool(os.environ.get(PG_ENV))


@contextmanager
def fresh_database(folder: Path) -> Iterator[str]:
    """Yield the URL of an empty database that is dropped afterwards."""
    server = os.environ.get(PG_ENV)
    if not server:
        yield f"sqlite:///{folder / ('clientpay-' + uuid.uuid4().hex[:8] + '.sqlite')}"
        return
    name = "clientpay_test_" + uuid.uuid4().hex[:12]
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(server).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", MIGRATIONS)
    cfg.attributes["settings"] = {"sqlalchemy.url": url}
    return cfg


def migrate(url: str) -> None:
    # Through env.py's own engine: on SQLite it turns foreign keys off around the change,
    # which it can only do on a connection not yet in a transaction.
    command.upgrade(alembic_config(url), "head")


@contextmanager
def app_on_fresh_database(settings: dict[str, Any], folder: Path) -> Iterator[Any]:
    """The app on a migrated database of its own: its own pool, and whatever a test commits
    seen by no other test."""
    with fresh_database(folder) as url:
        migrate(url)
        app = main({}, **{**settings, "sqlalchemy.url": url})
        try:
            yield app
        finally:
            app.registry["dbengine"].dispose()


@contextmanager
def sharing_connection(app: Any, connection: Any) -> Iterator[None]:
    """Let ``app`` work inside the test's connection, so that it sees the test's rows and
    everything is rolled back with the test (on SQLite a second writer would wait forever)."""
    factory = app.registry["dbsession_factory"]
    # Put back as it was, not as named here: SQLAlchemy 2.1 renamed the default mode
    # (conservative_savepoint became conditional_savepoint) and refuses the old name.
    configured = dict(factory.kw)
    factory.configure(bind=connection, join_transaction_mode="create_savepoint")
    try:
        yield
    finally:
        factory.kw.clear()
        factory.kw.update(configured)


@contextmanager
def rolled_back_session(app: Any) -> Iterator[Any]:
    """A session of the test's own connection, which ``app`` shares (and the factories write
    to), everything rolled back at the end: for a test with an app of its own settings."""
    connection = app.registry["dbengine"].connect()
    outer = connection.begin()
    tm = transaction.TransactionManager(explicit=True)
    try:
        with sharing_connection(app, connection):
            tm.begin()
            session = get_tm_session(app.registry["dbsession_factory"], tm)
            factories.bind(session)
            yield session
    finally:
        factories.bind(None)
        tm.abort()
        outer.rollback()
        connection.close()
