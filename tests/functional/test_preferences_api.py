"""GET/PUT /api/v1/me/preferences: each user's own grid layout, kept on the server, checked
whole by the API document, never seen or changed by another user of this firm or another."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import webtest
import yaml

from clientpay_connect.accounts.models import User
from clientpay_connect.preferences.services import API_KEYS, MAX_PREFERENCES_BYTES
from clientpay_connect.sent.query import SORT_CHOICES, STATUS_VIEWS
from tests import factories
from tests.conftest import bearer, csrf_token, login

URL = "/api/v1/me/preferences"
DOCUMENT = Path(__file__).parents[2] / "clientpay_connect" / "preferences" / "openapi.yaml"

GRID = {
    "columns": [
        {"field": "recipient_name", "visible": True, "width": 220},
        {"field": "amount", "visible": True},
        {"field": "first_opened_at", "visible": False, "width": 140},
    ],
    "sort": "-due_date",
    "show": "outstanding",
    "filters": {
        "recipient_name": "acme",
        "status": ["outstanding", "processing"],
        "amount": {"min": "100.00", "max": "2500"},
        "due_date": {"from": "2026-01-01", "to": "2026-03-31"},
        "merchant_account_id": [3],
    },
}


def stored(dbsession: Any, user: User) -> Any:
    dbsession.expire_all()
    return dbsession.get(User, user.id).preferences


def document() -> dict[str, Any]:
    with DOCUMENT.open(encoding="utf-8") as handle:
        loaded: dict[str, Any] = yaml.safe_load(handle)
    return loaded


class TestRoundTrip:
    def test_nothing_saved_is_an_empty_object(self, testapp, staff_auth):
        assert testapp.get(URL, headers=staff_auth).json == {}

    def test_what_is_put_comes_back_and_is_stored(self, testapp, dbsession, staff, staff_auth):
        answer = testapp.put_json(URL, {"sent_grid": GRID}, headers=staff_auth, status=200)
        assert answer.json == {"sent_grid": GRID}
        assert testapp.get(URL, headers=staff_auth).json == {"sent_grid": GRID}
        assert stored(dbsession, staff) == {"sent_grid": GRID}

    def test_a_put_replaces_the_keys_given_and_keeps_the_others(
        self, testapp, dbsession, staff, staff_auth
    ):
        # A key a later version of the grid (or another page) saved is kept.
        staff.preferences = {"other_page": {"x": 1}, "sent_grid": GRID}
        dbsession.flush()
        answer = testapp.put_json(
            URL, {"sent_grid": {"show": "paid"}}, headers=staff_auth, status=200
        )
        # Only what the document describes is answered.
        assert answer.json == {"sent_grid": {"show": "paid"}}
        assert stored(dbsession, staff) == {"other_page": {"x": 1}, "sent_grid": {"show": "paid"}}
        testapp.put_json(URL, {}, headers=staff_auth, status=200)
        assert stored(dbsession, staff) == {"other_page": {"x": 1}, "sent_grid": {"show": "paid"}}

    def test_a_column_listed_twice_keeps_its_first_entry(self, testapp, staff_auth):
        columns = [
            {"field": "amount", "visible": True, "width": 100},
            {"field": "status", "visible": True},
            {"field": "amount", "visible": False, "width": 300},
        ]
        answer = testapp.put_json(
            URL, {"sent_grid": {"columns": columns}}, headers=staff_auth, status=200
        )
        assert answer.json["sent_grid"]["columns"] == columns[:2]

    def test_the_layout_comes_back_at_the_next_sign_in(self, app, testapp, staff):
        login(testapp, staff)
        testapp.put_json(URL, {"sent_grid": GRID}, headers={"X-CSRF-Token": csrf_token(testapp)})
        other_browser = webtest.TestApp(app, extra_environ=testapp.extra_environ)
        login(other_browser, staff)
        assert other_browser.get(URL).json == {"sent_grid": GRID}


class TestIsolation:
    def test_another_user_of_the_firm_neither_sees_nor_changes_it(
        self, testapp, dbsession, firm, staff, staff_auth
    ):
        colleague = factories.UserFactory(firm=firm, role="admin")
        colleague_auth = bearer(dbsession, colleague)
        testapp.put_json(URL, {"sent_grid": GRID}, headers=staff_auth)
        assert testapp.get(URL, headers=colleague_auth).json == {}
        testapp.put_json(URL, {"sent_grid": {"show": "expired"}}, headers=colleague_auth)
        assert testapp.get(URL, headers=staff_auth).json == {"sent_grid": GRID}
        assert stored(dbsession, staff) == {"sent_grid": GRID}
        assert stored(dbsession, colleague) == {"sent_grid": {"show": "expired"}}

    def test_a_user_of_another_firm_neither_sees_nor_changes_it(
        self, testapp, dbsession, staff, staff_auth
    ):
        stranger = factories.UserFactory(firm=factories.FirmFactory(), role="admin")
        stranger_auth = bearer(dbsession, stranger)
        testapp.put_json(URL, {"sent_grid": GRID}, headers=staff_auth)
        assert testapp.get(URL, headers=stranger_auth).json == {}
        testapp.put_json(URL, {"sent_grid": {"sort": "amount"}}, headers=stranger_auth)
        assert stored(dbsession, staff) == {"sent_grid": GRID}

    def test_no_user_can_be_named_in_the_address(self, testapp, staff, staff_auth):
        for path in (f"{URL}/{staff.id}", f"/api/v1/users/{staff.id}/preferences"):
            testapp.get(path, headers=staff_auth, status=404)


class TestAuthentication:
    def test_nobody_signed_in_gets_401(self, testapp):
        assert testapp.get(URL, status=401).json["error"] == "unauthenticated"
        testapp.put_json(URL, {"sent_grid": GRID}, status=401)

    def test_a_revoked_or_unknown_token_gets_401(self, testapp):
        testapp.get(URL, headers={"Authorization": "Bearer cpc_nonsense"}, status=401)

    def test_a_session_write_needs_the_csrf_token(self, testapp, dbsession, staff):
        login(testapp, staff)
        refused = testapp.put_json(URL, {"sent_grid": GRID}, status=403)
        assert refused.json["error"] == "csrf"
        assert stored(dbsession, staff) in ({}, None)
        token = csrf_token(testapp)
        testapp.put_json(URL, {"sent_grid": GRID}, headers={"X-CSRF-Token": token}, status=200)
        assert testapp.get(URL).json == {"sent_grid": GRID}


class TestValidation:
    @pytest.mark.parametrize(
        ("body", "field"),
        [
            ({"theme": "dark"}, "theme"),
            ({"sent_grid": {"colour": "red"}}, "sent_grid.colour"),
            ({"sent_grid": {"columns": [{"field": "token_hash", "visible": True}]}}, None),
            ({"sent_grid": {"columns": [{"field": "amount", "visible": True, "width": 39}]}}, None),
            (
                {"sent_grid": {"columns": [{"field": "amount", "visible": True, "width": 2001}]}},
                None,
            ),
            ({"sent_grid": {"columns": [{"field": "amount"}]}}, None),
            ({"sent_grid": {"columns": [{"field": "amount", "visible": "yes"}]}}, None),
            ({"sent_grid": {"sort": "--amount"}}, "sent_grid.sort"),
            ({"sent_grid": {"sort": "message"}}, "sent_grid.sort"),
            ({"sent_grid": {"show": "everything"}}, "sent_grid.show"),
            ({"sent_grid": {"filters": {"token_hash": "x"}}}, "sent_grid.filters.token_hash"),
            ({"sent_grid": {"filters": {"amount": {"min": "1e9"}}}}, None),
            ({"sent_grid": {"filters": {"due_date": {"from": "2026-02-30"}}}}, None),
            ({"sent_grid": {"filters": {"recipient_name": "x" * 255}}}, None),
            ({"sent_grid": {"filters": {"status": ["lost"]}}}, None),
            ({"sent_grid": []}, None),
            ([], None),
        ],
    )
    def test_a_wrong_value_is_refused_and_nothing_changes(
        self, testapp, dbsession, staff, staff_auth, body, field
    ):
        testapp.put_json(URL, {"sent_grid": GRID}, headers=staff_auth)
        refused = testapp.put_json(URL, body, headers=staff_auth, status=422)
        errors = refused.json["errors"]
        assert errors and all("field" in e and "message" in e for e in errors)
        if field is not None:
            assert field in {e["field"] for e in errors}
        assert stored(dbsession, staff) == {"sent_grid": GRID}

    def test_every_wrong_field_is_named_at_once(self, testapp, staff_auth):
        refused = testapp.put_json(
            URL,
            {"sent_grid": {"sort": "nope", "show": "nope", "extra": 1}},
            headers=staff_auth,
            status=422,
        )
        fields = {e["field"] for e in refused.json["errors"]}
        assert {"sent_grid.sort", "sent_grid.show", "sent_grid.extra"} <= fields

    def test_the_largest_document_admitted_is_kept_and_stays_under_the_cap(
        self, testapp, dbsession, staff, staff_auth
    ):
        fields = document()["components"]["schemas"]["SentGridPreferences"]["properties"]
        column_fields = fields["columns"]["items"]["properties"]["field"]["enum"]
        columns = [
            {"field": column_fields[i % len(column_fields)], "visible": True, "width": 2000}
            for i in range(fields["columns"]["maxItems"])
        ]
        # Every text filter at its longest, in characters that JSON writes six bytes each.
        text = "\u2028" * 254
        filters: dict[str, Any] = {
            name: text
            for name, schema in fields["filters"]["properties"].items()
            if schema.get("type") == "string" and "maxLength" in schema
        }
        filters["merchant_account_id"] = list(range(2147483647 - 49, 2147483648))
        filters["status"] = [
            "outstanding",
            "processing",
            "paid",
            "partially_paid",
            "cancelled",
            "expired",
        ]
        body = {
            "sent_grid": {
                "columns": columns,
                "filters": filters,
                "sort": "-invoice_number",
                "q": "\u2028" * fields["q"]["maxLength"],
                "show": "partially_paid",
            }
        }
        testapp.put_json(URL, body, headers=staff_auth, status=200)
        size = len(json.dumps(stored(dbsession, staff)).encode("utf-8"))
        assert size < MAX_PREFERENCES_BYTES / 2

    def test_the_stored_size_is_capped(self, testapp, dbsession, staff, staff_auth):
        # Keys saved by other pages count too: a user's row never grows without end.
        staff.preferences = {"other_page": "x" * MAX_PREFERENCES_BYTES}
        dbsession.flush()
        refused = testapp.put_json(URL, {"sent_grid": GRID}, headers=staff_auth, status=422)
        assert "bytes" in refused.json["message"]
        assert "sent_grid" not in stored(dbsession, staff)


class TestDocument:
    def test_the_sort_choices_are_those_of_the_links_list(self):
        grid = document()["components"]["schemas"]["SentGridPreferences"]["properties"]
        assert tuple(grid["sort"]["enum"]) == SORT_CHOICES
        assert tuple(grid["show"]["enum"]) == tuple(STATUS_VIEWS)

    def test_the_keys_answered_are_those_documented(self):
        documented = document()["components"]["schemas"]["Preferences"]["properties"]
        assert tuple(documented) == API_KEYS

    def test_the_columns_are_fields_of_the_link_object(self, testapp, staff_auth):
        served = testapp.get("/api/v1/openapi.json").json["components"]["schemas"]
        link_fields = set(served["Link"]["properties"])
        grid = served["SentGridPreferences"]["properties"]
        columns = grid["columns"]["items"]["properties"]["field"]["enum"]
        assert set(columns) <= link_fields
        assert set(grid["filters"]["properties"]) <= set(columns)
