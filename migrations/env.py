"""Alembic environment: the database URL comes from the Pyramid settings (ini + environment)."""

from __future__ import annotations

import os
import re
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import plaster
from alembic import context
from sqlalchemy.engine import Connection

import clientpay_connect.models  # noqa: F401  (every model, so autogenerate sees them)
from clientpay_connect.config import resolve_settings
from clientpay_connect.db import Base, get_engine

config = context.config
target_metadata = Base.metadata


def app_settings() -> dict[str, object]:
    given = config.attributes.get("settings")
    if given is not None:
        return dict(given)
    ini = os.path.abspath(config.config_file_name or "development.ini")
    settings = plaster.get_settings(ini, "app:main")
    return resolve_settings(settings, here=os.path.dirname(ini))


def _only_on(index: Any) -> str | None:
    """The database an index is made on alone (``Index(...).ddl_if(dialect=...)``), if any."""
    return getattr(getattr(index, "_ddl_if", None), "dialect", None)


def for_this_database(dialect: str) -> Callable[..., bool]:
    """Leaves out of the comparison what the models create on another database only: it is
    rightly absent here."""

    def include(item: Any, _name: Any, type_: str, _reflected: bool, _compare_to: Any) -> bool:
        return type_ != "index" or _only_on(item) in (None, dialect)

    return include


@contextmanager
def quiet_about_other_databases_indexes(dialect: str) -> Iterator[None]:
    """Alembic warns of expression indexes it cannot compare on SQLite before it asks
    ``include_object``; those of another database are no news here (and the tests turn
    warnings into errors)."""
    names = [
        re.escape(str(index.name))
        for table in target_metadata.tables.values()
        for index in table.indexes
        if _only_on(index) not in (None, dialect)
    ]
    with warnings.catch_warnings():
        if names:
            warnings.filterwarnings(
                "ignore", message=f"autogenerate skipping .* index '({'|'.join(names)})'"
            )
        yield


def run_with(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        include_object=for_this_database(connection.dialect.name),
        # SQLite cannot ALTER most things; batch mode rebuilds the table instead.
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with (
        quiet_about_other_databases_indexes(connection.dialect.name),
        context.begin_transaction(),
    ):
        context.run_migrations()


@contextmanager
def sqlite_foreign_keys_off(connection: Connection) -> Iterator[None]:
    """SQLite's own procedure for changing a schema: foreign keys off around the change,
    then a check that every reference still holds.

    Batch mode rebuilds a table by copying it and dropping the old one, and with foreign keys
    on, that drop runs the ON DELETE actions of every row pointing at the table: a CASCADE
    would empty the referring table, a SET NULL would forget its references. The pragma only
    takes effect outside a transaction, hence on the driver's connection before any begins.
    """
    if connection.dialect.name != "sqlite":
        yield
        return
    driver = connection.connection.driver_connection
    assert driver is not None
    driver.execute("PRAGMA foreign_keys=OFF")
    try:
        yield
        broken = driver.execute("PRAGMA foreign_key_check").fetchall()
        if broken:
            raise RuntimeError(f"the migration left references that do not hold: {broken[:5]}")
    finally:
        driver.execute("PRAGMA foreign_keys=ON")


def run_migrations_offline() -> None:
    context.configure(
        url=str(app_settings()["sqlalchemy.url"]),
        target_metadata=target_metadata,
        literal_binds=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        run_with(connection)
        return
    engine = get_engine(app_settings())
    with engine.connect() as conn, sqlite_foreign_keys_off(conn):
        run_with(conn)
    engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
