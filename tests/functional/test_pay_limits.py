"""Rate limits on the payer's endpoints, on apps built with tiny limits.

Every request here is refused before it writes anything (unknown tokens, invalid details), so
these apps can share the suite's database without a rolled-back connection.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import webtest

from clientpay_connect import main
from tests.support.payments import card, submission

UNKNOWN = "/api/v1/pay/no-such-link-token"
AppMaker = Callable[..., webtest.TestApp]


@pytest.fixture
def make_app(app_settings: dict[str, Any]) -> Iterator[AppMaker]:
    built = []

    def make(**limits: str) -> webtest.TestApp:
        settings = {
            **app_settings,
            **{f"clientpay.limits.{name}": value for name, value in limits.items()},
            # Counters of their own, also when they live in the suite's Redis.
            "clientpay.limits.key_prefix": "clientpay-limits-" + uuid.uuid4().hex[:8],
        }
        application = main({}, **settings)
        built.append(application)
        return webtest.TestApp(application, extra_environ={"HTTP_HOST": "localhost"})

    yield make
    for application in built:
        application.registry["dbengine"].dispose()


def _post(testapp: webtest.TestApp, ip: str, path: str = UNKNOWN) -> webtest.TestResponse:
    return testapp.post_json(
        path,
        submission("tok_x"),
        headers={"Idempotency-Key": uuid.uuid4().hex},
        extra_environ={"REMOTE_ADDR": ip},
        status="*",
    )


def test_payment_attempts_are_limited_per_address(make_app):
    testapp = make_app(pay_attempts="2/minute")
    assert [_post(testapp, "10.0.0.1", f"{UNKNOWN}-{n}").status_int for n in range(2)] == [404, 404]
    refused = _post(testapp, "10.0.0.1", f"{UNKNOWN}-3")
    assert refused.status_int == 429
    assert refused.json["error"] == "rate_limited"
    assert set(refused.json) >= {"error", "message", "errors"}
    assert _post(testapp, "10.0.0.2", f"{UNKNOWN}-4").status_int == 404


def test_payment_attempts_are_limited_per_link(make_app):
    testapp = make_app(pay_attempts="2/minute")
    answers = [_post(testapp, f"10.0.1.{n}").status_int for n in range(1, 4)]
    assert answers == [404, 404, 429]


def test_none_turns_a_limit_off(make_app):
    testapp = make_app(pay_attempts="none")
    assert {_post(testapp, "10.0.2.1").status_int for _ in range(12)} == {404}


def test_token_lookups_are_limited_per_address(make_app):
    testapp = make_app(token_lookups="2/minute")
    environ = {"REMOTE_ADDR": "10.0.3.1"}
    for n in range(2):
        testapp.get(f"{UNKNOWN}-{n}", extra_environ=environ, status=404)
    body = testapp.get(f"{UNKNOWN}-9", extra_environ=environ, status=429).json
    assert body["error"] == "rate_limited"


def test_sandbox_tokenization_is_limited_per_address(make_app):
    testapp = make_app(sandbox_tokens="2/minute")
    environ = {"REMOTE_ADDR": "10.0.4.1"}
    invalid = card("1234")
    for _ in range(2):
        testapp.post_json("/sandbox/tokens", invalid, extra_environ=environ, status=422)
    body = testapp.post_json("/sandbox/tokens", invalid, extra_environ=environ, status=429).json
    assert body["error"] == "rate_limited"
