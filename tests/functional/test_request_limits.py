"""Request bodies are capped before anything parses them, the API's schemas are closed and
bounded, and the payer's API counts its rate limit before it validates a body."""

from __future__ import annotations

import io
import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import webtest
from pyramid.router import Router
from webob import Request

from clientpay_connect import main
from clientpay_connect.links.models import PaymentLink
from tests.factories import MerchantAccountFactory
from tests.support.payments import submission

JSON_LIMIT = 64 * 1024
PAY = "/api/v1/pay/no-such-link-token"


class CountingStream:
    """A request's input as a socket would give it, counting what the app took from it."""

    def __init__(self, data: bytes):
        self._data = io.BytesIO(data)
        self.taken = 0

    def read(self, size: int = -1) -> bytes:
        part = self._data.read(size)
        self.taken += len(part)
        return part

    def readline(self, size: int = -1) -> bytes:
        part = self._data.readline(size)
        self.taken += len(part)
        return part

    def close(self) -> None:
        self._data.close()


def chunked(
    app: Router, path: str, body: bytes, headers: dict[str, str]
) -> tuple[Any, CountingStream]:
    """POST ``body`` as a server hands on a chunked request: no Content-Length at all."""
    stream = CountingStream(body)
    request = Request.blank(path, method="POST", headers=headers)
    request.environ["wsgi.input"] = stream
    request.environ.pop("CONTENT_LENGTH", None)
    request.environ["HTTP_TRANSFER_ENCODING"] = "chunked"
    # What a server that passes chunked bodies on says: read until the stream ends.
    request.environ["wsgi.input_terminated"] = True
    request.environ["HTTP_HOST"] = "localhost"
    return request.get_response(app), stream


def padded(body: dict[str, Any], size: int) -> bytes:
    """``body`` as JSON, padded with spaces to exactly ``size`` bytes (still the same JSON)."""
    data = json.dumps(body, separators=(",", ":")).encode()
    assert len(data) <= size, f"{len(data)} bytes of JSON do not fit in {size}"
    return data + b" " * (size - len(data))


@pytest.fixture
def account(staff: Any) -> Any:
    return MerchantAccountFactory(firm=staff.firm)


def test_a_json_body_over_the_limit_is_413_before_anything_reads_it(testapp):
    body = padded(submission("tok_x"), JSON_LIMIT + 1)
    answer = testapp.post(
        PAY,
        body,
        headers={"Idempotency-Key": "k", "Content-Type": "application/json"},
        status=413,
    )
    assert answer.json == {
        "error": "request_too_large",
        "message": "The request is larger than the 64 KB this address accepts.",
        "errors": [],
    }


def test_a_json_body_at_the_limit_is_read(testapp):
    body = padded(submission("tok_x"), JSON_LIMIT)
    headers = {"Idempotency-Key": "k", "Content-Type": "application/json"}
    assert testapp.post(PAY, body, headers=headers, status=404).json["error"] == "not_found"


def test_a_form_over_the_limit_gets_a_plain_page(testapp):
    answer = testapp.post(
        "/login",
        {"email": "a@b.test", "password": "x" * JSON_LIMIT},
        headers={"Accept": "text/html"},
        status=413,
    )
    assert answer.content_type == "text/html"
    assert "larger than the 64 KB" in answer.text


def test_an_api_write_over_the_limit_is_refused_before_the_session_and_csrf(
    testapp, dbsession, staff_auth, account
):
    before = dbsession.query(PaymentLink).count()
    body = {"merchant_account_id": account.id, "amount": "10", "message": "x" * JSON_LIMIT}
    answer = testapp.post_json("/api/v1/links", body, headers=staff_auth, status=413)
    assert answer.json["error"] == "request_too_large"
    assert dbsession.query(PaymentLink).count() == before


def test_a_chunked_body_is_cut_off_at_the_limit(app, db_connection):
    body = padded(submission("tok_x"), 10 * JSON_LIMIT)
    headers = {"Idempotency-Key": "k", "Content-Type": "application/json"}
    response, stream = chunked(app, PAY, body, headers)
    assert response.status_int == 413
    assert response.json["error"] == "request_too_large"
    # It stopped reading one byte past the limit: never the rest of the body.
    assert stream.taken == JSON_LIMIT + 1


def test_a_small_chunked_body_is_read_as_usual(app, db_connection, staff_auth, account):
    body = json.dumps({"merchant_account_id": account.id, "amount": "12.50"}).encode()
    headers = {**staff_auth, "Content-Type": "application/json"}
    response, stream = chunked(app, "/api/v1/links", body, headers)
    assert response.status_int == 201, response.text
    assert response.json["amount"] == "12.50"
    assert stream.taken == len(body)


def test_an_upload_may_be_larger_than_a_json_body(testapp, dbsession, staff_auth, account):
    rows = "".join(
        f"INV-{n},,,Jane Doe,{n}.00,jane@example.test,{'x' * 200}\n" for n in range(1, 600)
    )
    data = (
        "Invoice Number,Invoice Date,Due Date,Recipient Name,Amount,Email,Custom Message\n" + rows
    ).encode()
    assert len(data) > 2 * JSON_LIMIT
    created = testapp.post(
        "/api/v1/bulk-uploads",
        {"merchant_account_id": str(account.id)},
        upload_files=[("file", "big.csv", data)],
        headers=staff_auth,
        status=201,
    ).json
    assert created["counts"]["rows"] == 599


def test_an_upload_over_its_limit_is_refused_by_its_length_unread(app, db_connection, staff_auth):
    stream = CountingStream(b"--x\r\n")
    request = Request.blank(
        "/api/v1/bulk-uploads",
        method="POST",
        headers={**staff_auth, "Content-Type": "multipart/form-data; boundary=x"},
    )
    request.environ.update(
        {
            "wsgi.input": stream,
            "CONTENT_LENGTH": str(33 * 1024 * 1024 + 1),
            "HTTP_HOST": "localhost",
        }
    )
    response = request.get_response(app)
    assert response.status_int == 413
    assert response.json["message"] == "The request is larger than the 33 MB this address accepts."
    assert stream.taken == 0


# --- closed, bounded schemas -------------------------------------------------------------------


def test_an_unknown_property_is_refused_by_name(testapp):
    body = submission("tok_x", card_number="4242424242424242")
    answer = testapp.post_json(PAY, body, headers={"Idempotency-Key": "k"}, status=422)
    assert answer.json["error"] == "validation_error"
    assert [e["field"] for e in answer.json["errors"]] == ["card_number"]


def test_unknown_properties_are_refused_on_staff_writes(testapp, dbsession, staff_auth, account):
    before = dbsession.query(PaymentLink).count()
    body = {"merchant_account_id": account.id, "amount": "10", "amount_minor": 1000}
    answer = testapp.post_json("/api/v1/links", body, headers=staff_auth, status=422)
    assert [e["field"] for e in answer.json["errors"]] == ["amount_minor"]
    assert dbsession.query(PaymentLink).count() == before


def test_an_array_beyond_its_bound_is_refused(testapp, staff_auth, account):
    body = {"merchant_account_id": account.id, "amount": "10", "emails": ["a@b.test"] * 101}
    answer = testapp.post_json("/api/v1/links", body, headers=staff_auth, status=422)
    assert [e["field"] for e in answer.json["errors"]] == ["emails"]
    assert answer.json["errors"][0]["message"] == "Send at most 100 items."


def test_a_string_beyond_its_bound_is_refused_without_echoing_it(testapp):
    body = submission("tok_x", payer_name="N" * 1001)
    answer = testapp.post_json(PAY, body, headers={"Idempotency-Key": "k"}, status=422)
    assert answer.json["errors"] == [
        {"field": "payer_name", "message": "Use at most 1000 characters."}
    ]


# --- the rate limit comes first ----------------------------------------------------------------


@pytest.fixture
def limited_app(app_settings: dict[str, Any]) -> Iterator[webtest.TestApp]:
    settings = {
        **app_settings,
        "clientpay.limits.pay_attempts": "2/minute",
        "clientpay.limits.key_prefix": "clientpay-limits-" + uuid.uuid4().hex[:8],
    }
    application = main({}, **settings)
    yield webtest.TestApp(application, extra_environ={"HTTP_HOST": "localhost"})
    application.registry["dbengine"].dispose()


def test_the_payers_rate_limit_is_counted_before_the_body_is_validated(limited_app):
    def attempt() -> webtest.TestResponse:
        return limited_app.post_json(
            PAY,
            {"unexpected": list(range(1000))},
            headers={"Idempotency-Key": uuid.uuid4().hex},
            extra_environ={"REMOTE_ADDR": "10.9.8.7"},
            status="*",
        )

    assert [attempt().status_int for _ in range(2)] == [422, 422]
    refused = attempt()
    assert refused.status_int == 429
    assert refused.json["error"] == "rate_limited"


# --- what the largest allowed body costs ---------------------------------------------------------

# The processor time any one request may take to be refused or validated: far above what a
# valid small request takes here (a few ms), far below what an unbounded body cost (seconds).
# Each is the best of a few tries, so that another process on the machine cannot fail it.
BOUND_SECONDS = 0.5
TRIES = 3


def hostile_bodies(valid: dict[str, Any]) -> dict[str, bytes]:
    """Bodies just within the size limit, each shaped to make a validator work hard."""
    room = JSON_LIMIT - 200
    return {
        "long string": padded({**valid, "payer_name": "x" * room}, JSON_LIMIT),
        "many unknown keys": padded(
            {**valid, **{f"k{i}": 0 for i in range(room // 12)}}, JSON_LIMIT
        ),
        "large unknown array": padded({**valid, "extra": [0] * (room // 2)}, JSON_LIMIT),
        "large known array": padded({**valid, "emails": ["a@b.c"] * (room // 9)}, JSON_LIMIT),
        "many nested arrays": padded({**valid, "ids": [[[0]]] * (room // 8)}, JSON_LIMIT),
        "wrong types": padded({**valid, "ids": ["x"] * 2400}, JSON_LIMIT),
        "deep": padded({"a": json.loads("[" * 30 + "]" * 30)}, JSON_LIMIT),
    }


def json_operations(app: Router) -> list[tuple[str, str]]:
    """Every operation of the API document that takes a JSON body, with ids filled in."""
    spec = app.registry["clientpay.openapi.spec"]
    found = []
    for path, item in spec["paths"].items():
        operations = {m: o for m, o in item.items() if m != "parameters"}
        for method, operation in operations.items():
            content = (operation.get("requestBody") or {}).get("content", {})
            if "application/json" in content:
                found.append((method.upper(), "/api/v1" + path.replace("{id}", "1")))
    return found


def test_validating_the_largest_allowed_bodies_stays_fast(app, testapp, admin_auth):
    operations = json_operations(app)
    assert len(operations) >= 8
    costs: list[tuple[float, str, str, str]] = []
    for n, ((method, path), (shape, body)) in enumerate(
        (operation, shape)
        for operation in operations
        for shape in hostile_bodies(submission("tok_x")).items()
    ):
        tries = []
        for attempt in range(TRIES):
            # A fresh payer's address and link each time: the payer's rate limit must not
            # answer in the validator's place.
            unique = f"{n}-{attempt}"
            started = time.thread_time()
            answer = testapp.request(
                path.replace("{token}", f"token-{unique}"),
                method=method,
                body=body,
                headers={
                    **admin_auth,
                    "Content-Type": "application/json",
                    "Idempotency-Key": unique,
                },
                environ={"REMOTE_ADDR": f"10.{n % 250}.{attempt}.1"},
                expect_errors=True,
            )
            tries.append(time.thread_time() - started)
            assert answer.status_int in (400, 404, 409, 422), (method, path, shape, answer.text)
        costs.append((min(tries), method, path, shape))
    costs.sort(reverse=True)
    assert costs[0][0] < BOUND_SECONDS, costs[:5]
