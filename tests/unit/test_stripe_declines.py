"""Stripe's decline reasons in the API's error codes (localstripe plays only card_declined)."""

import pytest

from clientpay_connect.pay.stripe_processor import decline_code


@pytest.mark.parametrize(
    ("code", "stripe_decline_code", "ours"),
    [
        ("card_declined", "insufficient_funds", "insufficient_funds"),
        ("card_declined", "generic_decline", "card_declined"),
        ("card_declined", "do_not_honor", "card_declined"),
        ("card_declined", None, "card_declined"),
        ("expired_card", None, "expired_card"),
        ("incorrect_cvc", None, "incorrect_cvc"),
        ("processing_error", None, "processing_error"),
        ("card_declined", "expired_card", "expired_card"),
        (None, None, "card_declined"),
        ("incorrect_number", None, "card_declined"),
    ],
)
def test_stripe_declines_are_named_in_our_codes(code, stripe_decline_code, ours):
    assert decline_code(code, stripe_decline_code) == ours
