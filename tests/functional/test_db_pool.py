"""The app's connection pool on PostgreSQL (db.py ping_when_idle): a pooled connection that
has idled longer than PING_AFTER_IDLE_SECONDS is pinged before it is lent, and one whose
server end is gone (a restart, an idle timeout) is replaced, so that the request after a
quiet spell still succeeds. Against the real server: its backends are terminated as an
administrator would (pg_terminate_backend)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
import transaction
import webtest
from pyramid.router import Router
from sqlalchemy import create_engine, text

from clientpay_connect import db
from clientpay_connect.accounts.services import create_api_token, create_firm, create_user
from tests.support import databases

pytestmark = pytest.mark.skipif(
    not databases.using_postgresql(), reason="SQLite has no server to lose a connection to"
)
URL = "/api/v1/links"
# Short, so that the test need not idle for the real threshold.
SHORT_IDLE = 0.2


@pytest.fixture(scope="module")
def pool_app(
    base_settings: dict[str, Any], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Router]:
    """An app with a pool of its own on a database of its own (the suite's other apps share
    one connection, which no pool lends), and its data committed."""
    with databases.app_on_fresh_database(base_settings, tmp_path_factory.mktemp("pool")) as app:
        yield app


@pytest.fixture(scope="module")
def auth(pool_app: Router) -> dict[str, str]:
    tm = transaction.TransactionManager(explicit=True)
    with tm:
        session = db.get_tm_session(pool_app.registry["dbsession_factory"], tm)
        firm = create_firm(session, "Pool LLP", "pool-llp")
        user = create_user(session, firm, "pool@example.test", "staff", "pool-password-123")
        _row, token = create_api_token(session, user, "pool")
    return {"Authorization": f"Bearer {token}"}


def app_backends(app: Router) -> set[int]:
    """The server processes of the app's pooled connections: asked through the pool itself,
    so that no other process on the database (an autovacuum worker, a closing connection of
    another engine) is taken for one of them."""
    engine = app.registry["dbengine"]
    with engine.connect() as connection:
        return {connection.execute(text("SELECT pg_backend_pid()")).scalar_one()}


def terminate(app: Router, pids: set[int]) -> None:
    # Autocommit: within one transaction PostgreSQL shows pg_stat_activity as it was at the
    # transaction's first look, so a backend seen alive then stayed "alive" to the loop below
    # however long it waited (the test failed whenever the first look beat the exit).
    admin = create_engine(app.registry["dbengine"].url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            for pid in pids:
                assert connection.execute(text("SELECT pg_terminate_backend(:p)"), {"p": pid})
            # pg_terminate_backend only signals: wait until the processes are gone.
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                alive = connection.execute(
                    text("SELECT count(*) FROM pg_stat_activity WHERE pid = ANY(:p)"),
                    {"p": list(pids)},
                ).scalar_one()
                if not alive:
                    return
                time.sleep(0.05)
        raise AssertionError(f"backends {pids} still alive")
    finally:
        admin.dispose()


def test_a_connection_killed_while_idle_is_replaced_before_a_request_uses_it(
    pool_app, auth, monkeypatch
):
    monkeypatch.setattr(db, "PING_AFTER_IDLE_SECONDS", SHORT_IDLE)
    client = webtest.TestApp(pool_app, extra_environ={"HTTP_HOST": "localhost"})
    assert client.get(URL, headers=auth).json["total"] == 0
    idle = app_backends(pool_app)
    assert idle  # the pool kept the request's connection
    terminate(pool_app, idle)
    time.sleep(SHORT_IDLE * 2)

    assert client.get(URL, headers=auth).json["total"] == 0
    assert app_backends(pool_app).isdisjoint(idle)  # served by a new connection


def test_a_read_whose_connection_was_lost_within_the_threshold_is_served_on_a_new_one(
    pool_app, auth, monkeypatch
):
    """What the threshold trades: a connection lost less than PING_AFTER_IDLE_SECONDS after
    its last use is not pinged, and the request that gets it finds it lost. That invalidates
    the pool (SQLAlchemy), and a GET is then tried again (db.retry_lost_connection_tween) on a
    new connection."""
    monkeypatch.setattr(db, "PING_AFTER_IDLE_SECONDS", 3600.0)
    client = webtest.TestApp(pool_app, extra_environ={"HTTP_HOST": "localhost"})
    client.get(URL, headers=auth)
    idle = app_backends(pool_app)
    terminate(pool_app, idle)

    assert client.get(URL, headers=auth).json["total"] == 0
    assert app_backends(pool_app).isdisjoint(idle)


def test_a_write_whose_connection_was_lost_fails_once_then_the_pool_recovers(
    pool_app, auth, monkeypatch
):
    """A POST is not tried again (a view's effects beyond the database must not run twice):
    it answers 500, and the next request is served on a new connection."""
    monkeypatch.setattr(db, "PING_AFTER_IDLE_SECONDS", 3600.0)
    client = webtest.TestApp(pool_app, extra_environ={"HTTP_HOST": "localhost"})
    client.get(URL, headers=auth)
    idle = app_backends(pool_app)
    terminate(pool_app, idle)

    answer = client.post_json(URL + "/cancel", {"ids": [1]}, headers=auth, status=500)
    assert answer.json["error"] == "server_error"
    assert client.get(URL, headers=auth).json["total"] == 0
    assert app_backends(pool_app).isdisjoint(idle)
