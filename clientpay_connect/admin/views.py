"""Admin pages and API (admins only)."""

from __future__ import annotations

from typing import Any

from pyramid.request import Request
from pyramid.view import view_config
from sqlalchemy import select

from clientpay_connect.admin.models import MerchantAccount
from clientpay_connect.security import ADMIN, STAFF, firm_id


@view_config(route_name="admin.home", renderer="admin/home.jinja2", permission=ADMIN)
def admin_home(request: Request) -> dict[str, Any]:
    return {}


def merchant_account_json(account: MerchantAccount) -> dict[str, Any]:
    return {
        "id": account.id,
        "name": account.name,
        "kind": account.kind,
        "currency": account.currency,
        "methods": account.methods,
    }


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
