"""The pure parts of the OAuth REST base: Retry-After, vendors' error texts, token answers,
and where a bearer token may be sent."""

from __future__ import annotations

import datetime as dt
import email.utils
import json

import pytest
import requests

from adapters.mycase import MyCaseAdapter
from adapters.oauth import DEFAULT_RETRY_AFTER, retry_after_seconds, token_set, vendor_message
from clientpay_connect.connect.interfaces import AdapterConfig, Permanent


def response(status: int, body: object = None, **headers: str) -> requests.Response:
    answer = requests.Response()
    answer.status_code = status
    answer.reason = "Reason"
    answer.headers.update(headers)
    answer._content = b"" if body is None else json.dumps(body).encode()
    return answer


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("3", 3.0),
        ("0.5", 0.5),
        ("-4", 0.0),
        ("", DEFAULT_RETRY_AFTER),
        ("soon", DEFAULT_RETRY_AFTER),
        ("nan", DEFAULT_RETRY_AFTER),
    ],
)
def test_retry_after_in_seconds(value, expected):
    assert retry_after_seconds(response(429, **{"Retry-After": value})) == expected


def test_retry_after_as_an_http_date():
    later = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=30)
    seconds = retry_after_seconds(
        response(429, **{"Retry-After": email.utils.format_datetime(later, usegmt=True)})
    )
    assert 25 <= seconds <= 30


def test_vendor_messages_in_their_shapes():
    mycase = {"errors": [{"description": "amount is wrong", "source": {"pointer": "/amount"}}]}
    assert vendor_message(response(422, mycase)) == "amount is wrong"
    assert vendor_message(response(400, {"error": {"message": "bad field"}})) == "bad field"
    oauth = {"error": "invalid_grant", "error_description": "expired"}
    assert vendor_message(response(400, oauth)) == "expired"
    assert vendor_message(response(502)) == "HTTP 502 Reason"


def test_a_token_answer_as_a_token_set():
    tokens = token_set(
        {
            "access_token": "a",
            "refresh_token": "r",
            "token_type": "Bearer",
            "expires_in": 60,
            "expires_at": 1_800_000_000.0,
            "firm_uuid": "f",
            "scope": "x",
        }
    )
    assert (tokens.access_token, tokens.refresh_token) == ("a", "r")
    assert tokens.expires_at == dt.datetime.fromtimestamp(1_800_000_000, dt.UTC)
    assert dict(tokens.extra) == {"firm_uuid": "f", "scope": "x"}


def test_a_refresh_without_a_new_refresh_token_keeps_the_old_one():
    assert token_set({"access_token": "a"}, previous_refresh_token="r").refresh_token == "r"


def test_the_bearer_token_goes_only_to_the_apis_own_host():
    settings = {"clientpay.mycase.api_url": "https://api.example.test/v1"}
    adapter = MyCaseAdapter(AdapterConfig(settings={}, app_settings=settings))
    try:
        assert adapter._url("invoices") == "https://api.example.test/v1/invoices"
        next_page = "https://api.example.test/v1/invoices?page_token=x"
        assert adapter._url(next_page) == next_page
        with pytest.raises(Permanent):
            adapter._url("https://elsewhere.example.test/v1/invoices?page_token=x")
        with pytest.raises(Permanent):
            adapter._url("http://api.example.test/v1/invoices?page_token=x")
    finally:
        adapter.close()


def test_settings_and_defaults():
    adapter = MyCaseAdapter(AdapterConfig(settings={}, app_settings={}))
    try:
        assert adapter.api_base() == "https://external-integrations.mycase.com/v1"
        assert adapter.token_url() == "https://auth.mycase.com/tokens"
        assert (adapter.timeout, adapter.max_rate_wait, adapter.page_size) == (10.0, 10.0, 1000)
    finally:
        adapter.close()
