"""People change their own password, and a forgotten one through an emailed, single-use,
expiring link (issue 12, item 21). The email goes through the outbox to a real SMTP server."""

from __future__ import annotations

import datetime as dt
import re
import uuid
from typing import Any

import pytest
import webtest
from sqlalchemy import select

from clientpay_connect.accounts.models import AuditEvent, PasswordReset, User
from clientpay_connect.crypto import sha256_hex
from clientpay_connect.db import utcnow
from clientpay_connect.mail.models import KIND_PASSWORD_RESET, OutboxMessage
from tests.conftest import TEST_PASSWORD, csrf_token, login

NEW_PASSWORD = "a much longer new passphrase"
RESET_URL = re.compile(r"http://localhost(/reset-password/(pr_[A-Za-z0-9_\-]+))")


def signs_in(browser: webtest.TestApp, email: str, password: str) -> bool:
    form = browser.get("/login").forms[0]
    form["email"] = email
    form["password"] = password
    return form.submit(expect_errors=True).status_int == 303


def fresh_user(dbsession: Any, user: User) -> User:
    return dbsession.get(User, user.id, populate_existing=True)


def actions(dbsession: Any, user: User) -> list[str]:
    return list(
        dbsession.scalars(
            select(AuditEvent.action)
            .where(AuditEvent.firm_id == user.firm_id)
            .order_by(AuditEvent.id)
        )
    )


class TestOwnPassword:
    def test_the_current_password_is_required_and_the_new_one_works(
        self, app, testapp, dbsession, staff
    ):
        other_browser = webtest.TestApp(app, extra_environ={"REMOTE_ADDR": "10.9.8.5"})
        login(other_browser, staff)
        login(testapp, staff)
        version = staff.session_version
        page = testapp.get("/account/password")
        form = page.forms[1]  # the first is the menu's sign-out
        form["current_password"] = "not my password"
        form["new_password"] = NEW_PASSWORD
        form["repeat_password"] = NEW_PASSWORD
        refused = form.submit(status=422)
        assert refused.html.find(id="current_password-error").text == (
            "That is not your current password."
        )
        assert refused.html.find(id="current_password")["aria-invalid"] == "true"
        assert fresh_user(dbsession, staff).session_version == version

        form = refused.forms[1]
        form["current_password"] = TEST_PASSWORD
        form["new_password"] = NEW_PASSWORD
        form["repeat_password"] = NEW_PASSWORD
        done = form.submit(status=303).follow()
        assert "Your password was changed" in done.text

        assert fresh_user(dbsession, staff).session_version == version + 1
        # This browser goes on; the other session ended with the old password.
        testapp.get("/", status=200)
        assert other_browser.get("/", status=302).location.startswith("http://localhost/login")
        assert not signs_in(other_browser, staff.email, TEST_PASSWORD)
        assert signs_in(other_browser, staff.email, NEW_PASSWORD)
        assert actions(dbsession, staff) == ["user.password_changed"]

    def test_a_short_or_mistyped_new_password_is_refused(self, testapp, dbsession, staff):
        login(testapp, staff)
        token = csrf_token(testapp)
        short = testapp.post(
            "/account/password",
            {
                "csrf_token": token,
                "current_password": TEST_PASSWORD,
                "new_password": "short",
                "repeat_password": "short",
            },
            status=422,
        )
        assert "Use at least 10 characters." in short.html.find(id="new_password-error").text
        differ = testapp.post(
            "/account/password",
            {
                "csrf_token": token,
                "current_password": TEST_PASSWORD,
                "new_password": NEW_PASSWORD,
                "repeat_password": NEW_PASSWORD + "x",
            },
            status=422,
        )
        assert differ.html.find(id="repeat_password-error").text == "The two new passwords differ."
        assert signs_in(webtest.TestApp(testapp.app), staff.email, TEST_PASSWORD)

    def test_only_a_signed_in_person_reaches_it(self, testapp):
        assert testapp.get("/account/password", status=302).location.startswith(
            "http://localhost/login"
        )


@pytest.fixture
def browser(mail_app: Any, client_ip: str) -> webtest.TestApp:
    return webtest.TestApp(
        mail_app, extra_environ={"REMOTE_ADDR": client_ip, "HTTP_HOST": "localhost"}
    )


def ask_for_reset(browser: webtest.TestApp, email: str, status: int = 200) -> webtest.TestResponse:
    form = browser.get("/forgot-password").forms[0]
    form["email"] = email
    return form.submit(status=status)


def reset_links(smtp: Any) -> list[tuple[str, str]]:
    return [match for m in smtp.messages for match in RESET_URL.findall(m.text)]


class TestForgotPassword:
    def test_the_emailed_link_sets_a_new_password_once(self, browser, smtp, dbsession, staff):
        signed_in = webtest.TestApp(browser.app, extra_environ={"REMOTE_ADDR": "10.9.8.4"})
        login(signed_in, staff)
        assert "Forgot your password?" in browser.get("/login").text
        answer = ask_for_reset(browser, staff.email.upper())
        assert "we have emailed it a link" in answer.html.find(id="reset-sent").text

        [received] = smtp.messages
        assert received.rcpt_tos == (staff.email,)
        assert received.message["Subject"] == "Reset your ClientPay Connect password"
        [(path, token)] = reset_links(smtp)
        assert f'href="http://localhost{path}"' in received.html
        # 256 random bits; only the hash is looked up by, the token itself is not stored.
        assert len(token) >= len("pr_") + 43
        [reset] = dbsession.scalars(select(PasswordReset).where(PasswordReset.user_id == staff.id))
        assert reset.token_hash == sha256_hex(token)
        assert token not in reset.token_encrypted
        assert reset.expires_at - reset.created_at == dt.timedelta(hours=1)

        page = browser.get(path)
        assert page.headers["Referrer-Policy"] == "no-referrer"
        assert page.headers["Cache-Control"] == "no-store"
        form = page.forms[0]
        form["new_password"] = NEW_PASSWORD
        form["repeat_password"] = NEW_PASSWORD
        signed_out = form.submit(status=303).follow()
        assert "Sign in with the new one" in signed_out.text

        assert signs_in(webtest.TestApp(browser.app), staff.email, NEW_PASSWORD)
        assert not signs_in(webtest.TestApp(browser.app), staff.email, TEST_PASSWORD)
        # Sessions opened with the old password end.
        assert signed_in.get("/", status=302).location.startswith("http://localhost/login")
        # Used once, never again; and nothing that could open it is left.
        again = browser.get(path, status=404)
        assert "has been used, has expired" in again.text
        browser.post(
            path,
            {
                "csrf_token": csrf_token_of(browser),
                "new_password": "x" * 12,
                "repeat_password": "x" * 12,
            },
            status=404,
        )
        dbsession.expire_all()
        assert reset.used_at is not None and reset.token_encrypted == ""
        assert actions(dbsession, staff) == [
            "user.password_reset_requested",
            "user.password_reset_used",
        ]

    def test_an_unknown_or_inactive_address_gets_the_same_answer_and_no_email(
        self, browser, smtp, dbsession, staff, firm
    ):
        known = ask_for_reset(browser, staff.email)
        unknown = ask_for_reset(browser, "nobody@example.test")
        inactive = fresh_user(dbsession, staff)
        inactive.active = False
        dbsession.flush()
        smtp.clear()
        deactivated = ask_for_reset(browser, staff.email)
        said = [r.html.find(id="reset-sent").text for r in (known, unknown, deactivated)]
        assert said[0] == said[1] == said[2]
        assert [r.status_int for r in (known, unknown, deactivated)] == [200, 200, 200]
        assert smtp.messages == []
        rows = dbsession.scalars(
            select(OutboxMessage).where(OutboxMessage.kind == KIND_PASSWORD_RESET)
        ).all()
        assert [row.recipients for row in rows] == [[staff.email]]

    def test_an_expired_link_is_refused(self, browser, smtp, dbsession, staff):
        ask_for_reset(browser, staff.email)
        [(path, _token)] = reset_links(smtp)
        reset = dbsession.scalars(select(PasswordReset)).one()
        reset.expires_at = utcnow() - dt.timedelta(seconds=1)
        dbsession.flush()
        page = browser.get(path, status=404)
        assert page.html.find("form", action=re.compile("reset-password")) is None
        browser.post(
            path,
            {
                "csrf_token": csrf_token_of(browser),
                "new_password": NEW_PASSWORD,
                "repeat_password": NEW_PASSWORD,
            },
            status=404,
        )
        assert signs_in(webtest.TestApp(browser.app), staff.email, TEST_PASSWORD)

    def test_a_newer_request_ends_the_older_link(self, browser, smtp, staff):
        ask_for_reset(browser, staff.email)
        ask_for_reset(browser, staff.email)
        [(older, _), (newer, _)] = reset_links(smtp)
        browser.get(older, status=404)
        browser.get(newer, status=200)

    def test_requests_are_rate_limited_whatever_the_address(self, browser, smtp, staff):
        for _ in range(3):
            ask_for_reset(browser, staff.email)
        limited = ask_for_reset(browser, staff.email, status=429)
        assert "Too many reset requests" in limited.text
        assert len(smtp.messages) == 3
        # The limits live as long as the app: an address no other test uses.
        nobody = f"nobody-{uuid.uuid4().hex[:8]}@example.test"
        for _ in range(3):
            ask_for_reset(browser, nobody)
        ask_for_reset(browser, nobody, status=429)


def csrf_token_of(browser: webtest.TestApp) -> str:
    """A signed-out browser's CSRF token, from a page with a form."""
    page = browser.get("/forgot-password")
    return str(page.html.find("input", {"name": "csrf_token"})["value"])
