"""Merchant accounts: the pages and /api/v1/merchant-accounts."""

from __future__ import annotations

from typing import Any

from pyramid.httpexceptions import HTTPSeeOther
from pyramid.request import Request
from pyramid.view import view_config
from sqlalchemy import select

from clientpay_connect.admin.forms import (
    INVALID_FORM,
    errors_by_field,
    form_choices,
    form_text,
    found,
    iso_utc,
    matched_id,
)
from clientpay_connect.admin.models import ACCOUNT_KINDS, KIND_OPERATING, MerchantAccount
from clientpay_connect.admin.services.merchant_accounts import (
    CURRENCIES,
    METHODS,
    add_merchant_account,
    firm_merchant_account,
    firm_merchant_accounts,
    update_merchant_account,
)
from clientpay_connect.api.errors import FieldErrors
from clientpay_connect.pay import processors
from clientpay_connect.pay.processors import PROCESSOR_LABELS, not_offered_reason
from clientpay_connect.security import ADMIN, STAFF, firm_id

METHOD_LABELS = {"card": "Card", "echeck": "eCheck"}
KIND_LABELS = {"operating": "Operating", "trust": "Trust"}
FORM_FIELDS = ("name", "kind", "processor", "currency", "stripe_publishable_key")
# Typed in, never shown back (the form's value is always empty).
SECRET_FORM_FIELDS = ("stripe_secret_key", "stripe_webhook_secret")


def merchant_account_json(account: MerchantAccount) -> dict[str, Any]:
    return {
        "id": account.id,
        "name": account.name,
        "kind": account.kind,
        "currency": account.currency,
        "methods": account.methods,
    }


def merchant_account_detail_json(account: MerchantAccount) -> dict[str, Any]:
    return {
        **merchant_account_json(account),
        "processor": account.processor,
        "active": account.active,
        "created_at": iso_utc(account.created_at),
    }


def _account_from_route(request: Request) -> MerchantAccount:
    return found(
        lambda: firm_merchant_account(request.dbsession, firm_id(request), matched_id(request))
    )


def _typed(request: Request) -> dict[str, Any]:
    values: dict[str, Any] = {name: form_text(request.POST, name) for name in FORM_FIELDS}
    values["methods"] = form_choices(request.POST, "methods")
    for name in SECRET_FORM_FIELDS:
        values[name] = form_text(request.POST, name)
    return values


def _choices(request: Request, account: MerchantAccount | None = None) -> dict[str, Any]:
    offered = processors.choices(request.registry)
    if account is not None and not processors.offers(request.registry, account.processor):
        # Shown as it is (never silently switched by saving another field), with the reason.
        name = account.processor
        offered.append((name, f"{PROCESSOR_LABELS.get(name, name)}: not offered here"))
    return {
        "kinds": [(kind, KIND_LABELS.get(kind, kind)) for kind in ACCOUNT_KINDS],
        "processors": offered,
        "processor_labels": PROCESSOR_LABELS,
        "currencies": [(code, code) for code in CURRENCIES],
        "methods": [(method, METHOD_LABELS[method]) for method in METHODS],
        "method_labels": METHOD_LABELS,
        "kind_labels": KIND_LABELS,
    }


def _list_page(
    request: Request, values: dict[str, Any] | None = None, errors: dict[str, str] | None = None
) -> dict[str, Any]:
    blank = {
        "name": "",
        "kind": KIND_OPERATING,
        "processor": processors.default_name(request.registry),
        "currency": CURRENCIES[0],
        "methods": list(METHODS),
        "stripe_publishable_key": "",
    }
    accounts = firm_merchant_accounts(request.dbsession, firm_id(request))
    return {
        **_choices(request),
        "accounts": accounts,
        "not_offered": _not_offered(request, accounts),
        "values": values or blank,
        "errors": errors or {},
    }


def _not_offered(request: Request, accounts: list[MerchantAccount]) -> dict[int, str]:
    """Why each account on a processor this instance does not offer takes no payment."""
    return {
        account.id: not_offered_reason(account.processor)
        for account in accounts
        if not processors.offers(request.registry, account.processor)
    }


def _edit_page(
    request: Request,
    account: MerchantAccount,
    values: dict[str, Any] | None = None,
    errors: dict[str, str] | None = None,
) -> dict[str, Any]:
    current = {name: getattr(account, name) for name in FORM_FIELDS}
    current["methods"] = account.methods
    # Never the secrets themselves, whatever was typed: only whether one is stored.
    shown = {k: v for k, v in (values or current).items() if k not in SECRET_FORM_FIELDS}
    return {
        **_choices(request, account),
        "account": account,
        "not_offered": _not_offered(request, [account]),
        "values": shown,
        "errors": errors or {},
    }


# ----------------------------------------------------------------------------- pages


@view_config(
    route_name="admin.merchant_accounts",
    request_method="GET",
    renderer="admin/merchant_accounts.jinja2",
    permission=ADMIN,
)
def merchant_accounts_page(request: Request) -> dict[str, Any]:
    return _list_page(request)


@view_config(
    route_name="admin.merchant_accounts",
    request_method="POST",
    renderer="admin/merchant_accounts.jinja2",
    permission=ADMIN,
)
def add_merchant_account_from_form(request: Request) -> Any:
    values = _typed(request)
    try:
        account = add_merchant_account(request, **values)
    except FieldErrors as error:
        request.response.status = INVALID_FORM
        return _list_page(request, values, errors_by_field(error))
    request.session.flash(f"Added the merchant account {account.name}.")
    return HTTPSeeOther(location=request.route_url("admin.merchant_accounts"))


@view_config(
    route_name="admin.merchant_account",
    request_method="GET",
    renderer="admin/merchant_account.jinja2",
    permission=ADMIN,
)
def merchant_account_page(request: Request) -> dict[str, Any]:
    return _edit_page(request, _account_from_route(request))


@view_config(
    route_name="admin.merchant_account",
    request_method="POST",
    renderer="admin/merchant_account.jinja2",
    permission=ADMIN,
)
def update_merchant_account_from_form(request: Request) -> Any:
    account = _account_from_route(request)
    values = _typed(request)
    try:
        update_merchant_account(request, account, values)
    except FieldErrors as error:
        request.response.status = INVALID_FORM
        return _edit_page(request, account, values, errors_by_field(error))
    request.session.flash(f"Saved the merchant account {account.name}.")
    return HTTPSeeOther(location=request.route_url("admin.merchant_accounts"))


def _set_active_from_form(request: Request, active: bool) -> HTTPSeeOther:
    account = _account_from_route(request)
    update_merchant_account(request, account, {"active": active})
    state = "back in use" if active else "deactivated: staff can no longer choose it"
    request.session.flash(f"{account.name} is {state}.")
    return HTTPSeeOther(location=request.route_url("admin.merchant_accounts"))


@view_config(
    route_name="admin.merchant_account_deactivate", request_method="POST", permission=ADMIN
)
def deactivate_merchant_account_from_form(request: Request) -> HTTPSeeOther:
    return _set_active_from_form(request, active=False)


@view_config(
    route_name="admin.merchant_account_reactivate", request_method="POST", permission=ADMIN
)
def reactivate_merchant_account_from_form(request: Request) -> HTTPSeeOther:
    return _set_active_from_form(request, active=True)


# ----------------------------------------------------------------------------- API


@view_config(
    route_name="api.merchant_accounts",
    request_method="GET",
    renderer="json",
    permission=STAFF,
    openapi=True,
)
def list_merchant_accounts(request: Request) -> dict[str, Any]:
    accounts = request.dbsession.execute(
        select(MerchantAccount)
        .where(MerchantAccount.firm_id == firm_id(request), MerchantAccount.active.is_(True))
        .order_by(MerchantAccount.name, MerchantAccount.id)
    ).scalars()
    return {"items": [merchant_account_json(a) for a in accounts]}


@view_config(
    route_name="api.merchant_accounts",
    request_method="POST",
    renderer="json",
    permission=ADMIN,
    openapi=True,
)
def create_merchant_account_from_api(request: Request) -> dict[str, Any]:
    body = dict(request.openapi_validated.body)
    account = add_merchant_account(request, **body)
    request.response.status = 201
    return merchant_account_detail_json(account)


@view_config(
    route_name="api.merchant_account",
    request_method="GET",
    renderer="json",
    permission=STAFF,
    openapi=True,
)
def get_merchant_account(request: Request) -> dict[str, Any]:
    account = firm_merchant_account(request.dbsession, firm_id(request), matched_id(request))
    return merchant_account_detail_json(account)


@view_config(
    route_name="api.merchant_account",
    request_method="PATCH",
    renderer="json",
    permission=ADMIN,
    openapi=True,
)
def update_merchant_account_from_api(request: Request) -> dict[str, Any]:
    account = firm_merchant_account(request.dbsession, firm_id(request), matched_id(request))
    update_merchant_account(request, account, dict(request.openapi_validated.body))
    return merchant_account_detail_json(account)
