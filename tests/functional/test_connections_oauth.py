"""An admin connects MyCase through the API: the OAuth dance against the fake MyCase over
real HTTP, tokens kept encrypted, refreshed once however many searches need it, and a dead
grant shown as "needs reauthorization" and emailed to the admins."""

from __future__ import annotations

import concurrent.futures
import datetime as dt
import logging
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from pyramid.router import Router
from sqlalchemy import select
from sqlalchemy.orm import Session

from clientpay_connect import main
from clientpay_connect.accounts.models import User
from clientpay_connect.accounts.services import create_api_token
from clientpay_connect.admin.models import NotificationRecipient
from clientpay_connect.connect.interfaces import TokenSet
from clientpay_connect.connect.models import Connection
from clientpay_connect.connect.services import store_tokens, stored_tokens
from clientpay_connect.db import utcnow
from clientpay_connect.mail.models import OutboxMessage
from tests.conftest import csrf_token, login
from tests.fakes.httpserver import running
from tests.fakes.mycase import CLIENT_SECRET, FakeMyCase
from tests.support.live_server import LiveServer, start_live_server


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeMyCase]:
    with running(FakeMyCase()) as server:
        bob = server.add_client("Bob", "Okafor", "bob@example.test")
        case = server.add_case("Okafor v. Okafor", "2025-0042", [bob])
        server.add_invoice(case, "MC-1001", "1200.00", paid="200.00")
        yield server


@pytest.fixture(autouse=True)
def loopback_oauth(monkeypatch: pytest.MonkeyPatch) -> None:
    # oauthlib refuses plain HTTP unless told; only the fake speaks it, on 127.0.0.1.
    monkeypatch.setenv("OAUTHLIB_INSECURE_TRANSPORT", "1")


@pytest.fixture(scope="module")
def app(app_settings: dict[str, Any], fake: FakeMyCase) -> Iterator[Router]:
    application = main({}, **{**app_settings, **fake.settings()})
    yield application
    application.registry["dbengine"].dispose()


def start_connection(testapp: Any, admin: User) -> dict[str, Any]:
    login(testapp, admin)
    headers = {"X-CSRF-Token": csrf_token(testapp)}
    answer = testapp.post_json(
        "/api/v1/connections", {"adapter": "mycase", "name": "MyCase"}, headers=headers, status=201
    ).json
    assert answer["status"] == "pending"
    return dict(answer)


def provider_redirect(authorize_url: str) -> str:
    """What the admin's browser does at MyCase: sign in, approve, be sent back."""
    answer = requests.get(authorize_url, allow_redirects=False, timeout=10)
    assert answer.status_code in (302, 303), answer.text
    back = urlsplit(answer.headers["Location"])
    return f"{back.path}?{back.query}"


def test_the_oauth_dance_connects_and_keeps_the_tokens_encrypted(
    testapp: Any, dbsession: Session, admin: User, fake: FakeMyCase
) -> None:
    started = start_connection(testapp, admin)
    done = testapp.get(provider_redirect(started["authorize_url"]), status=303)
    assert done.location.endswith("/admin/connections")
    connection = dbsession.get(Connection, started["id"])
    assert connection is not None
    dbsession.refresh(connection)
    assert connection.status == "connected"
    tokens = stored_tokens(testapp.app.registry["clientpay.encryptor"], connection)
    assert tokens is not None and tokens.access_token
    assert tokens.access_token not in (connection.tokens_encrypted or "")
    assert connection.oauth_state_hash is None and connection.oauth_verifier_encrypted is None
    found = testapp.get(
        "/api/v1/connect/search", {"connection_id": connection.id, "q": "okafor"}
    ).json
    assert [(i["number"], i["balance"]) for i in found["invoices"]] == [("MC-1001", "1000.00")]


def test_a_tampered_state_or_a_replayed_callback_is_refused(
    testapp: Any, dbsession: Session, admin: User
) -> None:
    started = start_connection(testapp, admin)
    back = provider_redirect(started["authorize_url"])
    tampered = back.replace("state=", "state=x")
    testapp.get(tampered, status=303)
    connection = dbsession.get(Connection, started["id"])
    assert connection is not None
    dbsession.refresh(connection)
    assert connection.status == "pending"
    # The state was used up by the refused attempt: the genuine answer cannot be replayed
    # after it either; the admin starts again.
    testapp.get(back, status=303)
    dbsession.refresh(connection)
    assert connection.status == "pending"


def logged_text(records: list[logging.LogRecord]) -> str:
    """Everything the records would write, whatever a formatter takes from them."""
    return "\n".join(f"{r.name} {r.getMessage()} {r.args!r} {r.exc_text or ''}" for r in records)


def test_no_code_secret_or_token_is_logged_even_with_the_root_logger_at_debug(
    testapp: Any,
    dbsession: Session,
    admin: User,
    fake: FakeMyCase,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """oauthlib and requests-oauthlib write them in clear at DEBUG; the app holds them at INFO
    (the ini files too), so turning root to DEBUG to chase a problem leaks nothing."""
    caplog.set_level(logging.DEBUG)
    started = start_connection(testapp, admin)
    back = provider_redirect(started["authorize_url"])
    code = parse_qs(urlsplit(back).query)["code"][0]
    testapp.get(back, status=303)
    connection = dbsession.get(Connection, started["id"])
    assert connection is not None
    dbsession.refresh(connection)
    encryptor = testapp.app.registry["clientpay.encryptor"]
    first = stored_tokens(encryptor, connection)
    assert first is not None
    # Due for a refresh: the next search exchanges the refresh token.
    soon = utcnow() + dt.timedelta(seconds=5)
    store_tokens(encryptor, connection, TokenSet(first.access_token, first.refresh_token, soon))
    dbsession.flush()
    before = fake.oauth.refreshes
    testapp.get("/api/v1/connect/search", {"connection_id": connection.id, "q": "okafor"})
    assert fake.oauth.refreshes == before + 1
    # Every token the provider ever issued, the refreshed ones included.
    issued = {*fake.oauth._access, *fake.oauth._refresh}
    assert {first.access_token, first.refresh_token} <= issued and len(issued) >= 4
    secrets = {"code": code, "client secret": CLIENT_SECRET}
    secrets.update({f"token {token[:4]}…": token for token in issued})
    # The capture works: DEBUG records of other loggers are there.
    assert any(r.levelno == logging.DEBUG for r in caplog.records)
    text = logged_text(caplog.records)
    assert [name for name, secret in secrets.items() if secret and secret in text] == []


@pytest.fixture(scope="module")
def live_mycase(
    base_settings: dict[str, Any], tmp_path_factory: pytest.TempPathFactory, fake: FakeMyCase
) -> Iterator[LiveServer]:
    yield from start_live_server(
        {**base_settings, **fake.settings()}, tmp_path_factory.mktemp("live-oauth")
    )


def form_token(html: str) -> str:
    return html.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]


def connect_live(live: LiveServer) -> int:
    """An admin signs in to the live server and connects MyCase; the connection's id."""
    browser = requests.Session()
    token = form_token(browser.get(f"{live.url}/login", timeout=10).text)
    credentials = {"email": live.admin.email, "password": live.admin.password}
    browser.post(
        f"{live.url}/login", data={**credentials, "csrf_token": token, "next": ""}, timeout=10
    )
    csrf = form_token(browser.get(f"{live.url}/", timeout=10).text)
    started = browser.post(
        f"{live.url}/api/v1/connections",
        json={"adapter": "mycase", "name": "MyCase"},
        headers={"X-CSRF-Token": csrf},
        timeout=10,
    ).json()
    back = browser.get(
        live.url + provider_redirect(started["authorize_url"]), allow_redirects=False, timeout=10
    )
    assert back.status_code == 303
    return int(started["id"])


def expire_soon(live: LiveServer, connection_id: int) -> str:
    """Make the stored access token due for a refresh; an API token for the staff user."""
    with live.dbsession() as session:
        connection = session.get(Connection, connection_id)
        assert connection is not None and connection.status == "connected"
        encryptor = live.app.registry["clientpay.encryptor"]
        tokens = stored_tokens(encryptor, connection)
        assert tokens is not None
        soon = utcnow() + dt.timedelta(seconds=5)
        store_tokens(
            encryptor, connection, TokenSet(tokens.access_token, tokens.refresh_token, soon)
        )
        user = session.execute(select(User).where(User.email == live.staff.email)).scalar_one()
        _row, api_token = create_api_token(session, user, "test")
    return api_token


def search(live: LiveServer, connection_id: int, api_token: str) -> requests.Response:
    return requests.get(
        f"{live.url}/api/v1/connect/search",
        params={"connection_id": connection_id, "q": "okafor"},
        headers={"Authorization": f"Bearer {api_token}"},
        timeout=30,
    )


def test_an_expiring_token_is_refreshed_once_under_ten_concurrent_searches(
    live_mycase: LiveServer, fake: FakeMyCase
) -> None:
    connection_id = connect_live(live_mycase)
    api_token = expire_soon(live_mycase, connection_id)
    before = fake.oauth.refreshes
    with concurrent.futures.ThreadPoolExecutor(10) as pool:
        answers = list(pool.map(lambda _: search(live_mycase, connection_id, api_token), range(10)))
    assert [a.status_code for a in answers] == [200] * 10
    assert fake.oauth.refreshes == before + 1


def test_a_dead_grant_needs_reauthorization_and_tells_the_admins(
    live_mycase: LiveServer, fake: FakeMyCase
) -> None:
    connection_id = connect_live(live_mycase)
    with live_mycase.dbsession() as session:
        firm_id = session.get(Connection, connection_id).firm_id  # type: ignore[union-attr]
        session.add(
            NotificationRecipient(
                firm_id=firm_id,
                email="boss@example.test",
                events=["connection_needs_reauthorization"],
            )
        )
    api_token = expire_soon(live_mycase, connection_id)
    fake.oauth.revoke_refresh_tokens()
    answer = search(live_mycase, connection_id, api_token)
    assert answer.status_code == 409 and answer.json()["error"] == "needs_reauthorization"
    with live_mycase.dbsession() as session:
        connection = session.get(Connection, connection_id)
        assert connection is not None and connection.status == "needs_reauthorization"
        notices = (
            session.execute(select(OutboxMessage).where(OutboxMessage.kind == "firm_notice"))
            .scalars()
            .all()
        )
        assert [n.params["event"] for n in notices] == ["connection_needs_reauthorization"]
    # Nothing more is asked of MyCase until an admin reconnects.
    assert search(live_mycase, connection_id, api_token).status_code == 409
