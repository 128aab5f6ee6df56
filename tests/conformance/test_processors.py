"""Every IPaymentProcessor charges by the same rules: once per idempotency key, a token once,
declines named in the API's codes (and the same when asked again), nothing taken for a
method the account does not accept, and an unknown outcome left to ``lookup``.

A ``Till`` is one processor and how a test gets it tokens, as the payer's browser would from
its hosted fields. Stripe's till gets PaymentMethods from localstripe (a fake Stripe API on
loopback, behind our fake of its bank-debit endpoints) and charges into a merchant account
with its test keys. A bank debit may be accepted before it settles (Stripe's clears days
later): ``clear_bank_debits`` lets those days pass, and ``lookup`` then tells. What a till's
test server cannot play, it says, and those tests run only on the tills that can (a test
keeps the lists below true to the tills): an outage (``outages``), bank accounts
(``echeck``), refusing a reused PaymentMethod (``single_use_tokens``: real Stripe
refuses one used without a customer, localstripe does not); and it lists the test cards its
server declines when charged (``declines``).
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator
from typing import Any, Protocol

import pytest
from pyramid.router import Router
from zope.interface.verify import verifyObject

from clientpay_connect.pay.interfaces import IPaymentProcessor
from clientpay_connect.pay.processor import (
    ChargeResult,
    Declined,
    OnlineAcceptance,
    ProcessorAccount,
    ProcessorUnavailable,
    read_details,
)
from tests.support import databases, payments
from tests.support.localstripe import TEST_PUBLISHABLE_KEY, TEST_SECRET_KEY, LocalStripe
from tests.support.payments import BOTH_METHODS, SUCCEEDS

DECLINES = {number: code for number, code in payments.CARD_OUTCOMES.items() if code != "succeeded"}


class Till(Protocol):
    processor: Any
    # The merchant account charged, as the processor is given it (its keys).
    account: ProcessorAccount | None
    # Whether the till can make a charge's answer get lost, or the processor unreachable.
    outages: bool
    echeck: bool
    single_use_tokens: bool
    # Test card numbers its server declines when charged, with the code expected.
    declines: dict[str, str]

    def card(self, number: str) -> str:
        """A token for the test card ``number`` (Stripe's published numbers)."""

    def bank_account(self, account: str) -> str:
        """A token for a checking account at the test routing number."""

    def clear_bank_debits(self) -> None:
        """Let the days pass in which bank debits clear or are returned."""


class SandboxTill:
    account = None
    outages = True
    echeck = True
    single_use_tokens = True
    declines = DECLINES

    def __init__(self, app: Router):
        self.processor = app.registry["clientpay.processor"]

    def card(self, number: str) -> str:
        return self._token(payments.card(number))

    def bank_account(self, account: str) -> str:
        return self._token(payments.bank_account(account))

    def clear_bank_debits(self) -> None:
        """The sandbox settles a bank debit when it takes it."""

    def _token(self, details: dict[str, Any]) -> str:
        return str(self.processor.tokenize(read_details(details, dt.date.today())))


class StripeTill:
    outages = False
    echeck = True
    single_use_tokens = False
    # localstripe declines only this one when charged (Stripe's "charge fails" card).
    declines = {"4000000000000341": "card_declined"}

    def __init__(self, app: Router, localstripe: LocalStripe):
        self.processor = app.registry["clientpay.processor"]
        self.localstripe = localstripe
        self.account = ProcessorAccount(1, TEST_SECRET_KEY, TEST_PUBLISHABLE_KEY)

    def card(self, number: str) -> str:
        return self.localstripe.payment_method(number)

    def bank_account(self, account: str) -> str:
        return self.localstripe.bank_account_method(account)

    def clear_bank_debits(self) -> None:
        self.localstripe.clear_bank_debits()


TILLS = ["sandbox", "stripe"]
# The tills whose test servers can play each of these.
ECHECK_TILLS = ["sandbox", "stripe"]
OUTAGE_TILLS = ["sandbox"]
SINGLE_USE_TILLS = ["sandbox"]


@pytest.fixture(params=TILLS)
def till(request: pytest.FixtureRequest) -> Iterator[Till]:
    if request.param == "sandbox":
        # The sandbox keeps its ledger through the app's sessions: on the test's connection.
        app = request.getfixturevalue("app")
        request.getfixturevalue("db_connection")
        yield SandboxTill(app)
        return
    # Stripe's record of its PaymentIntents too, in its own app on its own connection.
    stripe_app = request.getfixturevalue("stripe_app")
    connection = stripe_app.registry["dbengine"].connect()
    outer = connection.begin()
    try:
        with databases.sharing_connection(stripe_app, connection):
            yield StripeTill(stripe_app, request.getfixturevalue("localstripe"))
    finally:
        outer.rollback()
        connection.close()


def test_the_lists_of_what_each_till_can_play_are_true(request, till):
    name = request.node.callspec.params["till"]
    assert till.echeck == (name in ECHECK_TILLS)
    assert till.outages == (name in OUTAGE_TILLS)
    assert till.single_use_tokens == (name in SINGLE_USE_TILLS)


def new_key() -> str:
    return "key-" + uuid.uuid4().hex


def test_the_processor_provides_the_interface_and_names_itself(till):
    assert verifyObject(IPaymentProcessor, till.processor)
    assert till.processor.name


def test_a_card_charge_answers_what_was_charged_and_never_the_number(till):
    result = till.processor.charge(
        till.card(SUCCEEDS), 12_345, "USD", new_key(), BOTH_METHODS, account=till.account
    )

    assert isinstance(result, ChargeResult)
    assert (result.method, result.brand, result.last4) == ("card", "visa", "4242")
    assert (result.amount_minor, result.currency) == (12_345, "USD")
    assert result.reference
    assert SUCCEEDS not in repr(result)


# The payer's authorization of a bank debit, as our page gives it.
ACCEPTANCE = OnlineAcceptance("203.0.113.7", "Mozilla/5.0 (conformance)")


def debit_and_clear(till: Till, token: str, key: str, allowed: Any = BOTH_METHODS) -> Any:
    """Debit the bank account, let it clear, and answer what the processor says then
    (raising Declined, at once or once the bank returned it)."""
    accepted = till.processor.charge(
        token, 5_000, "USD", key, allowed, account=till.account, acceptance=ACCEPTANCE
    )
    assert (accepted.method, accepted.amount_minor) == ("echeck", 5_000)
    till.clear_bank_debits()
    settled = till.processor.lookup(key, account=till.account)
    assert settled is not None and settled.reference == accepted.reference
    return settled


@pytest.mark.parametrize("till", ECHECK_TILLS, indirect=True)
def test_an_echeck_charge_answers_its_last_four_and_settles(till):
    result = debit_and_clear(till, till.bank_account("000123456789"), new_key())
    assert (result.method, result.last4, result.amount_minor) == ("echeck", "6789", 5_000)
    assert result.settled


def test_one_idempotency_key_charges_once_and_answers_the_same(till):
    token, key = till.card(SUCCEEDS), new_key()
    first = till.processor.charge(token, 5_000, "USD", key, BOTH_METHODS, account=till.account)
    again = till.processor.charge(token, 5_000, "USD", key, BOTH_METHODS, account=till.account)
    assert again == first
    assert till.processor.lookup(key, account=till.account) == first


def test_a_key_never_used_is_looked_up_as_nothing(till):
    assert till.processor.lookup(new_key(), account=till.account) is None


@pytest.mark.parametrize("till", SINGLE_USE_TILLS, indirect=True)
def test_a_token_pays_once(till):
    token = till.card(SUCCEEDS)
    till.processor.charge(token, 5_000, "USD", new_key(), BOTH_METHODS, account=till.account)
    second_key = new_key()
    with pytest.raises(Declined) as reused:
        till.processor.charge(token, 5_000, "USD", second_key, BOTH_METHODS, account=till.account)
    assert reused.value.code == "invalid_payment_token"
    assert till.processor.lookup(second_key, account=till.account) is None


def test_a_token_nobody_issued_is_declined(till):
    with pytest.raises(Declined) as unknown:
        till.processor.charge(
            "tok_nobody_made_this", 5_000, "USD", new_key(), BOTH_METHODS, account=till.account
        )
    assert unknown.value.code == "invalid_payment_token"


def test_a_declined_card_stays_declined_with_its_code(till):
    assert till.declines
    for number, code in sorted(till.declines.items()):
        token, key = till.card(number), new_key()
        for _attempt in range(2):
            with pytest.raises(Declined) as declined:
                till.processor.charge(token, 5_000, "USD", key, BOTH_METHODS, account=till.account)
            assert declined.value.code == code
            assert declined.value.message
        with pytest.raises(Declined):
            till.processor.lookup(key, account=till.account)


@pytest.mark.parametrize("till", ECHECK_TILLS, indirect=True)
@pytest.mark.parametrize(
    ("account_number", "code"),
    [(payments.ACCOUNT_CLOSED, "account_closed"), (payments.NO_SUCH_ACCOUNT, "no_account")],
)
def test_a_bank_account_the_bank_refuses_is_declined_with_its_return(till, account_number, code):
    key = new_key()
    with pytest.raises(Declined) as returned:
        debit_and_clear(till, till.bank_account(account_number), key, ("echeck",))
    assert returned.value.code == code
    with pytest.raises(Declined):
        till.processor.lookup(key, account=till.account)


@pytest.mark.parametrize(
    ("till", "method", "allowed"),
    [(name, "card", ("echeck",)) for name in TILLS]
    + [(name, "echeck", ("card",)) for name in ECHECK_TILLS],
    indirect=["till"],
)
def test_a_method_the_account_does_not_accept_takes_nothing(till, method, allowed):
    token = till.card(SUCCEEDS) if method == "card" else till.bank_account("000123456789")
    key = new_key()
    with pytest.raises(Declined) as refused:
        till.processor.charge(token, 5_000, "USD", key, allowed, account=till.account)
    assert refused.value.code == "method_not_accepted"
    assert till.processor.lookup(key, account=till.account) is None


@pytest.mark.parametrize("till", OUTAGE_TILLS, indirect=True)
def test_a_lost_answer_is_unavailable_and_lookup_finds_the_charge(till):
    key = new_key()
    with pytest.raises(ProcessorUnavailable):
        till.processor.charge(
            till.card(payments.ANSWER_LOST), 5_000, "USD", key, BOTH_METHODS, account=till.account
        )
    found = till.processor.lookup(key, account=till.account)
    assert found is not None and found.amount_minor == 5_000


@pytest.mark.parametrize("till", OUTAGE_TILLS, indirect=True)
def test_an_unreachable_processor_is_unavailable_and_charged_nothing(till):
    key = new_key()
    with pytest.raises(ProcessorUnavailable):
        till.processor.charge(
            till.card(payments.UNREACHABLE), 5_000, "USD", key, BOTH_METHODS, account=till.account
        )
    assert till.processor.lookup(key, account=till.account) is None
