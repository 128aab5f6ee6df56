"""The ``sql`` adapter on each database it is tested on: SQLite, PostgreSQL and MariaDB, each
holding a small demo matter database made for the module."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest
from sqlalchemy import create_engine

from adapters.sql import SqlAdapter
from adapters.sql.demo import create_demo_matter_database
from clientpay_connect.connect.interfaces import AdapterConfig
from tests.support.matter_databases import KINDS, MatterRows, fresh_matter_database

TODAY = dt.date(2025, 6, 30)
DEMO_SIZE = {"clients": 40, "matters": 120, "invoices": 500}


@pytest.fixture(scope="module", params=KINDS)
def matter_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    with fresh_matter_database(request.param, tmp_path_factory.mktemp("matters")) as url:
        create_demo_matter_database(url, today=TODAY, **DEMO_SIZE)
        yield url


def sql_adapter(url: str, **settings: object) -> SqlAdapter:
    return SqlAdapter(AdapterConfig(settings={"url": url, **settings}, app_settings={}))


@pytest.fixture
def adapter(matter_url: str) -> Iterator[SqlAdapter]:
    made = sql_adapter(matter_url)
    yield made
    made.close()


@pytest.fixture(scope="module")
def rows(matter_url: str) -> Iterator[MatterRows]:
    engine = create_engine(matter_url)
    yield MatterRows(engine)
    engine.dispose()
