"""Stripe for the browser tests: localstripe's stand-in Stripe.js, completed, in front of
localstripe, for both the payer's browser and our server.

localstripe serves a stand-in Stripe.js (its card "Element" is a few plain inputs), but its
``createPaymentMethod`` does nothing, its API refuses a publishable key when a PaymentMethod
is made, and it charges every card but 4000 0000 0000 0341. Stripe does all three
otherwise; this fake does them as Stripe documents them:

- ``GET /js.stripe.com/v3/``: localstripe's script as localstripe serves it, followed by a
  ``createPaymentMethod`` that posts the card (from the stand-in's Element, its number's
  spaces left out) or the bank account to ``/v1/payment_methods`` with the publishable key
  as ``key``, as Stripe.js does; and a ``handleNextAction`` that shows a card's 3-D Secure
  check with the stand-in's own (its confirmCardPayment: a modal with a button to pass it
  and one to fail it).
- ``POST /v1/payment_methods`` with ``key=pk_…``: made at localstripe (with a secret key: it
  keeps one store for all keys), and the card's number remembered by the PaymentMethod's id.
- ``POST /v1/payment_intents/{id}/confirm`` of a PaymentIntent paid with one of Stripe's
  test cards that decline when charged: answered as Stripe does (402, a card_error with the
  decline code), and the PaymentIntent cancelled at localstripe, so it can never charge.
- anything else: passed on to localstripe as it is.

The stand-in's script finds its API at the address it was loaded from, so the page's Content-
Security-Policy names this fake's origin for script, frame and API alike.
"""

from __future__ import annotations

import threading
from urllib.parse import parse_qsl, urlencode

import requests

from tests.fakes.httpserver import FakeHTTPServer, FakeRequest, FakeResponse
from tests.fakes.stripe_cut import SKIPPED_HEADERS, forward

# Stripe's published test cards that are refused when charged, with the decline Stripe gives.
DECLINED_WHEN_CHARGED = {
    "4000000000000002": ("card_declined", "generic_decline"),
    "4000000000009995": ("card_declined", "insufficient_funds"),
    "4000000000000069": ("expired_card", "expired_card"),
    "4000000000000127": ("incorrect_cvc", "incorrect_cvc"),
    "4000000000000119": ("processing_error", "processing_error"),
}
CONFIRM_PREFIX = "/v1/payment_intents/"
# What Stripe's API sends to every page: the page's fetch reads no answer without it
# (localstripe sends it only when the request names its origin, which ours do not).
CORS = {"Access-Control-Allow-Origin": "*"}

# What Stripe.js's createPaymentMethod does, in short (docs.stripe.com/js/payment_methods/
# create_payment_method): the stand-in's card Element keeps what was typed in ``value``.
CREATE_PAYMENT_METHOD = r"""
;(function () {
  "use strict";
  var base = LOCALSTRIPE_BASE_API;
  var standIn = window.Stripe;

  function fields(prefix, values, pairs) {
    Object.keys(values || {}).forEach(function (name) {
      pairs.push([prefix + "[" + name + "]", values[name]]);
    });
  }

  function incomplete() {
    return Promise.resolve({
      error: {
        type: "validation_error",
        code: "incomplete_number",
        message: "Your card number is incomplete.",
      },
    });
  }

  window.Stripe = function (key) {
    var stripe = standIn(key);
    stripe.createPaymentMethod = function (params) {
      var pairs = [["type", params.type], ["key", key]];
      if (params.type === "card") {
        var typed = params.card && params.card.value;
        if (!typed || !typed.card.number) {
          return incomplete();
        }
        // Stripe's field takes the number as a payer types it, grouped by spaces, and sends
        // its digits only (localstripe refuses anything but 16 digits).
        var card = Object.assign({}, typed.card, { number: typed.card.number.replace(/\s+/g, "") });
        fields("card", card, pairs);
      } else {
        fields(params.type, params[params.type], pairs);
      }
      fields("billing_details", params.billing_details, pairs);
      var body = pairs
        .map(function (pair) {
          return encodeURIComponent(pair[0]) + "=" + encodeURIComponent(pair[1]);
        })
        .join("&");
      return fetch(base + "/v1/payment_methods", {
        method: "POST",
        headers: { "Content-Type": "application/x-www-form-urlencoded" },
        body: body,
      }).then(function (response) {
        return response.json().then(function (json) {
          if (response.ok && !json.error) {
            return { paymentMethod: json };
          }
          return { error: json.error || { type: "api_error", message: "Stripe failed." } };
        });
      });
    };
    // What Stripe.js's handleNextAction does for a card's 3-D Secure (docs.stripe.com/js/
    // payment_intents/handle_next_action): the bank's check in a frame over the page, then
    // the PaymentIntent as it stands. The stand-in's confirmCardPayment does the same with
    // buttons to pass or fail the check (localstripe's /_authenticate).
    stripe.handleNextAction = function (options) {
      return stripe.confirmCardPayment(options.clientSecret);
    };
    return stripe;
  };
})();
"""


class StripeJsStandIn(FakeHTTPServer):
    name = "stripe-js-stand-in"

    def __init__(self, localstripe_url: str, secret_key: str):
        super().__init__()
        self.upstream = localstripe_url
        self.secret_key = secret_key
        self._lock = threading.Lock()
        # The card number of each PaymentMethod made here (a fake Stripe knows them).
        self.card_numbers: dict[str, str] = {}
        self.declined: list[str] = []

    def handle(self, request: FakeRequest) -> FakeResponse:
        if request.method == "GET" and request.path == "/js.stripe.com/v3/":
            return self._script()
        if request.method == "POST" and request.path == "/v1/payment_methods":
            return self._payment_method(request)
        if (
            request.method == "POST"
            and request.path.startswith(CONFIRM_PREFIX)
            and request.path.endswith("/confirm")
        ):
            declined = self._declined_confirmation(request)
            if declined is not None:
                return declined
        return self._passed_on(request)

    def _script(self) -> FakeResponse:
        answer = requests.get(f"{self.upstream}/js.stripe.com/v3/", timeout=10)
        answer.raise_for_status()
        script = answer.text + CREATE_PAYMENT_METHOD
        return FakeResponse(200, script.encode(), {"Content-Type": "application/javascript"})

    def _payment_method(self, request: FakeRequest) -> FakeResponse:
        pairs = parse_qsl(request.body.decode(), keep_blank_values=True)
        keys = [value for name, value in pairs if name == "key"]
        if not keys or not keys[0].startswith("pk_"):
            return self._passed_on(request)
        made = requests.post(
            f"{self.upstream}/v1/payment_methods",
            data=urlencode([(name, value) for name, value in pairs if name != "key"]),
            headers={
                "Authorization": f"Bearer {self.secret_key}",
                "Content-Type": "application/x-www-form-urlencoded",
            },
            timeout=10,
        )
        number = dict(pairs).get("card[number]", "")
        if made.ok and number:
            with self._lock:
                self.card_numbers[made.json()["id"]] = number
        kept = {k: v for k, v in made.headers.items() if k.lower() not in SKIPPED_HEADERS}
        return FakeResponse(made.status_code, made.content, {**kept, **CORS})

    def _declined_confirmation(self, request: FakeRequest) -> FakeResponse | None:
        intent_id = request.path[len(CONFIRM_PREFIX) : -len("/confirm")]
        auth = {"Authorization": request.headers.get("Authorization", "")}
        intent = requests.get(
            f"{self.upstream}/v1/payment_intents/{intent_id}", headers=auth, timeout=10
        ).json()
        with self._lock:
            number = self.card_numbers.get(str(intent.get("payment_method")), "")
        if number not in DECLINED_WHEN_CHARGED:
            return None
        code, decline_code = DECLINED_WHEN_CHARGED[number]
        requests.post(
            f"{self.upstream}/v1/payment_intents/{intent_id}/cancel", headers=auth, timeout=10
        ).raise_for_status()
        with self._lock:
            self.declined.append(intent_id)
        return FakeResponse.json(
            402,
            {
                "error": {
                    "type": "card_error",
                    "code": code,
                    "decline_code": decline_code,
                    "message": "Your card was declined.",
                    "payment_intent": intent,
                }
            },
        )

    def _passed_on(self, request: FakeRequest) -> FakeResponse:
        answer = forward(request, self.upstream)
        return FakeResponse(answer.status, answer.body, {**answer.headers, **CORS})
