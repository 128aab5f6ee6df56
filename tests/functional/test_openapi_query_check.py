"""QueryCheck (api/openapi.py) lets a query-only GET skip openapi-core only when openapi-core
would have accepted its parameters: it may doubt (openapi-core then answers as ever), never
pass what the document refuses."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

import webtest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from openapi_core.templating.paths.exceptions import PathNotFound
from pyramid.interfaces import IRoutesMapper
from pyramid.request import Request
from pyramid.router import Router

from clientpay_connect.api.openapi import QueryCheck, _AppRequest

LINKS = ("GET", "/links")
# Values near each rule of the document's query parameters: blanks, spaces around a good
# value, signs, other digits, line breaks, impossible days, lengths at and past the limits.
TRICKY = st.sampled_from(
    [
        "",
        " ",
        "amount",
        "-amount",
        " amount",
        "all",
        "outstanding",
        "paid,cancelled",
        "paid, cancelled",
        "paid,",
        "connect",
        "connect ",
        "sent",
        "0",
        "1",
        "7",
        "007",
        "+7",
        "-1",
        " 7",
        "\u0667",
        "500",
        "501",
        "1000000",
        "1000001",
        "2147483647",
        "2147483648",
        "12.5",
        "12.505",
        "1.",
        "5\n",
        "2024-02-29",
        "2023-02-29",
        "2024-1-01",
        "20240101",
        "2024-01-01\n",
        "x" * 16,
        "x" * 17,
        "x" * 200,
        "x" * 201,
        "x" * 254,
        "x" * 255,
        "x" * 1000,
        "x" * 1001,
    ]
)


def links_route(app: Router) -> Any:
    return app.registry.getUtility(IRoutesMapper).get_route("api.links")


def openapi_core_accepts(app: Router, pairs: list[tuple[str, str]]) -> bool:
    # A token's presence is all openapi-core checks of security; the policy checks the rest.
    request = Request.blank(
        "/api/v1/links?" + urlencode(pairs), headers={"Authorization": "Bearer any"}
    )
    request.registry = app.registry
    request.matched_route = links_route(app)
    result = app.registry["clientpay.openapi"].unmarshal_request(_AppRequest(request))
    return not [e for e in result.errors if not isinstance(e, PathNotFound)]


def links_check(app: Router) -> QueryCheck:
    check: QueryCheck = app.registry["clientpay.openapi.queries"][LINKS]
    return check


def query(pairs: list[tuple[str, str]]) -> Any:
    return Request.blank("/?" + urlencode(pairs)).GET


@settings(
    max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_what_the_check_passes_openapi_core_accepts(app: Router, data: Any) -> None:
    names = [*sorted(links_check(app).checks), "filter[nothing]", "other"]
    pairs = data.draw(st.lists(st.tuples(st.sampled_from(names), TRICKY), max_size=4))
    if links_check(app).passes(query(pairs)):
        assert openapi_core_accepts(app, pairs), pairs


def test_the_usual_queries_pass_the_check(app: Router) -> None:
    usual = [
        [],
        [("sort", "amount"), ("limit", "50"), ("cursor", "opaque")],
        [("status", "outstanding"), ("filter[source]", "bulk_upload"), ("q", "Smith")],
        [("filter[status]", "paid,cancelled"), ("filter[amount_min]", "12.50")],
        [("filter[due_date_from]", "2024-02-29"), ("filter[reminders_sent_max]", "3")],
        [("filter[merchant_account_id]", "2147483647"), ("filter[created_by]", "a@b.test")],
    ]
    for pairs in usual:
        assert links_check(app).passes(query(pairs)), pairs
        assert openapi_core_accepts(app, pairs), pairs


def test_what_the_check_doubts_is_answered_by_the_document(
    testapp: webtest.TestApp, staff_auth: dict[str, str]
) -> None:
    # Each passes the view's own parser (it strips values, and reads a blank as no value),
    # so the 422 is openapi-core's: the document's word still holds.
    for name, value in [
        ("status", ""),
        ("filter[source]", "connect "),
        ("filter[status]", "paid, cancelled"),
        ("q", " " * 201),
    ]:
        assert not links_check(testapp.app).passes(query([(name, value)]))
        answer = testapp.get("/api/v1/links", {name: value}, headers=staff_auth, status=422)
        assert [e["field"] for e in answer.json["errors"]] == [name], answer.json
