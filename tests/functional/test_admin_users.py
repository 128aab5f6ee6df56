"""Users: adding people with a password shown once, roles, deactivation, and lockout rules."""

from urllib.parse import urlsplit

import pytest
import webtest
from sqlalchemy import select

from clientpay_connect.accounts.models import AuditEvent, User
from tests.conftest import csrf_token, login
from tests.factories import TEST_PASSWORD, FirmFactory, UserFactory

UNAVAILABLE = "This email address is not available for a new user. Use a different address."


def form_posting_to(page, path):
    return next(form for form in page.forms.values() if urlsplit(form.action).path == path)


def actions(dbsession, firm):
    return list(
        dbsession.execute(
            select(AuditEvent.action).where(AuditEvent.firm_id == firm.id).order_by(AuditEvent.id)
        ).scalars()
    )


def user_by_email(dbsession, email):
    dbsession.expire_all()
    return dbsession.execute(select(User).where(User.email == email)).scalar_one_or_none()


def one_time_password(page):
    return page.html.find(id="one-time-password")["value"]


def signs_in(testapp, email, password):
    """Whether ``email`` can sign in with ``password`` (in a fresh cookie jar)."""
    testapp.reset()
    form = testapp.get("/login").forms[0]
    form["email"] = email
    form["password"] = password
    return form.submit(status=[303, 400]).status_int == 303


class TestAddingUsersOnThePage:
    def test_the_generated_password_is_shown_once_and_works(self, testapp, dbsession, admin):
        login(testapp, admin)
        form = form_posting_to(testapp.get("/admin/users"), "/admin/users")
        form["email"] = "New.Person@Example.test"
        form["name"] = "New Person"
        form["role"] = "staff"
        shown = form.submit(status=303).follow()

        password = one_time_password(shown)
        # Nor from the browser's history: Back or a restored tab asks the server again.
        assert shown.headers["Cache-Control"] == "no-store"
        created = user_by_email(dbsession, "new.person@example.test")
        assert (created.firm_id, created.role, created.name) == (
            admin.firm_id,
            "staff",
            "New Person",
        )
        assert password not in (created.password_hash or "")
        again = testapp.get(shown.request.path)
        assert again.html.find(id="one-time-password") is None
        assert password not in again.text
        assert "already shown" in again.text
        assert actions(dbsession, admin.firm) == ["user.created"]
        assert signs_in(testapp, "new.person@example.test", password)

    def test_an_email_already_in_use_anywhere_is_refused_and_the_form_kept(
        self, testapp, dbsession, admin
    ):
        elsewhere = UserFactory(firm=FirmFactory())
        login(testapp, admin)
        form = form_posting_to(testapp.get("/admin/users"), "/admin/users")
        form["email"] = elsewhere.email
        form["name"] = "Typed Name"
        form["role"] = "admin"
        page = form.submit(status=400)

        error = page.html.find(id="email-error")
        assert error.get_text(strip=True) == UNAVAILABLE
        assert "email-error" in page.html.find(id="email")["aria-describedby"]
        kept = form_posting_to(page, "/admin/users")
        assert (kept["email"].value, kept["name"].value, kept["role"].value) == (
            elsewhere.email,
            "Typed Name",
            "admin",
        )
        assert user_by_email(dbsession, elsewhere.email).firm_id == elsewhere.firm_id
        assert actions(dbsession, admin.firm) == []

    def test_a_bad_email_and_a_missing_name_are_both_named(self, testapp, admin):
        login(testapp, admin)
        form = form_posting_to(testapp.get("/admin/users"), "/admin/users")
        form["email"] = "not-an-address"
        page = form.submit(status=400)
        assert page.html.find(id="email-error") is not None
        assert page.html.find(id="name-error").get_text(strip=True) == "Enter a name."
        assert form_posting_to(page, "/admin/users")["email"].value == "not-an-address"


class TestChangingUsersOnThePage:
    def test_change_name_and_role(self, testapp, dbsession, admin, staff):
        login(testapp, admin)
        form = form_posting_to(testapp.get(f"/admin/users/{staff.id}"), f"/admin/users/{staff.id}")
        form["name"] = "Promoted Person"
        form["role"] = "admin"
        form.submit(status=303)
        dbsession.expire_all()
        assert (staff.name, staff.role) == ("Promoted Person", "admin")
        assert actions(dbsession, admin.firm) == ["user.renamed", "user.role_changed"]

    def test_deactivating_ends_sessions_and_sign_in_until_reactivated(
        self, app, testapp, dbsession, admin, staff
    ):
        staff_browser = webtest.TestApp(app, extra_environ={"REMOTE_ADDR": "10.9.8.7"})
        login(staff_browser, staff)
        staff_browser.get("/", status=200)

        login(testapp, admin)
        token = csrf_token(testapp)
        testapp.post(f"/admin/users/{staff.id}/deactivate", {"csrf_token": token}, status=303)
        dbsession.expire_all()
        assert not staff.active
        assert staff_browser.get("/", status=302).location.startswith("http://localhost/login")

        testapp.post(f"/admin/users/{staff.id}/reactivate", {"csrf_token": token}, status=303)
        dbsession.expire_all()
        assert staff.active
        # Reactivation does not bring the old session back: they sign in again.
        assert staff_browser.get("/", status=302)
        assert actions(dbsession, admin.firm) == ["user.deactivated", "user.reactivated"]
        assert signs_in(staff_browser, staff.email, TEST_PASSWORD)

    def test_reset_password_shows_a_working_password_once_and_ends_sessions(
        self, app, testapp, dbsession, admin, staff
    ):
        staff_browser = webtest.TestApp(app, extra_environ={"REMOTE_ADDR": "10.9.8.6"})
        login(staff_browser, staff)

        login(testapp, admin)
        token = csrf_token(testapp)
        shown = testapp.post(
            f"/admin/users/{staff.id}/reset-password", {"csrf_token": token}, status=303
        ).follow()
        password = one_time_password(shown)

        assert staff_browser.get("/", status=302)
        assert testapp.get(shown.request.path).html.find(id="one-time-password") is None
        assert actions(dbsession, admin.firm) == ["user.password_reset"]
        assert not signs_in(staff_browser, staff.email, TEST_PASSWORD)
        assert signs_in(staff_browser, staff.email, password)


class TestLockoutOnThePage:
    def test_an_admin_cannot_deactivate_themself(self, testapp, dbsession, admin):
        UserFactory(firm=admin.firm, role="admin")
        login(testapp, admin)
        page = testapp.post(
            f"/admin/users/{admin.id}/deactivate", {"csrf_token": csrf_token(testapp)}, status=409
        )
        assert "You cannot deactivate your own account." in page.html.find(role="alert").text
        dbsession.expire_all()
        assert admin.active

    def test_an_admin_cannot_demote_themself_and_the_form_keeps_the_typing(
        self, testapp, dbsession, admin
    ):
        UserFactory(firm=admin.firm, role="admin")
        login(testapp, admin)
        form = form_posting_to(testapp.get(f"/admin/users/{admin.id}"), f"/admin/users/{admin.id}")
        form["name"] = "New Name"
        form["role"] = "staff"
        page = form.submit(status=409)
        assert "You cannot remove your own admin role" in page.html.find(role="alert").text
        kept = form_posting_to(page, f"/admin/users/{admin.id}")
        assert (kept["name"].value, kept["role"].value) == ("New Name", "staff")
        dbsession.expire_all()
        assert (admin.role, admin.name) != ("staff", "New Name")
        assert admin.role == "admin"
        assert actions(dbsession, admin.firm) == []


class TestUsersApi:
    def test_list(self, testapp, admin, staff, admin_auth):
        UserFactory(firm=FirmFactory())
        body = testapp.get("/api/v1/users", headers=admin_auth).json
        assert body["next_cursor"] is None
        assert body["total"] == 2
        by_email = {u["email"]: u for u in body["items"]}
        assert set(by_email) == {admin.email, staff.email}
        assert by_email[staff.email] == {
            "id": staff.id,
            "email": staff.email,
            "name": staff.name,
            "role": "staff",
            "active": True,
            "created_at": staff.created_at.isoformat(),
            "last_login_at": None,
        }

    def test_create_returns_the_generated_password_once(
        self, testapp, dbsession, admin, admin_auth
    ):
        response = testapp.post_json(
            "/api/v1/users",
            {"email": "api.user@example.test", "name": "Api User", "role": "admin"},
            headers=admin_auth,
            status=201,
        )
        body = response.json
        # No cache may keep it, though a bearer token (no session cookie) asked.
        assert response.headers["Cache-Control"] == "no-store"
        created = user_by_email(dbsession, "api.user@example.test")
        assert body["id"] == created.id
        assert (body["role"], body["active"], created.firm_id) == ("admin", True, admin.firm_id)
        assert actions(dbsession, admin.firm) == ["user.created"]
        listed = testapp.get("/api/v1/users", headers=admin_auth).text
        assert body["password"] not in listed
        assert signs_in(testapp, "api.user@example.test", body["password"])

    def test_create_with_a_chosen_password_does_not_echo_it(self, testapp, admin_auth):
        body = testapp.post_json(
            "/api/v1/users",
            {"email": "chosen@example.test", "name": "C", "role": "staff", "password": "x" * 12},
            headers=admin_auth,
            status=201,
        ).json
        assert "password" not in body
        assert signs_in(testapp, "chosen@example.test", "x" * 12)

    @pytest.mark.parametrize(
        ("body", "field"),
        [
            ({"email": "nope", "name": "N", "role": "staff"}, "email"),
            ({"email": "ok@example.test", "name": " ", "role": "staff"}, "name"),
            ({"email": "ok@example.test", "name": "N", "role": "owner"}, "role"),
            (
                {"email": "ok@example.test", "name": "N", "role": "staff", "password": "short"},
                "password",
            ),
            ({"name": "N", "role": "staff"}, "email"),
        ],
    )
    def test_create_refuses_wrong_input_naming_the_field(
        self, testapp, dbsession, admin, admin_auth, body, field
    ):
        answer = testapp.post_json("/api/v1/users", body, headers=admin_auth, status=422).json
        assert field in [e["field"] for e in answer["errors"]]
        assert user_by_email(dbsession, "ok@example.test") is None

    def test_create_refuses_an_email_in_use_in_another_firm(self, testapp, admin_auth):
        taken = UserFactory(firm=FirmFactory())
        answer = testapp.post_json(
            "/api/v1/users",
            {"email": taken.email.upper(), "name": "N", "role": "staff"},
            headers=admin_auth,
            status=422,
        ).json
        assert answer["errors"] == [{"field": "email", "message": UNAVAILABLE}]

    def test_an_address_of_another_firm_is_refused_as_one_of_the_firms_own(
        self, testapp, dbsession, admin, admin_auth, staff
    ):
        """Nothing tells the admin that the address belongs to another firm, or to whom."""
        other_firm = FirmFactory(name="Hidden Partners LLP")
        elsewhere = UserFactory(firm=other_firm, name="Hidden Person", role="admin")

        def refusal(email):
            body = {"email": email, "name": "N", "role": "staff"}
            answer = testapp.post_json("/api/v1/users", body, headers=admin_auth, status=422)
            return answer.json

        assert refusal(elsewhere.email) == refusal(staff.email)
        login(testapp, admin)
        pages = []
        for email in (elsewhere.email, staff.email):
            form = form_posting_to(testapp.get("/admin/users"), "/admin/users")
            form["email"], form["name"] = email, "N"
            page = form.submit(status=400)
            pages.append(page.html.find(id="email-error").get_text(strip=True))
            for secret in ("Hidden", "signs in", "another firm", "already"):
                assert secret not in page.html.find(id="main").get_text()
        assert pages == [UNAVAILABLE, UNAVAILABLE]
        assert user_by_email(dbsession, elsewhere.email).firm_id == other_firm.id

    def test_patch_changes_name_role_and_active(self, testapp, dbsession, admin, staff, admin_auth):
        body = testapp.patch_json(
            f"/api/v1/users/{staff.id}",
            {"name": "Renamed", "role": "admin", "active": False},
            headers=admin_auth,
        ).json
        assert (body["name"], body["role"], body["active"]) == ("Renamed", "admin", False)
        dbsession.expire_all()
        assert (staff.name, staff.role, staff.active) == ("Renamed", "admin", False)
        assert actions(dbsession, admin.firm) == [
            "user.renamed",
            "user.role_changed",
            "user.deactivated",
        ]

    def test_patch_refuses_an_unknown_role(self, testapp, dbsession, staff, admin_auth):
        answer = testapp.patch_json(
            f"/api/v1/users/{staff.id}", {"role": "owner"}, headers=admin_auth, status=422
        ).json
        assert [e["field"] for e in answer["errors"]] == ["role"]
        dbsession.expire_all()
        assert staff.role == "staff"


class TestLockoutOverTheApi:
    def test_the_only_admin_cannot_step_down(self, testapp, dbsession, admin, admin_auth):
        for change in ({"active": False}, {"role": "staff"}):
            answer = testapp.patch_json(
                f"/api/v1/users/{admin.id}", change, headers=admin_auth, status=409
            ).json
            assert answer["error"] == "last_admin"
            assert answer["message"] == "The firm must keep at least one active admin."
        dbsession.expire_all()
        assert (admin.role, admin.active) == ("admin", True)
        assert actions(dbsession, admin.firm) == []

    def test_with_another_admin_one_still_cannot_deactivate_or_demote_oneself(
        self, testapp, dbsession, admin, admin_auth
    ):
        UserFactory(firm=admin.firm, role="admin")
        path = f"/api/v1/users/{admin.id}"
        off = testapp.patch_json(path, {"active": False}, headers=admin_auth, status=409).json
        down = testapp.patch_json(path, {"role": "staff"}, headers=admin_auth, status=409).json
        assert off["error"] == "cannot_deactivate_self"
        assert down["error"] == "cannot_demote_self"
        dbsession.expire_all()
        assert (admin.role, admin.active) == ("admin", True)

    def test_another_admin_can_be_demoted_while_one_remains(
        self, testapp, dbsession, admin, admin_auth
    ):
        other = UserFactory(firm=admin.firm, role="admin")
        testapp.patch_json(f"/api/v1/users/{other.id}", {"role": "staff"}, headers=admin_auth)
        dbsession.expire_all()
        assert other.role == "staff"

    def test_an_inactive_admin_does_not_count(self, testapp, dbsession, admin, admin_auth):
        UserFactory(firm=admin.firm, role="admin", active=False)
        answer = testapp.patch_json(
            f"/api/v1/users/{admin.id}", {"role": "staff"}, headers=admin_auth, status=409
        ).json
        assert answer["error"] == "last_admin"

    def test_renaming_oneself_is_fine(self, testapp, dbsession, admin, admin_auth):
        testapp.patch_json(f"/api/v1/users/{admin.id}", {"name": "Me"}, headers=admin_auth)
        dbsession.expire_all()
        assert admin.name == "Me"
