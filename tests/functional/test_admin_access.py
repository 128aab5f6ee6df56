"""Only admins reach the admin area; another firm's objects do not exist for them."""

import json

import pytest

from tests.conftest import bearer, csrf_token, login
from tests.factories import FirmFactory, MerchantAccountFactory, UserFactory

ADMIN_PAGES = [
    "/admin",
    "/admin/users",
    "/admin/users/{user}",
    "/admin/users/{user}/password",
    "/admin/settings",
    "/admin/notifications",
    "/admin/merchant-accounts",
    "/admin/merchant-accounts/{account}",
    "/admin/tokens",
]
ADMIN_FORMS = [
    "/admin/users",
    "/admin/users/{user}",
    "/admin/users/{user}/deactivate",
    "/admin/users/{user}/reactivate",
    "/admin/users/{user}/reset-password",
    "/admin/settings",
    "/admin/notifications",
    "/admin/merchant-accounts",
    "/admin/merchant-accounts/{account}",
    "/admin/merchant-accounts/{account}/deactivate",
    "/admin/merchant-accounts/{account}/reactivate",
    "/admin/tokens",
]
ADMIN_API = [
    ("GET", "/api/v1/settings", None),
    ("PUT", "/api/v1/settings", {"link_expiry_days": 5}),
    ("GET", "/api/v1/users", None),
    ("POST", "/api/v1/users", {"email": "new@example.test", "name": "New", "role": "admin"}),
    ("PATCH", "/api/v1/users/{user}", {"role": "admin"}),
    (
        "POST",
        "/api/v1/merchant-accounts",
        {"name": "Mine", "kind": "trust", "currency": "USD", "methods": ["card"]},
    ),
    ("PATCH", "/api/v1/merchant-accounts/{account}", {"active": False}),
]


@pytest.fixture
def targets(staff):
    account = MerchantAccountFactory(firm=staff.firm)
    return {"user": staff.id, "account": account.id}


@pytest.mark.parametrize("path", ADMIN_PAGES)
def test_staff_cannot_open_admin_pages(testapp, staff, targets, path):
    login(testapp, staff)
    page = testapp.get(path.format(**targets), status=403)
    assert "You do not have access to this page." in page.text


@pytest.mark.parametrize("path", ADMIN_FORMS)
def test_staff_cannot_post_admin_forms(testapp, dbsession, staff, targets, path):
    login(testapp, staff)
    token = csrf_token(testapp)
    fields = {"csrf_token": token, "role": "admin", "name": "Took over", "active": "on"}
    testapp.post(path.format(**targets), fields, status=403)
    dbsession.expire_all()
    assert staff.role == "staff"
    assert staff.active


@pytest.mark.parametrize(("method", "path", "body"), ADMIN_API)
def test_staff_cannot_use_admin_api(
    testapp, dbsession, staff, staff_auth, targets, method, path, body
):
    response = testapp.request(
        path.format(**targets),
        method=method,
        headers={**staff_auth, "Content-Type": "application/json"},
        body=b"" if body is None else json.dumps(body).encode(),
        status=403,
    )
    assert response.json["error"] == "forbidden"
    dbsession.expire_all()
    assert staff.role == "staff"


def test_signed_out_visitors_are_sent_to_sign_in(testapp):
    response = testapp.get("/admin/users", status=302)
    assert "/login?next=%2Fadmin%2Fusers" in response.location


def test_staff_may_read_one_merchant_account(testapp, staff, staff_auth):
    account = MerchantAccountFactory(firm=staff.firm, name="Trust", kind="trust")
    body = testapp.get(f"/api/v1/merchant-accounts/{account.id}", headers=staff_auth).json
    assert body["name"] == "Trust"
    assert body["kind"] == "trust"


class TestAnotherFirm:
    """Firm B's admin asks for firm A's objects: they do not exist (404), and nothing changes."""

    @pytest.fixture
    def firm_b_auth(self, dbsession):
        return bearer(dbsession, UserFactory(firm=FirmFactory(), role="admin"))

    def test_merchant_account_is_not_found(self, testapp, dbsession, firm_b_auth, firm):
        account = MerchantAccountFactory(firm=firm, name="Firm A operating")
        path = f"/api/v1/merchant-accounts/{account.id}"
        assert testapp.get(path, headers=firm_b_auth, status=404).json["error"] == "not_found"
        testapp.patch_json(path, {"name": "Hijacked"}, headers=firm_b_auth, status=404)
        dbsession.expire_all()
        assert account.name == "Firm A operating"

    def test_user_is_not_found(self, testapp, dbsession, firm_b_auth, admin):
        response = testapp.patch_json(
            f"/api/v1/users/{admin.id}", {"active": False}, headers=firm_b_auth, status=404
        )
        assert response.json["error"] == "not_found"
        dbsession.expire_all()
        assert admin.active

    def test_lists_hold_only_the_firms_own(self, testapp, firm_b_auth, admin, firm):
        MerchantAccountFactory(firm=firm)
        users = testapp.get("/api/v1/users", headers=firm_b_auth).json
        assert admin.email not in [u["email"] for u in users["items"]]
        assert users["total"] == 1

    def test_pages_of_another_firms_objects_are_not_found(self, testapp, dbsession, admin):
        other_admin = UserFactory(firm=FirmFactory(), role="admin")
        account = MerchantAccountFactory(firm=admin.firm)
        version = admin.session_version
        login(testapp, other_admin)
        page = testapp.get(f"/admin/users/{admin.id}", status=404)
        assert "We could not find that page." in page.text
        testapp.get(f"/admin/merchant-accounts/{account.id}", status=404)
        token = csrf_token(testapp)
        testapp.post(f"/admin/users/{admin.id}/deactivate", {"csrf_token": token}, status=404)
        testapp.post(f"/admin/users/{admin.id}/reset-password", {"csrf_token": token}, status=404)
        dbsession.expire_all()
        assert admin.active
        assert admin.session_version == version
