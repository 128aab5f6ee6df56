"""Staff sessions end on the server: signing out, "sign out everywhere", the absolute
lifetime. A copy of the cookie (taken from a shared computer, a proxy log, a backup) opens
nothing once the session it belongs to has ended, neither the pages nor the API."""

from __future__ import annotations

import datetime as dt

import webtest
from sqlalchemy import select, update

from clientpay_connect.accounts.models import AuditEvent, StaffSession
from clientpay_connect.accounts.tasks import PURGE_SESSIONS_JOB
from clientpay_connect.db import utcnow
from clientpay_connect.security import SESSION_COOKIE
from tests.conftest import csrf_token, login
from tests.factories import TEST_PASSWORD

MERCHANT_ACCOUNTS = "/api/v1/merchant-accounts"


def browser(app) -> webtest.TestApp:
    return webtest.TestApp(app, extra_environ={"HTTP_HOST": "localhost"})


def copy_of(app, signed_in: webtest.TestApp) -> webtest.TestApp:
    """Another browser holding a copy of ``signed_in``'s session cookie."""
    thief = browser(app)
    thief.set_cookie(SESSION_COOKIE, signed_in.cookies[SESSION_COOKIE])
    return thief


def opens_pages_and_api(client: webtest.TestApp) -> bool:
    page = client.get("/", status=[200, 302])
    api = client.get(MERCHANT_ACCOUNTS, status=[200, 401])
    assert (page.status_int == 200) == (api.status_int == 200), (page.status, api.status)
    return page.status_int == 200


def sessions_of(dbsession, user) -> list[StaffSession]:
    dbsession.expire_all()
    return list(
        dbsession.execute(select(StaffSession).where(StaffSession.user_id == user.id)).scalars()
    )


def test_a_copied_cookie_stops_working_once_its_session_signs_out(app, db_connection, staff):
    owner = browser(app)
    login(owner, staff)
    thief = copy_of(app, owner)
    assert opens_pages_and_api(thief)

    owner.post("/logout", {"csrf_token": csrf_token(owner)}, status=303)
    assert not opens_pages_and_api(owner)
    assert not opens_pages_and_api(thief)
    assert thief.get("/", status=302).location.startswith("http://localhost/login")


def test_signing_out_ends_only_that_sessions_row(app, db_connection, dbsession, staff):
    laptop, phone = browser(app), browser(app)
    login(laptop, staff)
    login(phone, staff)
    assert len(sessions_of(dbsession, staff)) == 2

    laptop.post("/logout", {"csrf_token": csrf_token(laptop)}, status=303)
    assert len(sessions_of(dbsession, staff)) == 1
    assert opens_pages_and_api(phone)


def test_sign_out_everywhere_ends_every_session_of_the_person(
    app, db_connection, dbsession, staff, admin
):
    laptop, phone = browser(app), browser(app)
    login(laptop, staff)
    login(phone, staff)
    colleague = browser(app)
    login(colleague, admin)
    stolen = copy_of(app, phone)

    account = laptop.get("/account")
    form = next(f for f in account.forms.values() if f.action.endswith("/logout/everywhere"))
    landed = form.submit(status=303).follow()
    assert "You are signed out on every computer and browser." in landed.text

    for client in (laptop, phone, stolen):
        assert not opens_pages_and_api(client)
    assert sessions_of(dbsession, staff) == []
    assert opens_pages_and_api(colleague)
    events = dbsession.execute(
        select(AuditEvent.action).where(AuditEvent.target_id == str(staff.id))
    ).scalars()
    assert "user.signed_out_everywhere" in list(events)
    # Their password still works: they simply sign in again.
    login(laptop, staff, TEST_PASSWORD)
    assert opens_pages_and_api(laptop)


def test_sign_out_everywhere_needs_the_csrf_token(app, db_connection, staff):
    owner = browser(app)
    login(owner, staff)
    owner.post("/logout/everywhere", status=403)
    assert opens_pages_and_api(owner)


def test_the_account_page_says_how_long_a_sign_in_lasts(app, db_connection, staff):
    owner = browser(app)
    login(owner, staff)
    page = owner.get("/account")
    assert "lasts at most 12 hours" in page.text
    assert page.html.select_one("a.nav-account")["aria-current"] == "page"


def test_a_session_ends_at_its_lifetime_however_busy(app, db_connection, dbsession, staff):
    owner = browser(app)
    before = utcnow()
    login(owner, staff)
    (row,) = sessions_of(dbsession, staff)
    # The default lifetime: twelve hours from the sign-in.
    assert dt.timedelta(hours=12) <= row.expires_at - before < dt.timedelta(hours=12, minutes=1)
    assert opens_pages_and_api(owner)  # in use all along: the cookie is reissued, still ...

    dbsession.execute(
        update(StaffSession)
        .where(StaffSession.id == row.id)
        .values(expires_at=utcnow() - dt.timedelta(seconds=1))
    )
    dbsession.flush()
    assert not opens_pages_and_api(owner)  # ... the sign-in ends when its lifetime does


def test_signing_in_again_forgets_the_persons_ended_sessions(app, db_connection, dbsession, staff):
    owner = browser(app)
    login(owner, staff)
    (old,) = sessions_of(dbsession, staff)
    old_key_hash = old.key_hash
    dbsession.execute(
        update(StaffSession)
        .where(StaffSession.id == old.id)
        .values(expires_at=utcnow() - dt.timedelta(seconds=1))
    )
    dbsession.flush()
    owner.reset()
    login(owner, staff)
    (new,) = sessions_of(dbsession, staff)
    assert new.key_hash != old_key_hash


def test_sessions_past_their_lifetime_are_forgotten_by_the_periodic_job(
    app, db_connection, dbsession, staff, admin
):
    ended, current = browser(app), browser(app)
    login(ended, staff)
    login(current, admin)
    (row,) = sessions_of(dbsession, staff)
    queue = app.registry["clientpay.jobs"]
    assert queue.run_now(PURGE_SESSIONS_JOB, utcnow()) == 0
    dbsession.execute(
        update(StaffSession)
        .where(StaffSession.id == row.id)
        .values(expires_at=utcnow() - dt.timedelta(hours=1))
    )
    dbsession.flush()
    assert queue.run_now(PURGE_SESSIONS_JOB, utcnow()) == 1
    assert sessions_of(dbsession, staff) == []
    assert len(sessions_of(dbsession, admin)) == 1


def test_a_cookie_copied_before_a_password_was_shown_cannot_show_it_after_sign_out(
    app, db_connection, staff, admin
):
    """The one-time password travels in the session until its page is opened; a copy of the
    cookie from before then dies with the session, so it cannot show the password later."""
    owner = browser(app)
    login(owner, admin)
    token = csrf_token(owner)
    redirect = owner.post(f"/admin/users/{staff.id}/reset-password", {"csrf_token": token})
    copied = copy_of(app, owner)
    assert redirect.follow().html.find(id="one-time-password") is not None
    owner.post("/logout", {"csrf_token": csrf_token(owner)}, status=303)

    replay = copied.get(redirect.location, status=302)
    assert replay.location.startswith("http://localhost/login")
