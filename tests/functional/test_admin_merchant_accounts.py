"""Merchant accounts: pages and API for admins; staff may read one."""

from urllib.parse import urlsplit

import pytest
from sqlalchemy import select

from clientpay_connect.accounts.models import AuditEvent
from clientpay_connect.admin.models import MerchantAccount
from tests.conftest import csrf_token, login
from tests.factories import MerchantAccountFactory


def form_posting_to(page, path):
    return next(form for form in page.forms.values() if urlsplit(form.action).path == path)


def audit_of(dbsession, firm):
    return list(
        dbsession.execute(
            select(AuditEvent).where(AuditEvent.firm_id == firm.id).order_by(AuditEvent.id)
        ).scalars()
    )


def accounts_of(dbsession, firm):
    dbsession.expire_all()
    return list(
        dbsession.execute(
            select(MerchantAccount).where(MerchantAccount.firm_id == firm.id)
        ).scalars()
    )


def check_methods(form, *methods):
    for checkbox in form.fields["methods"]:
        checkbox.checked = checkbox._value in methods


class TestPages:
    def test_add_an_account(self, testapp, dbsession, admin):
        login(testapp, admin)
        form = form_posting_to(testapp.get("/admin/merchant-accounts"), "/admin/merchant-accounts")
        form["name"] = "Trust (IOLTA)"
        form["kind"] = "trust"
        form["currency"] = "CAD"
        check_methods(form, "echeck")
        page = form.submit(status=303).follow()

        assert "Added the merchant account Trust (IOLTA)." in page.text
        (account,) = accounts_of(dbsession, admin.firm)
        assert (account.name, account.kind, account.currency, account.processor) == (
            "Trust (IOLTA)",
            "trust",
            "CAD",
            "sandbox",
        )
        assert account.methods == ["echeck"]
        (event,) = audit_of(dbsession, admin.firm)
        assert event.action == "merchant_account.created"
        assert event.target_id == str(account.id)

    def test_an_account_needs_a_payment_method_and_keeps_the_typing(
        self, testapp, dbsession, admin
    ):
        login(testapp, admin)
        form = form_posting_to(testapp.get("/admin/merchant-accounts"), "/admin/merchant-accounts")
        form["name"] = "Operating"
        form["currency"] = "EUR"
        check_methods(form)
        page = form.submit(status=400)

        error = page.html.find(id="methods-error")
        assert error.get_text(strip=True) == "Accept at least one payment method: card or eCheck."
        assert "methods-error" in page.html.find(id="methods")["aria-describedby"]
        kept = form_posting_to(page, "/admin/merchant-accounts")
        assert (kept["name"].value, kept["currency"].value) == ("Operating", "EUR")
        assert accounts_of(dbsession, admin.firm) == []

    def test_names_are_unique_within_the_firm(self, testapp, dbsession, admin):
        MerchantAccountFactory(firm=admin.firm, name="Operating")
        login(testapp, admin)
        form = form_posting_to(testapp.get("/admin/merchant-accounts"), "/admin/merchant-accounts")
        form["name"] = "operating"
        page = form.submit(status=400)
        assert "already has this name" in page.html.find(id="name-error").text
        assert len(accounts_of(dbsession, admin.firm)) == 1

    def test_stripe_keys_are_kept_encrypted_never_shown_and_kept_when_left_empty(
        self, app, testapp, dbsession, admin
    ):
        secret, hook = "sk_test_" + "s3cr3t" * 4, "whsec_" + "h00k" * 4
        account = MerchantAccountFactory(firm=admin.firm, name="Operating")
        login(testapp, admin)
        path = f"/admin/merchant-accounts/{account.id}"
        form = form_posting_to(testapp.get(path), path)
        form["processor"] = "stripe"
        form["stripe_secret_key"] = secret
        form["stripe_publishable_key"] = "pk_test_public"
        form["stripe_webhook_secret"] = hook
        form.submit(status=303)

        (stored,) = accounts_of(dbsession, admin.firm)
        encryptor = app.registry["clientpay.encryptor"]
        assert secret not in stored.stripe_secret_key_encrypted
        assert encryptor.decrypt(stored.stripe_secret_key_encrypted) == secret
        assert encryptor.decrypt(stored.stripe_webhook_secret_encrypted) == hook
        assert (stored.processor, stored.stripe_publishable_key) == ("stripe", "pk_test_public")
        page = testapp.get(path)
        assert secret not in page.text and hook not in page.text
        assert "A secret key is stored." in page.text
        assert "A signing secret is stored." in page.text
        events = audit_of(dbsession, admin.firm)
        assert not any(secret in str(event.__dict__) for event in events)

        # Saved again with the secrets left empty: they stay as they were.
        form = form_posting_to(page, path)
        assert form["stripe_secret_key"].value == ""
        form["name"] = "Operating (Stripe)"
        form.submit(status=303)
        (stored,) = accounts_of(dbsession, admin.firm)
        assert encryptor.decrypt(stored.stripe_secret_key_encrypted) == secret
        assert stored.name == "Operating (Stripe)"

    def test_a_key_that_is_not_a_stripe_key_is_refused_and_not_shown_back(
        self, testapp, dbsession, admin
    ):
        account = MerchantAccountFactory(firm=admin.firm, name="Operating")
        login(testapp, admin)
        path = f"/admin/merchant-accounts/{account.id}"
        form = form_posting_to(testapp.get(path), path)
        form["stripe_secret_key"] = "pk_test_the_wrong_one"
        page = form.submit(status=400)
        assert "starts like sk_live_" in page.html.find(id="stripe_secret_key-error").text
        assert "pk_test_the_wrong_one" not in page.text
        assert accounts_of(dbsession, admin.firm)[0].stripe_secret_key_encrypted is None

    def test_edit_and_deactivate_and_reactivate(self, testapp, dbsession, admin):
        account = MerchantAccountFactory(firm=admin.firm, name="Operating")
        login(testapp, admin)
        path = f"/admin/merchant-accounts/{account.id}"
        form = form_posting_to(testapp.get(path), path)
        form["name"] = "Operating (main)"
        form["currency"] = "GBP"
        check_methods(form, "card")
        form.submit(status=303)
        token = csrf_token(testapp)
        testapp.post(f"{path}/deactivate", {"csrf_token": token}, status=303)

        (stored,) = accounts_of(dbsession, admin.firm)
        assert (stored.name, stored.currency, stored.methods, stored.active) == (
            "Operating (main)",
            "GBP",
            ["card"],
            False,
        )
        testapp.post(f"{path}/reactivate", {"csrf_token": token}, status=303)
        assert accounts_of(dbsession, admin.firm)[0].active
        events = audit_of(dbsession, admin.firm)
        assert [e.action for e in events] == [
            "merchant_account.updated",
            "merchant_account.deactivated",
            "merchant_account.reactivated",
        ]
        assert events[0].details == {
            "name": "Operating (main)",
            "currency": "GBP",
            "methods": ["card"],
        }

    def test_the_currency_choice_is_short(self, testapp, admin):
        login(testapp, admin)
        page = testapp.get("/admin/merchant-accounts")
        options = [o["value"] for o in page.html.find(id="currency").find_all("option")]
        assert options == ["USD", "CAD", "EUR", "GBP", "AUD"]


class TestApi:
    def test_create_get_and_patch(self, testapp, dbsession, admin, admin_auth):
        created = testapp.post_json(
            "/api/v1/merchant-accounts",
            {"name": "Trust", "kind": "trust", "currency": "usd", "methods": ["card", "echeck"]},
            headers=admin_auth,
            status=201,
        ).json
        (account,) = accounts_of(dbsession, admin.firm)
        assert created == {
            "id": account.id,
            "name": "Trust",
            "kind": "trust",
            "processor": "sandbox",
            "currency": "USD",
            "methods": ["card", "echeck"],
            "active": True,
            "created_at": account.created_at.isoformat(),
        }
        path = f"/api/v1/merchant-accounts/{account.id}"
        assert testapp.get(path, headers=admin_auth).json == created

        patched = testapp.patch_json(
            path, {"methods": ["echeck"], "active": False}, headers=admin_auth
        ).json
        assert (patched["methods"], patched["active"], patched["name"]) == (
            ["echeck"],
            False,
            "Trust",
        )
        (stored,) = accounts_of(dbsession, admin.firm)
        assert (stored.accepts_card, stored.accepts_echeck, stored.active) == (False, True, False)
        assert [e.action for e in audit_of(dbsession, admin.firm)] == [
            "merchant_account.created",
            "merchant_account.deactivated",
            "merchant_account.updated",
        ]
        # A deactivated account is no longer offered to staff.
        assert testapp.get("/api/v1/merchant-accounts", headers=admin_auth).json == {"items": []}

    @pytest.mark.parametrize(
        ("body", "field"),
        [
            ({"name": "", "kind": "trust", "currency": "USD", "methods": ["card"]}, "name"),
            ({"name": "A", "kind": "savings", "currency": "USD", "methods": ["card"]}, "kind"),
            ({"name": "A", "kind": "trust", "currency": "XYZ", "methods": ["card"]}, "currency"),
            ({"name": "A", "kind": "trust", "currency": "USD", "methods": []}, "methods"),
            ({"name": "A", "kind": "trust", "currency": "USD", "methods": ["cash"]}, "methods.0"),
            (
                {
                    "name": "A",
                    "kind": "trust",
                    "currency": "USD",
                    "methods": ["card"],
                    "processor": "paypal",
                },
                "processor",
            ),
            ({"name": "A", "kind": "trust", "methods": ["card"]}, "currency"),
        ],
    )
    def test_create_refuses_wrong_input_naming_the_field(
        self, testapp, dbsession, admin, admin_auth, body, field
    ):
        answer = testapp.post_json(
            "/api/v1/merchant-accounts", body, headers=admin_auth, status=422
        ).json
        assert answer["error"] == "validation_error"
        assert field in [e["field"] for e in answer["errors"]]
        assert accounts_of(dbsession, admin.firm) == []
        assert audit_of(dbsession, admin.firm) == []

    def test_patch_refuses_wrong_input_and_changes_nothing(
        self, testapp, dbsession, admin, admin_auth
    ):
        account = MerchantAccountFactory(firm=admin.firm, name="Operating")
        answer = testapp.patch_json(
            f"/api/v1/merchant-accounts/{account.id}",
            {"name": "Renamed", "methods": []},
            headers=admin_auth,
            status=422,
        ).json
        assert [e["field"] for e in answer["errors"]] == ["methods"]
        (stored,) = accounts_of(dbsession, admin.firm)
        assert stored.name == "Operating"

    def test_an_unknown_id_is_404(self, testapp, admin_auth):
        testapp.get("/api/v1/merchant-accounts/999999", headers=admin_auth, status=404)
