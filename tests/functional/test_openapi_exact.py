"""What schemathesis found where the OpenAPI document and the server disagreed, each pinned
by a plain WebTest test (test_openapi_schemathesis.py runs schemathesis itself)."""

from __future__ import annotations

from typing import Any

import pytest
import webtest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from clientpay_connect.api.openapi import HTTP_METHODS, load_spec
from clientpay_connect.connect.models import Connection
from tests import factories


def fields(answer: webtest.TestResponse) -> list[str]:
    return [error["field"] for error in answer.json["errors"]]


def test_a_method_the_address_does_not_have_is_405_with_allow(
    testapp: webtest.TestApp, staff_auth: dict[str, str]
) -> None:
    answer = testapp.delete("/api/v1/links", headers=staff_auth, status=405)
    assert answer.headers["Allow"] == "GET, HEAD, POST"
    assert answer.json["error"] == "method_not_allowed"
    # An address that is not there stays a 404.
    testapp.get("/api/v1/nothing-here", headers=staff_auth, status=404)


@pytest.fixture
def account(staff: Any) -> Any:
    return factories.MerchantAccountFactory(firm=staff.firm)


@pytest.mark.parametrize(
    "address",
    [
        "/api/v1/links",
        "/api/v1/links?sort=-amount&limit=5",
        "/api/v1/links?status=outstanding&filter%5Bamount_min%5D=10",
    ],
)
def test_head_answers_as_the_get_it_is_without_a_body(
    testapp: webtest.TestApp, staff_auth: dict[str, str], new_link: Any, address: str
) -> None:
    new_link(amount_minor=5_000)
    new_link(amount_minor=1_500)
    got = testapp.get(address, headers=staff_auth, status=200)
    head = testapp.head(address, headers=staff_auth, status=200)
    assert head.content_type == got.content_type
    assert head.body == b""
    # And a HEAD's bad query is the GET's 422.
    bad = address + ("&" if "?" in address else "?") + "limit=0"
    assert testapp.head(bad, headers=staff_auth, status=422).body == b""
    testapp.get(bad, headers=staff_auth, status=422)


def test_a_sql_connection_without_a_url_is_refused_on_its_settings(
    testapp: webtest.TestApp, admin_auth: dict[str, str], dbsession: Session
) -> None:
    answer = testapp.post_json(
        "/api/v1/connections", {"adapter": "sql"}, headers=admin_auth, status=422
    )
    assert fields(answer) == ["settings"]
    assert "database URL" in answer.json["errors"][0]["message"]
    count = select(func.count()).select_from(Connection)
    assert dbsession.execute(count).scalar_one() == 0


def test_a_form_to_a_json_address_is_415(
    testapp: webtest.TestApp, admin_auth: dict[str, str]
) -> None:
    answer = testapp.post(
        "/api/v1/users",
        "--x--\r\n",
        headers={**admin_auth, "Content-Type": "multipart/form-data; boundary=x"},
        status=415,
    )
    assert answer.json["error"] == "unsupported_media_type"


def test_an_upload_without_a_boundary_is_400(
    testapp: webtest.TestApp, staff_auth: dict[str, str]
) -> None:
    answer = testapp.post(
        "/api/v1/bulk-uploads",
        "--x--\r\n",
        headers={**staff_auth, "Content-Type": "multipart/form-data"},
        status=400,
    )
    assert answer.json["error"] == "invalid_form"


def test_a_blank_address_is_refused_not_dropped(
    testapp: webtest.TestApp, staff_auth: dict[str, str], firm: Any
) -> None:
    account = factories.MerchantAccountFactory(firm=firm)
    answer = testapp.post_json(
        "/api/v1/links",
        {"merchant_account_id": account.id, "amount": "10.00", "emails": ["a@example.com", ""]},
        headers=staff_auth,
        status=422,
    )
    assert answer.json["errors"] == [{"field": "emails.1", "message": "This cannot be blank."}]


def test_an_empty_cursor_is_refused(testapp: webtest.TestApp, staff_auth: dict[str, str]) -> None:
    answer = testapp.get("/api/v1/links", {"cursor": ""}, headers=staff_auth, status=422)
    assert fields(answer) == ["cursor"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"kind": ""}, "kind"),
        ({"methods": []}, "methods"),
        ({"methods": ["cash"]}, "methods.0"),
        ({"name": " "}, "name"),
    ],
)
def test_a_merchant_account_change_the_server_refuses_the_document_refuses(
    testapp: webtest.TestApp,
    admin_auth: dict[str, str],
    firm: Any,
    body: dict[str, Any],
    field: str,
) -> None:
    account = factories.MerchantAccountFactory(firm=firm)
    answer = testapp.patch_json(
        f"/api/v1/merchant-accounts/{account.id}", body, headers=admin_auth, status=422
    )
    assert fields(answer) == [field]


def test_a_blank_user_name_is_refused_by_the_document(
    testapp: webtest.TestApp, admin_auth: dict[str, str], staff: Any
) -> None:
    answer = testapp.patch_json(
        f"/api/v1/users/{staff.id}", {"name": ""}, headers=admin_auth, status=422
    )
    assert fields(answer) == ["name"]
    spec = load_spec("")
    assert spec["components"]["schemas"]["UserChanges"]["properties"]["name"]["pattern"] == r"\S"


def test_every_operation_documents_the_answers_every_operation_may_give() -> None:
    spec = load_spec("")
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            if method not in HTTP_METHODS:
                continue
            responses = operation["responses"]
            if operation.get("requestBody"):
                assert {"400", "413", "415", "422"} <= set(responses), (method, path)
            if operation.get("security"):
                assert "401" in responses, (method, path)


@pytest.mark.parametrize(
    ("method", "path"),
    [
        # Seen by schemathesis: ?limit=501 and an unexpected body answered an undocumented 422.
        ("get", "/bulk-uploads/{id}/rows"),
        ("post", "/bulk-uploads/{id}/send"),
        ("post", "/bulk-uploads/{id}/generate"),
    ],
)
def test_the_422s_schemathesis_found_are_documented(method: str, path: str) -> None:
    assert "422" in load_spec("")["paths"][path][method]["responses"]


def test_rows_past_the_limit_and_an_unknown_field_are_422(
    testapp: webtest.TestApp, staff_auth: dict[str, str], firm: Any
) -> None:
    account = factories.MerchantAccountFactory(firm=firm)
    upload = testapp.post(
        "/api/v1/bulk-uploads",
        {"merchant_account_id": str(account.id)},
        upload_files=[("file", "a.csv", b"Recipient Name,Amount\nJane,10.00\n")],
        headers=staff_auth,
        status=201,
    ).json
    rows = testapp.get(
        f"/api/v1/bulk-uploads/{upload['id']}/rows",
        {"limit": "501"},
        headers=staff_auth,
        status=422,
    )
    assert fields(rows) == ["limit"]
    sent = testapp.post_json(
        f"/api/v1/bulk-uploads/{upload['id']}/send", {"x": 1}, headers=staff_auth, status=422
    )
    assert fields(sent) == ["x"]
