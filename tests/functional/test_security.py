"""Security of the foundation: CSRF, sign-in throttling, how secrets are stored, who gets in."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import webtest
from argon2 import PasswordHasher
from pyramid.config import Configurator
from pyramid.request import Request
from pyramid.router import Router
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from clientpay_connect import main
from clientpay_connect.accounts.models import ApiToken, User
from clientpay_connect.accounts.services import create_api_token, create_user, set_password
from clientpay_connect.admin.models import FirmSettings
from clientpay_connect.config import resolve_settings
from clientpay_connect.db import Base, utcnow
from clientpay_connect.security import STAFF
from tests.conftest import TEST_PASSWORD, csrf_token, login
from tests.support.databases import sharing_connection

MERCHANT_ACCOUNTS = "/api/v1/merchant-accounts"


def login_form_token(testapp: webtest.TestApp) -> str:
    return str(testapp.get("/login").form["csrf_token"].value)


def post_login(
    testapp: webtest.TestApp, token: str, email: str, password: str, ip: str, status: int
) -> webtest.TestResponse:
    return testapp.post(
        "/login",
        {"email": email, "password": password, "csrf_token": token, "next": ""},
        extra_environ={"REMOTE_ADDR": ip},
        status=status,
    )


def signed_in(testapp: webtest.TestApp) -> bool:
    response = testapp.get("/", status="*")
    assert response.status_int in (200, 302), response.status
    return response.status_int == 200


# --- CSRF ----------------------------------------------------------------------------------


def test_login_form_without_csrf_token_is_refused(testapp, staff):
    testapp.get("/login")  # a session exists, so only the token is missing
    page = testapp.post("/login", {"email": staff.email, "password": TEST_PASSWORD}, status=403)
    assert "reload the page" in page.text
    assert not signed_in(testapp)


def test_login_form_with_another_sessions_token_is_refused(app, testapp, staff):
    other = webtest.TestApp(app, extra_environ={"HTTP_HOST": "localhost"})
    foreign_token = login_form_token(other)
    login_form_token(testapp)
    testapp.post(
        "/login",
        {"email": staff.email, "password": TEST_PASSWORD, "csrf_token": foreign_token},
        status=403,
    )
    assert not signed_in(testapp)


def test_logout_without_csrf_token_is_refused_and_the_session_stays(testapp, staff):
    login(testapp, staff)
    testapp.post("/logout", status=403)
    assert signed_in(testapp)
    testapp.post("/logout", {"csrf_token": csrf_token(testapp)}, status=303)
    assert not signed_in(testapp)


def test_https_form_from_another_origin_is_refused_even_with_the_token(testapp, staff):
    https = {"wsgi.url_scheme": "https", "HTTP_HOST": "localhost"}
    token = str(testapp.get("/login", extra_environ=https).form["csrf_token"].value)
    form = {"email": staff.email, "password": TEST_PASSWORD, "csrf_token": token}
    testapp.post(
        "/login", form, headers={"Origin": "https://evil.example"}, extra_environ=https, status=403
    )
    testapp.post(
        "/login", form, headers={"Origin": "https://localhost"}, extra_environ=https, status=303
    )


def test_api_write_with_the_session_needs_the_csrf_header(testapp, dbsession, admin):
    login(testapp, admin)
    change = {"disclaimer": "Payments are final."}
    refused = testapp.put_json("/api/v1/settings", change, status=403).json
    assert refused["error"] == "csrf"
    refused = testapp.put_json(
        "/api/v1/settings", change, headers={"X-CSRF-Token": "not-the-token"}, status=403
    ).json
    assert refused["error"] == "csrf"
    assert dbsession.get(FirmSettings, admin.firm_id).disclaimer == ""

    token = csrf_token(testapp)
    body = testapp.put_json(
        "/api/v1/settings", change, headers={"X-CSRF-Token": token}, status=200
    ).json
    assert body["disclaimer"] == "Payments are final."


def test_api_write_with_a_bearer_token_needs_no_csrf_token(testapp, dbsession, admin, admin_auth):
    change = {"disclaimer": "Bearer writes need no CSRF token."}
    body = testapp.put_json("/api/v1/settings", change, headers=admin_auth, status=200).json
    assert body["disclaimer"] == change["disclaimer"]
    dbsession.expire_all()
    assert dbsession.get(FirmSettings, admin.firm_id).disclaimer == change["disclaimer"]


# The same rules for an endpoint that does not belong to any feature: CSRF is on by default
# for every view, not something each feature remembers.
def probe_write(request: Request) -> dict[str, Any]:
    return {"written_by": request.user.email}


@pytest.fixture(scope="module")
def probe_app(base_settings, database_url) -> Iterator[Router]:
    settings = resolve_settings({**base_settings, "sqlalchemy.url": database_url})
    with Configurator(settings=settings) as config:
        config.include("clientpay_connect")
        config.add_route("test.probe", "/api/v1/test-probe")
        config.add_view(
            probe_write,
            route_name="test.probe",
            request_method="POST",
            renderer="json",
            permission=STAFF,
        )
    application = config.make_wsgi_app()
    yield application
    application.registry["dbengine"].dispose()


def test_a_new_json_write_endpoint_is_csrf_checked_by_default(
    probe_app, db_connection, dbsession, staff, client_ip
):
    auth = {"Authorization": "Bearer " + create_api_token(dbsession, staff, "probe")[1]}
    dbsession.flush()
    with sharing_connection(probe_app, db_connection):
        client = webtest.TestApp(
            probe_app, extra_environ={"REMOTE_ADDR": client_ip, "HTTP_HOST": "localhost"}
        )
        login(client, staff)
        assert client.post_json("/api/v1/test-probe", {}, status=403).json["error"] == "csrf"
        token = csrf_token(client)
        answer = client.post_json("/api/v1/test-probe", {}, headers={"X-CSRF-Token": token})
        assert answer.json == {"written_by": staff.email}

        anonymous = webtest.TestApp(probe_app, extra_environ={"HTTP_HOST": "localhost"})
        assert anonymous.post_json("/api/v1/test-probe", {}, headers=auth).json == {
            "written_by": staff.email
        }


# --- Sign-in throttling ------------------------------------------------------------------

FREE = 3
DELAY = 30
PER_IP = 5


@pytest.fixture(scope="module")
def throttled_app(base_settings, database_url) -> Iterator[Router]:
    settings = {
        **base_settings,
        "sqlalchemy.url": database_url,
        # Its own counters (in Redis when the tests use it), apart from every other app's.
        "clientpay.limits.key_prefix": "clientpay-throttle-" + uuid.uuid4().hex[:8],
        "clientpay.limits.login_free_failures": str(FREE),
        "clientpay.limits.login_delay_seconds": str(DELAY),
        "clientpay.limits.login_failures_per_ip": f"{PER_IP}/15minutes",
    }
    application = main({}, **settings)
    yield application
    application.registry["dbengine"].dispose()


@pytest.fixture
def throttled(throttled_app, db_connection) -> Iterator[webtest.TestApp]:
    with sharing_connection(throttled_app, db_connection):
        yield webtest.TestApp(throttled_app, extra_environ={"HTTP_HOST": "localhost"})


def new_ip() -> str:
    raw = uuid.uuid4().bytes
    return f"10.{raw[0]}.{raw[1]}.{raw[2]}"


def retry_after(response: webtest.TestResponse) -> int:
    return int(response.headers["Retry-After"])


def test_wrong_passwords_from_one_address_make_it_wait_and_never_lock_the_owner_out(
    throttled, staff
):
    stranger = new_ip()
    token = login_form_token(throttled)
    for _ in range(FREE):
        free = post_login(throttled, token, staff.email, "wrong password", stranger, 400)
        assert "Retry-After" not in free.headers
    slowed = post_login(throttled, token, staff.email, "wrong password", stranger, 400)
    assert "That email and password do not match." in slowed.text
    assert f"Please wait {DELAY} seconds before trying again." in slowed.text
    assert retry_after(slowed) == DELAY

    # While the wait lasts the password is not even looked at, the right one included.
    waiting = post_login(throttled, token, staff.email, TEST_PASSWORD, stranger, 429)
    assert "Too many wrong passwords" in waiting.text
    assert "before trying again" in waiting.text
    assert 0 < retry_after(waiting) <= DELAY
    assert not signed_in(throttled)

    # The owner, elsewhere, is not held back by the stranger's guesses.
    post_login(throttled, token, staff.email, TEST_PASSWORD, new_ip(), 303)
    assert signed_in(throttled)


def test_the_wait_is_for_that_address_alone(throttled, staff, firm):
    from tests.factories import UserFactory

    ip = new_ip()
    token = login_form_token(throttled)
    for _ in range(FREE + 1):
        post_login(throttled, token, staff.email, "wrong password", ip, 400)
    colleague = UserFactory(firm=firm)
    post_login(throttled, token, colleague.email, TEST_PASSWORD, ip, 303)


def test_an_unknown_address_waits_just_like_a_real_one(throttled):
    """Otherwise the wait would tell which addresses have accounts."""
    ip = new_ip()
    token = login_form_token(throttled)
    nobody = f"nobody-{uuid.uuid4().hex[:6]}@example.test"
    for _ in range(FREE):
        post_login(throttled, token, nobody, "x", ip, 400)
    assert retry_after(post_login(throttled, token, nobody, "x", ip, 400)) == DELAY
    post_login(throttled, token, nobody, "x", ip, 429)


def test_failures_from_one_address_hold_it_back_for_every_account(throttled, firm):
    from tests.factories import UserFactory

    ip = new_ip()
    token = login_form_token(throttled)
    for n in range(PER_IP):
        post_login(throttled, token, f"nobody{n}-{uuid.uuid4().hex[:6]}@example.test", "x", ip, 400)
    user = UserFactory(firm=firm)
    refused = post_login(throttled, token, user.email, TEST_PASSWORD, ip, 429)
    assert retry_after(refused) == 15 * 60
    assert "please wait 15 minutes before trying again" in refused.text
    post_login(throttled, token, user.email, TEST_PASSWORD, new_ip(), 303)


def test_a_successful_sign_in_clears_the_failures(throttled, staff):
    ip = new_ip()
    token = login_form_token(throttled)
    for _ in range(FREE - 1):
        post_login(throttled, token, staff.email, "wrong password", ip, 400)
    post_login(throttled, token, staff.email, TEST_PASSWORD, ip, 303)

    throttled.reset()
    token = login_form_token(throttled)
    # Without the reset these would be failures FREE + 1 and beyond: waits, then a 429.
    for _ in range(FREE - 1):
        free = post_login(throttled, token, staff.email, "wrong password", ip, 400)
        assert "Retry-After" not in free.headers
    post_login(throttled, token, staff.email, TEST_PASSWORD, ip, 303)


# --- Secrets at rest ---------------------------------------------------------------------


def every_stored_value(session: Session) -> list[str]:
    """Every cell of every table, as text: what a stolen database dump would show."""
    values = []
    for table in Base.metadata.sorted_tables:
        for row in session.execute(select(table)):
            values.extend(str(cell) for cell in row if cell is not None)
    return values


def test_passwords_are_stored_only_as_argon2_hashes(testapp, dbsession, firm):
    password = "plain-" + uuid.uuid4().hex
    user = create_user(
        dbsession, firm, f"hash-{uuid.uuid4().hex[:6]}@example.test", "staff", password
    )
    dbsession.flush()

    stored = dbsession.execute(
        text("SELECT password_hash FROM users WHERE id = :id"), {"id": user.id}
    ).scalar_one()
    assert stored.startswith("$argon2id$")
    assert PasswordHasher().verify(stored, password)
    assert not any(password in value for value in every_stored_value(dbsession))

    login(testapp, user, password)
    dbsession.expire_all()
    assert not any(password in value for value in every_stored_value(dbsession))


def test_api_tokens_are_stored_only_as_sha256_hashes(testapp, dbsession, staff):
    row, token = create_api_token(dbsession, staff, "integration")
    dbsession.flush()

    stored = dbsession.execute(
        text("SELECT token_hash, prefix FROM api_tokens WHERE id = :id"), {"id": row.id}
    ).one()
    assert stored.token_hash == hashlib.sha256(token.encode()).hexdigest()
    assert token.startswith(stored.prefix) and len(stored.prefix) < len(token) // 2
    assert not any(token in value for value in every_stored_value(dbsession))

    testapp.get(MERCHANT_ACCOUNTS, headers={"Authorization": f"Bearer {token}"}, status=200)
    dbsession.expire_all()
    assert dbsession.get(ApiToken, row.id).last_used_at is not None


# --- Who gets in ---------------------------------------------------------------------------


def test_a_revoked_token_is_refused(testapp, dbsession, staff):
    row, token = create_api_token(dbsession, staff, "to revoke")
    dbsession.flush()
    auth = {"Authorization": f"Bearer {token}"}
    testapp.get(MERCHANT_ACCOUNTS, headers=auth, status=200)

    row.revoked_at = utcnow()
    dbsession.flush()
    assert testapp.get(MERCHANT_ACCOUNTS, headers=auth, status=401).json["error"] == (
        "unauthenticated"
    )


def test_a_deactivated_users_token_and_session_are_refused(app, testapp, dbsession, staff):
    _row, token = create_api_token(dbsession, staff, "soon useless")
    dbsession.flush()
    auth = {"Authorization": f"Bearer {token}"}
    testapp.get(MERCHANT_ACCOUNTS, headers=auth, status=200)
    login(testapp, staff)
    assert signed_in(testapp)

    staff.active = False
    dbsession.flush()
    testapp.get(MERCHANT_ACCOUNTS, headers=auth, status=401)
    assert not signed_in(testapp)
    testapp.get(MERCHANT_ACCOUNTS, status=401)


@pytest.mark.parametrize(
    "header", ["Bearer cpc_not-a-real-token", "Bearer", "Bearer   ", "Basic dXNlcjpwYXNz"]
)
def test_unknown_or_malformed_credentials_are_401(testapp, header):
    answer = testapp.get(MERCHANT_ACCOUNTS, headers={"Authorization": header}, status=401)
    assert answer.json["error"] == "unauthenticated"


def test_a_bearer_token_wins_over_a_session_cookie(testapp, dbsession, staff, firm):
    """A request that names a token is judged by it alone, so a bad token never falls back to
    whatever session the browser also carries."""
    login(testapp, staff)
    testapp.get(MERCHANT_ACCOUNTS, status=200)
    testapp.get(MERCHANT_ACCOUNTS, headers={"Authorization": "Bearer cpc_wrong"}, status=401)


def test_a_password_reset_ends_the_sessions_signed_in_before_it(testapp, dbsession, staff):
    login(testapp, staff)
    assert signed_in(testapp)
    version = staff.session_version

    set_password(staff, "a brand new password")
    dbsession.flush()
    assert (
        dbsession.execute(select(User.session_version).where(User.id == staff.id)).scalar_one()
        == version + 1
    )
    assert not signed_in(testapp)
    testapp.get(MERCHANT_ACCOUNTS, status=401)

    testapp.reset()
    form = testapp.get("/login").form
    form["email"], form["password"] = staff.email, TEST_PASSWORD
    form.submit(status=400)
    login(testapp, staff, "a brand new password")
    assert signed_in(testapp)
