"""The security headers through WebTest: what browsers and caches are told about our answers.

No answer that carries a payer's URL (the link's secret is in it) may be stored by a browser or
a proxy, however its caller signed in: a session cookie (the pages) or an API token (the
matter software, scripts). Every answer denies the browser features no page uses; only the
payer's page may use the Payment Request API, for a processor's wallet button.
"""

from __future__ import annotations

from typing import Any

import pytest
import webtest

from clientpay_connect.headers import DENIED_FEATURES
from tests.conftest import login
from tests.factories import MerchantAccountFactory
from tests.support.matter_adapter import Ledger
from tests.support.payments import new_link

BULK = "/api/v1/bulk-uploads"
CSV = (
    "Invoice Number,Invoice Date,Due Date,Recipient Name,Amount,Email Address,Custom Message\r\n"
    "INV-1,,,Jane Doe,100,jane@example.com,\r\n"
)


@pytest.fixture
def account(firm: Any) -> Any:
    return MerchantAccountFactory(firm=firm, name="Operating")


def policy(response: webtest.TestResponse) -> dict[str, str]:
    directives = response.headers["Permissions-Policy"].split(",")
    return dict(directive.strip().split("=", 1) for directive in directives)


def assert_not_stored(response: webtest.TestResponse) -> None:
    assert response.headers.get("Cache-Control") == "no-store", response.request.url


def quick_link(testapp: webtest.TestApp, auth: dict[str, str], account: Any) -> dict[str, Any]:
    answer = testapp.post_json(
        "/api/v1/links",
        {"merchant_account_id": account.id, "amount": "125.00"},
        headers=auth,
        status=201,
    )
    assert_not_stored(answer)
    assert "/pay/" in answer.json["url"]
    return dict(answer.json)


def test_token_answers_with_payer_urls_are_never_stored(testapp, staff_auth, account):
    link = quick_link(testapp, staff_auth, account)
    listed = testapp.get("/api/v1/links", headers=staff_auth)
    assert [item["url"] for item in listed.json["items"]] == [link["url"]]
    assert_not_stored(listed)
    one = testapp.get(f"/api/v1/links/{link['id']}", headers=staff_auth)
    assert one.json["url"] == link["url"]
    assert_not_stored(one)
    assert_not_stored(testapp.get("/api/v1/links/export.xlsx", headers=staff_auth))


def test_token_answers_of_a_bulk_upload_are_never_stored(testapp, staff_auth, account):
    created = testapp.post(
        BULK,
        {"merchant_account_id": str(account.id)},
        upload_files=[("file", "invoices.csv", CSV.encode())],
        headers=staff_auth,
        status=201,
    )
    assert_not_stored(created)
    upload = f"{BULK}/{created.json['id']}"
    assert_not_stored(testapp.get(f"{upload}/report.csv", headers=staff_auth))
    generated = testapp.post_json(f"{upload}/generate", {}, headers=staff_auth, status=201)
    assert generated.json["links"][0]["url"].startswith("http://localhost/pay/")
    assert_not_stored(generated)
    for download in ("links.csv", "links.xlsx"):
        answer = testapp.get(f"{upload}/{download}", headers=staff_auth)
        assert b"/pay/" in answer.body or download.endswith("xlsx")
        assert_not_stored(answer)


@pytest.mark.usefixtures("test_adapter_distribution")
def test_a_connect_link_made_with_a_token_is_never_stored(
    testapp, admin_auth, staff_auth, account, ledger: tuple[str, Ledger]
):
    connection = testapp.post_json(
        "/api/v1/connections",
        {"adapter": "memory", "name": "Our matters", "settings": {"ledger": ledger[0]}},
        headers=admin_auth,
        status=201,
    ).json
    answer = testapp.post_json(
        "/api/v1/connect/links",
        {
            "connection_id": connection["id"],
            "merchant_account_id": account.id,
            "invoices": [{"id": "101", "amount": "200.00"}],
            "payer": {"emails": ["jane@example.com"]},
        },
        headers=staff_auth,
        status=201,
    )
    assert "/pay/" in answer.json["url"]
    assert_not_stored(answer)


def test_a_launch_url_asked_for_with_a_token_is_never_stored(testapp, admin_auth, staff):
    answer = testapp.post_json(
        "/api/v1/embed/launch",
        {"user_email": staff.email, "open": "sent"},
        headers=admin_auth,
        status=201,
    )
    assert "/embed/launch/" in answer.json["url"]
    assert_not_stored(answer)


def test_signed_in_pages_and_their_api_answers_are_never_stored(testapp, staff, account):
    login(testapp, staff)
    assert_not_stored(testapp.get("/"))
    assert_not_stored(testapp.get("/sent"))
    assert_not_stored(testapp.get("/api/v1/links"))


def test_public_static_files_stay_cacheable(testapp):
    css = testapp.get("/static/app.css")
    assert css.headers["Cache-Control"] == "max-age=3600"


def test_staff_pages_deny_every_unused_feature_and_payments(testapp, staff):
    for page in (testapp.get("/login"), login(testapp, staff).follow()):
        features = policy(page)
        for feature in DENIED_FEATURES:
            assert features[feature] == "()"
        assert {"camera", "microphone", "geolocation"} <= set(features)
        assert features["payment"] == "()"
    assert policy(testapp.get("/api/v1/links"))["payment"] == "()"


def test_only_the_payers_page_may_use_payments(app, dbsession, firm, account, testapp):
    _link, token = new_link(dbsession, app.registry, account)
    page = testapp.get(f"/pay/{token}")
    features = policy(page)
    assert features["payment"] == "(self)"
    assert features["camera"] == features["microphone"] == features["geolocation"] == "()"
    assert policy(testapp.get(f"/api/v1/pay/{token}"))["payment"] == "()"
