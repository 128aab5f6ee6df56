"""On an instance that is not for development (production), the sandbox is not offered: an
account still on it takes no payment (fail closed: a test card must never mark a real invoice
paid), and the admin's Merchant accounts page says why and offers only real processors.
"""

from __future__ import annotations

from sqlalchemy import func, select

from clientpay_connect.admin.models import MerchantAccount
from clientpay_connect.links.models import PaymentLink
from clientpay_connect.pay.models import Payment
from tests import factories
from tests.conftest import csrf_token, login
from tests.functional import test_pay_stripe as card_tests
from tests.support.payments import SUCCEEDS, new_link, pay, submission

# The card tests' production instance (Stripe its default), database and payer.
proxy, proxy_passes = card_tests.proxy, card_tests.proxy_passes
stripe_pay_app, stripe_db, payer = card_tests.stripe_pay_app, card_tests.stripe_db, card_tests.payer


def test_an_account_left_on_the_sandbox_takes_no_payment(
    stripe_pay_app, payer, stripe_db, localstripe
):
    account = factories.MerchantAccountFactory(processor="sandbox")
    link, token = new_link(stripe_db, stripe_pay_app.registry, account)

    assert payer.get(f"/api/v1/pay/{token}").json["methods"] == []
    refused = pay(payer, token, submission(localstripe.payment_method(SUCCEEDS)), status=409)

    assert refused.json["error"] == "processor_not_offered"
    assert f"Please contact {account.firm.name}" in refused.json["message"]
    stripe_db.expire_all()
    assert stripe_db.get(PaymentLink, link.id).status == "outstanding"
    assert stripe_db.scalar(select(func.count()).select_from(Payment)) == 0
    assert localstripe.payment_intents(link=str(link.id)) == []
    payer.post_json("/sandbox/tokens", {"card_number": SUCCEEDS}, status=404)


def test_the_admin_page_offers_no_sandbox_and_says_why_an_account_on_it_takes_nothing(
    payer, stripe_db
):
    account = factories.MerchantAccountFactory(processor="sandbox", name="Old test account")
    admin = factories.UserFactory(firm=account.firm, role="admin")
    stripe_db.flush()
    login(payer, admin)

    page = payer.get("/admin/merchant-accounts")
    warning = page.html.find(class_="processor-not-offered").text
    assert "Takes no payments" in warning and "sandbox" in warning.lower()
    offered = [
        o["value"] for o in page.html.find("select", {"name": "processor"}).find_all("option")
    ]
    assert offered == ["stripe"]

    edit = payer.get(f"/admin/merchant-accounts/{account.id}")
    assert "Takes no payments" in edit.html.find(class_="processor-not-offered").text
    # Kept as it is when another field is saved: never silently moved to another processor.
    form = next(f for f in edit.forms.values() if "processor" in f.fields)
    assert form["processor"].value == "sandbox"
    form["name"] = "Old test account (retired)"
    form.submit(status=303)
    stripe_db.expire_all()
    kept = stripe_db.get(MerchantAccount, account.id)
    assert (kept.name, kept.processor) == ("Old test account (retired)", "sandbox")


def test_no_account_is_put_on_the_sandbox_here(payer, stripe_db):
    account = factories.MerchantAccountFactory(processor="stripe")
    admin = factories.UserFactory(firm=account.firm, role="admin")
    stripe_db.flush()
    login(payer, admin)
    headers = {"X-CSRF-Token": csrf_token(payer)}
    body = {"name": "Trust", "kind": "trust", "currency": "USD", "methods": ["card"]}

    refused = payer.post_json(
        "/api/v1/merchant-accounts", {**body, "processor": "sandbox"}, headers=headers, status=422
    )
    assert refused.json["errors"][0]["field"] == "processor"
    moved = payer.patch_json(
        f"/api/v1/merchant-accounts/{account.id}",
        {"processor": "sandbox"},
        headers=headers,
        status=422,
    )
    assert moved.json["errors"][0]["field"] == "processor"
    created = payer.post_json("/api/v1/merchant-accounts", body, headers=headers, status=201)
    assert created.json["processor"] == "stripe"  # the instance's default
