"""Staff refund a link's payment, whole or part, through the API and the link's page, with
the sandbox as the processor (its own ledger keeps the refunds it made)."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from clientpay_connect.accounts.models import AuditEvent
from clientpay_connect.links.models import PaymentLink
from clientpay_connect.mail.models import OutboxMessage
from clientpay_connect.pay.models import Payment, SandboxRefund
from clientpay_connect.pay.processor import RefundRefused
from clientpay_connect.refunds.models import Refund
from tests import factories
from tests.conftest import bearer, login
from tests.support.payments import card, new_link, pay, submission, tokenize


@pytest.fixture
def account(firm):
    return factories.MerchantAccountFactory(firm=firm)


def paid_link(testapp, dbsession, app, account, amount_minor=12_345, paid="123.45"):
    link, token = new_link(dbsession, app.registry, account, amount_minor)
    answer = pay(testapp, token, submission(tokenize(testapp, card()), paid), status=201)
    dbsession.expire_all()
    return dbsession.get(PaymentLink, link.id), answer.json["payment_id"]


def refund(testapp, auth, link_id, amount, status="*", **extra):
    body = {"amount": amount, **extra}
    return testapp.post_json(f"/api/v1/links/{link_id}/refund", body, headers=auth, status=status)


def sandbox_refunded(dbsession, payment_id) -> int:
    reference = dbsession.get(Payment, payment_id).processor_ref
    total = select(func.coalesce(func.sum(SandboxRefund.amount_minor), 0)).where(
        SandboxRefund.charge_reference == reference
    )
    return int(dbsession.scalar(total))


def notices(dbsession, link_id) -> list[OutboxMessage]:
    dbsession.expire_all()
    return list(
        dbsession.scalars(
            select(OutboxMessage)
            .where(OutboxMessage.link_id == link_id, OutboxMessage.kind == "refund_notice")
            .order_by(OutboxMessage.id)
        )
    )


def test_staff_refund_the_whole_payment_and_the_payer_is_told(
    testapp, dbsession, app, account, staff, staff_auth
):
    link, payment_id = paid_link(testapp, dbsession, app, account)

    made = refund(testapp, staff_auth, link.id, "123.45", status=201, reason="Paid twice").json

    assert (made["status"], made["amount"], made["origin"], made["reason"]) == (
        "succeeded",
        "123.45",
        "staff",
        "Paid twice",
    )
    assert made["processor_ref"].startswith("re_")
    assert sandbox_refunded(dbsession, payment_id) == 12_345
    shown = testapp.get(f"/api/v1/links/{link.id}", headers=staff_auth).json
    assert (shown["amount_paid"], shown["amount_refunded"], shown["status"]) == (
        "123.45",
        "123.45",
        "paid",
    )
    listed = testapp.get(f"/api/v1/links/{link.id}/refunds", headers=staff_auth).json
    assert listed == {"refunds": [made], "disputes": []}
    [notice] = notices(dbsession, link.id)
    assert notice.recipients == ["pat@example.test"]
    assert notice.status == "sent"
    assert notice.subject.startswith("Refund of $123.45")
    [audited] = dbsession.scalars(
        select(AuditEvent).where(AuditEvent.action == "link.refund_requested")
    ).all()
    assert (audited.actor_user_id, audited.target_id) == (staff.id, str(link.id))
    assert audited.details == {"refund_id": made["id"], "amount": "123.45"}


def test_two_parts_refund_up_to_the_total_and_no_further(
    testapp, dbsession, app, account, staff_auth
):
    link, payment_id = paid_link(testapp, dbsession, app, account)

    refund(testapp, staff_auth, link.id, "100.00", status=201)
    too_much = refund(testapp, staff_auth, link.id, "23.46", status=422).json
    refund(testapp, staff_auth, link.id, "23.45", status=201)
    nothing_left = refund(testapp, staff_auth, link.id, "0.01", status=409).json

    assert too_much["errors"][0]["field"] == "amount"
    assert "$23.45" in too_much["errors"][0]["message"]
    assert nothing_left["error"] == "fully_refunded"
    assert sandbox_refunded(dbsession, payment_id) == 12_345
    shown = testapp.get(f"/api/v1/links/{link.id}", headers=staff_auth).json
    assert shown["amount_refunded"] == "123.45"
    assert len(notices(dbsession, link.id)) == 2


def test_a_part_of_a_partial_payment_is_refunded(testapp, dbsession, app, account, staff_auth):
    link, payment_id = paid_link(testapp, dbsession, app, account, 20_000, "50.00")

    refund(testapp, staff_auth, link.id, "50.01", status=422)
    made = refund(testapp, staff_auth, link.id, "$20", status=201).json

    assert made["amount"] == "20.00"
    shown = testapp.get(f"/api/v1/links/{link.id}", headers=staff_auth).json
    assert (shown["status"], shown["amount_paid"], shown["amount_refunded"]) == (
        "partially_paid",
        "50.00",
        "20.00",
    )
    assert sandbox_refunded(dbsession, payment_id) == 2_000


@pytest.mark.parametrize("amount", ["0", "-1", "abc", "1.234", ""])
def test_an_amount_that_is_not_one_is_422(testapp, dbsession, app, account, staff_auth, amount):
    link, payment_id = paid_link(testapp, dbsession, app, account)
    answer = refund(testapp, staff_auth, link.id, amount, status=422).json
    assert [e["field"] for e in answer["errors"]] == ["amount"]
    assert sandbox_refunded(dbsession, payment_id) == 0
    assert dbsession.scalar(select(func.count()).select_from(Refund)) == 0


def test_an_unpaid_link_has_nothing_to_refund(testapp, dbsession, app, account, staff_auth):
    link, _token = new_link(dbsession, app.registry, account)
    answer = refund(testapp, staff_auth, link.id, "1.00", status=409).json
    assert answer["error"] == "not_paid"


def test_a_payment_into_a_trust_account_is_never_refunded_from_it(
    testapp, dbsession, app, firm, staff_auth
):
    trust = factories.MerchantAccountFactory(firm=firm, kind="trust")
    link, payment_id = paid_link(testapp, dbsession, app, trust)

    answer = refund(testapp, staff_auth, link.id, "10.00", status=409).json

    assert answer["error"] == "trust_account"
    assert "operating account" in answer["message"]
    assert sandbox_refunded(dbsession, payment_id) == 0
    dbsession.expire_all()
    assert dbsession.get(PaymentLink, link.id).refunds_claimed_minor == 0


def test_another_firms_link_is_404(testapp, dbsession, app, account, staff_auth):
    link, payment_id = paid_link(testapp, dbsession, app, account)
    outsider = factories.UserFactory(firm=factories.FirmFactory(), role="admin")
    dbsession.flush()

    answer = refund(testapp, bearer(dbsession, outsider), link.id, "1.00", status=404).json

    assert answer["error"] == "not_found"
    assert sandbox_refunded(dbsession, payment_id) == 0
    testapp.get(f"/api/v1/links/{link.id}/refunds", headers=bearer(dbsession, outsider), status=404)
    refund(testapp, {}, link.id, "1.00", status=401)


def test_the_link_page_refunds_with_its_form_and_lists_the_refund(
    testapp, dbsession, app, account, staff
):
    link, payment_id = paid_link(testapp, dbsession, app, account)
    login(testapp, staff)
    page = testapp.get(f"/links/{link.id}")
    form = page.forms[next(i for i, f in page.forms.items() if f.action.endswith("/refund"))]
    assert form["amount"].value == "123.45"
    assert "data-confirm" in str(page.html.find("form", attrs={"data-refund-form": True}).attrs)

    form["amount"] = "23.45"
    form["reason"] = "Discount agreed"
    done = form.submit(status=303).follow()

    assert "Refunded $23.45" in done.text
    [row] = done.html.select("[data-refund]")
    assert "$23.45" in row.text and "Discount agreed" in row.text
    assert done.html.select_one("[data-amount-refunded]").text == "$23.45"
    assert done.html.select_one("#refund-amount")["value"] == "100.00"
    assert sandbox_refunded(dbsession, payment_id) == 2_345
    # The payer's notice is among the client's emails the page lists.
    emails = [row.get_text(" ", strip=True) for row in done.html.select("[data-link-email]")]
    assert any(text.startswith("Refund notice") for text in emails), emails


def test_the_page_form_needs_its_csrf_token(testapp, dbsession, app, account, staff):
    link, payment_id = paid_link(testapp, dbsession, app, account)
    login(testapp, staff)
    testapp.post(f"/links/{link.id}/refund", {"amount": "1.00"}, status=403)
    assert sandbox_refunded(dbsession, payment_id) == 0


def test_the_page_of_a_trust_link_says_why_it_has_no_refund_form(
    testapp, dbsession, app, firm, staff
):
    trust = factories.MerchantAccountFactory(firm=firm, kind="trust")
    link, _payment_id = paid_link(testapp, dbsession, app, trust)
    login(testapp, staff)
    page = testapp.get(f"/links/{link.id}")
    assert page.html.find("form", attrs={"data-refund-form": True}) is None
    assert "operating account" in page.html.select_one("[data-refund-refusal]").text


def test_the_sandbox_refunds_once_per_key_and_never_past_the_charge(
    testapp, dbsession, app, account
):
    _link, payment_id = paid_link(testapp, dbsession, app, account)
    reference = dbsession.get(Payment, payment_id).processor_ref
    sandbox = app.registry["clientpay.processor"]

    first = sandbox.refund(reference, 10_000, "USD", "rf_same")
    again = sandbox.refund(reference, 10_000, "USD", "rf_same")
    with pytest.raises(RefundRefused) as over:
        sandbox.refund(reference, 2_346, "USD", "rf_other")
    with pytest.raises(RefundRefused) as unknown:
        sandbox.refund("ch_nobody", 1, "USD", "rf_third")

    assert again == first
    assert (over.value.code, unknown.value.code) == ("amount_too_large", "charge_not_found")
    assert sandbox_refunded(dbsession, payment_id) == 10_000


def test_a_spanish_speaking_payer_is_told_in_spanish(testapp, dbsession, app, account, staff_auth):
    link, token = new_link(dbsession, app.registry, account, 5_000, locale="es")
    pay(testapp, token, submission(tokenize(testapp, card()), "50.00"), status=201)

    refund(testapp, staff_auth, link.id, "50.00", status=201)

    [notice] = notices(dbsession, link.id)
    assert notice.subject.startswith("Reembolso de")
