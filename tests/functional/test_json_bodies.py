"""A JSON body that cannot be read is the caller's mistake (400/422 in the usual error shape),
never a server error: on every JSON endpoint, the payer's included."""

from __future__ import annotations

import pytest

from tests.functional.test_request_limits import json_operations


def every_json_endpoint(app) -> list[tuple[str, str]]:
    operations = [(m, p.replace("{token}", "some-link-token")) for m, p in json_operations(app)]
    return [*operations, ("POST", "/sandbox/tokens")]


def post_raw(testapp, method, path, body, auth):
    return testapp.request(
        path,
        method=method,
        body=body,
        headers={**auth, "Content-Type": "application/json", "Idempotency-Key": "k"},
        expect_errors=True,
    )


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"\xff", "The request body is not UTF-8 text."),
        (b'{"amount": "10\xe9"}', "The request body is not UTF-8 text."),
        (b'{"amount": ', "The request body is not valid JSON."),
    ],
)
def test_a_body_that_is_not_utf8_json_is_a_400_everywhere(app, testapp, admin_auth, body, message):
    endpoints = every_json_endpoint(app)
    assert ("POST", "/api/v1/pay/some-link-token") in endpoints
    for method, path in endpoints:
        answer = post_raw(testapp, method, path, body, admin_auth)
        assert answer.status_int == 400, (method, path, answer.text)
        assert answer.json == {"error": "invalid_json", "message": message, "errors": []}


def test_a_body_nested_thirty_thousand_deep_is_a_422_everywhere(app, testapp, admin_auth):
    deep = b"[" * 30_000 + b"]" * 30_000
    for method, path in every_json_endpoint(app):
        answer = post_raw(testapp, method, path, deep, admin_auth)
        assert answer.status_int == 422, (method, path, answer.text)
        assert answer.json["errors"] == [
            {"field": "", "message": "The request nests deeper than 32 levels."}
        ]


def test_a_body_nested_fifty_thousand_deep_is_refused_by_its_size(testapp):
    deep = b"[" * 50_000 + b"]" * 50_000
    answer = post_raw(testapp, "POST", "/api/v1/pay/some-link-token", deep, {})
    assert answer.status_int == 413
    assert answer.json["error"] == "request_too_large"


def test_a_body_within_the_bounds_nests_as_deep_as_it_likes_up_to_32(testapp, staff_auth):
    # Thirty-two levels (the object and 31 arrays) are read; the schema then refuses them.
    nested: list = []
    for _ in range(30):
        nested = [nested]
    answer = testapp.post_json(
        "/api/v1/links/cancel", {"ids": nested}, headers=staff_auth, status=422
    )
    assert answer.json["error"] == "validation_error"
    assert answer.json["errors"][0]["field"].startswith("ids")


@pytest.mark.parametrize(
    ("body", "field"),
    [(b'{"name": "a\\u0000b"}', "name"), (b'{"emails": ["x", "\\u0000"]}', "emails.1")],
)
def test_a_text_with_the_nul_character_is_a_422_everywhere(app, testapp, admin_auth, body, field):
    for method, path in every_json_endpoint(app):
        answer = post_raw(testapp, method, path, body, admin_auth)
        assert answer.status_int == 422, (method, path, answer.text)
        assert answer.json["errors"] == [
            {"field": field, "message": "Text cannot contain the NUL character (\\u0000)."}
        ]


def test_a_query_with_the_nul_character_is_a_422(testapp, staff_auth):
    for path in ("/api/v1/links", "/api/v1/postings", "/api/v1/connect/search"):
        answer = testapp.get(path, {"q": "a\x00b"}, headers=staff_auth, status=422)
        assert answer.json["errors"] == [
            {"field": "q", "message": "Text cannot contain the NUL character (\\u0000)."}
        ]
