"""reCAPTCHA: our verifier against a fake siteverify over real HTTP, and the API using it."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from typing import Any

import pytest
from pyramid.scripting import prepare
from zope.interface.verify import verifyClass, verifyObject

from clientpay_connect import main
from clientpay_connect.admin.models import FirmSettings
from clientpay_connect.pay.captcha import GoogleCaptchaVerifier, NullCaptchaVerifier
from clientpay_connect.pay.interfaces import ICaptchaVerifier
from tests import factories
from tests.fakes.siteverify import GOOD_RESPONSE, PATH, SECRET, FakeSiteverify, running_siteverify
from tests.support.payments import card, new_link, pay, submission, tokenize

TIMEOUT = 1.0


@pytest.fixture
def siteverify() -> Iterator[FakeSiteverify]:
    with running_siteverify() as fake:
        yield fake


@pytest.fixture
def verifier(siteverify: FakeSiteverify) -> GoogleCaptchaVerifier:
    return GoogleCaptchaVerifier(siteverify.url, timeout=TIMEOUT)


def test_both_verifiers_implement_the_interface():
    assert verifyClass(ICaptchaVerifier, GoogleCaptchaVerifier)
    assert verifyClass(ICaptchaVerifier, NullCaptchaVerifier)


# The verifier against the fake siteverify


def test_the_one_good_response_passes_and_google_is_told_everything(siteverify, verifier):
    assert verifier.verify(SECRET, GOOD_RESPONSE, "203.0.113.9") is True
    [request] = siteverify.requests
    assert request.method == "POST"
    assert request.path == PATH
    assert request.content_type == "application/x-www-form-urlencoded"
    assert request.form == {"secret": SECRET, "response": GOOD_RESPONSE, "remoteip": "203.0.113.9"}


def test_any_other_response_fails(siteverify, verifier):
    assert verifier.verify(SECRET, "a-forged-response", "203.0.113.9") is False
    assert verifier.verify("the-wrong-secret", GOOD_RESPONSE, "203.0.113.9") is False
    assert len(siteverify.requests) == 2


def test_an_empty_response_fails_without_asking(siteverify, verifier):
    assert verifier.verify(SECRET, "", "203.0.113.9") is False
    assert verifier.verify("", GOOD_RESPONSE, "203.0.113.9") is False
    assert siteverify.requests == []


def test_no_remote_address_is_simply_left_out(siteverify, verifier):
    assert verifier.verify(SECRET, GOOD_RESPONSE, None) is True
    assert "remoteip" not in siteverify.requests[0].form


def test_an_http_error_is_a_failure(siteverify, verifier):
    siteverify.mode = "error"
    assert verifier.verify(SECRET, GOOD_RESPONSE, "203.0.113.9") is False
    assert len(siteverify.requests) == 1


def test_an_answer_that_is_not_json_is_a_failure(siteverify, verifier):
    siteverify.mode = "garbage"
    assert verifier.verify(SECRET, GOOD_RESPONSE, "203.0.113.9") is False


def test_a_server_that_does_not_answer_in_time_is_a_failure(siteverify, verifier):
    siteverify.mode = "slow"
    started = time.monotonic()
    assert verifier.verify(SECRET, GOOD_RESPONSE, "203.0.113.9") is False
    elapsed = time.monotonic() - started
    assert TIMEOUT * 0.9 <= elapsed < TIMEOUT + 2, elapsed
    assert len(siteverify.requests) == 1


def test_a_server_that_is_down_is_a_failure():
    # A port that was free a moment ago: nothing listens there.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    down = GoogleCaptchaVerifier(f"http://127.0.0.1:{port}{PATH}", timeout=TIMEOUT)
    started = time.monotonic()
    assert down.verify(SECRET, GOOD_RESPONSE, "203.0.113.9") is False
    assert time.monotonic() - started < TIMEOUT + 2


def test_the_null_verifier_accepts_anything():
    assert NullCaptchaVerifier().verify("", "", None) is True


# Choosing the verifier by setting


def _service(app: Any) -> Any:
    env = prepare(registry=app.registry)
    try:
        return env["request"].find_service(ICaptchaVerifier)
    finally:
        env["closer"]()


def test_the_google_verifier_is_the_default_and_reads_its_settings(app):
    verifier = _service(app)
    assert isinstance(verifier, GoogleCaptchaVerifier)
    assert verifyObject(ICaptchaVerifier, verifier)
    assert verifier.verify_url == "https://www.google.com/recaptcha/api/siteverify"
    assert verifier.timeout == float(app.registry.settings["clientpay.http_timeout"])


def test_the_verifier_is_chosen_by_its_dotted_name(app_settings):
    other = main(
        {},
        **{
            **app_settings,
            "clientpay.captcha.verifier": "clientpay_connect.pay.captcha.NullCaptchaVerifier",
        },
    )
    try:
        assert isinstance(_service(other), NullCaptchaVerifier)
    finally:
        other.registry["dbengine"].dispose()


# The payment API asking the (fake) siteverify


@pytest.fixture
def captcha_link(app, dbsession, firm, siteverify, monkeypatch) -> Any:
    # The app reads the address per request: point it at the fake for this test only.
    monkeypatch.setitem(app.registry.settings, "clientpay.captcha.verify_url", siteverify.url)
    settings = dbsession.get(FirmSettings, firm.id)
    settings.recaptcha_enabled = True
    settings.recaptcha_site_key = "site-key-123"
    settings.recaptcha_secret_encrypted = app.registry["clientpay.encryptor"].encrypt(SECRET)
    account = factories.MerchantAccountFactory(firm=firm)
    return new_link(dbsession, app.registry, account, 10_000)


def test_a_payment_with_the_good_response_goes_through(
    testapp, siteverify, captcha_link, client_ip
):
    _link, token = captcha_link
    body = submission(tokenize(testapp, card()), amount="100.00", recaptcha_token=GOOD_RESPONSE)
    answer = pay(testapp, token, body, status=201)
    assert answer.json["link_status"] == "paid"
    [request] = siteverify.requests
    assert request.form == {"secret": SECRET, "response": GOOD_RESPONSE, "remoteip": client_ip}


def test_a_payment_with_a_bad_response_is_refused_and_the_link_stays_payable(
    testapp, siteverify, captcha_link
):
    _link, token = captcha_link
    body = submission(tokenize(testapp, card()), amount="100.00", recaptcha_token="forged")
    answer = pay(testapp, token, body, status=422)
    assert answer.json["error"] == "captcha_failed"
    assert [error["field"] for error in answer.json["errors"]] == ["recaptcha_token"]
    assert testapp.get(f"/api/v1/pay/{token}").json["status"] == "outstanding"
    assert len(siteverify.requests) == 1


def test_a_payment_is_refused_while_siteverify_is_failing(testapp, siteverify, captcha_link):
    _link, token = captcha_link
    siteverify.mode = "error"
    body = submission(tokenize(testapp, card()), amount="100.00", recaptcha_token=GOOD_RESPONSE)
    pay(testapp, token, body, status=422)
    assert testapp.get(f"/api/v1/pay/{token}").json["status"] == "outstanding"
