"""Admin pages and API (admins only)."""

from __future__ import annotations

from typing import Any

from pyramid.request import Request
from pyramid.view import view_config

from clientpay_connect.security import ADMIN


@view_config(route_name="admin.home", renderer="admin/home.jinja2", permission=ADMIN)
def admin_home(request: Request) -> dict[str, Any]:
    return {}
