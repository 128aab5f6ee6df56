"""Whether a payer may pay a link now: the one rule the payer's page and the payment API share
(links.services.payment_refusal), and the state the page shows (pay.facts.LinkFacts.state)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace

import pytest

from clientpay_connect.links.models import (
    STATUS_CANCELLED,
    STATUS_EXPIRED,
    STATUS_OUTSTANDING,
    STATUS_PAID,
    STATUS_PARTIALLY_PAID,
    STATUS_PROCESSING,
)
from clientpay_connect.links.services import (
    REFUSED_ACCOUNT_INACTIVE,
    REFUSED_EXPIRED,
    REFUSED_NOT_PAYABLE,
    is_past_expiry,
    payment_refusal,
)
from clientpay_connect.pay.facts import LinkFacts

EXPIRES = dt.datetime(2030, 6, 1, 12, 0, tzinfo=dt.UTC)
INSTANT = dt.timedelta(microseconds=1)


@dataclass(frozen=True)
class Link:
    status: str = STATUS_OUTSTANDING
    expires_at: dt.datetime | None = EXPIRES
    account_active: bool = True


def facts(link: Link) -> LinkFacts:
    return LinkFacts(
        link_id=1,
        token_hash="h",
        status=link.status,
        amount_minor=100,
        amount_paid_minor=0,
        currency="USD",
        invoice_number="",
        invoice_date=None,
        due_date=None,
        recipient_name="",
        first_email="",
        locale="en",
        expires_at=link.expires_at,
        paid_at=None,
        firm_name="F",
        time_zone="UTC",
        disclaimer="",
        recaptcha_site_key="",
        account_active=link.account_active,
        methods=("card",),
    )


@pytest.mark.parametrize(
    ("now", "refusal", "state"),
    [
        (EXPIRES - INSTANT, None, STATUS_OUTSTANDING),
        # At the very instant of its expiry a link is expired: not one payment more.
        (EXPIRES, REFUSED_EXPIRED, STATUS_EXPIRED),
        (EXPIRES + INSTANT, REFUSED_EXPIRED, STATUS_EXPIRED),
    ],
)
def test_a_link_expires_at_the_instant_it_says(now, refusal, state):
    link = Link()
    assert is_past_expiry(link, now) is (refusal is not None)
    assert payment_refusal(link, now) == refusal
    assert facts(link).state(now) == state


def test_a_link_that_never_expires_stays_payable():
    link = Link(expires_at=None)
    assert payment_refusal(link, EXPIRES + dt.timedelta(days=10_000)) is None


@pytest.mark.parametrize(
    "status", [STATUS_PROCESSING, STATUS_PAID, STATUS_PARTIALLY_PAID, STATUS_CANCELLED]
)
def test_a_link_no_longer_outstanding_is_not_payable_and_keeps_its_status(status):
    link = Link(status=status)
    # Past its time too: what happened to the link stands, it did not "expire".
    for now in (EXPIRES - INSTANT, EXPIRES + INSTANT):
        assert payment_refusal(link, now) == REFUSED_NOT_PAYABLE
        assert facts(link).state(now) == status


def test_an_expired_link_is_refused_as_expired():
    assert payment_refusal(Link(status=STATUS_EXPIRED), EXPIRES - INSTANT) == REFUSED_EXPIRED


def test_an_inactive_account_refuses_an_otherwise_payable_link():
    link = Link(account_active=False)
    assert payment_refusal(link, EXPIRES - INSTANT) == REFUSED_ACCOUNT_INACTIVE
    # Expiry is what the payer is told first: it is final, the account may come back.
    assert payment_refusal(link, EXPIRES) == REFUSED_EXPIRED
    assert payment_refusal(replace(link, status=STATUS_PAID), EXPIRES) == REFUSED_NOT_PAYABLE
