"""Many refunds of one payment asked for at the same instant never refund more than was paid.

The app is served by waitress on a fresh, committed database (test_pay_concurrency's
``served_stripe``), Stripe is localstripe (which does not check a refund against what is left
of the charge: only our claim stands between the staff and an over-refund), and the refunds
are posted over real HTTP from threads released together by a barrier.

What decides the race is the conditional claim (refunds/services.py claim_refund). On
PostgreSQL the requests' transactions overlap: every one reads the link with all of it left
to refund, and the claim alone decides. On SQLite a request that writes starts its
transaction IMMEDIATE, so the requests queue before reading and the race cannot fail there;
it runs on both, and CI (which sets CLIENTPAY_TEST_DATABASE_URL) runs it on PostgreSQL.
"""

from __future__ import annotations

import threading
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import requests
from sqlalchemy import select

from clientpay_connect.accounts.models import User
from clientpay_connect.accounts.services import create_api_token
from clientpay_connect.links.models import PaymentLink
from clientpay_connect.refunds.models import Refund
from tests.functional import test_pay_concurrency as race
from tests.support.localstripe import LocalStripe
from tests.support.payments import SUCCEEDS, submission

served_stripe = race.served_stripe
STAFF = 12
TIMEOUT = 120


def _staff_token(served: race.Served, link_id: int) -> str:
    with served.dbsession() as dbsession:
        link = dbsession.get(PaymentLink, link_id)
        user = User(
            firm_id=link.firm_id,
            email=f"staff-{uuid.uuid4().hex[:8]}@example.test",
            name="Staff",
            role="staff",
            password_hash="!",
        )
        dbsession.add(user)
        dbsession.flush()
        _row, token = create_api_token(dbsession, user, "refund race")
        return token


def _pay(served: race.Served, localstripe: LocalStripe, token: str, amount: str) -> None:
    body = submission(localstripe.payment_method(SUCCEEDS), amount)
    answer = requests.post(
        f"{served.url}/api/v1/pay/{token}",
        json=body,
        headers={"Idempotency-Key": uuid.uuid4().hex},
        timeout=TIMEOUT,
    )
    assert answer.status_code == 201, answer.text


def _race(served: race.Served, link_id: int, token: str, amount: str) -> list[int]:
    barrier = threading.Barrier(STAFF)

    def ask() -> int:
        with requests.Session() as http:
            barrier.wait(timeout=TIMEOUT)
            answer = http.post(
                f"{served.url}/api/v1/links/{link_id}/refund",
                json={"amount": amount},
                headers={"Authorization": f"Bearer {token}"},
                timeout=TIMEOUT,
            )
            return answer.status_code

    with ThreadPoolExecutor(max_workers=STAFF) as pool:
        return list(pool.map(lambda _: ask(), range(STAFF)))


def test_refunds_asked_for_at_once_never_pass_what_was_paid(
    served_stripe: race.Served, localstripe: LocalStripe
) -> None:
    localstripe.forget_everything()
    link_id, link_token = race._new_stripe_link(served_stripe, 10_000)
    _pay(served_stripe, localstripe, link_token, "100.00")
    [intent] = localstripe.payment_intents(link=str(link_id))
    staff_token = _staff_token(served_stripe, link_id)

    statuses = Counter(_race(served_stripe, link_id, staff_token, "30.00"))

    # Three fit in $100.00; every other one is refused, none is an error.
    assert statuses[201] == 3, statuses
    assert set(statuses) <= {201, 409, 422}, statuses
    listed = localstripe.client().v1.refunds.list(params={"payment_intent": intent.id})
    assert [r.amount for r in listed.auto_paging_iter()] == [3_000] * 3
    with served_stripe.dbsession() as dbsession:
        link = dbsession.get(PaymentLink, link_id)
        assert (link.amount_refunded_minor, link.refunds_claimed_minor) == (9_000, 9_000)
        refunds = dbsession.scalars(select(Refund.status).where(Refund.link_id == link_id))
        assert sorted(refunds) == ["succeeded"] * 3
