"""reCAPTCHA: asking Google's siteverify whether a payer's response token is genuine."""

from __future__ import annotations

import logging
from typing import Any

import requests
from zope.interface import implementer

from clientpay_connect.pay.interfaces import ICaptchaVerifier

log = logging.getLogger(__name__)


@implementer(ICaptchaVerifier)
class GoogleCaptchaVerifier:
    """POSTs to ``clientpay.captcha.verify_url`` (Google's siteverify, or anything speaking it).

    Every failure to get a clear "yes" (timeout, refused connection, HTTP error, a body that is
    not the JSON we expect) is a "no": a payment page that lets bots through whenever Google
    is slow would make the check pointless.
    """

    def __init__(self, verify_url: str, timeout: float):
        self.verify_url = verify_url
        self.timeout = timeout

    @classmethod
    def create_service(cls, context: Any, request: Any) -> GoogleCaptchaVerifier:
        settings = request.registry.settings
        return cls(
            verify_url=settings["clientpay.captcha.verify_url"],
            timeout=float(settings["clientpay.http_timeout"]),
        )

    def verify(self, secret: str, response_token: str, remote_ip: str | None) -> bool:
        if not secret or not response_token:
            return False
        data = {"secret": secret, "response": response_token}
        if remote_ip:
            data["remoteip"] = remote_ip
        try:
            # A fresh connection each time (requests.post closes it): a payer's check is rare
            # enough that a pool would only hold sockets open between payments.
            answer = requests.post(self.verify_url, data=data, timeout=self.timeout)
        except requests.RequestException as exc:
            log.warning("reCAPTCHA siteverify unreachable: %s", exc.__class__.__name__)
            return False
        if answer.status_code != 200:
            log.warning("reCAPTCHA siteverify answered HTTP %s", answer.status_code)
            return False
        try:
            body = answer.json()
        except ValueError:
            log.warning("reCAPTCHA siteverify answered something that is not JSON")
            return False
        if not isinstance(body, dict):
            return False
        if body.get("success") is not True:
            log.info("reCAPTCHA rejected a response: %s", body.get("error-codes", []))
            return False
        return True


@implementer(ICaptchaVerifier)
class NullCaptchaVerifier:
    """Accepts every response: for offline demos, and for hosts that screen bots upstream.

    Chosen only by setting ``clientpay.captcha.verifier`` to this class; a firm's reCAPTCHA
    switch then shows the widget but nothing checks it.
    """

    @classmethod
    def create_service(cls, context: Any, request: Any) -> NullCaptchaVerifier:
        return cls()

    def verify(self, secret: str, response_token: str, remote_ip: str | None) -> bool:
        return True
