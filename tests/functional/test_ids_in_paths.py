"""An id in a path that no row can have (beyond an Integer column: 32 bits on PostgreSQL, 64 on
SQLite) is a 404 like any unknown id, on every route that takes one, pages and API alike."""

from __future__ import annotations

import re
from typing import Any

import pytest
from pyramid.router import Router

from tests.conftest import csrf_token, login
from tests.factories import MerchantAccountFactory

IMPOSSIBLE = ["2147483648", "9223372036854775808", "99999999999999999999999999"]
ID_PLACEHOLDER = re.compile(r"\{(id|row):[^}]*\}")


def views_with_ids(app: Router) -> list[tuple[str, str]]:
    """(method, path pattern) of every view of ours on a route with an id or a row number."""
    introspector = app.registry.introspector
    patterns = {
        route["name"]: route["pattern"]
        for route in introspector.get_category("routes", [])
        for route in [route["introspectable"]]
    }
    found = set()
    for entry in introspector.get_category("views", []):
        view = entry["introspectable"]
        pattern = patterns.get(view["route_name"] or "", "")
        if ID_PLACEHOLDER.search(pattern):
            methods = view["request_methods"] or ("GET",)
            for method in (methods,) if isinstance(methods, str) else methods:
                found.add((method, pattern))
    return sorted(found)


def test_every_route_with_an_id_is_found(app):
    views = views_with_ids(app)
    paths = {pattern for _method, pattern in views}
    # The routes the issue named, and pages as well as the API.
    assert r"/api/v1/merchant-accounts/{id:\d+}" in paths
    assert ("PATCH", r"/api/v1/users/{id:\d+}") in views
    assert r"/admin/users/{id:\d+}" in paths
    assert len(views) >= 25


@pytest.mark.parametrize("impossible", IMPOSSIBLE)
def test_an_impossible_id_is_not_found_on_every_api_route(app, testapp, admin_auth, impossible):
    for method, pattern in views_with_ids(app):
        if not pattern.startswith("/api/"):
            continue
        path = ID_PLACEHOLDER.sub(impossible, pattern)
        answer = testapp.request(
            path,
            method=method,
            body=b"{}" if method in ("POST", "PATCH", "PUT") else b"",
            headers={**admin_auth, "Content-Type": "application/json"},
            expect_errors=True,
        )
        assert answer.status_int == 404, (method, path, answer.text)
        assert answer.json["error"] == "not_found"
        assert set(answer.json) == {"error", "message", "errors"}


@pytest.mark.parametrize("impossible", IMPOSSIBLE)
def test_an_impossible_id_is_not_found_on_every_page(app, testapp, admin, impossible):
    login(testapp, admin)
    token = csrf_token(testapp)
    for method, pattern in views_with_ids(app):
        if pattern.startswith("/api/"):
            continue
        path = ID_PLACEHOLDER.sub(impossible, pattern)
        params: dict[str, Any] = {"csrf_token": token} if method == "POST" else {}
        answer = testapp.request(
            path, method=method, POST=params if method == "POST" else None, expect_errors=True
        )
        assert answer.status_int == 404, (method, path, answer.text[:300])


def test_a_stranger_still_gets_401_before_404(testapp):
    answer = testapp.get("/api/v1/merchant-accounts/9223372036854775808", status=401)
    assert answer.json["error"] == "unauthenticated"


def test_the_largest_possible_id_is_looked_up(testapp, admin_auth):
    answer = testapp.get("/api/v1/merchant-accounts/2147483647", headers=admin_auth, status=404)
    assert answer.json["error"] == "not_found"


# --- numbers that name rows elsewhere than in the path ------------------------------------------


@pytest.mark.parametrize("impossible", IMPOSSIBLE)
def test_a_rows_cursor_beyond_any_row_is_an_empty_last_page(testapp, staff, staff_auth, impossible):
    account = MerchantAccountFactory(firm=staff.firm)
    created = testapp.post(
        "/api/v1/bulk-uploads",
        {"merchant_account_id": str(account.id)},
        upload_files=[("file", "a.csv", b"Recipient Name,Amount\nJane Doe,10\n")],
        headers=staff_auth,
        status=201,
    ).json
    page = testapp.get(
        f"/api/v1/bulk-uploads/{created['id']}/rows?cursor={impossible}",
        headers=staff_auth,
        status=200,
    ).json
    assert page == {"items": [], "next_cursor": None, "total": 1}
