"""GET /api/v1/links outside the transaction manager (sent/__init__.py, db.read_session):
the token check and the page read on a session of their own, on PostgreSQL in the driver's
autocommit (no BEGIN, no ROLLBACK); every answer as it was, every refusal too.

On an app of its own, on a fresh database whose rows are committed: the suite's usual shared
connection would hide which connection a read runs on, in which state. SQLite, and
PostgreSQL when CLIENTPAY_TEST_DATABASE_URL is set.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest
import transaction
import webtest
from pyramid.request import Request
from pyramid.router import Router
from sqlalchemy import event, select, text, update

from clientpay_connect.accounts.models import ApiToken
from clientpay_connect.accounts.services import create_api_token, create_firm, create_user
from clientpay_connect.admin.models import MerchantAccount
from clientpay_connect.db import (
    ReadOnlyError,
    ReadOnlySession,
    get_tm_session,
    outside_tm_for_reads,
    utcnow,
)
from clientpay_connect.links.models import PaymentLink
from tests.conftest import TEST_PASSWORD, login
from tests.support.databases import app_on_fresh_database
from tests.support.sent import make_link

LINKS = "/api/v1/links"


@pytest.fixture(scope="module")
def fresh_app(
    base_settings: dict[str, Any], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Router]:
    with app_on_fresh_database(base_settings, tmp_path_factory.mktemp("links-read")) as app:
        yield app


def committed(app: Router, work: Any) -> Any:
    """``work(session)`` in a transaction of its own, committed."""
    tm = transaction.TransactionManager(explicit=True)
    with tm:
        return work(get_tm_session(app.registry["dbsession_factory"], tm))


def firm_with_links(app: Router, slug: str, count: int) -> dict[str, Any]:
    """A firm, its staff member (with a password and an API token) and ``count`` links."""

    def make(session: Any) -> dict[str, Any]:
        firm = create_firm(session, f"{slug} LLP", slug)
        user = create_user(session, firm, f"staff@{slug}.test", "staff", TEST_PASSWORD)
        account = MerchantAccount(firm_id=firm.id, name="Operating", kind="operating")
        session.add(account)
        session.flush()
        row, token = create_api_token(session, user, "grid")
        links = [make_link(session, app, account, 1_000 + n) for n in range(count)]
        return {
            "user": user,
            "token_id": row.id,
            "auth": {"Authorization": f"Bearer {token}"},
            "ids": sorted(link.id for link in links),
        }

    return committed(app, make)


@pytest.fixture(scope="module")
def firms(fresh_app: Router) -> dict[str, dict[str, Any]]:
    return {
        "north": firm_with_links(fresh_app, "north", 3),
        "south": firm_with_links(fresh_app, "south", 2),
    }


@pytest.fixture
def browser(fresh_app: Router) -> webtest.TestApp:
    return webtest.TestApp(fresh_app, extra_environ={"HTTP_HOST": "localhost"})


def statements_of(app: Router, call: Any) -> list[tuple[str, bool]]:
    """The statements ``call`` made the app run, each with whether its connection was in the
    driver's autocommit then (psycopg sends no BEGIN in autocommit)."""
    seen: list[tuple[str, bool]] = []

    def note(conn: Any, _cursor: Any, sql: str, *_args: Any) -> None:
        autocommit = bool(getattr(conn.connection.driver_connection, "autocommit", False))
        seen.append((" ".join(sql.split())[:60], autocommit))

    engine = app.registry["dbengine"]
    event.listen(engine, "before_cursor_execute", note)
    try:
        call()
    finally:
        event.remove(engine, "before_cursor_execute", note)
    return seen


def listed_ids(browser: webtest.TestApp, auth: dict[str, str], **params: str) -> list[int]:
    body = browser.get(LINKS, {"sort": "created_at", **params}, headers=auth)
    return sorted(item["id"] for item in body.json["items"])


def test_the_list_is_left_out_of_the_transaction_manager_and_nothing_else(fresh_app):
    def hook(method: str, path: str) -> bool:
        request = Request.blank(path, method=method)
        request.registry = fresh_app.registry
        return outside_tm_for_reads(("api.links",), None, request)

    assert hook("GET", LINKS) is False
    assert hook("HEAD", LINKS) is False
    # Quick Link (the same route's POST), a link, the export: in a transaction as before.
    assert hook("POST", LINKS) is True
    assert hook("GET", f"{LINKS}/5") is True
    assert hook("GET", f"{LINKS}/export.xlsx") is True


def test_the_list_reads_in_autocommit_on_postgresql(fresh_app, firms, browser):
    north = firms["north"]
    # Once before: the token's use is recorded then (a write of its own, after the request),
    # and not again within the minute.
    browser.get(LINKS, headers=north["auth"])
    answers: list[Any] = []
    seen = statements_of(
        fresh_app, lambda: answers.append(browser.get(LINKS, headers=north["auth"]))
    )
    body = answers[0].json
    assert sorted(item["id"] for item in body["items"]) == north["ids"]
    assert body["total"] == 3
    sqls = [sql for sql, _autocommit in seen]
    if fresh_app.registry["dbengine"].dialect.name == "postgresql":
        # The token check and the page, each its own transaction: no BEGIN sent by psycopg.
        assert len(seen) == 2 and all(autocommit for _sql, autocommit in seen), seen
    else:
        # One deferred read transaction (SQLite's BEGIN is ours, through SQLAlchemy's event),
        # which keeps no link counts: the total is counted.
        assert sqls[0] == "BEGIN", sqls
        sqls = sqls[1:]
    assert all(sql.startswith("SELECT") for sql in sqls), sqls
    if fresh_app.registry["dbengine"].dialect.name == "postgresql":
        with fresh_app.registry["dbengine"].connect() as conn:
            idle = conn.execute(
                text(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                    " AND state = 'idle in transaction'"
                )
            ).scalar()
        assert idle == 0


def test_each_firm_sees_only_its_own_links_with_the_same_query(firms, browser):
    for _round in range(2):  # the second time, on the statements kept from the first
        for name, other in (("north", "south"), ("south", "north")):
            ids = listed_ids(browser, firms[name]["auth"])
            assert ids == firms[name]["ids"]
            assert not set(ids) & set(firms[other]["ids"])


def test_a_revoked_token_is_refused(fresh_app, browser):
    firm = firm_with_links(fresh_app, "revoked", 1)
    assert browser.get(LINKS, headers=firm["auth"]).status_int == 200
    committed(
        fresh_app,
        lambda session: session.execute(
            update(ApiToken).where(ApiToken.id == firm["token_id"]).values(revoked_at=utcnow())
        ),
    )
    answer = browser.get(LINKS, headers=firm["auth"], status=401)
    assert answer.json["error"] == "unauthenticated"


def test_an_unknown_token_is_refused(browser):
    answer = browser.get(LINKS, headers={"Authorization": "Bearer cpc_nothing"}, status=401)
    assert answer.json["error"] == "unauthenticated"


def test_the_tokens_use_is_still_recorded(fresh_app, browser):
    firm = firm_with_links(fresh_app, "recorded", 1)
    browser.get(LINKS, headers=firm["auth"])

    def last_used(session: Any) -> dt.datetime | None:
        return session.execute(
            select(ApiToken.last_used_at).where(ApiToken.id == firm["token_id"])
        ).scalar_one()

    assert committed(fresh_app, last_used) is not None


def test_a_signed_in_person_reads_the_list_too(fresh_app, firms, browser):
    login(browser, firms["south"]["user"])
    body = browser.get(LINKS).json
    assert sorted(item["id"] for item in body["items"]) == firms["south"]["ids"]


def test_a_wrong_query_is_still_a_422(firms, browser):
    answer = browser.get(LINKS, {"sort": "nonsense"}, headers=firms["north"]["auth"], status=422)
    assert answer.json["errors"][0]["field"] == "sort"


def test_the_read_session_refuses_to_write(fresh_app, firms):
    session = ReadOnlySession(bind=fresh_app.registry["dbengine"])
    try:
        link = session.get(PaymentLink, firms["north"]["ids"][0])
        assert link is not None
        link.recipient_name = "changed"
        with pytest.raises(ReadOnlyError):
            session.flush()
        session.rollback()
        with pytest.raises(ReadOnlyError):
            session.execute(update(PaymentLink).values(recipient_name="changed"))
    finally:
        session.close()
    name = committed(
        fresh_app,
        lambda s: s.execute(
            select(PaymentLink.recipient_name).where(PaymentLink.id == firms["north"]["ids"][0])
        ).scalar_one(),
    )
    assert name != "changed"
