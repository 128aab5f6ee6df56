"""A fake of the Stripe endpoints localstripe lacks (US bank accounts, ACH), in front of it.

One base URL serves both: a request about a ``us_bank_account`` PaymentMethod or a
PaymentIntent of ours is answered here; everything else goes through to localstripe. Built
from Stripe's public API reference (PaymentMethods, PaymentIntents, Disputes), not from its
code; it keeps only what the reference says Stripe answers, never a full account number.

What it plays of Stripe:

- ``POST /v1/payment_methods`` with ``type=us_bank_account``: what Stripe.js's
  ``createPaymentMethod({type: "us_bank_account", ...})`` sends: ``us_bank_account[routing_number]``
  (nine digits, the ABA checksum), ``us_bank_account[account_number]``,
  ``us_bank_account[account_holder_type]`` (individual or company) and
  ``us_bank_account[account_type]`` (checking or savings), and ``billing_details[name]``, which
  Stripe requires for bank debits. A publishable key (``key`` in the body, as Stripe.js sends
  it, or the Authorization header) is enough to create one; everything else wants a secret key.
- PaymentIntents for such a PaymentMethod: create, retrieve, confirm, cancel, list (merged
  with localstripe's). Confirming wants ``mandate_data`` (customer acceptance online, with
  the payer's IP address and user agent) as Stripe does for ACH, and leaves the intent
  ``processing``: a bank debit takes days (or, with ``verify_with_microdeposits`` set,
  ``requires_action``: Stripe first verifies an account typed in by hand with micro-deposits,
  next_action ``verify_with_microdeposits`` carrying the hosted verification page's URL, the
  deposits' arrival date and their type, ``amounts`` or ``descriptor_code``).
- ``POST /v1/payment_intents/{id}/verify_microdeposits``: what the payer does on that page.
  Stripe's test values verify (amounts 32 and 45, or descriptor code SM11AA) and the intent
  goes on to ``processing``; others are refused (amounts or code mismatch) and the third
  refusal fails the intent (``requires_payment_method``, attempts exceeded).
  ``expire_verifications()`` is the 10 days passing unverified: Stripe cancels the intent.
  ``clear()`` (or ``POST /_fake/ach/clear``) is the
  days passing: each processing intent succeeds, or fails with the ACH return its test
  account number stands for (Stripe's published test numbers, below), and the events Stripe
  would send are answered, for the test to deliver.
- ``Idempotency-Key`` on its own POSTs, which Stripe honours (and localstripe does not):
  the same key answers the first answer.
- ``dispute(intent_id)``: the payer's bank disputes a succeeded debit; the
  ``charge.dispute.created`` event is answered.

And one thing for cards, which localstripe refuses: confirming a PaymentIntent with
``use_stripe_sdk`` (which asks Stripe for a card's 3-D Secure check in Stripe.js's frame, next
action ``use_stripe_sdk``). It is passed on to localstripe without it: localstripe's next
action for its 3-D Secure test cards is that one anyway.
"""

from __future__ import annotations

import json
import re
import secrets
import threading
import time
from collections.abc import Iterable
from dataclasses import replace
from typing import Any
from urllib.parse import parse_qsl, urlencode

import requests

from tests.fakes.httpserver import Drop, FakeHTTPServer, FakeRequest, FakeResponse
from tests.fakes.stripe_cut import forward

TEST_ROUTING_NUMBER = "110000000"
# Stripe's test bank accounts (at the test routing number) and the ACH return each ends in.
ACH_RETURNS = {
    "000111111116": "no_account",
    "000111111113": "account_closed",
    "000222222227": "insufficient_funds",
    "000333333335": "debit_not_authorized",
    "000444444440": "invalid_currency",
}
ACH_RETURN_MESSAGES = {
    "no_account": "The bank account could not be located.",
    "account_closed": "The bank account has been closed.",
    "insufficient_funds": "The bank account has insufficient funds.",
    "debit_not_authorized": "The customer has notified their bank that this payment was "
    "unauthorized.",
    "invalid_currency": "The bank account does not support the currency.",
}
HOLDER_TYPES = ("individual", "company")
ACCOUNT_TYPES = ("checking", "savings")
PAYMENT_METHOD_PATH = re.compile(r"^/v1/payment_methods/(?P<id>[^/]+)$")
MANDATE_PATH = re.compile(r"^/v1/mandates/(?P<id>[^/]+)$")
INTENT_PATH = re.compile(
    r"^/v1/payment_intents/(?P<id>[^/]+)(?P<action>/confirm|/cancel|/verify_microdeposits)?$"
)
# Stripe's test values for verifying with micro-deposits: these verify, any other is refused.
MICRODEPOSIT_AMOUNTS = ["32", "45"]
MICRODEPOSIT_DESCRIPTOR_CODE = "SM11AA"
MICRODEPOSIT_ATTEMPTS = 3


class StripeError(Exception):
    """An answer in Stripe's error shape."""

    def __init__(
        self, status: int, message: str, param: str | None = None, code: str | None = None
    ):
        super().__init__(message)
        self.status, self.message, self.param, self.code = status, message, param, code

    def response(self) -> FakeResponse:
        error: dict[str, Any] = {"type": "invalid_request_error", "message": self.message}
        if self.param:
            error["param"] = self.param
        if self.code:
            error["code"] = self.code
        return FakeResponse.json(self.status, {"error": error})


def nested_form(pairs: Iterable[tuple[str, str]]) -> dict[str, Any]:
    """Stripe's form encoding (``a[b][0]=x``) as nested dicts; lists stay dicts by index."""
    tree: dict[str, Any] = {}
    for key, value in pairs:
        head, _, rest = key.partition("[")
        names = [head] + ([part.rstrip("]") for part in rest.split("[")] if rest else [])
        node = tree
        for name in names[:-1]:
            node = node.setdefault(name, {})
        node[names[-1]] = value
    return tree


def as_list(value: Any) -> list[str]:
    """A form list (``x[0]=a&x[1]=b``, read as ``{"0": "a", "1": "b"}``) in order."""
    if isinstance(value, dict):
        return [value[index] for index in sorted(value, key=int)]
    return [value] if isinstance(value, str) else []


def routing_number_valid(number: str) -> bool:
    if len(number) != 9 or not number.isdigit():
        return False
    return sum(int(d) * w for d, w in zip(number, (3, 7, 1) * 3, strict=True)) % 10 == 0


def new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(12)}"


class AchStripe(FakeHTTPServer):
    name = "stripe-ach"

    def __init__(self, upstream: str):
        super().__init__()
        self.upstream = upstream
        self._lock = threading.Lock()
        self.payment_methods: dict[str, dict[str, Any]] = {}
        # What became of each account number: kept apart from the PaymentMethod (which,
        # like Stripe's, shows only the last four).
        self._returns: dict[str, str | None] = {}
        self.intents: dict[str, dict[str, Any]] = {}
        self.mandates: dict[str, dict[str, Any]] = {}
        self._answers: dict[tuple[str, str], FakeResponse] = {}
        # Stripe verifies a bank account typed in by hand before debiting it (micro-deposits)
        # unless it came through instant verification; True plays that.
        self.verify_with_microdeposits = False
        # What the payer receives to verify with: "amounts" (two deposits) or
        # "descriptor_code" (one, with a code in its description).
        self.microdeposit_type = "amounts"
        self._verify_attempts: dict[str, int] = {}
        # Card PaymentIntents confirmed with use_stripe_sdk (3-D Secure in Stripe.js's frame).
        self.confirmed_with_stripe_sdk: list[str] = []

    # --- routing ------------------------------------------------------------------------

    def handle(self, request: FakeRequest) -> FakeResponse | Drop:
        if request.path == "/_config/data" and request.method == "DELETE":
            self.forget()
        elif request.path == "/_fake/ach/clear" and request.method == "POST":
            return FakeResponse.json(200, {"events": self.clear()})
        pairs = parse_qsl(request.body.decode("utf-8"), keep_blank_values=True)
        form = nested_form(pairs)
        if not self._ours(request, form):
            return forward(self._without_use_stripe_sdk(request, pairs), self.upstream)
        try:
            return self._answer_once(request, form)
        except StripeError as error:
            return error.response()

    def _without_use_stripe_sdk(
        self, request: FakeRequest, pairs: list[tuple[str, str]]
    ) -> FakeRequest:
        """A card's confirmation as localstripe takes it (see the module's docstring); the
        PaymentIntent's id kept in ``confirmed_with_stripe_sdk``."""
        found = INTENT_PATH.match(request.path)
        if found is None or found["action"] != "/confirm" or request.method != "POST":
            return request
        if ("use_stripe_sdk", "true") not in pairs:
            return request
        with self._lock:
            self.confirmed_with_stripe_sdk.append(found["id"])
        kept = urlencode([(name, value) for name, value in pairs if name != "use_stripe_sdk"])
        return replace(request, body=kept.encode("utf-8"))

    def _ours(self, request: FakeRequest, form: dict[str, Any]) -> bool:
        path = request.path
        if path == "/v1/payment_methods" and request.method == "POST":
            return form.get("type") == "us_bank_account"
        if path == "/v1/payment_intents" and request.method == "POST":
            return "us_bank_account" in as_list(form.get("payment_method_types")) or (
                form.get("payment_method") in self.payment_methods
            )
        if path == "/v1/payment_intents" and request.method == "GET":
            return True  # merged with localstripe's
        found = PAYMENT_METHOD_PATH.match(path)
        if found:
            return found["id"] in self.payment_methods
        found = MANDATE_PATH.match(path)
        if found:
            return True  # localstripe has none
        found = INTENT_PATH.match(path)
        return bool(found and found["id"] in self.intents)

    def _answer_once(self, request: FakeRequest, form: dict[str, Any]) -> FakeResponse:
        key = self._key(request, form)
        idempotency_key = request.headers.get("Idempotency-Key")
        if request.method != "POST" or not idempotency_key:
            return self._route(request, form, key)
        with self._lock:
            earlier = self._answers.get((key, idempotency_key))
        if earlier is not None:
            return earlier
        try:
            answer = self._route(request, form, key)
        except StripeError as error:
            answer = error.response()
        if answer.status < 500:
            with self._lock:
                answer = self._answers.setdefault((key, idempotency_key), answer)
        return answer

    def _route(self, request: FakeRequest, form: dict[str, Any], key: str) -> FakeResponse:
        if request.path == "/v1/payment_methods":
            return FakeResponse.json(200, self.create_payment_method(form))
        self._require_secret(key)
        if request.path == "/v1/payment_intents":
            if request.method == "GET":
                return FakeResponse.json(200, self.list_intents(request))
            return FakeResponse.json(200, self.create_intent(form))
        found = PAYMENT_METHOD_PATH.match(request.path)
        if found:
            return FakeResponse.json(200, self.payment_methods[found["id"]])
        found = MANDATE_PATH.match(request.path)
        if found:
            return FakeResponse.json(200, self.mandate(found["id"]))
        found = INTENT_PATH.match(request.path)
        assert found is not None  # _ours let only these through
        actions = {
            "/confirm": self.confirm_intent,
            "/cancel": self.cancel_intent,
            "/verify_microdeposits": self.verify_microdeposits,
        }
        action = found["action"]
        if action and request.method == "POST":
            return FakeResponse.json(200, actions[action](found["id"], form))
        return FakeResponse.json(200, self.intents[found["id"]])

    @staticmethod
    def _key(request: FakeRequest, form: dict[str, Any]) -> str:
        key = request.bearer or str(form.get("key") or "")
        if not key.startswith(("sk_test_", "pk_test_", "rk_test_")):
            raise StripeError(401, "Invalid API Key provided.")
        return key

    @staticmethod
    def _require_secret(key: str) -> None:
        if key.startswith("pk_"):
            raise StripeError(
                401,
                "This API call cannot be made with a publishable API key.",
                code="secret_key_required",
            )

    # --- PaymentMethods -----------------------------------------------------------------

    def create_payment_method(self, form: dict[str, Any]) -> dict[str, Any]:
        bank = form.get("us_bank_account")
        if not isinstance(bank, dict):
            raise StripeError(400, "Missing required param: us_bank_account.", "us_bank_account")
        if "financial_connections_account" in bank:
            raise StripeError(
                400,
                "This fake takes account and routing numbers, not Financial Connections.",
                "us_bank_account[financial_connections_account]",
            )
        routing = str(bank.get("routing_number") or "")
        account = str(bank.get("account_number") or "")
        if not routing_number_valid(routing):
            raise StripeError(
                400, "Routing number must have 9 digits.", "us_bank_account[routing_number]"
            )
        if not account.isdigit() or not 4 <= len(account) <= 17:
            raise StripeError(400, "Invalid account number.", "us_bank_account[account_number]")
        holder = bank.get("account_holder_type", "individual")
        kind = bank.get("account_type", "checking")
        if holder not in HOLDER_TYPES:
            raise StripeError(
                400, "Invalid account_holder_type.", "us_bank_account[account_holder_type]"
            )
        if kind not in ACCOUNT_TYPES:
            raise StripeError(400, "Invalid account_type.", "us_bank_account[account_type]")
        billing = (
            form.get("billing_details") if isinstance(form.get("billing_details"), dict) else {}
        )
        if not billing.get("name"):
            raise StripeError(
                400,
                "Missing required param: billing_details[name].",
                "billing_details[name]",
                "parameter_missing",
            )
        method = {
            "id": new_id("pm"),
            "object": "payment_method",
            "type": "us_bank_account",
            "created": int(time.time()),
            "livemode": False,
            "customer": None,
            "metadata": {},
            "billing_details": {
                "name": billing.get("name"),
                "email": billing.get("email"),
                "phone": billing.get("phone"),
                "address": None,
            },
            "us_bank_account": {
                "account_holder_type": holder,
                "account_type": kind,
                "bank_name": "STRIPE TEST BANK",
                "financial_connections_account": None,
                "fingerprint": secrets.token_hex(8),
                "last4": account[-4:],
                "networks": {"preferred": "ach", "supported": ["ach"]},
                "routing_number": routing,
                "status_details": {},
            },
        }
        with self._lock:
            self.payment_methods[method["id"]] = method
            self._returns[method["id"]] = (
                ACH_RETURNS.get(account) if routing == TEST_ROUTING_NUMBER else None
            )
        return method

    # --- PaymentIntents -----------------------------------------------------------------

    def create_intent(self, form: dict[str, Any]) -> dict[str, Any]:
        amount = str(form.get("amount") or "")
        if not amount.isdigit() or int(amount) < 50:
            raise StripeError(
                400, "Amount must be at least $0.50 usd.", "amount", "amount_too_small"
            )
        currency = str(form.get("currency") or "").lower()
        types = as_list(form.get("payment_method_types")) or ["us_bank_account"]
        if currency != "usd":
            raise StripeError(
                400,
                "The currency provided is invalid. us_bank_account supports usd only.",
                "currency",
            )
        method_id = form.get("payment_method")
        if method_id is not None and method_id not in self.payment_methods:
            raise StripeError(
                400, f"No such PaymentMethod: '{method_id}'", "payment_method", "resource_missing"
            )
        intent = {
            "id": new_id("pi"),
            "object": "payment_intent",
            "amount": int(amount),
            "amount_received": 0,
            "currency": currency,
            "created": int(time.time()),
            "livemode": False,
            "status": "requires_confirmation" if method_id else "requires_payment_method",
            "payment_method": method_id,
            "payment_method_types": types,
            "metadata": form.get("metadata") if isinstance(form.get("metadata"), dict) else {},
            "last_payment_error": None,
            "latest_charge": None,
            "mandate": None,
            "next_action": None,
            "cancellation_reason": None,
            "canceled_at": None,
            "client_secret": None,
            "description": form.get("description"),
        }
        intent["client_secret"] = f"{intent['id']}_secret_{secrets.token_hex(8)}"
        with self._lock:
            self.intents[intent["id"]] = intent
        if form.get("confirm") == "true":
            return self.confirm_intent(intent["id"], form)
        return intent

    def confirm_intent(self, intent_id: str, form: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            intent = self.intents[intent_id]
            if form.get("payment_method"):
                if form["payment_method"] not in self.payment_methods:
                    raise StripeError(
                        400, "No such PaymentMethod.", "payment_method", "resource_missing"
                    )
                intent["payment_method"] = form["payment_method"]
            if intent["status"] not in ("requires_confirmation", "requires_payment_method"):
                raise StripeError(
                    400,
                    f"This PaymentIntent's status is {intent['status']}; it cannot be confirmed.",
                    code="payment_intent_unexpected_state",
                )
            if not intent["payment_method"]:
                raise StripeError(400, "A payment method is required.", "payment_method")
            acceptance = _online_acceptance(form.get("mandate_data"))
            mandate = {
                "id": new_id("mandate"),
                "object": "mandate",
                "customer_acceptance": {
                    "type": "online",
                    "accepted_at": int(time.time()),
                    "online": acceptance,
                },
                "livemode": False,
                "payment_method": intent["payment_method"],
                "payment_method_details": {"type": "us_bank_account", "us_bank_account": {}},
                "status": "active",
                "type": "single_use",
            }
            self.mandates[mandate["id"]] = mandate
            if self.verify_with_microdeposits:
                intent.update(status="requires_action", mandate=mandate["id"])
                intent["next_action"] = {
                    "type": "verify_with_microdeposits",
                    "verify_with_microdeposits": {
                        "arrival_date": int(time.time()) + 2 * 86_400,
                        "microdeposit_type": self.microdeposit_type,
                        "hosted_verification_url": (
                            "https://payments.stripe.com/microdeposit/pacs_test_"
                            + secrets.token_hex(12)
                        ),
                    },
                }
                return dict(intent)
            intent.update(
                status="processing",
                mandate=mandate["id"],
                latest_charge=new_id("py"),
                last_payment_error=None,
            )
            return dict(intent)

    def verify_microdeposits(self, intent_id: str, form: dict[str, Any]) -> dict[str, Any]:
        """The payer confirms the micro-deposits on Stripe's page: right, the debit goes on
        (processing); wrong, refused, and the last try allowed fails the intent."""
        with self._lock:
            intent = self.intents[intent_id]
            action = intent.get("next_action") or {}
            if intent["status"] != "requires_action" or action.get("type") != (
                "verify_with_microdeposits"
            ):
                raise StripeError(
                    400,
                    "This PaymentIntent is not awaiting verification with microdeposits.",
                    code="payment_intent_unexpected_state",
                )
            kind = action["verify_with_microdeposits"]["microdeposit_type"]
            if kind == "amounts":
                right = as_list(form.get("amounts")) == MICRODEPOSIT_AMOUNTS
                mismatch = "payment_method_microdeposit_verification_amounts_mismatch"
            else:
                right = form.get("descriptor_code") == MICRODEPOSIT_DESCRIPTOR_CODE
                mismatch = "payment_method_microdeposit_verification_descriptor_code_mismatch"
            if right:
                intent.update(status="processing", next_action=None, latest_charge=new_id("py"))
                return dict(intent)
            tries = self._verify_attempts.get(intent_id, 0) + 1
            self._verify_attempts[intent_id] = tries
            if tries < MICRODEPOSIT_ATTEMPTS:
                raise StripeError(400, "The microdeposits do not match.", code=mismatch)
            intent.update(
                status="requires_payment_method",
                next_action=None,
                last_payment_error={
                    "type": "invalid_request_error",
                    "code": "payment_method_microdeposit_verification_attempts_exceeded",
                    "message": "You have exceeded the number of allowed verification attempts.",
                },
            )
            return dict(intent)

    def expire_verifications(self) -> list[dict[str, Any]]:
        """Ten days pass: Stripe cancels every intent still awaiting the payer's verification
        of the account; the payment_intent.canceled events it would send."""
        events = []
        with self._lock:
            for intent in self.intents.values():
                if intent["status"] != "requires_action":
                    continue
                intent.update(status="canceled", next_action=None, canceled_at=int(time.time()))
                events.append(_event("payment_intent.canceled", intent))
        return events

    def mandate(self, mandate_id: str) -> dict[str, Any]:
        with self._lock:
            found = self.mandates.get(mandate_id)
        if found is None:
            raise StripeError(
                404, f"No such mandate: '{mandate_id}'", "mandate", "resource_missing"
            )
        return found

    def cancel_intent(self, intent_id: str, form: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            intent = self.intents[intent_id]
            if intent["status"] in ("processing", "succeeded", "canceled"):
                raise StripeError(
                    400,
                    f"This PaymentIntent's status is {intent['status']}; it cannot be canceled.",
                    code="payment_intent_unexpected_state",
                )
            intent.update(
                status="canceled",
                canceled_at=int(time.time()),
                cancellation_reason=form.get("cancellation_reason"),
            )
            return dict(intent)

    def list_intents(self, request: FakeRequest) -> dict[str, Any]:
        theirs = forward(request, self.upstream)
        listed = json.loads(theirs.body) if theirs.status == 200 else {"data": []}
        with self._lock:
            ours = sorted(self.intents.values(), key=lambda i: i["created"], reverse=True)
        listed["data"] = ours + listed.get("data", [])
        listed.update(object="list", url="/v1/payment_intents", has_more=False)
        return listed

    # --- the bank's side ----------------------------------------------------------------

    def clear(self) -> list[dict[str, Any]]:
        """The ACH debits clear or are returned: every processing intent succeeds, or fails
        with its test account's return. The events Stripe would send, in order."""
        events = []
        with self._lock:
            for intent in self.intents.values():
                if intent["status"] != "processing":
                    continue
                failure = self._returns.get(intent["payment_method"])
                if failure is None:
                    intent.update(status="succeeded", amount_received=intent["amount"])
                    events.append(_event("payment_intent.succeeded", intent))
                    continue
                intent.update(
                    status="requires_payment_method",
                    last_payment_error={
                        "type": "invalid_request_error",
                        "code": failure,
                        "message": ACH_RETURN_MESSAGES[failure],
                        "payment_method": self.payment_methods[intent["payment_method"]],
                    },
                )
                events.append(_event("payment_intent.payment_failed", intent))
        return events

    def dispute(
        self, intent_id: str, reason: str = "general", secret_key: str = "sk_test_fake"
    ) -> dict[str, Any]:
        """The payer's bank disputes a succeeded payment (a bank debit of ours, or a card
        payment at localstripe, which has no disputes): the charge.dispute.created event."""
        with self._lock:
            intent = self.intents.get(intent_id)
        if intent is None:
            intent = self._upstream_intent(intent_id, secret_key)
        if intent["status"] != "succeeded":
            raise ValueError(f"{intent_id} is {intent['status']}: nothing to dispute")
        dispute = {
            "id": new_id("du"),
            "object": "dispute",
            "amount": intent["amount"],
            "currency": intent["currency"],
            "charge": intent.get("latest_charge") or _first_charge(intent),
            "payment_intent": intent_id,
            "reason": reason,
            "status": "needs_response",
            "created": int(time.time()),
            "livemode": False,
            "metadata": {},
        }
        return _event("charge.dispute.created", dispute)

    def _upstream_intent(self, intent_id: str, secret_key: str) -> dict[str, Any]:
        answer = requests.get(
            f"{self.upstream}/v1/payment_intents/{intent_id}", auth=(secret_key, ""), timeout=10
        )
        answer.raise_for_status()
        found: dict[str, Any] = answer.json()
        return found

    def forget(self) -> None:
        with self._lock:
            self.payment_methods.clear()
            self._returns.clear()
            self.intents.clear()
            self.mandates.clear()
            self._answers.clear()
            self._verify_attempts.clear()
            self.confirmed_with_stripe_sdk.clear()


def _online_acceptance(mandate_data: Any) -> dict[str, str]:
    """ACH debits need the payer's authorization: Stripe wants, on confirmation, that it
    was accepted online, from which IP address and user agent."""
    param = "mandate_data[customer_acceptance]"
    acceptance = mandate_data.get("customer_acceptance") if isinstance(mandate_data, dict) else None
    if not isinstance(acceptance, dict):
        raise StripeError(
            400,
            "A mandate is required to confirm a us_bank_account PaymentIntent: "
            "pass mandate_data[customer_acceptance].",
            param,
            "parameter_missing",
        )
    online = acceptance.get("online")
    if acceptance.get("type") != "online" or not isinstance(online, dict):
        raise StripeError(400, "customer_acceptance[type] must be online here.", param)
    for name in ("ip_address", "user_agent"):
        if not online.get(name):
            raise StripeError(
                400,
                f"Missing required param: {param}[online][{name}].",
                f"{param}[online][{name}]",
                "parameter_missing",
            )
    return {"ip_address": online["ip_address"], "user_agent": online["user_agent"]}


def _first_charge(intent: dict[str, Any]) -> str | None:
    # localstripe answers the PaymentIntent's charges as an older API version did.
    charges = (intent.get("charges") or {}).get("data") or []
    return charges[0]["id"] if charges else None


def _event(event_type: str, obj: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": new_id("evt"),
        "object": "event",
        "type": event_type,
        "created": int(time.time()),
        "livemode": False,
        "api_version": None,
        "data": {"object": json.loads(json.dumps(obj))},
    }
